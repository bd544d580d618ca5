use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::*;
use crate::jwt::{self, VerifyingKey, AT_JWT_TYP};
use crate::keys::{SigningAlg, SigningKey};

const NOW: i64 = 1_800_000_000;
const IDP: &str = "https://idp.example";
const CLIENT: &str = "warden-at-idp";
const NONCE: &str = "n-0S6_WzA2Mj";
const WARDEN: &str = "https://warden.example";
const MCP_CLIENT: &str = "https://client.example/client.json";
const K8S: &str = "https://kubernetes.default.svc";
const ENTRA: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

mod mapping;
mod metadata;

struct Idp {
    key: SigningKey,
    ring: Vec<Arc<VerifyingKey>>,
}

fn idp(alg: SigningAlg) -> Idp {
    let key = SigningKey::generate(alg, format!("{}-1", alg.as_str())).unwrap();
    let ring = vec![Arc::new(VerifyingKey::from_jwk(&key.public_jwk()).unwrap())];
    Idp { key, ring }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

impl Idp {
    /// Signs `claims` with this header (`alg` and `kid` are the key's).
    fn sign_with_header(
        &self,
        mut header: Map<String, Value>,
        claims: &Map<String, Value>,
    ) -> String {
        header.insert("alg".into(), json!(self.key.alg().as_str()));
        header.insert("kid".into(), json!(self.key.kid()));
        let input = format!("{}.{}", b64(&Value::Object(header)), b64(&json!(claims)));
        let sig = self.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn sign(&self, typ: Option<&str>, claims: &Map<String, Value>) -> String {
        match typ {
            Some(typ) => jwt::sign(claims, typ, &self.key).unwrap(),
            None => self.sign_with_header(Map::new(), claims),
        }
    }
}

/// `base` with `changes` applied; a `null` change removes the claim.
fn with(base: &Map<String, Value>, changes: Value) -> Map<String, Value> {
    let mut c = base.clone();
    for (k, v) in obj(changes) {
        if v.is_null() {
            c.remove(&k);
        } else {
            c.insert(k, v);
        }
    }
    c
}

// === ID tokens ===

fn id_claims() -> Map<String, Value> {
    obj(json!({
        "iss": IDP, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
        "iat": NOW, "exp": NOW + 300,
        "email": "Jane@Example.com", "email_verified": true,
        "name": "Jane Doe", "preferred_username": "jane",
    }))
}

fn id_rule<'a>(issuer: IssuerRule<'a>) -> IdTokenRule<'a> {
    IdTokenRule {
        issuer,
        client_id: CLIENT,
        nonce: NONCE,
        leeway: 30,
    }
}

fn check_id(idp: &Idp, token: &str) -> Result<Identity, FederationError> {
    verify_id_token(token, &idp.ring, &id_rule(IssuerRule::Exact(IDP)), NOW)
}

fn id_err(idp: &Idp, claims: &Map<String, Value>) -> FederationError {
    check_id(idp, &idp.sign(Some("JWT"), claims)).unwrap_err()
}

#[test]
fn an_id_token_signed_with_rs256_or_es256_gives_the_identity() {
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let idp = idp(alg);
        let id = check_id(&idp, &idp.sign(Some("JWT"), &id_claims())).unwrap();
        assert_eq!(id.issuer, IDP);
        assert_eq!(id.sub, "248289761001");
        assert_eq!(id.email.as_deref(), Some("Jane@Example.com"));
        assert!(id.email_verified);
        assert_eq!(id.name.as_deref(), Some("Jane Doe"));
        assert_eq!(id.preferred_username.as_deref(), Some("jane"));
        assert_eq!(id.tenant, None);
        assert_eq!(id.claims["nonce"], NONCE);
    }
}

#[test]
fn email_verified_is_true_only_when_the_provider_says_so() {
    let idp = idp(SigningAlg::Es256);
    for (value, verified) in [
        (json!(true), true),
        (json!("true"), true),
        (json!(false), false),
        (json!("yes"), false),
        (json!(1), false),
        (Value::Null, false),
    ] {
        let t = idp.sign(
            None,
            &with(&id_claims(), json!({ "email_verified": value })),
        );
        assert_eq!(
            check_id(&idp, &t).unwrap().email_verified,
            verified,
            "{value}"
        );
    }
}

#[test]
fn an_id_token_may_be_untyped_or_jwt_but_not_another_kind_of_token() {
    let idp = idp(SigningAlg::Es256);
    for typ in [None, Some("JWT"), Some("jwt"), Some("application/jwt")] {
        assert!(
            check_id(&idp, &idp.sign(typ, &id_claims())).is_ok(),
            "{typ:?}"
        );
    }
    for typ in [AT_JWT_TYP, ID_JAG_TYP, "logout+jwt"] {
        assert_eq!(
            check_id(&idp, &idp.sign(Some(typ), &id_claims())),
            Err(FederationError::WrongTyp),
            "{typ}"
        );
    }
}

#[test]
fn a_bad_signature_is_refused_and_told_apart_from_an_unknown_key() {
    let idp_a = idp(SigningAlg::Es256);
    let t = idp_a.sign(Some("JWT"), &id_claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged_claims = with(&id_claims(), json!({"sub": "admin"}));
    let forged = format!("{}.{}.{}", parts[0], b64(&json!(forged_claims)), parts[2]);
    let err = check_id(&idp_a, &forged).unwrap_err();
    assert_eq!(err, FederationError::BadSignature);
    assert!(!err.wants_fresh_keys());
    // Another key under the same kid: a bad signature, not an unknown key.
    let impostor = Idp {
        key: SigningKey::generate(SigningAlg::Es256, idp_a.key.kid().to_owned()).unwrap(),
        ring: idp_a.ring.clone(),
    };
    assert_eq!(
        check_id(&impostor, &impostor.sign(Some("JWT"), &id_claims())),
        Err(FederationError::BadSignature)
    );
    // A key the ring does not hold yet: the caller refetches the JWKS.
    let rotated = Idp {
        key: SigningKey::generate(SigningAlg::Es256, "next".into()).unwrap(),
        ring: idp_a.ring.clone(),
    };
    let err = check_id(&rotated, &rotated.sign(Some("JWT"), &id_claims())).unwrap_err();
    assert_eq!(err, FederationError::UnknownKid);
    assert!(err.wants_fresh_keys());
    let no_keys = verify_id_token(&t, &[], &id_rule(IssuerRule::Exact(IDP)), NOW).unwrap_err();
    assert_eq!(no_keys, FederationError::NoKeys);
    assert!(no_keys.wants_fresh_keys());
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let idp = idp(SigningAlg::Rs256);
    let body = b64(&json!(id_claims()));
    let none = format!("{}.{body}.", b64(&json!({"alg": "none", "kid": "RS256-1"})));
    assert!(matches!(
        check_id(&idp, &none),
        Err(FederationError::AlgNotAllowed(_))
    ));
    let input = format!("{}.{body}", b64(&json!({"alg": "HS256", "kid": "RS256-1"})));
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        idp.key.public_jwk().to_string().as_bytes(),
    );
    let tag = ring::hmac::sign(&key, input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let err = check_id(&idp, &hs).unwrap_err();
    assert!(matches!(err, FederationError::AlgNotAllowed(_)));
    assert_eq!(err.reason(), "alg_not_allowed");
    // An ES256 token is refused by an RS256-only ring.
    let es = self::idp(SigningAlg::Es256);
    let t = es.sign(Some("JWT"), &id_claims());
    assert!(matches!(
        check_id(&idp, &t),
        Err(FederationError::AlgNotAllowed(_))
    ));
}

#[test]
fn an_id_token_for_another_issuer_or_client_is_refused() {
    let idp = idp(SigningAlg::Es256);
    let c = with(&id_claims(), json!({"iss": "https://evil.example"}));
    assert_eq!(id_err(&idp, &c), FederationError::WrongIssuer);
    let c = with(&id_claims(), json!({"iss": format!("{IDP}/")}));
    assert_eq!(id_err(&idp, &c), FederationError::WrongIssuer);
    let c = with(&id_claims(), json!({"aud": "another-client"}));
    assert_eq!(id_err(&idp, &c), FederationError::WrongAudience);
    let c = with(&id_claims(), json!({"aud": ["another-client"]}));
    assert_eq!(id_err(&idp, &c), FederationError::WrongAudience);
    let c = with(&id_claims(), json!({"aud": null}));
    assert_eq!(id_err(&idp, &c), FederationError::WrongAudience);
}

#[test]
fn several_audiences_need_an_azp_naming_this_client() {
    let idp = idp(SigningAlg::Es256);
    let multi = with(
        &id_claims(),
        json!({"aud": [CLIENT, "https://api.example"]}),
    );
    assert_eq!(id_err(&idp, &multi), FederationError::AzpMismatch);
    let ok = with(&multi, json!({"azp": CLIENT}));
    assert!(check_id(&idp, &idp.sign(None, &ok)).is_ok());
    let other = with(&multi, json!({"azp": "another-client"}));
    assert_eq!(id_err(&idp, &other), FederationError::AzpMismatch);
    // An azp is checked even with a single audience.
    let single = with(&id_claims(), json!({"azp": "another-client"}));
    assert_eq!(id_err(&idp, &single), FederationError::AzpMismatch);
    let single = with(&id_claims(), json!({"aud": [CLIENT], "azp": CLIENT}));
    assert!(check_id(&idp, &idp.sign(None, &single)).is_ok());
    assert_eq!(FederationError::AzpMismatch.reason(), "azp_mismatch");
}

#[test]
fn id_token_times_honour_the_leeway_exactly() {
    let idp = idp(SigningAlg::Es256);
    let t = idp.sign(Some("JWT"), &id_claims());
    let rule = id_rule(IssuerRule::Exact(IDP));
    assert!(verify_id_token(&t, &idp.ring, &rule, NOW + 300 + 30).is_ok());
    assert_eq!(
        verify_id_token(&t, &idp.ring, &rule, NOW + 300 + 31),
        Err(FederationError::Expired)
    );
    let future = idp.sign(None, &with(&id_claims(), json!({"nbf": NOW + 30})));
    assert!(verify_id_token(&future, &idp.ring, &rule, NOW).is_ok());
    let future = idp.sign(None, &with(&id_claims(), json!({"nbf": NOW + 31})));
    assert_eq!(
        verify_id_token(&future, &idp.ring, &rule, NOW),
        Err(FederationError::NotYetValid)
    );
    let issued_later = idp.sign(None, &with(&id_claims(), json!({"iat": NOW + 31})));
    assert_eq!(
        verify_id_token(&issued_later, &idp.ring, &rule, NOW),
        Err(FederationError::NotYetValid)
    );
}

#[test]
fn an_id_token_needs_exp_and_iat() {
    let idp = idp(SigningAlg::Es256);
    for claim in ["exp", "iat"] {
        let c = with(&id_claims(), json!({ claim: null }));
        assert_eq!(id_err(&idp, &c), FederationError::MissingClaim(claim));
        let c = with(&id_claims(), json!({ claim: "soon" }));
        assert_eq!(id_err(&idp, &c), FederationError::MissingClaim(claim));
    }
}

#[test]
fn the_nonce_must_be_the_one_sent() {
    let idp = idp(SigningAlg::Es256);
    for nonce in [json!("another"), json!(""), json!(7), Value::Null] {
        let c = with(&id_claims(), json!({ "nonce": nonce }));
        assert_eq!(id_err(&idp, &c), FederationError::NonceMismatch, "{nonce}");
    }
    let err = FederationError::NonceMismatch;
    assert_eq!(err.reason(), "nonce_mismatch");
    assert!(!err.to_string().contains(NONCE));
}

#[test]
fn sub_is_required_non_empty_and_at_most_255_characters() {
    let idp = idp(SigningAlg::Es256);
    let longest = "s".repeat(MAX_SUB_LEN);
    let c = with(&id_claims(), json!({ "sub": longest }));
    assert_eq!(check_id(&idp, &idp.sign(None, &c)).unwrap().sub, longest);
    for sub in [
        json!("s".repeat(MAX_SUB_LEN + 1)),
        json!(""),
        json!(42),
        Value::Null,
    ] {
        let c = with(&id_claims(), json!({ "sub": sub }));
        assert_eq!(id_err(&idp, &c), FederationError::MissingClaim("sub"));
    }
}

// === Multi-tenant issuers ===

fn tenant_claims(tid: &str) -> Map<String, Value> {
    let iss = ENTRA.replace(TENANT_PLACEHOLDER, tid);
    with(&id_claims(), json!({ "iss": iss, "tid": tid }))
}

#[test]
fn an_issuer_template_is_recognised() {
    assert!(is_issuer_template(ENTRA));
    assert!(!is_issuer_template(IDP));
    assert!(!is_issuer_template(
        "https://login.microsoftonline.com/organizations/v2.0"
    ));
    let tenants = vec![TENANT.to_owned()];
    assert!(matches!(
        IssuerRule::from_config(ENTRA, &tenants),
        IssuerRule::Tenants {
            template: ENTRA,
            ..
        }
    ));
    assert!(matches!(
        IssuerRule::from_config(IDP, &tenants),
        IssuerRule::Exact(IDP)
    ));
}

#[test]
fn an_allowed_tenant_signs_in_with_its_own_issuer() {
    let idp = idp(SigningAlg::Rs256);
    let tenants = vec![TENANT.to_uppercase(), "another-tenant".to_owned()];
    let rule = id_rule(IssuerRule::from_config(ENTRA, &tenants));
    let t = idp.sign(Some("JWT"), &tenant_claims(TENANT));
    let id = verify_id_token(&t, &idp.ring, &rule, NOW).unwrap();
    assert_eq!(
        id.issuer,
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    assert_eq!(id.tenant.as_deref(), Some(TENANT));
}

#[test]
fn a_tenant_not_on_the_list_is_refused() {
    let idp = idp(SigningAlg::Rs256);
    let tenants = vec![TENANT.to_owned()];
    let rule = id_rule(IssuerRule::from_config(ENTRA, &tenants));
    let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let t = idp.sign(Some("JWT"), &tenant_claims(other));
    let err = verify_id_token(&t, &idp.ring, &rule, NOW).unwrap_err();
    assert_eq!(err, FederationError::TenantNotAllowed);
    assert_eq!(err.reason(), "tenant_not_allowed");
    // An empty allow-list accepts nobody.
    let none = id_rule(IssuerRule::from_config(ENTRA, &[]));
    let t = idp.sign(Some("JWT"), &tenant_claims(TENANT));
    assert_eq!(
        verify_id_token(&t, &idp.ring, &none, NOW),
        Err(FederationError::TenantNotAllowed)
    );
}

#[test]
fn the_issuer_must_be_the_template_filled_with_the_tokens_own_tenant() {
    let idp = idp(SigningAlg::Rs256);
    let tenants = vec![TENANT.to_owned(), "other-tenant".to_owned()];
    let rule = id_rule(IssuerRule::from_config(ENTRA, &tenants));
    // An allowed tid, but an iss of another tenant.
    let c = with(&tenant_claims("other-tenant"), json!({ "tid": TENANT }));
    let t = idp.sign(Some("JWT"), &c);
    assert_eq!(
        verify_id_token(&t, &idp.ring, &rule, NOW),
        Err(FederationError::WrongIssuer)
    );
    // No tid: held to the template itself.
    let c = with(&tenant_claims(TENANT), json!({ "tid": null }));
    let t = idp.sign(Some("JWT"), &c);
    assert_eq!(
        verify_id_token(&t, &idp.ring, &rule, NOW),
        Err(FederationError::WrongIssuer)
    );
    // A token whose iss is the template verbatim still needs an allowed tid.
    let c = with(&id_claims(), json!({ "iss": ENTRA }));
    let t = idp.sign(Some("JWT"), &c);
    assert_eq!(
        verify_id_token(&t, &idp.ring, &rule, NOW),
        Err(FederationError::MissingClaim("tid"))
    );
    // An exact rule never substitutes.
    let exact = id_rule(IssuerRule::Exact(ENTRA));
    let t = idp.sign(Some("JWT"), &tenant_claims(TENANT));
    assert_eq!(
        verify_id_token(&t, &idp.ring, &exact, NOW),
        Err(FederationError::WrongIssuer)
    );
}

// === ID-JAG ===

fn jag_claims() -> Map<String, Value> {
    obj(json!({
        "jti": "9e43f81b64a33f20116179", "iss": IDP, "sub": "U019488227",
        "email": "user@example.com", "name": "User", "aud": WARDEN,
        "resource": ["https://warden.example/mcp/chat", "https://warden.example/mcp/docs"],
        "client_id": MCP_CLIENT, "exp": NOW + 300, "iat": NOW,
        "scope": "chat.read  chat.history",
    }))
}

fn jag_rule() -> IdJagRule<'static> {
    IdJagRule {
        idp_issuer: IDP,
        audience: WARDEN,
        client_id: MCP_CLIENT,
        leeway: 30,
    }
}

fn check_jag(idp: &Idp, claims: &Map<String, Value>) -> Result<IdJag, FederationError> {
    verify_id_jag(
        &idp.sign(Some(ID_JAG_TYP), claims),
        &idp.ring,
        &jag_rule(),
        NOW,
    )
}

#[test]
fn an_id_jag_gives_the_user_client_resources_and_scopes() {
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let idp = idp(alg);
        let jag = check_jag(&idp, &jag_claims()).unwrap();
        assert_eq!(jag.sub, "U019488227");
        assert_eq!(jag.jti, "9e43f81b64a33f20116179");
        assert_eq!(jag.exp, NOW + 300);
        assert_eq!(jag.client_id, MCP_CLIENT);
        assert_eq!(
            jag.resources,
            [
                "https://warden.example/mcp/chat",
                "https://warden.example/mcp/docs"
            ]
        );
        assert_eq!(jag.scopes, ["chat.read", "chat.history"]);
        assert_eq!(jag.email.as_deref(), Some("user@example.com"));
        assert_eq!(jag.name.as_deref(), Some("User"));
    }
    let idp = idp(SigningAlg::Es256);
    let one = with(
        &jag_claims(),
        json!({"resource": "https://warden.example/mcp/chat", "scope": null, "email": null}),
    );
    let jag = check_jag(&idp, &one).unwrap();
    assert_eq!(jag.resources, ["https://warden.example/mcp/chat"]);
    assert!(jag.scopes.is_empty());
    assert_eq!(jag.email, None);
    let none = with(&jag_claims(), json!({"resource": null}));
    assert!(check_jag(&idp, &none).unwrap().resources.is_empty());
    for bad in [json!(7), json!(["https://a", 7]), json!({"a": 1})] {
        let c = with(&jag_claims(), json!({ "resource": bad }));
        assert_eq!(
            check_jag(&idp, &c),
            Err(FederationError::MissingClaim("resource"))
        );
    }
    let c = with(&jag_claims(), json!({ "scope": ["chat.read"] }));
    assert_eq!(
        check_jag(&idp, &c),
        Err(FederationError::MissingClaim("scope"))
    );
}

#[test]
fn an_id_jag_must_be_typed_as_one() {
    let idp = idp(SigningAlg::Es256);
    for typ in [
        "oauth-id-jag+jwt",
        "OAuth-ID-JAG+JWT",
        "application/oauth-id-jag+jwt",
    ] {
        let t = idp.sign(Some(typ), &jag_claims());
        assert!(
            verify_id_jag(&t, &idp.ring, &jag_rule(), NOW).is_ok(),
            "{typ}"
        );
    }
    for typ in [Some("JWT"), Some(AT_JWT_TYP), Some("id-jag+jwt"), None] {
        let t = idp.sign(typ, &jag_claims());
        assert_eq!(
            verify_id_jag(&t, &idp.ring, &jag_rule(), NOW),
            Err(FederationError::WrongTyp),
            "{typ:?}"
        );
    }
}

#[test]
fn an_id_jag_is_for_warden_alone() {
    let idp = idp(SigningAlg::Es256);
    let c = with(&jag_claims(), json!({"aud": [WARDEN]}));
    assert!(check_jag(&idp, &c).is_ok());
    for aud in [
        json!("https://other-as.example"),
        json!([WARDEN, "https://other-as.example"]),
        json!([]),
        Value::Null,
    ] {
        let c = with(&jag_claims(), json!({ "aud": aud }));
        assert_eq!(
            check_jag(&idp, &c),
            Err(FederationError::WrongAudience),
            "{aud}"
        );
    }
    let c = with(&jag_claims(), json!({"iss": "https://evil.example"}));
    assert_eq!(check_jag(&idp, &c), Err(FederationError::WrongIssuer));
}

#[test]
fn an_expired_id_jag_is_refused() {
    let idp = idp(SigningAlg::Es256);
    let c = with(&jag_claims(), json!({"exp": NOW - 31}));
    assert_eq!(check_jag(&idp, &c), Err(FederationError::Expired));
    let c = with(&jag_claims(), json!({"exp": NOW - 30}));
    assert!(check_jag(&idp, &c).is_ok());
}

#[test]
fn an_id_jag_needs_jti_iat_sub_and_client_id() {
    let idp = idp(SigningAlg::Es256);
    for claim in ["jti", "iat", "sub", "client_id", "exp"] {
        let c = with(&jag_claims(), json!({ claim: null }));
        assert_eq!(
            check_jag(&idp, &c),
            Err(FederationError::MissingClaim(claim)),
            "{claim}"
        );
    }
    let c = with(&jag_claims(), json!({ "jti": "" }));
    assert_eq!(
        check_jag(&idp, &c),
        Err(FederationError::MissingClaim("jti"))
    );
}

#[test]
fn an_id_jag_for_another_client_is_refused() {
    let idp = idp(SigningAlg::Es256);
    let c = with(
        &jag_claims(),
        json!({"client_id": "https://other.example/client.json"}),
    );
    let err = check_jag(&idp, &c).unwrap_err();
    assert_eq!(err, FederationError::ClientMismatch);
    assert_eq!(err.reason(), "client_mismatch");
}

// === Workload tokens ===

fn k8s_claims() -> Map<String, Value> {
    obj(json!({
        "iss": K8S, "sub": "system:serviceaccount:agents:indexer",
        "aud": ["https://warden.example", "https://kubernetes.default.svc"],
        "exp": NOW + 600, "iat": NOW, "nbf": NOW, "jti": "c2b2c0f4",
        "kubernetes.io": {"namespace": "agents"},
    }))
}

fn workload_rule(audiences: &[String]) -> WorkloadRule<'_> {
    WorkloadRule {
        issuer: K8S,
        audiences,
        leeway: 30,
    }
}

fn warden_audience() -> Vec<String> {
    vec![
        "https://warden.example/oauth/token".to_owned(),
        WARDEN.to_owned(),
    ]
}

fn check_workload(
    idp: &Idp,
    typ: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<Workload, FederationError> {
    let audiences = warden_audience();
    verify_workload_token(
        &idp.sign(typ, claims),
        &idp.ring,
        &workload_rule(&audiences),
        NOW,
    )
}

#[test]
fn a_service_account_token_or_svid_gives_the_workload() {
    let k8s = idp(SigningAlg::Rs256);
    let w = check_workload(&k8s, None, &k8s_claims()).unwrap();
    assert_eq!(w.sub, "system:serviceaccount:agents:indexer");
    assert_eq!(w.jti.as_deref(), Some("c2b2c0f4"));
    assert_eq!(w.exp, NOW + 600);
    assert_eq!(w.claims["kubernetes.io"]["namespace"], "agents");
    let spire = idp(SigningAlg::Es256);
    let svid = obj(json!({
        "iss": K8S, "sub": "spiffe://example.org/ns/agents/sa/indexer",
        "aud": WARDEN, "exp": NOW + 300,
    }));
    for typ in [Some("JWT"), Some("JOSE"), None] {
        let w = check_workload(&spire, typ, &svid).unwrap();
        assert_eq!(w.sub, "spiffe://example.org/ns/agents/sa/indexer");
        assert_eq!(w.jti, None);
    }
}

#[test]
fn a_workload_token_for_another_audience_or_issuer_is_refused() {
    let k8s = idp(SigningAlg::Rs256);
    let c = with(
        &k8s_claims(),
        json!({"aud": ["https://kubernetes.default.svc"]}),
    );
    assert_eq!(
        check_workload(&k8s, None, &c),
        Err(FederationError::WrongAudience)
    );
    let t = k8s.sign(None, &k8s_claims());
    assert_eq!(
        verify_workload_token(&t, &k8s.ring, &workload_rule(&[]), NOW),
        Err(FederationError::WrongAudience)
    );
    let c = with(&k8s_claims(), json!({"iss": "https://other-cluster"}));
    assert_eq!(
        check_workload(&k8s, None, &c),
        Err(FederationError::WrongIssuer)
    );
}

#[test]
fn an_expired_workload_token_or_one_without_sub_is_refused() {
    let k8s = idp(SigningAlg::Rs256);
    let c = with(&k8s_claims(), json!({"exp": NOW - 31}));
    assert_eq!(
        check_workload(&k8s, None, &c),
        Err(FederationError::Expired)
    );
    let c = with(&k8s_claims(), json!({"exp": null}));
    assert_eq!(
        check_workload(&k8s, None, &c),
        Err(FederationError::MissingClaim("exp"))
    );
    let c = with(&k8s_claims(), json!({"sub": null}));
    assert_eq!(
        check_workload(&k8s, None, &c),
        Err(FederationError::MissingClaim("sub"))
    );
}

#[test]
fn another_kind_of_token_is_not_a_workload_token() {
    let k8s = idp(SigningAlg::Rs256);
    for typ in [AT_JWT_TYP, "application/at+jwt", ID_JAG_TYP] {
        assert_eq!(
            check_workload(&k8s, Some(typ), &k8s_claims()),
            Err(FederationError::WrongTyp),
            "{typ}"
        );
    }
}

// === Errors ===

#[test]
fn every_error_has_its_own_reason_and_no_claim_values() {
    let all = [
        FederationError::Malformed,
        FederationError::AlgNotAllowed("HS256".into()),
        FederationError::WrongTyp,
        FederationError::Crit,
        FederationError::UnknownKid,
        FederationError::NoKeys,
        FederationError::BadSignature,
        FederationError::WrongIssuer,
        FederationError::WrongAudience,
        FederationError::AzpMismatch,
        FederationError::Expired,
        FederationError::NotYetValid,
        FederationError::NonceMismatch,
        FederationError::MissingClaim("sub"),
        FederationError::ClientMismatch,
        FederationError::TenantNotAllowed,
        FederationError::BadMetadata("jwks_uri"),
        FederationError::IssuerMismatch,
    ];
    let reasons: std::collections::BTreeSet<&str> =
        all.iter().map(FederationError::reason).collect();
    assert_eq!(reasons.len(), all.len());
    assert!(reasons
        .iter()
        .all(|r| r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    // A refused token's claims never reach the message.
    let idp = idp(SigningAlg::Es256);
    let c = with(
        &id_claims(),
        json!({"nonce": "secret-nonce", "sub": "secret-sub"}),
    );
    let err = id_err(&idp, &c);
    assert!(!format!("{err} {err:?}").contains("secret"));
    assert_eq!(check_id(&idp, "a.b.c"), Err(FederationError::Malformed));
}
