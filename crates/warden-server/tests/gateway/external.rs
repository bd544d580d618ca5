//! Servers whose tokens come from an external issuer: JWTs checked with its discovered,
//! cached JWKS, and opaque tokens introspected, both ways for every rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use warden_core::jwt;
use warden_core::keys::SigningKey;
use warden_core::secret::SecretHasher;
use warden_server::gateway::external::seal_secret;
use warden_store::ServerStore;

use crate::support::*;

const CLIENT_ID: &str = "warden-gateway";
const CLIENT_SECRET: &str = "idp-client-secret-0d5f9a";

/// A tiny external authorization server: discovery, JWKS and introspection, counting
/// every call.
#[derive(Default)]
struct IdpState {
    issuer: Mutex<String>,
    /// What the discovery document claims as `issuer`, if not the real one.
    claimed_issuer: Mutex<Option<String>>,
    /// Serve only the RFC 8414 document, not OpenID discovery.
    rfc8414_only: Mutex<bool>,
    keys: Mutex<Vec<SigningKey>>,
    jwks_calls: AtomicUsize,
    discovery_calls: AtomicUsize,
    introspections: AtomicUsize,
    /// Introspection answers by token; unknown tokens are inactive.
    answers: Mutex<HashMap<String, Value>>,
}

#[derive(Clone)]
struct Idp(Arc<IdpState>);

impl Idp {
    async fn start() -> Idp {
        let idp = Idp(Arc::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *idp.0.issuer.lock().unwrap() =
            format!("http://{}/realms/acme", listener.local_addr().unwrap());
        let app = Router::new()
            .route(
                "/realms/acme/.well-known/openid-configuration",
                get(oidc_discovery),
            )
            .route(
                "/.well-known/oauth-authorization-server/realms/acme",
                get(rfc8414_discovery),
            )
            .route("/realms/acme/jwks", get(jwks))
            .route("/realms/acme/introspect", post(introspect))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    fn issuer(&self) -> String {
        self.0.issuer.lock().unwrap().clone()
    }

    fn publish(&self, key: &SigningKey) {
        self.0
            .keys
            .lock()
            .unwrap()
            .push(SigningKey::from_pkcs8(key.alg(), key.kid().into(), key.pkcs8()).unwrap());
    }

    fn jwks_calls(&self) -> usize {
        self.0.jwks_calls.load(Ordering::SeqCst)
    }

    fn introspections(&self) -> usize {
        self.0.introspections.load(Ordering::SeqCst)
    }

    fn answer(&self, token: &str, answer: Value) {
        self.0.answers.lock().unwrap().insert(token.into(), answer);
    }
}

fn metadata(idp: &Idp) -> Value {
    let issuer = idp.issuer();
    let claimed = idp.0.claimed_issuer.lock().unwrap().clone();
    json!({
        "issuer": claimed.unwrap_or_else(|| issuer.clone()),
        "jwks_uri": format!("{issuer}/jwks"),
        "introspection_endpoint": format!("{issuer}/introspect"),
    })
}

async fn oidc_discovery(State(idp): State<Idp>) -> Response {
    idp.0.discovery_calls.fetch_add(1, Ordering::SeqCst);
    if *idp.0.rfc8414_only.lock().unwrap() {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(metadata(&idp)).into_response()
}

async fn rfc8414_discovery(State(idp): State<Idp>) -> Response {
    idp.0.discovery_calls.fetch_add(1, Ordering::SeqCst);
    Json(metadata(&idp)).into_response()
}

async fn jwks(State(idp): State<Idp>) -> Response {
    idp.0.jwks_calls.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = idp
        .0
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(SigningKey::public_jwk)
        .collect();
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(json!({ "keys": keys })),
    )
        .into_response()
}

async fn introspect(
    State(idp): State<Idp>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    idp.0.introspections.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = idp
        .0
        .answers
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or(json!({"active": false}));
    Json(answer).into_response()
}

fn canonical(name: &str) -> String {
    format!("{BASE}/mcp/{name}")
}

/// Registers `name` in front of the demo with tokens from `issuer`.
async fn external_server(gw: &Gw, name: &str, issuer: &str, format: &str, settings: Value) {
    let mut rec = record(name, &gw.upstream, settings);
    rec.issuer = Some(issuer.into());
    rec.token_format = format.into();
    ServerStore::create(&gw.store, &rec).await.unwrap();
}

/// Valid claims from the IdP for server `name`, Keycloak-style (`azp`, `scp`).
fn idp_claims(gw: &Gw, idp: &Idp, name: &str, jti: &str) -> Map<String, Value> {
    let now = gw.clock.now_secs();
    json!({
        "iss": idp.issuer(), "sub": "u-42", "aud": canonical(name), "azp": "ide-plugin",
        "scope": "notes:read", "iat": now, "nbf": now, "exp": now + 300, "jti": jti,
    })
    .as_object()
    .unwrap()
    .clone()
}

async fn status_of(gw: &Gw, server: &str, token: &str) -> StatusCode {
    gw.initialize_with(server, token, json!({})).await.status
}

#[tokio::test]
async fn extra_audiences_are_accepted_only_when_listed_and_never_another_resource() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("kc-1");
    idp.publish(&key);
    external_server(
        &gw,
        "kc",
        &idp.issuer(),
        "jwt",
        json!({ "extra_audiences": ["account"] }),
    )
    .await;
    let sign = |claims: &Map<String, Value>| jwt::sign(claims, "at+jwt", &key).unwrap();
    let with_aud = |jti: &str, aud: Value| {
        let mut c = idp_claims(&gw, &idp, "kc", jti);
        c.insert("aud".into(), aud);
        sign(&c)
    };
    // Keycloak's default: the resource and `account`.
    let kc = with_aud("kc-default", json!([canonical("kc"), "account"]));
    assert_eq!(status_of(&gw, "kc", &kc).await, StatusCode::OK);
    // Anything else besides the resource is still refused: an unlisted name, another
    // registered resource, or the listed name without this resource.
    for (jti, aud) in [
        ("unlisted", json!([canonical("kc"), "broker"])),
        ("other-resource", json!([canonical("kc"), NOTES])),
        ("listed-only", json!(["account"])),
        ("three", json!([canonical("kc"), "account", "broker"])),
    ] {
        assert_eq!(
            status_of(&gw, "kc", &with_aud(jti, aud)).await,
            StatusCode::UNAUTHORIZED,
            "{jti}"
        );
    }
    // A URL is refused as an extra audience when the registration is compiled.
    let mut rec = record("bad", &gw.upstream, json!({ "extra_audiences": [NOTES] }));
    rec.issuer = Some(idp.issuer());
    let e =
        warden_server::gateway::registry::Protected::compile(&rec, &gw.app.config, &gw.app.sealer)
            .err()
            .unwrap();
    assert!(e.contains("resource URI"), "{e}");
}

#[tokio::test]
async fn jwts_from_an_external_issuer_are_checked_like_wardens_own() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("idp-1");
    idp.publish(&key);
    external_server(&gw, "ext", &idp.issuer(), "jwt", json!({})).await;
    let sign = |claims: &Map<String, Value>| jwt::sign(claims, "at+jwt", &key).unwrap();

    let good = sign(&idp_claims(&gw, &idp, "ext", "good"));
    let session = gw.initialize("ext", &good).await;
    let r = gw.call("ext", &good, &session, "whoami").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        !r.body.contains(&good),
        "the client token reached the upstream"
    );
    let seen = r.json()["result"]["structuredContent"].clone();
    assert_eq!(seen["x-warden-subject"], "u-42");
    assert_eq!(seen["x-warden-client-id"], "ide-plugin");
    assert_eq!(idp.jwks_calls(), 1);
    // The metadata document names the external issuer.
    let meta = gw
        .send(
            axum::http::Request::get("/.well-known/oauth-protected-resource/mcp/ext")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(meta.json()["authorization_servers"], json!([idp.issuer()]));

    // Each rule, the other way.
    let mut c = idp_claims(&gw, &idp, "ext", "wrong-iss");
    c.insert("iss".into(), json!(BASE));
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::UNAUTHORIZED,
        "iss"
    );
    let mut c = idp_claims(&gw, &idp, "ext", "wrong-aud");
    c.insert("aud".into(), json!(NOTES));
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::UNAUTHORIZED,
        "aud"
    );
    let mut c = idp_claims(&gw, &idp, "ext", "two-aud");
    c.insert("aud".into(), json!([canonical("ext"), "account"]));
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::UNAUTHORIZED,
        "aud array"
    );
    let now = gw.clock.now_secs();
    let mut c = idp_claims(&gw, &idp, "ext", "expired");
    c.insert("exp".into(), json!(now - 31));
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    let mut c = idp_claims(&gw, &idp, "ext", "expired-within-leeway");
    c.insert("exp".into(), json!(now - 30));
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::OK,
        "within leeway"
    );
    let c = idp_claims(&gw, &idp, "ext", "plain-jwt-typ");
    let plain = jwt::sign(&c, "JWT", &key).unwrap();
    assert_eq!(
        status_of(&gw, "ext", &plain).await,
        StatusCode::UNAUTHORIZED,
        "typ JWT"
    );
    let mut c = idp_claims(&gw, &idp, "ext", "no-client");
    c.remove("azp");
    assert_eq!(
        status_of(&gw, "ext", &sign(&c)).await,
        StatusCode::UNAUTHORIZED,
        "no client"
    );

    let claims = Value::Object(idp_claims(&gw, &idp, "ext", "none"));
    let none = compact(&json!({"alg": "none", "typ": "at+jwt"}), &claims, b"AA");
    assert_eq!(
        status_of(&gw, "ext", &none).await,
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
    let jwk = key.public_jwk();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "idp-1"});
    let input = compact(&header, &claims, b"");
    let sig = SecretHasher::new(jwk.to_string().as_bytes()).hash(input.trim_end_matches('.'));
    let hs = compact(&header, &claims, &sig);
    assert_eq!(
        status_of(&gw, "ext", &hs).await,
        StatusCode::UNAUTHORIZED,
        "HS256"
    );
    assert_eq!(
        idp.jwks_calls(),
        1,
        "keys were cached; no refetch for a known kid"
    );
    // A Warden-issued token is not a token of this server's issuer (its kid is unknown
    // there: one refetch, then refused).
    let mut c = gw.claims("notes:read");
    c.insert("aud".into(), json!(canonical("ext")));
    assert_eq!(
        status_of(&gw, "ext", &gw.sign(&c, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.jwks_calls(), 2);
}

#[tokio::test]
async fn scp_arrays_and_plain_jwt_typ_where_allowed() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("idp-1");
    idp.publish(&key);
    external_server(
        &gw,
        "okta",
        &idp.issuer(),
        "jwt",
        json!({"accept_jwt_typ": true}),
    )
    .await;
    let mut c = idp_claims(&gw, &idp, "okta", "scp");
    c.remove("scope");
    c.remove("azp");
    c.insert("client_id".into(), json!("agent"));
    c.insert("scp".into(), json!(["notes:read"]));
    let token = jwt::sign(&c, "JWT", &key).unwrap();
    let session = gw.initialize("okta", &token).await;
    assert_eq!(
        gw.call("okta", &token, &session, "notes_list").await.status,
        StatusCode::OK
    );
    let denied = gw.call("okta", &token, &session, "notes_write").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert!(denied
        .header("www-authenticate")
        .contains("insufficient_scope"));
    // Still not an ID token.
    let c = idp_claims(&gw, &idp, "okta", "id-token");
    let id_token = jwt::sign(&c, "id+jwt", &key).unwrap();
    assert_eq!(
        status_of(&gw, "okta", &id_token).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_an_unknown_kid_at_most_every_30s() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let old = foreign_key("old");
    idp.publish(&old);
    external_server(&gw, "ext", &idp.issuer(), "jwt", json!({})).await;
    let sign = |k: &SigningKey, jti: &str| {
        jwt::sign(&idp_claims(&gw, &idp, "ext", jti), "at+jwt", k).unwrap()
    };
    assert_eq!(
        status_of(&gw, "ext", &sign(&old, "1")).await,
        StatusCode::OK
    );
    assert_eq!(idp.jwks_calls(), 1);

    // The IdP rotates: a token under the new key makes the gateway refetch once.
    let new = foreign_key("new");
    idp.publish(&new);
    assert_eq!(
        status_of(&gw, "ext", &sign(&new, "2")).await,
        StatusCode::OK
    );
    assert_eq!(idp.jwks_calls(), 2);
    assert_eq!(
        status_of(&gw, "ext", &sign(&new, "3")).await,
        StatusCode::OK
    );
    assert_eq!(idp.jwks_calls(), 2, "the new key is cached");

    // Made-up kids: no refetch within 30 s of the last one, then one.
    let stranger = foreign_key("made-up");
    for i in 0..5 {
        let t = sign(&stranger, &format!("s{i}"));
        assert_eq!(status_of(&gw, "ext", &t).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.jwks_calls(), 2, "debounced");
    gw.clock.advance(31);
    assert_eq!(
        status_of(&gw, "ext", &sign(&stranger, "s9")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.jwks_calls(), 3);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("idp-1");
    idp.publish(&key);
    *idp.0.claimed_issuer.lock().unwrap() = Some("https://evil.example/realms/acme".into());
    external_server(&gw, "ext", &idp.issuer(), "jwt", json!({})).await;
    let token = jwt::sign(&idp_claims(&gw, &idp, "ext", "1"), "at+jwt", &key).unwrap();
    let r = gw.initialize_with("ext", &token, json!({})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(
        r.headers.get("www-authenticate").is_none(),
        "not a token problem"
    );
    assert_eq!(
        idp.jwks_calls(),
        0,
        "the keys of a mismatched issuer are never fetched"
    );
}

#[tokio::test]
async fn rfc8414_metadata_is_the_fallback_and_an_unreachable_issuer_is_503() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("idp-1");
    idp.publish(&key);
    *idp.0.rfc8414_only.lock().unwrap() = true;
    external_server(&gw, "ext", &idp.issuer(), "jwt", json!({})).await;
    let token = jwt::sign(&idp_claims(&gw, &idp, "ext", "1"), "at+jwt", &key).unwrap();
    assert_eq!(status_of(&gw, "ext", &token).await, StatusCode::OK);
    assert_eq!(idp.0.discovery_calls.load(Ordering::SeqCst), 2);

    let dead = format!("http://127.0.0.1:{}/realms/x", dead_port().await);
    external_server(&gw, "gone", &dead, "jwt", json!({})).await;
    let mut c = idp_claims(&gw, &idp, "gone", "2");
    c.insert("iss".into(), json!(dead));
    let token = jwt::sign(&c, "at+jwt", &key).unwrap();
    assert_eq!(
        status_of(&gw, "gone", &token).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

// === introspection ===

async fn introspected_server(gw: &Gw, idp: &Idp, name: &str, mut settings: Value) {
    let sealed = seal_secret(&gw.app.sealer, name, CLIENT_SECRET).unwrap();
    settings["introspection_endpoint"] = json!(format!("{}/introspect", idp.issuer()));
    settings["introspection_client_id"] = json!(CLIENT_ID);
    settings["introspection_client_secret"] = sealed;
    external_server(gw, name, &idp.issuer(), "opaque", settings).await;
}

fn active(gw: &Gw, idp: &Idp, name: &str) -> Value {
    json!({
        "active": true, "iss": idp.issuer(), "sub": "u-42", "client_id": "agent",
        "aud": [canonical(name)], "scope": "notes:read", "exp": gw.clock.now_secs() + 600,
        "token_type": "Bearer",
    })
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached() {
    let (subscriber, logs) = warden_telemetry::capture(warden_telemetry::LogFormat::Json);
    let _logs = tracing::subscriber::set_default(subscriber);
    // Proves the capture works on this thread. Whether the gateway logs anything in this
    // flow depends on callsite interest that tests running in parallel share, so the
    // test does not count on it; every line that is captured is searched below (and the
    // CLI's redaction and scrubbing tests search a whole process's trace-level logs).
    tracing::warn!(marker = "introspection-test", "capture check");
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    introspected_server(&gw, &idp, "vault", json!({})).await;

    idp.answer("tok-active", active(&gw, &idp, "vault"));
    let session = gw.initialize("vault", "tok-active").await;
    let r = gw.call("vault", "tok-active", &session, "whoami").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("tok-active"));
    assert_eq!(
        gw.call("vault", "tok-active", &session, "notes_write")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(idp.introspections(), 1, "one introspection, then the cache");
    // The cache holds a result for at most 60 s (the issuer does not report revocations).
    gw.clock.advance(61);
    assert_eq!(status_of(&gw, "vault", "tok-active").await, StatusCode::OK);
    assert_eq!(idp.introspections(), 2);

    // Inactive: 401, and not asked again for 5 s.
    for _ in 0..3 {
        assert_eq!(
            status_of(&gw, "vault", "tok-inactive").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(idp.introspections(), 3);
    gw.clock.advance(6);
    assert_eq!(
        status_of(&gw, "vault", "tok-inactive").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.introspections(), 4);

    // An answer for another audience, or none, is refused.
    let mut other = active(&gw, &idp, "vault");
    other["aud"] = json!(NOTES);
    idp.answer("tok-other-aud", other);
    assert_eq!(
        status_of(&gw, "vault", "tok-other-aud").await,
        StatusCode::UNAUTHORIZED
    );
    let mut no_aud = active(&gw, &idp, "vault");
    no_aud.as_object_mut().unwrap().remove("aud");
    idp.answer("tok-no-aud", no_aud.clone());
    assert_eq!(
        status_of(&gw, "vault", "tok-no-aud").await,
        StatusCode::UNAUTHORIZED
    );
    let mut wrong_iss = active(&gw, &idp, "vault");
    wrong_iss["iss"] = json!("https://elsewhere");
    idp.answer("tok-wrong-iss", wrong_iss);
    assert_eq!(
        status_of(&gw, "vault", "tok-wrong-iss").await,
        StatusCode::UNAUTHORIZED
    );
    let mut expired = active(&gw, &idp, "vault");
    expired["exp"] = json!(gw.clock.now_secs() - 31);
    idp.answer("tok-expired", expired);
    assert_eq!(
        status_of(&gw, "vault", "tok-expired").await,
        StatusCode::UNAUTHORIZED
    );

    // Where the IdP omits `aud` by design, the operator can allow it.
    introspected_server(
        &gw,
        &idp,
        "lax",
        json!({"introspection_requires_aud": false}),
    )
    .await;
    idp.answer("tok-lax", no_aud);
    assert_eq!(status_of(&gw, "lax", "tok-lax").await, StatusCode::OK);

    let logs = logs.contents();
    assert!(logs.contains("introspection-test"), "logs were captured");
    assert!(
        !logs.contains(CLIENT_SECRET),
        "the client secret was logged"
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(!logs.contains(&basic), "the Basic credentials were logged");
    assert!(!logs.contains("tok-active"), "a token was logged");
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_is_503_not_401() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let sealed = seal_secret(&gw.app.sealer, "down-idp", CLIENT_SECRET).unwrap();
    let dead = format!("http://127.0.0.1:{}/introspect", dead_port().await);
    external_server(
        &gw,
        "down-idp",
        &idp.issuer(),
        "opaque",
        json!({
            "introspection_endpoint": dead,
            "introspection_client_id": CLIENT_ID,
            "introspection_client_secret": sealed,
        }),
    )
    .await;
    let r = gw.initialize_with("down-idp", "tok-x", json!({})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("issuer"));

    // Wrong credentials at the IdP (it answers 401) are the operator's problem: 503 too.
    let wrong = seal_secret(&gw.app.sealer, "bad-creds", "not-the-secret").unwrap();
    external_server(
        &gw,
        "bad-creds",
        &idp.issuer(),
        "opaque",
        json!({
            "introspection_endpoint": format!("{}/introspect", idp.issuer()),
            "introspection_client_id": CLIENT_ID,
            "introspection_client_secret": wrong,
        }),
    )
    .await;
    assert_eq!(
        status_of(&gw, "bad-creds", "tok-x").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_clear_text_or_foreign_sealed_secret_makes_the_server_unavailable() {
    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let endpoint = format!("{}/introspect", idp.issuer());
    external_server(
        &gw,
        "clear",
        &idp.issuer(),
        "opaque",
        json!({
            "introspection_endpoint": endpoint,
            "introspection_client_id": CLIENT_ID,
            "introspection_client_secret": CLIENT_SECRET,
        }),
    )
    .await;
    // Sealed for another server's name: does not open.
    let sealed = seal_secret(&gw.app.sealer, "someone-else", CLIENT_SECRET).unwrap();
    external_server(
        &gw,
        "moved",
        &idp.issuer(),
        "opaque",
        json!({
            "introspection_endpoint": endpoint,
            "introspection_client_id": CLIENT_ID,
            "introspection_client_secret": sealed,
        }),
    )
    .await;
    for name in ["clear", "moved"] {
        assert_eq!(
            status_of(&gw, name, "tok").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(idp.introspections(), 0);
}

#[tokio::test]
async fn an_issuers_dpop_bound_tokens_are_held_to_their_key() {
    use crate::dpop::{client_key, initialize, jkt, proof, proof_claims};
    use warden_core::keys::SigningAlg;

    let gw = Gw::start(json!({})).await;
    let idp = Idp::start().await;
    let key = foreign_key("idp-dpop");
    idp.publish(&key);
    external_server(&gw, "ext", &idp.issuer(), "jwt", json!({})).await;
    introspected_server(&gw, &idp, "vault", json!({})).await;
    let client = client_key(SigningAlg::Es256);
    let thief = client_key(SigningAlg::Es256);
    let now = gw.clock.now_secs();

    let mut claims = idp_claims(&gw, &idp, "ext", "ext-bound");
    claims.insert("cnf".into(), json!({ "jkt": jkt(&client) }));
    let jwt_token = jwt::sign(&claims, "at+jwt", &key).unwrap();
    let mut answer = active(&gw, &idp, "vault");
    answer["cnf"] = json!({ "jkt": jkt(&client) });
    answer["token_type"] = json!("DPoP");
    idp.answer("tok-bound", answer);

    for (server, token) in [("ext", jwt_token.as_str()), ("vault", "tok-bound")] {
        let htu = canonical(server);
        let by = |who, jti: &str| proof(who, &proof_claims("POST", &htu, Some(token), now, jti));
        let dpop = format!("DPoP {token}");
        let r = gw
            .send(initialize(
                server,
                &dpop,
                Some(&by(&client, &format!("{server}-1"))),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{server}: {}", r.body);
        let r = gw
            .send(initialize(server, &format!("Bearer {token}"), None))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{server} as bearer");
        let r = gw
            .send(initialize(
                server,
                &dpop,
                Some(&by(&thief, &format!("{server}-2"))),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{server} another key");
        let r = gw.send(initialize(server, &dpop, None)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{server} no proof");
    }
}
