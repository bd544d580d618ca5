//! Authorization codes, stored by hash and taken exactly once.

use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::{col, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// An issued authorization code.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    /// Hash of the code; the code itself is never stored.
    pub code_hash: Vec<u8>,
    /// Client the code was issued to.
    pub client_id: String,
    /// The authenticated user.
    pub subject: String,
    /// Redirect URI of the authorization request, to compare at the token endpoint.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Granted resource indicators (canonical URIs).
    pub resources: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// OIDC nonce, if sent.
    pub nonce: Option<String>,
    /// Login session, if any.
    pub session_id: Option<String>,
    /// Refresh family that tokens minted from this code belong to, so a replayed code
    /// can revoke them.
    pub family_id: String,
    /// UNIX seconds of the user's authentication.
    pub auth_time: i64,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds; the code is rejected from this instant on.
    pub expires_at: i64,
    /// UNIX seconds of the (single) redemption.
    pub used_at: Option<i64>,
    /// The DPoP key thumbprint the code is bound to (RFC 9449 §10), if any: the code
    /// exchange's proof must be by that key.
    pub dpop_jkt: Option<String>,
}

/// Result of [`CodeStore::take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakeOutcome {
    /// This caller redeemed the code; `used_at` is set.
    Taken(AuthCodeRecord),
    /// The code was redeemed before: a replay. Carries the record so the caller can
    /// revoke `family_id`.
    AlreadyUsed(AuthCodeRecord),
    /// The code was never redeemed and has expired.
    Expired,
    /// No such code.
    NotFound,
}

/// Storage for authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a new code; `Conflict("authorization code")` on a hash collision.
    async fn insert(&self, code: &AuthCodeRecord) -> Result<(), StoreError>;
    /// Redeems the code atomically: of any number of concurrent callers exactly one
    /// gets `Taken`, the others `AlreadyUsed`. A code with `expires_at <= now` is never
    /// `Taken`.
    async fn take(&self, code_hash: &[u8], now: i64) -> Result<TakeOutcome, StoreError>;
    /// Deletes unused codes that have expired and used codes redeemed more than
    /// `keep_used_for_secs` ago (kept until then to recognise replays). Returns the count.
    async fn purge_expired(&self, now: i64, keep_used_for_secs: i64) -> Result<u64, StoreError>;
}

const CODE_COLUMNS: &str = "code_hash, client_id, subject, redirect_uri, scopes, resources, \
     code_challenge, nonce, session_id, family_id, auth_time, created_at, expires_at, used_at, \
     dpop_jkt";

// === impl AuthCodeRecord ===

impl AuthCodeRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(AuthCodeRecord {
            code_hash: col(row, "code_hash")?,
            client_id: col(row, "client_id")?,
            subject: col(row, "subject")?,
            redirect_uri: col(row, "redirect_uri")?,
            scopes: col_json(row, "scopes")?,
            resources: col_json(row, "resources")?,
            code_challenge: col(row, "code_challenge")?,
            nonce: col(row, "nonce")?,
            session_id: col(row, "session_id")?,
            family_id: col(row, "family_id")?,
            auth_time: col(row, "auth_time")?,
            created_at: col(row, "created_at")?,
            expires_at: col(row, "expires_at")?,
            used_at: col(row, "used_at")?,
            dpop_jkt: col(row, "dpop_jkt")?,
        })
    }
}

impl fmt::Debug for AuthCodeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCodeRecord")
            .field("code_hash", &Redacted)
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("code_challenge", &self.code_challenge)
            .field("nonce", &self.nonce)
            .field("session_id", &self.session_id)
            .field("family_id", &self.family_id)
            .field("auth_time", &self.auth_time)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish()
    }
}

// === impl Store ===

#[async_trait]
impl CodeStore for Store {
    async fn insert(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO auth_codes ({CODE_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(&self.q(&sql))
            .bind(&code.code_hash)
            .bind(&code.client_id)
            .bind(&code.subject)
            .bind(&code.redirect_uri)
            .bind(to_json(&code.scopes, "scopes")?)
            .bind(to_json(&code.resources, "resources")?)
            .bind(&code.code_challenge)
            .bind(code.nonce.as_deref())
            .bind(code.session_id.as_deref())
            .bind(&code.family_id)
            .bind(code.auth_time)
            .bind(code.created_at)
            .bind(code.expires_at)
            .bind(code.used_at)
            .bind(code.dpop_jkt.as_deref())
            .execute(self.db()?)
            .await
            .map_err(conflict(&[], "authorization code"))?;
        Ok(())
    }

    async fn take(&self, code_hash: &[u8], now: i64) -> Result<TakeOutcome, StoreError> {
        // One conditional UPDATE is the whole decision: both backends serialise writers
        // on the row, and a loser re-evaluates `used_at IS NULL` after the winner commits.
        let sql = format!(
            "UPDATE auth_codes SET used_at = ? \
             WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? \
             RETURNING {CODE_COLUMNS}"
        );
        let taken = sqlx::query(&self.q(&sql))
            .bind(now)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(self.db()?)
            .await?;
        if let Some(row) = taken {
            return Ok(TakeOutcome::Taken(AuthCodeRecord::from_row(&row)?));
        }
        // Lost or refused: read the row only to say why.
        let sql = format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE code_hash = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(code_hash)
            .fetch_optional(self.db()?)
            .await?;
        let Some(row) = row else {
            return Ok(TakeOutcome::NotFound);
        };
        let record = AuthCodeRecord::from_row(&row)?;
        // A used code reports as a replay even after it expires: that is the case the
        // caller must act on.
        Ok(if record.used_at.is_some() {
            TakeOutcome::AlreadyUsed(record)
        } else if record.expires_at <= now {
            TakeOutcome::Expired
        } else {
            // Inserted after our UPDATE looked: it did not exist when we tried.
            TakeOutcome::NotFound
        })
    }

    async fn purge_expired(&self, now: i64, keep_used_for_secs: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM auth_codes \
             WHERE (used_at IS NULL AND expires_at <= ?) \
                OR (used_at IS NOT NULL AND used_at <= ?)"))
        .bind(now)
        .bind(now.saturating_sub(keep_used_for_secs))
        .execute(self.db()?)
        .await?;
        Ok(done.rows_affected())
    }
}
