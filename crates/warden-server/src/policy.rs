//! The fleet policy in memory: loaded at start, re-read when another process applies a
//! new version (the maintenance loop polls), consulted by every grant.

use std::sync::{Arc, RwLock};

use warden_core::policy::Policy;
use warden_store::{PolicyStore, Store, StoreError};

/// The current policy and its version.
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
        match self.current.read() {
            Ok(g) => Arc::clone(&g.1),
            Err(p) => Arc::clone(&p.into_inner().1),
        }
    }

    /// The version now (0 before any apply).
    pub fn version(&self) -> i64 {
        self.current.read().map_or(0, |g| g.0)
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
        if let Ok(mut g) = self.current.write() {
            *g = (stored.version, Arc::new(policy));
        }
        Ok(())
    }
}
