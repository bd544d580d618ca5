//! A Warden app with a manual clock in front of a real `warden-demo` upstream on
//! 127.0.0.1, driven in-process with `oneshot`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt as _;
use warden_core::clock::ManualClock;
use warden_core::config::Config;
use warden_core::jwt::{self, VerifyingKey};
use warden_core::keys::{MasterKey, SigningAlg, SigningKey};
use warden_core::scope::ScopeSet;
use warden_demo::DemoState;
use warden_server::App;
use warden_store::{ServerRecord, ServerStore, Store, ToolGroup};

pub const T0: i64 = 1_800_000_000;
pub const BASE: &str = "http://127.0.0.1:8080";
pub const NOTES: &str = "http://127.0.0.1:8080/mcp/notes";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

pub struct Gw {
    pub app: App,
    pub router: warden_server::Dispatch,
    pub clock: ManualClock,
    pub store: Store,
    pub demo: DemoState,
    /// The demo's MCP endpoint.
    pub upstream: String,
    pub master: MasterKey,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub fn record(name: &str, upstream: &str, settings: Value) -> ServerRecord {
    ServerRecord {
        name: name.into(),
        canonical_uri: format!("{BASE}/mcp/{name}"),
        upstream: upstream.into(),
        tool_groups: warden_demo::TOOL_GROUPS
            .iter()
            .map(|(scope, tools)| ToolGroup {
                scope: (*scope).into(),
                tools: tools.iter().map(|t| (*t).into()).collect(),
            })
            .collect(),
        token_format: "jwt".into(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings,
        created_at: T0,
        updated_at: T0,
    }
}

/// A port nothing listens on.
pub async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

impl Gw {
    /// The gateway with servers `notes` (the demo, `settings`), `other` (the demo again,
    /// another audience) and `down` (nothing listening).
    pub async fn start(settings: Value) -> Gw {
        Gw::start_with(
            settings,
            DemoState::new().with_progress_delay(Duration::from_millis(1)),
        )
        .await
    }

    pub async fn start_with(settings: Value, demo: DemoState) -> Gw {
        Gw::start_configured(settings, demo, &[]).await
    }

    /// [`Gw::start`] with `WARDEN_*` configuration overrides.
    pub async fn start_env(settings: Value, env: &[(&str, &str)]) -> Gw {
        Gw::start_configured(
            settings,
            DemoState::new().with_progress_delay(Duration::from_millis(1)),
            env,
        )
        .await
    }

    pub async fn start_configured(settings: Value, demo: DemoState, env: &[(&str, &str)]) -> Gw {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(warden_demo::serve_with_state(
            listener,
            demo.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let upstream = format!("http://{addr}/mcp");

        let dir = tempfile::tempdir().unwrap();
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let config = Config::load(&Config::template(BASE), env, dir.path()).unwrap();
        let store = Store::open(config.database.url.expose()).await.unwrap();
        let master = MasterKey::generate().unwrap();
        warden_server::keyring::create_key(&store, &master.sealer(), SigningAlg::Es256, T0, T0, T0)
            .await
            .unwrap();
        let down = format!("http://127.0.0.1:{}/mcp", dead_port().await);
        for rec in [
            record("notes", &upstream, settings),
            record("other", &upstream, json!({})),
            record("down", &down, json!({})),
        ] {
            ServerStore::create(&store, &rec).await.unwrap();
        }
        let clock = ManualClock::at(T0);
        let app = App::new(config, store.clone(), &master, Arc::new(clock.clone()))
            .await
            .unwrap();
        // What a listener serves: the gateway's endpoint bypasses the router.
        let router = warden_server::Dispatch::with_router(
            app.clone(),
            warden_server::router(app.clone())
                .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000)))),
        );
        Gw {
            app,
            router,
            clock,
            store,
            demo,
            upstream,
            master,
            _dir: dir,
            _stop: stop,
        }
    }

    /// A second replica: another app on the same database, master key and clock, as
    /// `warden serve` on another host would be.
    pub async fn replica(&self) -> warden_server::Dispatch {
        let app = App::new(
            self.app.config.clone(),
            self.store.clone(),
            &self.master,
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap();
        warden_server::Dispatch::with_router(
            app.clone(),
            warden_server::router(app)
                .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4001)))),
        )
    }

    /// Sends `req` through `router` (a replica's), as [`Gw::send`] does.
    pub async fn send_to(router: &warden_server::Dispatch, req: Request<Body>) -> Resp {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn server(&self, name: &str) -> ServerRecord {
        ServerStore::get(&self.store, name).await.unwrap().unwrap()
    }

    /// A token for `alice` via client `cli`, minted by the authorization server's code.
    pub async fn token(&self, server: &str, scope: &str) -> String {
        self.token_for("alice", "cli", server, scope).await
    }

    pub async fn token_for(&self, sub: &str, client: &str, server: &str, scope: &str) -> String {
        let rec = self.server(server).await;
        warden_server::oauth::token::mint_access_token(
            &self.app,
            sub,
            client,
            &rec,
            &ScopeSet::parse(scope).unwrap(),
            self.clock.now_secs(),
            900,
        )
        .unwrap()
        .token
    }

    /// Valid claims for `notes`, to be altered and signed by a test.
    pub fn claims(&self, scope: &str) -> Map<String, Value> {
        let now = self.clock.now_secs();
        let v = json!({
            "iss": BASE, "sub": "alice", "aud": NOTES, "client_id": "cli",
            "scope": scope, "iat": now, "nbf": now, "exp": now + 900, "jti": format!("j-{now}-{scope}"),
        });
        v.as_object().unwrap().clone()
    }

    /// Signs `claims` with the gateway's own active key.
    pub fn sign(&self, claims: &Map<String, Value>, typ: &str) -> String {
        let key = self.app.keys.signing_key().unwrap();
        jwt::sign(claims, typ, &key).unwrap()
    }

    /// The published verification key.
    pub fn jwk(&self) -> Value {
        self.app.keys.jwks()["keys"][0].clone()
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        Gw::send_to(&self.router, req).await
    }

    /// A POST of `body` to `/mcp/{server}`.
    pub fn post(
        &self,
        server: &str,
        token: Option<&str>,
        session: Option<&str>,
    ) -> axum::http::request::Builder {
        let mut req = Request::post(format!("/mcp/{server}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH)
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req
    }

    pub async fn rpc(
        &self,
        server: &str,
        token: Option<&str>,
        session: Option<&str>,
        body: Value,
    ) -> Resp {
        let req = self
            .post(server, token, session)
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// Opens a session; returns the gateway's session id.
    pub async fn initialize(&self, server: &str, token: &str) -> String {
        let r = self.initialize_with(server, token, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.headers["mcp-session-id"].to_str().unwrap().to_owned()
    }

    pub async fn initialize_with(&self, server: &str, token: &str, capabilities: Value) -> Resp {
        self.rpc(
            server,
            Some(token),
            None,
            initialize_request(json!({ "capabilities": capabilities })),
        )
        .await
    }

    /// `tools/call` of `tool` in `session`.
    pub async fn call(&self, server: &str, token: &str, session: &str, tool: &str) -> Resp {
        self.rpc(
            server,
            Some(token),
            Some(session),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}}),
        )
        .await
    }
}

impl Resp {
    /// The JSON-RPC message of the answer: a JSON body, or the one message of an SSE
    /// stream (how the rmcp-based demo answers every request).
    pub fn json(&self) -> Value {
        let is_sse = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            let mut events = self.events();
            assert_eq!(events.len(), 1, "{}", self.body);
            return events.remove(0);
        }
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// The `data` of every SSE event, parsed.
    pub fn events(&self) -> Vec<Value> {
        self.body
            .split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
            })
            .collect()
    }
}

/// An `initialize` request (id 1) whose params are a valid client's, plus `extra`.
pub fn initialize_request(extra: Value) -> Value {
    let mut params = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": { "name": "gateway-tests", "version": "0" },
    });
    if let (Value::Object(params), Value::Object(extra)) = (&mut params, extra) {
        params.extend(extra);
    }
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params })
}

pub trait ClockExt {
    fn now_secs(&self) -> i64;
}

impl ClockExt for ManualClock {
    fn now_secs(&self) -> i64 {
        use warden_core::clock::Clock as _;
        self.now()
    }
}

/// Splits and decodes a JWT without verifying it.
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap()
    };
    (next(), next())
}

/// Compact JWS from a header and claims, with `signature` bytes.
pub fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A signing key the gateway has never seen.
pub fn foreign_key(kid: &str) -> SigningKey {
    SigningKey::generate(SigningAlg::Es256, kid.to_owned()).unwrap()
}

/// Verifies an assertion with the published key.
pub fn verify_assertion(jwk: &Value, token: &str, audience: &str, now: i64) -> Map<String, Value> {
    let key = VerifyingKey::from_jwk(jwk).unwrap();
    let v = jwt::Validation {
        algorithms: vec!["ES256".into()],
        typ: vec!["warden-assertion+jwt".into()],
        issuer: BASE.into(),
        audience: Some(audience.into()),
        leeway: 0,
    };
    jwt::verify(token, |_| vec![&key], &v, now).unwrap()
}

impl Gw {
    /// Registers another server in front of the demo, with these groups and settings.
    pub async fn register(&self, name: &str, groups: &[(&str, &[&str])], settings: Value) {
        let mut rec = record(name, &self.upstream, settings);
        rec.tool_groups = groups
            .iter()
            .map(|(scope, tools)| ToolGroup {
                scope: (*scope).into(),
                tools: tools.iter().map(|t| (*t).into()).collect(),
            })
            .collect();
        ServerStore::create(&self.store, &rec).await.unwrap();
    }
}

/// An upstream that answers every request with the headers it received, as a JSON-RPC
/// result; `initialize` gets session id `up-123`; `x-test-status` sets the status.
pub async fn echo_upstream() -> String {
    use axum::response::IntoResponse;
    async fn echo(headers: HeaderMap, body: axum::body::Bytes) -> axum::response::Response {
        let seen: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    Value::String(v.to_str().unwrap_or("?").to_owned()),
                )
            })
            .collect();
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let status = headers
            .get("x-test-status")
            .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
            .map_or(StatusCode::OK, |s| StatusCode::from_u16(s).unwrap());
        let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"headers": seen}});
        let mut resp = (status, axum::Json(reply)).into_response();
        if request["method"] == "initialize" {
            resp.headers_mut()
                .insert("mcp-session-id", "up-123".parse().unwrap());
        }
        resp.headers_mut()
            .insert("set-cookie", "upstream=1".parse().unwrap());
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", "Bearer realm=upstream".parse().unwrap());
        }
        resp
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/mcp", axum::routing::any(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

/// An upstream that accepts connections and never answers.
pub async fn silent_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/mcp")
}

impl Gw {
    /// Registers `name` in front of `upstream`, every tool allowed to any valid token.
    pub async fn register_upstream(&self, name: &str, upstream: &str, mut settings: Value) {
        settings["unmapped_tools"] = json!("allow");
        ServerStore::create(&self.store, &record(name, upstream, settings))
            .await
            .unwrap();
    }
}
