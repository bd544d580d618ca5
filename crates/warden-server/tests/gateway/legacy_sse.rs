//! The legacy HTTP+SSE transport (MCP 2024-11-05) through the gateway: the `endpoint`
//! event rewritten to a MAC-bound gateway URL, every POSTed message authorized, answers
//! (filtered) over the event stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::routing;
use axum::{Json, Router};
use futures_util::{stream, Stream, StreamExt as _};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::ServiceExt as _;

use crate::support::*;

/// A minimal legacy MCP server: `GET /sse` (and `/events`) opens a session whose first
/// event names `/messages?sessionId=…`; POSTs there are answered on the stream.
#[derive(Clone, Default)]
struct Legacy {
    sessions: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Value>>>>,
    /// Methods of the messages received, in order.
    received: Arc<Mutex<Vec<String>>>,
    next: Arc<AtomicUsize>,
    /// Answer requests in the POST's own response (as JSON) instead of on the stream.
    inline: bool,
}

async fn open(State(l): State<Legacy>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = format!("sess-{}", l.next.fetch_add(1, Ordering::SeqCst));
    let (tx, rx) = mpsc::unbounded_channel();
    l.sessions.lock().unwrap().insert(id.clone(), tx);
    let first = stream::once(async move {
        Ok(Event::default()
            .event("endpoint")
            .data(format!("/messages?sessionId={id}")))
    });
    let rest = stream::unfold(rx, |mut rx| async move {
        let message = rx.recv().await?;
        Some((
            Ok(Event::default().event("message").data(message.to_string())),
            rx,
        ))
    });
    Sse::new(first.chain(rest))
}

async fn message(
    State(l): State<Legacy>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(msg): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(tx) = q
        .get("sessionId")
        .and_then(|id| l.sessions.lock().unwrap().get(id).cloned())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let method = msg["method"].as_str().unwrap_or("").to_owned();
    l.received.lock().unwrap().push(method.clone());
    if msg.get("id").is_none() {
        return StatusCode::ACCEPTED.into_response();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let tool = |name: &str| json!({"name": name, "inputSchema": {"type": "object"}});
    let result = match method.as_str() {
        "initialize" => json!({
            "protocolVersion": "2024-11-05",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "legacy", "version": "0"},
        }),
        "tools/list" => json!({"tools": [
            tool("whoami"), tool("notes_read"), tool("notes_write"), tool("admin_reset")
        ]}),
        "tools/call" => json!({
            "content": [{"type": "text", "text": format!("called {}", msg["params"]["name"])}],
            "structuredContent": {"authorization": authorization},
        }),
        _ => json!({}),
    };
    let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
    if l.inline {
        return Json(answer).into_response();
    }
    let _ = tx.send(answer);
    StatusCode::ACCEPTED.into_response()
}

/// Starts the legacy server; its base URL.
async fn legacy_upstream(l: Legacy) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/sse", routing::get(open))
        .route("/events", routing::get(open))
        .route("/messages", routing::post(message))
        .with_state(l);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An open event stream, read event by event.
struct EventStream {
    body: Body,
    buf: String,
}

impl EventStream {
    async fn open(gw: &Gw, server: &str, token: &str) -> EventStream {
        let req = Request::get(format!("/mcp/{server}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "text/event-stream")
            .body(Body::empty())
            .unwrap();
        let resp = gw.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        EventStream {
            body: Body::new(resp.into_body()),
            buf: String::new(),
        }
    }

    /// The next event: `(event type, data)`.
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let mut kind = "message".to_owned();
                let mut data = Vec::new();
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // a comment or keep-alive
                }
                return (kind, data.join("\n"));
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                .await
                .expect("no event within 5 s")
                .expect("the stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// The next JSON-RPC message on the stream.
    async fn message(&mut self) -> Value {
        let (kind, data) = self.next().await;
        assert_eq!(kind, "message");
        serde_json::from_str(&data).unwrap()
    }
}

/// The tool names of a `tools/list` answer, in order.
fn tool_names(listed: &Value) -> Vec<&str> {
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// POSTs `body` to the gateway's message URL `url` (absolute, from the endpoint event).
async fn send_message(gw: &Gw, url: &str, token: Option<&str>, body: Value) -> Resp {
    let path = url
        .strip_prefix(BASE)
        .expect("the endpoint is on the gateway");
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    gw.send(req.body(Body::from(body.to_string())).unwrap())
        .await
}

async fn legacy_gateway() -> (Gw, Legacy, String) {
    let gw = Gw::start(json!({})).await;
    let legacy = Legacy::default();
    let base = legacy_upstream(legacy.clone()).await;
    // Inferred from the path, and declared.
    for rec in [
        record("legacy", &format!("{base}/sse"), json!({})),
        record(
            "declared",
            &format!("{base}/events"),
            json!({"transport": "sse"}),
        ),
    ] {
        warden_store::ServerStore::create(&gw.store, &rec)
            .await
            .unwrap();
    }
    (gw, legacy, base)
}

#[tokio::test]
async fn a_legacy_session_is_authorized_message_by_message() {
    let (gw, legacy, base) = legacy_gateway().await;
    let token = gw.token("legacy", "notes:read").await;
    let mut events = EventStream::open(&gw, "legacy", &token).await;
    let (kind, endpoint) = events.next().await;
    assert_eq!(kind, "endpoint");
    let prefix = format!("{BASE}/mcp/legacy/message?sessionId=w1.");
    assert!(endpoint.starts_with(&prefix), "{endpoint}");
    assert!(
        !endpoint.contains("sess-") && !endpoint.contains(&base),
        "the upstream's endpoint is not revealed: {endpoint}"
    );

    let r = send_message(
        &gw,
        &endpoint,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "legacy-test", "version": "0"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        events.message().await["result"]["serverInfo"]["name"],
        "legacy"
    );
    let r = send_message(
        &gw,
        &endpoint,
        Some(&token),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    // The list, filtered on the stream: only what notes:read may call.
    send_message(
        &gw,
        &endpoint,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let listed = events.message().await;
    assert_eq!(tool_names(&listed), ["whoami", "notes_read"]);

    // A tool call, answered over the stream, reached the upstream with an assertion.
    let call = |id: u64, name: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": {}}})
    };
    let r = send_message(&gw, &endpoint, Some(&token), call(3, "whoami")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let answer = events.message().await;
    assert_eq!(answer["id"], 3);
    let seen = answer["result"]["structuredContent"]["authorization"]
        .as_str()
        .unwrap();
    assert!(
        seen.starts_with("Bearer ey") && !seen.contains(&token),
        "{seen}"
    );

    // A call the token lacks the scope for: refused at the gateway with the step-up.
    let before = legacy.received.lock().unwrap().len();
    let r = send_message(&gw, &endpoint, Some(&token), call(4, "notes_write")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
    assert!(r.header("www-authenticate").contains("notes:write"));
    assert_eq!(r.json()["id"], 4);
    assert_eq!(
        legacy.received.lock().unwrap().len(),
        before,
        "never forwarded"
    );

    // No token, another identity, a tampered session id: refused, never forwarded.
    assert_eq!(
        send_message(&gw, &endpoint, None, call(5, "whoami"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let bob = gw.token_for("bob", "cli", "legacy", "notes:read").await;
    assert_eq!(
        send_message(&gw, &endpoint, Some(&bob), call(6, "whoami"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let tampered = endpoint.replacen("sessionId=w1.", "sessionId=w1.A", 1);
    assert_eq!(
        send_message(&gw, &tampered, Some(&token), call(7, "whoami"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let other_server = endpoint.replacen("/mcp/legacy/", "/mcp/declared/", 1);
    assert_eq!(
        send_message(&gw, &other_server, Some(&token), call(8, "whoami"))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a token for another server"
    );
    assert_eq!(legacy.received.lock().unwrap().len(), before);
}

#[tokio::test]
async fn the_transport_is_declared_or_inferred_and_modern_requests_fall_back() {
    let (gw, _legacy, _) = legacy_gateway().await;
    let token = gw.token("declared", "notes:read").await;
    let mut events = EventStream::open(&gw, "declared", &token).await;
    let (kind, endpoint) = events.next().await;
    assert_eq!(kind, "endpoint");
    assert!(endpoint.starts_with(&format!("{BASE}/mcp/declared/message?sessionId=")));

    // A Streamable HTTP POST to a legacy server: 405, so clients fall back to GET.
    let r = gw.initialize_with("declared", &token, json!({})).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.body);
    // Without a token, the challenge comes first.
    let r = gw.initialize_with("declared", "", json!({})).await;
    assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // A Streamable HTTP server has no message endpoint.
    let notes = gw.token("notes", "notes:read").await;
    let r = send_message(
        &gw,
        &format!("{BASE}/mcp/notes/message?sessionId=x"),
        Some(&notes),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Declaring intended tools needs a transport that can carry the pin.
    let r = send_message(
        &gw,
        &endpoint,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {"experimental": {"warden/intendedTools": ["whoami"]}},
            "clientInfo": {"name": "legacy-test", "version": "0"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("Streamable HTTP"), "{}", r.body);
}

/// A legacy upstream that answers a POSTed `tools/list` in the POST's own response, not
/// on the stream: the answer goes through the same list filter as every other.
#[tokio::test]
async fn a_list_answered_in_the_post_itself_is_filtered_too() {
    let gw = Gw::start(json!({})).await;
    let inline = Legacy {
        inline: true,
        ..Legacy::default()
    };
    let base = legacy_upstream(inline).await;
    warden_store::ServerStore::create(
        &gw.store,
        &record("inline", &format!("{base}/sse"), json!({})),
    )
    .await
    .unwrap();
    let token = gw.token("inline", "notes:read").await;
    let mut events = EventStream::open(&gw, "inline", &token).await;
    let (kind, endpoint) = events.next().await;
    assert_eq!(kind, "endpoint");
    let r = send_message(
        &gw,
        &endpoint,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        tool_names(&r.json()),
        ["whoami", "notes_read"],
        "{}",
        r.body
    );
}
