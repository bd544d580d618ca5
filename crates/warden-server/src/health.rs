//! `/healthz` (the process is up), `/readyz` (the store answers) and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::App;

/// `Retry-After` (seconds) of every 503 Warden sends: a dependency (the store, an
/// issuer, an upstream) is down, and a client that retried at once would only add load.
pub const RETRY_AFTER_SECS: &str = "5";

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the store answers and a signing key is active.
pub async fn readyz(State(app): State<App>) -> Response {
    let store = app.store.ping().await;
    let key = app.keys.signing_key().is_some();
    let ready = store.is_ok() && key;
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: store ping failed");
    }
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "store": if store.is_ok() { "ok" } else { "unavailable" },
        "backend": app.store.backend_name(),
        "signing_key": if key { "ok" } else { "missing" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, warden_telemetry::CONTENT_TYPE)],
        app.metrics.render(),
    )
        .into_response()
}
