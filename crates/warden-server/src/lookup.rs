//! Short-lived caches in front of the store for the token endpoint's hot path: client
//! registrations by id and servers by canonical URI.
//!
//! Three reads per token request (client, its secrets, the server) cost more CPU than
//! signing the token. Entries live for [`LOOKUP_TTL_MS`] — the same bound the maintenance
//! loop gives replicas to see each other's changes — and this process's own admin
//! changes invalidate them at once. Misses are not cached, so a registration made by
//! another process is seen on its first use.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warden_core::sync::{read_recovering, write_recovering};

/// How long a looked-up record is trusted, milliseconds.
pub const LOOKUP_TTL_MS: i64 = 5_000;
/// Most entries kept; beyond it the cache starts over (a flood of distinct keys cannot
/// grow memory).
const MAX_ENTRIES: usize = 10_000;

/// A map from key to a record fetched at some time.
///
/// Every change is one map operation and any content is a valid cache, so a poisoned
/// lock is taken: skipping `invalidate` would serve a changed record until its TTL.
pub struct TtlCache<V> {
    map: RwLock<HashMap<String, (i64, Arc<V>)>>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<V> TtlCache<V> {
    /// The entry for `key` if fetched less than the TTL before `now_ms`.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<Arc<V>> {
        let map = read_recovering(&self.map);
        let (at, v) = map.get(key)?;
        (now_ms.saturating_sub(*at) < LOOKUP_TTL_MS && now_ms >= *at).then(|| Arc::clone(v))
    }

    /// Remembers `value` for `key`, fetched at `now_ms`.
    pub fn put(&self, key: &str, value: Arc<V>, now_ms: i64) {
        let mut map = write_recovering(&self.map);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_owned(), (now_ms, value));
    }

    /// Forgets `key` (after this process changed it).
    pub fn invalidate(&self, key: &str) {
        write_recovering(&self.map).remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        write_recovering(&self.map).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_invalidated() {
        let c: TtlCache<u32> = TtlCache::default();
        c.put("a", Arc::new(1), 1_000);
        assert_eq!(c.get("a", 1_000).as_deref(), Some(&1));
        assert_eq!(c.get("a", 1_000 + LOOKUP_TTL_MS - 1).as_deref(), Some(&1));
        assert_eq!(c.get("a", 1_000 + LOOKUP_TTL_MS), None);
        assert_eq!(
            c.get("a", 999),
            None,
            "a clock moving back does not extend trust"
        );
        c.put("b", Arc::new(2), 1_000);
        c.invalidate("b");
        assert_eq!(c.get("b", 1_000), None);
        c.clear();
        assert_eq!(c.get("a", 1_000), None);
    }
}
