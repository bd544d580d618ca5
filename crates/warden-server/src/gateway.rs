//! The MCP gateway: `/mcp/{server}` and its protected-resource metadata.
//!
//! Every request to a registered server goes through the same steps, in this order, and
//! nothing reaches the upstream until all of them pass:
//!
//! 1. **Registry**: the server is looked up in an in-memory copy of the registry
//!    ([`registry`]), refreshed in the background, so the hot path never waits on the
//!    database.
//! 2. **Origin** (403) and **CORS** ([`cors`]): absent, same-origin as `public_url`,
//!    loopback, or listed in the server's `allowed_origins`.
//! 3. **Token** ([`validate`]): `Authorization: Bearer` or `DPoP` (a token in the query
//!    string, or a malformed header, is `400 invalid_request`); a JWT is verified strictly (alg
//!    allow-list from the issuer's keys, `typ` `at+jwt`, `iss`, `aud` = this server's
//!    canonical URI, `exp`/`nbf` with the server's leeway, `jti` not revoked). Tokens of
//!    an external issuer are checked the same way with its JWKS, or introspected
//!    ([`external`]); an issuer that cannot be reached is 503. Validated tokens are
//!    cached by hash ([`cache`]); a hit re-checks expiry and revocation. Then the sender
//!    constraint (RFC 9449 §7, `sender`), on every request: a token bound to a key
//!    (`cnf.jkt`) needs the `DPoP` scheme and a fresh proof by that key for this method
//!    and URI, never seen before (the replay table is shared by replicas); an unbound
//!    token is refused with the `DPoP` scheme.
//! 4. **Message** ([`jsonrpc`], [`authorize`]): the JSON-RPC body is parsed once,
//!    `Mcp-Method`/`Mcp-Name` must match it, the session id must belong to this identity
//!    ([`session`]), and the method must be allowed by the token's scopes.
//! 5. **Proxy** ([`proxy`]): the request goes upstream with identity headers stripped and
//!    a gateway-signed assertion instead of the client's token ([`assertion`]), or, by
//!    `settings.upstream_auth`, a token from the upstream's own authorization server
//!    ([`upstream_auth`]); the answer streams back, list results filtered ([`sse`] for
//!    event streams).
//!
//! Every refusal is one [`challenge::GatewayError`], mapped to a status, a
//! `WWW-Authenticate` challenge and a JSON-RPC error body in one exhaustive `match`.
//! Every request is one decision ([`journal::Decision`]: allow, deny, or error when the
//! gateway could not decide or deliver), requests for unknown or unavailable servers
//! included. It is counted in `warden_gateway_decisions_total` (unknown and unavailable
//! names under the fixed labels `(unknown)` and `(unavailable)`) and queued to the audit
//! log (`gateway.allow` / `gateway.deny` / `gateway.error`, with method, target and
//! reason, never token material), in batches of up to a few milliseconds ([`journal`]).
//!
//! Upstreams are Streamable HTTP over `http://` or `https://` ([`proxy`], TLS in
//! [`tls`]), the legacy HTTP+SSE transport ([`legacy`]), or stdio commands ([`stdio`]).
//! An `https://` upstream is verified against the public web PKI, or only against
//! `settings.upstream_ca` (a PEM bundle) when set. The legacy transport is chosen with
//! `settings.transport = "sse"`, or by an upstream URL whose path ends in `/sse`;
//! `"streamable-http"` overrides that guess.
//!
//! # Scope policy
//!
//! A server's registration lists tool groups: a scope and the entries it unlocks. An entry
//! is
//!
//! - a tool name (`notes_read`), or a tool-name prefix ending in `*` (`notes_*`), or
//!   explicitly `tool:<name>`;
//! - `resource:<uri-prefix>`: `resources/read`, `resources/subscribe` and completions on
//!   a resource whose URI starts with the prefix (the longest matching prefix wins);
//! - `prompt:<name>`: `prompts/get` and completions for that prompt.
//!
//! `tools/call`, `resources/read`/`subscribe`/`unsubscribe`, `prompts/get` and
//! `completion/complete` need the scope of their entry. Anything no entry covers is
//! **denied** unless the server's `settings` relax it: `"unmapped_tools"`,
//! `"unmapped_resources"` and `"unmapped_prompts"` each take `"deny"` (the default) or
//! `"allow"` (then any valid token for the server may use it). Other methods
//! (`initialize`, `ping`, notifications, the list methods, …) need only a valid token.
//! `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list` results
//! are filtered to what the token may use, so nothing is listed that would be denied.
//!
//! The settings are the fields of [`warden_core::server_settings::ServerSettings`], parsed
//! once when a registration is compiled. Other per-server `settings`: `"static_headers"`
//! (an object of header → value sent to the upstream; sealed at rest, secret-typed and
//! never logged; if it sets `Authorization`, the assertion
//! moves to `X-Warden-Assertion`), `"upstream_auth"` and the `"upstream_client_*"`,
//! `"upstream_scopes"` and `"upstream_issuer"` settings ([`upstream_auth`]),
//! `"allowed_origins"` (extra browser origins),
//! `"challenge_scope"` (the `scope` of a 401 challenge; by default every scope the server
//! defines), `"upstream_timeout_secs"` (time to the upstream's response headers, default
//! 120), `"resource_name"` (for the metadata document), `"upstream_ca"` and `"transport"`
//! (above), and for external issuers `"accept_jwt_typ"`, `"jwks_uri"`, `"issuer_ca"` and
//! the `"introspection_*"` settings ([`external`]).
//!
//! # Dynamic scoping
//!
//! A client may declare, in `initialize`, the tools it intends to call:
//!
//! ```json
//! { "method": "initialize", "params": { "capabilities": {
//!     "experimental": { "warden/intendedTools": ["notes_read", "notes_list"] } } } }
//! ```
//!
//! If the token does not cover every declared tool the session is refused before the
//! upstream sees it (403 with the step-up `scope`, or a plain 403 for tools no scope
//! covers). Otherwise the session is *pinned*: the declared set travels inside the
//! gateway's session id (MAC-protected, see [`session`]), later calls to any other tool are
//! denied and `tools/list` shows only the declared tools. Both decisions are logged and
//! audited, with the declared tools as the audit record's `target`.
//!
//! Revision 2026-07-28 has no `initialize` and no sessions; every request carries its
//! client capabilities in `params._meta["io.modelcontextprotocol/clientCapabilities"]`.
//! The same declaration is made there, per request
//! (`…clientCapabilities.experimental["warden/intendedTools"]`), and checked the same way
//! on that request. Where the declaration should be fixed for the life of a token, it is
//! made at authorization time with an RFC 9396 `authorization_details` entry
//! `{"type": "warden:mcp", "tools": [...]}`; the gateway pins every request carrying such a
//! token to those tools.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use axum::routing::{any, get};
use axum::Router;
use warden_core::secret::SecretHasher;

use crate::App;

pub mod assertion;
pub mod authorize;
mod body;
pub mod cache;
pub mod challenge;
pub mod cors;
pub mod external;
mod handler;
pub mod journal;
pub mod jsonrpc;
pub mod legacy;
pub mod metadata;
pub mod proxy;
pub mod registry;
mod sender;
pub mod session;
pub mod sse;
pub mod stdio;
pub mod tls;
pub mod upstream_auth;
pub mod validate;

/// The gateway's shared state: registry and token caches, the session binder and the
/// upstream connection pool. One per process, inside [`App`].
pub struct Gateway {
    /// The in-memory registry of protected servers.
    pub registry: registry::Registry,
    /// Validated tokens, by hash.
    pub tokens: cache::TokenCache,
    /// Binds session ids to identities.
    pub sessions: session::SessionBinder,
    /// The pooled HTTP client for upstreams.
    pub upstream: proxy::UpstreamClient,
    /// The processes of stdio upstreams.
    pub stdio: stdio::StdioPool,
    /// External issuers' keys and recent introspection refusals.
    pub external: external::ExternalState,
    /// Gateway audit events on their way to the audit writer.
    pub journal: journal::Journal,
    /// Tokens from upstreams' own authorization servers.
    pub upstream_auth: upstream_auth::UpstreamCredentials,
    /// When an unknown `kid` last reloaded the key ring (UNIX seconds).
    pub(crate) last_key_reload: AtomicI64,
}

// === impl Gateway ===

impl Gateway {
    /// A gateway whose session ids are bound with `session_key`.
    pub fn new(session_key: SecretHasher) -> Self {
        Self {
            registry: registry::Registry::default(),
            tokens: cache::TokenCache::new(cache::DEFAULT_CAPACITY),
            sessions: session::SessionBinder::new(session_key),
            upstream: proxy::UpstreamClient::new(),
            stdio: stdio::StdioPool::default(),
            external: external::ExternalState::new(),
            journal: journal::Journal::default(),
            upstream_auth: upstream_auth::UpstreamCredentials::default(),
            last_key_reload: AtomicI64::new(i64::MIN),
        }
    }
}

pub(crate) use handler::{serve, Endpoint};

/// The gateway's routes, merged into the main router.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/mcp/{name}", any(handler::mcp))
        .route("/mcp/{name}/message", any(handler::message))
        .route(
            "/.well-known/oauth-protected-resource/mcp/{name}",
            get(metadata::protected_resource).options(metadata::preflight),
        )
}

/// A cheap shared string, for values copied into every cache entry and audit event.
pub type SharedStr = Arc<str>;
