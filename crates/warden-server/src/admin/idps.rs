//! The identity-provider registry through the admin API: `/admin/v1/idps`.
//!
//! An IdP's client secret is sealed with the master key before it reaches the store and
//! is shown only as `client_secret_set`. Removing or disabling an IdP revokes the
//! sessions (refresh-token families) of every user linked through it. An IdP that
//! clients are bound to (workload identities) is not removed: the refusal names the
//! clients, to be unbound first, so that no client silently loses its credential.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing;
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use warden_core::idp::{self as rules, IdpUse, DEFAULT_GROUPS_CLAIM, DEFAULT_SCOPES};
use warden_proto::admin::{GroupMapping, IdpRemoved, IdpUpdate, IdpView, NewIdp};
use warden_store::{ClientStore, IdpRecord, IdpStore, RefreshStore, StoreError, UserStore};

use super::auth::Caller;
use super::{audit, parse_body, Actor, AdminError, Subjects, PREFIX};
use crate::App;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;
/// Largest `issuer_ca` PEM bundle, in bytes.
pub const MAX_CA_BYTES: usize = 64 * 1024;
/// Longest client id or URL, in bytes.
pub const MAX_TEXT: usize = 2048;

/// The revocation reason when an IdP is removed.
pub const REASON_REMOVED: &str = "idp_removed";
/// The revocation reason when an IdP is disabled.
pub const REASON_DISABLED: &str = "idp_disabled";

fn invalid(msg: impl Into<Cow<'static, str>>) -> AdminError {
    AdminError::InvalidRequest(msg.into())
}

fn check_list<T>(list: &[T], what: &str) -> Result<(), AdminError> {
    if list.len() > rules::MAX_LIST_LEN {
        return Err(invalid(format!(
            "at most {} {what} per identity provider",
            rules::MAX_LIST_LEN
        )));
    }
    Ok(())
}

fn check_text(text: &str, what: &str) -> Result<(), AdminError> {
    if text.is_empty() || text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must be 1-{MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks that `pem` holds at least one certificate that parses as a trust anchor, and
/// nothing else.
pub fn validate_issuer_ca(pem: &str) -> Result<(), AdminError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    if pem.len() > MAX_CA_BYTES {
        return Err(invalid(format!(
            "issuer_ca must be at most {MAX_CA_BYTES} bytes"
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| invalid("issuer_ca is not a PEM certificate bundle"))?;
        roots
            .add(cert)
            .map_err(|_| invalid("issuer_ca holds a certificate that does not parse"))?;
    }
    if roots.is_empty() {
        return Err(invalid("issuer_ca holds no PEM certificate"));
    }
    Ok(())
}

/// Validates a registration and builds its record, the client secret sealed.
pub fn build(app: &App, new: &NewIdp, now: i64) -> Result<IdpRecord, AdminError> {
    rules::validate_name(&new.name).map_err(invalid)?;
    let mut rec = IdpRecord {
        name: new.name.clone(),
        issuer: new.issuer.clone(),
        display_name: new.display_name.clone(),
        uses: Vec::new(),
        client_id: new.client_id.clone(),
        client_secret_sealed: None,
        groups_claim: new
            .groups_claim
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned()),
        group_map: new
            .group_map
            .iter()
            .map(|m| (m.idp_group.clone(), m.group.clone()))
            .collect(),
        domains: new.domains.clone(),
        tenants: new.tenants.clone(),
        audiences: new.audiences.clone(),
        scopes: new.scopes.clone(),
        jwks_uri: new.jwks_uri.clone(),
        issuer_ca: new.issuer_ca.clone(),
        disabled: new.disabled,
        created_at: now,
        updated_at: now,
    };
    if let Some(secret) = &new.client_secret {
        check_text(secret, "client_secret")?;
        rec.client_secret_sealed = Some(
            rules::seal_client_secret(&app.sealer, &rec.name, secret)
                .map_err(|e| AdminError::Internal(e.into()))?,
        );
    }
    let uses = IdpUse::parse_all(&new.uses).map_err(invalid)?;
    rec.uses = uses.iter().map(|u| u.as_str().to_owned()).collect();
    validate(&mut rec, &uses)?;
    Ok(rec)
}

/// Checks (and normalises: domains lowercased, default scopes filled in) every field
/// of a record but its name and secret.
fn validate(rec: &mut IdpRecord, uses: &[IdpUse]) -> Result<(), AdminError> {
    check_list(&rec.tenants, "tenants")?;
    for t in &rec.tenants {
        rules::validate_tenant(t).map_err(invalid)?;
    }
    rules::validate_issuer(&rec.issuer, !rec.tenants.is_empty()).map_err(invalid)?;
    if let Some(d) = &rec.display_name {
        if d.trim().is_empty()
            || d.chars().count() > MAX_DISPLAY_NAME
            || d.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "display_name must be 1-{MAX_DISPLAY_NAME} characters without control characters"
            )));
        }
    }
    if let Some(id) = &rec.client_id {
        check_text(id, "client_id")?;
    }
    let login = uses.contains(&IdpUse::Login);
    if login && (rec.client_id.is_none() || rec.client_secret_sealed.is_none()) {
        return Err(invalid(
            "an identity provider used for login needs Warden's client id and client secret at it (--client-id, --client-secret-stdin): Warden signs users in as a confidential OIDC client",
        ));
    }
    rules::validate_token(&rec.groups_claim, "groups claim").map_err(invalid)?;
    check_list(&rec.group_map, "group map entries")?;
    for (from, to) in &rec.group_map {
        rules::check_group_mapping(from, to).map_err(invalid)?;
    }
    check_list(&rec.domains, "domains")?;
    let mut domains = Vec::with_capacity(rec.domains.len());
    for d in &rec.domains {
        let d = rules::normalize_domain(d).map_err(invalid)?;
        if domains.contains(&d) {
            return Err(invalid(format!("domain {d} is given twice")));
        }
        domains.push(d);
    }
    rec.domains = domains;
    check_list(&rec.audiences, "audiences")?;
    for a in &rec.audiences {
        rules::validate_token(a, "audience").map_err(invalid)?;
    }
    if rec.scopes.is_empty() {
        rec.scopes = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    }
    check_list(&rec.scopes, "scopes")?;
    if let Some(s) = rec
        .scopes
        .iter()
        .find(|s| !warden_core::scope::valid_token(s))
    {
        return Err(invalid(format!("scope {s:?} is not a valid OAuth scope")));
    }
    if !rec.scopes.iter().any(|s| s == "openid") {
        return Err(invalid("the scopes must include openid"));
    }
    if let Some(uri) = &rec.jwks_uri {
        check_text(uri, "jwks_uri")?;
        rules::validate_url(uri, "jwks_uri").map_err(invalid)?;
    }
    if let Some(pem) = &rec.issuer_ca {
        validate_issuer_ca(pem)?;
    }
    Ok(())
}

/// The admin view of a record (never the secret).
pub fn view(r: &IdpRecord) -> IdpView {
    IdpView {
        name: r.name.clone(),
        issuer: r.issuer.clone(),
        display_name: r.display_name.clone(),
        uses: r.uses.clone(),
        client_id: r.client_id.clone(),
        client_secret_set: r.client_secret_sealed.is_some(),
        groups_claim: r.groups_claim.clone(),
        group_map: r
            .group_map
            .iter()
            .map(|(a, b)| GroupMapping {
                idp_group: a.clone(),
                group: b.clone(),
            })
            .collect(),
        domains: r.domains.clone(),
        tenants: r.tenants.clone(),
        audiences: r.audiences.clone(),
        scopes: r.scopes.clone(),
        jwks_uri: r.jwks_uri.clone(),
        issuer_ca: r.issuer_ca.clone(),
        disabled: r.disabled,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// What an audit record says about an IdP: its fields, the secret only as set or not.
fn audit_detail(r: &IdpRecord) -> Value {
    let mut v = serde_json::to_value(view(r)).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.remove("issuer_ca");
        m.insert("issuer_ca_set".into(), json!(r.issuer_ca.is_some()));
        m.remove("created_at");
        m.remove("updated_at");
    }
    v
}

/// The fields an update changed, with old and new values (the secret and CA only as
/// changed).
fn changes(old: &IdpRecord, new: &IdpRecord) -> Value {
    let (a, b) = (audit_detail(old), audit_detail(new));
    let mut out = Map::new();
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        for (k, to) in b {
            let from = a.get(&k).cloned().unwrap_or(Value::Null);
            if from != to {
                out.insert(k, json!({ "from": from, "to": to }));
            }
        }
    }
    if old.client_secret_sealed != new.client_secret_sealed {
        out.insert("client_secret".into(), json!("changed"));
    }
    if old.issuer_ca != new.issuer_ca {
        out.insert("issuer_ca".into(), json!("changed"));
    }
    Value::Object(out)
}

fn store_conflict(e: StoreError, rec: &IdpRecord) -> AdminError {
    match e {
        StoreError::Conflict(what) if what == "idp domain" => AdminError::Conflict(
            format!(
                "a domain of {} ({}) already routes to another identity provider",
                rec.name,
                rec.domains.join(", ")
            )
            .into(),
        ),
        StoreError::Conflict(_) => AdminError::Conflict(
            format!("an identity provider named {:?} already exists", rec.name).into(),
        ),
        StoreError::NotFound => {
            AdminError::NotFound(format!("no identity provider named {:?}", rec.name).into())
        }
        other => AdminError::Store(other),
    }
}

/// Which of `domains` already route to an IdP other than `name`, for a clear refusal.
async fn taken_domains(app: &App, name: &str, domains: &[String]) -> Result<(), AdminError> {
    for d in domains {
        if let Some(other) = IdpStore::find_by_domain(&app.store, d).await? {
            if other.name != name {
                return Err(AdminError::Conflict(
                    format!(
                        "domain {d} already routes to identity provider {}: a domain belongs to one identity provider",
                        other.name
                    )
                    .into(),
                ));
            }
        }
    }
    Ok(())
}

/// Registers an IdP.
pub async fn create(app: &App, actor: &Actor, new: &NewIdp) -> Result<IdpView, AdminError> {
    let rec = build(app, new, app.clock.now())?;
    if IdpStore::get(&app.store, &rec.name).await?.is_some() {
        return Err(AdminError::Conflict(
            format!("an identity provider named {:?} already exists", rec.name).into(),
        ));
    }
    taken_domains(app, &rec.name, &rec.domains).await?;
    IdpStore::create(&app.store, &rec)
        .await
        .map_err(|e| store_conflict(e, &rec))?;
    audit(
        app,
        actor,
        "idp.created",
        Subjects::default(),
        json!({ "idp": rec.name, "fields": audit_detail(&rec) }),
    )
    .await?;
    Ok(view(&rec))
}

/// Every IdP, by name.
pub async fn list(app: &App) -> Result<Vec<IdpView>, AdminError> {
    Ok(IdpStore::list(&app.store).await?.iter().map(view).collect())
}

/// The record of an IdP, or a 404.
pub async fn find(app: &App, name: &str) -> Result<IdpRecord, AdminError> {
    IdpStore::get(&app.store, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no identity provider named {name:?}").into()))
}

/// One IdP.
pub async fn get(app: &App, name: &str) -> Result<IdpView, AdminError> {
    Ok(view(&find(app, name).await?))
}

/// `old` with `patch` applied (the secret sealed), not yet validated.
fn patched(app: &App, old: &IdpRecord, patch: &IdpUpdate) -> Result<IdpRecord, AdminError> {
    let mut rec = old.clone();
    let set = |field: &Option<Option<String>>, value: &mut Option<String>| {
        if let Some(v) = field {
            value.clone_from(v);
        }
    };
    if let Some(issuer) = &patch.issuer {
        rec.issuer.clone_from(issuer);
    }
    if let Some(uses) = &patch.uses {
        rec.uses.clone_from(uses);
    }
    set(&patch.display_name, &mut rec.display_name);
    set(&patch.client_id, &mut rec.client_id);
    set(&patch.jwks_uri, &mut rec.jwks_uri);
    set(&patch.issuer_ca, &mut rec.issuer_ca);
    match &patch.client_secret {
        None => {}
        Some(None) => rec.client_secret_sealed = None,
        Some(Some(secret)) => {
            check_text(secret, "client_secret")?;
            rec.client_secret_sealed = Some(
                rules::seal_client_secret(&app.sealer, &rec.name, secret)
                    .map_err(|e| AdminError::Internal(e.into()))?,
            );
        }
    }
    if let Some(claim) = &patch.groups_claim {
        rec.groups_claim = claim
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned());
    }
    if let Some(map) = &patch.group_map {
        rec.group_map = map
            .iter()
            .map(|m| (m.idp_group.clone(), m.group.clone()))
            .collect();
    }
    for (field, value) in [
        (&patch.domains, &mut rec.domains),
        (&patch.tenants, &mut rec.tenants),
        (&patch.audiences, &mut rec.audiences),
    ] {
        if let Some(v) = field {
            value.clone_from(v);
        }
    }
    if let Some(scopes) = &patch.scopes {
        rec.scopes = scopes.clone().unwrap_or_default();
    }
    if let Some(disabled) = patch.disabled {
        rec.disabled = disabled;
    }
    Ok(rec)
}

/// Changes some fields of an IdP; the result is validated like a registration. An IdP
/// that stops being usable for workloads keeps no bound clients (refused, naming them).
/// Disabling it revokes its users' sessions.
pub async fn update(
    app: &App,
    actor: &Actor,
    name: &str,
    patch: &IdpUpdate,
) -> Result<IdpView, AdminError> {
    let old = find(app, name).await?;
    let mut rec = patched(app, &old, patch)?;
    let uses = IdpUse::parse_all(&rec.uses).map_err(invalid)?;
    rec.uses = uses.iter().map(|u| u.as_str().to_owned()).collect();
    validate(&mut rec, &uses)?;
    if rec == old {
        return Ok(view(&old));
    }
    if !uses.contains(&IdpUse::Workload) {
        refuse_bound_clients(app, name, "drop the workload use of").await?;
    }
    taken_domains(app, &rec.name, &rec.domains).await?;
    let now = app.clock.now();
    rec.updated_at = now.max(old.updated_at + 1);
    let changed = changes(&old, &rec);
    IdpStore::update(&app.store, &rec)
        .await
        .map_err(|e| store_conflict(e, &rec))?;
    let revoked = if rec.disabled && !old.disabled {
        revoke_sessions(app, name, now, REASON_DISABLED).await?
    } else {
        0
    };
    audit(
        app,
        actor,
        "idp.updated",
        Subjects::default(),
        json!({ "idp": name, "changes": changed, "sessions_revoked": revoked }),
    )
    .await?;
    Ok(view(&rec))
}

/// Refuses while clients are bound to a workload identity of the IdP, naming them.
async fn refuse_bound_clients(app: &App, name: &str, doing: &str) -> Result<(), AdminError> {
    let bound = ClientStore::clients_of_idp(&app.store, name).await?;
    if bound.is_empty() {
        return Ok(());
    }
    Err(AdminError::Conflict(
        format!(
            "cannot {doing} identity provider {name}: clients are bound to its workload identities ({}); unbind them first (warden client update CLIENT --unset workloads)",
            bound.join(", ")
        )
        .into(),
    ))
}

/// Revokes every live refresh-token family of the users linked through `idp`.
async fn revoke_sessions(app: &App, idp: &str, now: i64, reason: &str) -> Result<u64, AdminError> {
    let mut revoked = 0;
    for user in UserStore::users_of_idp(&app.store, idp).await? {
        for f in RefreshStore::list_for_subject(&app.store, &user).await? {
            if f.revoked_at.is_none() {
                crate::oauth::revoke::revoke_family(app, &f.id, now, reason).await?;
                revoked += 1;
            }
        }
    }
    Ok(revoked)
}

/// Removes an IdP and revokes its users' sessions (the users and their links stay, so
/// adding the IdP back finds them). Refused while clients are bound to its workloads.
pub async fn remove(app: &App, actor: &Actor, name: &str) -> Result<IdpRemoved, AdminError> {
    let rec = find(app, name).await?;
    refuse_bound_clients(app, name, "remove").await?;
    let deleted = match IdpStore::delete(&app.store, name).await {
        Ok(deleted) => deleted,
        // A client was bound meanwhile.
        Err(StoreError::Conflict(_)) => {
            refuse_bound_clients(app, name, "remove").await?;
            return Err(AdminError::Conflict(
                "the identity provider changed; try again".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !deleted {
        return Err(AdminError::NotFound(
            format!("no identity provider named {name:?}").into(),
        ));
    }
    let revoked = revoke_sessions(app, name, app.clock.now(), REASON_REMOVED).await?;
    audit(
        app,
        actor,
        "idp.removed",
        Subjects::default(),
        json!({ "idp": name, "issuer": rec.issuer, "sessions_revoked": revoked }),
    )
    .await?;
    Ok(IdpRemoved {
        removed: rec.name,
        sessions_revoked: revoked,
    })
}

// === handlers ===

async fn list_h(State(app): State<App>) -> Result<Json<Vec<IdpView>>, AdminError> {
    list(&app).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn create_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<IdpView>), AdminError> {
    let new: NewIdp = parse_body(&body)?;
    let created = create(&app, &Actor::Client(caller.client_id), &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_h(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<IdpView>, AdminError> {
    get(&app, &name).await.map(Json)
}

#[tracing::instrument(skip_all)]
async fn update_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<IdpView>, AdminError> {
    let patch: IdpUpdate = parse_body(&body)?;
    update(&app, &Actor::Client(caller.client_id), &name, &patch)
        .await
        .map(Json)
}

#[tracing::instrument(skip_all)]
async fn remove_h(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<IdpRemoved>, AdminError> {
    remove(&app, &Actor::Client(caller.client_id), &name)
        .await
        .map(Json)
}

/// `/admin/v1/idps` and `/admin/v1/idps/{name}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            &format!("{PREFIX}/idps"),
            routing::get(list_h).post(create_h),
        )
        .route(
            &format!("{PREFIX}/idps/{{name}}"),
            routing::get(get_h).patch(update_h).delete(remove_h),
        )
}
