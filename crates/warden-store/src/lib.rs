//! Warden's storage layer: one small async trait per aggregate, and one SQL
//! implementation, [`Store`], that serves both SQLite (the embedded default: one file in
//! WAL mode) and PostgreSQL (for several replicas).
//!
//! Callers pass time in (`now`, UNIX seconds; audit timestamps in milliseconds); this
//! crate never reads the clock. Secrets arrive already hashed or encrypted.
//!
//! The SQL is written once. The dialects differ only in their migrations folder, the
//! placeholder syntax (rewritten in one helper) and connection setup.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;

mod access_tokens;
mod audit;
mod audit_sqlite;
mod clients;
mod codes;
mod consent;
mod dpop;
mod error;
mod health;
mod idps;
mod keys;
mod migrate;
mod policy;
mod refresh;
mod revocations;
mod servers;
mod sql;
mod users;

pub use access_tokens::{AccessTokenRecord, AccessTokenStore};
pub use audit::{
    audit_event_hash, audit_hash, AuditDetail, AuditEvent, AuditFilter, AuditPage, AuditStore,
    NewAuditEvent, VerifyReport, AUDIT_GENESIS_HASH,
};
pub use clients::{ClientRecord, ClientSecret, ClientStore, WorkloadBinding};
pub use codes::{AuthCodeRecord, CodeStore, TakeOutcome};
pub use consent::{ConsentRecord, ConsentStore};
pub use dpop::DpopProofStore;
pub use error::StoreError;
pub use idps::{IdpRecord, IdpStore};
pub use keys::{KeyStore, SigningKeyRecord};
pub use policy::{PolicyStore, StoredPolicy};
pub use refresh::{RefreshFamily, RefreshStore, RotateOutcome, TokenState};
pub use revocations::RevocationStore;
pub use servers::{ServerRecord, ServerStore, ToolGroup};
pub use users::{IdentityLink, UserRecord, UserStore};

use sql::{Dialect, Target};

/// The SQL store. Cheap to clone: clones share one connection pool.
///
/// Implements every `*Store` trait of this crate, so one value can be handed out as
/// `Arc<dyn ClientStore>`, `Arc<dyn AuditStore>` and so on.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// For a SQLite file: the audit log's own writer thread (see `audit_sqlite`).
    audit_appender: Option<audit_sqlite::SqliteAppender>,
    /// Whether the database is known to be down (see `health`).
    health: Arc<health::Health>,
}

/// Tuning for [`Store::open_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long to wait for a connection, including the first one at startup
    /// (default 30 s).
    pub acquire_timeout: Duration,
    /// Pool size; by default 8 for SQLite (one writer at a time anyway) and 16 for
    /// PostgreSQL. An in-memory SQLite database always uses one connection.
    pub max_connections: Option<u32>,
}

// === impl StoreOptions ===

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            acquire_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

// === impl Store ===

impl Store {
    /// Connects to `url` and brings the schema up to date.
    ///
    /// `url` is `sqlite://PATH` (the file is created if missing) or
    /// `postgres://…`/`postgresql://…`. PostgreSQL options such as
    /// `?options=-c%20search_path%3Dmyschema` are passed through. A connection failure is
    /// [`StoreError::Unavailable`] naming the file or host, never the password.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit pool settings.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let target = Target::parse(url)?;
        let pool = target.connect(options).await?;
        let mut store = Store {
            pool,
            dialect: target.dialect,
            audit_appender: None,
            health: Arc::default(),
        };
        migrate::run(&store.pool, store.dialect).await?;
        if store.dialect == Dialect::Postgres {
            health::Health::watch(&store.health, target.connect_url.clone());
        }
        if let Some(path) = target.sqlite_file(&store.pool).await? {
            store.audit_appender = Some(audit_sqlite::SqliteAppender::start(&path)?);
        }
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        self.dialect.name()
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        migrate::current_version(self.db()?).await
    }

    /// The newest schema version this build can apply.
    pub fn supported_schema_version(&self) -> i64 {
        migrate::latest_version(self.dialect)
    }

    /// One round trip to the database, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.db()?).await?;
        Ok(())
    }

    /// Closes every pooled connection and waits for them to finish.
    pub async fn close(&self) {
        self.health.close();
        self.pool.close().await;
    }

    /// The pool, or [`StoreError::Unavailable`] at once while the database is known to be
    /// down: during an outage a request is answered now, not after the connect timeout.
    /// Every operation goes through here.
    fn db(&self) -> Result<&AnyPool, StoreError> {
        self.health.check()?;
        Ok(&self.pool)
    }

    /// The query text for this backend (see `sql::Dialect::sql`).
    fn q<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        self.dialect.sql(sql)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .field("connections", &self.pool.size())
            .finish()
    }
}

/// Short stand-in for hash and ciphertext fields in hand-written `Debug` impls.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hash>")
    }
}
