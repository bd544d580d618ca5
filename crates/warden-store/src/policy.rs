//! The fleet policy document: one current version, replaced by compare-and-swap.

use async_trait::async_trait;

use crate::sql::col;
use crate::{Store, StoreError};

/// The stored policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    /// Increases by one on every apply.
    pub version: i64,
    /// The validated policy, as JSON.
    pub document: String,
    /// The file as it was applied, for `warden policy show`.
    pub source: String,
    /// UNIX seconds.
    pub updated_at: i64,
}

/// Storage for the fleet policy.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The current policy, if one was ever applied.
    async fn current(&self) -> Result<Option<StoredPolicy>, StoreError>;
    /// Replaces the policy if its version is still `expected` (`0` when none exists);
    /// returns the new version, or `Conflict` if someone applied in between.
    async fn replace(
        &self,
        expected: i64,
        document: &str,
        source: &str,
        now: i64,
    ) -> Result<i64, StoreError>;
}

// === impl Store ===

#[async_trait]
impl PolicyStore for Store {
    async fn current(&self) -> Result<Option<StoredPolicy>, StoreError> {
        let row = sqlx::query(
            &self.q("SELECT version, document, source, updated_at FROM policy WHERE id = 1"),
        )
        .fetch_optional(self.db()?)
        .await?;
        row.map(|r| {
            Ok(StoredPolicy {
                version: col(&r, "version")?,
                document: col(&r, "document")?,
                source: col(&r, "source")?,
                updated_at: col(&r, "updated_at")?,
            })
        })
        .transpose()
    }

    async fn replace(
        &self,
        expected: i64,
        document: &str,
        source: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let next = expected + 1;
        let done = if expected == 0 {
            sqlx::query(&self.q(
                "INSERT INTO policy (id, version, document, source, updated_at) VALUES (1, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            ))
            .bind(next)
            .bind(document)
            .bind(source)
            .bind(now)
            .execute(self.db()?)
            .await?
        } else {
            sqlx::query(&self.q(
                "UPDATE policy SET version = ?, document = ?, source = ?, updated_at = ? WHERE id = 1 AND version = ?",
            ))
            .bind(next)
            .bind(document)
            .bind(source)
            .bind(now)
            .bind(expected)
            .execute(self.db()?)
            .await?
        };
        if done.rows_affected() == 1 {
            Ok(next)
        } else {
            Err(StoreError::Conflict(
                "policy was changed concurrently; re-apply".into(),
            ))
        }
    }
}
