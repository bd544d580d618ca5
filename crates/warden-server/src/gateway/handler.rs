//! The gateway's one pipeline: the steps of the [module docs](super), in order, for every
//! endpoint and transport, and one audit record and metric per request.
//!
//! The checks (method, token, body, JSON-RPC message, mirrored headers, session,
//! authorization) and the cleaning of the answer are written once, here. What differs by
//! transport (where the session comes from, how the message reaches the upstream) is
//! a [`Transport`], matched at the two points where it matters, so a check added to the
//! pipeline applies to Streamable HTTP, the legacy HTTP+SSE message endpoint and stdio
//! alike.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;
use warden_store::NewAuditEvent;

use super::authorize::{Permit, Visibility};
use super::body::{read_body, settle};
use super::challenge::GatewayError;
use super::journal::{AuditDetail, Decision};
use super::jsonrpc::{Call, ListKind, Message};
use super::registry::{Lookup, Protected, Upstream};
use super::session::{Session, SESSION_HEADER};
use super::sse::{self, Rewrite};
use super::stdio::StdioCommand;
use super::validate::{self, Principal};
use super::{assertion, cors, legacy, proxy, stdio, upstream_auth};
use crate::dpop::DPOP_NONCE_HEADER;
use crate::App;

/// Longest requested server name an audit record keeps, in characters.
const MAX_REQUESTED_NAME: usize = 64;

const ASSERTION_HEADER: HeaderName = HeaderName::from_static("x-warden-assertion");

/// Which of the gateway's endpoints a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/mcp/{name}`, the server's canonical URI.
    Canonical,
    /// `/mcp/{name}/message`, where legacy HTTP+SSE clients post their messages.
    LegacyMessage,
}

/// How a request reaches the upstream: the part of the pipeline that differs by
/// transport.
#[derive(Clone, Copy)]
enum Transport<'s> {
    /// Streamable HTTP (or an upstream this build cannot reach, refused when the
    /// upstream request is built).
    Http,
    /// A command spawned and bridged by the gateway.
    Stdio(&'s StdioCommand),
    /// The legacy transport's event stream, opened on the canonical URI.
    LegacyStream,
    /// A legacy client's message, posted to the endpoint its event stream named.
    LegacyMessage,
}

/// What a decision is about, as the metrics and the audit log name it.
#[derive(Clone, Copy)]
enum Audited<'a> {
    /// A registered server.
    Server(&'a Protected),
    /// No server has the requested name (on this endpoint).
    Unknown(&'a str),
    /// The registration cannot be used, or the registry cannot be read.
    Unavailable(&'a str),
}

/// What the audit record of a request says, filled in as the request progresses.
#[derive(Default)]
struct Trail {
    principal: Option<Arc<Principal>>,
    method: Option<String>,
    target: Option<String>,
}

/// Where a message goes within its transport.
#[derive(Default)]
struct Route {
    /// The verified session it names.
    session: Option<Arc<Session>>,
    /// For the legacy transport: the upstream endpoint its `sessionId` stands for.
    endpoint: Option<Uri>,
}

/// What to do with an upstream's answer.
struct Plan {
    /// Filter this list result (POST) or, with `None` kind, any list result (GET stream).
    filter: Option<(Option<ListKind>, Visibility)>,
    /// Whether the transport has Streamable HTTP sessions: the upstream's session id is
    /// re-bound to the identity; otherwise it is dropped.
    sessions: bool,
    /// The pin a session id issued or re-issued in the answer carries.
    pin: Option<Vec<String>>,
    /// Issue a gateway-only session id if the upstream sends none (a pinned
    /// `initialize` to a session-less upstream).
    needs_session: bool,
    /// The JSON-RPC id, for errors.
    id: Value,
}

/// `/mcp/{name}`, any method, through the router.
pub(super) async fn mcp(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    serve(&app, name, Endpoint::Canonical, request).await
}

/// `/mcp/{name}/message`: a legacy client's messages.
pub(super) async fn message(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    serve(&app, name, Endpoint::LegacyMessage, request).await
}

/// A request to one of the gateway's endpoints, any method. The span is at debug level:
/// at info, creating and closing it per request cost about 4% of the gateway's CPU (the
/// audit event names the server).
#[tracing::instrument(level = "debug", skip_all, fields(server = %name))]
pub(crate) async fn serve(
    app: &App,
    name: String,
    endpoint: Endpoint,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let response = pipeline(app, &name, endpoint, &parts, &mut body).await;
    settle(response, body, &parts.headers).await
}

/// Registry, Origin and CORS, then [`handle`]; every outcome through [`finish`].
async fn pipeline(
    app: &App,
    name: &str,
    endpoint: Endpoint,
    parts: &Parts,
    body: &mut Option<Body>,
) -> Response {
    // Audited under the requested name, cut short: no server answers to it.
    let refused = |audited, error| finish(app, audited, &Trail::default(), Err(error), None);
    let server = match app.gateway.registry.lookup(app, name).await {
        Lookup::Found(server) => server,
        Lookup::Missing => return refused(Audited::Unknown(name), GatewayError::UnknownServer),
        Lookup::Unavailable => {
            return refused(Audited::Unavailable(name), GatewayError::ServerUnavailable)
        }
    };
    let Some(transport) = Transport::of(endpoint, &server.upstream) else {
        return refused(Audited::Unknown(name), GatewayError::UnknownServer);
    };
    let audited = Audited::Server(&server);
    let origin = match cors::check(&server, &parts.headers) {
        Ok(origin) => origin,
        Err(e) => return finish(app, audited, &Trail::default(), Err(e), None),
    };
    if parts.method == Method::OPTIONS {
        return cors::preflight(origin, &parts.headers);
    }
    let mut trail = Trail::default();
    let result = handle(app, &server, transport, parts, body, &mut trail).await;
    finish(app, audited, &trail, result, origin)
}

async fn handle(
    app: &App,
    server: &Arc<Protected>,
    transport: Transport<'_>,
    parts: &Parts,
    body: &mut Option<Body>,
    trail: &mut Trail,
) -> Result<Response, GatewayError> {
    let method = &parts.method;
    if !transport.accepts(method) {
        return Err(GatewayError::MethodNotAllowed);
    }
    let now = app.clock.now();
    let presented = validate::access_token(&parts.headers, parts.uri.query())?
        .ok_or(GatewayError::MissingToken)?;
    let principal = validate::authenticate(app, server, presented.token, now).await?;
    trail.principal = Some(Arc::clone(&principal));
    let htu = match transport {
        Transport::LegacyMessage => Cow::Owned(format!("{}/message", server.canonical_uri)),
        Transport::Http | Transport::Stdio(_) | Transport::LegacyStream => {
            Cow::Borrowed(&*server.canonical_uri)
        }
    };
    super::sender::confirm(app, server, &htu, parts, presented, &principal, now).await?;
    if let Transport::LegacyStream = transport {
        return legacy::open_stream(app, server, &principal, method, &parts.headers, now).await;
    }
    if method == Method::POST {
        let body = read_body(body.take().unwrap_or_default(), &parts.headers).await?;
        return post(app, server, transport, parts, &principal, body, trail, now).await;
    }

    let route = transport.route(app, server, &principal, parts, || Value::Null)?;
    let pin = route.session.as_ref().and_then(|s| s.pinned.clone());
    if method == Method::DELETE {
        match &route.session {
            None => {
                return Err(GatewayError::InvalidMessage {
                    id: Value::Null,
                    message: "Bad Request: Mcp-Session-Id header is required",
                })
            }
            // A gateway-only session has nothing upstream to end.
            Some(session) if session.upstream.is_none() => {
                let mut done = Response::new(Body::empty());
                *done.status_mut() = StatusCode::NO_CONTENT;
                return Ok(done);
            }
            Some(_) => {}
        }
    }
    let upstream_session = route.session.as_ref().and_then(|s| s.upstream.as_deref());
    let response = match transport {
        Transport::Stdio(_) if method == Method::GET => {
            app.gateway.stdio.listen(upstream_session)?
        }
        Transport::Stdio(_) => app.gateway.stdio.end(upstream_session)?,
        Transport::Http | Transport::LegacyStream | Transport::LegacyMessage => {
            let outgoing = upstream_request(
                app,
                server,
                &principal,
                method.clone(),
                &parts.headers,
                upstream_session,
                Body::empty(),
                now,
                || Value::Null,
            )
            .await?;
            send(app, server, outgoing, || Value::Null).await?
        }
    };
    let visibility = Visibility::new(Arc::clone(server), Arc::clone(&principal), pin.clone());
    let plan = Plan {
        // A GET stream may replay responses (resumption): filter any list result in it.
        filter: (method == Method::GET).then_some((None, visibility)),
        sessions: true,
        pin,
        needs_session: false,
        id: Value::Null,
    };
    answer(app, server, &principal, response, plan).await
}

/// A POST's one JSON-RPC message: parsed, checked against its headers and session,
/// authorized, sent upstream, its answer cleaned.
#[allow(clippy::too_many_arguments)] // The pipeline's state at this step; one caller.
async fn post(
    app: &App,
    server: &Arc<Protected>,
    transport: Transport<'_>,
    parts: &Parts,
    principal: &Arc<Principal>,
    body: Bytes,
    trail: &mut Trail,
    now: i64,
) -> Result<Response, GatewayError> {
    let message = Message::parse(&body)?;
    trail.method = message.method().map(str::to_owned);
    let call = message.call()?;
    message.check_mirrored_headers(&call, &parts.headers)?;
    let route = transport.route(app, server, principal, parts, || message.id())?;
    let pin = route.session.as_ref().and_then(|s| s.pinned.clone());
    let visibility = Visibility::new(Arc::clone(server), Arc::clone(principal), pin.clone());
    let Permit {
        filter,
        pin: new_pin,
        target,
    } = visibility.authorize(&message, &call)?;
    trail.target = target;
    if let Some(tools) = &new_pin {
        if let Transport::LegacyMessage = transport {
            return Err(GatewayError::NotPermitted {
                id: message.id(),
                message: "declaring intended tools needs the Streamable HTTP transport; \
                          this server uses legacy HTTP+SSE"
                    .into(),
            });
        }
        tracing::info!(
            server = %server.name,
            subject = principal.subject(),
            client_id = principal.client_id(),
            tools = ?tools,
            "session pinned to its declared tools"
        );
    }
    let forwarded =
        super::jsonrpc::without_declaration(&call, &body)?.unwrap_or_else(|| body.clone());
    let upstream_session = route.session.as_ref().and_then(|s| s.upstream.as_deref());
    let response = match transport {
        Transport::Stdio(command) => {
            let line = serde_json::from_slice::<Value>(&forwarded)
                .map_err(|_| GatewayError::Parse)?
                .to_string();
            let posted = stdio::Posted {
                id: message.is_request().then(|| message.id().to_string()),
                line,
                sse: stdio::accepts_sse(&parts.headers),
                initialize: matches!(call, Call::Initialize { .. }) && route.session.is_none(),
                timeout: server.upstream_timeout,
                principal,
                rpc_id: message.id(),
            };
            app.gateway
                .stdio
                .post(server, command, upstream_session, posted)
                .await?
        }
        Transport::Http | Transport::LegacyMessage | Transport::LegacyStream => {
            let mut outgoing = upstream_request(
                app,
                server,
                principal,
                Method::POST,
                &parts.headers,
                upstream_session,
                Body::from(forwarded),
                now,
                || message.id(),
            )
            .await?;
            if let Some(endpoint) = route.endpoint {
                *outgoing.uri_mut() = endpoint;
            }
            send(app, server, outgoing, || message.id()).await?
        }
    };
    let needs_session = matches!(call, Call::Initialize { .. }) && new_pin.is_some();
    let plan = Plan {
        filter: filter.map(|kind| (Some(kind), visibility)),
        sessions: transport.has_sessions(),
        pin: new_pin.or(pin),
        needs_session,
        id: if needs_session || filter.is_some() {
            message.id()
        } else {
            Value::Null
        },
    };
    answer(app, server, principal, response, plan).await
}

/// Sends `outgoing` to the server's upstream; a failure is a JSON-RPC error echoing `id`.
pub(super) async fn send(
    app: &App,
    server: &Protected,
    outgoing: axum::http::Request<Body>,
    id: impl FnOnce() -> Value,
) -> Result<Response, GatewayError> {
    app.gateway
        .upstream
        .send(
            outgoing,
            server.upstream_timeout,
            server.upstream_roots.as_ref(),
        )
        .await
        .map_err(|f| f.into_error(id()))
}

// === impl Transport ===

impl<'s> Transport<'s> {
    /// The transport of a request to `endpoint` of a server with this upstream; `None`
    /// if the server has no such endpoint (only a legacy server has a message endpoint).
    fn of(endpoint: Endpoint, upstream: &'s Upstream) -> Option<Self> {
        match (endpoint, upstream) {
            (Endpoint::Canonical, Upstream::Stdio(command)) => Some(Transport::Stdio(command)),
            (Endpoint::Canonical, Upstream::LegacySse { .. }) => Some(Transport::LegacyStream),
            (Endpoint::Canonical, Upstream::Http { .. } | Upstream::Unsupported(_)) => {
                Some(Transport::Http)
            }
            (Endpoint::LegacyMessage, Upstream::LegacySse { .. }) => Some(Transport::LegacyMessage),
            (
                Endpoint::LegacyMessage,
                Upstream::Stdio(_) | Upstream::Http { .. } | Upstream::Unsupported(_),
            ) => None,
        }
    }

    /// Whether `method` is served at all: checked before the token. (The legacy
    /// stream takes only `GET`, but a client learns that after the challenge.)
    fn accepts(self, method: &Method) -> bool {
        match self {
            Transport::Http | Transport::Stdio(_) | Transport::LegacyStream => {
                method == Method::POST || method == Method::GET || method == Method::DELETE
            }
            Transport::LegacyMessage => method == Method::POST,
        }
    }

    /// Whether the transport has Streamable HTTP session ids.
    fn has_sessions(self) -> bool {
        match self {
            Transport::Http | Transport::Stdio(_) => true,
            Transport::LegacyStream | Transport::LegacyMessage => false,
        }
    }

    /// Where the request goes: the session its `Mcp-Session-Id` names, which must be one
    /// this identity opened on this server; for a legacy message, the endpoint its
    /// `sessionId` stands for. `id` is the JSON-RPC id, for the error.
    fn route(
        self,
        app: &App,
        server: &Protected,
        principal: &Principal,
        parts: &Parts,
        id: impl FnOnce() -> Value,
    ) -> Result<Route, GatewayError> {
        match self {
            Transport::Http | Transport::Stdio(_) | Transport::LegacyStream => {
                let Some(value) = parts.headers.get(&SESSION_HEADER) else {
                    return Ok(Route::default());
                };
                match app.gateway.sessions.unwrap(&server.name, principal, value) {
                    Some(session) => Ok(Route {
                        session: Some(session),
                        endpoint: None,
                    }),
                    None => Err(GatewayError::SessionNotFound { id: id() }),
                }
            }
            Transport::LegacyMessage => {
                match legacy::endpoint_of(app, server, principal, parts.uri.query()) {
                    Some(endpoint) => Ok(Route {
                        session: None,
                        endpoint: Some(endpoint),
                    }),
                    None => Err(GatewayError::SessionNotFound { id: id() }),
                }
            }
        }
    }
}

/// The request to the upstream: the client's forwardable headers, the gateway's
/// credentials, informational identity headers and the upstream's own session id.
///
/// The credential in `Authorization` is, by `upstream_auth`: the assertion; a static
/// header; or the upstream's own token ([`upstream_auth`]). Whenever something else takes
/// `Authorization`, the assertion goes in `X-Warden-Assertion`. `id` is the JSON-RPC id,
/// for an error.
#[allow(clippy::too_many_arguments)] // One call site per method; a struct adds nothing.
pub(super) async fn upstream_request(
    app: &App,
    server: &Protected,
    principal: &Principal,
    method: Method,
    client_headers: &HeaderMap,
    upstream_session: Option<&str>,
    body: Body,
    now: i64,
    id: impl FnOnce() -> Value,
) -> Result<axum::http::Request<Body>, GatewayError> {
    let (uri, audience, host) = match &server.upstream {
        Upstream::Http {
            uri,
            audience,
            host,
        } => (uri, audience, host.as_ref()),
        // No preset Host: the legacy transport may send its POSTs to another URI.
        Upstream::LegacySse { uri, audience } => (uri, audience, None),
        Upstream::Unsupported(why) => {
            tracing::error!(server = %server.name, reason = %why, "cannot reach the upstream");
            return Err(GatewayError::UpstreamUnavailable { id: Value::Null });
        }
        Upstream::Stdio(_) => {
            return Err(GatewayError::Internal("stdio upstream on the HTTP path"))
        }
    };
    // First, as it may wait on the upstream's authorization server.
    let upstream_token = upstream_auth::authorization(app, server, principal, now, id).await?;
    let mut request = axum::http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri.clone();
    // Sized once for what is added below (with Host, the credential and the session id),
    // instead of grown (rehashed) while filling.
    *request.headers_mut() = HeaderMap::with_capacity(
        client_headers.len() + principal.identity_headers().len() + server.static_headers.len() + 3,
    );
    let headers = request.headers_mut();
    proxy::forward_headers(client_headers, headers);
    if let Some(host) = host {
        headers.insert(header::HOST, host.clone());
    }
    let credential = assertion::upstream_authorization(app, audience, principal, now)?;
    if server.assertion_in_authorization {
        headers.insert(header::AUTHORIZATION, credential);
    } else {
        headers.insert(ASSERTION_HEADER, credential);
    }
    if let Some(token) = upstream_token {
        headers.insert(header::AUTHORIZATION, token);
    }
    for (name, value) in principal.identity_headers() {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &server.static_headers {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(id) = upstream_session {
        let value =
            HeaderValue::from_str(id).map_err(|_| GatewayError::Internal("upstream session id"))?;
        headers.insert(SESSION_HEADER, value);
    }
    Ok(request)
}

/// Turns the upstream's answer into the client's: session id re-bound, headers cleaned,
/// list results filtered, everything else streamed as is.
async fn answer(
    app: &App,
    server: &Protected,
    principal: &Principal,
    response: Response<Body>,
    plan: Plan,
) -> Result<Response, GatewayError> {
    let (mut parts, body) = response.into_parts();
    if proxy::refused_gateway(parts.status, &server.name) {
        // A token from the upstream's own authorization server that it no longer takes
        // (revoked, keys rotated) is not sent again: the next request asks for another.
        app.gateway.upstream_auth.forget(server, principal);
        return Err(GatewayError::UpstreamUnavailable { id: plan.id });
    }
    proxy::clean_answer_headers(&mut parts.headers);
    let upstream_session = parts.headers.remove(&SESSION_HEADER);
    if plan.sessions {
        let sessions = &app.gateway.sessions;
        let issued = match upstream_session {
            Some(value) => match value.to_str() {
                Ok(id) => sessions.wrap(&server.name, principal, Some(id), plan.pin.as_deref()),
                Err(_) => {
                    tracing::warn!(server = %server.name, "upstream sent an invalid session id");
                    None
                }
            },
            None if plan.needs_session && parts.status.is_success() => {
                sessions.wrap(&server.name, principal, None, plan.pin.as_deref())
            }
            None => None,
        };
        if let Some(id) = issued {
            parts.headers.insert(SESSION_HEADER, id);
        }
    }
    let event_stream = proxy::is_event_stream(&parts.headers);
    if event_stream {
        proxy::no_buffering(&mut parts.headers);
    }
    let body = match plan.filter {
        Some((kind, visibility)) if event_stream => {
            parts.headers.remove(header::CONTENT_LENGTH);
            // A POST stream carries one response; a GET stream is watched to the end.
            let once = kind.is_some();
            sse::rewrite_stream(body, move |message: &mut Value| Rewrite {
                changed: visibility.filter_response(kind, message),
                finished: once,
            })
        }
        // Whatever its `Content-Type` says: an upstream's label is no reason to pass a
        // list result unfiltered.
        Some((kind, visibility)) => {
            let bytes = proxy::read_bounded(body)
                .await
                .map_err(|f| f.into_error(plan.id.clone()))?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(mut message) => {
                    visibility.filter_response(kind, &mut message);
                    parts.headers.remove(header::CONTENT_LENGTH);
                    Body::from(message.to_string())
                }
                // Not JSON, so no JSON-RPC answer to hide anything in: a GET's refusal
                // (say, a 405 in plain text) passes as it is. A list method's answer
                // must be one.
                Err(_) if kind.is_none() => Body::from(bytes),
                Err(_) => {
                    tracing::warn!(server = %server.name, "the upstream's list answer is not JSON");
                    return Err(GatewayError::UpstreamUnavailable { id: plan.id });
                }
            }
        }
        None => body,
    };
    Ok(Response::from_parts(parts, body))
}

/// Sends the response for `result`, with one audit record and metric.
fn finish(
    app: &App,
    audited: Audited<'_>,
    trail: &Trail,
    result: Result<Response, GatewayError>,
    origin: Option<HeaderValue>,
) -> Response {
    let server = audited.server();
    let (mut response, decision, reason) = match result {
        Ok(response) => (response, Decision::Allow, None),
        Err(e) => {
            let (decision, reason) = (e.decision(), e.reason());
            (e.into_response(server), decision, Some(reason))
        }
    };
    if server.is_some() {
        // The current server nonce, when nonces are on (RFC 9449 §9): with a 401 the
        // client needs it, with anything else it learns of a rotation without a refusal.
        if let Some(nonce) = app.dpop.nonce(app.clock.now()) {
            response.headers_mut().insert(DPOP_NONCE_HEADER, nonce);
        }
    }
    app.metrics
        .record_gateway_decision(audited.metrics_label(), decision.label());
    let status = response.status().as_u16();
    if let Some(reason) = &reason {
        tracing::debug!(server = audited.metrics_label(), status, %reason, "gateway refused a request");
    }
    let requested = audited.requested();
    let detail = AuditDetail {
        decision: decision.label(),
        method: trail.method.as_deref(),
        reason: reason.as_deref(),
        requested_server: requested.as_deref(),
        status,
        target: trail.target.as_deref(),
    };
    let principal = trail.principal.as_deref();
    app.gateway.journal.record(
        app,
        NewAuditEvent {
            ts: app.clock.now_ms(),
            kind: decision.audit_kind().to_owned(),
            client_id: principal.map(|p| p.client_id().to_owned()),
            subject: principal.map(|p| p.subject().to_owned()),
            server: server.map(|s| s.name.to_string()),
            detail: detail.to_text(),
        },
    );
    cors::decorate(&mut response, origin);
    response
}

// === impl Audited ===

impl<'a> Audited<'a> {
    fn server(self) -> Option<&'a Protected> {
        match self {
            Audited::Server(server) => Some(server),
            Audited::Unknown(_) | Audited::Unavailable(_) => None,
        }
    }

    /// The `server` label of the decision metric: a registered server's name, or one
    /// fixed label per kind of failed lookup, so that requested names (anything a
    /// client sends) cannot grow the metric without bound.
    fn metrics_label(self) -> &'a str {
        match self {
            Audited::Server(server) => &server.name,
            Audited::Unknown(_) => "(unknown)",
            Audited::Unavailable(_) => "(unavailable)",
        }
    }

    /// The name a request asked for when no registered server answers to it, cut to
    /// [`MAX_REQUESTED_NAME`] characters, for the audit record.
    fn requested(self) -> Option<String> {
        match self {
            Audited::Server(_) => None,
            Audited::Unknown(name) | Audited::Unavailable(name) => {
                Some(name.chars().take(MAX_REQUESTED_NAME).collect())
            }
        }
    }
}
