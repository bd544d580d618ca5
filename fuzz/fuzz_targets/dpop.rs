//! DPoP proofs from the network (`warden_core::dpop::verify_proof`) and the JWK
//! thumbprint of whatever key they carry: no input may panic, and a proof is only ever
//! accepted for this request (its `htm` and `htu`), inside its time window, with the
//! thumbprint of the key in its own header.
//!
//! Input: 8 bytes of `now` (little-endian), then the proof text.

#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_core::dpop::{jwk_thumbprint, verify_proof, ProofRule};

const METHOD: &str = "POST";
/// RFC 9449 Figure 2's request, so that its proof (a seed) exercises acceptance.
const URI: &str = "https://server.example.com/token";
const MAX_AGE: i64 = 60;
const LEEWAY: i64 = 5;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, rest) = data.split_at(8);
    let now = i64::from_le_bytes(head.try_into().unwrap_or_default());
    let Ok(proof) = std::str::from_utf8(rest) else {
        return;
    };
    // Listed on purpose: `none` and HMAC must be refused anyway.
    let algorithms = ["ES256", "EdDSA", "RS256", "PS256", "none", "HS256"];
    let rule = ProofRule {
        method: METHOD,
        uri: URI,
        access_token: None,
        expected_jkt: None,
        nonce: None,
        max_age: MAX_AGE,
        leeway: LEEWAY,
        algorithms: &algorithms,
    };
    let header: Option<Value> = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice(&h).ok());
    if let Some(jwk) = header.as_ref().and_then(|h| h.get("jwk")) {
        let _ = jwk_thumbprint(jwk);
    }
    let Ok(accepted) = verify_proof(proof, &rule, now) else {
        return;
    };
    let header = header.expect("an accepted proof has a JSON header");
    let alg = header["alg"].as_str().unwrap_or_default();
    assert!(alg != "none" && !alg.starts_with("HS"), "accepted alg {alg:?}");
    let jkt = jwk_thumbprint(&header["jwk"]).expect("an accepted proof's key has a thumbprint");
    assert_eq!(accepted.jkt, jkt, "the thumbprint is the header key's");
    assert!(
        accepted.iat <= now.saturating_add(LEEWAY)
            && accepted.iat >= now.saturating_sub(MAX_AGE + LEEWAY),
        "iat {} outside the window at {now}",
        accepted.iat
    );
    let claims: Value = proof
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice(&c).ok())
        .expect("an accepted proof has JSON claims");
    assert_eq!(claims["htm"], METHOD);
});
