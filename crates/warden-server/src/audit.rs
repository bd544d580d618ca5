//! The audit writer: one task that appends events in batches.
//!
//! Callers await the append, so an event is durable before the response that depends on
//! it is sent (a token is never handed out without its audit record). Batching lets one
//! transaction carry many concurrent requests' events.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;
use warden_core::config::AuditSink as SinkConfig;
use warden_store::{AuditStore, NewAuditEvent, StoreError};
use warden_telemetry::Metrics;

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;

type Job = (NewAuditEvent, oneshot::Sender<Result<i64, StoreError>>);

/// A handle to the audit writer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Job>,
    stop: Arc<Notify>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// The audit record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("audit log unavailable")]
pub struct AuditError;

/// One event to record. Never put token material into `detail`.
#[derive(Debug, Clone)]
pub struct Event {
    /// Dotted kind, e.g. `token.issued`.
    pub kind: &'static str,
    /// The client involved.
    pub client_id: Option<String>,
    /// The subject involved.
    pub subject: Option<String>,
    /// The server involved.
    pub server: Option<String>,
    /// Structured detail.
    pub detail: Value,
}

impl AuditSink {
    /// Starts the writer on the current runtime; committed events are also written as
    /// JSON lines to `sink`.
    pub fn spawn(store: Arc<dyn AuditStore>, metrics: Metrics, sink: SinkConfig) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let stop = Arc::new(Notify::new());
        let sink = LineSink::open(&sink);
        let task = tokio::spawn(write_loop(store, rx, Arc::clone(&stop), metrics, sink));
        Self {
            tx,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Queues `event` without waiting for the commit: for hot paths (the gateway) whose
    /// response does not depend on the record. If the queue is full the event is dropped
    /// and counted, rather than slowing every request down.
    pub fn submit(&self, ts_ms: i64, event: Event, metrics: &Metrics) {
        let (done, _ignored) = oneshot::channel();
        let new = NewAuditEvent {
            ts: ts_ms,
            kind: event.kind.to_owned(),
            client_id: event.client_id,
            subject: event.subject,
            server: event.server,
            detail: event.detail,
        };
        if self.tx.try_send((new, done)).is_err() {
            metrics.record_store_error();
            tracing::warn!("audit queue full: an event was dropped");
        }
    }

    /// Stops accepting events, writes every event already queued, and waits for the
    /// writer to finish. Later `record` calls fail.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }

    /// Appends `event` at `ts_ms` and waits until it is committed.
    pub async fn record(&self, ts_ms: i64, event: Event) -> Result<i64, AuditError> {
        let (done, wait) = oneshot::channel();
        let new = NewAuditEvent {
            ts: ts_ms,
            kind: event.kind.to_owned(),
            client_id: event.client_id,
            subject: event.subject,
            server: event.server,
            detail: event.detail,
        };
        self.tx.send((new, done)).await.map_err(|_| AuditError)?;
        match wait.await {
            Ok(Ok(seq)) => Ok(seq),
            _ => Err(AuditError),
        }
    }
}

async fn write_loop(
    store: Arc<dyn AuditStore>,
    mut rx: mpsc::Receiver<Job>,
    stop: Arc<Notify>,
    metrics: Metrics,
    mut sink: LineSink,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
            () = stop.notified() => {
                // Refuse new events; what is queued is still written below.
                rx.close();
                continue;
            }
        };
        if n == 0 {
            break;
        }
        // Let the requests that are ready to run on this worker queue their events too,
        // then take those: one commit for more events means fewer round trips to the
        // database (and thread wake-ups) per event. It costs one scheduler pass of
        // latency, far less than a commit.
        if batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                let Ok(job) = rx.try_recv() else { break };
                batch.push(job);
            }
        }
        let (events, replies): (Vec<NewAuditEvent>, Vec<_>) = batch.drain(..).unzip();
        // The line sink needs the events after the store has taken them.
        let copy = sink.enabled().then(|| events.clone());
        let count = events.len();
        match store.append(events).await {
            Ok(seqs) => {
                if let Some(copy) = &copy {
                    sink.write(copy, &seqs);
                }
                for (done, seq) in replies.into_iter().zip(seqs) {
                    let _ = done.send(Ok(seq));
                }
            }
            Err(e) => {
                metrics.record_store_error();
                tracing::error!(error = %e, count, "audit append failed");
                for done in replies {
                    let _ = done.send(Err(StoreError::Unavailable("audit append failed".into())));
                }
            }
        }
    }
}

/// The stream that committed events are copied to, as JSON lines.
enum LineSink {
    None,
    Stdout,
    File(std::fs::File),
}

impl LineSink {
    fn open(config: &SinkConfig) -> Self {
        match config {
            SinkConfig::None => LineSink::None,
            SinkConfig::Stdout => LineSink::Stdout,
            SinkConfig::File(path) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => LineSink::File(f),
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "cannot open the audit sink file; events stay in the database only");
                    LineSink::None
                }
            },
        }
    }

    fn enabled(&self) -> bool {
        !matches!(self, LineSink::None)
    }

    fn write(&mut self, events: &[NewAuditEvent], seqs: &[i64]) {
        use std::io::Write as _;
        let mut buf = Vec::new();
        for (e, seq) in events.iter().zip(seqs) {
            let line = serde_json::json!({
                "seq": seq, "ts_ms": e.ts, "kind": e.kind, "client_id": e.client_id,
                "subject": e.subject, "server": e.server, "detail": e.detail,
            });
            let _ = serde_json::to_writer(&mut buf, &line);
            buf.push(b'\n');
        }
        let result = match self {
            LineSink::None => Ok(()),
            LineSink::Stdout => std::io::stdout().lock().write_all(&buf),
            LineSink::File(f) => f.write_all(&buf),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "audit sink write failed");
        }
    }
}
