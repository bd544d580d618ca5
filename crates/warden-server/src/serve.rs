//! Running the router on a listener, with graceful shutdown.
//!
//! The accept loop is ours rather than `axum::serve`'s, for two things a gateway needs:
//! - accepted sockets get `TCP_NODELAY`, so SSE events written one at a time are not
//!   held back by Nagle's algorithm waiting for the client's delayed ACK;
//! - a connection learns of shutdown from a flag it reads when its task is polled (one
//!   atomic load), with its task woken once at shutdown. `axum::serve` polls a shutdown
//!   future beside every connection on every wake-up, which takes a lock shared by all
//!   connections: about 1% of the gateway's CPU under load.
//!
//! Connections speak HTTP/1.1 or, with prior knowledge, HTTP/2 (as with `axum::serve`).
//! On shutdown the listener closes at once, each connection finishes the requests it
//! has in flight and then closes, and [`serve`] returns when all have closed.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::{App, Dispatch};

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish before returning.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let dispatch = Dispatch::new(app);
    let builder = Builder::new(TokioExecutor::new());
    let drain = Arc::new(Drain::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Best effort: a socket that refuses it still works, with Nagle's delays.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(dispatch.for_peer(peer));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let open = Open::new(&drain);
        tokio::spawn(async move {
            // Dropped when the task ends, however it ends (a panic included).
            let Open { ref drain, id } = open;
            let mut connection = pin!(connection);
            let (mut registered, mut draining) = (false, false);
            let served = poll_fn(|cx| {
                if !registered {
                    // The task's waker is the same at every poll: recorded once.
                    drain.register(id, cx.waker());
                    registered = true;
                }
                if !draining && drain.stopping.load(Ordering::Acquire) {
                    connection.as_mut().graceful_shutdown();
                    draining = true;
                }
                connection.as_mut().poll(cx)
            })
            .await;
            if let Err(e) = served {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drain.stop_and_wait().await;
    Ok(())
}

/// As `axum::serve`: a client that went away is nothing; anything else (such as
/// running out of file descriptors) is logged, and accepting resumes a second later,
/// when connections may have closed.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A connection registered with the [`Drain`]; unregistered when dropped.
struct Open {
    drain: Arc<Drain>,
    id: u64,
}

impl Open {
    fn new(drain: &Arc<Drain>) -> Self {
        Self {
            drain: Arc::clone(drain),
            id: drain.open(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.drain.close(self.id);
    }
}

/// The open connections, and whether they are to close.
#[derive(Default)]
struct Drain {
    stopping: AtomicBool,
    open: Mutex<Connections>,
    all_closed: Notify,
}

/// Each open connection's task waker (once it has run), by connection id.
#[derive(Default)]
struct Connections {
    next_id: u64,
    wakers: HashMap<u64, Option<Waker>>,
}

impl Drain {
    /// Registers a connection about to be spawned; its id.
    fn open(&self) -> u64 {
        let mut open = self.lock();
        let id = open.next_id;
        open.next_id += 1;
        open.wakers.insert(id, None);
        id
    }

    /// Records the waker of connection `id`'s task, to be woken at shutdown. Called
    /// before the task first reads `stopping`: `stop_and_wait` sets the flag and then
    /// takes this lock, so either it wakes this waker or the task sees the flag.
    fn register(&self, id: u64, waker: &Waker) {
        if let Some(slot) = self.lock().wakers.get_mut(&id) {
            *slot = Some(waker.clone());
        }
    }

    /// Connection `id` has closed.
    fn close(&self, id: u64) {
        let mut open = self.lock();
        open.wakers.remove(&id);
        if open.wakers.is_empty() && self.stopping.load(Ordering::Acquire) {
            // A stored permit if nobody waits yet: `stop_and_wait` cannot miss it.
            self.all_closed.notify_one();
        }
    }

    /// Tells every connection to close once its requests in flight are answered, and
    /// waits until all have.
    async fn stop_and_wait(&self) {
        self.stopping.store(true, Ordering::Release);
        {
            let open = self.lock();
            for waker in open.wakers.values().flatten() {
                waker.wake_by_ref();
            }
        }
        loop {
            if self.lock().wakers.is_empty() {
                return;
            }
            self.all_closed.notified().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
