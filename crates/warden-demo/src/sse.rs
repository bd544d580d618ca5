//! Server-Sent Events responses: a `tools/call` that reports progress, a single reply for
//! clients that only accept SSE, and the long-lived `GET` stream.
//!
//! Event ids are `<stream-id>-<n>`: unique within a session, and they name their stream,
//! as the transport's resumability section asks. This server keeps no replay store, so it
//! deliberately sends no "priming" event (an id with empty data) ahead of a POST reply: a
//! client that saw one would treat the stream as resumable and, after a disconnect, wait on
//! a GET stream for a reply that will never be replayed.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::jsonrpc::Request;
use crate::methods;
use crate::tools::Identity;
use crate::DemoState;

/// Answers a `tools/call` that carried a progress token: three progress notifications,
/// then the JSON-RPC response, then the stream ends.
///
/// The work runs in its own task so that a client disconnecting mid-stream does not
/// cancel it: the transport spec says a disconnect is not a cancellation.
pub(crate) fn progress_response(
    state: DemoState,
    identity: Identity,
    request: Request,
    token: Value,
) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(methods::PROGRESS_STEPS as usize + 1);
    tokio::spawn(methods::call_with_progress(
        state, identity, request, token, tx,
    ));
    Sse::new(numbered(rx)).into_response()
}

/// Sends one JSON-RPC message as a one-event SSE stream, for clients whose `Accept`
/// allows `text/event-stream` but not `application/json`.
pub(crate) fn single_message(message: Value) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(1);
    // The channel has room for this message, so `try_send` cannot fail.
    let _ = tx.try_send(message);
    drop(tx);
    Sse::new(numbered(rx)).into_response()
}

/// Turns queued JSON-RPC messages into SSE events with ids `<stream-id>-<n>`.
fn numbered(rx: mpsc::Receiver<Value>) -> impl Stream<Item = Result<Event, Infallible>> {
    let stream_id = Uuid::new_v4().simple().to_string();
    stream::unfold((rx, 1_u64), move |(mut rx, n)| {
        let id = format!("{stream_id}-{n}");
        async move {
            let message = rx.recv().await?;
            let event = Event::default().id(id).data(message.to_string());
            Some((Ok(event), (rx, n + 1)))
        }
    })
}

/// State of one `GET` stream.
struct Listener {
    session_closed: watch::Receiver<()>,
    shutdown: watch::Receiver<bool>,
    keepalive: tokio::time::Interval,
}

/// The `GET /mcp` stream. This server never initiates requests or notifications, so the
/// stream carries only `: keepalive` comments; it ends when the session ends or the
/// server shuts down.
pub(crate) fn listen_response(
    session_closed: watch::Receiver<()>,
    shutdown: watch::Receiver<bool>,
    keepalive: Duration,
) -> Response {
    // `Duration::ZERO` would make `interval_at` panic.
    let period = keepalive.max(Duration::from_millis(1));
    let mut ticker = interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let listener = Listener {
        session_closed,
        shutdown,
        keepalive: ticker,
    };
    let events = stream::unfold(listener, |mut listener| async move {
        let keepalive = tokio::select! {
            _ = listener.session_closed.changed() => false,
            _ = wait_for_shutdown(&mut listener.shutdown) => false,
            _ = listener.keepalive.tick() => true,
        };
        keepalive.then(|| {
            let comment = Event::default().comment("keepalive");
            (Ok::<_, Infallible>(comment), listener)
        })
    });
    Sse::new(events).into_response()
}

/// Completes once the shutdown flag is set (or its sender is gone).
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}
