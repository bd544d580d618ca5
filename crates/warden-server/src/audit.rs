//! The audit writer: one task that appends events in batches.
//!
//! Callers await the append, so an event is durable before the response that depends on
//! it is sent (a token is never handed out without its audit record). Batching lets one
//! transaction carry many concurrent requests' events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;
use warden_core::config::AuditSink as SinkConfig;
use warden_store::{AuditStore, NewAuditEvent, StoreError};
use warden_telemetry::Metrics;

/// Most jobs (single events, or batches of unawaited ones) taken for one transaction.
const MAX_BATCH: usize = 512;

/// Events queued for unawaited batches ([`AuditSink::submit_batch`]) beyond which a
/// batch is dropped (and counted) rather than queued: bounds memory if the store stalls.
const MAX_UNAWAITED: usize = 64 * 1024;

type Reply = oneshot::Sender<Result<i64, StoreError>>;

/// What the writer receives.
enum Job {
    /// One event; its caller may wait for the commit.
    One(NewAuditEvent, Option<Reply>),
    /// Events nobody waits for, handed over together (the gateway's).
    Batch(Vec<NewAuditEvent>),
}

/// A handle to the audit writer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Job>,
    /// Events of queued [`Job::Batch`]es.
    unawaited: Arc<AtomicUsize>,
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
        let unawaited = Arc::new(AtomicUsize::new(0));
        let sink = LineSink::open(&sink);
        let writer = Writer {
            store,
            metrics,
            sink,
            unawaited: Arc::clone(&unawaited),
        };
        let task = tokio::spawn(writer.run(rx, Arc::clone(&stop)));
        Self {
            tx,
            unawaited,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Queues `event` without waiting for the commit: for paths whose response does not
    /// depend on the record. If the queue is full the event is dropped and counted,
    /// rather than slowing every request down.
    pub fn submit(&self, ts_ms: i64, event: Event, metrics: &Metrics) {
        if self
            .tx
            .try_send(Job::One(event.stored_at(ts_ms), None))
            .is_err()
        {
            metrics.record_store_error();
            tracing::warn!("audit queue full: an event was dropped");
        }
    }

    /// Queues `events` without waiting for the commit, as one job (the gateway's hot
    /// path: one queue operation per batch, not per event). Dropped and counted if the
    /// queue is full.
    pub fn submit_batch(&self, events: Vec<NewAuditEvent>, metrics: &Metrics) {
        let n = events.len();
        if n == 0 {
            return;
        }
        let queued = self.unawaited.fetch_add(n, Ordering::AcqRel);
        if queued + n > MAX_UNAWAITED || self.tx.try_send(Job::Batch(events)).is_err() {
            self.unawaited.fetch_sub(n, Ordering::AcqRel);
            metrics.record_store_error();
            tracing::warn!(events = n, "audit queue full: events were dropped");
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
        self.tx
            .send(Job::One(event.stored_at(ts_ms), Some(done)))
            .await
            .map_err(|_| AuditError)?;
        match wait.await {
            Ok(Ok(seq)) => Ok(seq),
            _ => Err(AuditError),
        }
    }
}

impl Event {
    /// The event as the store takes it, at `ts_ms`.
    fn stored_at(self, ts_ms: i64) -> NewAuditEvent {
        NewAuditEvent {
            ts: ts_ms,
            kind: self.kind.to_owned(),
            client_id: self.client_id,
            subject: self.subject,
            server: self.server,
            detail: self.detail.into(),
        }
    }
}

/// The writer task's state.
struct Writer {
    store: Arc<dyn AuditStore>,
    metrics: Metrics,
    sink: LineSink,
    unawaited: Arc<AtomicUsize>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, stop: Arc<Notify>) {
        let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        loop {
            let n = tokio::select! {
                n = rx.recv_many(&mut jobs, MAX_BATCH) => n,
                () = stop.notified() => {
                    // Refuse new events; what is queued is still written below.
                    rx.close();
                    continue;
                }
            };
            if n == 0 {
                break;
            }
            // Let the requests that are ready to run on this worker queue their events
            // too, then take those: one commit for more events means fewer round trips to
            // the database (and thread wake-ups) per event. It costs one scheduler pass of
            // latency, far less than a commit.
            if jobs.len() < MAX_BATCH {
                tokio::task::yield_now().await;
                while jobs.len() < MAX_BATCH {
                    let Ok(job) = rx.try_recv() else { break };
                    jobs.push(job);
                }
            }
            self.write(&mut jobs).await;
        }
    }

    /// Appends the events of `jobs` in one batch and answers those who wait.
    async fn write(&mut self, jobs: &mut Vec<Job>) {
        let mut events = Vec::with_capacity(jobs.len());
        // (index of the event in `events`, its caller)
        let mut replies = Vec::new();
        let mut unawaited = 0;
        for job in jobs.drain(..) {
            match job {
                Job::One(event, reply) => {
                    if let Some(reply) = reply {
                        replies.push((events.len(), reply));
                    }
                    events.push(event);
                }
                Job::Batch(batch) => {
                    unawaited += batch.len();
                    events.extend(batch);
                }
            }
        }
        self.unawaited.fetch_sub(unawaited, Ordering::AcqRel);
        // The line sink needs the events after the store has taken them.
        let copy = self.sink.enabled().then(|| events.clone());
        let count = events.len();
        match self.store.append(events).await {
            Ok(seqs) => {
                if let Some(copy) = &copy {
                    self.sink.write(copy, &seqs);
                }
                for (i, done) in replies {
                    let seq = seqs.get(i).copied().ok_or_else(|| {
                        StoreError::Backend("audit append returned too few seqs".into())
                    });
                    let _ = done.send(seq);
                }
            }
            Err(e) => {
                self.metrics.record_store_error();
                tracing::error!(error = %e, count, "audit append failed");
                for (_, done) in replies {
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
