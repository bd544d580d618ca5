//! The workers: each holds one keep-alive connection and sends the target's request over
//! it, either as fast as answers come back (closed loop) or on a fixed schedule (open
//! loop, `--rate`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::{connect, describe, Conn, Target};

/// What one worker saw inside the measurement window.
#[derive(Default)]
pub struct WorkerStats {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Requests of a fixed-rate run sent late because their connection was still busy
    /// with the previous one at the scheduled time.
    pub behind_schedule: u64,
}

/// The load's timeline: warm-up from `start`, measurement from `measure_from` to `end`.
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

/// A fixed-rate schedule: request `i` of the whole run is due at `start + i × interval`;
/// worker `k` of `n` sends requests `k`, `k + n`, `k + 2n`, …
#[derive(Clone, Copy)]
pub struct Schedule {
    pub interval: Duration,
    pub worker: u32,
    pub workers: u32,
}

// === impl WorkerStats ===

impl WorkerStats {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(msg);
        }
    }

    fn latency(&mut self, from: Instant, to: Instant) {
        let us = u32::try_from(to.duration_since(from).as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
    }
}

/// Closed loop: the next request goes as soon as the previous answer is read. A request
/// counts if it starts and finishes inside the window.
pub async fn closed_loop(t: Arc<Target>, w: Arc<Window>) -> WorkerStats {
    let mut s = WorkerStats::default();
    'outer: while Instant::now() < w.end {
        let started = Instant::now();
        let mut conn = match connect(t.endpoint.addr).await {
            Ok(c) => c,
            Err(e) => {
                if started >= w.measure_from {
                    s.error(format!("connect: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            let t0 = Instant::now();
            if t0 >= w.end {
                break 'outer;
            }
            let outcome = t.send(&mut conn).await;
            let t1 = Instant::now();
            let counted = t0 >= w.measure_from && t1 <= w.end;
            match outcome {
                Ok((status, body)) if t.succeeded(status, &body) => {
                    if counted {
                        s.latency(t0, t1);
                    }
                }
                Ok((status, body)) => {
                    if counted {
                        s.error(describe(status, &body));
                    }
                }
                Err(e) => {
                    if t0 >= w.measure_from {
                        s.error(format!("transport: {e}"));
                    }
                    continue 'outer;
                }
            }
        }
    }
    s
}

/// Open loop at a fixed rate. Latency is counted from when the request was due, not
/// from when it went out, whenever the connection was still busy at the due time: a slow
/// answer then also delays (and is charged to) the requests queued behind it, so a stall
/// cannot hide by holding back the load (coordinated omission). When the connection was
/// idle, the clock starts at the actual send: tokio's timer wakes up to a millisecond
/// after the due time, and that lateness is the generator's, not the server's.
/// A request counts if it was due inside the window and answered by its end.
pub async fn fixed_rate(t: Arc<Target>, w: Arc<Window>, plan: Schedule) -> WorkerStats {
    let mut s = WorkerStats::default();
    let stride = plan.interval * plan.workers;
    let mut due = w.start + plan.interval * plan.worker;
    let mut conn: Option<Conn> = None;
    while due < w.end {
        let counted = due >= w.measure_from;
        let busy_until = Instant::now();
        let behind = busy_until > due;
        if !behind {
            tokio::time::sleep_until(due.into()).await;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(t.endpoint.addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    if counted {
                        s.error(format!("connect: {e}"));
                    }
                    due += stride;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let outcome = t.send(c).await;
        let done = Instant::now();
        let counted = counted && done <= w.end;
        match outcome {
            Ok((status, body)) if t.succeeded(status, &body) => {
                if counted {
                    if behind {
                        s.behind_schedule += 1;
                        s.latency(due, done);
                    } else {
                        s.latency(sent, done);
                    }
                }
            }
            Ok((status, body)) => {
                if counted {
                    s.error(describe(status, &body));
                }
            }
            Err(e) => {
                if counted {
                    s.error(format!("transport: {e}"));
                }
                conn = None;
            }
        }
        due += stride;
    }
    s
}
