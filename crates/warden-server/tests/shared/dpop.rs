//! DPoP proofs as a client makes them (RFC 9449 §4), for the gateway's and the
//! authorization server's tests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use warden_core::dpop::jwk_thumbprint;
use warden_core::keys::{SigningAlg, SigningKey};
use warden_core::pkce::s256;

/// A client's DPoP key.
pub fn client_key(alg: SigningAlg) -> SigningKey {
    SigningKey::generate(alg, "client".into()).unwrap()
}

/// The public JWK a client puts in its proofs.
pub fn public_jwk(key: &SigningKey) -> Value {
    let mut jwk = key.public_jwk();
    for name in ["kid", "alg", "use"] {
        jwk.as_object_mut().unwrap().remove(name);
    }
    jwk
}

/// The thumbprint a token bound to `key` names.
pub fn jkt(key: &SigningKey) -> String {
    jwk_thumbprint(&public_jwk(key)).unwrap()
}

/// A JWS of `header` and `claims` signed by `key`, whatever the header says.
pub fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The claims of a proof for `htm` `htu` at `iat`, with `ath` for `token` if any.
pub fn proof_claims(htm: &str, htu: &str, token: Option<&str>, iat: i64, jti: &str) -> Value {
    let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": iat });
    if let Some(token) = token {
        claims["ath"] = json!(s256(token));
    }
    claims
}

/// A good proof by `key` with `claims`.
pub fn proof(key: &SigningKey, claims: &Value) -> String {
    let header = json!({ "typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": public_jwk(key) });
    signed(key, &header, claims)
}
