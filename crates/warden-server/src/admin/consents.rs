//! Users' consents through the admin API: `/admin/v1/users/{username}/consents`, the
//! very operations `warden consent list|revoke` run on a data dir.
//!
//! Withdrawing a consent also revokes the refresh-token families (sessions) it produced,
//! and denylists their `sid`, so the access tokens already issued stop working too.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use warden_proto::admin::{ConsentFilter, ConsentView, ConsentsRevoked};
use warden_store::{ConsentStore, RefreshStore};

use super::auth::Caller;
use super::{audit, users, Actor, AdminError, Subjects, PREFIX};
use crate::App;

/// Everything `username` has consented to, by client then resource.
pub async fn list(app: &App, username: &str) -> Result<Vec<ConsentView>, AdminError> {
    let user = users::find(app, username).await?;
    Ok(ConsentStore::list_for_user(&app.store, &user.id)
        .await?
        .into_iter()
        .map(|c| ConsentView {
            client_id: c.client_id,
            resource: c.resource,
            scopes: c.scopes,
            granted_at: c.granted_at,
        })
        .collect())
}

/// Withdraws `username`'s consents (all, one client's, or one client's at one resource)
/// and revokes the sessions they produced.
pub async fn revoke(
    app: &App,
    actor: &Actor,
    username: &str,
    filter: &ConsentFilter,
) -> Result<ConsentsRevoked, AdminError> {
    if filter.resource.is_some() && filter.client.is_none() {
        return Err(AdminError::InvalidRequest(
            "a resource is withdrawn for one client: name the client too".into(),
        ));
    }
    let user = users::find(app, username).await?;
    let targets: Vec<String> = match &filter.client {
        Some(c) => vec![c.clone()],
        None => {
            let mut ids: Vec<String> = ConsentStore::list_for_user(&app.store, &user.id)
                .await?
                .into_iter()
                .map(|c| c.client_id)
                .collect();
            ids.sort();
            ids.dedup();
            ids
        }
    };
    let now = app.clock.now();
    let resource = filter.resource.as_deref();
    let mut removed = 0;
    let mut families = 0;
    for client_id in &targets {
        removed += ConsentStore::delete(&app.store, &user.id, client_id, resource).await?;
        for f in RefreshStore::list_for_subject(&app.store, &user.id).await? {
            let matches_resource = resource.is_none_or(|r| f.resources.iter().any(|x| x == r));
            if &f.client_id == client_id && f.revoked_at.is_none() && matches_resource {
                crate::oauth::revoke::revoke_family(app, &f.id, now, "consent withdrawn").await?;
                families += 1;
            }
        }
    }
    if removed == 0 && filter.client.is_some() {
        return Err(AdminError::NotFound("no matching consent".into()));
    }
    audit(
        app,
        actor,
        "consent.revoked",
        Subjects {
            client_id: filter.client.clone(),
            subject: Some(user.id.clone()),
            ..Default::default()
        },
        json!({
            "resource": filter.resource,
            "consents_removed": removed,
            "sessions_revoked": families,
        }),
    )
    .await?;
    Ok(ConsentsRevoked {
        consents_removed: removed,
        sessions_revoked: families,
    })
}

// === handlers ===

async fn list_h(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<Json<Vec<ConsentView>>, AdminError> {
    list(&app, &username).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn revoke_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    q: Result<Query<ConsentFilter>, QueryRejection>,
) -> Result<Json<ConsentsRevoked>, AdminError> {
    let Query(filter) = q.map_err(|e| AdminError::InvalidRequest(e.body_text().into()))?;
    revoke(&app, &Actor::Client(caller.client_id), &username, &filter)
        .await
        .map(Json)
}

/// `/admin/v1/users/{username}/consents`.
pub fn routes() -> Router<App> {
    Router::new().route(
        &format!("{PREFIX}/users/{{username}}/consents"),
        get(list_h).delete(revoke_h),
    )
}
