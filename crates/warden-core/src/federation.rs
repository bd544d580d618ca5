//! Identity arriving from outside: the rules for tokens and documents that external
//! identity providers and workload platforms send Warden, with no I/O.
//!
//! - [`verify_id_token`]: an OpenID Connect ID token from a sign-in (OIDC Core §3.1.3.7),
//!   with multi-tenant issuers ([`IssuerRule`]);
//! - [`verify_id_jag`]: an Identity Assertion JWT Authorization Grant (SEP-990,
//!   draft-ietf-oauth-identity-assertion-authz-grant) presented with the RFC 7523 JWT
//!   bearer grant;
//! - [`verify_workload_token`]: a platform token (Kubernetes service-account token, SPIFFE
//!   JWT-SVID) presented with the same grant (SEP-1933);
//! - [`map_groups`] and [`idp_for_email`]: what a verified identity is worth in Warden,
//!   and which provider signs an address in;
//! - [`ProviderMetadata::parse`] and [`check_response_issuer`]: the provider's discovery
//!   document and the RFC 9207 `iss` of its authorization response.
//!
//! Every signature, algorithm, `typ`, `iss`, `aud` and time check is
//! [`jwt::verify_with_key_ring`](crate::jwt::verify_with_key_ring), the verifier of
//! Warden's own tokens: the keys passed in are the provider's key ring, and their
//! algorithms are the allow-list, so `none` and HMAC never verify. What this module adds
//! is the claims each kind of token must carry.

use serde_json::{Map, Value};

use crate::jwt::JwtError;

mod groups;
mod id_jag;
mod metadata;
mod oidc;
mod routing;
mod workload;

pub use groups::{
    check_group_mapping, map_groups, parse_group_mapping, GroupMapError, MAX_GROUP_NAME_LEN,
};
pub use id_jag::{verify_id_jag, IdJag, IdJagRule, ID_JAG_TYP};
pub use metadata::{check_response_issuer, ProviderMetadata};
pub use oidc::{
    is_issuer_template, verify_id_token, IdTokenRule, Identity, IssuerRule, MAX_SUB_LEN,
    TENANT_PLACEHOLDER,
};
pub use routing::idp_for_email;
pub use workload::{verify_workload_token, Workload, WorkloadRule};

/// `typ` values a provider's ID token or a platform token may carry (or none at all):
/// plain JWTs. Every explicitly typed JWT (`at+jwt`, `oauth-id-jag+jwt`, `logout+jwt`, …)
/// is another kind of token and is refused, so one cannot be replayed as another.
const PLAIN_JWT_TYPS: &[&str] = &["JWT", "JOSE"];

/// Why a token, document or response from an identity provider was refused.
///
/// The HTTP layer answers every one generically (`invalid_grant`, a failed sign-in page);
/// [`FederationError::reason`] goes to the audit log. `Display` never carries the token or
/// a claim's value.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FederationError {
    /// Not a compact JWS of JSON, or too large.
    #[error("malformed token")]
    Malformed,
    /// `alg` not among the provider's key algorithms (or `none`/HMAC).
    #[error("algorithm {0:?} not allowed")]
    AlgNotAllowed(String),
    /// The header `typ` names another kind of token.
    #[error("unexpected token type")]
    WrongTyp,
    /// A `crit` header is present.
    #[error("unsupported critical header")]
    Crit,
    /// No key of the provider has this `kid` (and the header's `alg`): the caller
    /// refetches the provider's JWKS once and retries.
    #[error("unknown key id")]
    UnknownKid,
    /// No key of the provider is known yet: the caller fetches the JWKS and retries.
    #[error("no verification key available")]
    NoKeys,
    /// The signature does not verify under the key the header names.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the provider's issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name the expected audience, or names others besides it.
    #[error("wrong audience")]
    WrongAudience,
    /// `azp` is missing from a token for several audiences, or names another client.
    #[error("authorized party mismatch")]
    AzpMismatch,
    /// `exp` is in the past beyond the leeway.
    #[error("expired")]
    Expired,
    /// `nbf` or `iat` is in the future beyond the leeway.
    #[error("not yet valid")]
    NotYetValid,
    /// `nonce` is missing or is not the one this sign-in sent.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// A required claim is missing, empty, too long or of the wrong type.
    #[error("missing or invalid claim {0}")]
    MissingClaim(&'static str),
    /// `client_id` is not the client that presented the grant.
    #[error("client mismatch")]
    ClientMismatch,
    /// The token's tenant (`tid`) is not on the provider's allow-list.
    #[error("tenant not allowed")]
    TenantNotAllowed,
    /// A discovery document is unusable; names the member.
    #[error("bad provider metadata: {0}")]
    BadMetadata(&'static str),
    /// A discovery document or an authorization response names another issuer.
    #[error("issuer mismatch")]
    IssuerMismatch,
}

// === impl FederationError ===

impl FederationError {
    /// A short stable reason for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            FederationError::Malformed => "malformed",
            FederationError::AlgNotAllowed(_) => "alg_not_allowed",
            FederationError::WrongTyp => "wrong_typ",
            FederationError::Crit => "crit_header",
            FederationError::UnknownKid => "unknown_kid",
            FederationError::NoKeys => "no_keys",
            FederationError::BadSignature => "bad_signature",
            FederationError::WrongIssuer => "wrong_issuer",
            FederationError::WrongAudience => "wrong_audience",
            FederationError::AzpMismatch => "azp_mismatch",
            FederationError::Expired => "expired",
            FederationError::NotYetValid => "not_yet_valid",
            FederationError::NonceMismatch => "nonce_mismatch",
            FederationError::MissingClaim(_) => "missing_claim",
            FederationError::ClientMismatch => "client_mismatch",
            FederationError::TenantNotAllowed => "tenant_not_allowed",
            FederationError::BadMetadata(_) => "bad_metadata",
            FederationError::IssuerMismatch => "issuer_mismatch",
        }
    }

    /// Whether fetching the provider's JWKS again may help: no key had the token's `kid`,
    /// or no key was known. The caller refetches once (rate-limited) and verifies again;
    /// any other refusal is final.
    pub fn wants_fresh_keys(&self) -> bool {
        matches!(self, FederationError::UnknownKid | FederationError::NoKeys)
    }
}

impl From<JwtError> for FederationError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Malformed => FederationError::Malformed,
            JwtError::AlgNotAllowed(alg) => FederationError::AlgNotAllowed(alg),
            JwtError::WrongTyp => FederationError::WrongTyp,
            JwtError::Crit => FederationError::Crit,
            JwtError::UnknownKid => FederationError::UnknownKid,
            JwtError::NoKeys => FederationError::NoKeys,
            JwtError::BadSignature => FederationError::BadSignature,
            JwtError::WrongIssuer => FederationError::WrongIssuer,
            JwtError::WrongAudience | JwtError::SharedAudience => FederationError::WrongAudience,
            JwtError::Expired => FederationError::Expired,
            JwtError::NotYetValid => FederationError::NotYetValid,
            JwtError::Claim(name) => FederationError::MissingClaim(name),
            // Only signing fails this way; verification never does.
            JwtError::Sign => FederationError::Malformed,
            // Only self-signed tokens fail this way; no provider's token is one.
            JwtError::HeaderKey | JwtError::PrivateHeaderKey => FederationError::Malformed,
        }
    }
}

/// A claim that must be a non-empty string of at most `max` bytes.
fn required_str<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
    max: usize,
) -> Result<&'c str, FederationError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= max)
        .ok_or(FederationError::MissingClaim(name))
}

/// A claim that, when present, must be a string.
fn optional_str(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, FederationError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FederationError::MissingClaim(name)),
    }
}

/// `exp`, already required and checked by the verifier.
fn expiry(claims: &Map<String, Value>) -> Result<i64, FederationError> {
    claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(FederationError::MissingClaim("exp"))
}

/// `iat`, which some tokens must carry (the verifier checks it only when present).
fn require_iat(claims: &Map<String, Value>) -> Result<(), FederationError> {
    claims
        .get("iat")
        .and_then(Value::as_i64)
        .map(|_| ())
        .ok_or(FederationError::MissingClaim("iat"))
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
