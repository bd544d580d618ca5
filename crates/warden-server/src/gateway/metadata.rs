//! Protected resource metadata (RFC 9728) for each registered server, at
//! `/.well-known/oauth-protected-resource/mcp/{name}`.
//!
//! The document is built once per registry refresh ([`super::registry::Protected`]):
//! `resource` is the server's canonical URI byte for byte (the audience its tokens must
//! carry), `authorization_servers` the issuer, `scopes_supported` the scopes of its tool
//! groups, `bearer_methods_supported` only `header`. It is public, so any origin may
//! read it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::challenge::GatewayError;
use super::registry::Lookup;
use crate::App;

/// `GET /.well-known/oauth-protected-resource/mcp/{name}`.
pub async fn protected_resource(State(app): State<App>, Path(name): Path<String>) -> Response {
    let server = match app.gateway.registry.lookup(&app, &name).await {
        Lookup::Found(server) => server,
        Lookup::Missing => return GatewayError::UnknownServer.into_response(None),
        Lookup::Unavailable => return GatewayError::ServerUnavailable.into_response(None),
    };
    let mut response = Response::new(Body::from(server.metadata.clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Short: a registry change should reach clients within a minute.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `OPTIONS` on the metadata document: any origin may `GET` it.
pub async fn preflight() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}
