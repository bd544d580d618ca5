//! Workload identity (SEP-1933): a token a platform gave a workload (a Kubernetes
//! service-account token, a SPIFFE JWT-SVID), presented at Warden's token endpoint with
//! the RFC 7523 JWT bearer grant.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{expiry, optional_str, required_str, FederationError, PLAIN_JWT_TYPS};
use crate::jwt::{self, Expiry, KeyRingRule, TypRule, VerifyingKey};

/// Longest `sub` accepted: a SPIFFE ID is at most 2048 bytes.
const MAX_WORKLOAD_SUB_LEN: usize = 2048;

/// What a platform token must satisfy besides a signature by the platform's keys.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadRule<'a> {
    /// The platform's issuer, exactly.
    pub issuer: &'a str,
    /// The audiences Warden accepts; `aud` must contain one. An empty list accepts
    /// nothing.
    pub audiences: &'a [String],
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
}

/// A verified workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The workload's identity (`system:serviceaccount:ns:name`, `spiffe://…`).
    pub sub: String,
    /// The token's id, if it has one.
    pub jti: Option<String>,
    /// When the token expires (seconds since the epoch).
    pub exp: i64,
    /// Every claim, for platform-specific mappings (a namespace, a pod).
    pub claims: Map<String, Value>,
}

/// Verifies a platform token with `keys`, the platform's key ring, at `now`.
///
/// Beyond [`jwt::verify_with_key_ring`] (signature, `alg` from the key ring, `iss`
/// exactly the platform's, `aud` containing one of the accepted audiences, `exp`
/// required, `nbf`/`iat` not in the future, with the leeway):
/// - `typ` is not required, as these tokens carry `JWT` or nothing, but any other `typ`
///   (Warden's `at+jwt`, an ID-JAG's `oauth-id-jag+jwt`) is refused, so no other kind of
///   token can be replayed as a workload's;
/// - `sub` is required.
pub fn verify_workload_token(
    token: &str,
    keys: &[Arc<VerifyingKey>],
    rule: &WorkloadRule<'_>,
    now: i64,
) -> Result<Workload, FederationError> {
    let audiences: Vec<&str> = rule.audiences.iter().map(String::as_str).collect();
    let key_ring_rule = KeyRingRule {
        typ: TypRule::AbsentOr(PLAIN_JWT_TYPS),
        issuer: rule.issuer,
        audience: Some(&audiences),
        leeway: rule.leeway,
        expiry: Expiry::Enforce,
    };
    let claims = jwt::verify_with_key_ring(token, keys, &key_ring_rule, now)?;
    Ok(Workload {
        sub: required_str(&claims, "sub", MAX_WORKLOAD_SUB_LEN)?.to_owned(),
        jti: optional_str(&claims, "jti")?,
        exp: expiry(&claims)?,
        claims,
    })
}
