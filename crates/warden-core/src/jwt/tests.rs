use serde_json::json;

use super::*;
use crate::keys::{SigningAlg, SigningKey};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://warden.example";
const AUD: &str = "https://warden.example/mcp/notes";

fn claims(exp_in: i64) -> Map<String, Value> {
    let v = json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "client_id": "c1",
        "iat": NOW, "nbf": NOW, "exp": NOW + exp_in, "jti": "j1", "scope": "notes:read",
    });
    v.as_object().cloned().unwrap()
}

fn validation() -> Validation {
    Validation {
        algorithms: vec!["ES256".into(), "EdDSA".into(), "RS256".into()],
        typ: vec![AT_JWT_TYP.into()],
        issuer: ISS.into(),
        audience: Some(AUD.into()),
        leeway: 30,
    }
}

fn setup(alg: SigningAlg) -> (SigningKey, VerifyingKey) {
    let sk = SigningKey::generate(alg, "k1".into()).unwrap();
    let vk = VerifyingKey::from_jwk(&sk.public_jwk()).unwrap();
    (sk, vk)
}

fn check(token: &str, vk: &VerifyingKey, v: &Validation, now: i64) -> Result<(), JwtError> {
    verify(token, |_| vec![vk], v, now).map(|_| ())
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn valid_tokens_verify_for_each_alg() {
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
        let (sk, vk) = setup(alg);
        let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
        let got = verify(
            &t,
            |kid| {
                assert_eq!(kid, Some("k1"));
                vec![&vk]
            },
            &validation(),
            NOW,
        )
        .unwrap();
        assert_eq!(got["sub"], "alice");
    }
}

#[test]
fn expiry_honours_the_leeway_exactly() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(60), AT_JWT_TYP, &sk).unwrap();
    assert_eq!(check(&t, &vk, &validation(), NOW + 60 + 30), Ok(()));
    assert_eq!(
        check(&t, &vk, &validation(), NOW + 60 + 31),
        Err(JwtError::Expired)
    );
    let mut strict = validation();
    strict.leeway = 0;
    assert_eq!(check(&t, &vk, &strict, NOW + 61), Err(JwtError::Expired));
}

#[test]
fn not_before_in_the_future_is_refused_beyond_leeway() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    assert_eq!(check(&t, &vk, &validation(), NOW - 30), Ok(()));
    assert_eq!(
        check(&t, &vk, &validation(), NOW - 31),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn wrong_issuer_and_audience_are_refused() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    let mut v = validation();
    v.audience = Some("https://warden.example/mcp/other".into());
    assert_eq!(check(&t, &vk, &v, NOW), Err(JwtError::WrongAudience));
    let mut v = validation();
    v.issuer = "https://evil.example".into();
    assert_eq!(check(&t, &vk, &v, NOW), Err(JwtError::WrongIssuer));
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let body = b64(&Value::Object(claims(900)));
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","typ":"at+jwt","kid":"k1"})),
        body
    );
    let mut v = validation();
    v.algorithms.push("none".into());
    v.algorithms.push("HS256".into());
    assert!(matches!(
        check(&none, &vk, &v, NOW),
        Err(JwtError::AlgNotAllowed(_))
    ));
    // HS256 keyed with the public JWK text: the classic confusion attack.
    let input = format!(
        "{}.{}",
        b64(&json!({"alg":"HS256","typ":"at+jwt","kid":"k1"})),
        body
    );
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        sk.public_jwk().to_string().as_bytes(),
    );
    let tag = ring::hmac::sign(&key, input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert!(matches!(
        check(&hs, &vk, &v, NOW),
        Err(JwtError::AlgNotAllowed(_))
    ));
}

#[test]
fn alg_must_match_the_keys_own_alg() {
    let (sk, _) = setup(SigningAlg::EdDsa);
    let (_, es_vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    assert_eq!(
        check(&t, &es_vk, &validation(), NOW),
        Err(JwtError::UnknownKid)
    );
}

#[test]
fn tampered_payload_and_foreign_key_fail_the_signature() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims(900);
    c.insert("scope".into(), json!("notes:admin"));
    let forged = format!("{}.{}.{}", parts[0], b64(&Value::Object(c)), parts[2]);
    assert_eq!(
        check(&forged, &vk, &validation(), NOW),
        Err(JwtError::BadSignature)
    );
    let (_, other_vk) = setup(SigningAlg::Es256);
    assert_eq!(
        check(&t, &other_vk, &validation(), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn unknown_kid_typ_and_crit_are_refused() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    assert_eq!(
        verify(&t, |_| vec![], &validation(), NOW).map(|_| ()),
        Err(JwtError::UnknownKid)
    );
    let id_token = sign(&claims(900), "JWT", &sk).unwrap();
    assert_eq!(
        check(&id_token, &vk, &validation(), NOW),
        Err(JwtError::WrongTyp)
    );
    let app = sign(&claims(900), "application/at+jwt", &sk).unwrap();
    assert_eq!(check(&app, &vk, &validation(), NOW), Ok(()));
    let body = b64(&Value::Object(claims(900)));
    let input = format!(
        "{}.{}",
        b64(&json!({"alg":"ES256","typ":"at+jwt","kid":"k1","crit":["x"]})),
        body
    );
    let sig = sk.sign(input.as_bytes()).unwrap();
    let crit = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(check(&crit, &vk, &validation(), NOW), Err(JwtError::Crit));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let (_, vk) = setup(SigningAlg::Es256);
    for bad in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "eyJ.eyJ.",
        "\u{0}.\u{1}.\u{2}",
    ] {
        assert_eq!(
            check(bad, &vk, &validation(), NOW),
            Err(JwtError::Malformed),
            "{bad:?}"
        );
    }
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        check(&huge, &vk, &validation(), NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn missing_or_non_numeric_exp_is_refused() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let mut c = claims(900);
    c.remove("exp");
    let t = sign(&c, AT_JWT_TYP, &sk).unwrap();
    assert_eq!(
        check(&t, &vk, &validation(), NOW),
        Err(JwtError::Claim("exp"))
    );
    c.insert("exp".into(), json!("tomorrow"));
    let t = sign(&c, AT_JWT_TYP, &sk).unwrap();
    assert_eq!(
        check(&t, &vk, &validation(), NOW),
        Err(JwtError::Claim("exp"))
    );
}

fn own_rule(audience: Audience<'_>, expiry: Expiry) -> AccessTokenRule<'_> {
    AccessTokenRule {
        issuer: ISS,
        audience,
        leeway: 30,
        expiry,
    }
}

#[test]
fn own_tokens_take_their_algorithms_from_the_key_ring() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    let rule = own_rule(Audience::Exactly(AUD), Expiry::Enforce);
    assert_eq!(
        verify_access_token(&t, &ring, &rule, NOW).unwrap()["sub"],
        "alice"
    );
    // An EdDSA token is refused by an ES256-only ring even with a kid that matches.
    let (ed, _) = setup(SigningAlg::EdDsa);
    let t = sign(&claims(900), AT_JWT_TYP, &ed).unwrap();
    assert!(matches!(
        verify_access_token(&t, &ring, &rule, NOW),
        Err(JwtError::AlgNotAllowed(_))
    ));
    assert_eq!(
        verify_access_token(&t, &[], &rule, NOW),
        Err(JwtError::NoKeys)
    );
}

#[test]
fn own_tokens_name_exactly_one_audience() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let with_aud = |aud: Value| {
        let mut c = claims(900);
        c.insert("aud".into(), aud);
        sign(&c, AT_JWT_TYP, &sk).unwrap()
    };
    for (audience, name) in [
        (Audience::Exactly(AUD), "exactly"),
        (Audience::AnyOne, "any one"),
    ] {
        let rule = own_rule(audience, Expiry::Enforce);
        assert!(
            verify_access_token(&with_aud(json!(AUD)), &ring, &rule, NOW).is_ok(),
            "{name}"
        );
        assert!(
            verify_access_token(&with_aud(json!([AUD])), &ring, &rule, NOW).is_ok(),
            "{name}"
        );
        // An array that merely contains the audience is a token for two resources.
        assert_eq!(
            verify_access_token(&with_aud(json!([AUD, "https://other"])), &ring, &rule, NOW),
            Err(JwtError::SharedAudience),
            "{name}"
        );
        assert!(
            verify_access_token(&with_aud(json!([])), &ring, &rule, NOW).is_err(),
            "{name}"
        );
        assert!(
            verify_access_token(&with_aud(json!(7)), &ring, &rule, NOW).is_err(),
            "{name}"
        );
    }
    let rule = own_rule(Audience::Exactly(AUD), Expiry::Enforce);
    assert_eq!(
        verify_access_token(&with_aud(json!("https://other")), &ring, &rule, NOW),
        Err(JwtError::WrongAudience)
    );
}

#[test]
fn ignoring_expiry_is_a_mode_that_still_checks_everything_else() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let expired = sign(&claims(-3600), AT_JWT_TYP, &sk).unwrap();
    let enforce = own_rule(Audience::AnyOne, Expiry::Enforce);
    let ignore = own_rule(Audience::AnyOne, Expiry::Ignore);
    assert_eq!(
        verify_access_token(&expired, &ring, &enforce, NOW),
        Err(JwtError::Expired)
    );
    assert!(verify_access_token(&expired, &ring, &ignore, NOW).is_ok());
    let mut c = claims(-3600);
    c.insert("iss".into(), json!("https://evil"));
    let foreign = sign(&c, AT_JWT_TYP, &sk).unwrap();
    assert_eq!(
        verify_access_token(&foreign, &ring, &ignore, NOW),
        Err(JwtError::WrongIssuer)
    );
    let wrong_typ = sign(&claims(-3600), "JWT", &sk).unwrap();
    assert_eq!(
        verify_access_token(&wrong_typ, &ring, &ignore, NOW),
        Err(JwtError::WrongTyp)
    );
}

fn ring_rule<'a>(typ: TypRule<'a>, audience: Option<&'a [&'a str]>) -> KeyRingRule<'a> {
    KeyRingRule {
        typ,
        issuer: ISS,
        audience,
        leeway: 30,
        expiry: Expiry::Enforce,
    }
}

#[test]
fn a_typ_may_be_required_or_allowed_to_be_absent() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let body = b64(&Value::Object(claims(900)));
    let input = format!("{}.{}", b64(&json!({"alg":"ES256","kid":"k1"})), body);
    let sig = sk.sign(input.as_bytes()).unwrap();
    let untyped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let jwt = sign(&claims(900), "JWT", &sk).unwrap();
    let at = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    let absent_or_jwt = ring_rule(TypRule::AbsentOr(&["JWT"]), None);
    let only_jwt = ring_rule(TypRule::OneOf(&["JWT"]), None);
    let any = ring_rule(TypRule::Any, None);
    for (token, rule, ok) in [
        (&untyped, &absent_or_jwt, true),
        (&jwt, &absent_or_jwt, true),
        (&at, &absent_or_jwt, false),
        (&untyped, &only_jwt, false),
        (&jwt, &only_jwt, true),
        (&at, &any, true),
        (&untyped, &any, true),
    ] {
        let got = verify_with_key_ring(token, &ring, rule, NOW).map(|_| ());
        let want = if ok { Ok(()) } else { Err(JwtError::WrongTyp) };
        assert_eq!(got, want, "{:?}", rule.typ);
    }
}

#[test]
fn an_audience_list_accepts_a_token_naming_any_one_of_it() {
    let (sk, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let t = sign(&claims(900), AT_JWT_TYP, &sk).unwrap();
    let accepted: &[&str] = &["https://other", AUD];
    let rule = ring_rule(TypRule::Any, Some(accepted));
    assert!(verify_with_key_ring(&t, &ring, &rule, NOW).is_ok());
    let rule = ring_rule(TypRule::Any, Some(&["https://other"]));
    assert_eq!(
        verify_with_key_ring(&t, &ring, &rule, NOW),
        Err(JwtError::WrongAudience)
    );
    let rule = ring_rule(TypRule::Any, Some(&[]));
    assert_eq!(
        verify_with_key_ring(&t, &ring, &rule, NOW),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        verify_with_key_ring(&t, &[], &rule, NOW),
        Err(JwtError::NoKeys)
    );
}

#[test]
fn a_token_cannot_bring_its_own_key_to_the_key_ring() {
    let (_, vk) = setup(SigningAlg::Es256);
    let ring = vec![std::sync::Arc::new(vk)];
    let (attacker, _) = setup(SigningAlg::Es256);
    let header = json!({
        "alg": "ES256", "typ": AT_JWT_TYP, "kid": "k1", "jwk": attacker.public_jwk(),
    });
    let input = format!("{}.{}", b64(&header), b64(&json!(claims(900))));
    let sig = attacker.sign(input.as_bytes()).unwrap();
    let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let rule = ring_rule(TypRule::Any, None);
    assert_eq!(
        verify_with_key_ring(&t, &ring, &rule, NOW),
        Err(JwtError::BadSignature)
    );
    // The same token verifies with the key it carries, which only a caller that asks for
    // that gets, and then with no claim checked.
    let embedded = EmbeddedKeyRule {
        algorithms: &["ES256"],
        typ: TypRule::OneOf(&[AT_JWT_TYP]),
    };
    assert!(verify_with_embedded_key(&t, &embedded).is_ok());
}

#[test]
fn issued_at_is_bounded_by_the_leeway_and_the_max_age() {
    assert_eq!(check_issued_at(NOW + 30, None, 30, NOW), Ok(()));
    assert_eq!(
        check_issued_at(NOW + 31, None, 30, NOW),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(check_issued_at(0, None, 30, NOW), Ok(()));
    assert_eq!(check_issued_at(NOW - 90, Some(60), 30, NOW), Ok(()));
    assert_eq!(
        check_issued_at(NOW - 91, Some(60), 30, NOW),
        Err(JwtError::Expired)
    );
    assert_eq!(
        check_issued_at(i64::MIN, Some(i64::MAX), i64::MAX, NOW),
        Ok(())
    );
}
