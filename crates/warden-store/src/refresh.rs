//! Refresh-token families: one per grant (session), rotated on every use.
//!
//! Every token hash ever issued in a family stays in `refresh_tokens`, so a replay of
//! any superseded token is recognised and the caller can revoke the family.

use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::{col, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// A refresh-token family: the grant, its current token and its revocation state.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Family (grant) identifier.
    pub id: String,
    /// Client the grant belongs to.
    pub client_id: String,
    /// The user.
    pub subject: String,
    /// Granted scopes; refresh can only narrow them.
    pub scopes: Vec<String>,
    /// Granted resources (canonical URIs).
    pub resources: Vec<String>,
    /// Login session, if any.
    pub session_id: Option<String>,
    /// Hash of the only token that may be redeemed now.
    pub current_hash: Vec<u8>,
    /// Number of rotations so far; the first token is generation 0 unless the caller
    /// says otherwise.
    pub generation: i64,
    /// UNIX seconds after which the current token is refused.
    pub token_expires_at: i64,
    /// UNIX seconds after which the whole family is refused.
    pub session_expires_at: i64,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds of the last rotation (creation, before the first).
    pub rotated_at: i64,
    /// UNIX seconds of revocation, if revoked.
    pub revoked_at: Option<i64>,
    /// Why it was revoked (e.g. "reuse", "logout").
    pub revoked_reason: Option<String>,
    /// Opaque blob for answering a benign replay inside the grace window, e.g. the
    /// encrypted successor token.
    pub grace: Option<Vec<u8>>,
    /// The family this one was derived from (token exchange); revoking the parent
    /// revokes this one too.
    pub parent_family: Option<String>,
    /// The DPoP key thumbprint the family's access tokens are bound to (RFC 9449 §5),
    /// or `None` for bearer tokens. Refreshing a bound family needs a proof.
    pub dpop_jkt: Option<String>,
}

/// Where a presented token stands in its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// The family's current token.
    Current,
    /// An older token, already rotated away: presenting it is a replay.
    Superseded {
        /// The generation this token was issued as.
        generation: i64,
        /// UNIX seconds of the rotation that replaced it.
        superseded_at: i64,
    },
}

/// Result of [`RefreshStore::rotate`].
// Returned once per rotation and matched at once, never stored in bulk: boxing the
// family would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// This caller rotated; the family as it is now.
    Rotated(RefreshFamily),
    /// Someone else rotated or revoked the family first.
    Lost,
    /// No such family.
    NotFound,
}

/// Storage for refresh-token families.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Stores a new family and records its current token as issued at `created_at`.
    /// `Conflict("refresh family id")` or `Conflict("refresh token")`.
    async fn create(&self, family: &RefreshFamily) -> Result<(), StoreError>;
    /// The family with this id.
    async fn get(&self, id: &str) -> Result<Option<RefreshFamily>, StoreError>;
    /// The family that issued this token hash, whether current or superseded. Expiry
    /// and revocation are the caller's to judge from the returned family.
    async fn find_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(RefreshFamily, TokenState)>, StoreError>;
    /// Compare-and-swap of the current token, in one transaction: succeeds only if the
    /// family is unrevoked and its current hash is still `expected_current_hash`.
    /// Of concurrent callers with the same expected hash exactly one gets `Rotated`.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        family_id: &str,
        expected_current_hash: &[u8],
        new_hash: &[u8],
        new_token_expires_at: i64,
        grace: Option<&[u8]>,
        now: i64,
    ) -> Result<RotateOutcome, StoreError>;
    /// Binds an unbound family to the DPoP key `jkt` (RFC 9449 §5), once: a family bound
    /// already keeps its key. A binding is never removed.
    async fn bind_dpop(&self, family_id: &str, jkt: &str) -> Result<(), StoreError>;
    /// Revokes the family and every family derived from it, transitively. Returns how
    /// many families were newly revoked.
    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> Result<u64, StoreError>;
    /// Revokes every family of a login session, and their derived families.
    async fn revoke_by_session(
        &self,
        session_id: &str,
        now: i64,
        reason: &str,
    ) -> Result<u64, StoreError>;
    /// A user's families (revoked ones included), oldest first.
    async fn list_for_subject(&self, subject: &str) -> Result<Vec<RefreshFamily>, StoreError>;
    /// Deletes families whose session or current token has expired, with their token
    /// history. Returns the number of families deleted.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

const FAMILY_COLUMNS: &str = "id, client_id, subject, scopes, resources, session_id, \
     current_hash, generation, token_expires_at, session_expires_at, created_at, rotated_at, \
     revoked_at, revoked_reason, grace, parent_family, dpop_jkt";

/// The family ids reachable from a base set through `parent_family`. `UNION` (not
/// `UNION ALL`) so a cycle, should one ever be written, still terminates.
const REVOKE_TREE: &str = "WITH RECURSIVE tree(id) AS ( \
         SELECT id FROM refresh_families WHERE {BASE} = ? \
         UNION \
         SELECT f.id FROM refresh_families f JOIN tree ON f.parent_family = tree.id \
     ) \
     UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? \
     WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL";

// === impl RefreshFamily ===

impl RefreshFamily {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(RefreshFamily {
            id: col(row, "id")?,
            client_id: col(row, "client_id")?,
            subject: col(row, "subject")?,
            scopes: col_json(row, "scopes")?,
            resources: col_json(row, "resources")?,
            session_id: col(row, "session_id")?,
            current_hash: col(row, "current_hash")?,
            generation: col(row, "generation")?,
            token_expires_at: col(row, "token_expires_at")?,
            session_expires_at: col(row, "session_expires_at")?,
            created_at: col(row, "created_at")?,
            rotated_at: col(row, "rotated_at")?,
            revoked_at: col(row, "revoked_at")?,
            revoked_reason: col(row, "revoked_reason")?,
            grace: col(row, "grace")?,
            parent_family: col(row, "parent_family")?,
            dpop_jkt: col(row, "dpop_jkt")?,
        })
    }
}

impl fmt::Debug for RefreshFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshFamily")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("session_id", &self.session_id)
            .field("current_hash", &Redacted)
            .field("generation", &self.generation)
            .field("token_expires_at", &self.token_expires_at)
            .field("session_expires_at", &self.session_expires_at)
            .field("created_at", &self.created_at)
            .field("rotated_at", &self.rotated_at)
            .field("revoked_at", &self.revoked_at)
            .field("revoked_reason", &self.revoked_reason)
            .field("grace", &self.grace.as_ref().map(|_| Redacted))
            .field("parent_family", &self.parent_family)
            .field("dpop_jkt", &self.dpop_jkt)
            .finish()
    }
}

// === impl Store ===

impl Store {
    async fn revoke_tree(
        &self,
        base_column: &str,
        base_value: &str,
        now: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let sql = REVOKE_TREE.replace("{BASE}", base_column);
        let done = sqlx::query(&self.q(&sql))
            .bind(base_value)
            .bind(now)
            .bind(reason)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl RefreshStore for Store {
    async fn create(&self, family: &RefreshFamily) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        let sql = format!(
            "INSERT INTO refresh_families ({FAMILY_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(&self.q(&sql))
            .bind(&family.id)
            .bind(&family.client_id)
            .bind(&family.subject)
            .bind(to_json(&family.scopes, "scopes")?)
            .bind(to_json(&family.resources, "resources")?)
            .bind(family.session_id.as_deref())
            .bind(&family.current_hash)
            .bind(family.generation)
            .bind(family.token_expires_at)
            .bind(family.session_expires_at)
            .bind(family.created_at)
            .bind(family.rotated_at)
            .bind(family.revoked_at)
            .bind(family.revoked_reason.as_deref())
            .bind(family.grace.as_deref())
            .bind(family.parent_family.as_deref())
            .bind(family.dpop_jkt.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(conflict(&[], "refresh family id"))?;
        sqlx::query(&self.q(
            "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(&family.current_hash)
        .bind(&family.id)
        .bind(family.generation)
        .bind(family.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict(&[], "refresh token"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<RefreshFamily>, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS} FROM refresh_families WHERE id = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(id)
            .fetch_optional(self.db()?)
            .await?;
        row.as_ref().map(RefreshFamily::from_row).transpose()
    }

    async fn find_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(RefreshFamily, TokenState)>, StoreError> {
        let columns = FAMILY_COLUMNS
            .split(", ")
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, t.generation AS token_generation, t.superseded_at \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.hash = ?"
        );
        let row = sqlx::query(&self.q(&sql))
            .bind(token_hash)
            .fetch_optional(self.db()?)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let family = RefreshFamily::from_row(&row)?;
        let token_generation: i64 = col(&row, "token_generation")?;
        let state = if family.current_hash.as_slice() == token_hash {
            TokenState::Current
        } else {
            let superseded_at: Option<i64> = col(&row, "superseded_at")?;
            TokenState::Superseded {
                generation: token_generation,
                superseded_at: superseded_at.unwrap_or(family.rotated_at),
            }
        };
        Ok(Some((family, state)))
    }

    async fn bind_dpop(&self, family_id: &str, jkt: &str) -> Result<(), StoreError> {
        sqlx::query(
            &self.q("UPDATE refresh_families SET dpop_jkt = ? WHERE id = ? AND dpop_jkt IS NULL"),
        )
        .bind(jkt)
        .bind(family_id)
        .execute(self.db()?)
        .await?;
        Ok(())
    }

    async fn rotate(
        &self,
        family_id: &str,
        expected_current_hash: &[u8],
        new_hash: &[u8],
        new_token_expires_at: i64,
        grace: Option<&[u8]>,
        now: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let mut tx = self.db()?.begin().await?;
        // The compare-and-swap is the first statement, so SQLite takes its write lock
        // before reading anything and PostgreSQL re-checks the WHERE after a
        // concurrent winner commits.
        let sql = format!(
            "UPDATE refresh_families \
             SET current_hash = ?, generation = generation + 1, token_expires_at = ?, \
                 rotated_at = ?, grace = ? \
             WHERE id = ? AND current_hash = ? AND revoked_at IS NULL \
             RETURNING {FAMILY_COLUMNS}"
        );
        let row = sqlx::query(&self.q(&sql))
            .bind(new_hash)
            .bind(new_token_expires_at)
            .bind(now)
            .bind(grace)
            .bind(family_id)
            .bind(expected_current_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            let exists = sqlx::query(&self.q("SELECT id FROM refresh_families WHERE id = ?"))
                .bind(family_id)
                .fetch_optional(self.db()?)
                .await?;
            return Ok(if exists.is_some() {
                RotateOutcome::Lost
            } else {
                RotateOutcome::NotFound
            });
        };
        let family = RefreshFamily::from_row(&row)?;
        sqlx::query(
            &self.q("UPDATE refresh_tokens SET superseded_at = ? WHERE hash = ? AND family_id = ?"),
        )
        .bind(now)
        .bind(expected_current_hash)
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.q(
            "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(new_hash)
        .bind(family_id)
        .bind(family.generation)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict(&[], "refresh token"))?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated(family))
    }

    async fn revoke_family(&self, id: &str, now: i64, reason: &str) -> Result<u64, StoreError> {
        self.revoke_tree("id", id, now, reason).await
    }

    async fn revoke_by_session(
        &self,
        session_id: &str,
        now: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        self.revoke_tree("session_id", session_id, now, reason)
            .await
    }

    async fn list_for_subject(&self, subject: &str) -> Result<Vec<RefreshFamily>, StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS} FROM refresh_families WHERE subject = ? ORDER BY created_at, id"
        );
        let rows = sqlx::query(&self.q(&sql))
            .bind(subject)
            .fetch_all(self.db()?)
            .await?;
        rows.iter().map(RefreshFamily::from_row).collect()
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        // Token history goes with the family through ON DELETE CASCADE.
        let done = sqlx::query(&self.q(
            "DELETE FROM refresh_families WHERE session_expires_at <= ? OR token_expires_at <= ?",
        ))
        .bind(now)
        .bind(now)
        .execute(self.db()?)
        .await?;
        Ok(done.rows_affected())
    }
}
