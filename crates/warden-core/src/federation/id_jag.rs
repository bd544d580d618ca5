//! Identity Assertion JWT Authorization Grants (ID-JAG: SEP-990,
//! draft-ietf-oauth-identity-assertion-authz-grant §3.1 and §4.4.1): an enterprise IdP's
//! statement that a user may use one client with Warden, presented at Warden's token
//! endpoint with the RFC 7523 JWT bearer grant.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{expiry, optional_str, require_iat, required_str, FederationError, MAX_SUB_LEN};
use crate::jwt::{self, Expiry, KeyRingRule, TypRule, VerifyingKey};

/// The `typ` an ID-JAG carries.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// Longest `jti` and `client_id` accepted (a client id may be a metadata document URL).
const MAX_ID_LEN: usize = 2048;

/// What an ID-JAG must satisfy besides a signature by the IdP's keys.
#[derive(Clone, Copy, Debug)]
pub struct IdJagRule<'a> {
    /// The IdP's issuer, exactly.
    pub idp_issuer: &'a str,
    /// Warden's issuer identifier: the only audience accepted.
    pub audience: &'a str,
    /// The client that presented the grant (already authenticated).
    pub client_id: &'a str,
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
}

/// A verified ID-JAG.
///
/// `jti` is single-use: the caller records it until `exp` and refuses a replay.
#[derive(Clone, Debug, PartialEq)]
pub struct IdJag {
    /// The IdP's subject identifier for the user.
    pub sub: String,
    /// The grant's id, for replay detection.
    pub jti: String,
    /// When the grant expires (seconds since the epoch).
    pub exp: i64,
    /// The client the IdP issued the grant to (the one that presented it).
    pub client_id: String,
    /// The resources (`resource`) the grant is for; empty when the IdP named none.
    pub resources: Vec<String>,
    /// The scopes (`scope`) the IdP granted; empty when it named none. Warden issues at
    /// most these.
    pub scopes: Vec<String>,
    /// `email`, if sent.
    pub email: Option<String>,
    /// `name`, if sent.
    pub name: Option<String>,
    /// Every claim, for the groups claim and other IdP-specific mappings.
    pub claims: Map<String, Value>,
}

/// Verifies an ID-JAG with `keys`, the IdP's key ring, at `now`.
///
/// Beyond [`jwt::verify_with_key_ring`] (signature, `alg` from the key ring, `typ`
/// `oauth-id-jag+jwt`, `iss` exactly the IdP's, `exp` required, `nbf`/`iat` not in the
/// future, with the leeway):
/// - `aud` must be Warden's issuer and nothing else (a string, or an array of just it);
/// - `iat`, `jti` and `sub` are required;
/// - `client_id` is required and must be the client that presented the grant;
/// - `resource` (a string or an array of strings) and `scope` (space-separated) are read.
pub fn verify_id_jag(
    token: &str,
    keys: &[Arc<VerifyingKey>],
    rule: &IdJagRule<'_>,
    now: i64,
) -> Result<IdJag, FederationError> {
    let audience = [rule.audience];
    let key_ring_rule = KeyRingRule {
        typ: TypRule::OneOf(&[ID_JAG_TYP]),
        issuer: rule.idp_issuer,
        audience: Some(&audience),
        leeway: rule.leeway,
        expiry: Expiry::Enforce,
    };
    let claims = jwt::verify_with_key_ring(token, keys, &key_ring_rule, now)?;
    if !jwt::single_audience(claims.get("aud")) {
        return Err(FederationError::WrongAudience);
    }
    require_iat(&claims)?;
    let client_id = required_str(&claims, "client_id", MAX_ID_LEN)?;
    if client_id != rule.client_id {
        return Err(FederationError::ClientMismatch);
    }
    Ok(IdJag {
        sub: required_str(&claims, "sub", MAX_SUB_LEN)?.to_owned(),
        jti: required_str(&claims, "jti", MAX_ID_LEN)?.to_owned(),
        exp: expiry(&claims)?,
        client_id: client_id.to_owned(),
        resources: resources(&claims)?,
        scopes: optional_str(&claims, "scope")?
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        email: optional_str(&claims, "email")?,
        name: optional_str(&claims, "name")?,
        claims,
    })
}

/// `resource`: absent, a string, or an array of strings.
fn resources(claims: &Map<String, Value>) -> Result<Vec<String>, FederationError> {
    let invalid = FederationError::MissingClaim("resource");
    match claims.get("resource") {
        None => Ok(Vec::new()),
        Some(Value::String(r)) => Ok(vec![r.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|r| r.as_str().map(str::to_owned).ok_or(invalid.clone()))
            .collect(),
        Some(_) => Err(invalid),
    }
}
