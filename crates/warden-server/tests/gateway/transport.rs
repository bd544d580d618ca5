//! The streaming proxy: headers, SSE, errors, Origin and CORS, limits.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;
use warden_demo::DemoState;

use crate::support::*;

/// Identity a client claims in headers never reaches the upstream: the echo upstream
/// reports every header it received, and each spoofed one is absent or, for the
/// gateway's own `x-warden-*` headers, carries the validated token's values.
#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    gw.register_upstream("echo", &echo, json!({})).await;
    let token = gw.token("echo", "notes:read").await;
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});
    let spoofed = [
        ("x-user", "admin"),
        ("x-forwarded-user", "admin"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-warden-subject", "mallory"),
        ("x-warden-client-id", "mallory-cli"),
        ("x-warden-scope", "notes:admin"),
        ("x-warden-assertion", "Bearer forged"),
        ("x-remote-user", "admin"),
        ("x-auth-request-user", "admin"),
        ("x-authenticated-userid", "admin"),
        ("x-ssl-client-cert", "forged"),
        ("proxy-authorization", "Basic bWFsbG9yeTp4"),
        ("forwarded", "for=10.0.0.1;user=admin"),
        ("cookie", "session=stolen"),
    ];
    let mut req = gw.post("echo", Some(&token), None);
    for (name, value) in spoofed {
        req = req.header(name, value);
    }
    let r = gw
        .send(req.body(Body::from(body.to_string())).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = r.json()["result"]["headers"].clone();
    assert!(
        seen.is_object() && seen.get("mcp-protocol-version").is_some(),
        "{seen}"
    );
    for (name, _) in spoofed {
        if name.starts_with("x-warden-") {
            continue;
        }
        assert!(
            seen.get(name).is_none(),
            "{name} reached the upstream: {seen}"
        );
    }
    assert_eq!(seen["x-warden-subject"], "alice");
    assert_eq!(seen["x-warden-client-id"], "cli");
    assert_eq!(seen["x-warden-scope"], "notes:read");
    assert!(seen.get("x-warden-assertion").is_none(), "{seen}");
    let assertion = seen["authorization"].as_str().unwrap();
    assert!(assertion.starts_with("Bearer ey") && !assertion.contains(&token));
    for value in ["mallory", "stolen", "forged", "10.0.0.1", "bWFsbG9yeTp4"] {
        assert!(!seen.to_string().contains(value), "{value}: {seen}");
    }
}

#[tokio::test]
async fn protocol_headers_pass_and_others_are_cleaned() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    gw.register_upstream(
        "echo",
        &echo,
        json!({"static_headers": {"x-api-key": "upstream-secret"}}),
    )
    .await;
    let token = gw.token("echo", "notes:read").await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t"}});
    let req = gw
        .post("echo", Some(&token), None)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "t")
        .header("last-event-id", "ev-9")
        .header("accept-encoding", "gzip")
        .header("x-api-key", "client-supplied")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = r.json()["result"]["headers"].clone();
    assert_eq!(seen["mcp-protocol-version"], "2025-11-25");
    assert_eq!(seen["mcp-method"], "tools/call");
    assert_eq!(seen["mcp-name"], "t");
    assert_eq!(seen["last-event-id"], "ev-9");
    assert_eq!(
        seen["x-api-key"], "upstream-secret",
        "configured credential, not the client's"
    );
    assert!(seen["traceparent"].is_string());
    assert!(seen.get("accept-encoding").is_none());
    assert!(seen["authorization"]
        .as_str()
        .unwrap()
        .starts_with("Bearer "));
    assert!(!r.body.contains(&token));
    assert!(
        r.headers.get("set-cookie").is_none(),
        "upstream cookies are dropped"
    );

    // An upstream that rejects the gateway's credentials is a gateway problem: 502.
    let req = gw
        .post("echo", Some(&token), None)
        .header("x-test-status", "401")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn a_static_authorization_moves_the_assertion() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    gw.register_upstream(
        "echo",
        &echo,
        json!({"static_headers": {"authorization": "Bearer svc"}}),
    )
    .await;
    let token = gw.token("echo", "notes:read").await;
    let r = gw
        .rpc(
            "echo",
            Some(&token),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    let seen = r.json()["result"]["headers"].clone();
    assert_eq!(seen["authorization"], "Bearer svc");
    assert!(seen["x-warden-assertion"]
        .as_str()
        .unwrap()
        .starts_with("Bearer ey"));
}

#[tokio::test]
async fn mirrored_headers_must_match_the_body() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read notes:admin").await;
    let session = gw.initialize("notes", &token).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin_reset"}});
    for (method, name) in [("tools/call", "notes_list"), ("tools/list", "admin_reset")] {
        let req = gw
            .post("notes", Some(&token), Some(&session))
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(Body::from(body.to_string()))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["error"]["code"], -32020);
        assert_eq!(r.json()["id"], 1);
    }
}

#[tokio::test]
async fn upstream_down_is_502_with_a_json_rpc_error() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("down", "notes:read").await;
    let r = gw
        .rpc(
            "down",
            Some(&token),
            None,
            json!({"jsonrpc": "2.0", "id": "x-1", "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let body = r.json();
    assert_eq!(body["id"], "x-1");
    assert_eq!(body["error"]["code"], -32000);
    let req = Request::get("/mcp/down")
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Body::empty())
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn upstream_timeout_is_504_with_a_json_rpc_error() {
    let gw = Gw::start(json!({})).await;
    let silent = silent_upstream().await;
    gw.register_upstream("slow", &silent, json!({"upstream_timeout_secs": 1}))
        .await;
    let token = gw.token("slow", "notes:read").await;
    let r = gw
        .rpc(
            "slow",
            Some(&token),
            None,
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.json()["id"], 3);
}

#[tokio::test]
async fn sse_progress_stream_passes_through_with_every_event() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let body = json!({"jsonrpc": "2.0", "id": 21, "method": "tools/call",
                      "params": {"name": "notes_list", "arguments": {}, "_meta": {"progressToken": "p-1"}}});
    let r = gw.rpc("notes", Some(&token), Some(&session), body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    let events = r.events();
    assert_eq!(events.len(), 4, "{}", r.body);
    for (i, e) in events[..3].iter().enumerate() {
        assert_eq!(e["method"], "notifications/progress");
        assert_eq!(e["params"]["progressToken"], "p-1");
        // rmcp carries progress as a JSON float.
        assert_eq!(e["params"]["progress"].as_f64(), Some(i as f64 + 1.0));
    }
    assert_eq!(events[3]["id"], 21);
    assert!(events[3]["result"]["structuredContent"]["notes"].is_array());
}

#[tokio::test]
async fn get_stream_is_long_lived_and_unbuffered() {
    let demo = DemoState::new().with_keepalive(Duration::from_millis(20));
    let gw = Gw::start_with(json!({}), demo).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let req = Request::get("/mcp/notes")
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    let resp = gw.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = resp.into_body();
    // Several keepalives arrive one by one while the stream stays open.
    let mut seen = 0;
    while seen < 3 {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a keepalive within 5 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            // The demo's keepalives are empty SSE comments.
            assert_eq!(&data[..], b":\n\n");
            seen += 1;
        }
    }
}

#[tokio::test]
async fn notifications_get_202() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let r = gw
        .rpc(
            "notes",
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn origin_is_validated_before_anything_else() {
    let gw = Gw::start(json!({"allowed_origins": ["https://console.example"]})).await;
    let token = gw.token("notes", "notes:read").await;
    let ping = initialize_request(json!({})).to_string();
    for (origin, expected) in [
        ("https://evil.example", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:8080.evil.example", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        (BASE, StatusCode::OK),
        ("http://localhost:6274", StatusCode::OK),
        ("https://console.example", StatusCode::OK),
    ] {
        let req = gw
            .post("notes", Some(&token), None)
            .header(header::ORIGIN, origin)
            .body(Body::from(ping.clone()))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, expected, "{origin}");
        if expected == StatusCode::OK {
            assert_eq!(r.header("access-control-allow-origin"), origin);
            let exposed = r
                .header("access-control-expose-headers")
                .to_ascii_lowercase();
            assert!(exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"));
        }
    }
    // Refused before authentication: a bad origin without a token is 403, not 401.
    let req = Request::post("/mcp/notes")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(ping.clone()))
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::FORBIDDEN);
    // A browser can read the 401 challenge.
    let req = Request::post("/mcp/notes")
        .header(header::ORIGIN, BASE)
        .body(Body::from(ping))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), BASE);
}

#[tokio::test]
async fn cors_preflight() {
    let gw = Gw::start(json!({})).await;
    let req = Request::options("/mcp/notes")
        .header(header::ORIGIN, "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id",
        )
        .body(Body::empty())
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "http://localhost:6274"
    );
    assert!(r.header("access-control-allow-methods").contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .contains("mcp-session-id"));
    let req = Request::options("/mcp/notes")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let big = "x".repeat(5 * 1024 * 1024);
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": big}}).to_string();
    let req = gw
        .post("notes", Some(&token), None)
        .body(Body::from(body))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"]["message"], "Payload Too Large");
    assert_eq!(r.header("connection"), "close", "the rest is left unread");
    // Between the AS's 1 MiB limit and the gateway's 4 MiB: accepted.
    let token2 = gw.token("notes", "notes:read").await;
    // (The demo itself takes up to axum's default 2 MB.)
    let mid = "y".repeat(1536 * 1024);
    let body = initialize_request(json!({ "pad": mid })).to_string();
    let req = gw
        .post("notes", Some(&token2), None)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn decisions_are_audited_without_token_material() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    gw.call("notes", &token, &session, "notes_list").await;
    gw.call("notes", &token, &session, "admin_reset").await;
    gw.app.shutdown().await;
    let events = warden_store::AuditStore::query(&gw.store, &warden_store::AuditFilter::default())
        .await
        .unwrap();
    let gateway: Vec<_> = events
        .iter()
        .filter(|e| e.kind.starts_with("gateway."))
        .collect();
    assert!(gateway.len() >= 3, "{gateway:?}");
    let allow = gateway
        .iter()
        .find(|e| e.detail["target"] == "tool notes_list")
        .expect("allow event");
    assert_eq!(allow.kind, "gateway.allow");
    assert_eq!(allow.subject.as_deref(), Some("alice"));
    assert_eq!(allow.client_id.as_deref(), Some("cli"));
    assert_eq!(allow.server.as_deref(), Some("notes"));
    assert_eq!(allow.detail["method"], "tools/call");
    let deny = gateway
        .iter()
        .find(|e| e.kind == "gateway.deny")
        .expect("deny event");
    assert!(deny.detail["reason"]
        .as_str()
        .unwrap()
        .contains("notes:admin"));
    for e in &gateway {
        let text = e.detail.to_string();
        assert!(!text.contains(&token) && !text.contains(&session));
        // The detail, written as text straight from the gateway's struct, hashes as an
        // outside verifier re-serialises it.
        assert_eq!(warden_store::audit_event_hash(e).to_vec(), e.hash);
    }
    let report = warden_store::AuditStore::verify(&gw.store).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!(report.checked, events.len() as u64);
}

/// A listener answers `/mcp/{name}` without the router (`warden_server::Dispatch`); the
/// same endpoint spelled so that only the router can read it, a percent-encoded name,
/// still reaches it there, with the same answers, and both count under one metrics label.
#[tokio::test]
async fn direct_dispatch_and_the_router_answer_alike() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    for server in ["notes", "no%74es"] {
        let r = gw
            .rpc(
                server,
                None,
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{server}: {}", r.body);
        let challenge = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains("/.well-known/oauth-protected-resource/mcp/notes"),
            "{server}: {challenge}"
        );
        let r = gw.initialize_with(server, &token, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{server}: {}", r.body);
        assert!(r.headers.contains_key("mcp-session-id"), "{server}");
    }
    // Neither an empty name nor a deeper path is the gateway's endpoint.
    for path in ["/mcp/", "/mcp/notes/extra"] {
        let req = Request::post(path).body(Body::empty()).unwrap();
        assert_eq!(gw.send(req).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let text = gw.app.metrics.render();
    for (status, count) in [("401", 2), ("200", 2)] {
        let line = format!(
            r#"warden_http_requests_total{{route="/mcp/{{name}}",method="POST",status="{status}"}} {count}"#
        );
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// Layers are declared in one place and the direct `/mcp/{name}` service runs under
/// them as the router's routes do: the trace layer, declared only there, records a
/// request that `Dispatch` answered without the router.
#[tokio::test]
async fn the_direct_gateway_service_runs_under_every_layer() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let gw = Gw::start(json!({})).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let (r, misplaced) = {
        // This test's runtime runs on this thread only.
        let _guard = tracing::subscriber::set_default(subscriber);
        let r = gw.rpc("notes", None, None, ping.clone()).await;
        // A token in the query string is refused, and never written to the request's span.
        let req = Request::post("/mcp/notes?access_token=leaked-query-token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(ping.to_string()))
            .unwrap();
        (r, gw.send(req).await)
    };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(misplaced.status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines().any(|l| l.contains("path=/mcp/notes")
            && l.contains("finished processing request")
            && l.contains("status=401")),
        "{text}"
    );
    assert!(!text.contains("leaked-query-token"), "{text}");
}

/// `warden_server::serve::serve`, the listener `warden serve` runs: it answers HTTP/1.1
/// and HTTP/2 with prior knowledge, and on shutdown closes idle keep-alive connections,
/// lets a request in flight finish, and then returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_and_drains_its_connections_on_shutdown() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let gw = Gw::start(json!({})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(warden_server::serve::serve(
        listener,
        gw.app.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    // HTTP/2, prior knowledge.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Body>();
    let resp = h2
        .request(
            Request::get(format!("http://{addr}/healthz"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), axum::http::Version::HTTP_2);
    drop(h2);

    // HTTP/1.1: one connection answered and left idle, one with a request in flight.
    async fn read_answer(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = vec![0; 8192];
        let n = conn.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut idle).await.starts_with("HTTP/1.1 200"));
    let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
    let form = b"grant_type=client_credentials";
    busy.write_all(
        format!(
            "POST /oauth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
            form.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    stop.send(()).unwrap();
    // The idle connection is closed (end of stream, no answer).
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection was not closed")
        .unwrap();
    assert!(rest.is_empty());
    // The request in flight is still answered (no client credentials: 401), then the
    // connection closes and `serve` returns.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!server.is_finished());
    busy.write_all(form).await.unwrap();
    let answer = read_answer(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve did not return after its connections closed")
        .unwrap()
        .unwrap();
}

/// Every request is one decision, counted and audited: a server nobody registered is a
/// `deny` (under one fixed metrics label, whatever name was asked for, the name itself
/// truncated in the audit detail), a registration that cannot be used and an upstream
/// that fails are an `error`, never an `allow`.
#[tokio::test]
async fn unknown_unavailable_and_failing_servers_are_counted_and_audited() {
    let gw = Gw::start(json!({})).await;
    let broken = record("broken", &gw.upstream, json!({"upstream_ca": 5}));
    warden_store::ServerStore::create(&gw.store, &broken)
        .await
        .unwrap();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let long = format!("x{}", "y".repeat(127));
    for (server, status) in [
        ("nosuch", StatusCode::NOT_FOUND),
        (long.as_str(), StatusCode::NOT_FOUND),
        ("broken", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let r = gw.rpc(server, None, None, ping.clone()).await;
        assert_eq!(r.status, status, "{server}: {}", r.body);
    }
    let req = Request::post("/mcp/nosuch/message?sessionId=x")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(ping.to_string()))
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::NOT_FOUND);
    let token = gw.token("down", "notes:read").await;
    let r = gw.rpc("down", Some(&token), None, ping.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);

    let text = gw.app.metrics.render();
    for line in [
        r#"warden_gateway_decisions_total{server="(unknown)",decision="deny"} 3"#,
        r#"warden_gateway_decisions_total{server="(unavailable)",decision="error"} 1"#,
        r#"warden_gateway_decisions_total{server="down",decision="error"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(!text.contains("nosuch") && !text.contains("yyyy"), "{text}");

    gw.app.shutdown().await;
    let events = warden_store::AuditStore::query(&gw.store, &warden_store::AuditFilter::default())
        .await
        .unwrap();
    let requested = |name: &str| {
        events
            .iter()
            .filter(|e| e.detail["requested_server"] == name)
            .collect::<Vec<_>>()
    };
    let unknown = requested("nosuch");
    assert_eq!(unknown.len(), 2, "{events:?}");
    for e in unknown {
        assert_eq!(e.kind, "gateway.deny");
        assert_eq!(e.server, None);
        assert_eq!(e.detail["status"], 404);
    }
    let truncated: String = long.chars().take(64).collect();
    assert_eq!(requested(&truncated).len(), 1, "{events:?}");
    let unavailable = requested("broken");
    assert_eq!(unavailable.len(), 1, "{events:?}");
    assert_eq!(unavailable[0].kind, "gateway.error");
    assert_eq!(unavailable[0].detail["status"], 503);
    let failed = events
        .iter()
        .find(|e| e.server.as_deref() == Some("down"))
        .expect("the upstream failure is audited");
    assert_eq!(failed.kind, "gateway.error");
    assert_eq!(failed.detail["decision"], "error");
    assert_eq!(failed.subject.as_deref(), Some("alice"));
    let report = warden_store::AuditStore::verify(&gw.store).await.unwrap();
    assert_eq!(report.first_broken, None);
}

/// Starts `warden_server::serve::serve` for `gw` on a fresh listener; its address.
async fn listen(gw: &Gw) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warden_server::serve::serve(
        listener,
        gw.app.clone(),
        std::future::pending(),
    ));
    addr
}

/// One HTTP/1.1 answer read from `conn`: its head (lowercase) and body (by
/// `content-length`); an empty head if the connection closed first.
async fn read_http_answer<R: tokio::io::AsyncRead + Unpin>(conn: &mut R) -> (String, String) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return (String::new(), String::new()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    (head, body)
}

/// A POST refused before its body is read (here: no token) leaves a keep-alive
/// connection able to carry the next request: a small body is read and dropped, and
/// the answer to a large one says `Connection: close`. The body arrives after a pause,
/// as it does from a client that sends headers and body in separate writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_refusal_keeps_the_connection_usable_or_closes_it() {
    use tokio::io::AsyncWriteExt as _;

    let gw = Gw::start(json!({})).await;
    let addr = listen(&gw).await;
    for size in [64usize, 1024 * 1024] {
        let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = conn.into_split();
        let head = format!(
            "POST /mcp/notes HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             accept: {ACCEPT_BOTH}\r\ncontent-length: {size}\r\n\r\n"
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = wr.write_all(&vec![b' '; size]).await;
            wr
        });
        let (first, _) = tokio::time::timeout(Duration::from_secs(10), read_http_answer(&mut rd))
            .await
            .expect("no answer");
        assert!(first.starts_with("http/1.1 401"), "{size}: {first}");
        let mut wr = writer.await.unwrap();
        if first.contains("\r\nconnection: close\r\n") {
            assert!(
                size > 64 * 1024,
                "a small body is read, not a reason to close"
            );
            continue;
        }
        let again = wr
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await;
        let (second, _) = tokio::time::timeout(Duration::from_secs(10), read_http_answer(&mut rd))
            .await
            .expect("no second answer");
        assert!(
            again.is_ok() && second.starts_with("http/1.1 200"),
            "{size}: the connection closed without saying so: {second:?}"
        );
    }
}
