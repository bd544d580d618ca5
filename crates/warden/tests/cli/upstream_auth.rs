//! Identity out in the machine modes: the gateway obtains an upstream's own credentials
//! from the upstream's authorization server. A second, separate Warden protects the demo
//! server and is the first one's upstream (`client-credentials`); a small authorization
//! server in the test stands in where a second Warden cannot (token exchange with another
//! issuer's subject tokens, metadata that must be refused).

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::support::*;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const ALLOW_LOOPBACK: (&str, &str) = ("WARDEN_REGISTRATION__FETCH_ALLOW_ADDRESSES", "127.0.0.1");

/// A confidential client of `f`'s Warden allowed `grants`, with `scopes`: (id, secret).
fn machine_client(f: &Fixture, name: &str, grants: &[&str], scopes: &[&str]) -> (String, String) {
    let mut c = warden(&f.dir);
    c.args(["--json", "client", "add", name, "--confidential"]);
    for g in grants {
        c.args(["--grant", g]);
    }
    for s in scopes {
        c.args(["--scope", s]);
    }
    let v: Value = serde_json::from_str(&ok(c, None)).unwrap();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Registers `upstream` in `f` as server `name` with the demo's read group and `extra`
/// flags, feeding `stdin` (the upstream client secret).
fn register(f: &Fixture, name: &str, upstream: &str, extra: &[&str], stdin: Option<&str>) {
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        name,
        "--upstream",
        upstream,
        "--scope",
        "notes:read=whoami,notes_list",
    ]);
    c.args(extra);
    ok(c, stdin);
}

/// The fixture client's token at `f`'s Warden for server `name`.
async fn token_for(http: &reqwest::Client, f: &Fixture, name: &str) -> String {
    let r: Value = http
        .post(format!("{}/oauth/token", f.base))
        .basic_auth(&f.client_id, Some(&f.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &format!("{}/mcp/{name}", f.base)),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

/// One `initialize` through `f`'s gateway to server `name`: status, headers, body.
async fn initialize(
    http: &reqwest::Client,
    f: &Fixture,
    name: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http
        .post(format!("{}/mcp/{name}", f.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(INIT)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, mcp_answer(&r.text().await.unwrap()))
}

/// A second Warden serving the demo server as `demo`, with a machine client for the first
/// Warden: the fixture, its server and the demo's processes, the client's id and secret.
fn second_warden() -> (Fixture, Server, Server, String, String) {
    let second = Fixture::new();
    let demo = spawn_demo_upstream(&second);
    register_demo(
        warden(&second.dir),
        "demo",
        &format!("{}/mcp", demo.base),
        &[],
    );
    let (id, secret) = machine_client(
        &second,
        "first-warden",
        &["client_credentials"],
        &["notes:read"],
    );
    let server = second.serve(&[]);
    (second, server, demo, id, secret)
}

/// Opens a session to `f`'s server `name` with the fixture client's token and calls
/// `whoami`: the session, the token, and the headers the upstream saw.
async fn whoami<'a>(
    http: &'a reqwest::Client,
    f: &Fixture,
    name: &str,
) -> (Mcp<'a>, String, Value) {
    let token = token_for(http, f, name).await;
    let url = format!("{}/mcp/{name}", f.base);
    let mut mcp = Mcp::open(http, &url, &token).await;
    let (status, who) = mcp
        .call(
            2,
            "tools/call",
            json!({ "name": "whoami", "arguments": {} }),
        )
        .await;
    assert_eq!(status, 200, "{who}");
    let seen = who["result"]["structuredContent"].clone();
    (mcp, token, seen)
}

/// Audit events of `kind` in `f`'s log.
fn events(f: &Fixture, kind: &str) -> Vec<Value> {
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", kind, "--limit", "1000"]);
    let page: Value = serde_json::from_str(&ok(c, None)).unwrap();
    page["events"].as_array().cloned().unwrap_or_default()
}

/// Waits until `f` has logged an event of `kind` for server `server` (the gateway's
/// events are written in the background), and returns them.
fn events_for(f: &Fixture, kind: &str, server: &str) -> Vec<Value> {
    for _ in 0..100 {
        let found: Vec<Value> = events(f, kind)
            .into_iter()
            .filter(|e| e["server"] == server)
            .collect();
        if !found.is_empty() {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no {kind} event for {server}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_from_a_second_warden_reach_its_demo_server() {
    // The second Warden: the demo server behind it, and a machine client for the first.
    let (second, _second_server, demo, gw_id, gw_secret) = second_warden();
    let remote = format!("{}/mcp/demo", second.base);

    // The first Warden: the second's /mcp/demo as upstream, three times over (a fresh
    // cache for the concurrency check, and a wrong secret).
    let first = Fixture::new();
    let cc = |id: &str| {
        vec![
            "--upstream-auth".to_owned(),
            "client-credentials".to_owned(),
            "--upstream-client-id".to_owned(),
            id.to_owned(),
            "--upstream-client-secret-stdin".to_owned(),
            "--upstream-scope".to_owned(),
            "notes:read".to_owned(),
        ]
    };
    let args = cc(&gw_id);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let secret_line = format!("{gw_secret}\n");
    register(&first, "remote", &remote, &args, Some(&secret_line));
    register(&first, "burst", &remote, &args, Some(&secret_line));
    register(
        &first,
        "badsecret",
        &remote,
        &args,
        Some("not-the-secret\n"),
    );
    // The secret is sealed and shown back only as "set".
    let mut c = warden(&first.dir);
    c.args(["--json", "server", "show", "remote"]);
    let shown = ok(c, None);
    assert!(!shown.contains(&gw_secret), "{shown}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["settings"]["upstream_client_secret"], "set");
    assert_eq!(shown["settings"]["upstream_auth"], "client-credentials");
    let _first_server = first.serve(&[ALLOW_LOOPBACK]);

    let http = reqwest::Client::new();
    let (mut mcp, token, who) = whoami(&http, &first, "remote").await;
    let seen = who.to_string();
    assert!(
        !seen.contains(&token),
        "the client's token went upstream: {seen}"
    );
    // The demo saw the second Warden's assertion, made from the token the second Warden
    // issued to the first: its issuer, its client.
    let authorization = who["authorization"]
        .as_str()
        .unwrap_or_else(|| panic!("no authorization seen: {who}"));
    let assertion = claims(authorization.strip_prefix("Bearer ").unwrap());
    assert_eq!(assertion["iss"], second.base, "{assertion}");
    assert_ne!(assertion["iss"], first.base);
    assert_eq!(assertion["client_id"], gw_id.as_str());
    assert_eq!(assertion["sub"], gw_id.as_str());
    assert_eq!(assertion["aud"], format!("{}/mcp", demo.base));
    for i in 3..6 {
        let (status, body) = mcp
            .call(
                i,
                "tools/call",
                json!({ "name": "notes_list", "arguments": {} }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // One token for all those calls: the second Warden issued exactly one to the first.
    let issued = |f: &Fixture| {
        events(f, "token.issued")
            .into_iter()
            .filter(|e| e["client_id"] == gw_id.as_str())
            .count()
    };
    assert_eq!(issued(&second), 1);
    let obtained = events_for(&first, "upstream.credential.obtained", "remote");
    assert_eq!(obtained.len(), 1);
    assert_eq!(obtained[0]["detail"]["issuer"], second.base);
    assert!(!obtained[0].to_string().contains(&gw_secret));

    // Twenty concurrent first calls to a server with an empty cache: one token request.
    let burst_token = token_for(&http, &first, "burst").await;
    let calls = (0..20).map(|_| {
        let (http, first, t) = (&http, &first, burst_token.clone());
        async move { initialize(http, first, "burst", &t).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        issued(&second),
        2,
        "single flight: one more token, not twenty"
    );

    // A wrong secret: the second Warden refuses the first, the client gets a 502
    // JSON-RPC error (its own token is fine), and the failure is audited.
    let bad_token = token_for(&http, &first, "badsecret").await;
    let (status, headers, body) = initialize(&http, &first, "badsecret", &bad_token).await;
    assert_eq!(status, 502, "{body}");
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 1);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{body}"
    );
    let failed = events_for(&first, "upstream.credential.failed", "badsecret");
    assert_eq!(failed[0]["detail"]["reason"], "refused");
    assert!(
        failed[0]["detail"]["detail"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{failed:?}"
    );
    let metrics = http
        .get(format!("{}/metrics", first.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "warden_upstream_credential_failures_total{server=\"badsecret\",reason=\"refused\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_refuses_private_addresses_unless_allowed() {
    let (second, _second_server, _demo, gw_id, gw_secret) = second_warden();
    let first = Fixture::new();
    register(
        &first,
        "remote",
        &format!("{}/mcp/demo", second.base),
        &[
            "--upstream-auth",
            "client-credentials",
            "--upstream-client-id",
            &gw_id,
            "--upstream-client-secret-stdin",
        ],
        Some(&format!("{gw_secret}\n")),
    );
    // Without registration.fetch_allow_addresses, a loopback AS is not reached.
    let server = first.serve(&[]);
    let http = reqwest::Client::new();
    let token = token_for(&http, &first, "remote").await;
    let (status, _, body) = initialize(&http, &first, "remote", &token).await;
    assert_eq!(status, 502, "{body}");
    let failed = events_for(&first, "upstream.credential.failed", "remote");
    let detail = failed[0]["detail"]["detail"].as_str().unwrap();
    assert!(detail.contains("private, loopback"), "{detail}");
    assert!(events(&second, "token.issued")
        .iter()
        .all(|e| e["client_id"] != gw_id.as_str()));
    drop(server);
    // Allowed, the same registration works.
    let _server = first.serve(&[ALLOW_LOOPBACK]);
    let (status, _, body) = initialize(&http, &first, "remote", &token).await;
    assert_eq!(status, 200, "{body}");
}

/// A stand-in authorization server (and protected resource) on loopback: serves its
/// metadata, a protected-resource metadata document and a token endpoint, and records
/// every token request.
struct Peer {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A request the peer received.
#[derive(Clone, Debug)]
struct Request {
    head: String,
    form: Vec<(String, String)>,
}

/// What the peer's documents say, when they should be refused.
#[derive(Clone, Default)]
struct Lies {
    /// The `issuer` its metadata names, instead of its own.
    issuer: Option<String>,
    /// The `resource` its protected-resource metadata names, instead of `/mcp`'s.
    resource: Option<String>,
}

impl Peer {
    fn start(lies: Lies) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (base.clone(), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, r, lies) = (b.clone(), Arc::clone(&r), lies.clone());
                std::thread::spawn(move || serve_one(stream, &b, &r, &lies));
            }
        });
        Self { base, requests }
    }

    fn token_requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.head.starts_with("POST /token"))
            .cloned()
            .collect()
    }
}

impl Request {
    fn field(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    }
}

fn serve_one(mut s: std::net::TcpStream, base: &str, log: &Mutex<Vec<Request>>, lies: &Lies) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let form = url::form_urlencoded::parse(&buf[head_end..head_end + length])
        .into_owned()
        .collect();
    let request = Request { head, form };
    let path = request.head.split(' ').nth(1).unwrap_or("/").to_owned();
    log.lock().unwrap().push(request.clone());
    let (status, extra, body) = match path.as_str() {
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => (
            "200 OK",
            String::new(),
            json!({
                "issuer": lies.issuer.clone().unwrap_or_else(|| base.to_owned()),
                "token_endpoint": format!("{base}/token"),
            }),
        ),
        "/.well-known/oauth-protected-resource/mcp" => (
            "200 OK",
            String::new(),
            json!({
                "resource": lies.resource.clone().unwrap_or_else(|| format!("{base}/mcp")),
                "authorization_servers": [base],
            }),
        ),
        "/mcp" => (
            "401 Unauthorized",
            format!(
                "www-authenticate: Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"\r\n"
            ),
            json!({}),
        ),
        "/token" => {
            let n = log.lock().unwrap().len();
            (
                "200 OK",
                String::new(),
                json!({
                    "access_token": format!("peer-token-{n}"),
                    "token_type": "Bearer",
                    "expires_in": 600,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                }),
            )
        }
        _ => ("404 Not Found", String::new(), json!({})),
    };
    let body = body.to_string();
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_sends_a_warden_subject_token_and_the_upstream_gets_the_peer_token() {
    let f = Fixture::new();
    let demo = spawn_demo_upstream(&f);
    let peer = Peer::start(Lies::default());
    register(
        &f,
        "exchanged",
        &format!("{}/mcp", demo.base),
        &[
            "--upstream-auth",
            "token-exchange",
            "--upstream-client-id",
            "warden-at-peer",
            "--upstream-client-secret-stdin",
            "--upstream-scope",
            "crm.read",
            "--upstream-issuer",
            &peer.base,
        ],
        Some("peer-s3cret\n"),
    );
    let _server = f.serve(&[ALLOW_LOOPBACK]);
    let http = reqwest::Client::new();
    let (mut mcp, token, seen) = whoami(&http, &f, "exchanged").await;
    let exchanged = peer.token_requests();
    assert_eq!(exchanged.len(), 1, "{exchanged:?}");
    let t = &exchanged[0];
    // The upstream got the peer's token, and the assertion beside it.
    assert_eq!(seen["authorization"], "Bearer peer-token-2", "{seen}");
    let assertion = seen["x-warden-assertion"].as_str().unwrap();
    assert_eq!(
        claims(assertion.strip_prefix("Bearer ").unwrap())["iss"],
        f.base
    );
    assert!(!seen.to_string().contains(&token));
    // The exchange, by the book: Warden authenticated as its client there, for the
    // upstream, with a subject token Warden signed for the caller, for the peer.
    let basic = t
        .head
        .lines()
        .find_map(|l| l.strip_prefix("authorization: Basic "))
        .unwrap();
    use base64::Engine as _;
    let pair = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .unwrap();
    assert_eq!(pair, b"warden-at-peer:peer-s3cret");
    assert_eq!(
        t.field("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(
        t.field("resource"),
        Some(format!("{}/mcp", demo.base).as_str())
    );
    assert_eq!(t.field("scope"), Some("crm.read"));
    assert_eq!(
        t.field("subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(t.field("actor_token"), None);
    let subject = claims(t.field("subject_token").unwrap());
    assert_eq!(subject["iss"], f.base);
    assert_eq!(subject["aud"], peer.base);
    assert_eq!(subject["sub"], f.client_id.as_str());
    assert_eq!(subject["client_id"], f.client_id.as_str());
    assert!(subject["exp"].as_i64().unwrap() - subject["iat"].as_i64().unwrap() <= 300);
    // Cached per user: another call asks nothing more.
    let (status, _) = mcp
        .call(
            3,
            "tools/call",
            json!({ "name": "notes_list", "arguments": {} }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(peer.token_requests().len(), 1);
    let obtained = events_for(&f, "upstream.credential.obtained", "exchanged");
    assert_eq!(obtained[0]["subject"], f.client_id.as_str());
    assert!(!obtained[0].to_string().contains("peer-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_that_does_not_match_and_an_unreachable_as_are_refused() {
    let f = Fixture::new();
    let demo = spawn_demo_upstream(&f);
    let liar = Peer::start(Lies {
        issuer: Some("https://someone-else.example".into()),
        ..Lies::default()
    });
    let elsewhere = Peer::start(Lies {
        resource: Some("https://another-resource.example/mcp".into()),
        ..Lies::default()
    });
    let closed = free_port();
    let client = |issuer: Option<&str>| {
        let mut a = vec![
            "--upstream-auth".to_owned(),
            "client-credentials".to_owned(),
            "--upstream-client-id".to_owned(),
            "w".to_owned(),
            "--upstream-client-secret-stdin".to_owned(),
        ];
        if let Some(i) = issuer {
            a.extend(["--upstream-issuer".to_owned(), i.to_owned()]);
        }
        a
    };
    let demo_url = format!("{}/mcp", demo.base);
    for (name, upstream, issuer) in [
        ("wrongissuer", demo_url.clone(), Some(liar.base.clone())),
        ("wrongresource", format!("{}/mcp", elsewhere.base), None),
        (
            "unreachable",
            demo_url.clone(),
            Some(format!("http://127.0.0.1:{closed}")),
        ),
    ] {
        let args = client(issuer.as_deref());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        register(&f, name, &upstream, &args, Some("s\n"));
    }
    let _server = f.serve(&[ALLOW_LOOPBACK]);
    let http = reqwest::Client::new();

    let refused = |name: &'static str, needle: &'static str| {
        let (http, f) = (&http, &f);
        async move {
            let token = token_for(http, f, name).await;
            let (status, headers, body) = initialize(http, f, name, &token).await;
            assert_eq!(status, 502, "{name}: {body}");
            assert!(headers.get("www-authenticate").is_none());
            assert_eq!(body["id"], 1);
            let failed = events_for(f, "upstream.credential.failed", name);
            let detail = failed[0]["detail"]["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains(needle), "{name}: {detail}");
        }
    };
    refused("wrongissuer", "names issuer").await;
    assert!(liar.token_requests().is_empty(), "no token asked of a liar");
    refused("wrongresource", "names resource").await;
    assert!(elsewhere.token_requests().is_empty());

    // Unreachable: 503 with Retry-After, never a 401.
    let token = token_for(&http, &f, "unreachable").await;
    let (status, headers, body) = initialize(&http, &f, "unreachable", &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.get("retry-after").is_some());
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(body["id"], 1);
    let failed = events_for(&f, "upstream.credential.failed", "unreachable");
    assert_eq!(failed[0]["detail"]["reason"], "unavailable");
}

#[test]
fn registration_checks_the_upstream_auth_flags() {
    let f = Fixture::new();
    let add = |extra: &[&str]| {
        let mut c = warden(&f.dir);
        c.args([
            "server",
            "add",
            "x",
            "--upstream",
            "https://up.example/mcp",
            "--scope",
            "x:read=t",
        ]);
        c.args(extra);
        c
    };
    let e = fails(add(&["--upstream-auth", "client-credentials"]));
    assert!(
        e.contains("upstream_client_id and upstream_client_secret"),
        "{e}"
    );
    let e = fails(add(&["--upstream-auth", "oauth"]));
    assert!(e.contains("not supported yet"), "{e}");
    let e = fails(add(&["--upstream-auth", "static"]));
    assert!(e.contains("static needs static_headers"), "{e}");
    let e = fails(add(&["--upstream-client-id", "w"]));
    assert!(
        e.contains("applies to upstream_auth client-credentials"),
        "{e}"
    );
    // A stdio upstream has no authorization server.
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "y",
        "--upstream",
        "stdio:true",
        "--scope",
        "y:read=t",
        "--upstream-auth",
        "client-credentials",
        "--upstream-client-id",
        "w",
        "--upstream-client-secret-stdin",
    ]);
    let out = run(c, Some("s\n"));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("needs an http(s) upstream"),
        "{e}"
    );
    // Update: switching back to the assertion drops the client settings.
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "z",
        "--upstream",
        "https://up.example/mcp",
        "--scope",
        "z:read=t",
        "--upstream-auth",
        "token-exchange",
        "--upstream-client-id",
        "w",
        "--upstream-client-secret-stdin",
    ]);
    ok(c, Some("s3cret-value\n"));
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "update",
        "z",
        "--upstream-scope",
        "a",
        "--upstream-scope",
        "b",
    ]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "show", "z"]);
    let shown: Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(shown["settings"]["upstream_scopes"], json!(["a", "b"]));
    assert_eq!(shown["settings"]["upstream_client_secret"], "set");
    let mut c = warden(&f.dir);
    c.args(["server", "update", "z", "--upstream-auth", "assertion"]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "show", "z"]);
    let shown: Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(shown["settings"]["upstream_auth"], "assertion");
    assert!(
        shown["settings"].get("upstream_client_id").is_none(),
        "{shown}"
    );
}
