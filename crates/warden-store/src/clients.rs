//! Registered OAuth clients, their (hashed) secrets, and the workload identities bound
//! to them.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::error::conflict;
use crate::sql::{bool_int, col, col_bool, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// A registered client. Clients identified by a metadata-document URL are not stored.
#[derive(Clone, PartialEq)]
pub struct ClientRecord {
    /// Unique client identifier.
    pub client_id: String,
    /// Display name; not unique.
    pub name: String,
    /// Whether the client authenticates at the token endpoint.
    pub confidential: bool,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// `none`, `client_secret_basic`, `private_key_jwt`, …
    pub token_endpoint_auth_method: String,
    /// Secrets, several during a rotation overlap; replaced as a whole on update.
    pub secrets: Vec<ClientSecret>,
    /// The rest of the registration metadata, kept as given.
    pub metadata: serde_json::Value,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds.
    pub updated_at: i64,
    /// UNIX seconds of the last successful authentication, if any.
    pub last_used_at: Option<i64>,
}

/// One client secret, stored as a hash. Ids are unique across all clients.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Identifier of this secret (for rotation and audit).
    pub id: String,
    /// Hash of the secret as computed by the caller.
    pub hash: Vec<u8>,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds after which the secret no longer authenticates.
    pub expires_at: Option<i64>,
}

/// A workload identity bound to a client: tokens the IdP issues for `subject` are the
/// client's credential (RFC 7523 jwt-bearer). One `(idp_name, subject)` belongs to one
/// client.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadBinding {
    /// The IdP (with the `workload` use) that issues the tokens.
    pub idp_name: String,
    /// The token's `sub`.
    pub subject: String,
}

/// Storage for registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts a client with its secrets; `Conflict("client id")` if the id is taken.
    async fn create(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// The client with this id.
    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client with this display name (names are not unique).
    async fn find_by_name(&self, name: &str) -> Result<Vec<ClientRecord>, StoreError>;
    /// All clients, ordered by id.
    async fn list(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Replaces every field except `created_at`, secrets included, atomically.
    /// `NotFound` if the client does not exist.
    async fn update(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// [`ClientStore::update`], but only if the stored `updated_at` still equals
    /// `expected_updated_at`: optimistic concurrency for read-modify-write changes such
    /// as secret rotation. `Conflict("client (changed concurrently)")` if it changed.
    async fn update_if_unchanged(
        &self,
        client: &ClientRecord,
        expected_updated_at: i64,
    ) -> Result<(), StoreError>;
    /// Deletes the client and its secrets; false if it did not exist.
    async fn delete(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Records a successful authentication. `NotFound` if the client does not exist.
    async fn touch_last_used(&self, client_id: &str, now: i64) -> Result<(), StoreError>;
    /// [`ClientStore::create`] with the client's workload bindings, in one transaction:
    /// `Conflict("workload binding")` if one belongs to another client, `NotFound` if an
    /// IdP does not exist; either leaves no client behind.
    async fn create_with_workloads(
        &self,
        client: &ClientRecord,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError>;
    /// [`ClientStore::update_if_unchanged`] that also replaces the client's workload
    /// bindings, in one transaction (errors as for `create_with_workloads`).
    async fn update_with_workloads(
        &self,
        client: &ClientRecord,
        expected_updated_at: i64,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError>;
    /// Replaces the client's workload bindings; `NotFound` if the client or an IdP does
    /// not exist, `Conflict("workload binding")` if one belongs to another client.
    async fn set_workloads(
        &self,
        client_id: &str,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError>;
    /// The client's workload bindings, ordered.
    async fn workloads(&self, client_id: &str) -> Result<Vec<WorkloadBinding>, StoreError>;
    /// The client bound to this workload identity.
    async fn client_for_workload(
        &self,
        idp_name: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The ids of the clients bound to a workload identity of this IdP, ordered.
    async fn clients_of_idp(&self, idp_name: &str) -> Result<Vec<String>, StoreError>;
    /// Every workload binding with its client id, ordered by client.
    async fn all_workloads(&self) -> Result<Vec<(String, WorkloadBinding)>, StoreError>;
}

const CLIENT_COLUMNS: &str = "client_id, name, confidential, redirect_uris, grant_types, \
     scopes, token_endpoint_auth_method, metadata, created_at, updated_at, last_used_at";

const SECRET_COLUMNS: &str = "s.id, s.client_id, s.hash, s.created_at, s.expires_at";

// === impl ClientRecord ===

impl ClientRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            client_id: col(row, "client_id")?,
            name: col(row, "name")?,
            confidential: col_bool(row, "confidential")?,
            redirect_uris: col_json(row, "redirect_uris")?,
            grant_types: col_json(row, "grant_types")?,
            scopes: col_json(row, "scopes")?,
            token_endpoint_auth_method: col(row, "token_endpoint_auth_method")?,
            secrets: Vec::new(),
            metadata: col_json(row, "metadata")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
            last_used_at: col(row, "last_used_at")?,
        })
    }
}

impl fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("confidential", &self.confidential)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("secrets", &self.secrets)
            .field("metadata", &self.metadata)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("id", &self.id)
            .field("hash", &Redacted)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

// === impl Store ===

impl Store {
    async fn insert_secrets(
        &self,
        tx: &mut Transaction<'_, Any>,
        client: &ClientRecord,
    ) -> Result<(), StoreError> {
        let sql = self.q(
            "INSERT INTO client_secrets (id, client_id, position, hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        for (position, secret) in (0i64..).zip(&client.secrets) {
            sqlx::query(&sql)
                .bind(&secret.id)
                .bind(&client.client_id)
                .bind(position)
                .bind(&secret.hash)
                .bind(secret.created_at)
                .bind(secret.expires_at)
                .execute(&mut **tx)
                .await
                .map_err(conflict(&[], "client secret id"))?;
        }
        Ok(())
    }

    /// Replaces a client and its secrets in one transaction, if `expected_updated_at` (when
    /// given) still matches.
    async fn update_client(
        &self,
        client: &ClientRecord,
        expected_updated_at: Option<i64>,
        workloads: Option<&[WorkloadBinding]>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        let guard = if expected_updated_at.is_some() {
            " AND updated_at = ?"
        } else {
            ""
        };
        // The UPDATE comes first so SQLite takes the write lock before anything is read.
        let sql = self
            .q(&format!(
            "UPDATE clients SET name = ?, confidential = ?, redirect_uris = ?, grant_types = ?, \
             scopes = ?, token_endpoint_auth_method = ?, metadata = ?, updated_at = ?, \
             last_used_at = ? WHERE client_id = ?{guard}"
        ))
            .into_owned();
        let mut query = sqlx::query(&sql)
            .bind(&client.name)
            .bind(bool_int(client.confidential))
            .bind(to_json(&client.redirect_uris, "redirect uris")?)
            .bind(to_json(&client.grant_types, "grant types")?)
            .bind(to_json(&client.scopes, "scopes")?)
            .bind(&client.token_endpoint_auth_method)
            .bind(to_json(&client.metadata, "client metadata")?)
            .bind(client.updated_at)
            .bind(client.last_used_at)
            .bind(&client.client_id);
        if let Some(expected) = expected_updated_at {
            query = query.bind(expected);
        }
        let updated = query.execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            let exists = sqlx::query(&self.q("SELECT 1 FROM clients WHERE client_id = ?"))
                .bind(&client.client_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if exists {
                StoreError::Conflict("client (changed concurrently)".into())
            } else {
                StoreError::NotFound
            });
        }
        sqlx::query(&self.q("DELETE FROM client_secrets WHERE client_id = ?"))
            .bind(&client.client_id)
            .execute(&mut *tx)
            .await?;
        self.insert_secrets(&mut tx, client).await?;
        if let Some(workloads) = workloads {
            self.replace_workloads(&mut tx, &client.client_id, workloads)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a client's workload bindings inside `tx`.
    async fn replace_workloads(
        &self,
        tx: &mut Transaction<'_, Any>,
        client_id: &str,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError> {
        sqlx::query(&self.q("DELETE FROM client_workloads WHERE client_id = ?"))
            .bind(client_id)
            .execute(&mut **tx)
            .await?;
        let sql =
            self.q("INSERT INTO client_workloads (idp_name, subject, client_id) VALUES (?, ?, ?)");
        for w in workloads {
            sqlx::query(&sql)
                .bind(&w.idp_name)
                .bind(&w.subject)
                .bind(client_id)
                .execute(&mut **tx)
                .await
                .map_err(conflict(&[], "workload binding"))?;
        }
        Ok(())
    }

    /// Workload bindings matching `filter` (a WHERE clause, one `?`), with their client.
    async fn workloads_where(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<(String, WorkloadBinding)>, StoreError> {
        let sql = format!(
            "SELECT client_id, idp_name, subject FROM client_workloads {filter} \
             ORDER BY client_id, idp_name, subject"
        );
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        let rows = query.fetch_all(self.db()?).await?;
        rows.iter()
            .map(|r| {
                let binding = WorkloadBinding {
                    idp_name: col(r, "idp_name")?,
                    subject: col(r, "subject")?,
                };
                Ok((col(r, "client_id")?, binding))
            })
            .collect()
    }

    /// Inserts a client, its secrets and its workload bindings in one transaction.
    async fn insert_client(
        &self,
        client: &ClientRecord,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        let sql = self
            .q(&format!(
                "INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .into_owned();
        sqlx::query(&sql)
            .bind(&client.client_id)
            .bind(&client.name)
            .bind(bool_int(client.confidential))
            .bind(to_json(&client.redirect_uris, "redirect uris")?)
            .bind(to_json(&client.grant_types, "grant types")?)
            .bind(to_json(&client.scopes, "scopes")?)
            .bind(&client.token_endpoint_auth_method)
            .bind(to_json(&client.metadata, "client metadata")?)
            .bind(client.created_at)
            .bind(client.updated_at)
            .bind(client.last_used_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict(&[], "client id"))?;
        self.insert_secrets(&mut tx, client).await?;
        if !workloads.is_empty() {
            self.replace_workloads(&mut tx, &client.client_id, workloads)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Loads clients matching `filter` (a WHERE clause over `clients`, one `?`) and
    /// attaches their secrets.
    async fn load_clients(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let clients_sql =
            format!("SELECT {CLIENT_COLUMNS} FROM clients c {filter} ORDER BY client_id");
        let secrets_sql = format!(
            "SELECT {SECRET_COLUMNS} FROM client_secrets s JOIN clients c ON c.client_id = s.client_id \
             {filter} ORDER BY s.client_id, s.position"
        );
        let clients_sql = self.q(&clients_sql);
        let secrets_sql = self.q(&secrets_sql);
        let mut clients_q = sqlx::query(&clients_sql);
        let mut secrets_q = sqlx::query(&secrets_sql);
        if let Some(arg) = arg {
            clients_q = clients_q.bind(arg);
            secrets_q = secrets_q.bind(arg);
        }
        let client_rows = clients_q.fetch_all(self.db()?).await?;
        let secret_rows = secrets_q.fetch_all(self.db()?).await?;

        let mut secrets: HashMap<String, Vec<ClientSecret>> = HashMap::new();
        for row in &secret_rows {
            let owner: String = col(row, "client_id")?;
            secrets.entry(owner).or_default().push(ClientSecret {
                id: col(row, "id")?,
                hash: col(row, "hash")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
            });
        }
        client_rows
            .iter()
            .map(|row| {
                let mut client = ClientRecord::from_row(row)?;
                client.secrets = secrets.remove(&client.client_id).unwrap_or_default();
                Ok(client)
            })
            .collect()
    }
}

#[async_trait]
impl ClientStore for Store {
    async fn create(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.insert_client(client, &[]).await
    }

    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut found = self
            .load_clients("WHERE c.client_id = ?", Some(client_id))
            .await?;
        Ok(found.pop())
    }

    async fn find_by_name(&self, name: &str) -> Result<Vec<ClientRecord>, StoreError> {
        self.load_clients("WHERE c.name = ?", Some(name)).await
    }

    async fn list(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.load_clients("", None).await
    }

    async fn update(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.update_client(client, None, None).await
    }

    async fn update_if_unchanged(
        &self,
        client: &ClientRecord,
        expected_updated_at: i64,
    ) -> Result<(), StoreError> {
        self.update_client(client, Some(expected_updated_at), None)
            .await
    }

    async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        // Secrets go with the client through ON DELETE CASCADE.
        let done = sqlx::query(&self.q("DELETE FROM clients WHERE client_id = ?"))
            .bind(client_id)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_last_used(&self, client_id: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(&self.q("UPDATE clients SET last_used_at = ? WHERE client_id = ?"))
            .bind(now)
            .bind(client_id)
            .execute(self.db()?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_with_workloads(
        &self,
        client: &ClientRecord,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError> {
        self.insert_client(client, workloads).await
    }

    async fn update_with_workloads(
        &self,
        client: &ClientRecord,
        expected_updated_at: i64,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError> {
        self.update_client(client, Some(expected_updated_at), Some(workloads))
            .await
    }

    async fn set_workloads(
        &self,
        client_id: &str,
        workloads: &[WorkloadBinding],
    ) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        // Written first, so SQLite takes the write lock before the check reads.
        self.replace_workloads(&mut tx, client_id, workloads)
            .await?;
        let exists = sqlx::query(&self.q("SELECT 1 FROM clients WHERE client_id = ?"))
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn workloads(&self, client_id: &str) -> Result<Vec<WorkloadBinding>, StoreError> {
        let found = self
            .workloads_where("WHERE client_id = ?", Some(client_id))
            .await?;
        Ok(found.into_iter().map(|(_, w)| w).collect())
    }

    async fn all_workloads(&self) -> Result<Vec<(String, WorkloadBinding)>, StoreError> {
        self.workloads_where("", None).await
    }

    async fn client_for_workload(
        &self,
        idp_name: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            &self.q("SELECT client_id FROM client_workloads WHERE idp_name = ? AND subject = ?"),
        )
        .bind(idp_name)
        .bind(subject)
        .fetch_optional(self.db()?)
        .await?;
        row.map(|r| col(&r, "client_id")).transpose()
    }

    async fn clients_of_idp(&self, idp_name: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(&self.q(
            "SELECT DISTINCT client_id FROM client_workloads WHERE idp_name = ? \
             ORDER BY client_id",
        ))
        .bind(idp_name)
        .fetch_all(self.db()?)
        .await?;
        rows.iter().map(|r| col(r, "client_id")).collect()
    }
}
