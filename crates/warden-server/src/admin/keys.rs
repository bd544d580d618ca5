//! Signing keys through the admin API: `/admin/v1/keys`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;
use warden_proto::admin::{KeyView, RotateKey};
use warden_store::KeyStore;

use super::auth::Caller;
use super::{audit, parse_body, Actor, AdminError, Subjects, PREFIX};
use crate::keyring::KeyRingError;
use crate::{rotation, App};

/// Every signing key with its state and dates.
pub async fn list(app: &App) -> Result<Vec<KeyView>, AdminError> {
    let now = app.clock.now();
    Ok(KeyStore::list(&app.store)
        .await?
        .iter()
        .map(|k| rotation::view(k, now))
        .collect())
}

/// Rotates now: a new key, published at once, that signs after the publish-ahead period
/// (or at once with `immediate`). Refused while a rotation is in progress.
pub async fn rotate(app: &App, actor: &Actor, req: &RotateKey) -> Result<KeyView, AdminError> {
    let now = app.clock.now();
    let rec = rotation::rotate_now(
        &app.store,
        &app.sealer,
        app.config.tokens.signing_alg,
        &app.config.keys,
        now,
        req.immediate,
    )
    .await
    .map_err(|e| match e {
        KeyRingError::RotationInProgress => AdminError::Conflict(e.to_string().into()),
        KeyRingError::Store(s) => AdminError::Store(s),
        other => AdminError::Internal(other.to_string().into()),
    })?;
    // Publish it from this process at once; other replicas reload on their next pass.
    if let Err(e) = app.keys.reload(&app.store, &app.sealer, now).await {
        tracing::error!(error = %e, "cannot reload the key ring after a rotation");
    }
    audit(
        app,
        actor,
        "key.created",
        Subjects::default(),
        json!({
            "kid": rec.kid, "activate_at": rec.activate_at,
            "scheduled": false, "immediate": req.immediate,
        }),
    )
    .await?;
    Ok(rotation::view(&rec, now))
}

// === handlers ===

async fn list_h(State(app): State<App>) -> Result<Json<Vec<KeyView>>, AdminError> {
    list(&app).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn rotate_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<KeyView>), AdminError> {
    let req: RotateKey = if body.is_empty() {
        RotateKey::default()
    } else {
        parse_body(&body)?
    };
    let key = rotate(&app, &Actor::Client(caller.client_id), &req).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `/admin/v1/keys` and `/admin/v1/keys/rotate`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(&format!("{PREFIX}/keys"), get(list_h))
        .route(&format!("{PREFIX}/keys/rotate"), post(rotate_h))
}
