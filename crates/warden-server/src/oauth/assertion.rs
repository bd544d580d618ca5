//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9).
//!
//! The client signs a short-lived JWT with its private key; Warden verifies it against the
//! public keys the client registered, inline (`jwks`) or by URL (`jwks_uri`, fetched with
//! the guarded fetcher and cached by its headers). Rules: an asymmetric algorithm from the
//! allow-list (never `none` or HMAC), `iss` = `sub` = the client id, `aud` = the issuer or
//! the token endpoint, an `exp` no more than [`MAX_LIFETIME`] ahead, and a `jti` used once.
//!
//! Used `jti`s are remembered in memory until their assertion expires. With several
//! replicas, an assertion could be replayed once per replica within its lifetime (at most
//! five minutes); a shared store for them is future work.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use warden_core::jwt::{self, Validation, VerifyingKey};
use warden_core::sync::lock_recovering;
use warden_store::ClientRecord;

use super::fetch::Freshness;
use super::{ErrorCode, OAuthError};
use crate::App;

/// `client_assertion_type` for a JWT assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted on client assertions.
pub const ALGORITHMS: &[&str] = &[
    "ES256", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// Longest an assertion may live from now, seconds.
pub const MAX_LIFETIME: i64 = 300;
/// Clock-skew tolerance, seconds.
const LEEWAY: i64 = 30;
/// Largest JWKS document fetched.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most assertion ids remembered at once; past this, assertions are refused rather than
/// memory growing without bound.
const MAX_REMEMBERED: usize = 200_000;
/// Cache lifetime of a fetched JWKS without cache headers, and its ceiling.
const JWKS_DEFAULT_TTL: i64 = 300;
const JWKS_MAX_TTL: i64 = 86_400;

/// `jti`s already presented, per client, until they expire.
#[derive(Default)]
pub struct JtiCache {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl JtiCache {
    /// Records `jti` for `client_id`, valid until `exp`. False if it was seen before (a
    /// replay) or if too many are held.
    pub fn claim(&self, client_id: &str, jti: &str, exp: i64, now: i64) -> bool {
        let mut g = lock_recovering(&self.seen);
        if g.len() >= MAX_REMEMBERED {
            g.retain(|_, e| *e + LEEWAY > now);
            if g.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        let key = (client_id.to_owned(), jti.to_owned());
        if g.get(&key).is_some_and(|e| *e + LEEWAY > now) {
            return false;
        }
        g.insert(key, exp);
        true
    }

    /// Forgets ids whose assertions can no longer be accepted anyway.
    pub fn purge(&self, now: i64) {
        lock_recovering(&self.seen).retain(|_, e| *e + LEEWAY > now);
    }
}

fn refused(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, d)
}

/// The `sub` of an assertion, unverified: who the assertion claims to be, to find its keys.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let parsed = jwt::parse(assertion).ok()?;
    parsed
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The client's public keys: inline, or from its `jwks_uri`.
async fn client_keys(app: &App, client: &ClientRecord) -> Result<Vec<VerifyingKey>, OAuthError> {
    let set = if let Some(inline) = client.metadata.get("jwks").filter(|v| !v.is_null()) {
        inline.clone()
    } else if let Some(uri) = client.metadata.get("jwks_uri").and_then(Value::as_str) {
        fetch_jwks(app, uri).await?
    } else {
        return Err(refused("the client has no registered keys"));
    };
    let keys: Vec<VerifyingKey> = set
        .get("keys")
        .and_then(Value::as_array)
        .map(|ks| {
            ks.iter()
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .filter_map(|k| VerifyingKey::from_jwk(k).ok())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(refused("the client's key set holds no usable signing key"));
    }
    Ok(keys)
}

async fn fetch_jwks(app: &App, uri: &str) -> Result<Value, OAuthError> {
    let now = app.clock.now();
    if let Some(v) = app.directory.jwks.get(uri, now) {
        return Ok(v);
    }
    let url = url::Url::parse(uri).map_err(|_| refused("the client's jwks_uri is invalid"))?;
    let fetched = app
        .directory
        .fetcher
        .get(&url, MAX_JWKS_BYTES, now)
        .await
        .map_err(|e| {
            OAuthError::new(
                ErrorCode::InvalidClient,
                format!("the client's jwks_uri could not be fetched: {e}"),
            )
        })?;
    let set: Value = serde_json::from_slice(&fetched.body)
        .map_err(|_| refused("the client's jwks_uri did not return a JSON key set"))?;
    let ttl = match fetched.freshness {
        Freshness::DoNotCache => 0,
        Freshness::For(s) => s.min(JWKS_MAX_TTL),
        Freshness::Unspecified => JWKS_DEFAULT_TTL,
    };
    if ttl > 0 {
        app.directory
            .jwks
            .insert(uri.to_owned(), set.clone(), now + ttl, now);
    }
    Ok(set)
}

/// Verifies `assertion` as `client`'s authentication at `now`.
pub async fn verify(
    app: &App,
    client: &ClientRecord,
    assertion: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let keys = client_keys(app, client).await?;
    let v = Validation {
        algorithms: ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
        typ: Vec::new(),
        issuer: client.client_id.clone(),
        audience: None,
        leeway: LEEWAY,
    };
    let claims = jwt::verify(
        assertion,
        |kid| {
            keys.iter()
                .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
                .collect()
        },
        &v,
        now,
    )
    .map_err(|e| {
        tracing::info!(client_id = %client.client_id, reason = %e, "client assertion refused");
        refused("the client assertion is invalid")
    })?;
    if claims.get("sub").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(refused("the client assertion's sub must be the client id"));
    }
    let issuer = app.config.issuer.as_str();
    let token_endpoint = format!("{issuer}/oauth/token");
    let for_us = |a: &Value| {
        a.as_str()
            .is_some_and(|a| a == issuer || a == token_endpoint)
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(for_us),
        Some(a) => for_us(a),
        None => false,
    };
    if !aud_ok {
        return Err(refused(
            "the client assertion's aud must be the issuer or the token endpoint",
        ));
    }
    // `jwt::verify` already required `exp` and refused an expired one.
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(refused(
            "the client assertion lives too long (at most 5 minutes)",
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refused("the client assertion needs a jti"))?;
    if !app
        .directory
        .assertions
        .claim(&client.client_id, jti, exp, now)
    {
        return Err(refused("the client assertion was already used"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_single_use_until_it_expires() {
        let c = JtiCache::default();
        assert!(c.claim("a", "j1", 100, 0));
        assert!(!c.claim("a", "j1", 100, 50), "replay refused");
        assert!(c.claim("b", "j1", 100, 50), "per client");
        c.purge(200);
        assert!(c.claim("a", "j1", 300, 200), "forgotten once expired");
    }
}
