//! An external issuer's signing keys: discovery, fetch, cache, and verification with them.
//!
//! Keys are cached per issuer for as long as the JWKS response's `Cache-Control` (or
//! `Expires`) allows, bounded to between [`MIN_FRESH`] and [`MAX_FRESH`] ([`DEFAULT_FRESH`]
//! when it says nothing). One request refreshes an expired set while the others wait for
//! it. If the issuer cannot be reached, the last good set keeps serving for up to
//! [`MAX_STALE`] (retried every [`RETRY_AFTER_FAILURE`]); with no set at all, requests get
//! 503 and, for [`FAIL_FAST`] after a failure, without another attempt. A token whose
//! `kid` is not in the set triggers a refetch, at most once per [`KID_REFETCH_DEBOUNCE`]
//! per issuer, so a flood of made-up `kid`s never becomes a flood of fetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode, Uri};
use serde_json::{Map, Value};
use warden_core::jwt::{self, JwtError, Validation, VerifyingKey, AT_JWT_TYP};
use warden_core::sync::{read_recovering, write_recovering};

use super::{check_idp_url, exchange, normalize, ExternalIssuer, IdpAnswer, JwksSettings};
use crate::gateway::registry::Protected;
use crate::gateway::validate::{Principal, Rejection};
use crate::oauth::fetch::{freshness, Freshness};
use crate::App;

/// Shortest time a fetched set is used before a refresh, seconds.
pub const MIN_FRESH: i64 = 60;
/// Longest time a fetched set is used before a refresh, seconds.
pub const MAX_FRESH: i64 = 86_400;
/// Freshness when the response says nothing, seconds.
pub const DEFAULT_FRESH: i64 = 600;
/// How long past its freshness a set keeps serving while the issuer is unreachable.
pub const MAX_STALE: i64 = 86_400;
/// With a stale set and the issuer down: the next refresh attempt, seconds later.
pub const RETRY_AFTER_FAILURE: i64 = 30;
/// With no set and the issuer down: requests fail without a fetch for this long.
pub const FAIL_FAST: i64 = 5;
/// The least time between two refetches caused by an unknown `kid`, per issuer.
pub const KID_REFETCH_DEBOUNCE: i64 = 30;

/// Keys kept per JWKS at most.
const MAX_KEYS: usize = 64;
/// Issuers tracked at most (they come from the registry, so this is never reached in
/// practice; it only bounds memory).
const MAX_ISSUERS: usize = 1024;

/// The key sets of every external issuer.
#[derive(Default)]
pub struct JwksCache {
    issuers: RwLock<HashMap<String, Arc<IssuerKeys>>>,
}

/// One issuer's keys and refresh state.
struct IssuerKeys {
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching: one fetch per issuer at a time.
    refresh: tokio::sync::Mutex<()>,
    /// When an unknown `kid` last caused a refetch.
    last_forced: AtomicI64,
    /// When the last fetch failed.
    failed_at: AtomicI64,
}

/// A fetched set of signing keys.
#[derive(Clone)]
struct KeySet {
    keys: Vec<VerifyingKey>,
    /// The allow-list: the algorithms of these keys.
    algorithms: Vec<String>,
    /// Until when the set is used without a refresh.
    fresh_until: i64,
    /// Until when the set may serve while refreshes fail.
    usable_until: i64,
}

// === verification ===

/// Verifies `token` with the issuer's keys, refetching once on an unknown `kid`.
pub async fn verify(
    app: &App,
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &JwksSettings,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    let entry = app.gateway.external.jwks.entry(issuer, settings);
    let keys = entry.keys(app, issuer, settings, now).await?;
    let claims = match check(&keys, server, issuer, settings, token, now) {
        Err(Rejection::Jwt(JwtError::UnknownKid)) => {
            match entry
                .refetch_for_kid(app, issuer, settings, &keys, now)
                .await
            {
                Some(fresh) => check(&*fresh?, server, issuer, settings, token, now)?,
                None => return Err(Rejection::Jwt(JwtError::UnknownKid)),
            }
        }
        other => other?,
    };
    let claims = normalize(&claims, token)?;
    Principal::from_claims(&claims, server)
}

/// Signature, header and claims, with one key set.
fn check(
    keys: &KeySet,
    server: &Protected,
    issuer: &ExternalIssuer,
    settings: &JwksSettings,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, Rejection> {
    let typ = if settings.accept_jwt_typ {
        // `typ` is then `at+jwt`, `JWT` or absent; anything else (an ID token's
        // `id+jwt`, a logout token) is still refused.
        let parsed = jwt::parse(token).map_err(Rejection::Jwt)?;
        if let Some(typ) = parsed.header.typ.as_deref() {
            let t = typ.to_ascii_lowercase();
            let t = t.strip_prefix("application/").unwrap_or(&t);
            if t != AT_JWT_TYP && t != "jwt" {
                return Err(Rejection::Jwt(JwtError::WrongTyp));
            }
        }
        Vec::new()
    } else {
        vec![AT_JWT_TYP.to_owned()]
    };
    let validation = Validation {
        algorithms: keys.algorithms.clone(),
        typ,
        issuer: issuer.issuer.clone(),
        audience: Some(server.canonical_uri.to_string()),
        leeway: server.leeway,
    };
    let lookup = |kid: Option<&str>| -> Vec<&VerifyingKey> {
        keys.keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .collect()
    };
    let claims = jwt::verify(token, lookup, &validation, now).map_err(Rejection::Jwt)?;
    // The same single-audience rule as Warden's own tokens, except for the names the
    // registration allows besides the canonical URI (which `verify` found in `aud`).
    if !audience_allowed(
        claims.get("aud"),
        &server.canonical_uri,
        &settings.extra_audiences,
    ) {
        return Err(Rejection::SharedAudience);
    }
    Ok(claims)
}

/// Whether `aud` names this resource and nothing else but `extra` names.
fn audience_allowed(aud: Option<&Value>, canonical: &str, extra: &[String]) -> bool {
    if jwt::single_audience(aud) {
        return true;
    }
    match aud {
        Some(Value::Array(list)) => {
            !extra.is_empty()
                && list.iter().all(|a| {
                    a.as_str()
                        .is_some_and(|a| a == canonical || extra.iter().any(|e| e == a))
                })
        }
        _ => false,
    }
}

// === impl JwksCache ===

impl JwksCache {
    fn entry(&self, issuer: &ExternalIssuer, settings: &JwksSettings) -> Arc<IssuerKeys> {
        let key = match &settings.jwks_uri {
            Some(uri) => format!("{} {uri}", issuer.issuer),
            None => issuer.issuer.clone(),
        };
        let found = read_recovering(&self.issuers).get(&key).cloned();
        if let Some(entry) = found {
            return entry;
        }
        let mut map = write_recovering(&self.issuers);
        if map.len() >= MAX_ISSUERS && !map.contains_key(&key) {
            map.clear();
        }
        Arc::clone(
            map.entry(key)
                .or_insert_with(|| Arc::new(IssuerKeys::new())),
        )
    }
}

// === impl IssuerKeys ===

impl IssuerKeys {
    fn new() -> Self {
        Self {
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            last_forced: AtomicI64::new(i64::MIN),
            failed_at: AtomicI64::new(i64::MIN),
        }
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        read_recovering(&self.current).clone()
    }

    fn store(&self, set: Option<Arc<KeySet>>) {
        *write_recovering(&self.current) = set;
    }

    fn failed_recently(&self, now: i64) -> bool {
        now.saturating_sub(self.failed_at.load(Ordering::Acquire)) < FAIL_FAST
    }

    /// A usable key set: the cached one while fresh, else refreshed.
    async fn keys(
        &self,
        app: &App,
        issuer: &ExternalIssuer,
        settings: &JwksSettings,
        now: i64,
    ) -> Result<Arc<KeySet>, Rejection> {
        let unavailable = Rejection::IssuerUnavailable("the issuer's keys cannot be fetched");
        let snapshot = self.current();
        match &snapshot {
            Some(set) if now < set.fresh_until => return Ok(Arc::clone(set)),
            None if self.failed_recently(now) => return Err(unavailable),
            _ => {}
        }
        let _guard = self.refresh.lock().await;
        // Another request may have refreshed while this one waited.
        let current = self.current();
        match &current {
            Some(set) if now < set.fresh_until => return Ok(Arc::clone(set)),
            None if self.failed_recently(now) => return Err(unavailable),
            _ => {}
        }
        self.fetch_and_store(app, issuer, settings, current, now)
            .await
    }

    /// Refetches because a token named a `kid` that `seen` lacks. `None` if debounced.
    async fn refetch_for_kid(
        &self,
        app: &App,
        issuer: &ExternalIssuer,
        settings: &JwksSettings,
        seen: &Arc<KeySet>,
        now: i64,
    ) -> Option<Result<Arc<KeySet>, Rejection>> {
        let _guard = self.refresh.lock().await;
        if let Some(current) = self.current() {
            if !Arc::ptr_eq(&current, seen) {
                // Refreshed while this request waited: try that set, without another fetch.
                return Some(Ok(current));
            }
        }
        if now.saturating_sub(self.last_forced.load(Ordering::Acquire)) < KID_REFETCH_DEBOUNCE {
            return None;
        }
        self.last_forced.store(now, Ordering::Release);
        Some(
            self.fetch_and_store(app, issuer, settings, Some(Arc::clone(seen)), now)
                .await,
        )
    }

    /// Fetches the set; on failure keeps `previous` while it may still serve. Called with
    /// the refresh lock held.
    async fn fetch_and_store(
        &self,
        app: &App,
        issuer: &ExternalIssuer,
        settings: &JwksSettings,
        previous: Option<Arc<KeySet>>,
        now: i64,
    ) -> Result<Arc<KeySet>, Rejection> {
        match fetch(app, issuer, settings, now).await {
            Ok((keys, freshness)) => {
                let mut algorithms: Vec<String> = keys.iter().map(|k| k.alg.clone()).collect();
                algorithms.sort();
                algorithms.dedup();
                let fresh_until = now.saturating_add(fresh_for(freshness));
                let set = Arc::new(KeySet {
                    keys,
                    algorithms,
                    fresh_until,
                    usable_until: fresh_until.saturating_add(MAX_STALE),
                });
                tracing::debug!(issuer = %issuer.issuer, keys = set.keys.len(), "fetched the issuer's keys");
                self.store(Some(Arc::clone(&set)));
                self.failed_at.store(i64::MIN, Ordering::Release);
                Ok(set)
            }
            Err(reason) => {
                self.failed_at.store(now, Ordering::Release);
                match previous {
                    Some(old) if now < old.usable_until => {
                        tracing::warn!(issuer = %issuer.issuer, reason, "cannot refresh the issuer's keys; using the last good set");
                        let fresh_until = if now < old.fresh_until {
                            old.fresh_until
                        } else {
                            now.saturating_add(RETRY_AFTER_FAILURE)
                        };
                        let kept = Arc::new(KeySet {
                            fresh_until,
                            ..(*old).clone()
                        });
                        self.store(Some(Arc::clone(&kept)));
                        Ok(kept)
                    }
                    _ => {
                        tracing::error!(issuer = %issuer.issuer, reason, "cannot fetch the issuer's keys");
                        self.store(None);
                        Err(Rejection::IssuerUnavailable(
                            "the issuer's keys cannot be fetched",
                        ))
                    }
                }
            }
        }
    }
}

// === fetching ===

fn fresh_for(freshness: Freshness) -> i64 {
    match freshness {
        Freshness::DoNotCache => MIN_FRESH,
        Freshness::For(secs) => secs.clamp(MIN_FRESH, MAX_FRESH),
        Freshness::Unspecified => DEFAULT_FRESH,
    }
}

/// The issuer's signing keys and how long they may be cached.
async fn fetch(
    app: &App,
    issuer: &ExternalIssuer,
    settings: &JwksSettings,
    now: i64,
) -> Result<(Vec<VerifyingKey>, Freshness), &'static str> {
    let jwks_uri = match &settings.jwks_uri {
        Some(uri) => uri.clone(),
        None => discover(app, issuer).await?,
    };
    let answer = get(app, issuer, jwks_uri).await?;
    if answer.status != StatusCode::OK {
        return Err("the JWKS endpoint answered an error");
    }
    let doc: Value = serde_json::from_slice(&answer.body).map_err(|_| "the JWKS is not JSON")?;
    Ok((parse_jwks(&doc)?, freshness(&answer.headers, now)))
}

/// The signature keys of a JWKS: `use` absent or `sig`, of a type Warden verifies.
/// Encryption keys, symmetric keys and unknown types are skipped, not fatal.
fn parse_jwks(doc: &Value) -> Result<Vec<VerifyingKey>, &'static str> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    let keys: Vec<VerifyingKey> = list
        .iter()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| VerifyingKey::from_jwk(k).ok())
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err("the JWKS has no usable signing key");
    }
    Ok(keys)
}

/// The issuer's `jwks_uri`, from its OpenID or RFC 8414 metadata, whose `issuer` must
/// be the configured one byte for byte.
async fn discover(app: &App, issuer: &ExternalIssuer) -> Result<Uri, &'static str> {
    let mut last = "the issuer publishes no metadata document";
    for url in discovery_urls(&issuer.issuer) {
        let Ok(uri) = url.parse::<Uri>() else {
            continue;
        };
        let answer = match get(app, issuer, uri).await {
            Ok(answer) => answer,
            Err(why) => {
                last = why;
                continue;
            }
        };
        if answer.status != StatusCode::OK {
            continue;
        }
        let Ok(doc) = serde_json::from_slice::<Value>(&answer.body) else {
            last = "the issuer's metadata document is not JSON";
            continue;
        };
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
            // A document for another issuer is never a fallback.
            return Err("the issuer's metadata document names another issuer");
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the issuer's metadata document has no jwks_uri")?;
        return check_idp_url(jwks_uri, "jwks_uri")
            .map_err(|_| "the issuer's jwks_uri is not an https URL");
    }
    Err(last)
}

/// OpenID Connect Discovery (appended to the issuer), then RFC 8414 §3.1 (inserted
/// between host and path). The status probe tries the same documents.
pub(crate) fn discovery_urls(issuer: &str) -> Vec<String> {
    let mut urls = vec![format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )];
    if let Ok(url) = url::Url::parse(issuer) {
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls
}

async fn get(app: &App, issuer: &ExternalIssuer, uri: Uri) -> Result<IdpAnswer, &'static str> {
    let request = Request::get(uri)
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Body::empty())
        .map_err(|_| "invalid issuer URL")?;
    exchange(app, issuer.roots.as_ref(), request).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn discovery_urls_follow_both_specs() {
        assert_eq!(
            discovery_urls("https://idp.example/realms/acme"),
            [
                "https://idp.example/realms/acme/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example/realms/acme/"),
            [
                "https://idp.example/realms/acme/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example"),
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server"
            ]
        );
    }

    #[test]
    fn only_signature_keys_are_kept() {
        let key = warden_core::keys::SigningKey::generate(
            warden_core::keys::SigningAlg::Es256,
            "k1".into(),
        )
        .unwrap();
        let mut enc = key.public_jwk();
        enc["use"] = json!("enc");
        enc["kid"] = json!("enc");
        let doc = json!({"keys": [
            enc,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            key.public_jwk(),
        ]});
        let keys = parse_jwks(&doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("k1"));
        assert!(parse_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(parse_jwks(&json!({})).is_err());
    }

    #[test]
    fn freshness_is_bounded() {
        assert_eq!(fresh_for(Freshness::DoNotCache), MIN_FRESH);
        assert_eq!(fresh_for(Freshness::For(1)), MIN_FRESH);
        assert_eq!(fresh_for(Freshness::For(3600)), 3600);
        assert_eq!(fresh_for(Freshness::For(i64::MAX)), MAX_FRESH);
        assert_eq!(fresh_for(Freshness::Unspecified), DEFAULT_FRESH);
    }
}
