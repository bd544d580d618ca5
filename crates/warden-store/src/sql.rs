//! What the two SQL dialects share and the few places where they differ: connection
//! setup, the placeholder syntax, and which migrations folder applies.
//!
//! Every query in this crate is written once, with `?` placeholders, and passed
//! through [`Dialect::sql`]. Values are limited to the types the `Any` driver carries
//! on both backends: `i64`, `String`, `Vec<u8>` and `Option`s of them.

use std::borrow::Cow;
use std::sync::Once;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Decode, Row, Type};

use crate::{StoreError, StoreOptions};

/// Which SQL backend a [`crate::Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A database URL split into what we connect with and what we may print.
pub(crate) struct Target {
    pub(crate) dialect: Dialect,
    /// URL handed to sqlx (for SQLite, with `mode=rwc` added so the file is created).
    pub(crate) connect_url: String,
    /// Where we connect, for error messages: the file, or `host:port/db`. No password.
    pub(crate) display: String,
    /// The password from the URL, scrubbed from any driver message we pass on.
    password: Option<String>,
    /// `sqlite::memory:` databases live in one connection; a pool of several would see
    /// several empty databases.
    in_memory: bool,
}

/// SQLite allows one writer at a time; several connections still let reads proceed
/// during a write, and writers queue on `busy_timeout`.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Applied to every SQLite connection. `busy_timeout` comes first so the switch to WAL
/// waits for a lock instead of failing when several connections open at once.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

// === impl Dialect ===

impl Dialect {
    /// Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL; SQLite takes the text
    /// as written. A linear scan, so cheaper than a cache lookup would be. `?` inside
    /// quoted literals or identifiers is left alone.
    pub(crate) fn sql(self, sql: &str) -> Cow<'_, str> {
        match self {
            Dialect::Sqlite => Cow::Borrowed(sql),
            Dialect::Postgres => Cow::Owned(numbered_placeholders(sql)),
        }
    }

    /// The name reported by [`crate::Store::backend_name`].
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Current UNIX time in seconds as computed by the database. Used only to stamp
    /// applied migrations, where no caller-supplied clock exists.
    pub(crate) fn unix_now_expr(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
        }
    }
}

fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0u32;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    out
}

// === impl Target ===

impl Target {
    /// Recognises `sqlite:` and `postgres:`/`postgresql:` URLs.
    pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let in_memory = path == ":memory:" || path.is_empty() || query.contains("mode=memory");
            let connect_url = if query.split('&').any(|kv| kv.starts_with("mode=")) {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            return Ok(Target {
                dialect: Dialect::Sqlite,
                connect_url,
                display: format!("sqlite file {path}"),
                password: None,
                in_memory,
            });
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let parsed = url::Url::parse(url)
                .map_err(|e| StoreError::Unavailable(format!("invalid postgres url ({e})")))?;
            let password = parsed
                .password()
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            let host = parsed.host_str().unwrap_or("localhost");
            let port = parsed.port().unwrap_or(5432);
            let user = parsed.username();
            let db = parsed.path().trim_start_matches('/');
            let user = if user.is_empty() {
                String::new()
            } else {
                format!("{user}@")
            };
            return Ok(Target {
                dialect: Dialect::Postgres,
                connect_url: url.to_owned(),
                display: format!("postgres {user}{host}:{port}/{db}"),
                password,
                in_memory: false,
            });
        }
        Err(StoreError::Unavailable(
            "unsupported database url: expected sqlite:// or postgres://".to_owned(),
        ))
    }

    /// Opens the pool and proves it with one connection, so a wrong host or file
    /// fails here rather than on the first request.
    /// The first connection is retried until `acquire_timeout`, so a server started
    /// just before its database comes up still starts.
    pub(crate) async fn connect(&self, opts: &StoreOptions) -> Result<AnyPool, StoreError> {
        install_drivers();
        let base = AnyPoolOptions::new().acquire_timeout(opts.acquire_timeout);
        let options = match self.dialect {
            Dialect::Sqlite if self.in_memory => base
                .after_connect(|conn, _meta| Box::pin(apply_sqlite_pragmas(conn)))
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            // A file on local disk does not drop connections: skip the ping sqlx sends
            // before lending each one, which cost ~8% of the token endpoint's CPU.
            Dialect::Sqlite => base
                .after_connect(|conn, _meta| Box::pin(apply_sqlite_pragmas(conn)))
                .test_before_acquire(false)
                .max_connections(opts.max_connections.unwrap_or(SQLITE_MAX_CONNECTIONS)),
            Dialect::Postgres => {
                base.max_connections(opts.max_connections.unwrap_or(POSTGRES_MAX_CONNECTIONS))
            }
        };
        options.connect(&self.connect_url).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open {}: {}",
                self.display,
                self.scrub(&e.to_string())
            ))
        })
    }

    /// The file behind a SQLite target, as SQLite resolved it; `None` for PostgreSQL
    /// and in-memory databases.
    pub(crate) async fn sqlite_file(&self, pool: &AnyPool) -> Result<Option<String>, StoreError> {
        if self.dialect != Dialect::Sqlite || self.in_memory {
            return Ok(None);
        }
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(pool)
                .await?;
        Ok(Some(file).filter(|f| !f.is_empty()))
    }

    /// Removes the password from a driver message, in case one ever echoes the URL.
    fn scrub(&self, msg: &str) -> String {
        match &self.password {
            Some(p) => msg.replace(p.as_str(), "***"),
            None => msg.to_owned(),
        }
    }
}

async fn apply_sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // SQLite steps through every statement in the string; no arguments are bound.
    sqlx::Executor::execute(conn, SQLITE_PRAGMAS).await?;
    Ok(())
}

/// The `Any` driver needs its backends registered once per process.
pub(crate) fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

// === row and value helpers ===

/// Reads one column, reporting a decode failure as corruption of that column.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Any> + Type<Any>,
{
    row.try_get(name)
        .map_err(|_| StoreError::Corrupt(format!("cannot read column {name}")))
}

/// Booleans are stored as 0/1 integers on both backends.
pub(crate) fn col_bool(row: &AnyRow, name: &str) -> Result<bool, StoreError> {
    Ok(col::<i64>(row, name)? != 0)
}

/// Lists and objects are stored as JSON text on both backends.
pub(crate) fn col_json<T: DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T, StoreError> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text)
        .map_err(|_| StoreError::Corrupt(format!("column {name} is not the expected JSON")))
}

/// Encodes a list or object for a JSON text column.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|_| StoreError::Backend(format!("cannot encode {what} as JSON")))
}

pub(crate) fn bool_int(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        let sql = "SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN (?, ?)";
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert!(matches!(Dialect::Sqlite.sql(sql), Cow::Borrowed(s) if s == sql));
    }

    #[test]
    fn postgres_display_has_no_password() {
        let t = Target::parse("postgres://warden:s3cret@db.internal:5433/warden?sslmode=require")
            .unwrap();
        assert_eq!(t.dialect, Dialect::Postgres);
        assert_eq!(t.display, "postgres warden@db.internal:5433/warden");
        assert!(!t.display.contains("s3cret"));
        assert_eq!(t.scrub("auth failed for s3cret"), "auth failed for ***");
    }

    #[test]
    fn sqlite_url_creates_file_unless_mode_given() {
        let t = Target::parse("sqlite:///var/lib/warden/warden.db").unwrap();
        assert_eq!(t.connect_url, "sqlite:///var/lib/warden/warden.db?mode=rwc");
        assert_eq!(t.display, "sqlite file /var/lib/warden/warden.db");
        let t = Target::parse("sqlite://w.db?mode=ro").unwrap();
        assert_eq!(t.connect_url, "sqlite://w.db?mode=ro");
        assert!(Target::parse("sqlite::memory:").unwrap().in_memory);
        assert!(Target::parse("mysql://x").is_err());
    }
}
