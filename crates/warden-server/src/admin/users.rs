//! Built-in users through the admin API: `/admin/v1/users`.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing;
use axum::{Extension, Json, Router};
use serde_json::json;
use warden_core::secret::{random_id, SecretString};
use warden_proto::admin::{NewUser, Removed, UserView};
use warden_store::{StoreError, UserRecord, UserStore};

use super::auth::Caller;
use super::{audit, parse_body, Actor, AdminError, Subjects, PREFIX};
use crate::App;

/// Longest password accepted (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

fn invalid(msg: impl Into<Cow<'static, str>>) -> AdminError {
    AdminError::InvalidRequest(msg.into())
}

/// Checks a username.
pub fn validate_username(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(invalid(format!(
            "username {name:?} must be 1-64 of A-Z a-z 0-9 . _ - @"
        )));
    }
    Ok(())
}

fn validate_groups(groups: &[String]) -> Result<(), AdminError> {
    for g in groups {
        let ok = !g.is_empty()
            && g.len() <= 64
            && g.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
        if !ok {
            return Err(invalid(format!(
                "group {g:?} must be 1-64 of A-Z a-z 0-9 . _ - :"
            )));
        }
    }
    Ok(())
}

/// Validates a new user and hashes the password (argon2id, off the async threads).
pub async fn build(
    username: &str,
    password: &SecretString,
    groups: Vec<String>,
    now: i64,
) -> Result<UserRecord, AdminError> {
    validate_username(username)?;
    validate_groups(&groups)?;
    if password.expose().is_empty() || password.expose().len() > MAX_PASSWORD_LEN {
        return Err(invalid(format!(
            "the password must be 1-{MAX_PASSWORD_LEN} bytes"
        )));
    }
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || warden_core::password::hash(pw.expose()))
        .await
        .map_err(|_| AdminError::Internal("password hashing did not finish".into()))?
        .map_err(|_| AdminError::Internal("password hashing failed".into()))?;
    let id = random_id()
        .map_err(|_| AdminError::Internal("the system random generator failed".into()))?;
    Ok(UserRecord {
        id: format!("u_{id}"),
        username: username.to_owned(),
        password_hash: hash,
        groups,
        disabled: false,
        created_at: now,
        updated_at: now,
    })
}

/// Stores a built user, mapping a taken name to a clear error.
pub async fn insert(store: &warden_store::Store, rec: &UserRecord) -> Result<(), AdminError> {
    match UserStore::create(store, rec).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(AdminError::Conflict(
            format!("a user named {:?} already exists", rec.username).into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The admin view of a user (never the password hash).
pub fn view(r: &UserRecord) -> UserView {
    UserView {
        id: r.id.clone(),
        username: r.username.clone(),
        groups: r.groups.clone(),
        disabled: r.disabled,
        created_at: r.created_at,
    }
}

/// Creates a user.
pub async fn create(app: &App, actor: &Actor, new: NewUser) -> Result<UserView, AdminError> {
    let NewUser {
        username,
        password,
        groups,
    } = new;
    let password = SecretString::new(password);
    let rec = build(&username, &password, groups, app.clock.now()).await?;
    insert(&app.store, &rec).await?;
    audit(
        app,
        actor,
        "user.created",
        Subjects {
            subject: Some(rec.id.clone()),
            ..Default::default()
        },
        json!({ "username": rec.username, "groups": rec.groups }),
    )
    .await?;
    Ok(view(&rec))
}

/// Every user, by username.
pub async fn list(app: &App) -> Result<Vec<UserView>, AdminError> {
    Ok(UserStore::list(&app.store)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub(super) async fn find(app: &App, username: &str) -> Result<UserRecord, AdminError> {
    UserStore::get_by_username(&app.store, username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user named {username:?}").into()))
}

/// One user, by username.
pub async fn get(app: &App, username: &str) -> Result<UserView, AdminError> {
    Ok(view(&find(app, username).await?))
}

/// Removes a user.
pub async fn remove(app: &App, actor: &Actor, username: &str) -> Result<Removed, AdminError> {
    let u = find(app, username).await?;
    if !UserStore::delete(&app.store, &u.id).await? {
        return Err(AdminError::NotFound(
            format!("no user named {username:?}").into(),
        ));
    }
    audit(
        app,
        actor,
        "user.removed",
        Subjects {
            subject: Some(u.id.clone()),
            ..Default::default()
        },
        json!({ "username": u.username }),
    )
    .await?;
    Ok(Removed {
        removed: u.username,
    })
}

// === handlers ===

async fn list_h(State(app): State<App>) -> Result<Json<Vec<UserView>>, AdminError> {
    list(&app).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn create_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), AdminError> {
    let new: NewUser = parse_body(&body)?;
    let created = create(&app, &Actor::Client(caller.client_id), new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_h(
    State(app): State<App>,
    Path(username): Path<String>,
) -> Result<Json<UserView>, AdminError> {
    get(&app, &username).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn remove_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> Result<Json<Removed>, AdminError> {
    remove(&app, &Actor::Client(caller.client_id), &username)
        .await
        .map(Json)
}

/// `/admin/v1/users` and `/admin/v1/users/{username}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            &format!("{PREFIX}/users"),
            routing::get(list_h).post(create_h),
        )
        .route(
            &format!("{PREFIX}/users/{{username}}"),
            routing::get(get_h).delete(remove_h),
        )
}
