//! The in-memory denylist of revoked access-token ids (`jti`).
//!
//! The gateway's validation path must not touch the database for JWTs, so revocations are
//! kept here: loaded from the store at start, added to by this process's revocation
//! endpoint, and (with several replicas) by notifications from the others. An entry lives
//! until the token it names would have expired anyway.

use std::collections::HashMap;
use std::sync::RwLock;

use warden_core::sync::{read_recovering, write_recovering};
use warden_store::{RevocationStore, Store, StoreError};

/// Revoked `jti`s and when each stops mattering.
///
/// Each change is one map operation (an insert, or a `retain` that only drops expired
/// entries), so the map behind a poisoned lock is still a valid denylist; it is taken
/// through the recovering guards; skipping an insert would un-revoke a token.
#[derive(Default)]
pub struct RevocationList {
    entries: RwLock<HashMap<String, i64>>,
}

impl RevocationList {
    /// Loads every still-relevant revocation from the store.
    pub async fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let entries = RevocationStore::list_active(store, now)
            .await?
            .into_iter()
            .collect();
        Ok(Self {
            entries: RwLock::new(entries),
        })
    }

    /// Whether `jti` is revoked.
    pub fn contains(&self, jti: &str) -> bool {
        read_recovering(&self.entries).contains_key(jti)
    }

    /// Whether an access token is revoked: by its own `jti`, or through its grant's
    /// session id `sid` (revoking a refresh family denylists its `sid`).
    pub fn token_revoked(&self, jti: Option<&str>, sid: Option<&str>) -> bool {
        jti.is_some_and(|j| self.contains(j)) || sid.is_some_and(|s| self.contains(s))
    }

    /// Adds `jti`, relevant until `expires_at`.
    pub fn insert(&self, jti: String, expires_at: i64) {
        write_recovering(&self.entries).insert(jti, expires_at);
    }

    /// Drops entries whose tokens have expired by `now`.
    pub fn purge(&self, now: i64) {
        write_recovering(&self.entries).retain(|_, exp| *exp > now);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        read_recovering(&self.entries).len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
