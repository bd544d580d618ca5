//! Dynamic client registration (RFC 7591) and its abuse controls.

use std::net::SocketAddr;

use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, Request};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use warden_core::clock::Clock as _;
use warden_store::ClientStore;

use crate::support::*;

fn public_app() -> Value {
    json!({
        "client_name": "Test MCP Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "software_id": "test-mcp-client",
        "software_version": "1.0.0",
    })
}

async fn register(h: &H, body: &Value) -> Resp {
    h.post_json("/oauth/register", body, &[]).await
}

async fn client_count(h: &H) -> usize {
    ClientStore::list(&h.store).await.unwrap().len()
}

#[tokio::test]
async fn a_public_client_registers_and_completes_the_flow() {
    let h = H::new().await;
    let r = register(&h, &public_app()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let j = r.json();
    let id = j["client_id"].as_str().unwrap().to_owned();
    assert!(j.get("client_secret").is_none());
    assert_eq!(j["token_endpoint_auth_method"], "none");
    assert_eq!(
        j["application_type"], "native",
        "loopback redirect: a native app"
    );
    assert_eq!(j["redirect_uris"], json!([REDIRECT]));
    assert_eq!(j["client_id_issued_at"], T0);
    assert!(
        j.get("warden").is_none(),
        "internal bookkeeping stays internal"
    );

    let stored = ClientStore::get(&h.store, &id).await.unwrap().unwrap();
    assert!(!stored.confidential);
    assert!(stored.scopes.is_empty(), "registration grants no scopes");
    assert_eq!(stored.last_used_at, None);

    let mut jar = Jar::default();
    let code = h.code_for_client(&id, &[], &mut jar).await;
    let r = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["client_id"],
        id
    );
    let used = ClientStore::get(&h.store, &id).await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(T0), "first use recorded");

    let events = h.audit_events("client.registered").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(id.as_str()));
    assert_eq!(events[0].detail["redirect_hosts"], json!(["127.0.0.1"]));
}

#[tokio::test]
async fn a_confidential_client_gets_its_secret_once() {
    let h = H::new().await;
    let body = json!({
        "client_name": "Backend",
        "redirect_uris": ["https://app.example.com/cb"],
        "application_type": "web",
    });
    let r = register(&h, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let j = r.json();
    assert_eq!(
        j["token_endpoint_auth_method"], "client_secret_basic",
        "RFC 7591 default"
    );
    let secret = j["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("wdn_cs_"));
    assert_eq!(j["client_secret_expires_at"], 0);
    let id = j["client_id"].as_str().unwrap();
    let stored = ClientStore::get(&h.store, id).await.unwrap().unwrap();
    assert!(stored.confidential);
    assert!(
        !stored.metadata.to_string().contains(secret),
        "only the hash is kept"
    );
    // The secret authenticates; a wrong one does not.
    let ok = h
        .post_form(
            "/oauth/introspect",
            &[("token", "x")],
            &Jar::default(),
            Some((id, secret)),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let bad = h
        .post_form(
            "/oauth/introspect",
            &[("token", "x")],
            &Jar::default(),
            Some((id, "wdn_cs_nope")),
        )
        .await;
    assert_eq!(bad.status, 401);
    // Registering the same metadata again is a new client: a secret is never re-issued.
    let again = register(&h, &body).await.json();
    assert_ne!(again["client_id"], j["client_id"]);
}

#[tokio::test]
async fn identical_public_metadata_re_registers_idempotently() {
    let h = H::new().await;
    let before = client_count(&h).await;
    let first = register(&h, &public_app()).await.json();
    // Same metadata, members in another order and an unknown member: the same client.
    let mut reordered = public_app();
    reordered["grant_types"] = json!(["refresh_token", "authorization_code"]);
    reordered["x-unknown"] = json!("ignored");
    let second = register(&h, &reordered).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json()["client_id"], first["client_id"]);
    assert_eq!(client_count(&h).await, before + 1);
    // Another software version is another registration.
    let mut other = public_app();
    other["software_version"] = json!("2.0.0");
    assert_ne!(
        register(&h, &other).await.json()["client_id"],
        first["client_id"]
    );
    assert_eq!(client_count(&h).await, before + 2);
    assert_eq!(h.audit_events("client.registration_reused").await.len(), 1);
}

#[tokio::test]
async fn the_rate_limit_is_per_source_with_a_burst_and_spares_idempotent_repeats() {
    let h = H::with(&[
        ("WARDEN_REGISTRATION__BURST", "3"),
        ("WARDEN_REGISTRATION__RATE_PER_MINUTE", "1"),
    ])
    .await;
    let distinct = |i: usize| {
        let mut b = public_app();
        b["software_version"] = json!(format!("{i}"));
        b
    };
    for i in 0..3 {
        assert_eq!(register(&h, &distinct(i)).await.status, 201, "burst {i}");
    }
    let limited = register(&h, &distinct(3)).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.headers["retry-after"], "60");
    let before = client_count(&h).await;
    // The same client registering again on every connect is not locked out.
    assert_eq!(register(&h, &distinct(0)).await.status, 201);
    assert_eq!(client_count(&h).await, before);
    // Another source behind another address is unaffected.
    let other = warden_server::router(h.app.clone())
        .layer(MockConnectInfo(SocketAddr::from(([10, 9, 9, 9], 1))));
    let req = Request::post("/oauth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(distinct(4).to_string()))
        .unwrap();
    assert_eq!(other.oneshot(req).await.unwrap().status(), 201);
    // A minute later the first source has a token again.
    h.clock.advance(60);
    assert_eq!(register(&h, &distinct(5)).await.status, 201);
}

#[tokio::test]
async fn an_initial_access_token_gates_registration_when_configured() {
    let token = "wdn_iat_test-initial-access-token-value";
    let digest: String = warden_core::secret::token_hash(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let h = H::with(&[("WARDEN_REGISTRATION__INITIAL_ACCESS_TOKENS", &digest)]).await;
    let before = client_count(&h).await;
    let none = register(&h, &public_app()).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.error(), "invalid_token");
    assert_eq!(none.headers["www-authenticate"], "Bearer realm=\"warden\"");
    let wrong = h
        .post_json(
            "/oauth/register",
            &public_app(),
            &[("authorization", "Bearer wdn_iat_wrong")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert!(!wrong.body.contains("wdn_iat_wrong"));
    assert_eq!(client_count(&h).await, before, "nothing stored");
    let auth = format!("Bearer {token}");
    let ok = h
        .post_json(
            "/oauth/register",
            &public_app(),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[tokio::test]
async fn registrations_never_used_are_reaped() {
    let h = H::with(&[("WARDEN_REGISTRATION__REAP_UNUSED_AFTER", "1h")]).await;
    let unused = register(&h, &public_app()).await.json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = public_app();
    b["client_name"] = json!("Used client");
    let used = register(&h, &b).await.json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Any authenticated call counts as use: here, a revocation.
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", "nothing"), ("client_id", &used)],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let now = h.clock.now();
    assert_eq!(
        warden_server::oauth::register::reap_unused(&h.app, now + 3_599)
            .await
            .unwrap(),
        0,
        "not yet"
    );
    assert_eq!(
        warden_server::oauth::register::reap_unused(&h.app, now + 3_600)
            .await
            .unwrap(),
        1
    );
    assert!(ClientStore::get(&h.store, &unused).await.unwrap().is_none());
    assert!(ClientStore::get(&h.store, &used).await.unwrap().is_some());
    assert!(
        ClientStore::get(&h.store, "pub").await.unwrap().is_some(),
        "administrator-registered clients are never reaped"
    );
    assert_eq!(h.audit_events("client.reaped").await.len(), 1);
}

#[tokio::test]
async fn caps_on_clients_and_redirect_uris() {
    let h = H::with(&[
        ("WARDEN_REGISTRATION__MAX_CLIENTS", "2"),
        ("WARDEN_REGISTRATION__MAX_REDIRECT_URIS", "2"),
    ])
    .await;
    let mut many = public_app();
    many["redirect_uris"] = json!([
        "http://127.0.0.1:1/a",
        "http://127.0.0.1:1/b",
        "http://127.0.0.1:1/c"
    ]);
    let r = register(&h, &many).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid_redirect_uri");
    for i in 0..2 {
        let mut b = public_app();
        b["software_version"] = json!(format!("{i}"));
        assert_eq!(register(&h, &b).await.status, 201);
    }
    let before = client_count(&h).await;
    let mut b = public_app();
    b["software_version"] = json!("9");
    let full = register(&h, &b).await;
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(client_count(&h).await, before);
    // Reaping frees room again.
    let now = h.clock.now();
    warden_server::oauth::register::reap_unused(&h.app, now + 30 * 86_400)
        .await
        .unwrap();
    assert_eq!(register(&h, &b).await.status, 201);
}

#[tokio::test]
async fn bad_metadata_gets_the_rfc_error_and_stores_nothing() {
    let h = H::new().await;
    let before = client_count(&h).await;
    let with = |k: &str, v: Value| {
        let mut b = public_app();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("redirect_uris", json!(["http://127.0.0.1:5555/cb#frag"])),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://app.example.com/cb"], "application_type": "web", "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            with("application_type", json!("web")),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["http://app.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (with("redirect_uris", json!([])), "invalid_redirect_uri"),
        (
            with(
                "grant_types",
                json!(["authorization_code", "urn:example:unknown"]),
            ),
            "invalid_client_metadata",
        ),
        (
            with("grant_types", json!(["implicit"])),
            "invalid_client_metadata",
        ),
        (
            with("grant_types", json!(["password"])),
            "invalid_client_metadata",
        ),
        (
            with(
                "grant_types",
                json!(["urn:ietf:params:oauth:grant-type:token-exchange"]),
            ),
            "invalid_client_metadata",
        ),
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
        ),
        (
            with("token_endpoint_auth_method", json!("client_secret_jwt")),
            "invalid_client_metadata",
        ),
        (
            with("application_type", json!("desktop")),
            "invalid_client_metadata",
        ),
        (
            with("logo_uri", json!("javascript:alert(1)")),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let r = register(&h, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.error(), code, "{body}: {}", r.body);
        assert!(r.json()["error_description"].is_string());
    }
    let r = h
        .send(
            Request::post("/oauth/register")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(axum::body::Body::from(public_app().to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.error(), "invalid_client_metadata");
    assert_eq!(client_count(&h).await, before, "nothing stored");
    assert!(h
        .audit_kinds()
        .await
        .contains(&"client.registration_refused".to_owned()));
}

#[tokio::test]
async fn application_types_are_honoured_both_ways() {
    let h = H::new().await;
    let native = json!({
        "redirect_uris": ["com.example.app:/oauth/cb", "http://127.0.0.1:7/cb"],
        "application_type": "native",
        "token_endpoint_auth_method": "none",
    });
    assert_eq!(register(&h, &native).await.status, 201);
    let web = json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "application_type": "web",
        "token_endpoint_auth_method": "none",
    });
    assert_eq!(register(&h, &web).await.status, 201);
    let web_custom = json!({
        "redirect_uris": ["com.example.app:/oauth/cb"],
        "application_type": "web",
        "token_endpoint_auth_method": "none",
    });
    assert_eq!(
        register(&h, &web_custom).await.error(),
        "invalid_redirect_uri"
    );
}

#[tokio::test]
async fn disabled_registration_is_not_served_or_advertised() {
    let h = H::with(&[("WARDEN_REGISTRATION__ENABLED", "false")]).await;
    let r = register(&h, &public_app()).await;
    assert_eq!(r.status, 404);
    let m = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await
        .json();
    assert!(m.get("registration_endpoint").is_none());
    let h = H::new().await;
    let m = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await
        .json();
    assert_eq!(m["registration_endpoint"], format!("{BASE}/oauth/register"));
    assert_eq!(m["client_id_metadata_document_supported"], true);
    let methods = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("urn:ietf:params:oauth:grant-type:token-exchange")));
    let algs = m["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.contains(&json!("HS256")));
}

#[tokio::test]
async fn the_consent_page_says_a_self_registered_name_is_unverified() {
    let h = H::new().await;
    let id = register(&h, &public_app()).await.json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut jar = Jar::default();
    let login = h.get(&h.authorize_url_for(&id, &[]), &jar).await;
    let consent = h.sign_in(&login, &mut jar, PASSWORD).await;
    assert!(consent.body.contains("Test MCP Client"));
    assert!(
        consent.body.contains("its name is not verified"),
        "{}",
        consent.body
    );
    // An administrator-registered client carries no such note.
    let login = h.get(&h.authorize_url(&[]), &Jar::default()).await;
    let mut jar = Jar::default();
    let consent = h.sign_in(&login, &mut jar, PASSWORD).await;
    assert!(!consent.body.contains("not verified"));
}

#[tokio::test]
async fn a_client_registered_dpop_bound_gets_nothing_without_a_proof() {
    use crate::proofs::{client_key, jkt};
    use warden_core::keys::SigningAlg;

    let h = H::new().await;
    let mut body = public_app();
    body["dpop_bound_access_tokens"] = json!(true);
    let r = register(&h, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["dpop_bound_access_tokens"], true);
    let id = r.json()["client_id"].as_str().unwrap().to_owned();
    let mut jar = Jar::default();
    let code = h.code_for_client(&id, &[], &mut jar).await;
    let r = redeem(&h, &id, &code, None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error(), "invalid_dpop_proof");
    assert!(r.json().get("access_token").is_none());

    let key = client_key(SigningAlg::Es256);
    let code = h.code_for_client(&id, &[], &mut jar).await;
    let p = h.token_proof(&key, "reg");
    let r = redeem(&h, &id, &code, Some(&p)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt(&key)
    );

    let mut bad = public_app();
    bad["dpop_bound_access_tokens"] = json!("yes");
    let r = register(&h, &bad).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

/// Redeems `code` as the public client `id`, with a DPoP proof if any.
async fn redeem(h: &H, id: &str, code: &str, proof: Option<&str>) -> Resp {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
        ("client_id", id),
    ];
    h.token_dpop(&form, None, proof).await
}
