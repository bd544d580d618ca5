//! The assertion an upstream receives instead of the client's token.
//!
//! The client's token is never forwarded (that would let an upstream replay it anywhere
//! its audience is accepted). The upstream gets `Authorization: Bearer <assertion>`: a JWT
//! signed with the gateway's active signing key (verifiable with Warden's JWKS) that
//! says who called, through which client, with which scopes:
//!
//! | claim | value |
//! |---|---|
//! | `typ` (header) | `warden-assertion+jwt`, so it can never pass as an access token |
//! | `iss` | the issuer |
//! | `aud` | the upstream URL, exactly as registered |
//! | `sub`, `client_id`, `scope`, `act` | from the validated token |
//! | `iat`, `nbf`, `exp` | now, now, at most [`ASSERTION_TTL`] later and never past the token's own acceptance |
//! | `jti` | fresh |
//!
//! Signing costs about as much as verifying, so one assertion is reused for all requests
//! carrying the same token until shortly before it expires, and only for the audience it
//! was minted for: a server whose upstream changes gets a fresh one at once.

use std::sync::PoisonError;

use axum::http::HeaderValue;
use serde_json::{json, Map, Value};
use warden_core::jwt;
use warden_core::secret::random_id;

use super::challenge::GatewayError;
use super::validate::Principal;
use crate::App;

/// The `typ` header of an upstream assertion.
pub const ASSERTION_TYP: &str = "warden-assertion+jwt";

/// Longest life of an assertion, seconds.
pub const ASSERTION_TTL: i64 = 60;

/// A cached assertion is replaced this many seconds before it expires, so an upstream
/// never receives one about to lapse in transit.
const REFRESH_MARGIN: i64 = 15;

/// An assertion and its `Authorization` header value.
#[derive(Clone)]
pub(crate) struct CachedAssertion {
    header: HeaderValue,
    /// The `aud` it carries.
    audience: Box<str>,
    iat: i64,
    exp: i64,
}

/// The `Authorization` value for the upstream `audience`, minted or reused.
pub fn upstream_authorization(
    app: &App,
    audience: &str,
    principal: &Principal,
    now: i64,
) -> Result<HeaderValue, GatewayError> {
    // Only the header is cloned out of the lock (a reference count), not the entry.
    let reused = {
        let guard = principal
            .assertion
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|c| c.reusable_for(audience, now))
            .map(|c| c.header.clone())
    };
    if let Some(header) = reused {
        return Ok(header);
    }
    let fresh = mint(app, audience, principal, now)?;
    let header = fresh.header.clone();
    *principal
        .assertion
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(fresh);
    Ok(header)
}

// === impl CachedAssertion ===

impl CachedAssertion {
    /// Whether this assertion may go to the upstream `audience` at `now`: it was minted
    /// for that audience (a server's upstream can change while its tokens stay valid) and
    /// is not about to expire.
    fn reusable_for(&self, audience: &str, now: i64) -> bool {
        *self.audience == *audience
            && now >= self.iat
            && now < self.exp - REFRESH_MARGIN.min((self.exp - self.iat) / 2)
    }
}

fn mint(
    app: &App,
    audience: &str,
    principal: &Principal,
    now: i64,
) -> Result<CachedAssertion, GatewayError> {
    let key = app
        .keys
        .signing_key()
        .ok_or(GatewayError::Internal("no active signing key"))?;
    let jti = random_id().map_err(|_| GatewayError::Internal("random generator failed"))?;
    let exp = (now + ASSERTION_TTL).min(principal.usable_until().max(now + 1));
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(app.config.issuer.clone()));
    claims.insert("aud".into(), Value::String(audience.to_owned()));
    claims.insert("sub".into(), Value::String(principal.subject().to_owned()));
    claims.insert(
        "client_id".into(),
        Value::String(principal.client_id().to_owned()),
    );
    claims.insert("scope".into(), Value::String(principal.scope().to_string()));
    if let Some(act) = principal.act() {
        claims.insert("act".into(), act.clone());
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(exp));
    claims.insert("jti".into(), Value::String(jti));
    let token = jwt::sign(&claims, ASSERTION_TYP, &key)
        .map_err(|_| GatewayError::Internal("assertion signing failed"))?;
    let mut header = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| GatewayError::Internal("assertion is not a header value"))?;
    header.set_sensitive(true);
    Ok(CachedAssertion {
        header,
        audience: audience.into(),
        iat: now,
        exp,
    })
}
