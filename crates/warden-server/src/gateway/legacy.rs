//! The legacy HTTP+SSE transport (MCP 2024-11-05), proxied with the same checks as
//! Streamable HTTP.
//!
//! A server is legacy when `settings.transport` is `"sse"`, or when its upstream URL's
//! path ends in `/sse` and `transport` is not set (see [`Upstream::parse`]).
//!
//! - `GET /mcp/{name}` (the canonical URI) opens the upstream's event stream. Its first
//!   event, `endpoint`, names where the client must POST; the gateway replaces it with its
//!   own URL, `{canonical_uri}/message?sessionId=<id>`, where `<id>` carries the upstream's
//!   path and query under a MAC bound to the server and the token's `sub` and
//!   `client_id` (the same construction as [`super::session`] ids). A client can neither
//!   read nor change where its messages go, and another identity's `sessionId` is
//!   "Session not found". The endpoint must be on the upstream's own origin.
//! - `POST {canonical_uri}/message?sessionId=<id>` carries one JSON-RPC message. It goes
//!   through the gateway's one pipeline ([`super::handler`]), as a Streamable HTTP POST
//!   does (token, `Mcp-Method` headers, scope per tool, resource and prompt), and is
//!   forwarded to the upstream's endpoint ([`endpoint_of`]); its answer (normally
//!   `202 Accepted`) is passed back, a list result in it filtered. A refusal is an HTTP
//!   error with a JSON-RPC error body, which legacy clients surface as the call's error.
//! - Responses arrive on the event stream; list results there are filtered like any
//!   other stream's, so nothing is listed that a call would be refused.
//!
//! `POST` and `DELETE` on the canonical URI of a legacy server are `405`, which is how a
//! client that tries Streamable HTTP first learns to fall back. Tool pinning declared at
//! `initialize` (`warden/intendedTools`) is refused on this transport: the endpoint is
//! issued before `initialize`, so there is nowhere to carry the pin. Pins in the token
//! (`authorization_details`) apply as usual.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Uri};
use axum::response::Response;
use futures_util::{stream, StreamExt as _};
use http_body_util::BodyDataStream;
use serde_json::Value;

use super::authorize::Visibility;
use super::challenge::GatewayError;
use super::handler;
use super::proxy;
use super::registry::{Protected, Upstream};
use super::session::SESSION_HEADER;
use super::sse::{self, Rewrite, Splitter, StreamError, MAX_EVENT_BYTES};
use super::validate::Principal;
use crate::App;

/// The query parameter of the gateway's message URL.
pub const SESSION_PARAM: &str = "sessionId";

/// Marks a session id's upstream part as a legacy endpoint, so no other kind of id is
/// ever taken for one.
const ENDPOINT_MARK: &str = "sse:";

/// What the event-stream rewriter needs.
struct Endpoint {
    app: App,
    server: Arc<Protected>,
    principal: Arc<Principal>,
    /// The upstream's SSE URL, against which a relative endpoint resolves.
    base: url::Url,
}

/// `GET` on a legacy server's canonical URI: the upstream's event stream, its `endpoint`
/// rewritten and its list results filtered.
pub(super) async fn open_stream(
    app: &App,
    server: &Arc<Protected>,
    principal: &Arc<Principal>,
    method: &Method,
    client_headers: &HeaderMap,
    now: i64,
) -> Result<Response, GatewayError> {
    if method != Method::GET {
        return Err(GatewayError::MethodNotAllowed);
    }
    let Upstream::LegacySse { uri, .. } = &server.upstream else {
        return Err(GatewayError::Internal("not a legacy upstream"));
    };
    let base = url::Url::parse(&uri.to_string())
        .map_err(|_| GatewayError::Internal("legacy upstream URL"))?;
    let mut outgoing = handler::upstream_request(
        app,
        server,
        principal,
        Method::GET,
        client_headers,
        None,
        Body::empty(),
        now,
        || Value::Null,
    )
    .await?;
    outgoing.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    let response = handler::send(app, server, outgoing, || Value::Null).await?;
    let (mut parts, body) = response.into_parts();
    if proxy::refused_gateway(parts.status, &server.name) {
        return Err(GatewayError::UpstreamUnavailable { id: Value::Null });
    }
    if !parts.status.is_success() || !proxy::is_event_stream(&parts.headers) {
        tracing::warn!(
            server = %server.name,
            status = parts.status.as_u16(),
            "the legacy upstream did not open an event stream"
        );
        return Err(GatewayError::UpstreamUnavailable { id: Value::Null });
    }
    proxy::clean_answer_headers(&mut parts.headers);
    parts.headers.remove(&SESSION_HEADER);
    parts.headers.remove(header::CONTENT_LENGTH);
    proxy::no_buffering(&mut parts.headers);
    let endpoint = Endpoint {
        app: app.clone(),
        server: Arc::clone(server),
        principal: Arc::clone(principal),
        base,
    };
    Ok(Response::from_parts(parts, rewrite_stream(body, endpoint)))
}

/// The upstream URL a `sessionId` stands for, if it verifies for this identity.
pub(super) fn endpoint_of(
    app: &App,
    server: &Protected,
    principal: &Principal,
    query: Option<&str>,
) -> Option<Uri> {
    let (_, id) =
        url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == SESSION_PARAM)?;
    let id = HeaderValue::from_str(&id).ok()?;
    let session = app.gateway.sessions.unwrap(&server.name, principal, &id)?;
    let path = session
        .upstream
        .as_deref()?
        .strip_prefix(ENDPOINT_MARK)?
        .to_owned();
    let Upstream::LegacySse { uri, .. } = &server.upstream else {
        return None;
    };
    format!("{}://{}{path}", uri.scheme_str()?, uri.authority()?)
        .parse()
        .ok()
}

// === impl Endpoint ===

impl Endpoint {
    /// The gateway's `endpoint` event for the upstream's `event`; `None` if the upstream's
    /// endpoint is unusable (not on its own origin, or not a URL).
    fn rewrite(&self, event: &[u8]) -> Option<Bytes> {
        let text = std::str::from_utf8(event).ok()?;
        let data: Vec<&str> = text.lines().filter_map(|l| field(l, "data")).collect();
        let target = self.base.join(data.join("\n").trim()).ok()?;
        if target.origin() != self.base.origin() {
            tracing::error!(server = %self.server.name, "the legacy upstream's endpoint is on another origin");
            return None;
        }
        let mut path = target.path().to_owned();
        if let Some(q) = target.query() {
            path.push('?');
            path.push_str(q);
        }
        let id = self.app.gateway.sessions.wrap(
            &self.server.name,
            &self.principal,
            Some(&format!("{ENDPOINT_MARK}{path}")),
            None,
        )?;
        let id = id.to_str().ok()?;
        Some(Bytes::from(format!(
            "event: endpoint\ndata: {}/message?{SESSION_PARAM}={id}\n\n",
            self.server.canonical_uri
        )))
    }

    /// Filters a list result in a message event.
    fn filter(&self, visibility: &Visibility, event: Bytes) -> Bytes {
        let (rewritten, _) = sse::rewrite_event(&event, &mut |message: &mut Value| Rewrite {
            changed: visibility.filter_response(None, message),
            finished: false,
        });
        rewritten.unwrap_or(event)
    }
}

/// The SSE event type of `event` (`message` if it names none).
fn event_type(event: &[u8]) -> &str {
    std::str::from_utf8(event)
        .ok()
        .and_then(|t| t.lines().find_map(|l| field(l, "event")))
        .unwrap_or("message")
}

/// The value of SSE field `name` on `line`.
fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let rest = line.trim_end_matches('\r').strip_prefix(name)?;
    let value = rest.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

/// The upstream's event stream, event by event: `endpoint` rewritten, list results
/// filtered, everything else passed on as it completes.
fn rewrite_stream(body: Body, endpoint: Endpoint) -> Body {
    let visibility = Visibility::new(
        Arc::clone(&endpoint.server),
        Arc::clone(&endpoint.principal),
        None,
    );
    struct St {
        upstream: BodyDataStream<Body>,
        splitter: Splitter,
        ready: VecDeque<Bytes>,
        ended: bool,
        endpoint: Endpoint,
        visibility: Visibility,
    }
    let state = St {
        upstream: BodyDataStream::new(body),
        splitter: Splitter::default(),
        ready: VecDeque::new(),
        ended: false,
        endpoint,
        visibility,
    };
    Body::from_stream(stream::unfold(state, |mut st| async move {
        loop {
            if let Some(out) = st.ready.pop_front() {
                return Some((Ok(out), st));
            }
            if st.ended {
                return None;
            }
            match st.upstream.next().await {
                // An incomplete trailing event is dropped: it was never a whole event.
                None => return None,
                Some(Err(_)) => {
                    st.ended = true;
                    return Some((Err(StreamError), st));
                }
                Some(Ok(chunk)) => {
                    st.splitter.push(&chunk);
                    while let Some(event) = st.splitter.next_event() {
                        if event_type(&event) == "endpoint" {
                            match st.endpoint.rewrite(&event) {
                                Some(out) => st.ready.push_back(out),
                                None => {
                                    st.ended = true;
                                    return Some((Err(StreamError), st));
                                }
                            }
                        } else {
                            let out = st.endpoint.filter(&st.visibility, event);
                            st.ready.push_back(out);
                        }
                    }
                    if st.splitter.pending() > MAX_EVENT_BYTES {
                        st.ended = true;
                        return Some((Err(StreamError), st));
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields() {
        assert_eq!(event_type(b"event: endpoint\ndata: /m?s=1\n\n"), "endpoint");
        assert_eq!(event_type(b"data: {}\n\n"), "message");
        assert_eq!(event_type(b"event:message\r\ndata: {}\r\n\r\n"), "message");
        assert_eq!(field("data: x", "data"), Some("x"));
        assert_eq!(field("data:x", "data"), Some("x"));
        assert_eq!(field("datum: x", "data"), None);
    }
}
