//! A bounded cache of validated tokens, keyed by the SHA-256 of the token.
//!
//! Steady traffic re-presents the same token many times; verifying its signature each
//! time would cost more than the proxy hop. An entry holds the validated identity
//! ([`Principal`]) and never outlives the token: a hit is re-checked for expiry (with the
//! server's leeway) and revocation by the caller, and removed when either fails.
//!
//! The map is split into shards so concurrent requests rarely share a lock. A full shard
//! first drops expired entries, then an arbitrary one: arbitrary rather than least-recent
//! so that no access pattern can pin entries, and with no bookkeeping on the hit path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warden_core::sync::{read_recovering, write_recovering};

use super::validate::Principal;

/// Entries kept at most, across all shards.
pub const DEFAULT_CAPACITY: usize = 65_536;

const SHARDS: usize = 16;

/// The key: SHA-256 of the token text.
pub type TokenKey = [u8; 32];

type Shard = RwLock<HashMap<TokenKey, Arc<Principal>>>;

/// The cache.
pub struct TokenCache {
    shards: Vec<Shard>,
    per_shard: usize,
}

// === impl TokenCache ===

impl TokenCache {
    /// A cache holding at most about `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The key of `token`.
    pub fn key(token: &str) -> TokenKey {
        // As `warden_core::secret::token_hash`, without its heap copy.
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    /// The cached principal for `key`, if any.
    pub fn get(&self, key: &TokenKey) -> Option<Arc<Principal>> {
        let shard = self.shard(key);
        read_recovering(shard).get(key).cloned()
    }

    /// Caches `principal` under `key`, evicting if the shard is full.
    pub fn insert(&self, key: TokenKey, principal: Arc<Principal>, now: i64) {
        let shard = self.shard(&key);
        let mut map = write_recovering(shard);
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, p| p.usable_until() >= now);
            if map.len() >= self.per_shard {
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
        }
        map.insert(key, principal);
    }

    /// Drops `key` (after a failed re-check).
    pub fn remove(&self, key: &TokenKey) {
        let shard = self.shard(key);
        write_recovering(shard).remove(key);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read_recovering(s).len()).sum()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &TokenKey) -> &Shard {
        // The key is a uniform hash already; its first byte picks the shard.
        &self.shards[usize::from(key[0]) % self.shards.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::validate::tests::principal;

    #[test]
    fn bounded_and_expired_entries_go_first() {
        let cache = TokenCache::new(SHARDS); // one entry per shard
        let key = |b: u8| {
            let mut k = [0u8; 32];
            k[1] = b; // same shard (first byte 0)
            k
        };
        cache.insert(key(1), Arc::new(principal("a", 100)), 50);
        cache.insert(key(2), Arc::new(principal("b", 200)), 50);
        assert!(cache.get(&key(1)).is_none(), "full shard evicted");
        assert_eq!(cache.get(&key(2)).unwrap().subject(), "b");
        // An expired entry is dropped before a live one would be.
        cache.insert(key(3), Arc::new(principal("c", 300)), 250);
        assert!(cache.get(&key(2)).is_none());
        assert!(cache.get(&key(3)).is_some());
        cache.remove(&key(3));
        assert!(cache.is_empty());
    }

    #[test]
    fn key_is_the_token_hash() {
        assert_eq!(
            TokenCache::key("a").to_vec(),
            warden_core::secret::token_hash("a")
        );
        assert_eq!(TokenCache::key("a"), TokenCache::key("a"));
        assert_ne!(TokenCache::key("a"), TokenCache::key("b"));
    }
}
