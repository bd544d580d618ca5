//! The Streamable HTTP transport: `POST`, `GET` and `DELETE` on the MCP endpoint.
//!
//! Header checks happen here, in the order the spec implies: Origin (403), then media
//! types (415/406), then the body (400), then — for anything but `initialize` — the
//! session (400/404) and the `MCP-Protocol-Version` header (400). Every refusal is one
//! [`TransportError`], mapped to a status and a JSON-RPC error body in one place.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use tracing::{debug, instrument, Span};

use crate::jsonrpc::{self, Incoming, Malformed, Request, RpcError};
use crate::methods;
use crate::sse;
use crate::tools::Identity;
use crate::DemoState;

/// The session header, as lower-case `http` header names are spelled.
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol version header.
pub(crate) const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";

/// Why the transport refused a request before any method ran.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// `Origin` was present and not allowed (DNS-rebinding defence).
    ForbiddenOrigin,
    /// The POST body was not declared as `application/json`.
    UnsupportedMediaType,
    /// `Accept` allowed neither `application/json` nor `text/event-stream`.
    NotAcceptable,
    /// A `GET` whose `Accept` does not ask for `text/event-stream`.
    SseNotAccepted,
    /// The body was not JSON.
    Parse,
    /// The body was a JSON-RPC batch.
    Batch,
    /// The body was JSON but not a JSON-RPC message.
    InvalidMessage { id: Value },
    /// No `Mcp-Session-Id` on a request that needs one.
    MissingSession,
    /// `Mcp-Session-Id` names no live session (never issued, deleted or evicted).
    UnknownSession,
    /// `MCP-Protocol-Version` names a revision this server does not speak.
    UnsupportedProtocolVersion,
    /// Something that cannot happen did; the detail is logged, not sent.
    Internal,
}

/// What a POST's `Accept` header allows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Accept {
    /// `application/json`, `application/*` or `*/*`.
    json: bool,
    /// `text/event-stream` listed by name (or `text/*`): SSE is used only when asked for
    /// explicitly, so plain clients sending `*/*` always get JSON.
    sse: bool,
}

// === impl TransportError ===

impl IntoResponse for TransportError {
    fn into_response(self) -> Response {
        let (status, code, message, id) = match self {
            Self::ForbiddenOrigin => (
                StatusCode::FORBIDDEN,
                jsonrpc::TRANSPORT_ERROR,
                "Forbidden: Origin not allowed",
                Value::Null,
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                jsonrpc::TRANSPORT_ERROR,
                "Unsupported Media Type: Content-Type must be application/json",
                Value::Null,
            ),
            Self::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                jsonrpc::TRANSPORT_ERROR,
                "Not Acceptable: Accept must allow application/json and text/event-stream",
                Value::Null,
            ),
            Self::SseNotAccepted => (
                StatusCode::METHOD_NOT_ALLOWED,
                jsonrpc::TRANSPORT_ERROR,
                "Method Not Allowed: GET opens an SSE stream; Accept must allow text/event-stream",
                Value::Null,
            ),
            Self::Parse => (
                StatusCode::BAD_REQUEST,
                jsonrpc::PARSE_ERROR,
                "Parse error",
                Value::Null,
            ),
            Self::Batch => (
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported",
                Value::Null,
            ),
            Self::InvalidMessage { id } => (
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request",
                id,
            ),
            Self::MissingSession => (
                StatusCode::BAD_REQUEST,
                jsonrpc::TRANSPORT_ERROR,
                "Bad Request: Mcp-Session-Id header is required",
                Value::Null,
            ),
            Self::UnknownSession => (
                StatusCode::NOT_FOUND,
                jsonrpc::SESSION_NOT_FOUND,
                "Session not found",
                Value::Null,
            ),
            Self::UnsupportedProtocolVersion => (
                StatusCode::BAD_REQUEST,
                jsonrpc::TRANSPORT_ERROR,
                "Bad Request: Unsupported MCP-Protocol-Version",
                Value::Null,
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                jsonrpc::INTERNAL_ERROR,
                "Internal error",
                Value::Null,
            ),
        };
        let error = RpcError {
            code,
            message: message.to_owned(),
            data: None,
        };
        let mut response = (status, Json(jsonrpc::failure(&id, &error))).into_response();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        }
        response
    }
}

// === handlers ===

/// `POST /mcp`: one JSON-RPC message in, one response (JSON or SSE) or `202` out.
#[instrument(skip_all, fields(rpc.method = tracing::field::Empty))]
pub(crate) async fn post_mcp(
    State(state): State<DemoState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_post(state, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle_post(
    state: DemoState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, TransportError> {
    check_origin(&state, headers)?;
    if !is_json_content_type(headers) {
        return Err(TransportError::UnsupportedMediaType);
    }
    let accept = Accept::from_headers(headers);
    if !accept.json && !accept.sse {
        return Err(TransportError::NotAcceptable);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| TransportError::Parse)?;
    let message = jsonrpc::classify(value).map_err(|malformed| match malformed {
        Malformed::Batch => TransportError::Batch,
        Malformed::Invalid { id } => TransportError::InvalidMessage { id },
    })?;

    if let Incoming::Request(request) = &message {
        Span::current().record("rpc.method", request.method.as_str());
        if request.method == "initialize" && session_id(headers).is_none() {
            return initialize(&state, accept, request);
        }
    }

    require_session(&state, headers)?;
    check_protocol_version(headers)?;
    match message {
        Incoming::Notification { method } => {
            debug!(rpc.method = %method, "notification accepted");
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Incoming::Response => Ok(StatusCode::ACCEPTED.into_response()),
        Incoming::Request(request) => Ok(answer(state, headers, accept, request)),
    }
}

/// `initialize` without a session: answer it and, if it succeeded, start a session.
fn initialize(
    state: &DemoState,
    accept: Accept,
    request: &Request,
) -> Result<Response, TransportError> {
    let (body, session) = match methods::initialize(&request.params) {
        Ok(result) => (
            jsonrpc::success(&request.id, result),
            Some(state.sessions.create()),
        ),
        Err(error) => (jsonrpc::failure(&request.id, &error), None),
    };
    let mut response = reply(accept, body);
    if let Some(session) = session {
        let value = HeaderValue::from_str(&session).map_err(|_| {
            tracing::error!("generated session id is not a valid header value");
            TransportError::Internal
        })?;
        response.headers_mut().insert(SESSION_HEADER, value);
        debug!(sessions = state.sessions.len(), "session started");
    }
    Ok(response)
}

fn answer(state: DemoState, headers: &HeaderMap, accept: Accept, request: Request) -> Response {
    let identity = Identity::from_headers(headers);
    if request.method == "tools/call" && accept.sse {
        if let Some(token) = jsonrpc::progress_token(&request.params) {
            return sse::progress_response(state, identity, request, token);
        }
    }
    reply(accept, methods::answer(&state, &identity, &request))
}

/// One complete JSON-RPC message, as JSON when the client takes it, else as SSE.
fn reply(accept: Accept, message: Value) -> Response {
    if accept.json {
        Json(message).into_response()
    } else {
        sse::single_message(message)
    }
}

/// `GET /mcp`: the session's stream for server-initiated messages.
#[instrument(skip_all)]
pub(crate) async fn get_mcp(State(state): State<DemoState>, headers: HeaderMap) -> Response {
    handle_get(&state, &headers).unwrap_or_else(IntoResponse::into_response)
}

fn handle_get(state: &DemoState, headers: &HeaderMap) -> Result<Response, TransportError> {
    check_origin(state, headers)?;
    if !Accept::from_headers(headers).sse {
        return Err(TransportError::SseNotAccepted);
    }
    let id = session_id(headers).ok_or(TransportError::MissingSession)?;
    let session_closed = state
        .sessions
        .subscribe(id)
        .ok_or(TransportError::UnknownSession)?;
    check_protocol_version(headers)?;
    // Resumption is accepted but there is nothing to replay: this server never sends
    // messages on the GET stream, and POST streams end with their response.
    if headers.contains_key("last-event-id") {
        debug!("Last-Event-ID received; nothing to replay");
    }
    Ok(sse::listen_response(
        session_closed,
        state.shutdown.subscribe(),
        state.keepalive,
    ))
}

/// `DELETE /mcp`: end the session.
#[instrument(skip_all)]
pub(crate) async fn delete_mcp(State(state): State<DemoState>, headers: HeaderMap) -> Response {
    handle_delete(&state, &headers).unwrap_or_else(IntoResponse::into_response)
}

fn handle_delete(state: &DemoState, headers: &HeaderMap) -> Result<Response, TransportError> {
    check_origin(state, headers)?;
    let id = session_id(headers).ok_or(TransportError::MissingSession)?;
    check_protocol_version(headers)?;
    if state.sessions.remove(id) {
        debug!(sessions = state.sessions.len(), "session ended");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(TransportError::UnknownSession)
    }
}

// === header checks ===

/// The `Mcp-Session-Id` value, if the header is present. A value that is not visible
/// ASCII cannot be a session this server issued; it is returned as an empty string so
/// that it is reported as unknown (404) rather than missing (400).
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SESSION_HEADER)
        .map(|value| value.to_str().unwrap_or_default())
}

fn require_session(state: &DemoState, headers: &HeaderMap) -> Result<(), TransportError> {
    let id = session_id(headers).ok_or(TransportError::MissingSession)?;
    if state.sessions.contains(id) {
        Ok(())
    } else {
        Err(TransportError::UnknownSession)
    }
}

/// Absent is fine (the spec says to assume 2025-03-26); present must be supported.
fn check_protocol_version(headers: &HeaderMap) -> Result<(), TransportError> {
    match headers.get(PROTOCOL_VERSION_HEADER) {
        None => Ok(()),
        Some(value) => match value.to_str() {
            Ok(version) if methods::is_supported_version(version.trim()) => Ok(()),
            _ => Err(TransportError::UnsupportedProtocolVersion),
        },
    }
}

fn check_origin(state: &DemoState, headers: &HeaderMap) -> Result<(), TransportError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(_) if state.any_origin => Ok(()),
        Some(origin) => match origin.to_str() {
            Ok(origin) if is_loopback_origin(origin) => Ok(()),
            _ => Err(TransportError::ForbiddenOrigin),
        },
    }
}

/// Whether `origin` is `http(s)://` localhost, 127.0.0.1 or [::1], with any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    let port_ok = authority[host.len()..]
        .strip_prefix(':')
        .map_or(authority.len() == host.len(), |port| {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok
        && matches!(
            host.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "[::1]"
        )
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

// === impl Accept ===

impl Accept {
    /// Parses `Accept`. A missing header accepts anything (as `*/*`); entries with `q=0`
    /// are refusals and are skipped.
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut accept = Self {
            json: false,
            sse: false,
        };
        let mut any_header = false;
        for value in headers.get_all(header::ACCEPT) {
            any_header = true;
            let Ok(value) = value.to_str() else { continue };
            for entry in value.split(',') {
                let mut parts = entry.split(';');
                let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
                let refused = parts.any(|param| {
                    let param = param.trim().replace(' ', "");
                    param
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                if refused {
                    continue;
                }
                match media.as_str() {
                    "*/*" => accept.json = true,
                    "application/json" | "application/*" => accept.json = true,
                    "text/event-stream" | "text/*" => accept.sse = true,
                    _ => {}
                }
            }
        }
        if !any_header {
            accept.json = true;
        }
        accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Accept {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        Accept::from_headers(&headers)
    }

    #[test]
    fn accept_parsing() {
        let both = Accept {
            json: true,
            sse: true,
        };
        assert_eq!(accept("application/json, text/event-stream"), both);
        assert_eq!(accept("text/event-stream;q=0.9,application/json"), both);
        assert_eq!(
            accept("*/*"),
            Accept {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            accept("text/event-stream"),
            Accept {
                json: false,
                sse: true
            }
        );
        assert_eq!(
            accept("application/json;q=0, text/event-stream"),
            Accept {
                json: false,
                sse: true
            }
        );
        assert_eq!(
            accept("image/png"),
            Accept {
                json: false,
                sse: false
            }
        );
        assert!(Accept::from_headers(&HeaderMap::new()).json);
    }

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "https://127.0.0.1:8443",
            "http://[::1]:3000",
            "http://LOCALHOST:1",
        ] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost:",
            "http://localhost:80/x",
            "file://localhost",
            "http://[::1]x",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }

    #[test]
    fn json_content_type() {
        let mut headers = HeaderMap::new();
        assert!(!is_json_content_type(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json_content_type(&headers));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&headers));
    }
}
