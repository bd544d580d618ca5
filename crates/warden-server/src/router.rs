//! The one router: every role on one listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::future::{BoxFuture, Either};
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
        .layer(SetSensitiveRequestHeadersLayer::new(SENSITIVE_HEADERS))
        .with_state(app)
}

/// Request headers that carry credentials, marked sensitive before anything else runs.
const SENSITIVE_HEADERS: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// The route label of the gateway's endpoint in the HTTP metrics, as the router's
/// [`MatchedPath`] gives it.
const GATEWAY_ROUTE: &str = "/mcp/{name}";

/// What a listener serves: [`router`], except that the gateway's `/mcp/{name}` (the path
/// every MCP request of the fleet takes) goes straight to its handler.
///
/// The router's matching, its layers and the boxed services between them cost about a
/// tenth of a proxied request's CPU. The direct call does what they did for this route:
/// the credentials are marked sensitive and the HTTP metrics recorded under the same
/// label; the request span is the handler's own.
#[derive(Clone)]
pub struct Dispatch {
    /// Shared by every connection's copy: hyper clones the service for every request.
    shared: Arc<Shared>,
    /// The connection's peer, for handlers that ask for it (`None` in tests, where the
    /// router is given its own).
    peer: Option<SocketAddr>,
}

struct Shared {
    app: App,
    router: Router,
    /// The issuer's path, under which every route is also served (`""` for none).
    nested: String,
    /// The metrics label of the gateway route under `nested`.
    nested_route: String,
}

impl Dispatch {
    /// Serves `app` with [`router`].
    pub fn new(app: App) -> Self {
        let router = router(app.clone());
        Self::with_router(app, router)
    }

    /// Serves `app` with `router` (built by [`router`], perhaps with layers added).
    pub fn with_router(app: App, router: Router) -> Self {
        let nested = issuer_path(&app.config.issuer);
        let nested_route = format!("{nested}{GATEWAY_ROUTE}");
        Self {
            shared: Arc::new(Shared {
                app,
                router,
                nested,
                nested_route,
            }),
            peer: None,
        }
    }

    /// The same service for a connection from `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            peer: Some(peer),
        }
    }
}

impl<B> tower::Service<axum::http::Request<B>> for Dispatch
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let mut request = request.map(Body::new);
        let Some((name, nested)) = gateway_target(request.uri().path(), &self.shared.nested) else {
            // Only the router's handlers ask for the peer.
            if let Some(peer) = self.peer {
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            return Either::Left(tower::Service::call(
                &mut self.shared.router.clone(),
                request,
            ));
        };
        let name = name.to_owned();
        let shared = Arc::clone(&self.shared);
        Either::Right(Box::pin(async move {
            for name in &SENSITIVE_HEADERS {
                if let Some(v) = request.headers_mut().get_mut(name) {
                    v.set_sensitive(true);
                }
            }
            let route = if nested {
                &shared.nested_route
            } else {
                GATEWAY_ROUTE
            };
            let method = request.method().clone();
            let served = crate::gateway::serve(
                &shared.app,
                name,
                crate::gateway::Endpoint::Canonical,
                request,
            );
            Ok(measured(&shared.app, route, &method, served).await)
        }))
    }
}

/// The server name, and whether it came under `nested` (the issuer's path), when `path`
/// is the gateway's endpoint in a form the router would match to the same name: one
/// segment with nothing to percent-decode.
fn gateway_target<'p>(path: &'p str, nested: &str) -> Option<(&'p str, bool)> {
    let (rest, under) = match path.strip_prefix("/mcp/") {
        Some(rest) => (rest, false),
        None if !nested.is_empty() => (path.strip_prefix(nested)?.strip_prefix("/mcp/")?, true),
        None => return None,
    };
    let plain = !rest.is_empty() && !rest.bytes().any(|b| b == b'/' || b == b'%');
    plain.then_some((rest, under))
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
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    measured(&app, &route, &method, next.run(req)).await
}

/// Runs `answer` and records the HTTP metrics of its response under `route`.
async fn measured(
    app: &App,
    route: &str,
    method: &Method,
    answer: impl Future<Output = Response>,
) -> Response {
    let start = Instant::now();
    let response = answer.await;
    app.metrics.record_http(
        route,
        method.as_str(),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::gateway_target;

    #[test]
    fn gateway_target_takes_only_what_the_router_matches_alike() {
        assert_eq!(gateway_target("/mcp/notes", ""), Some(("notes", false)));
        assert_eq!(gateway_target("/mcp/notes", "/t"), Some(("notes", false)));
        assert_eq!(gateway_target("/t/mcp/notes", "/t"), Some(("notes", true)));
        for (path, nested) in [
            ("/mcp/", ""),
            ("/mcp/notes/", ""),
            ("/mcp/notes/message", ""),
            ("/mcp/no%74es", ""),
            ("/mcpx/notes", ""),
            ("/t/mcp/notes", ""),
            ("/tx/mcp/notes", "/t"),
            ("/t/mcp/", "/t"),
            ("/oauth/token", "/t"),
        ] {
            assert_eq!(
                gateway_target(path, nested),
                None,
                "{path} under {nested:?}"
            );
        }
    }
}
