//! `Origin` validation (DNS-rebinding defence) and CORS for browser MCP clients.
//!
//! A request with an `Origin` header must come from the gateway's own origin, a loopback
//! origin (local inspectors and IDEs), or an origin listed in the server's
//! `allowed_origins`; anything else is 403 before any other check. Requests without
//! `Origin` (non-browser clients) pass. Allowed browser origins get CORS headers that
//! expose `WWW-Authenticate` (so a browser client can read the challenge and discover the
//! authorization server) and `Mcp-Session-Id`. No credentials mode: tokens travel in
//! `Authorization`, never in cookies.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use url::Url;
use warden_core::uri::is_loopback_host;

use super::challenge::GatewayError;
use super::registry::Protected;

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "authorization, content-type, accept, last-event-id, mcp-session-id, \
     mcp-protocol-version, mcp-method, mcp-name",
);
const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version");

/// The request's `Origin` if it is allowed (to echo back), `None` if there is none.
pub fn check(server: &Protected, headers: &HeaderMap) -> Result<Option<HeaderValue>, GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let text = origin.to_str().map_err(|_| GatewayError::ForbiddenOrigin)?;
    let text = text.trim_end_matches('/');
    let allowed = text.eq_ignore_ascii_case(&server.public_origin)
        || server
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
        || is_loopback_origin(text);
    if allowed {
        Ok(Some(origin.clone()))
    } else {
        Err(GatewayError::ForbiddenOrigin)
    }
}

/// Whether `origin` is exactly `http(s)://` + a loopback host + an optional port.
pub fn is_loopback_origin(origin: &str) -> bool {
    let Ok(url) = Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host() else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && is_loopback_host(&host)
        // Nothing but scheme, host and port: the serialized origin must be the input.
        && url.origin().ascii_serialization().eq_ignore_ascii_case(origin)
}

/// The answer to a CORS preflight from an allowed (or absent) origin.
pub fn preflight(origin: Option<HeaderValue>, headers: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    out.insert(header::ALLOW, ALLOW_METHODS);
    if let Some(origin) = origin {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        // Echo the requested headers when they are plain header names (custom
        // `Mcp-Param-*` headers are open-ended), else the known list.
        let requested = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| {
                v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' '))
            })
            .cloned()
            .unwrap_or(ALLOW_HEADERS);
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// Adds CORS headers for an allowed browser `origin` to any response.
pub fn decorate(response: &mut Response, origin: Option<HeaderValue>) {
    let Some(origin) = origin else {
        return;
    };
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    out.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "https://127.0.0.1:8443",
            "http://[::1]:3000",
        ] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost:80/x",
            "file://localhost",
            "http://user@localhost",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }
}
