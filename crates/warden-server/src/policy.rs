//! The fleet policy in memory: loaded at start, re-read when another process applies a
//! new version (the maintenance loop polls), consulted by every grant.

use std::sync::{Arc, RwLock};

use warden_core::policy::Policy;
use warden_core::sync::{read_recovering, write_recovering};
use warden_store::{PolicyStore, Store, StoreError};

/// The current policy and its version.
///
/// The pair is replaced whole, never edited in place, so the value behind a poisoned lock
/// is always one complete version: every access takes the lock through the recovering
/// guards rather than skip a refresh for the rest of the process's life.
#[derive(Default)]
pub struct PolicyCell {
    current: RwLock<(i64, Arc<Policy>)>,
}

impl PolicyCell {
    /// Loads the stored policy (the empty policy if none was ever applied).
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let cell = PolicyCell::default();
        cell.refresh(store).await?;
        Ok(cell)
    }

    /// The policy now.
    pub fn get(&self) -> Arc<Policy> {
        Arc::clone(&read_recovering(&self.current).1)
    }

    /// The version now (0 before any apply).
    pub fn version(&self) -> i64 {
        read_recovering(&self.current).0
    }

    /// Re-reads the store if it holds a newer version.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let Some(stored) = PolicyStore::current(store).await? else {
            return Ok(());
        };
        if stored.version == self.version() {
            return Ok(());
        }
        let policy: Policy = serde_json::from_str(&stored.document)
            .map_err(|e| StoreError::Corrupt(format!("stored policy: {e}")))?;
        *write_recovering(&self.current) = (stored.version, Arc::new(policy));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;

    #[tokio::test]
    async fn a_refresh_after_a_poisoned_lock_still_takes_effect() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let cell = PolicyCell::load(&store).await.unwrap();
        assert_eq!(cell.version(), 0);

        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _held = cell.current.write().unwrap();
            panic!("a panic while the policy is locked");
        }));
        assert!(cell.current.is_poisoned());

        let mut policy = Policy::default();
        policy.groups.insert("ops".into(), Default::default());
        let document = serde_json::to_string(&policy).unwrap();
        PolicyStore::replace(&store, 0, &document, "", 100)
            .await
            .unwrap();
        cell.refresh(&store).await.unwrap();
        assert_eq!(cell.version(), 1);
        assert!(cell.get().groups.contains_key("ops"));
    }
}
