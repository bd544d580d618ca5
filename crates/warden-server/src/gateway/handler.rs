//! The `/mcp/{name}` handler: the steps of the [module docs](super), in order, and one
//! audit record and metric per request.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::{json, Value};
use warden_store::NewAuditEvent;

use super::authorize::{Permit, Visibility};
use super::challenge::GatewayError;
use super::jsonrpc::{Call, ListKind, Message};
use super::registry::{Lookup, Protected, Upstream};
use super::session::{Session, SESSION_HEADER};
use super::sse::{self, Rewrite};
use super::validate::{self, Principal};
use super::{assertion, cors, legacy, proxy, stdio};
use crate::App;

/// Largest request body the gateway reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const ASSERTION_HEADER: HeaderName = HeaderName::from_static("x-warden-assertion");

/// What the audit record of a request says, filled in as the request progresses.
#[derive(Default)]
pub(super) struct Trail {
    pub(super) principal: Option<Arc<Principal>>,
    pub(super) method: Option<String>,
    pub(super) target: Option<String>,
}

/// The detail of a gateway audit event, written straight to JSON text. The fields are
/// in sorted order, as a `serde_json::Value` map writes them (see
/// [`warden_store::AuditDetail::Text`]).
#[derive(serde::Serialize)]
struct AuditDetail<'a> {
    decision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
}

impl AuditDetail<'_> {
    fn to_text(&self) -> warden_store::AuditDetail {
        match serde_json::value::to_raw_value(self) {
            Ok(text) => warden_store::AuditDetail::Text(text),
            // Unreachable (strings and a number always serialise); keep the record anyway.
            Err(_) => warden_store::AuditDetail::Value(json!({ "decision": self.decision })),
        }
    }
}

/// What to do with an upstream's answer.
struct Plan {
    /// Filter this list result (POST) or, with `None` kind, any list result (GET stream).
    filter: Option<(Option<ListKind>, Visibility)>,
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
    serve(&app, name, request).await
}

/// `/mcp/{name}`, any method. The span is at debug level: at info, creating and closing
/// it per request cost about 4% of the gateway's CPU (the audit event names the server).
#[tracing::instrument(level = "debug", skip_all, fields(server = %name))]
pub(crate) async fn serve(app: &App, name: String, request: Request) -> Response {
    let server = match app.gateway.registry.lookup(app, &name).await {
        Lookup::Found(server) => server,
        Lookup::Missing => return GatewayError::UnknownServer.into_response(None),
        Lookup::Unavailable => return GatewayError::ServerUnavailable.into_response(None),
    };
    let origin = match cors::check(&server, request.headers()) {
        Ok(origin) => origin,
        Err(e) => return finish(app, &server, &Trail::default(), Err(e), None),
    };
    if request.method() == Method::OPTIONS {
        return cors::preflight(origin, request.headers());
    }
    let mut trail = Trail::default();
    let result = handle(app, &server, request, &mut trail).await;
    finish(app, &server, &trail, result, origin)
}

async fn handle(
    app: &App,
    server: &Arc<Protected>,
    request: Request,
    trail: &mut Trail,
) -> Result<Response, GatewayError> {
    let method = request.method().clone();
    if method != Method::POST && method != Method::GET && method != Method::DELETE {
        return Err(GatewayError::MethodNotAllowed);
    }
    let now = app.clock.now();
    let token = validate::bearer(request.headers(), request.uri().query())?
        .ok_or(GatewayError::MissingToken)?;
    let principal = validate::authenticate(app, server, token, now).await?;
    trail.principal = Some(Arc::clone(&principal));
    if matches!(server.upstream, Upstream::LegacySse { .. }) {
        return legacy::open_stream(app, server, &principal, &method, request.headers(), now).await;
    }
    let (parts, body) = request.into_parts();
    let sessions = &app.gateway.sessions;
    let session = parts
        .headers
        .get(&SESSION_HEADER)
        .map(|v| sessions.unwrap(&server.name, &principal, v));

    if method == Method::POST {
        let body = read_body(body, &parts.headers).await?;
        let message = Message::parse(&body)?;
        trail.method = message.method().map(str::to_owned);
        let call = message.call()?;
        message.check_mirrored_headers(&call, &parts.headers)?;
        let session = known_session(session, || message.id())?;
        let pin = session.as_ref().and_then(|s| s.pinned.clone());
        let visibility = Visibility::new(Arc::clone(server), Arc::clone(&principal), pin.clone());
        let permit = visibility.authorize(&message, &call)?;
        let Permit {
            filter,
            pin: new_pin,
            target,
        } = permit;
        trail.target = target;
        if let Some(tools) = &new_pin {
            tracing::info!(
                server = %server.name,
                subject = principal.subject(),
                client_id = principal.client_id(),
                tools = ?tools,
                "session pinned to its declared tools"
            );
        }
        let upstream_session = session.as_ref().and_then(|s| s.upstream.as_deref());
        let response = if let Upstream::Stdio(command) = &server.upstream {
            let line = serde_json::from_slice::<Value>(&body)
                .map_err(|_| GatewayError::Parse)?
                .to_string();
            let posted = stdio::Posted {
                id: message.is_request().then(|| message.id().to_string()),
                line,
                sse: stdio::accepts_sse(&parts.headers),
                initialize: matches!(call, Call::Initialize { .. }) && session.is_none(),
                timeout: server.upstream_timeout,
                principal: &principal,
                rpc_id: message.id(),
            };
            app.gateway
                .stdio
                .post(server, command, upstream_session, posted)
                .await?
        } else {
            let outgoing = upstream_request(
                app,
                server,
                &principal,
                Method::POST,
                &parts.headers,
                upstream_session,
                Body::from(body.clone()),
                now,
            )?;
            app.gateway
                .upstream
                .send(
                    outgoing,
                    server.upstream_timeout,
                    server.upstream_roots.as_ref(),
                )
                .await
                .map_err(|f| f.into_error(message.id()))?
        };
        let needs_session = matches!(call, Call::Initialize { .. }) && new_pin.is_some();
        let plan = Plan {
            filter: filter.map(|kind| (Some(kind), visibility)),
            pin: new_pin.or(pin),
            needs_session,
            id: if needs_session || filter.is_some() {
                message.id()
            } else {
                Value::Null
            },
        };
        return answer(app, server, &principal, response, plan).await;
    }

    let session = known_session(session, || Value::Null)?;
    let pin = session.as_ref().and_then(|s| s.pinned.clone());
    if method == Method::DELETE {
        match &session {
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
    let upstream_session = session.as_ref().and_then(|s| s.upstream.as_deref());
    let response = match &server.upstream {
        Upstream::Stdio(_) if method == Method::GET => {
            app.gateway.stdio.listen(upstream_session)?
        }
        Upstream::Stdio(_) => app.gateway.stdio.end(upstream_session)?,
        Upstream::Http { .. } | Upstream::LegacySse { .. } | Upstream::Unsupported(_) => {
            let outgoing = upstream_request(
                app,
                server,
                &principal,
                method.clone(),
                &parts.headers,
                upstream_session,
                Body::empty(),
                now,
            )?;
            app.gateway
                .upstream
                .send(
                    outgoing,
                    server.upstream_timeout,
                    server.upstream_roots.as_ref(),
                )
                .await
                .map_err(|f| f.into_error(Value::Null))?
        }
    };
    let visibility = Visibility::new(Arc::clone(server), Arc::clone(&principal), pin.clone());
    let plan = Plan {
        // A GET stream may replay responses (resumption): filter any list result in it.
        filter: (method == Method::GET).then_some((None, visibility)),
        pin,
        needs_session: false,
        id: Value::Null,
    };
    answer(app, server, &principal, response, plan).await
}

/// The request's verified session: `Ok(None)` if it named none, `Err` if the id is not
/// one this identity opened on this server.
fn known_session(
    session: Option<Option<Arc<Session>>>,
    id: impl FnOnce() -> Value,
) -> Result<Option<Arc<Session>>, GatewayError> {
    match session {
        None => Ok(None),
        Some(Some(session)) => Ok(Some(session)),
        Some(None) => Err(GatewayError::SessionNotFound { id: id() }),
    }
}

pub(super) async fn read_body(body: Body, headers: &HeaderMap) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(GatewayError::PayloadTooLarge);
    }
    // A small body arrives in one frame, kept as it is; only more are joined (what
    // `collect` would do, with a queue allocated for every body).
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                GatewayError::PayloadTooLarge
            } else {
                GatewayError::Parse
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if first.is_none() && joined.is_empty() {
            first = Some(data);
        } else {
            joined.extend_from_slice(&first.take().unwrap_or_default());
            joined.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// The request to the upstream: the client's forwardable headers, the gateway's
/// credentials, informational identity headers and the upstream's own session id.
#[allow(clippy::too_many_arguments)] // One call site per method; a struct adds nothing.
pub(super) fn upstream_request(
    app: &App,
    server: &Protected,
    principal: &Principal,
    method: Method,
    client_headers: &HeaderMap,
    upstream_session: Option<&str>,
    body: Body,
    now: i64,
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
        return Err(GatewayError::UpstreamUnavailable { id: plan.id });
    }
    proxy::clean_answer_headers(&mut parts.headers);
    let sessions = &app.gateway.sessions;
    let upstream_session = parts.headers.remove(&SESSION_HEADER);
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
    let event_stream = proxy::is_event_stream(&parts.headers);
    if event_stream {
        proxy::no_buffering(&mut parts.headers);
    }
    let body = match plan.filter {
        Some((Some(kind), visibility)) if proxy::is_json(&parts.headers) => {
            let mut message = proxy::read_json(body)
                .await
                .map_err(|f| f.into_error(plan.id.clone()))?;
            visibility.filter_response(Some(kind), &mut message);
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(message.to_string())
        }
        Some((kind, visibility)) if event_stream => {
            parts.headers.remove(header::CONTENT_LENGTH);
            // A POST stream carries one response; a GET stream is watched to the end.
            let once = kind.is_some();
            sse::rewrite_stream(body, move |message: &mut Value| Rewrite {
                changed: visibility.filter_response(kind, message),
                finished: once,
            })
        }
        _ => body,
    };
    Ok(Response::from_parts(parts, body))
}

/// Sends the response for `result`, with one audit record and metric.
pub(super) fn finish(
    app: &App,
    server: &Protected,
    trail: &Trail,
    result: Result<Response, GatewayError>,
    origin: Option<HeaderValue>,
) -> Response {
    let (mut response, decision, reason) = match result {
        Ok(response) => (response, "allow", None),
        Err(e) => {
            let decision = match &e {
                // The request was authorized; the upstream failed it.
                GatewayError::UpstreamUnavailable { .. } | GatewayError::UpstreamTimeout { .. } => {
                    "upstream_error"
                }
                _ => "deny",
            };
            let reason = e.reason();
            (e.into_response(Some(server)), decision, Some(reason))
        }
    };
    app.metrics.record_gateway_decision(&server.name, decision);
    let status = response.status().as_u16();
    if let Some(reason) = &reason {
        tracing::debug!(server = %server.name, status, %reason, "gateway refused a request");
    }
    let detail = AuditDetail {
        decision,
        method: trail.method.as_deref(),
        reason: reason.as_deref(),
        status,
        target: trail.target.as_deref(),
    };
    let principal = trail.principal.as_deref();
    app.gateway.journal.record(
        app,
        NewAuditEvent {
            ts: app.clock.now_ms(),
            kind: if decision == "deny" {
                "gateway.deny"
            } else {
                "gateway.allow"
            }
            .to_owned(),
            client_id: principal.map(|p| p.client_id().to_owned()),
            subject: principal.map(|p| p.subject().to_owned()),
            server: Some(server.name.to_string()),
            detail: detail.to_text(),
        },
    );
    cors::decorate(&mut response, origin);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::io::Error>),
        ))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many() {
        let headers = HeaderMap::new();
        let one = read_body(Body::from("{\"a\":1}"), &headers).await.unwrap();
        assert_eq!(&one[..], b"{\"a\":1}");
        let parts = vec![
            b"{\"a\"".to_vec(),
            Vec::new(),
            b":".to_vec(),
            b"1}".to_vec(),
        ];
        let many = read_body(chunked(parts), &headers).await.unwrap();
        assert_eq!(&many[..], b"{\"a\":1}");
        let big = vec![
            vec![b' '; MAX_BODY_BYTES / 2],
            vec![b' '; MAX_BODY_BYTES / 2 + 1],
        ];
        assert!(matches!(
            read_body(chunked(big), &headers).await,
            Err(GatewayError::PayloadTooLarge)
        ));
    }

    /// The audit chain is verified by re-serialising each stored detail as a
    /// `serde_json::Value`: the text written straight from the struct must be exactly
    /// that, whichever fields are present.
    #[test]
    fn audit_detail_text_is_what_a_value_writes() {
        let odd = "a \"quoted\"\n\u{e9}\u{1}</script>";
        for method in [None, Some("tools/call"), Some(odd)] {
            for reason in [None, Some("insufficient_scope"), Some(odd)] {
                for target in [None, Some("notes_read"), Some(odd)] {
                    let detail = AuditDetail {
                        decision: "deny",
                        method,
                        reason,
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
                    assert_eq!(value["target"].as_str(), target);
                    assert_eq!(value["status"], 403);
                }
            }
        }
    }
}
