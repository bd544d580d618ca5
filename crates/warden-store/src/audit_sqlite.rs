//! The audit appender for a SQLite file: one thread with its own connection.
//!
//! Through sqlx every statement is a hop to the driver's worker thread and back, and an
//! append takes five (begin, lock the head, insert, move the head, commit). On the token
//! endpoint, where each issued token waits for its audit record, those hops were the
//! largest cost per request. Here the whole transaction runs on one thread with prepared
//! statements: one hop per batch. Batches queued while a transaction runs are merged into
//! the next one.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync) run on a
//! second thread, so a commit never waits for one: done by the committing connection they
//! stalled every token request in flight for milliseconds, several times a second under
//! load. The appender still checkpoints itself if the WAL grows past
//! [`BACKSTOP_CHECKPOINT_PAGES`] (under unbroken writes a concurrent checkpoint never
//! catches up to the last frame, so only the writer can let the WAL start over).
//!
//! The chain is the same as the sqlx path writes ([`super::audit`]), and the appenders'
//! lock is the same: `BEGIN IMMEDIATE` takes SQLite's write lock before the head is read,
//! so other processes (the CLI) and the sqlx path interleave safely.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::audit::{NewAuditEvent, Tip, EVENT_COLUMNS};
use crate::StoreError;

/// Most events written in one transaction when queued batches are merged.
const MERGE_LIMIT: usize = 4096;
/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL pages (4 KiB) beyond which the appender checkpoints after a commit: 16 MiB.
const BACKSTOP_CHECKPOINT_PAGES: i64 = 4_096;

type Reply = oneshot::Sender<Result<Vec<i64>, StoreError>>;
type Job = (Vec<NewAuditEvent>, Reply);

/// A handle to the appender and checkpointer threads; both end when the last handle is
/// dropped.
#[derive(Clone, Debug)]
pub(crate) struct SqliteAppender {
    jobs: mpsc::Sender<Job>,
    /// Never sent on: its disconnection stops the checkpointer.
    _checkpointer: mpsc::Sender<()>,
}

impl SqliteAppender {
    /// Opens `path` (which must exist: the pool created and migrated it) twice and
    /// starts the two threads.
    pub(crate) fn start(path: &str) -> Result<SqliteAppender, StoreError> {
        let writer = open(path)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES)
            .map_err(unavailable)?;
        let checkpointer = open(path)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (stop, stopped) = mpsc::channel::<()>();
        spawn("warden-audit", move || run(writer, rx))?;
        spawn("warden-wal", move || checkpoint(checkpointer, stopped))?;
        Ok(SqliteAppender {
            jobs,
            _checkpointer: stop,
        })
    }

    /// Appends `events` atomically and returns their seqs, in order.
    pub(crate) async fn append(&self, events: Vec<NewAuditEvent>) -> Result<Vec<i64>, StoreError> {
        let (reply, wait) = oneshot::channel();
        self.jobs.send((events, reply)).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn open(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(unavailable)?;
    Ok(conn)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("cannot start the audit writer: {e}")))
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot open the audit log: {e}"))
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`], without
/// blocking writers (`PASSIVE`), until `stop` disconnects.
fn checkpoint(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the audit writer has stopped".to_owned())
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].0.len();
        while count < MERGE_LIMIT {
            let Ok(job) = rx.try_recv() else { break };
            count += job.0.len();
            jobs.push(job);
        }
        match write(&mut conn, &jobs) {
            Ok(mut seqs) => {
                // Hand each caller its own slice of the seqs, in submission order.
                for (events, reply) in jobs.into_iter().rev() {
                    let own = seqs.split_off(seqs.len() - events.len());
                    let _ = reply.send(Ok(own));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = count, "audit append failed");
                for (_, reply) in jobs {
                    let _ = reply.send(Err(StoreError::Backend(format!(
                        "audit append failed: {e}"
                    ))));
                }
            }
        }
    }
}

/// One transaction for every event of `jobs`. On any error nothing is written.
fn write(conn: &mut Connection, jobs: &[Job]) -> Result<Vec<i64>, WriteError> {
    // Prepared once, unlike `Connection::transaction_with_behavior`, which parses its
    // BEGIN (and COMMIT) on every call.
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = write_events(conn, jobs).and_then(|seqs| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(seqs)
    });
    // On failure nothing may stay half-written: roll back unless SQLite already did.
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// The statements of [`write`]'s transaction.
fn write_events(tx: &Connection, jobs: &[Job]) -> Result<Vec<i64>, WriteError> {
    let mut tip = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |row| {
            Ok(Tip {
                seq: row.get(0)?,
                hash: row.get(1)?,
            })
        })?;
    let mut seqs = Vec::with_capacity(jobs.iter().map(|(e, _)| e.len()).sum());
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?;
        for event in jobs.iter().flat_map(|(events, _)| events) {
            let row = tip.link(event)?;
            insert.execute(params![
                row.seq,
                event.ts,
                event.kind,
                event.client_id,
                event.subject,
                event.server,
                row.detail.as_ref(),
                row.prev_hash,
                &row.hash[..],
            ])?;
            seqs.push(row.seq);
        }
    }
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![tip.seq, tip.hash])?;
    Ok(seqs)
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
}
