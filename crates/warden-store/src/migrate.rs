//! A small migration runner over per-dialect SQL files embedded in the binary.
//!
//! Each migration runs in its own transaction whose first statement claims the version
//! in `warden_migrations`, so two processes starting on one database cannot both apply
//! it: the second waits on the row and then sees a conflict. On PostgreSQL a session
//! advisory lock also serialises whole runs, because `CREATE TABLE IF NOT EXISTS`
//! itself races in the catalog.

use sqlx::AnyConnection;
use sqlx::{AnyPool, Connection, Executor};

use crate::sql::{col, Dialect};
use crate::StoreError;

/// One schema step: its version, a short name, and the SQL for the dialect.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "access_tokens",
        sql: include_str!("../migrations/sqlite/0002_access_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "policy",
        sql: include_str!("../migrations/sqlite/0003_policy.sql"),
    },
    Migration {
        version: 4,
        name: "identity_providers",
        sql: include_str!("../migrations/sqlite/0004_identity_providers.sql"),
    },
    Migration {
        version: 5,
        name: "dpop_proofs",
        sql: include_str!("../migrations/sqlite/0005_dpop_proofs.sql"),
    },
    Migration {
        version: 6,
        name: "dpop_bindings",
        sql: include_str!("../migrations/sqlite/0006_dpop_bindings.sql"),
    },
    Migration {
        version: 7,
        name: "dpop_codes",
        sql: include_str!("../migrations/sqlite/0007_dpop_codes.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "access_tokens",
        sql: include_str!("../migrations/postgres/0002_access_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "policy",
        sql: include_str!("../migrations/postgres/0003_policy.sql"),
    },
    Migration {
        version: 4,
        name: "identity_providers",
        sql: include_str!("../migrations/postgres/0004_identity_providers.sql"),
    },
    Migration {
        version: 5,
        name: "dpop_proofs",
        sql: include_str!("../migrations/postgres/0005_dpop_proofs.sql"),
    },
    Migration {
        version: 6,
        name: "dpop_bindings",
        sql: include_str!("../migrations/postgres/0006_dpop_bindings.sql"),
    },
    Migration {
        version: 7,
        name: "dpop_codes",
        sql: include_str!("../migrations/postgres/0007_dpop_codes.sql"),
    },
];

/// Key for `pg_advisory_lock`, shared by every Warden replica ("WARDEN" + 1).
const PG_MIGRATION_LOCK: i64 = 0x5741_5244_454E_0001;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS warden_migrations (\
     version BIGINT PRIMARY KEY, \
     name TEXT NOT NULL, \
     applied_at BIGINT NOT NULL)";

// === impl Dialect ===

impl Dialect {
    /// The embedded migrations for this dialect, in version order.
    pub(crate) fn migrations(self) -> &'static [Migration] {
        match self {
            Dialect::Sqlite => SQLITE,
            Dialect::Postgres => POSTGRES,
        }
    }
}

/// The newest schema version this build knows.
pub(crate) fn latest_version(dialect: Dialect) -> i64 {
    dialect.migrations().last().map_or(0, |m| m.version)
}

/// Brings the schema up to [`latest_version`], returning the version now in place.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<i64, StoreError> {
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres {
        sqlx::query(&dialect.sql("SELECT pg_advisory_lock(?)"))
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, dialect).await;
    if dialect == Dialect::Postgres {
        let unlocked = sqlx::query(&dialect.sql("SELECT pg_advisory_unlock(?)"))
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Closing the session is the other way to release a session lock.
            let _ = conn.detach().close().await;
        }
    }
    result
}

async fn apply(conn: &mut AnyConnection, dialect: Dialect) -> Result<i64, StoreError> {
    conn.execute(CREATE_LEDGER).await?;
    let applied = applied_versions(conn).await?;
    let latest = latest_version(dialect);
    if let Some(&newest) = applied.last() {
        if newest > latest {
            return Err(StoreError::Corrupt(format!(
                "database schema version {newest} is newer than this build supports \
                 ({latest}); run a newer warden against it"
            )));
        }
    }
    let claim = format!(
        "INSERT INTO warden_migrations (version, name, applied_at) VALUES (?, ?, {})",
        dialect.unix_now_expr()
    );
    for migration in dialect.migrations() {
        if applied.contains(&migration.version) {
            continue;
        }
        let mut tx = conn.begin().await?;
        let claimed = sqlx::query(&dialect.sql(&claim))
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await;
        match claimed.map_err(StoreError::from) {
            Ok(_) => {}
            // Another process applied this version while we waited for the row.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
        // Without bound arguments sqlx sends the text as is, so a file may hold many
        // statements. (`raw_sql` would too, but its future is not `Send`.)
        tx.execute(migration.sql).await.map_err(|e| {
            StoreError::Backend(format!(
                "migration {:04}_{} failed: {}",
                migration.version,
                migration.name,
                StoreError::from(e)
            ))
        })?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            backend = dialect.name(),
            "applied schema migration"
        );
    }
    Ok(latest)
}

async fn applied_versions(conn: &mut AnyConnection) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM warden_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| col(r, "version")).collect()
}

/// The highest applied version, 0 for an empty database.
pub(crate) async fn current_version(pool: &AnyPool) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT version FROM warden_migrations ORDER BY version DESC LIMIT 1")
        .fetch_optional(pool)
        .await?;
    row.map_or(Ok(0), |row| col(&row, "version"))
}
