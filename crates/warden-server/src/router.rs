//! The one router: every role on one listener.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::{health, oauth, App};

/// Largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the router for `app`.
///
/// When the issuer has a path (`https://auth.example.com/tenant`), every route is also
/// served under that path (for proxies that do not strip it), and the discovery documents
/// are also served at the path-inserted locations of RFC 8414 §3.1 and OIDC Discovery.
pub fn router(app: App) -> Router {
    let path = issuer_path(&app.config.issuer);
    let routes = routes(&app);
    let mut router = Router::new().merge(routes.clone());
    if !path.is_empty() {
        router = router
            .route(
                &format!("/.well-known/oauth-authorization-server{path}"),
                get(oauth::metadata::metadata),
            )
            .route(
                &format!("/.well-known/openid-configuration{path}"),
                get(oauth::metadata::metadata),
            )
            .nest(&path, routes);
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), record_metrics))
        .layer(TraceLayer::new_for_http())
        // Marks credentials so that no layer's Debug output prints them.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
        .with_state(app)
}

/// The path component of an issuer URL, without a trailing slash (`""` for none).
pub fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

fn routes(app: &App) -> Router<App> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::metadata::metadata),
        )
        .route("/oauth/jwks.json", get(oauth::metadata::jwks))
        .route("/oauth/token", post(oauth::token::token))
        .route("/oauth/revoke", post(oauth::revoke::revoke))
        .route("/oauth/introspect", post(oauth::introspect::introspect))
        .route("/oauth/register", post(oauth::register::register))
        .route("/oauth/authorize", get(oauth::authorize::authorize))
        .route("/oauth/login", post(oauth::authorize::login))
        .route("/oauth/consent", post(oauth::authorize::consent))
        .route(
            "/oauth/logout",
            get(oauth::authorize::logout_form).post(oauth::authorize::logout),
        )
        .route(
            "/oauth/static/warden.css",
            get(oauth::authorize::stylesheet),
        )
        .merge(crate::admin::routes(app))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // The gateway applies its own, larger limit (tool arguments can be big) and answers
        // an oversized body with a JSON-RPC error, so it sits outside the 1 MiB layer.
        .merge(crate::gateway::routes())
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response()
}

async fn record_metrics(State(app): State<App>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let resp = next.run(req).await;
    app.metrics.record_http(
        &route,
        method.as_str(),
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}
