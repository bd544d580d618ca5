//! The one router: every role on one listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::future::{BoxFuture, Either, FutureExt as _, Map};
use serde_json::json;
use tower::builder::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::{Layer, Service};
use tower_http::classify::{
    NeverClassifyEos, ServerErrorsAsFailures, ServerErrorsFailureClass, SharedClassifier,
};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, ResponseBody, TraceLayer,
};

use crate::{health, oauth, App};

/// Largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the router for `app`, every route under [`layers`].
///
/// When the issuer has a path (`https://auth.example.com/tenant`), every route is also
/// served under that path (for proxies that do not strip it), and the discovery documents
/// are also served at the path-inserted locations of RFC 8414 §3.1 and OIDC Discovery.
pub fn router(app: App) -> Router {
    let path = warden_core::uri::issuer_path(&app.config.issuer);
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
        .layer(layers(&app, UNMATCHED))
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

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The layer stack of [`layers`].
type Layers = ServiceBuilder<
    Stack<
        MetricsLayer,
        Stack<
            TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeRequestSpan>,
            Stack<SetSensitiveRequestHeadersLayer, Identity>,
        >,
    >,
>;

/// `S` under [`layers`].
type Layered<S> = <Layers as Layer<S>>::Service;

/// The body of a response that passed through [`layers`] outside the router.
type LayeredBody = ResponseBody<
    Body,
    NeverClassifyEos<ServerErrorsFailureClass>,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

/// The body of a [`Dispatch`] response: from the router, or from the gateway's direct
/// service.
pub type DispatchBody = http_body_util::Either<Body, LayeredBody>;

/// Every layer a request passes through, outermost first: the one place layers are
/// declared. [`router`] applies it to each of its routes and [`Dispatch`] to the
/// gateway's direct service, so a layer added here cannot be skipped by either.
/// `route` labels the HTTP metrics of a request the router did not match.
fn layers(app: &App, route: &str) -> Layers {
    ServiceBuilder::new()
        // Marks credentials so that no layer's Debug output prints them.
        .layer(SetSensitiveRequestHeadersLayer::new(SENSITIVE_HEADERS))
        .layer(TraceLayer::new_for_http().make_span_with(request_span as MakeRequestSpan))
        .layer(MetricsLayer {
            app: app.clone(),
            route: route.into(),
        })
}

/// How the trace layer opens a request's span.
type MakeRequestSpan = fn(&Request<Body>) -> tracing::Span;

/// The span of a request: its method and path, never its query, where a misplaced token
/// (`?access_token=`, refused by the gateway) or a code would be.
fn request_span(request: &Request<Body>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        version = ?request.version(),
    )
}

/// What a listener serves: [`router`], except that the gateway's `/mcp/{name}` (the path
/// every MCP request of the fleet takes) goes straight to its handler, under the same
/// [`layers`].
///
/// The router's matching and the boxed services between its layers cost about a tenth
/// of a proxied request's CPU. The direct service skips those, not the layers.
#[derive(Clone)]
pub struct Dispatch {
    /// Shared by every connection's copy: hyper clones the service for every request.
    shared: Arc<Shared>,
    /// The connection's peer, for handlers that ask for it (`None` in tests, where the
    /// router is given its own).
    peer: Option<SocketAddr>,
}

struct Shared {
    router: Router,
    /// The gateway's endpoint, at the root and under `nested`.
    gateway: Layered<Gateway>,
    nested_gateway: Layered<Gateway>,
    /// The issuer's path, under which every route is also served (`""` for none).
    nested: String,
}

/// `/mcp/{name}` without the router: what [`Dispatch`] puts under [`layers`].
#[derive(Clone)]
struct Gateway {
    app: App,
}

/// Records the HTTP metrics of each response, under the route the router matched, or
/// the service's own.
#[derive(Clone)]
struct MetricsLayer {
    app: App,
    route: Arc<str>,
}

/// See [`MetricsLayer`].
#[derive(Clone)]
struct RecordMetrics<S> {
    inner: S,
    app: App,
    route: Arc<str>,
}

/// A response on its way, with what its metrics need.
struct Measured<F> {
    inner: F,
    app: App,
    route: RouteLabel,
    method: Method,
    start: Instant,
}

/// The metrics label of a request's route.
enum RouteLabel {
    Matched(MatchedPath),
    Own(Arc<str>),
}

/// The answer of a [`Dispatch`].
pub struct DispatchFuture(Either<RouterFuture, GatewayFuture>);

/// A response from the router.
type RouterFuture = Map<RouteFuture<Infallible>, ToDispatchBody<Body>>;

/// A response from the gateway's direct service.
type GatewayFuture =
    Map<<Layered<Gateway> as Service<Request<Body>>>::Future, ToDispatchBody<LayeredBody>>;

type ToDispatchBody<B> =
    fn(Result<Response<B>, Infallible>) -> Result<Response<DispatchBody>, Infallible>;

// === impl Dispatch ===

impl Dispatch {
    /// Serves `app` with [`router`].
    pub fn new(app: App) -> Self {
        let router = router(app.clone());
        Self::with_router(app, router)
    }

    /// Serves `app` with `router` (built by [`router`], perhaps with layers added).
    pub fn with_router(app: App, router: Router) -> Self {
        let nested = warden_core::uri::issuer_path(&app.config.issuer);
        let nested_route = format!("{nested}{GATEWAY_ROUTE}");
        let gateway = Gateway { app: app.clone() };
        Self {
            shared: Arc::new(Shared {
                router,
                gateway: layers(&app, GATEWAY_ROUTE).service(gateway.clone()),
                nested_gateway: layers(&app, &nested_route).service(gateway),
                nested,
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

impl<B> Service<Request<B>> for Dispatch
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<DispatchBody>;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut request = request.map(Body::new);
        let Some((_, nested)) = gateway_target(request.uri().path(), &self.shared.nested) else {
            // Only the router's handlers ask for the peer.
            if let Some(peer) = self.peer {
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            let routed = self.shared.router.clone().call(request);
            return DispatchFuture(Either::Left(
                routed.map(from_router as ToDispatchBody<Body>),
            ));
        };
        let mut gateway = if nested {
            self.shared.nested_gateway.clone()
        } else {
            self.shared.gateway.clone()
        };
        let served = gateway.call(request);
        DispatchFuture(Either::Right(
            served.map(from_gateway as ToDispatchBody<LayeredBody>),
        ))
    }
}

fn from_router(answer: Result<Response, Infallible>) -> Result<Response<DispatchBody>, Infallible> {
    answer.map(|r| r.map(http_body_util::Either::Left))
}

fn from_gateway(
    answer: Result<Response<LayeredBody>, Infallible>,
) -> Result<Response<DispatchBody>, Infallible> {
    answer.map(|r| r.map(http_body_util::Either::Right))
}

impl Future for DispatchFuture {
    type Output = Result<Response<DispatchBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

// === impl Gateway ===

impl Service<Request<Body>> for Gateway {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let app = self.app.clone();
        Box::pin(async move {
            // The path was matched by `Dispatch`: the name is its last segment.
            let name = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            Ok(
                crate::gateway::serve(&app, name, crate::gateway::Endpoint::Canonical, request)
                    .await,
            )
        })
    }
}

// === impl MetricsLayer ===

impl<S> Layer<S> for MetricsLayer {
    type Service = RecordMetrics<S>;

    fn layer(&self, inner: S) -> RecordMetrics<S> {
        RecordMetrics {
            inner,
            app: self.app.clone(),
            route: Arc::clone(&self.route),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for RecordMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Unpin,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Measured<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = match request.extensions().get::<MatchedPath>() {
            Some(matched) => RouteLabel::Matched(matched.clone()),
            None => RouteLabel::Own(Arc::clone(&self.route)),
        };
        let method = request.method().clone();
        Measured {
            inner: self.inner.call(request),
            app: self.app.clone(),
            route,
            method,
            start: Instant::now(),
        }
    }
}

impl<F, ResBody, E> Future for Measured<F>
where
    F: Future<Output = Result<Response<ResBody>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll(cx));
        if let Ok(response) = &result {
            let route = match &this.route {
                RouteLabel::Matched(matched) => matched.as_str(),
                RouteLabel::Own(own) => own,
            };
            this.app.metrics.record_http(
                route,
                this.method.as_str(),
                response.status().as_u16(),
                this.start.elapsed(),
            );
        }
        Poll::Ready(result)
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
        .route(
            "/oauth/login/federated",
            post(oauth::authorize::login_federated),
        )
        .route("/oauth/federated/callback", get(oauth::federated::callback))
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
