use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde_json::{json, Value};

use super::*;
use crate::keys::{SigningAlg, SigningKey};

const NOW: i64 = 1_800_000_000;
const TOKEN_URI: &str = "https://warden.example/oauth/token";
const MCP_URI: &str = "https://warden.example/mcp/notes";
const ACCESS_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
const MAX_AGE: i64 = 60;
const LEEWAY: i64 = 5;
const ALGS: &[&str] = &["ES256", "EdDSA", "RS256"];

mod binding;
mod nonces;
mod rfc;

/// One key of each algorithm, made once: an RSA key takes a while to generate.
fn key(alg: SigningAlg) -> &'static SigningKey {
    static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256]
            .map(|alg| SigningKey::generate(alg, "client".into()).unwrap())
    });
    match alg {
        SigningAlg::Es256 => &keys[0],
        SigningAlg::EdDsa => &keys[1],
        SigningAlg::Rs256 => &keys[2],
    }
}

/// The public JWK a client puts in its proofs: no `kid`, `alg` or `use`.
fn jwk_of(key: &SigningKey) -> Value {
    let mut jwk = key.public_jwk();
    let members = jwk.as_object_mut().unwrap();
    for name in ["kid", "alg", "use"] {
        members.remove(name);
    }
    jwk
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A JWS of `header` and `claims` signed by `key`, whatever the header says.
fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The header of a good proof by `key`.
fn header(key: &SigningKey) -> Value {
    json!({ "typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": jwk_of(key) })
}

/// The claims of a good proof for `htm` and `htu`.
fn claims(htm: &str, htu: &str) -> Value {
    json!({ "jti": "e1j3V_bKic8-LAEB", "htm": htm, "htu": htu, "iat": NOW })
}

/// The claims of a good proof for the gateway, with `ath` for [`ACCESS_TOKEN`].
fn resource_claims() -> Value {
    with(claims("POST", MCP_URI), "ath", json!(s256(ACCESS_TOKEN)))
}

fn with(mut v: Value, name: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(name.into(), value);
    v
}

fn without(mut v: Value, name: &str) -> Value {
    v.as_object_mut().unwrap().remove(name);
    v
}

/// The token endpoint's rule: no access token, no expected key, no nonces.
fn token_rule() -> ProofRule<'static> {
    ProofRule {
        method: "POST",
        uri: TOKEN_URI,
        access_token: None,
        expected_jkt: None,
        nonce: None,
        max_age: MAX_AGE,
        leeway: LEEWAY,
        algorithms: ALGS,
    }
}

/// The gateway's rule for a request carrying [`ACCESS_TOKEN`].
fn resource_rule() -> ProofRule<'static> {
    ProofRule {
        uri: MCP_URI,
        access_token: Some(ACCESS_TOKEN),
        ..token_rule()
    }
}

fn es256() -> &'static SigningKey {
    key(SigningAlg::Es256)
}

/// A proof by the ES256 key with `claims`.
fn proof(claims: &Value) -> String {
    sign(es256(), &header(es256()), claims)
}

fn check(proof: &str, rule: &ProofRule<'_>) -> Result<Proof, DpopError> {
    verify_proof(proof, rule, NOW)
}

/// `proof` checked at the token endpoint with `algorithms` as the allow-list.
fn check_algs(proof: &str, algorithms: &[&str]) -> Result<Proof, DpopError> {
    let rule = ProofRule {
        algorithms,
        ..token_rule()
    };
    check(proof, &rule)
}

#[test]
fn good_proofs_verify_for_each_alg() {
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
        let key = key(alg);
        let p = sign(key, &header(key), &claims("POST", TOKEN_URI));
        let got = check(&p, &token_rule()).unwrap();
        assert_eq!(
            got.jkt,
            jwk_thumbprint(&key.public_jwk()).unwrap(),
            "{alg:?}"
        );
        assert_eq!(got.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(got.iat, NOW);
        assert_eq!(got.nonce, None);
        assert_eq!(got.accepted_until, NOW + MAX_AGE + LEEWAY);

        let p = sign(key, &header(key), &resource_claims());
        assert_eq!(check(&p, &resource_rule()).map(|p| p.jkt), Ok(got.jkt));
    }
}

#[test]
fn an_rsa_proof_may_use_pss() {
    // RFC 9449's own metadata example lists PS256: an RSA key serves RS* and PS* alike.
    let rsa = key(SigningAlg::Rs256);
    let header = with(header(rsa), "alg", json!("PS256"));
    let input = format!("{}.{}", b64(&header), b64(&claims("POST", TOKEN_URI)));
    let pair = ring::rsa::KeyPair::from_pkcs8(rsa.pkcs8()).unwrap();
    let mut sig = vec![0; pair.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    pair.sign(
        &ring::signature::RSA_PSS_SHA256,
        &rng,
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let p = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert!(check_algs(&p, &["PS256"]).is_ok());
    // Not on the allow-list, not accepted; nor is a PS256 proof whose jwk says RS256.
    assert_eq!(
        check(&p, &token_rule()),
        Err(DpopError::AlgNotAllowed("PS256".into()))
    );
    let pinned = with(header, "jwk", rsa.public_jwk());
    let input = format!("{}.{}", b64(&pinned), b64(&claims("POST", TOKEN_URI)));
    let p = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 256]));
    assert_eq!(check_algs(&p, &["PS256"]), Err(DpopError::BadJwk));
}

#[test]
fn typ_must_be_dpop_jwt() {
    let c = claims("POST", TOKEN_URI);
    for typ in [None, Some("JWT"), Some("at+jwt"), Some("dpop")] {
        let h = match typ {
            Some(t) => with(header(es256()), "typ", json!(t)),
            None => without(header(es256()), "typ"),
        };
        assert_eq!(
            check(&sign(es256(), &h, &c), &token_rule()),
            Err(DpopError::WrongTyp),
            "{typ:?}"
        );
    }
    // A media type is compared case-insensitively, with or without `application/`.
    let h = with(header(es256()), "typ", json!("application/DPoP+JWT"));
    assert!(check(&sign(es256(), &h, &c), &token_rule()).is_ok());
}

#[test]
fn alg_none_is_refused_even_when_listed() {
    let h = with(header(es256()), "alg", json!("none"));
    let p = format!("{}.{}.", b64(&h), b64(&claims("POST", TOKEN_URI)));
    assert_eq!(
        check_algs(&p, &["none", "ES256"]),
        Err(DpopError::AlgNotAllowed("none".into()))
    );
}

#[test]
fn hmac_keyed_with_the_public_jwk_is_refused_even_when_listed() {
    // The classic confusion: a verifier that takes the jwk's bytes as an HMAC key would
    // accept this, and anyone can compute it.
    let jwk = jwk_of(es256());
    let h = with(header(es256()), "alg", json!("HS256"));
    let input = format!("{}.{}", b64(&h), b64(&claims("POST", TOKEN_URI)));
    for secret in [
        serde_json::to_vec(&jwk).unwrap(),
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
    ] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let tag = hmac::sign(&key, input.as_bytes());
        let p = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(
            check_algs(&p, &["HS256", "ES256"]),
            Err(DpopError::AlgNotAllowed("HS256".into()))
        );
    }
}

#[test]
fn an_alg_off_the_allow_list_is_refused() {
    let ed = key(SigningAlg::EdDsa);
    let p = sign(ed, &header(ed), &claims("POST", TOKEN_URI));
    assert_eq!(
        check_algs(&p, &["ES256"]),
        Err(DpopError::AlgNotAllowed("EdDSA".into()))
    );
}

#[test]
fn the_jwk_must_be_present_public_and_of_the_alg() {
    let c = claims("POST", TOKEN_URI);
    let p = sign(es256(), &without(header(es256()), "jwk"), &c);
    assert_eq!(check(&p, &token_rule()), Err(DpopError::BadJwk));
    for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
        let jwk = with(jwk_of(es256()), private, json!("AQAB"));
        let p = sign(es256(), &with(header(es256()), "jwk", jwk), &c);
        assert_eq!(
            check(&p, &token_rule()),
            Err(DpopError::PrivateJwk),
            "{private}"
        );
    }
    // A symmetric key, and an EC key under an EdDSA header.
    let oct = json!({ "kty": "oct", "k": "c2VjcmV0" });
    let p = sign(es256(), &with(header(es256()), "jwk", oct), &c);
    assert_eq!(check(&p, &token_rule()), Err(DpopError::PrivateJwk));
    let ed = key(SigningAlg::EdDsa);
    let p = sign(ed, &with(header(ed), "jwk", jwk_of(es256())), &c);
    assert_eq!(check(&p, &token_rule()), Err(DpopError::BadJwk));
    let p = sign(es256(), &with(header(es256()), "jwk", json!("EC")), &c);
    assert_eq!(check(&p, &token_rule()), Err(DpopError::BadJwk));
}

#[test]
fn a_signature_by_another_key_than_the_jwk_is_refused() {
    let other = SigningKey::generate(SigningAlg::Es256, "other".into()).unwrap();
    let p = sign(&other, &header(es256()), &claims("POST", TOKEN_URI));
    assert_eq!(check(&p, &token_rule()), Err(DpopError::BadSignature));
    // A proof altered after signing.
    let good = proof(&claims("POST", TOKEN_URI));
    let (signed, sig) = good.rsplit_once('.').unwrap();
    let (h, _) = signed.split_once('.').unwrap();
    let forged = format!("{h}.{}.{sig}", b64(&claims("POST", MCP_URI)));
    let rule = ProofRule {
        uri: MCP_URI,
        ..token_rule()
    };
    assert_eq!(check(&forged, &rule), Err(DpopError::BadSignature));
}

#[test]
fn malformed_proofs_are_refused() {
    for p in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"A".repeat(20_000)] {
        assert_eq!(check(p, &token_rule()), Err(DpopError::Malformed));
    }
    let crit = with(header(es256()), "crit", json!(["exp"]));
    let p = sign(es256(), &crit, &claims("POST", TOKEN_URI));
    assert_eq!(check(&p, &token_rule()), Err(DpopError::Crit));
}

#[test]
fn required_claims_must_be_present_and_well_typed() {
    let good = claims("POST", TOKEN_URI);
    for name in ["jti", "htm", "htu", "iat"] {
        let p = proof(&without(good.clone(), name));
        assert_eq!(
            check(&p, &token_rule()),
            Err(DpopError::MissingClaim(name)),
            "{name}"
        );
    }
    let bad = [
        ("jti", json!("")),
        ("jti", json!(42)),
        ("jti", json!("j".repeat(MAX_JTI_LEN + 1))),
        ("htm", json!(["POST"])),
        ("iat", json!("1800000000")),
        ("iat", json!(1_800_000_000.5)),
        ("nonce", json!(7)),
    ];
    for (name, value) in bad {
        let p = proof(&with(good.clone(), name, value.clone()));
        assert_eq!(
            check(&p, &token_rule()),
            Err(DpopError::MissingClaim(name)),
            "{name}: {value}"
        );
    }
    let longest = with(good, "jti", json!("j".repeat(MAX_JTI_LEN)));
    assert!(check(&proof(&longest), &token_rule()).is_ok());
}

#[test]
fn htm_must_be_the_method_exactly() {
    for htm in ["GET", "post", "Post", "POST "] {
        let p = proof(&claims(htm, TOKEN_URI));
        assert_eq!(
            check(&p, &token_rule()),
            Err(DpopError::WrongMethod),
            "{htm}"
        );
    }
}

#[test]
fn htu_must_name_the_request_uri() {
    for htu in [
        "https://warden.example/oauth/authorize",
        "https://warden.example/oauth/token/",
        "https://warden.example/oauth/Token",
        "https://evil.example/oauth/token",
        "https://warden.example.evil.example/oauth/token",
        "http://warden.example/oauth/token",
        "https://warden.example:8443/oauth/token",
        "/oauth/token",
        r"https://warden.example\oauth\token",
    ] {
        let p = proof(&claims("POST", htu));
        assert_eq!(check(&p, &token_rule()), Err(DpopError::WrongUri), "{htu}");
    }
}

#[test]
fn htu_is_compared_without_query_and_fragment_and_after_normalisation() {
    for htu in [
        "https://warden.example/oauth/token?x=1",
        "https://warden.example/oauth/token#frag",
        "https://warden.example/oauth/token?",
        "HTTPS://Warden.EXAMPLE/oauth/token",
        "https://warden.example:443/oauth/token",
        "https://warden.example/oauth/%74oken",
        "https://warden.example/oauth/x/../token",
    ] {
        let p = proof(&claims("POST", htu));
        assert!(check(&p, &token_rule()).is_ok(), "{htu}");
    }
    // The request side is normalised the same way.
    let p = proof(&claims("POST", TOKEN_URI));
    let rule = ProofRule {
        uri: "https://WARDEN.example:443/oauth/token?grant_type=x",
        ..token_rule()
    };
    assert!(check(&p, &rule).is_ok());
    let rule = ProofRule {
        uri: "not a uri",
        ..token_rule()
    };
    assert_eq!(check(&p, &rule), Err(DpopError::WrongUri));
}

#[test]
fn iat_must_be_within_the_window_exactly() {
    let at = |iat: i64| proof(&with(claims("POST", TOKEN_URI), "iat", json!(iat)));
    let oldest = NOW - MAX_AGE - LEEWAY;
    assert!(check(&at(oldest), &token_rule()).is_ok());
    assert_eq!(
        check(&at(oldest - 1), &token_rule()),
        Err(DpopError::TooOld)
    );
    assert!(check(&at(NOW + LEEWAY), &token_rule()).is_ok());
    assert_eq!(
        check(&at(NOW + LEEWAY + 1), &token_rule()),
        Err(DpopError::IssuedInFuture)
    );
    // The record of a proof made in the future lasts as long as it is accepted.
    let future = check(&at(NOW + LEEWAY), &token_rule()).unwrap();
    assert_eq!(future.accepted_until, NOW + 2 * LEEWAY + MAX_AGE);
    let p = at(NOW);
    assert!(verify_proof(&p, &token_rule(), NOW + MAX_AGE + LEEWAY).is_ok());
    assert_eq!(
        verify_proof(&p, &token_rule(), NOW + MAX_AGE + LEEWAY + 1),
        Err(DpopError::TooOld)
    );
}

#[test]
fn ath_must_hash_the_access_token_presented() {
    let c = claims("POST", MCP_URI);
    assert_eq!(
        check(&proof(&c), &resource_rule()),
        Err(DpopError::MissingClaim("ath"))
    );
    for ath in [
        s256("another token"),
        s256(&format!("{ACCESS_TOKEN} ")),
        URL_SAFE_NO_PAD.encode(ACCESS_TOKEN),
    ] {
        let p = proof(&with(c.clone(), "ath", json!(ath)));
        assert_eq!(check(&p, &resource_rule()), Err(DpopError::AthMismatch));
    }
    let p = proof(&with(c, "ath", json!(42)));
    assert_eq!(
        check(&p, &resource_rule()),
        Err(DpopError::MissingClaim("ath"))
    );
}

#[test]
fn ath_without_an_access_token_is_ignored() {
    let c = with(claims("POST", TOKEN_URI), "ath", json!(s256("any")));
    assert!(check(&proof(&c), &token_rule()).is_ok());
}

#[test]
fn the_key_must_have_the_expected_thumbprint() {
    let jkt = jwk_thumbprint(&jwk_of(es256())).unwrap();
    let p = proof(&claims("POST", TOKEN_URI));
    let rule = ProofRule {
        expected_jkt: Some(&jkt),
        ..token_rule()
    };
    assert_eq!(check(&p, &rule).map(|p| p.jkt), Ok(jkt.clone()));
    let ed = key(SigningAlg::EdDsa);
    let other = sign(ed, &header(ed), &claims("POST", TOKEN_URI));
    assert_eq!(check(&other, &rule), Err(DpopError::KeyMismatch));
}

#[test]
fn every_error_has_its_own_reason_and_an_rfc_code() {
    use DpopError::*;
    let proof_errors = [
        MissingProof,
        Malformed,
        WrongTyp,
        AlgNotAllowed("HS256".into()),
        Crit,
        BadJwk,
        PrivateJwk,
        BadSignature,
        MissingClaim("jti"),
        WrongMethod,
        WrongUri,
        TooOld,
        IssuedInFuture,
        AthMismatch,
    ];
    let nonce_errors = [MissingNonce, StaleNonce, InvalidNonce];
    let binding_errors = [
        KeyMismatch,
        BoundTokenAsBearer,
        UnboundTokenAsDpop,
        UnsupportedConfirmation,
    ];
    for at in [Endpoint::Token, Endpoint::Resource] {
        for e in &proof_errors {
            assert_eq!(e.error_code(at), "invalid_dpop_proof", "{e:?}");
        }
        for e in &nonce_errors {
            assert_eq!(e.error_code(at), "use_dpop_nonce", "{e:?}");
        }
    }
    for e in &binding_errors {
        assert_eq!(e.error_code(Endpoint::Resource), "invalid_token", "{e:?}");
        assert_eq!(e.error_code(Endpoint::Token), "invalid_grant", "{e:?}");
    }
    let all: Vec<_> = [&proof_errors[..], &nonce_errors, &binding_errors].concat();
    let reasons: std::collections::BTreeSet<&str> = all.iter().map(DpopError::reason).collect();
    assert_eq!(reasons.len(), all.len());
    assert!(reasons
        .iter()
        .all(|r| r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
}

#[test]
fn errors_carry_no_proof_or_token() {
    let p = proof(&claims("GET", TOKEN_URI));
    let err = check(&p, &resource_rule()).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&p[..20]) && !shown.contains(ACCESS_TOKEN));
    let rule = format!("{:?}", resource_rule());
    assert!(!rule.contains(ACCESS_TOKEN) && rule.contains("[REDACTED]"));
}
