//! OAuth clients through the admin API: `/admin/v1/clients`, and secret rotation.
//!
//! Rotation adds a new secret and sets the current ones to expire after an overlap
//! window, so a deployment can roll the new secret out while the old one still works.
//! Client authentication already ignores expired secrets; expired ones are dropped at
//! the next rotation.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{self, post};
use axum::{Extension, Json, Router};
use serde_json::json;
use warden_core::idp::IdpUse;
use warden_core::scope::valid_token;
use warden_core::secret::{generate, random_id, SecretHasher, SecretKind, SecretString};
use warden_core::uri::validate_redirect_uri;
use warden_proto::admin::{
    ClientUpdate, ClientView, CreatedClient, NewClient, Removed, RotateSecret, RotatedSecret,
    WorkloadView,
};
use warden_store::{
    ClientRecord, ClientSecret, ClientStore, IdpStore, Store, StoreError, WorkloadBinding,
};

use super::auth::Caller;
use super::{audit, parse_body, Actor, AdminError, Subjects, PREFIX, SCOPE_READ, SCOPE_WRITE};
use crate::App;

/// Grants a client may be registered for.
pub const GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
    JWT_BEARER,
];

/// The JWT bearer grant (RFC 7523), for ID-JAGs and workload identities.
pub const JWT_BEARER: &str = warden_proto::oauth::JWT_BEARER_GRANT;
/// The short name of the JWT bearer grant accepted in requests (`--grant jwt-bearer`).
pub const JWT_BEARER_ALIAS: &str = "jwt-bearer";
/// Most workload identities one client may be bound to.
pub const MAX_WORKLOADS: usize = 100;

/// The token-exchange grant (RFC 8693), which only an administrator assigns.
pub const TOKEN_EXCHANGE: &str = warden_proto::oauth::TOKEN_EXCHANGE_GRANT;
/// The bootstrap admin client's name.
pub const BOOTSTRAP_NAME: &str = "warden-admin";
/// Default rotation overlap: a day to roll the new secret out.
pub const DEFAULT_OVERLAP: i64 = 86_400;
/// Longest rotation overlap.
pub const MAX_OVERLAP: i64 = 30 * 86_400;
/// Most secrets that may work at once (rotations in quick succession each add one).
pub const MAX_LIVE_SECRETS: usize = 5;

fn invalid(msg: impl Into<Cow<'static, str>>) -> AdminError {
    AdminError::InvalidRequest(msg.into())
}

fn new_secret(hasher: &SecretHasher, now: i64) -> Result<(SecretString, ClientSecret), AdminError> {
    let random = |_| AdminError::Internal("the system random generator failed".into());
    let secret = generate(SecretKind::ClientSecret).map_err(random)?;
    let rec = ClientSecret {
        id: random_id().map_err(random)?,
        hash: hasher.hash(secret.expose()),
        created_at: now,
        expires_at: None,
    };
    Ok((secret, rec))
}

/// Validates a registration and builds its record, with a confidential client's
/// secret (to be shown once).
pub fn build(
    new: &NewClient,
    hasher: &SecretHasher,
    now: i64,
) -> Result<(ClientRecord, Option<SecretString>), AdminError> {
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(invalid("client name must be 1-200 characters"));
    }
    let mut grants: Vec<String> = if !new.grant_types.is_empty() {
        new.grant_types
            .iter()
            .map(|g| {
                if g == JWT_BEARER_ALIAS {
                    JWT_BEARER.to_owned()
                } else {
                    g.clone()
                }
            })
            .collect()
    } else if !new.workloads.is_empty() {
        Vec::new()
    } else {
        vec!["authorization_code".into(), "refresh_token".into()]
    };
    if !new.workloads.is_empty() {
        if new.confidential {
            return Err(invalid(
                "a client bound to workload identities has no secret: its workload's token is its credential (drop --confidential)",
            ));
        }
        if !grants.iter().any(|g| g == JWT_BEARER) {
            grants.push(JWT_BEARER.to_owned());
        }
    }
    for g in &grants {
        match g.as_str() {
            "password" | "implicit" => {
                return Err(invalid(format!("grant {g}: OAuth 2.1 removed this grant")))
            }
            g if !GRANTS.contains(&g) => {
                return Err(invalid(format!(
                    "grant {g}: unknown (use {})",
                    GRANTS.join(", ")
                )))
            }
            _ => {}
        }
    }
    for g in ["client_credentials", TOKEN_EXCHANGE] {
        if grants.iter().any(|x| x == g) && !new.confidential {
            return Err(invalid(format!(
                "the {g} grant needs --confidential (a confidential client)"
            )));
        }
    }
    if grants.iter().any(|g| g == "authorization_code") && new.redirect_uris.is_empty() {
        return Err(invalid(
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    for uri in &new.redirect_uris {
        validate_redirect_uri(uri).map_err(|e| invalid(format!("redirect URI {uri:?}: {e}")))?;
    }
    if let Some(s) = new.scopes.iter().find(|s| !valid_token(s)) {
        return Err(invalid(format!("scope {s:?} is not a valid OAuth scope")));
    }
    let admin_scope = new
        .scopes
        .iter()
        .any(|s| s == SCOPE_READ || s == SCOPE_WRITE);
    if admin_scope && !grants.iter().any(|g| g == "client_credentials") {
        return Err(invalid(
            "admin scopes are for client-credentials clients: the admin API accepts no other tokens",
        ));
    }
    let client_id = random_id()
        .map_err(|_| AdminError::Internal("the system random generator failed".into()))?;
    let (secret, secrets) = if new.confidential {
        let (s, rec) = new_secret(hasher, now)?;
        (Some(s), vec![rec])
    } else {
        (None, vec![])
    };
    let rec = ClientRecord {
        client_id,
        name: new.name.clone(),
        confidential: new.confidential,
        redirect_uris: new.redirect_uris.clone(),
        grant_types: grants,
        scopes: new.scopes.clone(),
        token_endpoint_auth_method: if new.confidential {
            "client_secret_basic".into()
        } else {
            "none".into()
        },
        secrets,
        metadata: json!({}),
        created_at: now,
        updated_at: now,
        last_used_at: None,
    };
    Ok((rec, secret))
}

/// The bootstrap admin client's registration.
pub fn bootstrap() -> NewClient {
    NewClient {
        name: BOOTSTRAP_NAME.to_owned(),
        confidential: true,
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".to_owned()],
        scopes: vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()],
        workloads: vec![],
    }
}

/// Builds and stores a client without auditing (for `init`, which records its own
/// events, and for the operations below).
pub async fn insert(
    store: &Store,
    hasher: &SecretHasher,
    new: &NewClient,
    now: i64,
) -> Result<CreatedClient, AdminError> {
    let (rec, secret) = build(new, hasher, now)?;
    let workloads = check_workloads(store, &new.workloads).await?;
    ClientStore::create_with_workloads(store, &rec, &workloads)
        .await
        .map_err(|e| workload_conflict(e, &workloads))?;
    Ok(CreatedClient {
        client: view(&rec, &workloads, now),
        client_secret: secret.map(|s| s.expose().to_owned()),
    })
}

/// Checks workload bindings: each names a registered IdP used for workloads and a
/// subject, none twice.
pub async fn check_workloads(
    store: &Store,
    workloads: &[WorkloadView],
) -> Result<Vec<WorkloadBinding>, AdminError> {
    if workloads.len() > MAX_WORKLOADS {
        return Err(invalid(format!(
            "at most {MAX_WORKLOADS} workload identities per client"
        )));
    }
    let mut out: Vec<WorkloadBinding> = Vec::with_capacity(workloads.len());
    for w in workloads {
        warden_core::idp::validate_token(&w.subject, "workload subject").map_err(invalid)?;
        let idp = IdpStore::get(store, &w.idp).await?.ok_or_else(|| {
            invalid(format!(
                "workload {}:{}: no identity provider named {:?}",
                w.idp, w.subject, w.idp
            ))
        })?;
        if !idp.uses.iter().any(|u| u == IdpUse::Workload.as_str()) {
            return Err(invalid(format!(
                "workload {}:{}: identity provider {} is not used for workloads (warden idp update {} --use workload)",
                w.idp, w.subject, w.idp, w.idp
            )));
        }
        let binding = WorkloadBinding {
            idp_name: w.idp.clone(),
            subject: w.subject.clone(),
        };
        if out.contains(&binding) {
            return Err(invalid(format!(
                "workload {}:{} is given twice",
                w.idp, w.subject
            )));
        }
        out.push(binding);
    }
    Ok(out)
}

/// Maps a store refusal of workload bindings to a clear conflict.
fn workload_conflict(e: StoreError, workloads: &[WorkloadBinding]) -> AdminError {
    let named = || {
        workloads
            .iter()
            .map(|w| format!("{}:{}", w.idp_name, w.subject))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match e {
        StoreError::Conflict(what) if what == "workload binding" => AdminError::Conflict(
            format!(
                "a workload identity ({}) is already bound to another client: one workload identity belongs to one client",
                named()
            )
            .into(),
        ),
        // An IdP removed since the check.
        StoreError::NotFound => AdminError::Conflict(
            format!("an identity provider of the workloads ({}) was just removed", named()).into(),
        ),
        other => AdminError::Store(other),
    }
}

fn workload_views(workloads: &[WorkloadBinding]) -> Vec<WorkloadView> {
    workloads
        .iter()
        .map(|w| WorkloadView {
            idp: w.idp_name.clone(),
            subject: w.subject.clone(),
        })
        .collect()
}

/// The admin view of a client (never its secrets), with its workload bindings.
pub fn view(r: &ClientRecord, workloads: &[WorkloadBinding], now: i64) -> ClientView {
    ClientView {
        client_id: r.client_id.clone(),
        name: r.name.clone(),
        client_type: if r.confidential {
            "confidential".into()
        } else {
            "public".into()
        },
        redirect_uris: r.redirect_uris.clone(),
        grant_types: r.grant_types.clone(),
        scopes: r.scopes.clone(),
        token_endpoint_auth_method: r.token_endpoint_auth_method.clone(),
        active_secrets: r
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .count(),
        created_at: r.created_at,
        last_used_at: r.last_used_at,
        workloads: workload_views(workloads),
    }
}

/// Registers a client.
pub async fn create(
    app: &App,
    actor: &Actor,
    new: &NewClient,
) -> Result<CreatedClient, AdminError> {
    let created = insert(&app.store, &app.secrets, new, app.clock.now()).await?;
    let c = &created.client;
    audit(
        app,
        actor,
        "client.created",
        Subjects {
            client_id: Some(c.client_id.clone()),
            ..Default::default()
        },
        json!({
            "name": c.name, "client_type": c.client_type,
            "grant_types": c.grant_types, "scopes": c.scopes,
            "workloads": c.workloads,
        }),
    )
    .await?;
    Ok(created)
}

/// Every client, by id.
pub async fn list(app: &App) -> Result<Vec<ClientView>, AdminError> {
    let now = app.clock.now();
    let mut bound: std::collections::HashMap<String, Vec<WorkloadBinding>> =
        std::collections::HashMap::new();
    for (client_id, w) in ClientStore::all_workloads(&app.store).await? {
        bound.entry(client_id).or_default().push(w);
    }
    Ok(ClientStore::list(&app.store)
        .await?
        .iter()
        .map(|c| view(c, bound.get(&c.client_id).map_or(&[], Vec::as_slice), now))
        .collect())
}

/// Finds a client by id, or by name when the name is unique.
pub async fn find(app: &App, key: &str) -> Result<ClientRecord, AdminError> {
    if let Some(c) = ClientStore::get(&app.store, key).await? {
        return Ok(c);
    }
    let mut by_name = ClientStore::find_by_name(&app.store, key).await?;
    match by_name.len() {
        0 => Err(AdminError::NotFound(
            format!("no client with id or name {key:?}").into(),
        )),
        1 => Ok(by_name.remove(0)),
        n => Err(invalid(format!(
            "{n} clients are named {key:?}; use the client id"
        ))),
    }
}

/// One client, by id or unique name.
pub async fn get(app: &App, key: &str) -> Result<ClientView, AdminError> {
    let c = find(app, key).await?;
    let workloads = ClientStore::workloads(&app.store, &c.client_id).await?;
    Ok(view(&c, &workloads, app.clock.now()))
}

/// The registration request that `rec` stands for with `patch` applied.
fn patched(rec: &ClientRecord, patch: &ClientUpdate, workloads: &[WorkloadBinding]) -> NewClient {
    NewClient {
        name: patch.name.clone().unwrap_or_else(|| rec.name.clone()),
        confidential: rec.confidential,
        redirect_uris: patch
            .redirect_uris
            .clone()
            .unwrap_or_else(|| rec.redirect_uris.clone()),
        grant_types: patch
            .grant_types
            .clone()
            .unwrap_or_else(|| rec.grant_types.clone()),
        scopes: patch.scopes.clone().unwrap_or_else(|| rec.scopes.clone()),
        workloads: patch
            .workloads
            .clone()
            .unwrap_or_else(|| workload_views(workloads)),
    }
}

/// Changes some fields of a client (not its type or secrets: see rotation). The result
/// is validated exactly like a registration; workload bindings are replaced with the
/// record, atomically. Safe against concurrent updates: one that lost a race is
/// re-applied to the fresh record.
pub async fn update(
    app: &App,
    actor: &Actor,
    key: &str,
    patch: &ClientUpdate,
) -> Result<ClientView, AdminError> {
    for _attempt in 0..3 {
        let old = find(app, key).await?;
        let old_workloads = ClientStore::workloads(&app.store, &old.client_id).await?;
        let new = patched(&old, patch, &old_workloads);
        let now = app.clock.now();
        // The same checks as a registration; its fresh id and secret are not used.
        let (built, _) = build(&new, &app.secrets, now)?;
        let workloads = check_workloads(&app.store, &new.workloads).await?;
        let mut rec = old.clone();
        rec.name = built.name;
        rec.redirect_uris = built.redirect_uris;
        rec.grant_types = built.grant_types;
        rec.scopes = built.scopes;
        if rec == old && workloads == old_workloads {
            return Ok(view(&old, &old_workloads, now));
        }
        rec.updated_at = now.max(old.updated_at + 1);
        match ClientStore::update_with_workloads(&app.store, &rec, old.updated_at, &workloads).await
        {
            Ok(()) => app.clients.invalidate(&rec.client_id),
            Err(StoreError::Conflict(what)) if what.contains("changed concurrently") => continue,
            Err(StoreError::NotFound)
                if ClientStore::get(&app.store, &rec.client_id)
                    .await?
                    .is_none() =>
            {
                return Err(AdminError::NotFound(
                    format!("no client with id or name {key:?}").into(),
                ))
            }
            Err(e) => return Err(workload_conflict(e, &workloads)),
        }
        audit(
            app,
            actor,
            "client.updated",
            Subjects {
                client_id: Some(rec.client_id.clone()),
                ..Default::default()
            },
            json!({
                "name": rec.name,
                "redirect_uris": rec.redirect_uris,
                "grant_types": rec.grant_types,
                "scopes": rec.scopes,
                "workloads": workload_views(&workloads),
            }),
        )
        .await?;
        return Ok(view(&rec, &workloads, now));
    }
    Err(AdminError::Conflict(
        "the client kept changing while this update was applied; try again".into(),
    ))
}

/// Removes a client (by id or unique name) and its secrets.
pub async fn remove(app: &App, actor: &Actor, key: &str) -> Result<Removed, AdminError> {
    let c = find(app, key).await?;
    let deleted = ClientStore::delete(&app.store, &c.client_id).await?;
    app.clients.invalidate(&c.client_id);
    if !deleted {
        return Err(AdminError::NotFound(
            format!("no client with id or name {key:?}").into(),
        ));
    }
    audit(
        app,
        actor,
        "client.removed",
        Subjects {
            client_id: Some(c.client_id.clone()),
            ..Default::default()
        },
        json!({ "name": c.name }),
    )
    .await?;
    Ok(Removed {
        removed: c.client_id,
    })
}

/// Issues a new secret for a confidential client and lets its current secrets work
/// for `overlap_secs` more (default a day). Safe against concurrent rotations: a
/// rotation that lost a race is retried on the fresh record.
pub async fn rotate_secret(
    app: &App,
    actor: &Actor,
    key: &str,
    req: &RotateSecret,
) -> Result<RotatedSecret, AdminError> {
    let overlap = req.overlap_secs.unwrap_or(DEFAULT_OVERLAP);
    if !(0..=MAX_OVERLAP).contains(&overlap) {
        return Err(invalid(format!(
            "the overlap must be between 0s and {MAX_OVERLAP}s"
        )));
    }
    for _attempt in 0..3 {
        let mut rec = find(app, key).await?;
        if !rec.confidential {
            return Err(invalid(format!(
                "client {} is public: it has no secret to rotate",
                rec.client_id
            )));
        }
        let now = app.clock.now();
        let until = now + overlap;
        let (secret, fresh) = new_secret(&app.secrets, now)?;
        // Expired secrets go; the rest end at the overlap (or earlier, if already set).
        let mut previous: Vec<ClientSecret> = rec
            .secrets
            .drain(..)
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .collect();
        for s in &mut previous {
            s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
        }
        let retiring: Vec<String> = previous
            .iter()
            .filter(|s| s.expires_at.is_some_and(|e| e > now))
            .map(|s| s.id.clone())
            .collect();
        if retiring.len() + 1 > MAX_LIVE_SECRETS {
            return Err(AdminError::Conflict(
                format!("{} secrets of this client still work; wait for the overlap to end, or rotate with an overlap of 0", retiring.len()).into(),
            ));
        }
        let previous_expire_at = previous.iter().filter_map(|s| s.expires_at).max();
        let secret_id = fresh.id.clone();
        rec.secrets = previous;
        rec.secrets.push(fresh);
        let expected = rec.updated_at;
        rec.updated_at = now.max(expected + 1);
        match ClientStore::update_if_unchanged(&app.store, &rec, expected).await {
            // After the write, so a read racing it cannot re-cache the old secrets.
            Ok(()) => app.clients.invalidate(&rec.client_id),
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::NotFound) => {
                return Err(AdminError::NotFound(
                    format!("no client with id or name {key:?}").into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        audit(
            app,
            actor,
            "client.secret_rotated",
            Subjects {
                client_id: Some(rec.client_id.clone()),
                ..Default::default()
            },
            json!({
                "secret_id": secret_id,
                "retiring_secret_ids": retiring,
                "overlap_secs": overlap,
                "previous_secrets_expire_at": previous_expire_at,
            }),
        )
        .await?;
        let workloads = ClientStore::workloads(&app.store, &rec.client_id).await?;
        return Ok(RotatedSecret {
            client: view(&rec, &workloads, now),
            secret_id,
            client_secret: secret.expose().to_owned(),
            previous_secrets_expire_at: previous_expire_at,
        });
    }
    Err(AdminError::Conflict(
        "the client kept changing during the rotation; try again".into(),
    ))
}

// === handlers ===

async fn list_h(State(app): State<App>) -> Result<Json<Vec<ClientView>>, AdminError> {
    list(&app).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn create_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedClient>), AdminError> {
    let new: NewClient = parse_body(&body)?;
    let created = create(&app, &Actor::Client(caller.client_id), &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_h(
    State(app): State<App>,
    Path(key): Path<String>,
) -> Result<Json<ClientView>, AdminError> {
    get(&app, &key).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn update_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<ClientView>, AdminError> {
    let patch: ClientUpdate = parse_body(&body)?;
    update(&app, &Actor::Client(caller.client_id), &key, &patch)
        .await
        .map(Json)
}

#[tracing::instrument(skip_all)]
async fn remove_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Json<Removed>, AdminError> {
    remove(&app, &Actor::Client(caller.client_id), &key)
        .await
        .map(Json)
}

#[tracing::instrument(skip_all)]
async fn rotate_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RotatedSecret>), AdminError> {
    let req: RotateSecret = if body.is_empty() {
        RotateSecret::default()
    } else {
        parse_body(&body)?
    };
    let rotated = rotate_secret(&app, &Actor::Client(caller.client_id), &key, &req).await?;
    Ok((StatusCode::CREATED, Json(rotated)))
}

/// `/admin/v1/clients`, `/admin/v1/clients/{client}` (get, update, remove) and its
/// `/secrets`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            &format!("{PREFIX}/clients"),
            routing::get(list_h).post(create_h),
        )
        .route(
            &format!("{PREFIX}/clients/{{client}}"),
            routing::get(get_h).patch(update_h).delete(remove_h),
        )
        .route(
            &format!("{PREFIX}/clients/{{client}}/secrets"),
            post(rotate_h),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> SecretHasher {
        SecretHasher::new(b"test key material, 32 bytes long")
    }

    #[test]
    fn refuses_bad_registrations() {
        let bad = |n: NewClient| build(&n, &hasher(), 1).unwrap_err().to_string();
        let base = NewClient {
            name: "c".into(),
            ..Default::default()
        };
        let with = |f: &dyn Fn(&mut NewClient)| {
            let mut n = base.clone();
            f(&mut n);
            n
        };
        assert!(bad(with(&|n| n.grant_types = vec!["password".into()])).contains("removed"));
        assert!(bad(with(&|n| n.grant_types = vec!["implicit".into()])).contains("removed"));
        assert!(
            bad(with(&|n| n.grant_types = vec!["client_credentials".into()]))
                .contains("confidential")
        );
        assert!(bad(base.clone()).contains("redirect URI"));
        assert!(bad(with(
            &|n| n.redirect_uris = vec!["http://evil.example/cb".into()]
        ))
        .contains("redirect URI"));
        assert!(bad(with(&|n| {
            n.confidential = true;
            n.grant_types = vec!["authorization_code".into()];
            n.redirect_uris = vec!["http://127.0.0.1:5/cb".into()];
            n.scopes = vec![SCOPE_WRITE.into()];
        }))
        .contains("admin scopes"));
        assert!(bad(with(&|n| n.name = " ".into())).contains("name"));
    }

    #[test]
    fn the_bootstrap_client_is_a_confidential_admin_machine_client() {
        let (rec, secret) = build(&bootstrap(), &hasher(), 1).unwrap();
        assert!(rec.confidential);
        assert_eq!(rec.grant_types, ["client_credentials"]);
        assert_eq!(rec.scopes, [SCOPE_READ, SCOPE_WRITE]);
        let secret = secret.unwrap();
        assert!(hasher().verify(secret.expose(), &rec.secrets[0].hash));
    }
}
