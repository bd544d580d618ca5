//! Signing keys and their rotation schedule. Private keys arrive encrypted.

use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::col;
use crate::{Redacted, Store, StoreError};

/// A signing key and when it is published, used, retired and removed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id; unique.
    pub kid: String,
    /// JWS algorithm, e.g. `ES256`.
    pub alg: String,
    /// Public key as a JWK (JSON text), as published in JWKS.
    pub public_jwk: String,
    /// Private key, encrypted by the caller.
    pub private_key_enc: Vec<u8>,
    /// UNIX seconds.
    pub created_at: i64,
    /// From this instant the key appears in JWKS.
    pub publish_at: i64,
    /// From this instant the key signs.
    pub activate_at: i64,
    /// From this instant the key no longer signs.
    pub retire_at: Option<i64>,
    /// From this instant the key leaves JWKS and may be deleted.
    pub remove_at: Option<i64>,
}

/// Storage for signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a key; `Conflict("key id")` if the kid is taken.
    async fn insert(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// All keys, ordered by `activate_at` (then kid).
    async fn list(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// The key with this kid.
    async fn get(&self, kid: &str) -> Result<Option<SigningKeyRecord>, StoreError>;
    /// Sets when the key retires and is removed; `NotFound` if absent.
    async fn update_schedule(
        &self,
        kid: &str,
        retire_at: Option<i64>,
        remove_at: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Deletes the key; false if it did not exist.
    async fn delete(&self, kid: &str) -> Result<bool, StoreError>;
}

const KEY_COLUMNS: &str = "kid, alg, public_jwk, private_key_enc, created_at, publish_at, \
     activate_at, retire_at, remove_at";

// === impl SigningKeyRecord ===

impl SigningKeyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(SigningKeyRecord {
            kid: col(row, "kid")?,
            alg: col(row, "alg")?,
            public_jwk: col(row, "public_jwk")?,
            private_key_enc: col(row, "private_key_enc")?,
            created_at: col(row, "created_at")?,
            publish_at: col(row, "publish_at")?,
            activate_at: col(row, "activate_at")?,
            retire_at: col(row, "retire_at")?,
            remove_at: col(row, "remove_at")?,
        })
    }
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("public_jwk", &self.public_jwk)
            .field("private_key_enc", &Redacted)
            .field("created_at", &self.created_at)
            .field("publish_at", &self.publish_at)
            .field("activate_at", &self.activate_at)
            .field("retire_at", &self.retire_at)
            .field("remove_at", &self.remove_at)
            .finish()
    }
}

// === impl Store ===

#[async_trait]
impl KeyStore for Store {
    async fn insert(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&self.q(&sql))
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.public_jwk)
            .bind(&key.private_key_enc)
            .bind(key.created_at)
            .bind(key.publish_at)
            .bind(key.activate_at)
            .bind(key.retire_at)
            .bind(key.remove_at)
            .execute(self.db()?)
            .await
            .map_err(conflict(&[], "key id"))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY activate_at, kid");
        let rows = sqlx::query(&sql).fetch_all(self.db()?).await?;
        rows.iter().map(SigningKeyRecord::from_row).collect()
    }

    async fn get(&self, kid: &str) -> Result<Option<SigningKeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE kid = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(kid)
            .fetch_optional(self.db()?)
            .await?;
        row.as_ref().map(SigningKeyRecord::from_row).transpose()
    }

    async fn update_schedule(
        &self,
        kid: &str,
        retire_at: Option<i64>,
        remove_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            &self.q("UPDATE signing_keys SET retire_at = ?, remove_at = ? WHERE kid = ?"),
        )
        .bind(retire_at)
        .bind(remove_at)
        .bind(kid)
        .execute(self.db()?)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete(&self, kid: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM signing_keys WHERE kid = ?"))
            .bind(kid)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
