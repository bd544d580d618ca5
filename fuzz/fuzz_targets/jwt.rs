//! Compact JWS tokens from the network: `jwt::parse`, `jwt::verify` against a key made
//! for this process (no input can carry a valid signature, so nothing may be accepted,
//! whatever `alg`, `kid` or `typ` it claims), and `validate_claims` on whatever claims
//! parse.
//!
//! Input: 8 bytes of `now` (little-endian), then the token text.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_core::jwt::{self, JwtError, Validation, VerifyingKey};
use warden_core::keys::{SigningAlg, SigningKey};

/// One key of each kind Warden verifies, generated afresh: a token can only verify if
/// the fuzzer forges a signature.
static KEYS: LazyLock<Vec<VerifyingKey>> = LazyLock::new(|| {
    [SigningAlg::Es256, SigningAlg::EdDsa]
        .into_iter()
        .filter_map(|alg| SigningKey::generate(alg, "k1".into()).ok())
        .filter_map(|k| VerifyingKey::from_jwk(&k.public_jwk()).ok())
        .collect()
});

fn validation(leeway: i64) -> Validation {
    Validation {
        // `none` and HMAC are listed on purpose: verify must refuse them anyway.
        algorithms: ["ES256", "EdDSA", "RS256", "none", "HS256"]
            .map(String::from)
            .to_vec(),
        typ: vec![jwt::AT_JWT_TYP.into()],
        issuer: "https://auth.example.com".into(),
        audience: Some("https://mcp.example.com/mcp/notes".into()),
        leeway,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now = i64::from_le_bytes(*now);
    let Ok(token) = std::str::from_utf8(rest) else {
        return;
    };
    let v = validation(i64::from(rest.first().copied().unwrap_or(0)));

    let verified = jwt::verify(token, |_kid| KEYS.iter().collect(), &v, now);
    assert!(
        verified.is_err(),
        "a token without a valid signature was accepted"
    );
    if let Err(JwtError::AlgNotAllowed(alg)) = &verified {
        assert!(
            alg.chars().count() <= 16,
            "the refused alg is echoed unbounded"
        );
    }

    let Ok(parsed) = jwt::parse(token) else {
        return;
    };
    if jwt::validate_claims(&parsed.claims, &v, now).is_ok() {
        let claims = &parsed.claims;
        assert_eq!(
            claims.get("iss").and_then(Value::as_str),
            Some(v.issuer.as_str())
        );
        let exp = claims.get("exp").and_then(Value::as_i64);
        assert!(exp.is_some_and(|exp| now <= exp.saturating_add(v.leeway)));
        let aud = v.audience.as_deref();
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => Some(a.as_str()) == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == aud),
            _ => false,
        };
        assert!(aud_ok, "claims accepted for another audience");
    }
});
