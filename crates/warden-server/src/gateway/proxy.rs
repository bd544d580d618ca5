//! The streaming reverse proxy to HTTP upstreams.
//!
//! Requests go out on a pooled HTTP/1.1 client (`http://`, or `https://` verified as
//! [`super::tls`] describes) with the client's identity headers stripped and the
//! gateway's credentials added. Answers stream back frame by frame: a JSON body or SSE
//! stream is only parsed when a list result in it must be filtered, and even then SSE
//! events are sent on as each completes.
//!
//! Stripped from requests: hop-by-hop headers (and any named in `Connection`), `Host`,
//! `Expect` (the body is already read), `Content-Length` (recomputed), `Accept-Encoding` (answers must stay readable for
//! filtering), `Origin`/`Referer` (the gateway checked the origin; the upstream only ever
//! sees the gateway), and every header an upstream might take as identity:
//! `Authorization`, `Cookie`, `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `X-User*`,
//! `X-Remote-*`, `Remote-User`, `X-Auth-Request-*`, `X-Authenticated-*`, `X-Warden-*`,
//! `X-Api-Key`, `X-Access-Token`, `X-Id-Token`, `X-Client-Cert`, `X-SSL-*`, `SSL-Client-*`,
//! `X-MS-Client-Principal*`, `X-Amzn-OIDC-*`, `X-Goog-Authenticated-*`, `X-Goog-IAP-*`,
//! `CF-Access-*`, `X-Original-URL`, `X-Rewrite-URL`. `Mcp-Session-Id` is replaced by the
//! upstream's own id (see [`super::session`]).
//!
//! Stripped from answers: hop-by-hop headers, `Set-Cookie` (the gateway's origin is
//! shared by every server behind it) and `WWW-Authenticate` (an upstream's challenge is
//! about the gateway's credentials, not the client's; an upstream 401 becomes 502).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::challenge::GatewayError;
use super::tls::{HttpsConnector, TrustRoots};

/// Time allowed to open a TCP connection to an upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest JSON answer read whole to filter a list result.
pub const MAX_FILTERED_BODY: usize = 16 * 1024 * 1024;

/// Idle pooled connections kept per upstream.
const POOL_IDLE_PER_HOST: usize = 256;

/// Distinct private CA bundles given their own pool; past this, a bundle's requests get
/// a fresh unpooled client (still verified), so a registry churning CAs cannot grow memory.
const MAX_PRIVATE_POOLS: usize = 256;

/// Headers never forwarded upstream, by exact (lower-case) name.
const STRIP_EXACT: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
    "accept-encoding",
    "origin",
    "referer",
    "authorization",
    // The client's DPoP proof (RFC 9449): bound to its token and to Warden's URI, it is
    // the client's credential and means nothing upstream.
    "dpop",
    "cookie",
    "forwarded",
    "x-real-ip",
    "remote-user",
    "x-api-key",
    "x-access-token",
    "x-id-token",
    "x-client-cert",
    "x-original-url",
    "x-rewrite-url",
    "mcp-session-id",
];

/// Headers never forwarded upstream, by (lower-case) prefix.
const STRIP_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-user",
    "x-remote-",
    "x-auth-request-",
    "x-authenticated-",
    "x-warden-",
    "x-ssl-",
    "ssl-client-",
    "x-ms-client-principal",
    "x-amzn-oidc-",
    "x-goog-authenticated-",
    "x-goog-iap-",
    "cf-access-",
];

/// Answer headers never passed back to the client.
const STRIP_FROM_ANSWER: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "www-authenticate",
];

/// The pooled client: one pool for upstreams under the public web PKI, one per private
/// CA bundle (see [`super::tls`]).
pub struct UpstreamClient {
    public: Client<HttpsConnector, Body>,
    private: RwLock<HashMap<[u8; 32], Client<HttpsConnector, Body>>>,
}

/// How an upstream exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Could not connect, or the connection failed before the answer's headers.
    Unavailable,
    /// No answer headers within the server's timeout.
    Timeout,
}

// === impl UpstreamClient ===

impl UpstreamClient {
    /// A client with a connection pool shared by all upstreams.
    pub fn new() -> Self {
        let public = match TrustRoots::public() {
            Ok(roots) => pooled(roots.connector(http_connector())),
            Err(e) => {
                // Only a broken crypto provider gets here; plain http still works.
                tracing::error!(error = %e, "cannot build the TLS client; https upstreams will fail");
                pooled(HttpsConnector::without_tls(http_connector()))
            }
        };
        Self {
            public,
            private: RwLock::default(),
        }
    }

    /// Sends `request`, waiting at most `timeout` for the answer's headers. The body of
    /// the answer is not limited in time: SSE streams may live for hours. An `https://`
    /// request is verified against `roots` (a server's own CA bundle) or, by default, the
    /// public web PKI.
    pub async fn send(
        &self,
        request: Request<Body>,
        timeout: Duration,
        roots: Option<&TrustRoots>,
    ) -> Result<Response<Body>, UpstreamFailure> {
        // `request` clones the client it is called on, so the shared one is borrowed.
        let private;
        let client = match roots {
            None => &self.public,
            Some(roots) => {
                private = self.private_pool(roots);
                &private
            }
        };
        match tokio::time::timeout(timeout, client.request(request)).await {
            Ok(Ok(response)) => Ok(response.map(Body::new)),
            Ok(Err(e)) => {
                // The source chain says why (refused, TLS certificate, …); it holds no
                // request material.
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(error = %e, cause, connect = e.is_connect(), "upstream request failed");
                Err(UpstreamFailure::Unavailable)
            }
            Err(_) => Err(UpstreamFailure::Timeout),
        }
    }

    fn private_pool(&self, roots: &TrustRoots) -> Client<HttpsConnector, Body> {
        let key = roots.key();
        let found = warden_core::sync::read_recovering(&self.private)
            .get(&key)
            .cloned();
        if let Some(client) = found {
            return client;
        }
        let client = pooled(roots.connector(http_connector()));
        let mut map = warden_core::sync::write_recovering(&self.private);
        if map.len() < MAX_PRIVATE_POOLS {
            map.entry(key).or_insert_with(|| client.clone());
        }
        client
    }
}

fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    // The TLS layer above handles `https://`.
    http.enforce_http(false);
    http
}

fn pooled(connector: HttpsConnector) -> Client<HttpsConnector, Body> {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .build(connector)
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamFailure {
    /// The error for the client, echoing JSON-RPC `id`.
    pub fn into_error(self, id: Value) -> GatewayError {
        match self {
            UpstreamFailure::Unavailable => GatewayError::UpstreamUnavailable { id },
            UpstreamFailure::Timeout => GatewayError::UpstreamTimeout { id },
        }
    }
}

// === headers ===

/// Whether a request header must not reach the upstream.
pub fn strip_from_request(name: &HeaderName) -> bool {
    let name = name.as_str();
    STRIP_EXACT.contains(&name) || STRIP_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Copies the forwardable headers of `incoming` into `out`.
pub fn forward_headers(incoming: &HeaderMap, out: &mut HeaderMap) {
    // Headers the client nominated as hop-by-hop in `Connection` go too.
    let nominated: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for (name, value) in incoming {
        if strip_from_request(name) || nominated.iter().any(|n| n == name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
}

/// Cleans an upstream answer's headers in place. One pass over the (few) headers of the
/// answer, rather than a lookup of every name to strip.
pub fn clean_answer_headers(headers: &mut HeaderMap) {
    let strip: Vec<HeaderName> = headers
        .keys()
        .filter(|name| STRIP_FROM_ANSWER.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in strip {
        headers.remove(name);
    }
}

/// Whether an answer is an SSE stream.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    media_type_is(headers, "text/event-stream")
}

fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// An upstream 401 is about the gateway's own credentials: the client cannot fix it, so
/// it becomes 502 (and is logged for the operator).
pub fn refused_gateway(status: StatusCode, server: &str) -> bool {
    if status == StatusCode::UNAUTHORIZED {
        tracing::error!(
            server,
            "the upstream refused the gateway's credentials; check its assertion or static_headers setup"
        );
        return true;
    }
    false
}

/// Reads an answer whole (bounded), for filtering.
pub async fn read_bounded(body: Body) -> Result<Bytes, UpstreamFailure> {
    Ok(Limited::new(body, MAX_FILTERED_BODY)
        .collect()
        .await
        .map_err(|_| UpstreamFailure::Unavailable)?
        .to_bytes())
}

/// Marks an SSE answer as not to be buffered by proxies in front of the gateway.
pub fn no_buffering(headers: &mut HeaderMap) {
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_hop_by_hop_headers_are_stripped() {
        let mut incoming = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Bearer client-token"),
            ("x-user", "admin"),
            ("x-forwarded-user", "admin"),
            ("x-user-email", "a@b"),
            ("x-remote-user", "admin"),
            ("x-auth-request-email", "a@b"),
            ("x-warden-subject", "admin"),
            ("forwarded", "for=1.2.3.4;user=admin"),
            ("cookie", "s=1"),
            ("connection", "x-custom"),
            ("x-custom", "hop"),
            ("mcp-session-id", "w1.x"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2025-11-25"),
            ("last-event-id", "e-1"),
            ("mcp-method", "tools/call"),
            ("mcp-param-region", "eu"),
            ("traceparent", "00-1-2-01"),
        ] {
            incoming.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let mut out = HeaderMap::new();
        forward_headers(&incoming, &mut out);
        let mut kept: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "content-type",
                "last-event-id",
                "mcp-method",
                "mcp-param-region",
                "mcp-protocol-version",
                "traceparent"
            ]
        );
    }
}
