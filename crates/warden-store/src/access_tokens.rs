//! Opaque access tokens: stored only as the SHA-256 of the token, with the claims that
//! introspection reports.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::col;
use crate::{Redacted, Store, StoreError};

/// One opaque access token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Token id, for revocation and audit.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The subject.
    pub subject: String,
    /// The canonical URI of the server it is for.
    pub audience: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The grant (refresh family) it belongs to, if any.
    pub sid: Option<String>,
    /// The delegation chain (`act` claim), as JSON text.
    pub act: Option<String>,
    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`), if any.
    pub cnf_jkt: Option<String>,
    /// UNIX seconds.
    pub issued_at: i64,
    /// UNIX seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for AccessTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenRecord")
            .field("token_hash", &Redacted)
            .field("jti", &self.jti)
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("cnf_jkt", &self.cnf_jkt)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Storage for opaque access tokens.
#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// Stores a new token.
    async fn insert(&self, token: &AccessTokenRecord) -> Result<(), StoreError>;
    /// The token with this hash, if it exists and has not expired at `now`.
    async fn find(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StoreError>;
    /// Deletes expired tokens. Returns the count.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

fn row_to(row: &AnyRow) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord {
        token_hash: col(row, "token_hash")?,
        jti: col(row, "jti")?,
        client_id: col(row, "client_id")?,
        subject: col(row, "subject")?,
        audience: col(row, "audience")?,
        scope: col(row, "scope")?,
        sid: col(row, "sid")?,
        act: col(row, "act")?,
        cnf_jkt: col(row, "cnf_jkt")?,
        issued_at: col(row, "issued_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

// === impl Store ===

#[async_trait]
impl AccessTokenStore for Store {
    async fn insert(&self, t: &AccessTokenRecord) -> Result<(), StoreError> {
        sqlx::query(&self.q(
            "INSERT INTO access_tokens (token_hash, jti, client_id, subject, audience, scope, sid, act, cnf_jkt, issued_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(t.token_hash.clone())
        .bind(&t.jti)
        .bind(&t.client_id)
        .bind(&t.subject)
        .bind(&t.audience)
        .bind(&t.scope)
        .bind(t.sid.clone())
        .bind(t.act.clone())
        .bind(t.cnf_jkt.clone())
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(self.db()?)
        .await
        .map_err(conflict(&[("jti", "access token id")], "access token"))?;
        Ok(())
    }

    async fn find(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let row = sqlx::query(&self.q(
            "SELECT token_hash, jti, client_id, subject, audience, scope, sid, act, cnf_jkt, issued_at, expires_at \
             FROM access_tokens WHERE token_hash = ? AND expires_at > ?",
        ))
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(self.db()?)
        .await?;
        row.as_ref().map(row_to).transpose()
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM access_tokens WHERE expires_at <= ?"))
            .bind(now)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected())
    }
}
