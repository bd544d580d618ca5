//! DPoP proofs already accepted (RFC 9449 §11.1): the replay table every replica shares.

use async_trait::async_trait;

use crate::{Store, StoreError};

/// Storage for the proofs a DPoP-protected endpoint has accepted.
#[async_trait]
pub trait DpopProofStore: Send + Sync {
    /// Records `proof_hash` as used until `expires_at`, unless it is recorded already and
    /// not expired at `now`: `true` when this call claimed it (the proof is fresh),
    /// `false` when it is a replay. One statement, so two callers on one database, on
    /// one replica or two, never both get `true` for one hash. An expired record is
    /// taken over in place.
    async fn claim_once(
        &self,
        proof_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes records expired at `now`. Returns the count.
    async fn purge_used_proofs(&self, now: i64) -> Result<u64, StoreError>;
}

// === impl Store ===

#[async_trait]
impl DpopProofStore for Store {
    async fn claim_once(
        &self,
        proof_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // On a conflict PostgreSQL waits for the other transaction and then evaluates the
        // WHERE on the row it committed; SQLite has one writer. Either way the loser sees
        // an unexpired row and affects nothing.
        let done = sqlx::query(&self.q(
            "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES (?, ?) \
             ON CONFLICT (proof_hash) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE dpop_proofs.expires_at <= ?",
        ))
        .bind(proof_hash.to_vec())
        .bind(expires_at)
        .bind(now)
        .execute(self.db()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_used_proofs(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM dpop_proofs WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected())
    }
}
