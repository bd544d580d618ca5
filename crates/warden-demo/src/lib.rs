//! `warden-demo`: a small but real MCP server speaking the Streamable HTTP transport, or
//! stdio ([`serve_stdio`]).
//!
//! Warden's quickstart, tests and benchmarks put it behind Warden's gateway. It keeps a
//! shared in-memory notebook and offers:
//!
//! - tools `notes_list`, `notes_read`, `notes_write`, `admin_reset` and `whoami` (which
//!   echoes the identity headers the gateway forwarded, so tests can check that the
//!   client's token never reaches an upstream);
//! - every note as a `note://{id}` resource;
//! - one prompt, `summarize_notes`.
//!
//! The transport follows MCP revision 2025-11-25 (and accepts 2025-06-18 and 2025-03-26):
//! sessions via `Mcp-Session-Id`, `MCP-Protocol-Version` checks, `202` for notifications,
//! SSE replies with progress notifications when a `tools/call` carries a progress token,
//! a `GET` stream with keepalives, and `DELETE` to end a session.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8931").await?;
//! warden_demo::serve(listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod jsonrpc;
mod methods;
mod notes;
mod session;
mod sse;
mod stdio;
mod tools;
mod transport;

pub use methods::PROTOCOL_VERSIONS;
pub use stdio::serve_stdio;

/// The demo's tools grouped by the OAuth scope that should guard them, for registering
/// the demo with Warden: `(scope, tools)`.
pub const TOOL_GROUPS: &[(&str, &[&str])] = &[
    ("notes:read", &["notes_list", "notes_read", "whoami"]),
    ("notes:write", &["notes_write"]),
    ("notes:admin", &["admin_reset"]),
];

/// How often the `GET` stream sends a `: keepalive` comment unless configured otherwise.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// The pause between the events of a progress-reporting `tools/call` unless configured
/// otherwise.
pub const DEFAULT_PROGRESS_DELAY: Duration = Duration::from_millis(10);

/// Shared state of one demo server: the notebook, the live sessions and settings.
///
/// Cloning is cheap and clones share everything. Configure with the `with_*` methods
/// before handing the state to [`router`].
#[derive(Clone)]
pub struct DemoState {
    notes: Arc<notes::NoteStore>,
    sessions: Arc<session::SessionStore>,
    /// Set to `true` by [`DemoState::close_streams`]; every `GET` stream watches it.
    shutdown: Arc<watch::Sender<bool>>,
    keepalive: Duration,
    progress_delay: Duration,
    any_origin: bool,
}

// === impl DemoState ===

impl DemoState {
    /// A fresh server state: the notebook seeded with the "Welcome" and "Scopes" notes, no
    /// sessions, a 15 s keepalive, a 10 ms progress delay, and only loopback `Origin`s
    /// (or none) allowed.
    pub fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            notes: Arc::new(notes::NoteStore::seeded()),
            sessions: Arc::new(session::SessionStore::new(session::DEFAULT_MAX_SESSIONS)),
            shutdown: Arc::new(shutdown),
            keepalive: DEFAULT_KEEPALIVE,
            progress_delay: DEFAULT_PROGRESS_DELAY,
            any_origin: false,
        }
    }

    /// Sets how often the `GET` stream sends a `: keepalive` comment (tests use a few
    /// milliseconds).
    pub fn with_keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }

    /// Sets the pause between the events of a progress-reporting `tools/call`.
    pub fn with_progress_delay(mut self, delay: Duration) -> Self {
        self.progress_delay = delay;
        self
    }

    /// Caps the number of live sessions (default 10 000); starting one more evicts the
    /// oldest. Replaces the session store, so call it before serving.
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Self {
        self.sessions = Arc::new(session::SessionStore::new(max_sessions));
        self
    }

    /// Accepts requests whatever their `Origin` header says.
    ///
    /// By default a request with an `Origin` that is not `http(s)://localhost`,
    /// `127.0.0.1` or `[::1]` gets `403`, as the transport spec requires of servers to
    /// stop DNS-rebinding attacks. Only turn this off behind something that checks
    /// `Origin` itself, such as Warden's gateway.
    pub fn allow_any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// Ends every open `GET` stream, now and in future. [`serve`] calls this when its
    /// shutdown signal fires so that graceful shutdown does not wait on idle streams;
    /// call it yourself when serving [`router`] with your own server.
    pub fn close_streams(&self) {
        self.shutdown.send_replace(true);
    }

    /// The number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

impl Default for DemoState {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DemoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session ids are bearer-like; show counts only.
        f.debug_struct("DemoState")
            .field("sessions", &self.sessions.len())
            .field("keepalive", &self.keepalive)
            .field("progress_delay", &self.progress_delay)
            .field("any_origin", &self.any_origin)
            .finish_non_exhaustive()
    }
}

// === router and server ===

/// The demo's routes: the MCP endpoint at `/mcp` (`POST`, `GET`, `DELETE`) and
/// `GET /healthz`.
pub fn router(state: DemoState) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(transport::post_mcp)
                .get(transport::get_mcp)
                .delete(transport::delete_mcp),
        )
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves a fresh [`DemoState`] on `listener` until `shutdown` completes, then shuts down
/// gracefully: open `GET` streams are closed and in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_state(listener, DemoState::new(), shutdown).await
}

/// Like [`serve`], with a state you configured (and may keep a clone of).
pub async fn serve_with_state(
    listener: TcpListener,
    state: DemoState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down; closing open streams");
            streams.close_streams();
        })
        .await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
