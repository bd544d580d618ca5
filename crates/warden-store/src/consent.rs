//! Remembered user consent, per user, client and resource.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::sql::{col, col_json, to_json};
use crate::{Store, StoreError};

/// Scopes a user has approved for one client at one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The resource (canonical URI).
    pub resource: String,
    /// Approved scopes.
    pub scopes: Vec<String>,
    /// UNIX seconds of the (latest) approval.
    pub granted_at: i64,
}

/// Storage for consent decisions.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Inserts or replaces the consent for `(user_id, client_id, resource)`.
    async fn upsert(&self, consent: &ConsentRecord) -> Result<(), StoreError>;
    /// The consent for this user, client and resource.
    async fn get(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<ConsentRecord>, StoreError>;
    /// Everything the user has consented to, ordered by client then resource.
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError>;
    /// Deletes the consent for one resource, or for every resource of the client when
    /// `resource` is `None`. Returns the count.
    async fn delete(
        &self,
        user_id: &str,
        client_id: &str,
        resource: Option<&str>,
    ) -> Result<u64, StoreError>;
}

const CONSENT_COLUMNS: &str = "user_id, client_id, resource, scopes, granted_at";

// === impl ConsentRecord ===

impl ConsentRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(ConsentRecord {
            user_id: col(row, "user_id")?,
            client_id: col(row, "client_id")?,
            resource: col(row, "resource")?,
            scopes: col_json(row, "scopes")?,
            granted_at: col(row, "granted_at")?,
        })
    }
}

// === impl Store ===

#[async_trait]
impl ConsentStore for Store {
    async fn upsert(&self, consent: &ConsentRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO consents ({CONSENT_COLUMNS}) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id, resource) \
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at"
        );
        sqlx::query(&self.q(&sql))
            .bind(&consent.user_id)
            .bind(&consent.client_id)
            .bind(&consent.resource)
            .bind(to_json(&consent.scopes, "scopes")?)
            .bind(consent.granted_at)
            .execute(self.db()?)
            .await?;
        Ok(())
    }

    async fn get(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents \
             WHERE user_id = ? AND client_id = ? AND resource = ?"
        );
        let row = sqlx::query(&self.q(&sql))
            .bind(user_id)
            .bind(client_id)
            .bind(resource)
            .fetch_optional(self.db()?)
            .await?;
        row.as_ref().map(ConsentRecord::from_row).transpose()
    }

    async fn list_for_user(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE user_id = ? ORDER BY client_id, resource"
        );
        let rows = sqlx::query(&self.q(&sql))
            .bind(user_id)
            .fetch_all(self.db()?)
            .await?;
        rows.iter().map(ConsentRecord::from_row).collect()
    }

    async fn delete(
        &self,
        user_id: &str,
        client_id: &str,
        resource: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done =
            match resource {
                Some(resource) => {
                    sqlx::query(&self.q(
                        "DELETE FROM consents WHERE user_id = ? AND client_id = ? AND resource = ?",
                    ))
                    .bind(user_id)
                    .bind(client_id)
                    .bind(resource)
                    .execute(self.db()?)
                    .await?
                }
                None => {
                    sqlx::query(&self.q("DELETE FROM consents WHERE user_id = ? AND client_id = ?"))
                        .bind(user_id)
                        .bind(client_id)
                        .execute(self.db()?)
                        .await?
                }
            };
        Ok(done.rows_affected())
    }
}
