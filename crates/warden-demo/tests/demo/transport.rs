//! The Streamable HTTP transport and lifecycle, in-process over the router.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use warden_demo::{router, DemoState, PROTOCOL_VERSIONS};

use crate::support::*;

#[tokio::test]
async fn initialize_starts_a_session_and_describes_the_server() {
    let app = app();
    let response = rpc(&app, None, initialize_request("2025-11-25")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(session.len(), 36, "a hyphenated UUID: {session}");
    assert!(session.bytes().all(|b| (0x21..=0x7e).contains(&b)));

    let body = reply(response).await;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 0);
    let result = &body["result"];
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert_eq!(result["serverInfo"]["name"], "warden-demo");
    assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        result["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    assert_eq!(result["capabilities"]["resources"], json!({}));
    assert_eq!(result["capabilities"]["prompts"], json!({}));
    assert!(result["capabilities"].get("logging").is_none());
    assert!(result["instructions"]
        .as_str()
        .unwrap()
        .contains("notes_write"));
}

#[tokio::test]
async fn initialize_negotiates_the_protocol_version() {
    let app = app();
    for version in PROTOCOL_VERSIONS {
        let body = reply(rpc(&app, None, initialize_request(version)).await).await;
        assert_eq!(body["result"]["protocolVersion"], *version);
    }
    let body = reply(rpc(&app, None, initialize_request("2024-11-05")).await).await;
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn initialize_without_a_protocol_version_fails_and_starts_no_session() {
    let state = DemoState::new();
    let app = router(state.clone());
    let response = rpc(&app, None, request("initialize", json!({}))).await;
    assert!(response.headers().get("mcp-session-id").is_none());
    // rmcp refuses params it cannot read before any method runs.
    let (status, _) = refusal(response).await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(state.session_count(), 0);
}

#[tokio::test]
async fn notifications_and_responses_are_accepted_with_202_and_no_body() {
    let app = app();
    let session = initialize(&app).await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}),
        json!({"jsonrpc": "2.0", "id": "server-1", "result": {}}),
        json!({"jsonrpc": "2.0", "id": "server-2", "error": {"code": -1, "message": "no"}}),
    ] {
        let response = rpc(&app, Some(&session), message).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(body_bytes(response).await.is_empty());
    }
}

#[tokio::test]
async fn requests_without_a_session_get_400_and_unknown_sessions_get_404() {
    let app = app();
    let (status, text) = refusal(rpc(&app, None, request("tools/list", json!({}))).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("Session ID is required"), "{text}");

    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = rpc(&app, None, notification).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let unknown = "00000000-0000-4000-8000-000000000000";
    let response = rpc(&app, Some(unknown), request("tools/list", json!({}))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_protocol_version_header_is_checked_when_present() {
    let app = app();
    let session = initialize(&app).await;
    let ping = request("ping", json!({}));

    let mut bad = post(Some(&session))
        .body(Body::from(ping.to_string()))
        .unwrap();
    bad.headers_mut()
        .insert("mcp-protocol-version", "1999-01-01".parse().unwrap());
    let response = send(&app, bad).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let mut absent = post(Some(&session))
        .body(Body::from(ping.to_string()))
        .unwrap();
    absent.headers_mut().remove("mcp-protocol-version");
    let response = send(&app, absent).await;
    assert_eq!(response.status(), StatusCode::OK);

    for version in PROTOCOL_VERSIONS {
        let mut older = post(Some(&session))
            .body(Body::from(ping.to_string()))
            .unwrap();
        older
            .headers_mut()
            .insert("mcp-protocol-version", version.parse().unwrap());
        assert_eq!(send(&app, older).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn ping_answers_an_empty_object() {
    let app = app();
    let session = initialize(&app).await;
    let body = reply(rpc(&app, Some(&session), request("ping", json!({}))).await).await;
    assert_eq!(body, json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
}

#[tokio::test]
async fn unknown_methods_get_method_not_found() {
    let app = app();
    let session = initialize(&app).await;
    let response = rpc(&app, Some(&session), request("logging/setLevel", json!({}))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = reply(response).await;
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32601);
}

/// rmcp refuses a body that is not one JSON-RPC message before any method runs, with a
/// 4xx and a plain-text reason (it answers 415, naming the deserialisation failure).
async fn assert_refused_body(app: &axum::Router, body: Body) {
    let (status, text) = refusal(send(app, post(None).body(body).unwrap()).await).await;
    assert!(status.is_client_error(), "{status}");
    assert!(text.contains("deserialize"), "{text}");
}

#[tokio::test]
async fn batches_are_rejected() {
    let state = DemoState::new();
    let app = router(state.clone());
    let batch = json!([initialize_request("2025-11-25"), request("ping", json!({}))]);
    assert_refused_body(&app, Body::from(batch.to_string())).await;
    assert_eq!(state.session_count(), 0);
}

#[tokio::test]
async fn malformed_json_and_json_that_is_not_jsonrpc_are_refused() {
    let state = DemoState::new();
    let app = router(state.clone());
    assert_refused_body(&app, Body::from("{\"jsonrpc\": \"2.0\", \"id\": 1,")).await;
    let not_jsonrpc = json!({"id": 5, "method": "initialize"});
    assert_refused_body(&app, Body::from(not_jsonrpc.to_string())).await;
    assert_eq!(state.session_count(), 0);
}

#[tokio::test]
async fn the_body_must_be_declared_as_json() {
    let app = app();
    let body = initialize_request("2025-11-25").to_string();
    for content_type in [Some("text/plain"), None] {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .header(header::ACCEPT, ACCEPT_BOTH);
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let response = send(&app, builder.body(Body::from(body.clone())).unwrap()).await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let with_charset = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::ACCEPT, ACCEPT_BOTH)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, with_charset).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_post_must_accept_both_json_and_event_streams() {
    let state = DemoState::new();
    let app = router(state.clone());
    let body = initialize_request("2025-11-25").to_string();
    let post_accepting = |accept: Option<&str>| {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        builder.body(Body::from(body.clone())).unwrap()
    };
    // The transport spec has the client list both; rmcp holds it to that.
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("text/event-stream"),
        Some("image/png"),
        Some("application/json;q=0, text/event-stream"),
    ] {
        let response = send(&app, post_accepting(accept)).await;
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE, "{accept:?}");
    }
    assert_eq!(state.session_count(), 0);
    for accept in [ACCEPT_BOTH, "text/event-stream;q=0.9,application/json"] {
        let response = send(&app, post_accepting(Some(accept))).await;
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        assert!(response.headers().contains_key("mcp-session-id"));
        let message = reply(response).await;
        assert_eq!(message["result"]["serverInfo"]["name"], "warden-demo");
    }
}

#[tokio::test]
async fn delete_ends_the_session() {
    let state = DemoState::new();
    let app = router(state.clone());
    let session = initialize(&app).await;
    assert_eq!(state.session_count(), 1);

    let delete = |session: Option<&str>| {
        let mut builder = Request::builder().method(Method::DELETE).uri("/mcp");
        if let Some(session) = session {
            builder = builder.header("mcp-session-id", session);
        }
        builder.body(Body::empty()).unwrap()
    };
    let response = send(&app, delete(Some(&session))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(state.session_count(), 0);

    let response = rpc(&app, Some(&session), request("ping", json!({}))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // rmcp answers a DELETE of a session it no longer has as it answers the first.
    let response = send(&app, delete(Some(&session))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = send(&app, delete(None)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_oldest_session_is_evicted_when_the_cap_is_reached() {
    let app = router(DemoState::new().with_max_sessions(1));
    let first = initialize(&app).await;
    let second = initialize(&app).await;
    let ping = || request("ping", json!({}));
    assert_eq!(
        rpc(&app, Some(&first), ping()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rpc(&app, Some(&second), ping()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn foreign_origins_are_forbidden_unless_allowed() {
    let body = initialize_request("2025-11-25");
    let with_origin = |origin: &str| {
        post(None)
            .header(header::ORIGIN, origin)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let app = app();
    let response = send(&app, with_origin("https://evil.example")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = send(&app, with_origin("http://localhost:6274")).await;
    assert_eq!(response.status(), StatusCode::OK);

    let open = router(DemoState::new().allow_any_origin());
    let response = send(&open, with_origin("https://evil.example")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn healthz_and_unsupported_methods() {
    let app = app();
    let healthz = Request::builder()
        .uri("/healthz")
        .body(Body::empty())
        .unwrap();
    let response = send(&app, healthz).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(body, json!({"status": "ok"}));

    let put = Request::builder()
        .method(Method::PUT)
        .uri("/mcp")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, put).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}
