//! SSE: progress-reporting tool calls and the `GET` stream, in-process over the router.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use warden_demo::{router, DemoState};

use crate::support::*;

fn call_with_progress(name: &str, arguments: Value, token: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 42,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": token}}
    })
}

fn get_stream(session: Option<&str>, accept: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri("/mcp");
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    if let Some(accept) = accept {
        builder = builder.header(header::ACCEPT, accept);
    }
    builder.body(Body::empty()).unwrap()
}

/// Reads the next body chunk as text, failing after a generous timeout.
async fn next_chunk(body: &mut Body) -> Option<String> {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the stream went quiet")?;
    let data = frame.unwrap().into_data().unwrap();
    Some(String::from_utf8(data.to_vec()).unwrap())
}

async fn sse_events(response: Response) -> Vec<SseEvent> {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    parse_sse(&text)
}

fn event_ids(events: &[SseEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.clone().unwrap()).collect()
}

#[tokio::test]
async fn a_progress_token_turns_tools_call_into_an_sse_stream() {
    let app = app();
    let session = initialize(&app).await;
    let body = call_with_progress(
        "notes_write",
        json!({"title": "t", "body": "b"}),
        json!("p-1"),
    );
    let response = rpc(&app, Some(&session), body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_events(response).await;
    assert_eq!(events.len(), 4, "{events:?}");

    let messages: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (step, progress) in messages[..3].iter().enumerate() {
        assert_eq!(progress["method"], "notifications/progress");
        assert!(progress.get("id").is_none());
        assert_eq!(progress["params"]["progressToken"], "p-1");
        // rmcp carries progress as a JSON float.
        assert_eq!(
            progress["params"]["progress"].as_f64(),
            Some(step as f64 + 1.0)
        );
        assert_eq!(progress["params"]["total"].as_f64(), Some(3.0));
    }
    let response = &messages[3];
    assert_eq!(response["id"], 42);
    assert_eq!(response["result"]["isError"], false);
    assert_eq!(response["result"]["structuredContent"]["id"], "3");

    // Every event has an id, unique in the stream (rmcp's `<n>/<stream>` ids).
    let ids = event_ids(&events);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 4, "{ids:?}");
}

#[tokio::test]
async fn each_progress_stream_has_its_own_event_ids() {
    let app = app();
    let session = initialize(&app).await;
    let mut ids = BTreeSet::new();
    for token in [json!(1), json!(2)] {
        let body = call_with_progress("notes_list", json!({}), token.clone());
        let events = sse_events(rpc(&app, Some(&session), body).await).await;
        assert_eq!(events.len(), 4);
        let first: Value = serde_json::from_str(&events[0].data).unwrap();
        assert_eq!(first["params"]["progressToken"], token);
        ids.extend(event_ids(&events));
    }
    // Unique across the session's streams, as resumption needs.
    assert_eq!(ids.len(), 8, "{ids:?}");
}

#[tokio::test]
async fn protocol_errors_arrive_as_the_final_event() {
    let app = app();
    let session = initialize(&app).await;
    let body = call_with_progress("nope", json!({}), json!("t"));
    let events = sse_events(rpc(&app, Some(&session), body).await).await;
    assert_eq!(events.len(), 4);
    let last: Value = serde_json::from_str(&events[3].data).unwrap();
    assert_eq!(last["id"], 42);
    assert_eq!(last["error"]["code"], -32602);
}

#[tokio::test]
async fn a_progress_call_from_a_client_refusing_sse_is_not_acceptable() {
    let app = app();
    let session = initialize(&app).await;
    let body = call_with_progress("notes_list", json!({}), json!("t"));
    let mut request = post(Some(&session))
        .body(Body::from(body.to_string()))
        .unwrap();
    request
        .headers_mut()
        .insert(header::ACCEPT, "application/json".parse().unwrap());
    let (status, _) = refusal(send(&app, request).await).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn get_requires_accepting_event_streams_and_a_live_session() {
    let app = app();
    let session = initialize(&app).await;
    for accept in [None, Some("application/json")] {
        let response = send(&app, get_stream(Some(&session), accept)).await;
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE, "{accept:?}");
    }
    let response = send(&app, get_stream(None, Some("text/event-stream"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let response = send(&app, get_stream(Some(unknown), Some("text/event-stream"))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_get_stream_keeps_alive_until_the_session_is_deleted() {
    let app = router(DemoState::new().with_keepalive(Duration::from_millis(20)));
    let session = initialize(&app).await;
    let response = send(&app, get_stream(Some(&session), Some("text/event-stream"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    // Keepalives are empty SSE comments.
    let mut body = response.into_body();
    assert_eq!(next_chunk(&mut body).await.as_deref(), Some(":\n\n"));
    assert_eq!(next_chunk(&mut body).await.as_deref(), Some(":\n\n"));

    let delete = Request::builder()
        .method(Method::DELETE)
        .uri("/mcp")
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, delete).await.status(), StatusCode::ACCEPTED);
    // At most one keepalive may already be in flight; then the stream ends.
    let mut rest = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        rest.push(chunk);
    }
    assert!(rest.len() <= 1, "{rest:?}");
}

#[tokio::test]
async fn close_streams_ends_get_streams_and_last_event_id_is_accepted() {
    let state = DemoState::new().with_keepalive(Duration::from_secs(3600));
    let app = router(state.clone());
    let session = initialize(&app).await;
    let mut request = get_stream(Some(&session), Some("text/event-stream"));
    request
        .headers_mut()
        .insert("last-event-id", "abc-3".parse().unwrap());
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    state.close_streams();
    assert_eq!(next_chunk(&mut body).await, None);
}
