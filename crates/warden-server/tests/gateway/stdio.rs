//! Stdio upstreams: one process per session, bridged to Streamable HTTP, with the same
//! checks as HTTP upstreams.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;
use warden_store::{ServerStore, ToolGroup};

use crate::support::*;

async fn with_stdio_server(gw: &Gw) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/stdio_server.py");
    let mut rec = record(
        "local",
        &format!("stdio:python3 '{script}'"),
        json!({"env": {"STDIO_TEST": "yes"}}),
    );
    rec.tool_groups = vec![
        ToolGroup {
            scope: "notes:read".into(),
            tools: vec!["whoami_env".into(), "slow_progress".into()],
        },
        ToolGroup {
            scope: "notes:admin".into(),
            tools: vec!["crash".into()],
        },
    ];
    ServerStore::create(&gw.store, &rec).await.unwrap();
}

#[tokio::test]
async fn a_stdio_upstream_gets_the_same_checks_and_a_clean_environment() {
    let gw = Gw::start(json!({})).await;
    with_stdio_server(&gw).await;
    // No token, no process.
    let r = gw
        .rpc(
            "local",
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(gw.app.gateway.stdio.len(), 0);

    let token = gw.token("local", "notes:read").await;
    let session = gw.initialize("local", &token).await;
    assert_eq!(gw.app.gateway.stdio.len(), 1);

    // tools/list, answered as SSE, filtered: `crash` needs notes:admin.
    let r = gw
        .rpc(
            "local",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.events();
    let names: Vec<&str> = events[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whoami_env", "slow_progress"]);

    // The process knows who it serves, and nothing else of the gateway's environment.
    let r = gw.call("local", &token, &session, "whoami_env").await;
    let result = &r.events()[0]["result"]["structuredContent"];
    assert_eq!(result["env"]["WARDEN_SUBJECT"], "alice");
    assert_eq!(result["env"]["WARDEN_CLIENT_ID"], "cli");
    assert_eq!(result["env"]["WARDEN_SCOPE"], "notes:read");
    assert_eq!(result["extra"], "yes");
    // `cargo test` runs this binary with CARGO_* set: none of it reaches the process
    // (what remains is what an interpreter's launcher sets for itself, e.g. pyenv).
    assert_eq!(result["env"].as_object().unwrap().len(), 3, "{result}");
    let others = result["others"].as_array().unwrap();
    assert!(
        !others
            .iter()
            .any(|k| k.as_str().unwrap().starts_with("CARGO")),
        "inherited environment leaked: {others:?}"
    );
    assert!(!r.body.contains(&token));

    // Denied calls never reach the process.
    let r = gw.call("local", &token, &session, "crash").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // JSON answers for clients that do not take SSE.
    let req = Request::post("/mcp/local")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("mcp-session-id", &session)
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string(),
        ))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "id": 9, "result": {}}));

    // Another identity cannot use the session.
    let bob = gw
        .token_for("bob", "cli", "local", "notes:read notes:admin")
        .await;
    assert_eq!(
        gw.call("local", &bob, &session, "crash").await.status,
        StatusCode::NOT_FOUND
    );

    // DELETE stops the process.
    let delete = Request::delete("/mcp/local")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    assert_eq!(gw.send(delete).await.status, StatusCode::NO_CONTENT);
    assert_eq!(gw.app.gateway.stdio.len(), 0);
    assert_eq!(
        gw.call("local", &token, &session, "whoami_env")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn progress_streams_and_a_crash_ends_the_session() {
    let gw = Gw::start(json!({})).await;
    with_stdio_server(&gw).await;
    let token = gw.token("local", "notes:read notes:admin").await;
    let session = gw.initialize("local", &token).await;
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "slow_progress", "arguments": {}, "_meta": {"progressToken": 42}}});
    let r = gw.rpc("local", Some(&token), Some(&session), body).await;
    let events = r.events();
    assert_eq!(events.len(), 3, "{}", r.body);
    assert_eq!(events[0]["method"], "notifications/progress");
    assert_eq!(events[1]["params"]["progress"], 2);
    assert_eq!(events[2]["id"], 5);

    let r = tokio::time::timeout(
        Duration::from_secs(10),
        gw.call("local", &token, &session, "crash"),
    )
    .await
    .expect("a crash ends the request stream");
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.events().is_empty());
    let r = gw.call("local", &token, &session, "whoami_env").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the session ended with its process"
    );
    // A new session starts a new process.
    let again = gw.initialize("local", &token).await;
    assert_eq!(
        gw.call("local", &token, &again, "whoami_env").await.status,
        StatusCode::OK
    );
}
