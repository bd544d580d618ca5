//! Authorization of each JSON-RPC message, and list filtering (JSON and SSE answers).

use axum::body::Body;
use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    let mut v: Vec<String> = list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn note_count(gw: &Gw, token: &str, session: &str) -> usize {
    let r = gw.call("notes", token, session, "notes_list").await;
    r.json()["result"]["structuredContent"]["notes"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn missing_scope_is_403_with_step_up_and_a_json_rpc_error() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let before = note_count(&gw, &token, &session).await;
    let r = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": "w-1", "method": "tools/call",
                   "params": {"name": "notes_write", "arguments": {"title": "t", "body": "b"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let challenge = r.header("www-authenticate");
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="notes:read notes:write""#),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/notes\""));
    let body = r.json();
    assert_eq!(body["id"], "w-1");
    assert_eq!(body["error"]["code"], -32003);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("notes:write"),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["requiredScope"], "notes:write");
    assert_eq!(
        note_count(&gw, &token, &session).await,
        before,
        "nothing was written"
    );

    // With the scope, the same call passes.
    let writer = gw.token("notes", "notes:read notes:write").await;
    let session = gw.initialize("notes", &writer).await;
    let r = gw
        .rpc(
            "notes",
            Some(&writer),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "notes_write", "arguments": {"title": "t", "body": "b"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(note_count(&gw, &writer, &session).await, before + 1);
}

#[tokio::test]
async fn unmapped_tools_are_denied_unless_the_server_allows_them() {
    let gw = Gw::start(json!({})).await;
    gw.register("strict", &[("notes:read", &["notes_list"])], json!({}))
        .await;
    gw.register(
        "relaxed",
        &[("notes:read", &["notes_list"])],
        json!({"unmapped_tools": "allow"}),
    )
    .await;
    for (server, expected) in [
        ("strict", StatusCode::FORBIDDEN),
        ("relaxed", StatusCode::OK),
    ] {
        let token = gw.token(server, "notes:read").await;
        let session = gw.initialize(server, &token).await;
        let r = gw.call(server, &token, &session, "whoami").await;
        assert_eq!(r.status, expected, "{server}: {}", r.body);
        if expected == StatusCode::FORBIDDEN {
            // No scope would help: no step-up challenge, a clear JSON-RPC error.
            assert!(r.headers.get("www-authenticate").is_none());
            assert_eq!(r.json()["error"]["code"], -32003);
            assert!(r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("whoami"));
        }
        // Listed only where callable.
        let list = gw
            .rpc(
                server,
                Some(&token),
                Some(&session),
                json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
            )
            .await;
        let listed = names(&list.json()["result"], "tools", "name");
        assert_eq!(
            listed.contains(&"whoami".to_owned()),
            expected == StatusCode::OK,
            "{server}: {listed:?}"
        );
    }
}

/// The demo answers as an SSE stream (rmcp's session mode always does); `Resp::json`
/// reads either form, so this checks the filtered list per token whatever the framing.
#[tokio::test]
async fn tools_list_is_filtered_per_token() {
    let gw = Gw::start(json!({})).await;
    let reader = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &reader).await;
    let r = gw
        .rpc(
            "notes",
            Some(&reader),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        names(&r.json()["result"], "tools", "name"),
        ["notes_list", "notes_read", "whoami"]
    );
    assert_eq!(r.json()["id"], 3);

    let admin = gw
        .token("notes", "notes:read notes:write notes:admin")
        .await;
    let session = gw.initialize("notes", &admin).await;
    let r = gw
        .rpc(
            "notes",
            Some(&admin),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(names(&r.json()["result"], "tools", "name").len(), 5);
}

#[tokio::test]
async fn tools_list_is_filtered_in_sse_answers() {
    let gw = Gw::start(json!({})).await;
    let reader = gw.token("notes", "notes:write").await;
    let session = gw.initialize("notes", &reader).await;
    let body = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"});
    let req = gw
        .post("notes", Some(&reader), Some(&session))
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), "no");
    let events = r.events();
    assert_eq!(events.len(), 1, "{}", r.body);
    assert_eq!(events[0]["id"], 4);
    assert_eq!(
        names(&events[0]["result"], "tools", "name"),
        ["notes_write"]
    );
    assert!(r.body.contains("id: "), "event ids are kept: {}", r.body);
}

#[tokio::test]
async fn resources_and_prompts_need_their_mapped_scope() {
    let gw = Gw::start(json!({})).await;
    gw.register(
        "mapped",
        &[
            (
                "notes:read",
                &["notes_list", "resource:note://", "prompt:summarize_notes"],
            ),
            ("notes:admin", &["admin_reset"]),
        ],
        json!({}),
    )
    .await;
    // On `notes`, resources and prompts are unmapped: denied, and not listed.
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let read = json!({"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": {"uri": "note://1"}});
    let r = gw
        .rpc("notes", Some(&token), Some(&session), read.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let list = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 6, "method": "resources/list"}),
        )
        .await;
    assert_eq!(list.json()["result"]["resources"], json!([]));
    let prompt = json!({"jsonrpc": "2.0", "id": 8, "method": "prompts/get", "params": {"name": "summarize_notes"}});
    assert_eq!(
        gw.rpc("notes", Some(&token), Some(&session), prompt.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // On `mapped`, notes:read covers them.
    let token = gw.token("mapped", "notes:read").await;
    let session = gw.initialize("mapped", &token).await;
    let r = gw.rpc("mapped", Some(&token), Some(&session), read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = gw
        .rpc(
            "mapped",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 6, "method": "resources/list"}),
        )
        .await;
    assert!(!list.json()["result"]["resources"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = gw.rpc("mapped", Some(&token), Some(&session), prompt).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = gw
        .rpc(
            "mapped",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 9, "method": "prompts/list"}),
        )
        .await;
    assert_eq!(
        names(&list.json()["result"], "prompts", "name"),
        ["summarize_notes"]
    );

    // A token without the scope gets the step-up challenge for the resource.
    let other = gw.token("mapped", "notes:admin").await;
    let session = gw.initialize("mapped", &other).await;
    let r = gw
        .rpc("mapped", Some(&other), Some(&session), json!({"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": {"uri": "note://1"}}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r
        .header("www-authenticate")
        .contains(r#"scope="notes:admin notes:read""#));
}

#[tokio::test]
async fn malformed_messages_never_reach_the_upstream() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            StatusCode::BAD_REQUEST,
            -32602,
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"#,
            StatusCode::BAD_REQUEST,
            -32700,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_list","name":"admin_reset"}}"#,
            StatusCode::BAD_REQUEST,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_reset"}}"#,
            StatusCode::FORBIDDEN,
            -32003,
        ),
    ];
    for (body, status, code) in cases {
        let req = gw
            .post("notes", Some(&token), Some(&session))
            .body(Body::from(body))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(r.json()["error"]["code"], code, "{body}");
    }
    // A notification can not sneak a tool call past the check either.
    let req = gw
        .post("notes", Some(&token), Some(&session))
        .body(Body::from(
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_reset"}}"#,
        ))
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::FORBIDDEN);
}

/// An upstream that answers every request with a `tools/list` result naming a tool each
/// scope unlocks, labelled `content_type` (or not labelled at all).
async fn mislabelled_upstream(content_type: Option<&'static str>) -> String {
    async fn answer(
        axum::extract::State(content_type): axum::extract::State<Option<&'static str>>,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let tools = json!([{"name": "notes_read"}, {"name": "admin_reset"}]);
        let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"tools": tools}});
        let mut resp = axum::response::Response::new(Body::from(reply.to_string()));
        if let Some(label) = content_type {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, label.parse().unwrap());
        }
        resp
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/mcp", axum::routing::any(answer))
        .with_state(content_type);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

/// A list result is filtered whatever its answer is labelled: an upstream that sends
/// `tools/list` as `text/plain`, or with no `Content-Type`, shows a `notes:read` token
/// only what it may call, never the `notes:admin` tool.
#[tokio::test]
async fn list_results_are_filtered_whatever_their_content_type() {
    let gw = Gw::start(json!({})).await;
    for (name, label) in [
        ("plain", Some("text/plain")),
        ("unlabelled", None),
        ("json", Some("application/json")),
    ] {
        let upstream = mislabelled_upstream(label).await;
        warden_store::ServerStore::create(&gw.store, &record(name, &upstream, json!({})))
            .await
            .unwrap();
        let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
        let reader = gw.token(name, "notes:read").await;
        let r = gw.rpc(name, Some(&reader), None, list.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert!(!r.body.contains("admin_reset"), "{name}: {}", r.body);
        assert_eq!(names(&r.json()["result"], "tools", "name"), ["notes_read"]);
        assert_eq!(r.json()["id"], 3);
        let admin = gw.token(name, "notes:read notes:admin").await;
        let r = gw.rpc(name, Some(&admin), None, list).await;
        assert_eq!(
            names(&r.json()["result"], "tools", "name"),
            ["admin_reset", "notes_read"],
            "{name}"
        );
    }
}
