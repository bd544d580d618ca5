//! `serve` on a real socket, spoken to with hyper's HTTP/1.1 client.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use warden_demo::{serve_with_state, DemoState};

use crate::support::{initialize_request, parse_sse, ACCEPT_BOTH};

/// The one JSON-RPC message of an SSE reply body.
fn sse_message(body: &[u8]) -> Value {
    let text = std::str::from_utf8(body).unwrap();
    let events = parse_sse(text);
    assert_eq!(events.len(), 1, "{text}");
    serde_json::from_str(&events[0].data).unwrap()
}

async fn connect<B>(addr: std::net::SocketAddr) -> SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

fn post(session: Option<&str>, body: &Value) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH)
        .header(header::AUTHORIZATION, "Bearer minted-by-gateway")
        .header("x-warden-sub", "user-7");
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test]
async fn serve_speaks_http_and_shuts_down_gracefully() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let state = DemoState::new();
    let server = tokio::spawn(serve_with_state(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let mut client = connect(addr).await;
    let response = client
        .send_request(post(None, &initialize_request("2025-06-18")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = sse_message(&body);
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");

    let whoami = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}
    });
    let response = client
        .send_request(post(Some(&session), &whoami))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = sse_message(&body);
    assert_eq!(
        body["result"]["structuredContent"],
        json!({"authorization": "Bearer minted-by-gateway", "x-warden-sub": "user-7"})
    );

    // An open GET stream must not hold graceful shutdown hostage.
    let mut streamer = connect::<Empty<Bytes>>(addr).await;
    let get = Request::builder()
        .method(Method::GET)
        .uri("/mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::ACCEPT, "text/event-stream")
        .header("mcp-session-id", &session)
        .body(Empty::new())
        .unwrap();
    let stream = tokio::time::timeout(Duration::from_secs(5), streamer.send_request(get))
        .await
        .expect("the GET stream's headers arrive before any event")
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(state.session_count(), 1);

    stop.send(()).unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), stream.into_body().collect())
        .await
        .expect("the GET stream ends on shutdown")
        .unwrap()
        .to_bytes();
    assert!(body.is_empty(), "{body:?}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn serve_with_a_fresh_state_answers_healthz() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(warden_demo::serve(listener, async {
        let _ = stopped.await;
    }));
    let mut client = connect::<Empty<Bytes>>(addr).await;
    let healthz = Request::builder()
        .uri("/healthz")
        .header(header::HOST, "127.0.0.1")
        .body(Empty::new())
        .unwrap();
    let response = client.send_request(healthz).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(client);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}
