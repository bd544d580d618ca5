//! The access-token denylist: revoked `jti`s, kept until the token would have expired.

use async_trait::async_trait;

use crate::sql::col;
use crate::{Store, StoreError};

/// Storage for revoked access-token ids.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Adds `jti` to the denylist until `expires_at`. Idempotent: revoking again keeps
    /// the first revocation time and the later expiry.
    async fn revoke(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError>;
    /// Whether `jti` is on the denylist.
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Entries not yet expired, as `(jti, expires_at)`, to seed an in-memory denylist.
    async fn list_active(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Deletes entries whose token has expired anyway. Returns the count.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

// === impl Store ===

#[async_trait]
impl RevocationStore for Store {
    async fn revoke(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(&self.q(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = CASE \
                 WHEN excluded.expires_at > revoked_tokens.expires_at THEN excluded.expires_at \
                 ELSE revoked_tokens.expires_at END",
        ))
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(self.db()?)
        .await?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(&self.q("SELECT jti FROM revoked_tokens WHERE jti = ?"))
            .bind(jti)
            .fetch_optional(self.db()?)
            .await?;
        Ok(row.is_some())
    }

    async fn list_active(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(&self.q(
            "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ? ORDER BY expires_at, jti",
        ))
        .bind(now)
        .fetch_all(self.db()?)
        .await?;
        rows.iter()
            .map(|row| Ok((col(row, "jti")?, col(row, "expires_at")?)))
            .collect()
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM revoked_tokens WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected())
    }
}
