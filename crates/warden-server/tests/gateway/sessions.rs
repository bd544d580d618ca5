//! Session binding and dynamic scoping (declared tools).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

fn tool_names(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
}

#[tokio::test]
async fn a_session_id_replayed_with_another_identity_is_refused() {
    let gw = Gw::start(json!({})).await;
    let alice = gw.token_for("alice", "cli", "notes", "notes:read").await;
    let session = gw.initialize("notes", &alice).await;
    assert_eq!(
        gw.call("notes", &alice, &session, "notes_list")
            .await
            .status,
        StatusCode::OK
    );

    for (sub, client) in [("bob", "cli"), ("alice", "other-client")] {
        let thief = gw
            .token_for(sub, client, "notes", "notes:read notes:write notes:admin")
            .await;
        let r = gw.call("notes", &thief, &session, "notes_list").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{sub}/{client}");
        assert_eq!(r.json()["error"]["code"], -32001);
        assert_eq!(r.json()["id"], 7);
        let get = Request::get("/mcp/notes")
            .header("authorization", format!("Bearer {thief}"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .unwrap();
        assert_eq!(gw.send(get).await.status, StatusCode::NOT_FOUND);
        let delete = Request::delete("/mcp/notes")
            .header("authorization", format!("Bearer {thief}"))
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .unwrap();
        assert_eq!(gw.send(delete).await.status, StatusCode::NOT_FOUND);
    }
    // The same identity with a new token (a refresh) keeps its session.
    let refreshed = gw.token_for("alice", "cli", "notes", "notes:read").await;
    assert_eq!(
        gw.call("notes", &refreshed, &session, "notes_list")
            .await
            .status,
        StatusCode::OK
    );
    // A session id minted for another server is not valid here.
    let other = gw.token_for("alice", "cli", "other", "notes:read").await;
    assert_eq!(
        gw.call("other", &other, &session, "notes_list")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_upstream_session_id_never_reaches_the_client() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    gw.register_upstream("echo", &echo, json!({})).await;
    let token = gw.token("echo", "notes:read").await;
    let session = gw.initialize("echo", &token).await;
    assert_ne!(session, "up-123");
    assert!(session.starts_with("w1."));
    // The upstream gets its own id back.
    let r = gw.call("echo", &token, &session, "anything").await;
    assert_eq!(r.json()["result"]["headers"]["mcp-session-id"], "up-123");
    // Presenting the raw upstream id is refused.
    assert_eq!(
        gw.call("echo", &token, "up-123", "anything").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn declared_tools_not_covered_by_the_token_refuse_the_session_early() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let declared = json!({"experimental": {"warden/intendedTools": ["notes_read", "notes_write"]}});
    let r = gw.initialize_with("notes", &token, declared).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r
        .header("www-authenticate")
        .contains(r#"scope="notes:read notes:write""#));
    let body = r.json();
    assert_eq!(body["id"], 1);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("notes_write") && message.contains("notes:write"),
        "{message}"
    );
    assert_eq!(
        gw.demo.session_count(),
        0,
        "refused before the upstream saw it"
    );

    // A tool no scope covers: refused, no step-up.
    let declared = json!({"experimental": {"warden/intendedTools": ["notes_read", "rm_rf"]}});
    let r = gw.initialize_with("notes", &token, declared).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("www-authenticate").is_none());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rm_rf"));
    assert_eq!(gw.demo.session_count(), 0);
}

#[tokio::test]
async fn a_covered_declaration_pins_the_session_to_those_tools() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read notes:write").await;
    let declared = json!({"experimental": {"warden/intendedTools": ["notes_list", "notes_read"]}});
    let r = gw.initialize_with("notes", &token, declared).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.header("mcp-session-id").to_owned();
    let listed = gw.rpc("notes", Some(&token), Some(&session), list()).await;
    assert_eq!(tool_names(&listed), ["notes_list", "notes_read"]);
    assert_eq!(
        gw.call("notes", &token, &session, "notes_list")
            .await
            .status,
        StatusCode::OK
    );
    // Within the token's scopes, but outside the declaration.
    let r = gw.call("notes", &token, &session, "notes_write").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("www-authenticate").is_none());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("declared"));
    // An unpinned session of the same token may use everything its scopes allow.
    let free = gw.initialize("notes", &token).await;
    let listed = gw.rpc("notes", Some(&token), Some(&free), list()).await;
    assert_eq!(
        tool_names(&listed),
        ["notes_list", "notes_read", "notes_write", "whoami"]
    );
}

#[tokio::test]
async fn per_request_declaration_for_sessionless_revisions() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let call = |tool: &str, declared: Value| {
        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
            "name": tool, "arguments": {},
            "_meta": {"io.modelcontextprotocol/clientCapabilities": {
                "experimental": {"warden/intendedTools": declared}}}}})
    };
    let r = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            call("notes_list", json!(["notes_list"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            call("whoami", json!(["notes_list"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            call("notes_list", json!(["notes_list", "notes_write"])),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
}

#[tokio::test]
async fn authorization_details_pin_the_token() {
    let gw = Gw::start(json!({})).await;
    let mut claims = gw.claims("notes:read");
    claims.insert(
        "authorization_details".into(),
        json!([{"type": "warden:mcp", "locations": [NOTES], "tools": ["notes_list"]}]),
    );
    let token = gw.sign(&claims, "at+jwt");
    let session = gw.initialize("notes", &token).await;
    assert_eq!(
        tool_names(&gw.rpc("notes", Some(&token), Some(&session), list()).await),
        ["notes_list"]
    );
    assert_eq!(
        gw.call("notes", &token, &session, "notes_list")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        gw.call("notes", &token, &session, "whoami").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn delete_ends_the_session() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    assert_eq!(gw.demo.session_count(), 1);
    let delete = Request::delete("/mcp/notes")
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    // The upstream's answer to DELETE (rmcp: 202) passes through.
    assert_eq!(gw.send(delete).await.status, StatusCode::ACCEPTED);
    assert_eq!(gw.demo.session_count(), 0);
    assert_eq!(
        gw.call("notes", &token, &session, "notes_list")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
