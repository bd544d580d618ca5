//! An issuer's signing keys: discovery, fetch and cache.
//!
//! Keys are cached per issuer for as long as the JWKS response's `Cache-Control` (or
//! `Expires`) allows, bounded to between [`MIN_FRESH`] and [`MAX_FRESH`] ([`DEFAULT_FRESH`]
//! when it says nothing). One request refreshes an expired set while the others wait for
//! it. If the issuer cannot be reached, the last good set keeps serving for up to
//! [`MAX_STALE`] (retried every [`RETRY_AFTER_FAILURE`]); with no set at all, callers get
//! [`KeysUnavailable`] (a 503, never a bad token) and, for [`FAIL_FAST`] after a failure,
//! without another attempt. A token whose `kid` is not in the set triggers a refetch, at
//! most once per [`KID_REFETCH_DEBOUNCE`] per issuer, so a flood of made-up `kid`s never
//! becomes a flood of fetches ([`JwksCache::verify`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::{StatusCode, Uri};
use serde_json::Value;
use warden_core::jwt::VerifyingKey;
use warden_core::sync::{read_recovering, write_recovering};

use super::{check_idp_url, discovery_urls, get, get_json};
use crate::gateway::tls::TrustRoots;
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

/// Where an issuer's keys come from.
#[derive(Clone, Copy)]
pub struct KeySource<'a> {
    /// The issuer identifier; its metadata document is discovered from it.
    pub issuer: &'a str,
    /// A `jwks_uri` that replaces discovery.
    pub jwks_uri: Option<&'a Uri>,
    /// Trust anchors for the issuer's `https://` endpoints; the public web PKI if `None`.
    pub roots: Option<&'a TrustRoots>,
}

/// The issuer's keys cannot be had: no set was ever fetched (or the last one is too old)
/// and the issuer does not answer. The token may well be good: answer 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysUnavailable;

/// Why [`JwksCache::verify`] failed.
#[derive(Debug)]
pub enum VerifyError<E> {
    /// The keys could not be had.
    Unavailable,
    /// The check refused the token with these keys (after at most one refetch).
    Refused(E),
}

/// The key sets of every issuer.
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
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    /// The allow-list: the algorithms of these keys.
    algorithms: Vec<String>,
    /// Until when the set is used without a refresh.
    fresh_until: i64,
    /// Until when the set may serve while refreshes fail.
    usable_until: i64,
}

// === impl KeySet ===

impl KeySet {
    /// The signing keys.
    pub fn keys(&self) -> &[Arc<VerifyingKey>] {
        &self.keys
    }

    /// The algorithms of the keys, sorted: the allow-list for tokens verified with them.
    pub fn algorithms(&self) -> &[String] {
        &self.algorithms
    }

    /// The keys a token's `kid` may name: all of them when it names none.
    pub fn for_kid(&self, kid: Option<&str>) -> Vec<&VerifyingKey> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .map(|k| &**k)
            .collect()
    }
}

// === impl JwksCache ===

impl JwksCache {
    /// Verifies a token with the issuer's keys: `check` runs with the current set and,
    /// if `unknown_kid` says its refusal was an unknown `kid`, once more with a refetched
    /// set (debounced per issuer).
    pub async fn verify<T, E>(
        &self,
        app: &App,
        source: KeySource<'_>,
        now: i64,
        check: impl Fn(&KeySet) -> Result<T, E>,
        unknown_kid: impl Fn(&E) -> bool,
    ) -> Result<T, VerifyError<E>> {
        let entry = self.entry(source);
        let keys = entry
            .keys(app, source, now)
            .await
            .map_err(|KeysUnavailable| VerifyError::Unavailable)?;
        match check(&keys) {
            Err(e) if unknown_kid(&e) => match entry.refetch_for_kid(app, source, &keys, now).await
            {
                Some(Ok(fresh)) => check(&fresh).map_err(VerifyError::Refused),
                Some(Err(KeysUnavailable)) => Err(VerifyError::Unavailable),
                None => Err(VerifyError::Refused(e)),
            },
            other => other.map_err(VerifyError::Refused),
        }
    }

    fn entry(&self, source: KeySource<'_>) -> Arc<IssuerKeys> {
        let key = match source.jwks_uri {
            Some(uri) => format!("{} {uri}", source.issuer),
            None => source.issuer.to_owned(),
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
        source: KeySource<'_>,
        now: i64,
    ) -> Result<Arc<KeySet>, KeysUnavailable> {
        let unavailable = KeysUnavailable;
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
        self.fetch_and_store(app, source, current, now).await
    }

    /// Refetches because a token named a `kid` that `seen` lacks. `None` if debounced.
    async fn refetch_for_kid(
        &self,
        app: &App,
        source: KeySource<'_>,
        seen: &Arc<KeySet>,
        now: i64,
    ) -> Option<Result<Arc<KeySet>, KeysUnavailable>> {
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
            self.fetch_and_store(app, source, Some(Arc::clone(seen)), now)
                .await,
        )
    }

    /// Fetches the set; on failure keeps `previous` while it may still serve. Called with
    /// the refresh lock held.
    async fn fetch_and_store(
        &self,
        app: &App,
        source: KeySource<'_>,
        previous: Option<Arc<KeySet>>,
        now: i64,
    ) -> Result<Arc<KeySet>, KeysUnavailable> {
        match fetch(app, source, now).await {
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
                tracing::debug!(issuer = %source.issuer, keys = set.keys.len(), "fetched the issuer's keys");
                self.store(Some(Arc::clone(&set)));
                self.failed_at.store(i64::MIN, Ordering::Release);
                Ok(set)
            }
            Err(reason) => {
                self.failed_at.store(now, Ordering::Release);
                match previous {
                    Some(old) if now < old.usable_until => {
                        tracing::warn!(issuer = %source.issuer, reason, "cannot refresh the issuer's keys; using the last good set");
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
                        tracing::error!(issuer = %source.issuer, reason, "cannot fetch the issuer's keys");
                        self.store(None);
                        Err(KeysUnavailable)
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
    source: KeySource<'_>,
    now: i64,
) -> Result<(Vec<Arc<VerifyingKey>>, Freshness), &'static str> {
    let jwks_uri = match source.jwks_uri {
        Some(uri) => uri.clone(),
        None => discover(app, source).await?,
    };
    let answer = get(app, source.roots, jwks_uri).await?;
    if answer.status != StatusCode::OK {
        return Err("the JWKS endpoint answered an error");
    }
    let doc: Value = serde_json::from_slice(&answer.body).map_err(|_| "the JWKS is not JSON")?;
    Ok((parse_jwks(&doc)?, freshness(&answer.headers, now)))
}

/// The signature keys of a JWKS: `use` absent or `sig`, of a type Warden verifies.
/// Encryption keys, symmetric keys and unknown types are skipped, not fatal.
fn parse_jwks(doc: &Value) -> Result<Vec<Arc<VerifyingKey>>, &'static str> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    let keys: Vec<Arc<VerifyingKey>> = list
        .iter()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| VerifyingKey::from_jwk(k).ok().map(Arc::new))
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err("the JWKS has no usable signing key");
    }
    Ok(keys)
}

/// The issuer's `jwks_uri`, from its OpenID or RFC 8414 metadata, whose `issuer` must
/// be the configured one byte for byte.
async fn discover(app: &App, source: KeySource<'_>) -> Result<Uri, &'static str> {
    let mut last = "the issuer publishes no metadata document";
    for url in discovery_urls(source.issuer) {
        let Ok(uri) = url.parse::<Uri>() else {
            continue;
        };
        let doc = match get_json(app, source.roots, uri).await {
            Ok((doc, _)) => doc,
            Err(why) => {
                last = why;
                continue;
            }
        };
        if doc.get("issuer").and_then(Value::as_str) != Some(source.issuer) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
