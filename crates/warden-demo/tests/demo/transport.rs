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

    let body = json_body(response).await;
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
        let body = json_body(rpc(&app, None, initialize_request(version)).await).await;
        assert_eq!(body["result"]["protocolVersion"], *version);
    }
    let body = json_body(rpc(&app, None, initialize_request("2024-11-05")).await).await;
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn initialize_without_a_protocol_version_fails_and_starts_no_session() {
    let state = DemoState::new();
    let app = router(state.clone());
    let response = rpc(&app, None, request("initialize", json!({}))).await;
    assert!(response.headers().get("mcp-session-id").is_none());
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32602);
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
    let response = rpc(&app, None, request("tools/list", json!({}))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["id"], Value::Null);
    assert_eq!(body["error"]["code"], -32000);

    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = rpc(&app, None, notification).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let unknown = "00000000-0000-4000-8000-000000000000";
    let response = rpc(&app, Some(unknown), request("tools/list", json!({}))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["error"]["code"], -32001);
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
    let body = json_body(rpc(&app, Some(&session), request("ping", json!({}))).await).await;
    assert_eq!(body, json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
}

#[tokio::test]
async fn unknown_methods_get_method_not_found() {
    let app = app();
    let session = initialize(&app).await;
    let response = rpc(&app, Some(&session), request("logging/setLevel", json!({}))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32601);
}

#[tokio::test]
async fn batches_are_rejected() {
    let app = app();
    let session = initialize(&app).await;
    let batch = json!([request("ping", json!({})), request("tools/list", json!({}))]);
    let response = rpc(&app, Some(&session), batch).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["id"], Value::Null);
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let app = app();
    let request = post(None)
        .body(Body::from("{\"jsonrpc\": \"2.0\", \"id\": 1,"))
        .unwrap();
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}})
    );
}

#[tokio::test]
async fn json_that_is_not_jsonrpc_is_an_invalid_request() {
    let app = app();
    let response = rpc(&app, None, json!({"id": 5, "method": "initialize"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["id"], 5);
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
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, with_charset).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn accept_is_lenient_for_plain_clients_but_not_for_unusable_types() {
    let app = app();
    let body = initialize_request("2025-11-25").to_string();
    for accept in [Some("*/*"), None, Some("application/json")] {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        let response = send(&app, builder.body(Body::from(body.clone())).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(
            json_body(response).await["result"]["protocolVersion"],
            "2025-11-25"
        );
    }
    let refused = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "image/png")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(
        send(&app, refused).await.status(),
        StatusCode::NOT_ACCEPTABLE
    );
}

#[tokio::test]
async fn a_client_that_only_accepts_sse_gets_its_reply_as_one_event() {
    let app = app();
    let body = initialize_request("2025-11-25");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert!(response.headers().contains_key("mcp-session-id"));
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 1, "{text}");
    let message: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(message["result"]["serverInfo"]["name"], "warden-demo");
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
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(state.session_count(), 0);

    let response = rpc(&app, Some(&session), request("ping", json!({}))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = send(&app, delete(Some(&session))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
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
    assert_eq!(json_body(response).await, json!({"status": "ok"}));

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
