//! RFC 7662 introspection of an external issuer's opaque tokens.
//!
//! The gateway POSTs `token=…&token_type_hint=access_token` with HTTP Basic credentials
//! (the client secret is sealed at rest and only ever sits in a sensitive header value).
//! A positive answer becomes a [`Principal`] that the validated-token cache keeps until
//! the earlier of the token's `exp` and the server's `introspection_cache_secs`; a refusal
//! is remembered for [`REFUSED_TTL`] seconds. An issuer that cannot be reached, or answers
//! anything but `200` with a JSON object, is *unavailable* (503), not a verdict on the token.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{Map, Value};
use warden_core::jwt::{JwtError, MAX_TOKEN_LEN};
use warden_core::secret::token_hash;

use super::{normalize, ExternalIssuer, IntrospectionSettings};
use crate::gateway::registry::Protected;
use crate::gateway::validate::{Principal, Rejection};
use crate::issuer::exchange;
use crate::oauth::fetch::TtlCache;
use crate::App;

/// How long a refused token is refused without asking the issuer again, seconds.
pub const REFUSED_TTL: i64 = 5;

/// Refused tokens remembered at most.
const REFUSED_CAPACITY: usize = 10_000;

/// Tokens the issuer recently refused (inactive, or not for this server), by server and
/// token hash.
pub struct RefusedCache {
    entries: TtlCache<Rejection>,
}

// === impl RefusedCache ===

impl RefusedCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            entries: TtlCache::new(REFUSED_CAPACITY),
        }
    }
}

impl Default for RefusedCache {
    fn default() -> Self {
        Self::new()
    }
}

// === introspection ===

/// Introspects `token` at the issuer of `server`.
pub async fn introspect(
    app: &App,
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &IntrospectionSettings,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Jwt(JwtError::Malformed));
    }
    let refused = &app.gateway.external.refused.entries;
    let key = refused_key(&server.name, token);
    if let Some(rejection) = refused.get(&key, now) {
        return Err(rejection);
    }
    let unavailable = |reason: &'static str| {
        // The endpoint's host only: the URL is configuration, but keep logs lean.
        tracing::warn!(
            server = %server.name,
            endpoint = settings.endpoint.host().unwrap_or(""),
            reason,
            "token introspection failed"
        );
        Rejection::IssuerUnavailable("the token issuer's introspection endpoint failed")
    };
    let authorization = settings
        .authorization()
        .ok_or(Rejection::IssuerUnavailable(
            "invalid introspection credentials",
        ))?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("token_type_hint", "access_token")
        .finish();
    let request = Request::post(settings.endpoint.clone())
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Body::from(form))
        .map_err(|_| unavailable("cannot build the request"))?;
    let answer = exchange(app, issuer.roots.as_ref(), request)
        .await
        .map_err(unavailable)?;
    if answer.status != StatusCode::OK {
        tracing::warn!(server = %server.name, status = answer.status.as_u16(), "the introspection endpoint answered an error");
        return Err(unavailable("the endpoint answered an error status"));
    }
    let doc: Map<String, Value> = serde_json::from_slice(&answer.body)
        .map_err(|_| unavailable("the answer is not a JSON object"))?;
    match principal(server, issuer, settings, &doc, token, now) {
        Ok(principal) => Ok(principal),
        Err(rejection) => {
            refused.insert(key, rejection.clone(), now.saturating_add(REFUSED_TTL), now);
            Err(rejection)
        }
    }
}

/// The identity in a positive answer, after every check.
fn principal(
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &IntrospectionSettings,
    doc: &Map<String, Value>,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    if doc.get("active") != Some(&Value::Bool(true)) {
        return Err(Rejection::Inactive);
    }
    if let Some(iss) = doc.get("iss") {
        if iss.as_str() != Some(issuer.issuer.as_str()) {
            return Err(Rejection::Jwt(JwtError::WrongIssuer));
        }
    }
    let canonical = &*server.canonical_uri;
    let audience_ok = match doc.get("aud") {
        Some(Value::String(aud)) => aud == canonical,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(canonical)),
        None => !settings.requires_aud,
        Some(_) => false,
    };
    if !audience_ok {
        return Err(Rejection::Jwt(JwtError::WrongAudience));
    }
    if doc
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
    {
        return Err(Rejection::Jwt(JwtError::WrongTyp));
    }
    let cache_until = now.saturating_add(settings.cache_secs);
    let exp = match doc.get("exp") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or(Rejection::Jwt(JwtError::Claim("exp")))?),
    };
    let mut claims = normalize(doc, token)?;
    // Without `exp`, the token is trusted only as long as the cached answer.
    claims.insert("exp".into(), Value::from(exp.unwrap_or(cache_until)));
    let principal = Principal::from_claims(&claims, server)?;
    let exp = principal.exp();
    Ok(principal.with_fresh_until(cache_until.min(exp)))
}

fn refused_key(server: &str, token: &str) -> String {
    format!("{server} {}", warden_core::secret::hex(&token_hash(token)))
}
