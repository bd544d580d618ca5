//! Identity that arrives from outside, each rule both ways: federated sign-in at an
//! OpenID Connect IdP (played by a local server whose ID tokens the test signs, so that
//! each can break one rule), ID-JAGs (SEP-990) and workload tokens (SEP-1933) at the
//! token endpoint.

use std::collections::HashMap;

use serde_json::{json, Value};
use warden_core::jwt;
use warden_core::keys::{SigningAlg, SigningKey};
use warden_store::{IdpRecord, IdpStore, UserStore, WorkloadBinding};

use crate::docs::{DocServer, Served};
use crate::support::*;

const IDP_SECRET: &str = "warden-at-the-idp-secret";
const IDP_CLIENT: &str = "warden-rp";
const CALLBACK: &str = "http://127.0.0.1:8080/oauth/federated/callback";

/// An OpenID provider on loopback: discovery, a JWKS, and a token endpoint whose answer
/// the test sets.
struct Idp {
    docs: DocServer,
    key: SigningKey,
    issuer: String,
}

impl Idp {
    async fn start() -> Idp {
        let docs = DocServer::start().await;
        let issuer = docs.base.clone();
        let key = SigningKey::generate(SigningAlg::Es256, "idp-k1".into()).unwrap();
        let idp = Idp { docs, key, issuer };
        idp.docs.serve(
            "/.well-known/openid-configuration",
            Served::json(
                json!({
                    "issuer": idp.issuer,
                    "authorization_endpoint": idp.docs.url("/authorize"),
                    "token_endpoint": idp.docs.url("/token"),
                    "jwks_uri": idp.docs.url("/jwks"),
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": true,
                })
                .to_string(),
            ),
        );
        idp.publish(&[&idp.key]);
        idp
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
        self.docs
            .serve("/jwks", Served::json(json!({ "keys": keys }).to_string()));
    }

    /// Rotates to a new key: the JWKS now holds only it.
    fn rotate(&mut self) {
        self.key = SigningKey::generate(SigningAlg::Es256, "idp-k2".into()).unwrap();
        self.publish(&[&self.key]);
    }

    fn sign(&self, typ: &str, claims: &Value) -> String {
        jwt::sign(claims, typ, &self.key).unwrap()
    }

    /// The token endpoint's next answer: this ID token.
    fn answer_with(&self, id_token: &str) {
        self.docs.serve(
            "/token",
            Served::json(
                json!({"access_token": "idp-at", "token_type": "Bearer", "id_token": id_token})
                    .to_string(),
            ),
        );
    }

    /// Good ID-token claims for `sub` with `nonce`.
    fn id_claims(&self, sub: &str, nonce: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": IDP_CLIENT,
            "iat": T0,
            "exp": T0 + 300,
            "nonce": nonce,
            "email": format!("{sub}@corp.example"),
            "preferred_username": sub,
            "groups": groups,
        })
    }
}

async fn register(h: &H, idp: &Idp, name: &str, uses: &[&str], edit: impl FnOnce(&mut IdpRecord)) {
    let mut record = IdpRecord {
        name: name.into(),
        issuer: idp.issuer.clone(),
        display_name: Some("Corp SSO".into()),
        uses: uses.iter().map(|u| (*u).into()).collect(),
        client_id: Some(IDP_CLIENT.into()),
        client_secret_sealed: Some(
            warden_core::idp::seal_client_secret(&h.app.sealer, name, IDP_SECRET).unwrap(),
        ),
        groups_claim: "groups".into(),
        group_map: vec![("eng".into(), "engineers".into())],
        domains: vec!["corp.example".into()],
        tenants: vec![],
        audiences: vec![],
        scopes: vec!["openid".into(), "email".into(), "groups".into()],
        jwks_uri: None,
        issuer_ca: None,
        disabled: false,
        created_at: T0,
        updated_at: T0,
    };
    edit(&mut record);
    IdpStore::create(&h.store, &record).await.unwrap();
}

/// The policy: engineers may read and write notes.
async fn engineers_policy(h: &H) {
    let text = "version = 1\ndefault = \"deny\"\n\n[[group]]\nname = \"engineers\"\nservers = { notes = [\"notes:read\", \"notes:write\"] }\n\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:read\"] }\n";
    crate::policy::apply(h, text).await;
}

/// A sign-in begun: Warden's redirect to the IdP and the cookies so far.
struct Begun {
    jar: Jar,
    to_idp: HashMap<String, String>,
}

/// Opens the authorize URL and presses the IdP's button.
async fn begin(h: &H, idp_name: &str) -> Begun {
    let mut jar = Jar::default();
    let page = h
        .get(
            &h.authorize_url(&[("scope", "notes:read notes:write")]),
            &jar,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Continue with Corp SSO"),
        "{}",
        page.body
    );
    jar.absorb(&page);
    let r = h
        .post_form(
            "/oauth/login/federated",
            &[
                ("pending", &page.field("pending")),
                ("csrf", &page.field("csrf")),
                ("idp", idp_name),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    jar.absorb(&r);
    Begun {
        jar,
        to_idp: r.location_query(),
    }
}

/// The IdP's redirect back with `code`, this `state` and `iss`.
async fn come_back(h: &H, b: &Begun, state: &str, iss: Option<&str>) -> Resp {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("code", "idp-code-1")
        .append_pair("state", state);
    if let Some(iss) = iss {
        q.append_pair("iss", iss);
    }
    h.get(&format!("/oauth/federated/callback?{}", q.finish()), &b.jar)
        .await
}

/// A full sign-in that the IdP answers with `claims` (its nonce filled in); returns the
/// callback's response.
async fn sign_in_with(h: &H, idp: &Idp, claims: impl FnOnce(&str) -> Value) -> (Begun, Resp) {
    let b = begin(h, "corp").await;
    let nonce = b.to_idp["nonce"].clone();
    idp.answer_with(&idp.sign("JWT", &claims(&nonce)));
    let state = b.to_idp["state"].clone();
    let r = come_back(h, &b, &state, Some(&idp.issuer)).await;
    (b, r)
}

fn assert_denied(r: &Resp, what: &str) {
    assert_eq!(r.status, 303, "{what}: {}", r.body);
    let q = r.location_query();
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{what}: {q:?}"
    );
    assert_eq!(
        q.get("state").map(String::as_str),
        Some("st4te"),
        "{what}: {q:?}"
    );
}

#[tokio::test]
async fn sign_in_redirects_with_pkce_state_nonce_and_the_registered_client() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let b = begin(&h, "corp").await;
    let q = &b.to_idp;
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], IDP_CLIENT);
    assert_eq!(q["redirect_uri"], CALLBACK);
    assert_eq!(q["scope"], "openid email groups");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16, "{q:?}");
    assert!(
        b.jar.header().contains("warden_fed="),
        "the sign-in is bound to the browser"
    );
}

#[tokio::test]
async fn a_federated_user_is_provisioned_linked_and_gets_mapped_groups() {
    let h = H::new().await;
    engineers_policy(&h).await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let (mut b, r) = sign_in_with(&h, &idp, |n| {
        idp.id_claims("alice-sub", n, &["eng", "unmapped"])
    })
    .await;
    // The consent page, for the provisioned user.
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("corp:alice-sub"), "{}", r.body);
    assert!(
        r.body.contains("notes:write"),
        "engineers may write: {}",
        r.body
    );
    let user = UserStore::find_by_identity(&h.store, &idp.issuer, "alice-sub")
        .await
        .unwrap()
        .expect("linked by (issuer, sub)");
    assert_eq!(user.groups, ["engineers"], "only mapped groups");
    assert!(
        user.password_hash.is_empty(),
        "no password for a federated user"
    );
    // A local user with the same email is not linked: a different user.
    assert_ne!(user.id, "u_alice");
    // The consent goes through and the code redeems for a token naming that user.
    b.jar.absorb(&r);
    let allow = h
        .post_form(
            "/oauth/consent",
            &[
                ("pending", &r.field("pending")),
                ("csrf", &r.field("csrf")),
                ("decision", "allow"),
            ],
            &b.jar,
            None,
        )
        .await;
    let code = allow.location_query()["code"].clone();
    let t = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "pub"),
                ("code_verifier", VERIFIER),
                ("resource", NOTES),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let at = claims(t.json()["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], user.id.as_str());

    // Removed from `eng` at the IdP: the next sign-in takes the scope away.
    let (_, again) = sign_in_with(&h, &idp, |n| idp.id_claims("alice-sub", n, &[])).await;
    assert_eq!(
        again.status, 303,
        "nothing left to consent to: {}",
        again.body
    );
    let user = UserStore::find_by_identity(&h.store, &idp.issuer, "alice-sub")
        .await
        .unwrap()
        .unwrap();
    assert!(user.groups.is_empty());
}

#[tokio::test]
async fn every_id_token_rule_refuses_its_breach() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let other = SigningKey::generate(SigningAlg::Es256, "idp-k1".into()).unwrap();
    type Breach = Box<dyn Fn(&Idp, &str) -> String>;
    let breaches: Vec<(&str, Breach)> = vec![
        (
            "bad signature",
            Box::new(move |i: &Idp, n: &str| {
                jwt::sign(&i.id_claims("u", n, &[]), "JWT", &other).unwrap()
            }),
        ),
        (
            "wrong aud",
            Box::new(|i: &Idp, n: &str| {
                let mut c = i.id_claims("u", n, &[]);
                c["aud"] = json!("someone-else");
                i.sign("JWT", &c)
            }),
        ),
        (
            "wrong iss",
            Box::new(|i: &Idp, n: &str| {
                let mut c = i.id_claims("u", n, &[]);
                c["iss"] = json!("https://evil.example");
                i.sign("JWT", &c)
            }),
        ),
        (
            "expired",
            Box::new(|i: &Idp, n: &str| {
                let mut c = i.id_claims("u", n, &[]);
                c["exp"] = json!(T0 - 3600);
                c["iat"] = json!(T0 - 7200);
                i.sign("JWT", &c)
            }),
        ),
        (
            "wrong nonce",
            Box::new(|i: &Idp, _n: &str| i.sign("JWT", &i.id_claims("u", "not-the-nonce", &[]))),
        ),
    ];
    for (what, make) in &breaches {
        let b = begin(&h, "corp").await;
        let nonce = b.to_idp["nonce"].clone();
        idp.answer_with(&make(&idp, &nonce));
        let r = come_back(&h, &b, &b.to_idp["state"].clone(), Some(&idp.issuer)).await;
        assert_denied(&r, what);
    }
    assert!(
        UserStore::find_by_identity(&h.store, &idp.issuer, "u")
            .await
            .unwrap()
            .is_none(),
        "nobody was provisioned"
    );
    // And the good token is accepted, so the refusals were the rules'.
    let (_, r) = sign_in_with(&h, &idp, |n| idp.id_claims("u", n, &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn state_must_match_and_is_used_once() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let b = begin(&h, "corp").await;
    idp.answer_with(&idp.sign("JWT", &idp.id_claims("u", &b.to_idp["nonce"], &[])));
    let wrong = come_back(&h, &b, "forged-state", Some(&idp.issuer)).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("does not belong"), "{}", wrong.body);
    let state = b.to_idp["state"].clone();
    let first = come_back(&h, &b, &state, Some(&idp.issuer)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = come_back(&h, &b, &state, Some(&idp.issuer)).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    // Without the browser's cookie, nothing.
    let bare = h
        .get(
            &format!("/oauth/federated/callback?code=c&state={state}"),
            &Jar::default(),
        )
        .await;
    assert_eq!(bare.status, 400, "{}", bare.body);
}

#[tokio::test]
async fn the_response_issuer_is_checked() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let b = begin(&h, "corp").await;
    idp.answer_with(&idp.sign("JWT", &idp.id_claims("u", &b.to_idp["nonce"], &[])));
    // The IdP advertises RFC 9207: a missing or foreign `iss` is refused.
    let r = come_back(
        &h,
        &b,
        &b.to_idp["state"].clone(),
        Some("https://evil.example"),
    )
    .await;
    assert_denied(&r, "foreign iss");
    let b = begin(&h, "corp").await;
    let r = come_back(&h, &b, &b.to_idp["state"].clone(), None).await;
    assert_denied(&r, "missing iss");
}

#[tokio::test]
async fn an_idp_error_goes_back_to_the_client() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let b = begin(&h, "corp").await;
    let url = format!(
        "/oauth/federated/callback?error=access_denied&state={}&iss={}",
        b.to_idp["state"],
        url::form_urlencoded::byte_serialize(idp.issuer.as_bytes()).collect::<String>()
    );
    let r = h.get(&url, &b.jar).await;
    assert_denied(&r, "denied at the IdP");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_rotated_keys() {
    let h = H::new().await;
    let mut idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let (_, r) = sign_in_with(&h, &idp, |n| idp.id_claims("u", n, &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(idp.docs.hits("/jwks"), 1);
    idp.rotate();
    let (_, r) = sign_in_with(&h, &idp, |n| idp.id_claims("u", n, &[])).await;
    assert_eq!(r.status, 200, "the rotated key was fetched: {}", r.body);
    assert_eq!(idp.docs.hits("/jwks"), 2);
}

#[tokio::test]
async fn an_unreachable_idp_is_temporarily_unavailable_not_a_refusal() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let b = begin(&h, "corp").await;
    idp.docs.serve("/token", Served::json("{}").status(503));
    let r = come_back(&h, &b, &b.to_idp["state"].clone(), Some(&idp.issuer)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location_query()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn an_address_in_a_routed_domain_goes_to_its_idp() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    jar.absorb(&page);
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", &page.field("pending")),
                ("csrf", &page.field("csrf")),
                ("username", "Bob@Corp.Example"),
                ("password", ""),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().starts_with(&idp.docs.url("/authorize")),
        "{}",
        r.location()
    );
    assert_eq!(r.location_query()["login_hint"], "Bob@Corp.Example");
    // Another domain stays with the password form.
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", &page.field("pending")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &jar,
            None,
        )
        .await;
    assert_ne!(r.status, 303, "no IdP for alice: {}", r.location());
}

#[tokio::test]
async fn without_local_login_there_is_no_password_form_and_no_password_sign_in() {
    let h = H::with(&[("WARDEN_LOGIN__LOCAL", "false")]).await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    assert!(!page.body.contains("type=\"password\""), "{}", page.body);
    assert!(
        page.body.contains("Continue with Corp SSO"),
        "{}",
        page.body
    );
    jar.absorb(&page);
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", &page.field("pending")),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("warden_session=")));
    // With local login on (the default), the same sign-in works.
    let h = H::new().await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    assert!(page.body.contains("type=\"password\""), "{}", page.body);
    let r = h.sign_in(&page, &mut jar, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn disabling_the_idp_ends_its_sessions() {
    let h = H::new().await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["login"], |_| {}).await;
    let (mut b, r) = sign_in_with(&h, &idp, |n| idp.id_claims("u", n, &[])).await;
    b.jar.absorb(&r);
    // Signed in: the next authorize goes straight to consent.
    let again = h.get(&h.authorize_url(&[]), &b.jar).await;
    assert!(again.body.contains("id=\"allow\""), "{}", again.body);
    let mut rec = IdpStore::get(&h.store, "corp").await.unwrap().unwrap();
    rec.disabled = true;
    IdpStore::update(&h.store, &rec).await.unwrap();
    let after = h.get(&h.authorize_url(&[]), &b.jar).await;
    assert!(!after.body.contains("id=\"allow\""), "{}", after.body);
    assert!(after.body.contains("Sign in"), "{}", after.body);
}

// === ID-JAG ===

/// A confidential client allowed to present ID-JAGs, with its secret.
async fn jag_client(h: &H) -> (String, String) {
    let (id, secret) = h.web.clone();
    let mut rec = warden_store::ClientStore::get(&h.store, &id)
        .await
        .unwrap()
        .unwrap();
    rec.grant_types
        .push(warden_proto::oauth::JWT_BEARER_GRANT.into());
    warden_store::ClientStore::update(&h.store, &rec)
        .await
        .unwrap();
    h.app.clients.invalidate(&id);
    (id, secret)
}

fn jag_claims(idp: &Idp, client: &str, jti: &str) -> Value {
    json!({
        "iss": idp.issuer,
        "sub": "carol-sub",
        "aud": "http://127.0.0.1:8080",
        "client_id": client,
        "jti": jti,
        "iat": T0,
        "exp": T0 + 300,
        "resource": NOTES,
        "scope": "notes:read notes:write",
        "groups": ["eng"],
    })
}

async fn present(h: &H, assertion: &str, client: (&str, &str), extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion),
    ];
    form.extend_from_slice(extra);
    h.token(&form, Some(client)).await
}

#[tokio::test]
async fn an_id_jag_becomes_a_token_for_its_resource_and_user() {
    let h = H::new().await;
    engineers_policy(&h).await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["id-jag"], |_| {}).await;
    let (id, secret) = jag_client(&h).await;
    let meta = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await
        .json();
    assert!(
        meta["grant_types_supported"]
            .to_string()
            .contains("jwt-bearer"),
        "{meta}"
    );
    assert_eq!(
        meta["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );

    let jag = idp.sign("oauth-id-jag+jwt", &jag_claims(&idp, &id, "jag-1"));
    let r = present(&h, &jag, (&id, &secret), &[("scope", "notes:read")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], NOTES);
    assert_eq!(at["scope"], "notes:read");
    let user = UserStore::find_by_identity(&h.store, &idp.issuer, "carol-sub")
        .await
        .unwrap()
        .expect("provisioned on first use");
    assert_eq!(at["sub"], user.id.as_str());
    assert_eq!(user.groups, ["engineers"]);
    let arrived = h.audit_events("identity.id_jag").await;
    assert!(
        arrived
            .iter()
            .any(|e| e.detail["issuer"] == idp.issuer.as_str()
                && e.detail["idp_subject"] == "carol-sub"),
        "{arrived:?}"
    );
}

#[tokio::test]
async fn every_id_jag_rule_refuses_its_breach() {
    let h = H::new().await;
    engineers_policy(&h).await;
    let idp = Idp::start().await;
    register(&h, &idp, "corp", &["id-jag"], |_| {}).await;
    let stranger = Idp::start().await;
    let (id, secret) = jag_client(&h).await;
    let client = (id.as_str(), secret.as_str());
    let sign = |edit: &dyn Fn(&mut Value), jti: &str| {
        let mut c = jag_claims(&idp, &id, jti);
        edit(&mut c);
        idp.sign("oauth-id-jag+jwt", &c)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            sign(&|c| c["aud"] = json!("https://other-as.example"), "j1"),
            "invalid_grant",
        ),
        (
            "expired",
            sign(
                &|c| {
                    c["exp"] = json!(T0 - 600);
                    c["iat"] = json!(T0 - 900);
                },
                "j2",
            ),
            "invalid_grant",
        ),
        (
            "client_id mismatch",
            sign(&|c| c["client_id"] = json!("someone-else"), "j3"),
            "invalid_grant",
        ),
        (
            "unknown issuer",
            stranger.sign("oauth-id-jag+jwt", &{
                let mut c = jag_claims(&stranger, &id, "j4");
                c["iss"] = json!(stranger.issuer);
                c
            }),
            "invalid_grant",
        ),
        (
            "unregistered resource",
            sign(
                &|c| c["resource"] = json!("http://127.0.0.1:8080/mcp/nowhere"),
                "j5",
            ),
            "invalid_target",
        ),
        (
            "scope beyond the policy",
            // dave is in no group: the policy (default deny) allows him nothing.
            sign(
                &|c| {
                    c["sub"] = json!("dave-sub");
                    c["groups"] = json!([]);
                },
                "j6",
            ),
            "invalid_scope",
        ),
    ];
    for (what, jag, error) in &cases {
        let extra: &[(&str, &str)] = if *what == "scope beyond the policy" {
            &[("scope", "notes:write")]
        } else {
            &[]
        };
        let r = present(&h, jag, client, extra).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.error(), *error, "{what}: {}", r.body);
    }
    // Replay: the same jti twice.
    let jag = sign(&|_| {}, "j7");
    assert_eq!(present(&h, &jag, client, &[]).await.status, 200);
    let again = present(&h, &jag, client, &[]).await;
    assert_eq!(again.error(), "invalid_grant", "{}", again.body);
    // Replay on another replica sharing the store: refused there too.
    let jag = sign(&|_| {}, "j9");
    assert_eq!(present(&h, &jag, client, &[]).await.status, 200);
    let replica = h.replica().await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .append_pair("assertion", &jag)
        .finish();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{id}:{secret}"),
    );
    let req = axum::http::Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(axum::body::Body::from(body))
        .unwrap();
    let elsewhere = H::send_to(&replica, req).await;
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.body);
    assert_eq!(elsewhere.error(), "invalid_grant", "{}", elsewhere.body);
    // A client without the grant.
    let (mid, msecret) = h.machine.clone();
    let jag = idp.sign("oauth-id-jag+jwt", &jag_claims(&idp, &mid, "j8"));
    let r = present(&h, &jag, (&mid, &msecret), &[]).await;
    assert_eq!(r.error(), "unauthorized_client", "{}", r.body);
}

// === workload identity ===

async fn workload_setup(h: &H, idp: &Idp) {
    register(h, idp, "k8s", &["workload"], |r| {
        r.client_id = None;
        r.client_secret_sealed = None;
        r.domains.clear();
    })
    .await;
    let mut rec = warden_store::ClientStore::get(&h.store, "machine")
        .await
        .unwrap()
        .unwrap();
    rec.grant_types
        .push(warden_proto::oauth::JWT_BEARER_GRANT.into());
    warden_store::ClientStore::update(&h.store, &rec)
        .await
        .unwrap();
    warden_store::ClientStore::set_workloads(
        &h.store,
        "machine",
        &[WorkloadBinding {
            idp_name: "k8s".into(),
            subject: "system:serviceaccount:agents:planner".into(),
        }],
    )
    .await
    .unwrap();
    h.app.clients.invalidate("machine");
}

fn workload_claims(idp: &Idp, jti: &str) -> Value {
    json!({
        "iss": idp.issuer,
        "sub": "system:serviceaccount:agents:planner",
        "aud": ["http://127.0.0.1:8080"],
        "iat": T0,
        "exp": T0 + 600,
        "jti": jti,
    })
}

async fn present_workload(h: &H, token: &str) -> Resp {
    h.token(
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", token),
            ("resource", NOTES),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_workload_token_becomes_its_clients_token_without_a_secret() {
    let h = H::new().await;
    engineers_policy(&h).await;
    let idp = Idp::start().await;
    workload_setup(&h, &idp).await;
    let r = present_workload(&h, &idp.sign("JWT", &workload_claims(&idp, "w1"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let at = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], "machine");
    assert_eq!(at["client_id"], "machine");
    assert_eq!(at["aud"], NOTES);
    // Audited with the workload's issuer and subject.
    let issued = h.audit_events("token.issued").await;
    assert!(
        issued
            .iter()
            .any(|e| e.detail["issuer"] == idp.issuer.as_str()
                && e.detail["idp_subject"] == "system:serviceaccount:agents:planner"),
        "{issued:?}"
    );
    assert_eq!(
        at["scope"], "notes:read",
        "the policy's scopes for the client"
    );
}

#[tokio::test]
async fn every_workload_rule_refuses_its_breach() {
    let h = H::new().await;
    engineers_policy(&h).await;
    let idp = Idp::start().await;
    workload_setup(&h, &idp).await;
    let edit = |f: &dyn Fn(&mut Value), jti: &str| {
        let mut c = workload_claims(&idp, jti);
        f(&mut c);
        idp.sign("JWT", &c)
    };
    for (what, token) in [
        (
            "unknown sub",
            edit(
                &|c| c["sub"] = json!("system:serviceaccount:agents:intruder"),
                "w2",
            ),
        ),
        (
            "wrong aud",
            edit(&|c| c["aud"] = json!(["https://other.example"]), "w3"),
        ),
        (
            "expired",
            edit(
                &|c| {
                    c["exp"] = json!(T0 - 600);
                    c["iat"] = json!(T0 - 1200);
                },
                "w4",
            ),
        ),
        (
            "an access token's typ",
            jwt::sign(&workload_claims(&idp, "w5"), "at+jwt", &idp.key).unwrap(),
        ),
    ] {
        let r = present_workload(&h, &token).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.error(), "invalid_grant", "{what}: {}", r.body);
    }
    let token = idp.sign("JWT", &workload_claims(&idp, "w6"));
    assert_eq!(present_workload(&h, &token).await.status, 200);
    let replay = present_workload(&h, &token).await;
    assert_eq!(replay.error(), "invalid_grant", "replayed: {}", replay.body);
}
