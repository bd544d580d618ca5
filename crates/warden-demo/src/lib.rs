//! `warden-demo`: a small but real MCP server speaking the Streamable HTTP transport, or
//! stdio ([`serve_stdio`]), built on `rmcp`, the official Rust MCP SDK.
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
//! The tools, resources and prompt are an rmcp `ServerHandler` (the tools registered with
//! rmcp's `#[tool_router]`); both transports are rmcp's. Over HTTP that is rmcp's
//! Streamable HTTP service in session mode, speaking MCP revision 2025-11-25 (and
//! accepting 2025-06-18 and 2025-03-26): sessions via `Mcp-Session-Id` (at most
//! [`DemoState::with_max_sessions`] of them, oldest evicted first), `MCP-Protocol-Version`
//! checks, `202` for notifications, every reply as an SSE stream (with progress
//! notifications first when a `tools/call` carries a progress token), a `GET` stream with
//! keepalives, `DELETE` to end a session, and `Origin` checks. What is Warden's own here:
//! the notebook, the tools' argument checks, the session cap, and `GET /healthz`.
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

use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod notes;
mod server;
mod session;
mod stdio;
mod tools;

pub use server::PROTOCOL_VERSIONS;
pub use stdio::serve_stdio;

/// The demo's tools grouped by the OAuth scope that should guard them, for registering
/// the demo with Warden: `(scope, tools)`.
pub const TOOL_GROUPS: &[(&str, &[&str])] = &[
    ("notes:read", &["notes_list", "notes_read", "whoami"]),
    ("notes:write", &["notes_write"]),
    ("notes:admin", &["admin_reset"]),
];

/// How often an open SSE stream sends an empty `:` comment unless configured otherwise.
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
    sessions: Arc<session::DemoSessions>,
    /// Cancelled by [`DemoState::close_streams`]; rmcp's service and every stream it
    /// opens watch it.
    shutdown: CancellationToken,
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
        Self {
            notes: Arc::new(notes::NoteStore::seeded()),
            sessions: Arc::new(session::DemoSessions::new(session::DEFAULT_MAX_SESSIONS)),
            shutdown: CancellationToken::new(),
            keepalive: DEFAULT_KEEPALIVE,
            progress_delay: DEFAULT_PROGRESS_DELAY,
            any_origin: false,
        }
    }

    /// Sets how often an open SSE stream (the `GET` stream above all) sends an empty `:`
    /// comment (tests use a few milliseconds).
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
        self.sessions = Arc::new(session::DemoSessions::new(max_sessions));
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

    /// Ends every open SSE stream and session, now and in future. [`serve`] calls this
    /// when its shutdown signal fires so that graceful shutdown does not wait on idle
    /// streams; call it yourself when serving [`router`] with your own server.
    pub fn close_streams(&self) {
        self.shutdown.cancel();
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

/// Origins allowed unless [`DemoState::allow_any_origin`]: loopback, any port.
const LOOPBACK_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
];

/// The demo's routes: the MCP endpoint at `/mcp` (`POST`, `GET`, `DELETE`; rmcp's
/// Streamable HTTP service) and `GET /healthz`.
///
/// rmcp also checks `Host` against loopback names (its DNS-rebinding defence), so serve
/// the demo on a loopback address or behind a proxy that sends a loopback `Host`.
pub fn router(state: DemoState) -> Router {
    let origins = if state.any_origin {
        StreamableHttpServerConfig::default().disable_allowed_origins()
    } else {
        StreamableHttpServerConfig::default().with_allowed_origins(LOOPBACK_ORIGINS.iter().copied())
    };
    let config = origins
        .with_sse_keep_alive(Some(state.keepalive))
        // No replay store, so no priming events or retry hints (see `session`).
        .with_sse_retry(None)
        .with_cancellation_token(state.shutdown.clone());
    let handler_state = state.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(server::DemoServer::http(handler_state.clone())),
        state.sessions.clone(),
        config,
    );
    Router::new()
        .route_service("/mcp", mcp)
        .route("/healthz", get(healthz))
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
