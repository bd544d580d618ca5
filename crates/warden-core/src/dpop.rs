//! DPoP (RFC 9449): the rules for sender-constrained tokens, with no I/O.
//!
//! - [`verify_proof`]: a DPoP proof, the JWT a client sends in the `DPoP` header to show
//!   it holds a key, checked as RFC 9449 §4.3 says, at the token endpoint and at the
//!   gateway alike;
//! - [`jwk_thumbprint`]: the RFC 7638 thumbprint that names a key (`cnf.jkt`,
//!   `dpop_jkt`);
//! - [`issue_nonce`] and [`nonce_is_fresh`]: server nonces (§8, §9) that every replica
//!   accepts without shared state;
//! - [`cnf_for`] and [`check_binding`]: the confirmation claim of a bound token and what a
//!   resource server must check about it (§6, §7.1, §7.2).
//!
//! The proof's signature, `alg` and `typ` are checked by [`jwt::verify_with_embedded_key`],
//! which shares its header checks with the verifier of every other token: `none` and HMAC
//! never verify. What this module adds is the claims a proof must carry and the request it
//! must match.
//!
//! Left to the caller, because they need the request or shared state:
//! - that the request has exactly one `DPoP` header (§4.3 step 1);
//! - that no proof is used twice: [`Proof`] says what to record ([`Proof::replay_key`])
//!   and until when (§11.1), and [`DpopError::Replayed`] is the refusal.

use serde_json::{Map, Value};

use crate::jwt::{self, EmbeddedKeyRule, JwtError, TypRule};
use crate::pkce::s256;
use crate::secret::ct_eq;

mod binding;
mod htu;
mod nonce;
mod thumbprint;

pub use binding::{check_binding, cnf_for, grant_binding, require_binding, GrantHolder};
pub use nonce::{issue_nonce, nonce_is_fresh, NonceKey, NonceRule};
pub use thumbprint::{is_thumbprint, jwk_thumbprint};

/// The header `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The proof algorithms Warden verifies, in the order the metadata advertises them
/// (`dpop_signing_alg_values_supported`, and the gateway's `algs` challenge parameter).
pub const SUPPORTED_ALGORITHMS: &[&str] = &["ES256", "EdDSA", "PS256", "RS256"];

/// Longest `jti` accepted: RFC 9449 §11.1 asks a server that records `jti` values to
/// refuse needlessly large ones. A UUID is 36 characters, 256 random bits in base64url 43.
pub const MAX_JTI_LEN: usize = 128;

/// Why a DPoP proof or a token's binding was refused.
///
/// [`DpopError::error_code`] gives the RFC error code to answer with and
/// [`DpopError::reason`] a stable reason for the audit log. `Display` never carries the
/// proof, the token or a claim's value.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DpopError {
    /// A proof is required (the token is DPoP-bound, or the client must use DPoP) and the
    /// request has none.
    #[error("DPoP proof missing")]
    MissingProof,
    /// Not a compact JWS of JSON, or too large.
    #[error("malformed DPoP proof")]
    Malformed,
    /// The header `typ` is not `dpop+jwt`.
    #[error("DPoP proof has the wrong typ")]
    WrongTyp,
    /// `alg` is not on the allow-list, or is `none` or HMAC.
    #[error("DPoP proof algorithm {0:?} not allowed")]
    AlgNotAllowed(String),
    /// A `crit` header is present.
    #[error("DPoP proof has an unsupported critical header")]
    Crit,
    /// The `jwk` header is missing, not a supported public key, or a key of another
    /// algorithm than the header's `alg`.
    #[error("DPoP proof key is missing or unusable")]
    BadJwk,
    /// The `jwk` header holds private or symmetric key material.
    #[error("DPoP proof key holds private key material")]
    PrivateJwk,
    /// The signature does not verify with the `jwk` header.
    #[error("DPoP proof signature does not verify")]
    BadSignature,
    /// A required claim is missing, empty, too long or of the wrong type.
    #[error("DPoP proof claim {0} missing or invalid")]
    MissingClaim(&'static str),
    /// `htm` is not the request's method.
    #[error("DPoP proof is for another HTTP method")]
    WrongMethod,
    /// `htu` is not the request's URI.
    #[error("DPoP proof is for another URI")]
    WrongUri,
    /// `iat` is older than the accepted age.
    #[error("DPoP proof is too old")]
    TooOld,
    /// `iat` is in the future beyond the leeway.
    #[error("DPoP proof is issued in the future")]
    IssuedInFuture,
    /// `ath` is not the hash of the access token presented with the proof.
    #[error("DPoP proof is for another access token")]
    AthMismatch,
    /// The proof was accepted before (its key's `jti` is recorded): a replay (§11.1).
    #[error("DPoP proof already used")]
    Replayed,
    /// Server nonces are on and the proof carries none.
    #[error("DPoP proof nonce missing")]
    MissingNonce,
    /// The proof's nonce was issued by Warden but is no longer accepted.
    #[error("DPoP proof nonce is stale")]
    StaleNonce,
    /// The proof's nonce was never issued by Warden.
    #[error("DPoP proof nonce is invalid")]
    InvalidNonce,
    /// The proof's key is not the key the token or the code is bound to.
    #[error("DPoP key does not match the binding")]
    KeyMismatch,
    /// The resource, or the client, takes only DPoP-bound tokens and this one is not, or
    /// would not be (no proof at the token endpoint).
    #[error("a DPoP-bound token is required")]
    BindingRequired,
    /// A DPoP-bound token was presented with the `Bearer` scheme (§7.2).
    #[error("DPoP-bound token presented as a bearer token")]
    BoundTokenAsBearer,
    /// A token bound to no key was presented with the `DPoP` scheme.
    #[error("unbound token presented with the DPoP scheme")]
    UnboundTokenAsDpop,
    /// The token's `cnf` is not an object with a `jkt` string: a confirmation method
    /// Warden does not support.
    #[error("unsupported token confirmation")]
    UnsupportedConfirmation,
}

/// Where a DPoP error is answered, which decides the error code of a binding mismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint (RFC 6749 §5.2 errors).
    Token,
    /// A protected resource: the gateway (RFC 6750 §3.1 errors).
    Resource,
}

/// What a DPoP proof must match: the request it came with and the server's policy.
#[derive(Clone, Copy)]
pub struct ProofRule<'a> {
    /// The request's HTTP method, compared with `htm` case-sensitively (RFC 9110 §9.1).
    pub method: &'a str,
    /// The request's absolute URI, compared with `htu` without query and fragment and
    /// after RFC 3986 §6.2.2–6.2.3 normalisation. Build it from the configured public
    /// base URL and the request path, not from `Host` or forwarding headers.
    pub uri: &'a str,
    /// The access token presented with the proof, at a protected resource: the proof
    /// must then carry `ath`, its hash. `None` at the token endpoint, where an `ath` the
    /// proof may carry is ignored (RFC 9449 §4.2 requires it only with an access token,
    /// and the proof is bound to the token endpoint's `htm` and `htu` anyway).
    pub access_token: Option<&'a str>,
    /// The thumbprint the proof's key must have: the authorization code's `dpop_jkt`
    /// (§10) or the bound refresh token's key, at the token endpoint. At a protected
    /// resource leave it `None` and call [`check_binding`] with the token's `cnf`, which
    /// decides the scheme and the key together.
    pub expected_jkt: Option<&'a str>,
    /// When server nonces are on: the proof must carry a nonce Warden currently accepts.
    pub nonce: Option<NonceRule<'a>>,
    /// How long after its `iat` a proof is accepted, seconds (§11.1: seconds or minutes).
    pub max_age: i64,
    /// Clock-skew tolerance for `iat`, seconds, both ways.
    pub leeway: i64,
    /// Algorithms accepted (the metadata's `dpop_signing_alg_values_supported`). `none`
    /// and HMAC names are refused even if listed.
    pub algorithms: &'a [&'a str],
}

/// A DPoP proof that passed [`verify_proof`].
///
/// Replay is the caller's to refuse (§11.1), since it needs state shared by replicas:
/// record `jti` (scoped to `jkt`, or a hash of both) until [`Proof::accepted_until`],
/// and refuse a proof whose `jti` is already recorded. After that time the proof is
/// refused as too old, so the record can go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: what a token issued with this proof is
    /// bound to (`cnf.jkt`).
    pub jkt: String,
    /// The proof's unique identifier, at most [`MAX_JTI_LEN`] bytes.
    pub jti: String,
    /// When the client made the proof.
    pub iat: i64,
    /// The server nonce the proof carries, if any.
    pub nonce: Option<String>,
    /// The last second at which this proof is accepted: `iat + max_age + leeway`.
    pub accepted_until: i64,
}

// === impl Proof ===

impl Proof {
    /// What a replay cache records for this proof (§11.1): the SHA-256 of the key's
    /// thumbprint and the `jti`, so that one client's `jti` never collides with another
    /// key's, and a shared table holds neither value in clear.
    pub fn replay_key(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"warden dpop jti v1\0");
        ctx.update(self.jkt.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.jti.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }
}

// === impl DpopError ===

impl DpopError {
    /// A short stable reason for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            DpopError::MissingProof => "dpop_proof_missing",
            DpopError::Malformed => "dpop_malformed",
            DpopError::WrongTyp => "dpop_wrong_typ",
            DpopError::AlgNotAllowed(_) => "dpop_alg_not_allowed",
            DpopError::Crit => "dpop_crit_header",
            DpopError::BadJwk => "dpop_bad_jwk",
            DpopError::PrivateJwk => "dpop_private_jwk",
            DpopError::BadSignature => "dpop_bad_signature",
            DpopError::MissingClaim(_) => "dpop_missing_claim",
            DpopError::WrongMethod => "dpop_wrong_htm",
            DpopError::WrongUri => "dpop_wrong_htu",
            DpopError::TooOld => "dpop_too_old",
            DpopError::IssuedInFuture => "dpop_iat_in_future",
            DpopError::AthMismatch => "dpop_ath_mismatch",
            DpopError::Replayed => "dpop_replayed",
            DpopError::MissingNonce => "dpop_nonce_missing",
            DpopError::StaleNonce => "dpop_nonce_stale",
            DpopError::InvalidNonce => "dpop_nonce_invalid",
            DpopError::KeyMismatch => "dpop_key_mismatch",
            DpopError::BindingRequired => "dpop_required",
            DpopError::BoundTokenAsBearer => "dpop_bound_token_as_bearer",
            DpopError::UnboundTokenAsDpop => "dpop_unbound_token_as_dpop",
            DpopError::UnsupportedConfirmation => "dpop_unsupported_cnf",
        }
    }

    /// The RFC error code to answer with at `at`:
    /// - `use_dpop_nonce` when the nonce is missing or no longer accepted (§8, §9): the
    ///   caller sends a fresh nonce in `DPoP-Nonce` with it;
    /// - `invalid_dpop_proof` when the proof itself is missing or invalid (§4.3, §7.1);
    /// - for a token bound to another key, or presented with the wrong scheme:
    ///   `invalid_token` at a protected resource (§7.1, Figure 16), and `invalid_grant`
    ///   at the token endpoint, where the code or refresh token is the grant that is
    ///   bound to another key (RFC 6749 §5.2; RFC 9449 §10 leaves the code open).
    pub fn error_code(&self, at: Endpoint) -> &'static str {
        match self {
            DpopError::MissingNonce | DpopError::StaleNonce | DpopError::InvalidNonce => {
                "use_dpop_nonce"
            }
            DpopError::MissingProof
            | DpopError::Malformed
            | DpopError::WrongTyp
            | DpopError::AlgNotAllowed(_)
            | DpopError::Crit
            | DpopError::BadJwk
            | DpopError::PrivateJwk
            | DpopError::BadSignature
            | DpopError::MissingClaim(_)
            | DpopError::WrongMethod
            | DpopError::WrongUri
            | DpopError::TooOld
            | DpopError::IssuedInFuture
            | DpopError::AthMismatch
            | DpopError::Replayed => "invalid_dpop_proof",
            // At the token endpoint the fix is a proof; at a resource, a bound token.
            DpopError::BindingRequired => match at {
                Endpoint::Token => "invalid_dpop_proof",
                Endpoint::Resource => "invalid_token",
            },
            DpopError::KeyMismatch
            | DpopError::BoundTokenAsBearer
            | DpopError::UnboundTokenAsDpop
            | DpopError::UnsupportedConfirmation => match at {
                Endpoint::Token => "invalid_grant",
                Endpoint::Resource => "invalid_token",
            },
        }
    }
}

impl DpopError {
    /// What a client is told at `at`, beside [`DpopError::error_code`]: what to fix,
    /// never the proof, the token or a claim's value.
    pub fn client_description(&self, at: Endpoint) -> &'static str {
        if *self == DpopError::Replayed {
            return "the DPoP proof was already used";
        }
        // Grouped as `error_code` groups them, so the two never disagree.
        match (self.error_code(at), at) {
            ("use_dpop_nonce", _) => "the DPoP proof must carry the nonce in DPoP-Nonce",
            ("invalid_dpop_proof", _) => "the DPoP proof is missing or invalid",
            (_, Endpoint::Token) => "the grant is bound to another DPoP key",
            (_, Endpoint::Resource) => {
                "the access token is not bound to this DPoP key or was sent with the wrong scheme"
            }
        }
    }
}

impl From<JwtError> for DpopError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Malformed => DpopError::Malformed,
            JwtError::AlgNotAllowed(alg) => DpopError::AlgNotAllowed(alg),
            JwtError::WrongTyp => DpopError::WrongTyp,
            JwtError::Crit => DpopError::Crit,
            JwtError::HeaderKey => DpopError::BadJwk,
            JwtError::PrivateHeaderKey => DpopError::PrivateJwk,
            JwtError::BadSignature => DpopError::BadSignature,
            JwtError::Claim(name) => DpopError::MissingClaim(name),
            JwtError::Expired => DpopError::TooOld,
            JwtError::NotYetValid => DpopError::IssuedInFuture,
            // A proof is verified with the key it carries, and has no issuer, audience
            // or expiry: these come only from key-ring verification and signing.
            JwtError::UnknownKid
            | JwtError::NoKeys
            | JwtError::WrongIssuer
            | JwtError::WrongAudience
            | JwtError::SharedAudience
            | JwtError::Sign => DpopError::Malformed,
        }
    }
}

// === impl ProofRule ===

impl std::fmt::Debug for ProofRule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofRule")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("access_token", &self.access_token.map(|_| "[REDACTED]"))
            .field("expected_jkt", &self.expected_jkt)
            .field("nonce", &self.nonce)
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// Verifies a DPoP proof (the value of the request's one `DPoP` header) against the
/// request and the server's policy, as RFC 9449 §4.3 says:
///
/// - a compact JWS with `typ` `dpop+jwt`, an `alg` on `rule.algorithms` (never `none` or
///   HMAC), and a public `jwk` header whose key verifies the signature;
/// - `jti` (at most [`MAX_JTI_LEN`] bytes), `htm`, `htu` and `iat` present;
/// - `htm` equal to `rule.method`, and `htu` to `rule.uri` as [`ProofRule::uri`] says;
/// - `iat` no later than `now + leeway` and no earlier than `now - max_age - leeway`;
/// - with `rule.access_token`, `ath` equal to the token's SHA-256 hash;
/// - with `rule.nonce`, a `nonce` Warden currently accepts;
/// - with `rule.expected_jkt`, a key with that thumbprint.
///
/// The checks run in that order and the first that fails is reported. The nonce comes
/// after the proof's own checks, so that a client answered `use_dpop_nonce` knows the
/// rest of its proof was good and only needs the fresh nonce.
pub fn verify_proof(proof: &str, rule: &ProofRule<'_>, now: i64) -> Result<Proof, DpopError> {
    let embedded = EmbeddedKeyRule {
        algorithms: rule.algorithms,
        typ: TypRule::OneOf(&[DPOP_TYP]),
    };
    let (header, claims) = jwt::verify_with_embedded_key(proof, &embedded)?;
    let jkt = header
        .jwk
        .as_ref()
        .ok_or(DpopError::BadJwk)
        .and_then(jwk_thumbprint)?;
    let jti = required_str(&claims, "jti")?;
    if jti.len() > MAX_JTI_LEN {
        return Err(DpopError::MissingClaim("jti"));
    }
    if required_str(&claims, "htm")? != rule.method {
        return Err(DpopError::WrongMethod);
    }
    if !htu::same_target(required_str(&claims, "htu")?, rule.uri) {
        return Err(DpopError::WrongUri);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::MissingClaim("iat"))?;
    jwt::check_issued_at(iat, Some(rule.max_age), rule.leeway, now)?;
    if let Some(token) = rule.access_token {
        let ath = required_str(&claims, "ath")?;
        if !ct_eq(s256(token).as_bytes(), ath.as_bytes()) {
            return Err(DpopError::AthMismatch);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(DpopError::MissingClaim("nonce")),
    };
    if let Some(nonce_rule) = &rule.nonce {
        nonce_rule.check(nonce.as_deref(), now)?;
    }
    if let Some(expected) = rule.expected_jkt {
        binding::check_key(expected, &jkt)?;
    }
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
        accepted_until: iat.saturating_add(rule.max_age).saturating_add(rule.leeway),
    })
}

/// A claim that must be a non-empty string.
fn required_str<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<&'c str, DpopError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(DpopError::MissingClaim(name))
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
