//! A Warden app on a temporary SQLite store with a manual clock, and a tiny browser.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use warden_core::clock::ManualClock;
use warden_core::config::Config;
use warden_core::keys::{MasterKey, SigningAlg};
use warden_core::pkce;
use warden_core::secret::{generate, SecretKind};
use warden_server::App;
use warden_store::{
    ClientRecord, ClientSecret, ClientStore, ServerRecord, ServerStore, Store, ToolGroup,
    UserRecord, UserStore,
};

pub const T0: i64 = 1_800_000_000;
pub const BASE: &str = "http://127.0.0.1:8080";
pub const NOTES: &str = "http://127.0.0.1:8080/mcp/notes";
pub const OTHER: &str = "http://127.0.0.1:8080/mcp/other";
pub const VAULT: &str = "http://127.0.0.1:8080/mcp/vault";
pub const REDIRECT: &str = "http://127.0.0.1:5555/callback";
pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub struct H {
    pub app: App,
    pub router: Router,
    pub master: MasterKey,
    pub clock: ManualClock,
    pub store: Store,
    pub _dir: tempfile::TempDir,
    /// Public app client (authorization_code + refresh_token).
    pub public: String,
    /// Confidential machine client (client_credentials), with its secret.
    pub machine: (String, String),
    /// A second confidential client allowed to introspect everything.
    pub introspector: (String, String),
    /// A confidential web client (authorization_code + refresh), with its secret.
    pub web: (String, String),
}

fn server(name: &str, groups: &[(&str, &[&str])]) -> ServerRecord {
    ServerRecord {
        name: name.into(),
        canonical_uri: format!("{BASE}/mcp/{name}"),
        upstream: "http://127.0.0.1:9/mcp".into(),
        tool_groups: groups
            .iter()
            .map(|(s, t)| ToolGroup {
                scope: (*s).into(),
                tools: t.iter().map(|x| (*x).into()).collect(),
            })
            .collect(),
        token_format: "jwt".into(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings: serde_json::json!({}),
        created_at: T0,
        updated_at: T0,
    }
}

impl H {
    pub async fn new() -> H {
        H::with(&[]).await
    }

    pub async fn with(env: &[(&str, &str)]) -> H {
        H::with_base(BASE, env).await
    }

    pub async fn with_base(base: &str, env: &[(&str, &str)]) -> H {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::load(&Config::template(base), env, dir.path()).unwrap();
        let store = Store::open(config.database.url.expose()).await.unwrap();
        let master = MasterKey::generate().unwrap();
        warden_server::keyring::create_key(&store, &master.sealer(), SigningAlg::Es256, T0, T0, T0)
            .await
            .unwrap();
        ServerStore::create(
            &store,
            &server(
                "notes",
                &[
                    ("notes:read", &["notes_list", "notes_read"]),
                    ("notes:write", &["notes_write"]),
                ],
            ),
        )
        .await
        .unwrap();
        ServerStore::create(&store, &server("other", &[("other:use", &["x"])]))
            .await
            .unwrap();
        let mut vault = server("vault", &[("vault:read", &["secrets_read"])]);
        vault.token_format = "opaque".into();
        ServerStore::create(&store, &vault).await.unwrap();
        let hasher = master.secret_hasher();
        let mk = |id: &str,
                  confidential: bool,
                  grants: &[&str],
                  scopes: &[&str],
                  secret: Option<&str>| ClientRecord {
            client_id: id.into(),
            name: format!("{id} app"),
            confidential,
            redirect_uris: vec![REDIRECT.into()],
            grant_types: grants.iter().map(|g| (*g).into()).collect(),
            scopes: scopes.iter().map(|s| (*s).into()).collect(),
            token_endpoint_auth_method: if confidential {
                "client_secret_basic".into()
            } else {
                "none".into()
            },
            secrets: secret
                .map(|s| {
                    vec![ClientSecret {
                        id: format!("{id}-s"),
                        hash: hasher.hash(s),
                        created_at: T0,
                        expires_at: None,
                    }]
                })
                .unwrap_or_default(),
            metadata: serde_json::json!({}),
            created_at: T0,
            updated_at: T0,
            last_used_at: None,
        };
        let secret = || {
            generate(SecretKind::ClientSecret)
                .unwrap()
                .expose()
                .to_owned()
        };
        let (ms, is, ws) = (secret(), secret(), secret());
        ClientStore::create(
            &store,
            &mk(
                "pub",
                false,
                &["authorization_code", "refresh_token"],
                &[],
                None,
            ),
        )
        .await
        .unwrap();
        ClientStore::create(
            &store,
            &mk(
                "machine",
                true,
                &["client_credentials"],
                &["notes:read", "vault:read"],
                Some(&ms),
            ),
        )
        .await
        .unwrap();
        ClientStore::create(
            &store,
            &mk(
                "introspector",
                true,
                &["client_credentials"],
                &["warden:introspect"],
                Some(&is),
            ),
        )
        .await
        .unwrap();
        ClientStore::create(
            &store,
            &mk(
                "web",
                true,
                &["authorization_code", "refresh_token"],
                &[],
                Some(&ws),
            ),
        )
        .await
        .unwrap();
        let user = UserRecord {
            id: "u_alice".into(),
            username: "alice".into(),
            password_hash: warden_core::password::hash(PASSWORD).unwrap(),
            groups: vec![],
            disabled: false,
            created_at: T0,
            updated_at: T0,
        };
        UserStore::create(&store, &user).await.unwrap();
        let clock = ManualClock::at(T0);
        let app = App::new(config, store.clone(), &master, Arc::new(clock.clone()))
            .await
            .unwrap();
        let router = warden_server::router(app.clone())
            .layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        H {
            app,
            router,
            master,
            clock,
            store,
            _dir: dir,
            public: "pub".into(),
            machine: ("machine".into(), ms),
            introspector: ("introspector".into(), is),
            web: ("web".into(), ws),
        }
    }

    /// A second replica: another app on the same database, master key and clock.
    pub async fn replica(&self) -> Router {
        let app = App::new(
            self.app.config.clone(),
            self.store.clone(),
            &self.master,
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap();
        warden_server::router(app).layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 2], 4000))))
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        Self::send_to(&self.router, req).await
    }

    /// Sends `req` through `router` (a replica's), as [`H::send`] does.
    pub async fn send_to(router: &Router, req: Request<Body>) -> Resp {
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

    pub async fn get(&self, path: &str, jar: &Jar) -> Resp {
        let req = Request::get(path)
            .header(header::COOKIE, jar.header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        jar: &Jar,
        basic: Option<(&str, &str)>,
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, jar.header());
        if let Some((id, secret)) = basic {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {enc}"));
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// A DPoP proof by `key` for a token request now.
    pub fn token_proof(&self, key: &warden_core::keys::SigningKey, jti: &str) -> String {
        let claims = crate::proofs::proof_claims(
            "POST",
            &format!("{BASE}/oauth/token"),
            None,
            self.clock_now(),
            jti,
        );
        crate::proofs::proof(key, &claims)
    }

    /// `POST /oauth/token` with form fields, optionally HTTP Basic and a DPoP proof.
    pub async fn token_dpop(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        proof: Option<&str>,
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {enc}"));
        }
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// `POST /oauth/token` with form fields, optionally with HTTP Basic.
    pub async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        self.post_form("/oauth/token", form, &Jar::default(), basic)
            .await
    }

    /// The authorize URL for the public client.
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        self.authorize_url_for(&self.public, extra)
    }

    /// The authorize URL for `client_id` (redirect [`REDIRECT`], resource [`NOTES`]).
    pub fn authorize_url_for(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let challenge = pkce::s256(VERIFIER);
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("state", "st4te"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", NOTES),
        ]);
        let mut url = format!("/oauth/authorize?{}", q.finish());
        for (k, v) in extra {
            url.push('&');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(k, v)
                    .finish(),
            );
        }
        url
    }

    /// Signs in as alice on a login page and returns the next response.
    pub async fn sign_in(&self, page: &Resp, jar: &mut Jar, password: &str) -> Resp {
        jar.absorb(page);
        let r = self
            .post_form(
                "/oauth/login",
                &[
                    ("pending", &page.field("pending")),
                    ("csrf", &page.field("csrf")),
                    ("username", "alice"),
                    ("password", password),
                ],
                jar,
                None,
            )
            .await;
        jar.absorb(&r);
        r
    }

    /// Runs authorize → sign-in → consent(allow) and returns the code from the redirect.
    pub async fn code_for(&self, extra: &[(&str, &str)], jar: &mut Jar) -> String {
        let public = self.public.clone();
        self.code_for_client(&public, extra, jar).await
    }

    /// [`H::code_for`] for any client.
    pub async fn code_for_client(
        &self,
        client_id: &str,
        extra: &[(&str, &str)],
        jar: &mut Jar,
    ) -> String {
        let r = self
            .get(&self.authorize_url_for(client_id, extra), jar)
            .await;
        let r = if r.body.contains("name=\"password\"") {
            self.sign_in(&r, jar, PASSWORD).await
        } else {
            r
        };
        let r = if r.body.contains("name=\"decision\"") {
            jar.absorb(&r);
            self.post_form(
                "/oauth/consent",
                &[
                    ("pending", &r.field("pending")),
                    ("csrf", &r.field("csrf")),
                    ("decision", "allow"),
                ],
                jar,
                None,
            )
            .await
        } else {
            r
        };
        let q = r.location_query();
        assert_eq!(
            q.get("state").map(String::as_str),
            Some("st4te"),
            "{:?} {}",
            r.status,
            r.body
        );
        assert_eq!(q.get("iss").map(String::as_str), Some(BASE));
        q.get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code: {q:?}"))
    }

    /// Exchanges `code` as the public client.
    pub async fn exchange(&self, code: &str) -> Resp {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
                ("client_id", &self.public),
            ],
            None,
        )
        .await
    }

    /// A full flow: access and refresh token.
    pub async fn tokens(&self) -> (String, String) {
        let mut jar = Jar::default();
        let code = self.code_for(&[], &mut jar).await;
        let r = self.exchange(&code).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let j = r.json();
        (
            j["access_token"].as_str().unwrap().into(),
            j["refresh_token"].as_str().unwrap().into(),
        )
    }

    pub async fn refresh(&self, rt: &str, extra: &[(&str, &str)]) -> Resp {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", self.public.as_str()),
        ];
        form.extend_from_slice(extra);
        self.token(&form, None).await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let (id, s) = &self.introspector;
        let r = self
            .post_form(
                "/oauth/introspect",
                &[("token", token)],
                &Jar::default(),
                Some((id, s)),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `POST path` with a JSON body and extra headers.
    pub async fn post_json(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// Every audit event of `kind`.
    pub async fn audit_events(&self, kind: &str) -> Vec<warden_store::AuditEvent> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let f = warden_store::AuditFilter {
            limit: Some(10_000),
            ..Default::default()
        };
        warden_store::AuditStore::query(&self.store, &f)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    pub async fn audit_kinds(&self) -> Vec<String> {
        // Gateway/login events are queued without waiting; give the writer a moment.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let f = warden_store::AuditFilter {
            limit: Some(10_000),
            ..Default::default()
        };
        warden_store::AuditStore::query(&self.store, &f)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// A hidden form field's value.
    pub fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + needle.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
    }

    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body))
    }

    pub fn location_query(&self) -> HashMap<String, String> {
        let loc = self.location();
        let url = url::Url::parse(&loc).unwrap();
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Cookies, as a browser would keep them.
#[derive(Default, Clone)]
pub struct Jar(HashMap<String, String>);

impl Jar {
    pub fn absorb(&mut self, r: &Resp) {
        for v in r.headers.get_all(header::SET_COOKIE) {
            let text = v.to_str().unwrap();
            let (kv, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || text.contains("Max-Age=0") {
                self.0.remove(k);
            } else {
                self.0.insert(k.into(), v.into());
            }
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}
