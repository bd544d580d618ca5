//! Helpers shared by the demo's tests: building MCP requests and reading replies.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_demo::{router, DemoState};

/// What MCP clients send on POST.
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A router over a fresh state.
pub fn app() -> Router {
    router(DemoState::new())
}

/// A POST to `/mcp` carrying `body`, with the `Accept` and `Content-Type` an MCP client
/// sends and, when given, a session id.
pub fn post(session: Option<&str>) -> axum::http::request::Builder {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH);
    if let Some(session) = session {
        builder = builder
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    builder
}

/// Sends a request through the router, with the loopback `Host` a client of a server on
/// 127.0.0.1 sends unless the request names another.
pub async fn send(app: &Router, mut request: Request<Body>) -> Response {
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, "127.0.0.1:8931".parse().unwrap());
    }
    app.clone().oneshot(request).await.unwrap()
}

/// Posts one JSON-RPC message.
pub async fn rpc(app: &Router, session: Option<&str>, body: Value) -> Response {
    let request = post(session).body(Body::from(body.to_string())).unwrap();
    send(app, request).await
}

/// Runs `initialize` and `notifications/initialized`; returns the session id.
pub async fn initialize(app: &Router) -> String {
    let response = rpc(app, None, initialize_request("2025-11-25")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("initialize sets Mcp-Session-Id")
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = rpc(app, Some(&session), initialized).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    session
}

pub fn initialize_request(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "warden-demo-tests", "version": "0" }
        }
    })
}

/// A request with `id` 1.
pub fn request(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
}

/// Calls a tool over an initialized session and returns the JSON-RPC response.
pub async fn call_tool(app: &Router, session: &str, name: &str, arguments: Value) -> Value {
    let body = request(
        "tools/call",
        json!({ "name": name, "arguments": arguments }),
    );
    reply(rpc(app, Some(session), body).await).await
}

/// The whole body, as bytes.
pub async fn body_bytes(response: Response) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// The JSON-RPC messages of an SSE reply, in order.
pub async fn sse_messages(response: Response) -> Vec<Value> {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    parse_sse(&text)
        .iter()
        .filter(|event| !event.data.is_empty())
        .map(|event| serde_json::from_str(&event.data).unwrap())
        .collect()
}

/// The one JSON-RPC message of a reply (the demo answers every request as an SSE
/// stream).
pub async fn reply(response: Response) -> Value {
    let mut messages = sse_messages(response).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    messages.remove(0)
}

/// The status and text of a refusal the transport sent before any method ran.
pub async fn refusal(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    (status, text)
}

/// One parsed SSE event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: String,
    pub comments: Vec<String>,
}

/// Parses an SSE body (as the WHATWG spec describes, minus `retry` and `event`).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut current = SseEvent::default();
    let mut data_lines: Vec<String> = Vec::new();
    let mut touched = false;
    for line in text.lines() {
        if line.is_empty() {
            if touched {
                current.data = data_lines.join("\n");
                events.push(std::mem::take(&mut current));
                data_lines.clear();
                touched = false;
            }
            continue;
        }
        touched = true;
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => current.comments.push(value.to_owned()),
            "id" => current.id = Some(value.to_owned()),
            "data" => data_lines.push(value.to_owned()),
            _ => {}
        }
    }
    events
}

/// The text of a tool result's first content item, parsed as JSON.
pub fn tool_text_json(response: &Value) -> Value {
    let text = response["result"]["content"][0]["text"].as_str().unwrap();
    serde_json::from_str(text).unwrap()
}
