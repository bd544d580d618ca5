//! JWK thumbprints (RFC 7638): the name of a public key in `cnf.jkt` and `dpop_jkt`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::DpopError;
use crate::pkce::s256;

/// Whether `s` has the form of a SHA-256 JWK thumbprint: 43 base64url characters (32
/// bytes, unpadded). What a client sends as `dpop_jkt` (RFC 9449 §10) must.
pub fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The base64url SHA-256 thumbprint of a public JWK (RFC 7638 §3): the hash of the JSON
/// object of the key type's required members only, in lexicographic order, with no
/// whitespace. Other members (`kid`, `alg`, `use`, private parts) do not count, so one
/// key has one thumbprint however its JWK is written.
///
/// - EC: `crv`, `kty`, `x`, `y`;
/// - RSA: `e`, `kty`, `n`;
/// - OKP: `crv`, `kty`, `x`.
///
/// Any other `kty`, or a required member that is missing or not a string, is
/// [`DpopError::BadJwk`].
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, DpopError> {
    let required: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => return Err(DpopError::BadJwk),
    };
    let members = required
        .iter()
        .map(|&name| {
            let value = jwk.get(name).and_then(Value::as_str);
            value.map(|v| (name, v)).ok_or(DpopError::BadJwk)
        })
        .collect::<Result<BTreeMap<&str, &str>, _>>()?;
    // serde_json writes a map in key order, without whitespace, escaping only what JSON
    // requires: the RFC 7638 §3.3 form.
    let canonical = serde_json::to_string(&members).map_err(|_| DpopError::BadJwk)?;
    Ok(s256(&canonical))
}
