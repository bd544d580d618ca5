//! Token extraction and validation: the identity of every gateway request.
//!
//! The identity comes only from a token that passed every check here; nothing a client
//! sends in other headers is trusted. How a server's tokens are checked is its
//! [`TokenSource`]; Warden's own JWTs are verified with the key ring in memory, so the
//! path does no database round trip; an external issuer's tokens go through
//! [`super::external`]. Validated tokens are cached ([`super::cache`]), and a cache hit
//! still re-checks expiry and revocation (and is validated afresh once past its
//! `fresh_until`, for introspection results).

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use warden_core::credentials::{self, AccessToken};
use warden_core::jwt::{AccessTokenRule, Audience, Expiry, JwtError};
use warden_core::scope::ScopeSet;
use warden_core::secret::{token_hash, SecretKind};
use warden_store::AccessTokenStore;

use super::assertion::CachedAssertion;
use super::cache::TokenCache;
use super::challenge::GatewayError;
use super::registry::{Protected, TokenSource};
use super::SharedStr;
use crate::App;

/// The least time between two key-ring reloads triggered by an unknown `kid`, seconds.
/// A rotation by another replica is picked up this way; a flood of forged `kid`s is not
/// turned into a flood of database reads.
const KID_RELOAD_DEBOUNCE: i64 = 30;

/// The `authorization_details` type that pins a token to tools (RFC 9396).
pub const AUTHORIZATION_DETAILS_TYPE: &str = "warden:mcp";

/// Why a token was refused. Goes to the audit log and the debug log; the client only
/// learns `invalid_token`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The JWT failed verification.
    #[error("{0}")]
    Jwt(JwtError),
    /// `aud` names more than this server.
    #[error("token audience is not exactly this server")]
    SharedAudience,
    /// The `jti` is on the revocation list.
    #[error("token revoked")]
    Revoked,
    /// The issuer has no published key.
    #[error("no verification key available")]
    NoKeys,
    /// The server's token source is not supported by this build.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The external issuer says the token is not active (RFC 7662).
    #[error("token inactive at the issuer")]
    Inactive,
    /// The external issuer could not be asked (keys or introspection): no verdict on the
    /// token, so the client gets 503, not 401.
    #[error("{0}")]
    IssuerUnavailable(&'static str),
}

/// The identity a validated token carries, for one server.
pub struct Principal {
    subject: String,
    client_id: String,
    scope: ScopeSet,
    jti: String,
    /// The grant (refresh family) the token belongs to: revoking it revokes the token.
    sid: Option<String>,
    exp: i64,
    nbf: Option<i64>,
    leeway: i64,
    act: Option<Value>,
    /// The [`Protected::validation_id`] of the server this token was validated for.
    validated_for: SharedStr,
    /// Tools the token is limited to by `authorization_details`, if any.
    pinned: Option<Vec<String>>,
    /// The token's confirmation (`cnf`, RFC 7800): the key a DPoP-bound token is bound
    /// to. Checked on every request, cache hit or not, by [`super::sender::confirm`].
    cnf: Option<Value>,
    /// `x-warden-subject`, `x-warden-client-id`, `x-warden-scope`, built once.
    identity_headers: Vec<(HeaderName, HeaderValue)>,
    /// The upstream assertion, reused until shortly before it expires.
    pub(crate) assertion: RwLock<Option<CachedAssertion>>,
    /// The cache may answer for this token until then; later it is validated afresh
    /// (an introspection result, which the issuer may revoke without telling Warden).
    fresh_until: i64,
}

// === extraction ===

/// The access token of a request, with the `Bearer` or the `DPoP` scheme: `Ok(None)`
/// when there is none (or another scheme, which RFC 6750 §3.1 treats as no
/// credentials), `Err` for a malformed header or a token in the query string (RFC 6750
/// §5.3 and the MCP spec forbid that).
pub fn access_token<'h>(
    headers: &'h HeaderMap,
    query: Option<&str>,
) -> Result<Option<AccessToken<'h>>, GatewayError> {
    if query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    }) {
        return Err(GatewayError::TokenInQuery);
    }
    let values = headers.get_all(header::AUTHORIZATION).iter();
    match credentials::single_header(values.map(HeaderValue::as_bytes)) {
        Ok(Some(text)) => credentials::access_token(text),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|_| GatewayError::MalformedAuthorization)
}

// === validation ===

/// Validates `token` for `server` as of `now`, from the cache when possible.
pub async fn authenticate(
    app: &App,
    server: &Protected,
    token: &str,
    now: i64,
) -> Result<Arc<Principal>, Rejection> {
    let key = TokenCache::key(token);
    let cache = &app.gateway.tokens;
    if let Some(hit) = cache.get(&key) {
        // A token validated for another server, or for this one before its audience,
        // issuer, format or settings changed, is checked afresh; so is one whose cached
        // answer is too old to trust.
        if hit.validated_for == server.validation_id && now < hit.fresh_until {
            return match hit.recheck(now, app) {
                Ok(()) => Ok(hit),
                Err(rejection) => {
                    cache.remove(&key);
                    Err(rejection)
                }
            };
        }
    }
    let principal = match &server.tokens {
        TokenSource::WardenOpaque => lookup_opaque(app, server, token, now).await?,
        TokenSource::External(issuer) => {
            super::external::authenticate(app, server, issuer, token, now).await?
        }
        TokenSource::Warden { .. } | TokenSource::Unsupported(_) => {
            match verify(app, server, token, now) {
                Err(Rejection::Jwt(JwtError::UnknownKid)) if reload_keys(app, now).await => {
                    verify(app, server, token, now)?
                }
                other => other?,
            }
        }
    };
    let principal = Arc::new(principal);
    // Revocation is checked after caching too, so a revocation racing this insert is
    // still seen by the next request.
    principal.recheck(now, app)?;
    cache.insert(key, Arc::clone(&principal), now);
    Ok(principal)
}

/// Reloads the key ring if the last reload is old enough; whether it did.
async fn reload_keys(app: &App, now: i64) -> bool {
    let last_reload = &app.gateway.last_key_reload;
    let last = last_reload.load(Ordering::Acquire);
    if now.saturating_sub(last) < KID_RELOAD_DEBOUNCE
        || last_reload
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return false;
    }
    match app.keys.reload(&app.store, &app.sealer, now).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "key ring reload after an unknown kid failed");
            false
        }
    }
}

/// An opaque Warden token: the store holds its hash and claims. A miss, an expired token
/// or one for another audience is refused like a bad signature would be.
async fn lookup_opaque(
    app: &App,
    server: &Protected,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    if !token.starts_with(SecretKind::AccessToken.prefix()) || token.len() > 512 {
        return Err(Rejection::Jwt(JwtError::Malformed));
    }
    let record = AccessTokenStore::find(&app.store, &token_hash(token), now - server.leeway)
        .await
        .map_err(|e| {
            // No verdict on the token: the client must keep it and retry (503), not
            // discard it and re-authorize (401).
            if e.is_transient() {
                tracing::warn!(error = %e, "opaque token lookup failed");
            } else {
                tracing::error!(error = %e, "opaque token lookup failed");
            }
            Rejection::IssuerUnavailable("the token store is unavailable")
        })?
        .ok_or(Rejection::Jwt(JwtError::BadSignature))?;
    if record.audience != *server.canonical_uri {
        return Err(Rejection::Jwt(JwtError::WrongAudience));
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(record.subject));
    claims.insert("client_id".into(), Value::String(record.client_id));
    claims.insert("scope".into(), Value::String(record.scope));
    claims.insert("jti".into(), Value::String(record.jti));
    claims.insert("exp".into(), Value::from(record.expires_at));
    claims.insert("nbf".into(), Value::from(record.issued_at));
    if let Some(sid) = record.sid {
        claims.insert("sid".into(), Value::String(sid));
    }
    if let Some(jkt) = record.cnf_jkt {
        claims.insert("cnf".into(), warden_core::dpop::cnf_for(&jkt));
    }
    if let Some(act) = record
        .act
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
    {
        claims.insert("act".into(), act);
    }
    Principal::from_claims(&claims, server)
}

/// Full verification: signature, header and claims.
fn verify(app: &App, server: &Protected, token: &str, now: i64) -> Result<Principal, Rejection> {
    let issuer = match &server.tokens {
        TokenSource::Warden { issuer } => issuer,
        TokenSource::WardenOpaque => {
            return Err(Rejection::Unsupported(
                "opaque tokens are looked up, not verified",
            ))
        }
        TokenSource::External(_) => {
            return Err(Rejection::Unsupported(
                "external tokens are checked with the issuer's keys",
            ))
        }
        TokenSource::Unsupported(why) => return Err(Rejection::Unsupported(why)),
    };
    let rule = AccessTokenRule {
        issuer,
        audience: Audience::Exactly(&server.canonical_uri),
        leeway: server.leeway,
        expiry: Expiry::Enforce,
    };
    let claims = app
        .keys
        .verify_access_token(token, &rule, now)
        .map_err(|e| match e {
            JwtError::NoKeys => Rejection::NoKeys,
            JwtError::SharedAudience => Rejection::SharedAudience,
            e => Rejection::Jwt(e),
        })?;
    Principal::from_claims(&claims, server)
}

// === impl Principal ===

impl Principal {
    /// The identity in validated `claims` (Warden's shape: see
    /// [`super::external::normalize`] for other issuers'), for `server`.
    pub(crate) fn from_claims(
        claims: &Map<String, Value>,
        server: &Protected,
    ) -> Result<Self, Rejection> {
        let text = |name: &'static str| -> Result<String, Rejection> {
            match claims.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(Rejection::Jwt(JwtError::Claim(name))),
            }
        };
        let int = |name: &'static str| claims.get(name).and_then(Value::as_i64);
        let scope = match claims.get("scope") {
            None => ScopeSet::default(),
            Some(Value::String(s)) => {
                ScopeSet::parse(s).map_err(|_| Rejection::Jwt(JwtError::Claim("scope")))?
            }
            Some(_) => return Err(Rejection::Jwt(JwtError::Claim("scope"))),
        };
        let act = match claims.get("act") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(Rejection::Jwt(JwtError::Claim("act"))),
        };
        let mut principal = Principal {
            subject: text("sub")?,
            client_id: text("client_id")?,
            scope,
            jti: text("jti")?,
            sid: match claims.get("sid") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(Rejection::Jwt(JwtError::Claim("sid"))),
            },
            exp: int("exp").ok_or(Rejection::Jwt(JwtError::Claim("exp")))?,
            nbf: int("nbf"),
            leeway: server.leeway,
            act,
            validated_for: Arc::clone(&server.validation_id),
            pinned: pinned_tools(claims.get("authorization_details"), &server.canonical_uri)?,
            cnf: claims.get("cnf").cloned(),
            identity_headers: Vec::new(),
            assertion: RwLock::new(None),
            fresh_until: i64::MAX,
        };
        principal.identity_headers = principal.build_identity_headers();
        Ok(principal)
    }

    /// The same identity, answered from the cache only until `at`.
    pub(crate) fn with_fresh_until(mut self, at: i64) -> Self {
        self.fresh_until = at;
        self
    }

    fn build_identity_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let scope = self.scope.to_string();
        [
            ("x-warden-subject", self.subject.as_str()),
            ("x-warden-client-id", self.client_id.as_str()),
            ("x-warden-scope", scope.as_str()),
        ]
        .into_iter()
        // A value that cannot be a header (control characters) is left out: these headers
        // are informational, the signed assertion is what an upstream should trust.
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
    }

    /// Checks that still change with time: expiry, not-before and revocation.
    fn recheck(&self, now: i64, app: &App) -> Result<(), Rejection> {
        if now > self.exp.saturating_add(self.leeway) {
            return Err(Rejection::Jwt(JwtError::Expired));
        }
        if self
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(Rejection::Jwt(JwtError::NotYetValid));
        }
        if app
            .revoked
            .token_revoked(Some(&self.jti), self.sid.as_deref())
        {
            return Err(Rejection::Revoked);
        }
        Ok(())
    }

    /// The last second this token is accepted (its `exp` plus the leeway).
    pub fn usable_until(&self) -> i64 {
        self.exp.saturating_add(self.leeway)
    }

    /// The token's `sub`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The token's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The granted scopes.
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The token's `exp`.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// The delegation chain (RFC 8693 `act`), if any.
    pub fn act(&self) -> Option<&Value> {
        self.act.as_ref()
    }

    /// Tools the token itself is limited to (`authorization_details`), if any.
    pub fn pinned(&self) -> Option<&[String]> {
        self.pinned.as_deref()
    }

    /// The token's confirmation claim, if it is sender-constrained.
    pub fn cnf(&self) -> Option<&Value> {
        self.cnf.as_ref()
    }

    /// The informational identity headers for the upstream.
    pub fn identity_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.identity_headers
    }
}

/// Reads RFC 9396 `authorization_details` entries of type [`AUTHORIZATION_DETAILS_TYPE`]
/// (for this server, when they name `locations`) into the tools the token is limited to.
fn pinned_tools(details: Option<&Value>, audience: &str) -> Result<Option<Vec<String>>, Rejection> {
    let bad = || Rejection::Jwt(JwtError::Claim("authorization_details"));
    let Some(details) = details else {
        return Ok(None);
    };
    let list = details.as_array().ok_or_else(bad)?;
    let mut pinned: Option<Vec<String>> = None;
    for entry in list {
        if entry.get("type").and_then(Value::as_str) != Some(AUTHORIZATION_DETAILS_TYPE) {
            continue;
        }
        if let Some(locations) = entry.get("locations") {
            let locations = locations.as_array().ok_or_else(bad)?;
            if !locations.iter().any(|l| l.as_str() == Some(audience)) {
                continue;
            }
        }
        let tools = entry
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        let set = pinned.get_or_insert_with(Vec::new);
        for tool in tools {
            let tool = tool.as_str().ok_or_else(bad)?;
            if !set.iter().any(|t| t == tool) {
                set.push(tool.to_owned());
            }
        }
    }
    Ok(pinned)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A principal of `subject` through `client_id`, for unit tests.
    pub(crate) fn principal_of(subject: &str, client_id: &str) -> Principal {
        Principal {
            client_id: client_id.into(),
            ..principal(subject, 0)
        }
    }

    /// A principal for unit tests.
    pub(crate) fn principal(subject: &str, exp: i64) -> Principal {
        Principal {
            subject: subject.into(),
            client_id: "c".into(),
            scope: ScopeSet::default(),
            jti: subject.into(),
            sid: None,
            exp,
            nbf: None,
            leeway: 0,
            act: None,
            validated_for: "https://x/mcp/a".into(),
            pinned: None,
            cnf: None,
            identity_headers: Vec::new(),
            assertion: RwLock::new(None),
            fresh_until: i64::MAX,
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn access_token_extraction() {
        let token = |h: &[&str], q: Option<&str>| {
            access_token(&headers(h), q)
                .unwrap()
                .map(|t| (t.token.to_owned(), t.dpop))
        };
        assert_eq!(
            token(&["Bearer abc.def-_~+/="], None),
            Some(("abc.def-_~+/=".into(), false))
        );
        assert_eq!(token(&["bearer  abc"], None), Some(("abc".into(), false)));
        assert_eq!(token(&["DPoP abc"], None), Some(("abc".into(), true)));
        assert_eq!(token(&[], None), None);
        assert_eq!(token(&["Basic dXNlcjpw"], None), None);
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ====",
            " Bearer x",
            "DPoP a b",
        ] {
            assert!(access_token(&headers(&[bad]), None).is_err(), "{bad:?}");
        }
        assert!(access_token(&headers(&["Bearer a", "DPoP b"]), None).is_err());
        assert!(matches!(
            access_token(&headers(&[]), Some("x=1&access_token=abc")),
            Err(GatewayError::TokenInQuery)
        ));
        assert_eq!(token(&[], Some("x=access_token")), None);
    }

    #[test]
    fn authorization_details_pin_tools() {
        let details = serde_json::json!([
            {"type": "other", "tools": ["x"]},
            {"type": "warden:mcp", "tools": ["a", "b"]},
            {"type": "warden:mcp", "locations": ["https://elsewhere"], "tools": ["c"]},
            {"type": "warden:mcp", "locations": ["https://x/mcp/a"], "tools": ["b", "d"]},
        ]);
        assert_eq!(
            pinned_tools(Some(&details), "https://x/mcp/a").unwrap(),
            Some(vec!["a".to_owned(), "b".to_owned(), "d".to_owned()])
        );
        assert_eq!(pinned_tools(None, "https://x/mcp/a").unwrap(), None);
        let bad = serde_json::json!([{"type": "warden:mcp", "tools": "a"}]);
        assert!(pinned_tools(Some(&bad), "https://x/mcp/a").is_err());
    }
}
