//! OpenID Connect ID tokens (OIDC Core 1.0 §3.1.3.7) and the issuers that sign them,
//! including multi-tenant ones.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{optional_str, require_iat, required_str, FederationError, PLAIN_JWT_TYPS};
use crate::jwt::{self, Expiry, KeyRingRule, TypRule, VerifyingKey};
use crate::secret::ct_eq;

/// The placeholder a multi-tenant issuer's discovery document puts where the tenant goes
/// (Entra: `https://login.microsoftonline.com/{tenantid}/v2.0`).
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Longest `sub` accepted: OIDC Core §2 allows at most 255 ASCII characters.
pub const MAX_SUB_LEN: usize = 255;

/// Whether a configured issuer is a multi-tenant template (it contains
/// [`TENANT_PLACEHOLDER`]) rather than one issuer.
pub fn is_issuer_template(issuer: &str) -> bool {
    issuer.contains(TENANT_PLACEHOLDER)
}

/// Which `iss` a provider's tokens must carry.
#[derive(Clone, Copy, Debug)]
pub enum IssuerRule<'a> {
    /// Exactly this issuer.
    Exact(&'a str),
    /// A multi-tenant issuer: `iss` must be `template` with the token's `tid` put in place
    /// of [`TENANT_PLACEHOLDER`], and `tid` must be one of `tenants` (compared
    /// ASCII-case-insensitively, as tenant ids are GUIDs). An empty list accepts nothing.
    Tenants {
        /// The issuer as the discovery document writes it, placeholder included.
        template: &'a str,
        /// The tenants whose users may sign in.
        tenants: &'a [String],
    },
}

/// What an ID token must satisfy besides a signature by the provider's keys.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenRule<'a> {
    /// The provider's issuer.
    pub issuer: IssuerRule<'a>,
    /// Warden's client id at the provider: the audience.
    pub client_id: &'a str,
    /// The nonce this sign-in sent in its authorization request.
    pub nonce: &'a str,
    /// Clock-skew tolerance, seconds.
    pub leeway: i64,
}

/// Who signed in, from a verified ID token.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The token's `iss` (for a multi-tenant provider, the tenant's issuer).
    pub issuer: String,
    /// The provider's subject identifier: with `issuer`, the user's stable key.
    pub sub: String,
    /// `email`, if the provider sent one.
    pub email: Option<String>,
    /// Whether the provider vouches for `email` (`email_verified` is `true` or `"true"`).
    pub email_verified: bool,
    /// `name`, if sent.
    pub name: Option<String>,
    /// `preferred_username`, if sent.
    pub preferred_username: Option<String>,
    /// The tenant (`tid`), if sent; always set for a multi-tenant provider.
    pub tenant: Option<String>,
    /// Every claim, for the groups claim and other provider-specific mappings.
    pub claims: Map<String, Value>,
}

// === impl IssuerRule ===

impl<'a> IssuerRule<'a> {
    /// The rule for a configured issuer and its tenant allow-list: a template becomes
    /// [`IssuerRule::Tenants`], anything else [`IssuerRule::Exact`] (whose tenants are
    /// unused; the registry refuses tenants on an exact issuer).
    pub fn from_config(issuer: &'a str, tenants: &'a [String]) -> Self {
        if is_issuer_template(issuer) {
            IssuerRule::Tenants {
                template: issuer,
                tenants,
            }
        } else {
            IssuerRule::Exact(issuer)
        }
    }

    /// The `iss` expected of a token with these (not yet verified) claims. For a template
    /// the tenant comes from `tid`; a token without one is held to the template itself,
    /// which no real issuer equals. The signature and `iss` are then verified against
    /// this, and the tenant against the allow-list ([`IssuerRule::check_tenant`]), so an
    /// unverified `tid` decides nothing by itself.
    fn expected_issuer(&self, token: &str) -> Result<Cow<'a, str>, FederationError> {
        match *self {
            IssuerRule::Exact(issuer) => Ok(Cow::Borrowed(issuer)),
            IssuerRule::Tenants { template, .. } => {
                let claims = jwt::parse(token)?.claims;
                Ok(match claims.get("tid").and_then(Value::as_str) {
                    Some(tid) => Cow::Owned(template.replace(TENANT_PLACEHOLDER, tid)),
                    None => Cow::Borrowed(template),
                })
            }
        }
    }

    /// After verification: the tenant of a multi-tenant provider must be allowed.
    fn check_tenant(&self, claims: &Map<String, Value>) -> Result<(), FederationError> {
        match *self {
            IssuerRule::Exact(_) => Ok(()),
            IssuerRule::Tenants { tenants, .. } => {
                let tid = required_str(claims, "tid", MAX_SUB_LEN)?;
                if tenants.iter().any(|t| t.eq_ignore_ascii_case(tid)) {
                    Ok(())
                } else {
                    Err(FederationError::TenantNotAllowed)
                }
            }
        }
    }
}

/// Verifies an ID token from a sign-in with `keys`, the provider's key ring, at `now`.
///
/// Beyond [`jwt::verify_with_key_ring`] (signature, `alg` from the key ring, `typ` absent
/// or `JWT`, `iss` per [`IssuerRule`], `aud` containing the client id, `exp` required and
/// `nbf`/`iat` not in the future, all with the leeway):
/// - `iat` is required;
/// - a token for several audiences must carry `azp`, and `azp`, when present, must be the
///   client id;
/// - `nonce` must equal the one this sign-in sent (a missing one is refused);
/// - `sub` must be a non-empty string of at most [`MAX_SUB_LEN`] bytes;
/// - a multi-tenant provider's `tid` must be on the allow-list.
pub fn verify_id_token(
    token: &str,
    keys: &[Arc<VerifyingKey>],
    rule: &IdTokenRule<'_>,
    now: i64,
) -> Result<Identity, FederationError> {
    let issuer = rule.issuer.expected_issuer(token)?;
    let audience = [rule.client_id];
    let key_ring_rule = KeyRingRule {
        typ: TypRule::AbsentOr(PLAIN_JWT_TYPS),
        issuer: &issuer,
        audience: Some(&audience),
        leeway: rule.leeway,
        expiry: Expiry::Enforce,
    };
    let claims = jwt::verify_with_key_ring(token, keys, &key_ring_rule, now)?;
    rule.issuer.check_tenant(&claims)?;
    require_iat(&claims)?;
    check_azp(&claims, rule.client_id)?;
    let nonce = claims.get("nonce").and_then(Value::as_str);
    if !nonce.is_some_and(|n| ct_eq(n.as_bytes(), rule.nonce.as_bytes())) {
        return Err(FederationError::NonceMismatch);
    }
    let sub = required_str(&claims, "sub", MAX_SUB_LEN)?.to_owned();
    let email_verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        || claims.get("email_verified").and_then(Value::as_str) == Some("true");
    Ok(Identity {
        issuer: issuer.into_owned(),
        sub,
        email: optional_str(&claims, "email")?,
        email_verified,
        name: optional_str(&claims, "name")?,
        preferred_username: optional_str(&claims, "preferred_username")?,
        tenant: optional_str(&claims, "tid")?,
        claims,
    })
}

/// OIDC Core §3.1.3.7 items 4 and 5: several audiences need an `azp`, and an `azp` must be
/// this client.
fn check_azp(claims: &Map<String, Value>, client_id: &str) -> Result<(), FederationError> {
    let azp = claims.get("azp");
    if !jwt::single_audience(claims.get("aud")) && azp.is_none() {
        return Err(FederationError::AzpMismatch);
    }
    match azp {
        None => Ok(()),
        Some(azp) if azp.as_str() == Some(client_id) => Ok(()),
        Some(_) => Err(FederationError::AzpMismatch),
    }
}
