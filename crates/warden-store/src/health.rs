//! Whether a PostgreSQL database is known to be down, so that requests during an outage
//! are answered at once instead of each waiting out the pool's connect timeout.
//!
//! While the database answers, every operation goes straight to the pool. A watcher task
//! pings the database over a connection of its own (not one of the pool's, so that a busy
//! pool is never taken for a dead database) every [`PROBE_EVERY`]. After
//! [`FAILURES_TO_TRIP`] failed pings in a row the database is *down*: every operation
//! fails at once with [`StoreError::Unavailable`], which the server answers 503 with
//! `Retry-After`. The watcher keeps trying, every [`PROBE_WHILE_DOWN`], and the first
//! ping that succeeds ends the outage.
//!
//! A SQLite file has no watcher: it is a local file, and its failures are errors, not
//! outages.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::{AnyConnection, Connection};

use crate::StoreError;

/// How often a healthy database is pinged.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often a database that is down is tried again.
pub const PROBE_WHILE_DOWN: Duration = Duration::from_millis(250);
/// How long one ping (or the reconnect before it) may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed pings in a row that make the database down.
pub const FAILURES_TO_TRIP: u32 = 2;

/// The shared verdict; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Health {
    down: AtomicBool,
    failures: AtomicU32,
    closed: AtomicBool,
}

// === impl Health ===

impl Health {
    /// `Err` at once while the database is known to be down.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(
                "the database is unreachable (reconnecting in the background)".to_owned(),
            ));
        }
        Ok(())
    }

    /// Stops the watcher at its next wake-up.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    fn record(&self, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            if self.down.swap(false, Ordering::Relaxed) {
                tracing::info!("the database answers again");
            }
        } else {
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures >= FAILURES_TO_TRIP && !self.down.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "the database does not answer; store operations fail at once until it does"
                );
            }
        }
    }

    /// Starts the watcher of the database at `url`. It stops when every [`Arc`] of `health`
    /// is gone or [`Health::close`] is called.
    pub(crate) fn watch(health: &Arc<Health>, url: String) {
        let weak = Arc::downgrade(health);
        tokio::spawn(watch(weak, url));
    }
}

async fn watch(health: Weak<Health>, url: String) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        let pause = match health.upgrade() {
            Some(h) if !h.closed.load(Ordering::Relaxed) => {
                if h.down.load(Ordering::Relaxed) {
                    PROBE_WHILE_DOWN
                } else {
                    PROBE_EVERY
                }
            }
            _ => break,
        };
        tokio::time::sleep(pause).await;
        let ok = tokio::time::timeout(PROBE_TIMEOUT, ping(&mut conn, &url))
            .await
            .is_ok_and(|r| r.is_ok());
        if !ok {
            conn = None;
        }
        match health.upgrade() {
            Some(h) => h.record(ok),
            None => break,
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

async fn ping(conn: &mut Option<AnyConnection>, url: &str) -> Result<(), sqlx::Error> {
    if conn.is_none() {
        *conn = Some(AnyConnection::connect(url).await?);
    }
    match conn {
        Some(c) => c.ping().await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_failures_in_a_row_and_up_after_one_success() {
        let h = Health::default();
        assert!(h.check().is_ok());
        h.record(false);
        assert!(h.check().is_ok(), "one failed ping is not an outage");
        h.record(true);
        h.record(false);
        assert!(h.check().is_ok(), "failures must be in a row");
        h.record(false);
        assert!(matches!(h.check(), Err(StoreError::Unavailable(_))));
        h.record(false);
        assert!(h.check().is_err());
        h.record(true);
        assert!(h.check().is_ok());
    }
}
