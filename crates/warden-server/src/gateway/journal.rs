//! The gateway's audit events, handed to the audit writer in batches.
//!
//! Every gateway request produces one event, and no response waits for it to be
//! committed. Handed to the writer one at a time, a steady trickle of requests (a few
//! thousand a second) costs the writer one transaction per event: more CPU than the rest
//! of the request. So events wait here for at most [`LINGER`] after the first of a batch
//! and then go to the writer together, as one job, which it commits in one transaction:
//! one queue operation and one transaction per [`LINGER`] at most, whatever the rate.
//! Order is kept, and each event keeps the time of its request.
//!
//! [`Journal::flush`] hands over whatever is pending at once; [`crate::App::shutdown`]
//! calls it before the audit writer drains, so a graceful stop loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use warden_store::NewAuditEvent;

use crate::App;

/// Longest time an event waits for others to join its batch.
pub const LINGER: Duration = Duration::from_millis(5);

/// Pending events beyond which the batch is handed over at once.
const MAX_PENDING: usize = 512;

/// Events waiting for the writer, and the task that hands them over.
#[derive(Default)]
pub struct Journal {
    pending: Mutex<Vec<NewAuditEvent>>,
    wake: Notify,
    flusher_started: AtomicBool,
}

// === impl Journal ===

impl Journal {
    /// Queues `event` for the audit log.
    pub fn record(&self, app: &App, event: NewAuditEvent) {
        let len = {
            let mut pending = self.lock();
            pending.push(event);
            pending.len()
        };
        if len >= MAX_PENDING {
            self.flush(app);
        } else if len == 1 {
            if !self.flusher_started.swap(true, Ordering::AcqRel) {
                tokio::spawn(flusher(app.clone()));
            }
            self.wake.notify_one();
        }
    }

    /// Hands every pending event to the audit writer now.
    pub fn flush(&self, app: &App) {
        let batch = std::mem::take(&mut *self.lock());
        app.audit.submit_batch(batch, &app.metrics);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NewAuditEvent>> {
        warden_core::sync::lock_recovering(&self.pending)
    }
}

/// Waits for a first event, lets the batch fill for [`LINGER`], hands it over; forever
/// (the task ends with the runtime).
async fn flusher(app: App) {
    let journal = &app.gateway.journal;
    loop {
        journal.wake.notified().await;
        tokio::time::sleep(LINGER).await;
        journal.flush(&app);
    }
}
