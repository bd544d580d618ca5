//! The registry of protected MCP servers behind the gateway.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::{col, col_json, to_json};
use crate::{Store, StoreError};

/// A registered upstream MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerRecord {
    /// Unique short name.
    pub name: String,
    /// Unique canonical URI: the audience of tokens for this server.
    pub canonical_uri: String,
    /// Where the gateway forwards to.
    pub upstream: String,
    /// Which scope unlocks which tools.
    pub tool_groups: Vec<ToolGroup>,
    /// `jwt` or `opaque`.
    pub token_format: String,
    /// Lifetime of access tokens for this server.
    pub access_token_ttl_secs: i64,
    /// Clock-skew leeway when validating tokens for this server.
    pub leeway_secs: i64,
    /// Issuer override, if any.
    pub issuer: Option<String>,
    /// Further settings: a JSON object that `warden_core::server_settings::ServerSettings`
    /// parses, its credentials sealed before they are written.
    pub settings: serde_json::Value,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds.
    pub updated_at: i64,
}

/// A scope and the tools it grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolGroup {
    /// The scope a token must carry.
    pub scope: String,
    /// Tool names (or patterns, as the policy layer defines them).
    pub tools: Vec<String>,
}

/// Storage for the server registry.
#[async_trait]
pub trait ServerStore: Send + Sync {
    /// Inserts a server; `Conflict("server name")` or `Conflict("canonical uri")`.
    async fn create(&self, server: &ServerRecord) -> Result<(), StoreError>;
    /// The server with this name.
    async fn get(&self, name: &str) -> Result<Option<ServerRecord>, StoreError>;
    /// The server whose canonical URI is exactly `uri`.
    async fn get_by_uri(&self, uri: &str) -> Result<Option<ServerRecord>, StoreError>;
    /// All servers, ordered by name.
    async fn list(&self) -> Result<Vec<ServerRecord>, StoreError>;
    /// Replaces every field except `name` and `created_at`; `NotFound` if absent,
    /// `Conflict("canonical uri")` if the new URI is taken.
    async fn update(&self, server: &ServerRecord) -> Result<(), StoreError>;
    /// [`ServerStore::update`], but only if the stored `updated_at` still equals
    /// `expected_updated_at`: optimistic concurrency for read-modify-write changes (a
    /// partial update through the admin API). `Conflict("server (changed concurrently)")`
    /// if it changed, `Conflict("canonical uri")` if the new URI is taken.
    async fn update_if_unchanged(
        &self,
        server: &ServerRecord,
        expected_updated_at: i64,
    ) -> Result<(), StoreError>;
    /// Deletes the server; false if it did not exist.
    async fn delete(&self, name: &str) -> Result<bool, StoreError>;
}

const SERVER_COLUMNS: &str = "name, canonical_uri, upstream, tool_groups, token_format, \
     access_token_ttl_secs, leeway_secs, issuer, settings, created_at, updated_at";

const SERVER_CONFLICTS: &[(&str, &str)] = &[("canonical_uri", "canonical uri")];

// === impl ServerRecord ===

impl ServerRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(ServerRecord {
            name: col(row, "name")?,
            canonical_uri: col(row, "canonical_uri")?,
            upstream: col(row, "upstream")?,
            tool_groups: col_json(row, "tool_groups")?,
            token_format: col(row, "token_format")?,
            access_token_ttl_secs: col(row, "access_token_ttl_secs")?,
            leeway_secs: col(row, "leeway_secs")?,
            issuer: col(row, "issuer")?,
            settings: col_json(row, "settings")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

// === impl Store ===

impl Store {
    async fn servers_where(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<ServerRecord>, StoreError> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers {filter} ORDER BY name");
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        let rows = query.fetch_all(self.db()?).await?;
        rows.iter().map(ServerRecord::from_row).collect()
    }

    /// The one UPDATE behind [`ServerStore::update`] and
    /// [`ServerStore::update_if_unchanged`] (guarded by `updated_at` when `expected` is
    /// set), on both backends.
    async fn update_server(
        &self,
        server: &ServerRecord,
        expected: Option<i64>,
    ) -> Result<(), StoreError> {
        let guard = if expected.is_some() {
            " AND updated_at = ?"
        } else {
            ""
        };
        let sql = self
            .q(&format!(
                "UPDATE servers SET canonical_uri = ?, upstream = ?, tool_groups = ?, \
                 token_format = ?, access_token_ttl_secs = ?, leeway_secs = ?, issuer = ?, \
                 settings = ?, updated_at = ? WHERE name = ?{guard}"
            ))
            .into_owned();
        let mut query = sqlx::query(&sql)
            .bind(&server.canonical_uri)
            .bind(&server.upstream)
            .bind(to_json(&server.tool_groups, "tool groups")?)
            .bind(&server.token_format)
            .bind(server.access_token_ttl_secs)
            .bind(server.leeway_secs)
            .bind(server.issuer.as_deref())
            .bind(to_json(&server.settings, "server settings")?)
            .bind(server.updated_at)
            .bind(&server.name);
        if let Some(expected) = expected {
            query = query.bind(expected);
        }
        let done = query
            .execute(self.db()?)
            .await
            .map_err(conflict(SERVER_CONFLICTS, "server name"))?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        // Nothing matched: either there is no such server, or (guarded) it changed.
        let exists = expected.is_some()
            && sqlx::query(&self.q("SELECT 1 FROM servers WHERE name = ?"))
                .bind(&server.name)
                .fetch_optional(self.db()?)
                .await?
                .is_some();
        Err(if exists {
            StoreError::Conflict("server (changed concurrently)".into())
        } else {
            StoreError::NotFound
        })
    }
}

#[async_trait]
impl ServerStore for Store {
    async fn create(&self, server: &ServerRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO servers ({SERVER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(&self.q(&sql))
            .bind(&server.name)
            .bind(&server.canonical_uri)
            .bind(&server.upstream)
            .bind(to_json(&server.tool_groups, "tool groups")?)
            .bind(&server.token_format)
            .bind(server.access_token_ttl_secs)
            .bind(server.leeway_secs)
            .bind(server.issuer.as_deref())
            .bind(to_json(&server.settings, "server settings")?)
            .bind(server.created_at)
            .bind(server.updated_at)
            .execute(self.db()?)
            .await
            .map_err(conflict(SERVER_CONFLICTS, "server name"))?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<ServerRecord>, StoreError> {
        Ok(self
            .servers_where("WHERE name = ?", Some(name))
            .await?
            .pop())
    }

    async fn get_by_uri(&self, uri: &str) -> Result<Option<ServerRecord>, StoreError> {
        Ok(self
            .servers_where("WHERE canonical_uri = ?", Some(uri))
            .await?
            .pop())
    }

    async fn list(&self) -> Result<Vec<ServerRecord>, StoreError> {
        self.servers_where("", None).await
    }

    async fn update(&self, server: &ServerRecord) -> Result<(), StoreError> {
        self.update_server(server, None).await
    }

    async fn update_if_unchanged(
        &self,
        server: &ServerRecord,
        expected_updated_at: i64,
    ) -> Result<(), StoreError> {
        self.update_server(server, Some(expected_updated_at)).await
    }

    async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM servers WHERE name = ?"))
            .bind(name)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
