//! The one error type of the storage boundary, and the single place where `sqlx`
//! errors are classified.

use sqlx::error::{DatabaseError, ErrorKind};

/// Why a storage operation failed.
///
/// Messages never carry bound values: several columns hold hashes of secrets, and
/// these errors travel into logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is already taken; the payload names the field (e.g. "client id").
    #[error("{0} already exists")]
    Conflict(String),
    /// The database cannot be reached or is too busy right now; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be decoded, or the schema is not one this build understands.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Backend(String),
}

// === impl StoreError ===

impl StoreError {
    /// True for failures where retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        classify(e, &[], "record")
    }
}

/// Maps a `sqlx` error from a write, turning unique violations into
/// [`StoreError::Conflict`].
///
/// `fields` pairs a column name with the label to report; the first column named in
/// the backend's message wins (SQLite says `UNIQUE constraint failed: t.col`,
/// PostgreSQL names the constraint `t_col_key`). Anything else, such as a primary key,
/// is reported as `default`. Only the label is kept, never the message itself.
pub(crate) fn conflict(
    fields: &'static [(&'static str, &'static str)],
    default: &'static str,
) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| classify(e, fields, default)
}

fn classify(e: sqlx::Error, fields: &[(&str, &str)], default: &str) -> StoreError {
    match e {
        sqlx::Error::Database(db) => classify_database(db.as_ref(), fields, default),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Io(err) => StoreError::Unavailable(format!("i/o error: {err}")),
        sqlx::Error::Tls(_) => StoreError::Unavailable("tls error".to_owned()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("connection pool closed".to_owned()),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("database worker crashed".to_owned()),
        sqlx::Error::ColumnNotFound(col) => StoreError::Corrupt(format!("missing column {col}")),
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("cannot decode column {index}"))
        }
        sqlx::Error::Decode(_) => StoreError::Corrupt("cannot decode a value".to_owned()),
        sqlx::Error::Protocol(msg) => StoreError::Backend(format!("protocol error: {msg}")),
        other => StoreError::Backend(other.to_string()),
    }
}

fn classify_database(db: &dyn DatabaseError, fields: &[(&str, &str)], default: &str) -> StoreError {
    if db.is_unique_violation() {
        let haystack = db.constraint().unwrap_or_else(|| db.message());
        let label = fields
            .iter()
            .find(|(column, _)| haystack.contains(column))
            .map_or(default, |(_, label)| label);
        return StoreError::Conflict(label.to_owned());
    }
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    if is_transient(db, &code) {
        return StoreError::Unavailable(format!("database busy ({code}): {}", db.message()));
    }
    match db.kind() {
        ErrorKind::ForeignKeyViolation => StoreError::NotFound,
        // Messages name tables, columns and constraints; PostgreSQL keeps the offending
        // values in `detail`, which we never read.
        _ => StoreError::Backend(format!("{code}: {}", db.message())),
    }
}

/// Lock contention and lost connections, the failures a caller may retry.
fn is_transient(db: &dyn DatabaseError, code: &str) -> bool {
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), whatever the
        // extended code.
        return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    }
    // PostgreSQL: serialization failure, deadlock, connection exceptions, shutdown.
    code == "40001" || code == "40P01" || code.starts_with("08") || code.starts_with("57P")
}
