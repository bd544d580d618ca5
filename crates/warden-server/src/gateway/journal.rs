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
//!
//! Each event records one [`Decision`] (`gateway.allow`, `gateway.deny` or
//! `gateway.error`) with an [`AuditDetail`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use warden_store::NewAuditEvent;

use crate::App;

/// Longest time an event waits for others to join its batch.
pub const LINGER: Duration = Duration::from_millis(5);

/// Pending events beyond which the batch is handed over at once.
const MAX_PENDING: usize = 512;

/// What the gateway decided about a request. Every request is exactly one, counted in
/// `warden_gateway_decisions_total{decision}` and audited as `gateway.<decision>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Authorized and passed to the upstream, whatever the upstream then answered.
    Allow,
    /// Refused: no such server, a forbidden origin, a missing or invalid token, a
    /// malformed message, a missing scope.
    Deny,
    /// Neither: the gateway could not decide or could not deliver (an unusable
    /// registration, an unreachable issuer or upstream, an internal failure).
    Error,
}

/// The detail of a gateway audit event, written straight to JSON text. The fields are
/// in sorted order, as a `serde_json::Value` map writes them (see
/// [`warden_store::AuditDetail::Text`]).
#[derive(serde::Serialize)]
pub struct AuditDetail<'a> {
    /// [`Decision::label`].
    pub decision: &'a str,
    /// The JSON-RPC method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// Why the request was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The name asked for when no registered server answers to it (truncated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_server: Option<&'a str>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// What was called: `tool notes_read`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
}

/// Events waiting for the writer, and the task that hands them over.
#[derive(Default)]
pub struct Journal {
    pending: Mutex<Vec<NewAuditEvent>>,
    wake: Notify,
    flusher_started: AtomicBool,
}

// === impl Decision ===

impl Decision {
    /// The `decision` label and audit detail field.
    pub const fn label(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Error => "error",
        }
    }

    /// The audit event kind.
    pub const fn audit_kind(self) -> &'static str {
        match self {
            Decision::Allow => "gateway.allow",
            Decision::Deny => "gateway.deny",
            Decision::Error => "gateway.error",
        }
    }
}

// === impl AuditDetail ===

impl AuditDetail<'_> {
    /// The detail as stored.
    pub fn to_text(&self) -> warden_store::AuditDetail {
        match serde_json::value::to_raw_value(self) {
            Ok(text) => warden_store::AuditDetail::Text(text),
            // Unreachable (strings and a number always serialise); keep the record anyway.
            Err(_) => warden_store::AuditDetail::Value(json!({ "decision": self.decision })),
        }
    }
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The audit chain is verified by re-serialising each stored detail as a
    /// `serde_json::Value`: the text written straight from the struct must be exactly
    /// that, whichever fields are present.
    #[test]
    fn audit_detail_text_is_what_a_value_writes() {
        let odd = "a \"quoted\"\n\u{e9}\u{1}</script>";
        let some = [None, Some("x"), Some(odd)];
        for method in some {
            for reason in some {
                for requested_server in some {
                    for target in some {
                        let detail = AuditDetail {
                            decision: Decision::Deny.label(),
                            method,
                            reason,
                            requested_server,
                            status: 403,
                            target,
                        };
                        let warden_store::AuditDetail::Text(text) = detail.to_text() else {
                            panic!("not written as text");
                        };
                        let value: Value = serde_json::from_str(text.get()).unwrap();
                        assert_eq!(value.to_string(), text.get());
                        assert_eq!(value["method"].as_str(), method);
                        assert_eq!(value["reason"].as_str(), reason);
                        assert_eq!(value["requested_server"].as_str(), requested_server);
                        assert_eq!(value["target"].as_str(), target);
                        assert_eq!(value["status"], 403);
                    }
                }
            }
        }
    }
}
