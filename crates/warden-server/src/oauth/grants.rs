//! The authorization-code and refresh-token grants.
//!
//! Both end in [`issue_pair`]: an access token for one resource and, if the client may
//! refresh, a refresh token in the grant's family. The family id is fixed when the code is
//! minted, so a replayed code can revoke everything issued from it, and it travels in the
//! access token as `sid` so that revoking the family reaches its access tokens too.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use warden_core::dpop::{grant_binding, GrantHolder};
use warden_core::grant::narrow_scope;
use warden_core::pkce;
use warden_core::scope::ScopeSet;
use warden_core::secret::{generate, token_hash, SecretKind};
use warden_core::uri::CanonicalUri;
use warden_proto::oauth::TokenResponse;
use warden_store::{
    CodeStore, RefreshFamily, RefreshStore, RotateOutcome, ServerRecord, TakeOutcome, TokenState,
    UserStore,
};

use super::authorize::defined_scopes;
use super::client_auth::AuthenticatedClient;
use super::issue::{answer, server_ttl, Answer, Claims};
use super::params::Params;
use super::revoke::revoke_family;
use super::{ErrorCode, OAuthError};
use crate::audit::Event;
use crate::App;

fn invalid_grant(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, d)
}

/// Picks the token's audience among the grant's resources: the one requested, or the only
/// one there is.
async fn pick_resource(
    app: &App,
    params: &Params,
    granted: &[String],
) -> Result<Arc<ServerRecord>, OAuthError> {
    let target = match params.all("resource") {
        [] => match granted {
            [only] => only.clone(),
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource is required: the grant covers several",
                ))
            }
        },
        [one] => CanonicalUri::parse(one)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, format!("resource {e}")))?
            .as_str()
            .to_owned(),
        _ => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "one resource per token",
            ))
        }
    };
    if !granted.contains(&target) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource was not part of the authorization",
        ));
    }
    super::directory::server_by_uri(app, &target)
        .await?
        .ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidTarget, "resource is no longer registered")
        })
}

/// The scope a code or refresh grant issues ([`narrow_scope`]): the ceiling is what was
/// `granted` (consented), and what is allowed now is what `server` still defines and the
/// fleet policy lets `client_id` have for user `subject`; with the policy's bound on token
/// lifetime. Done before any side effect, so a refused grant leaves nothing behind.
async fn grant_scope(
    app: &App,
    params: &Params,
    granted: &[String],
    client_id: &str,
    subject: &str,
    server: &ServerRecord,
) -> Result<(ScopeSet, Option<i64>), OAuthError> {
    let groups = UserStore::get(&app.store, subject)
        .await?
        .map(|u| u.groups)
        .unwrap_or_default();
    let policy = app.policy.get();
    let defined = defined_scopes(std::slice::from_ref(server));
    let allowed = policy.delegated_scopes(client_id, &groups, &server.name, &defined);
    let ceiling = ScopeSet::from_iter_valid(granted.iter().cloned());
    let scope = narrow_scope(params.get("scope"), &ceiling, &allowed)?;
    Ok((scope, policy.max_lifetime(client_id, &groups)))
}

/// The server, scope and lifetime bound a refresh of `family` issues for ([`grant_scope`]
/// with the family's consented scopes).
async fn family_grant(
    app: &App,
    params: &Params,
    family: &RefreshFamily,
) -> Result<(Arc<ServerRecord>, ScopeSet, Option<i64>), OAuthError> {
    let server = pick_resource(app, params, &family.resources).await?;
    let (scope, max_lifetime) = grant_scope(
        app,
        params,
        &family.scopes,
        &family.client_id,
        &family.subject,
        &server,
    )
    .await?;
    Ok((server, scope, max_lifetime))
}

/// What a refresh-token replay inside the grace window is answered with.
#[derive(Serialize, Deserialize)]
struct Grace {
    refresh_token: String,
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    app: &App,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    let verifier = params.require("code_verifier")?;
    let redirect_uri = params.require("redirect_uri")?;
    let rec = match CodeStore::take(&app.store, &token_hash(code), now).await? {
        TakeOutcome::Taken(rec) => rec,
        TakeOutcome::AlreadyUsed(rec) => {
            // A second use means the code leaked: revoke whatever the first use produced.
            revoke_family(app, &rec.family_id, now, "authorization code replayed").await?;
            app.audit
                .record(
                    app.clock.now_ms(),
                    Event {
                        kind: "code.replay_detected",
                        client_id: Some(rec.client_id.clone()),
                        subject: Some(rec.subject.clone()),
                        server: None,
                        detail: json!({ "family": rec.family_id }),
                    },
                )
                .await
                .map_err(|e| OAuthError::unavailable(&e))?;
            return Err(invalid_grant(
                "authorization code already used; tokens issued from it are revoked",
            ));
        }
        TakeOutcome::Expired => return Err(invalid_grant("authorization code expired")),
        TakeOutcome::NotFound => return Err(invalid_grant("authorization code is invalid")),
    };
    if rec.client_id != client.record.client_id {
        return Err(invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if rec.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    pkce::verify(verifier, &rec.code_challenge)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidGrant, e.to_string()))?;
    // The tokens, and the refresh family, are bound to the proof's key, if any; a code
    // bound with `dpop_jkt` (RFC 9449 §10) needs a proof by that key.
    let jkt = grant_binding(rec.dpop_jkt.as_deref(), GrantHolder::Key, dpop)?;
    let server = pick_resource(app, params, &rec.resources).await?;
    let (scope, max_lifetime) = grant_scope(
        app,
        params,
        &rec.scopes,
        &rec.client_id,
        &rec.subject,
        &server,
    )
    .await?;
    let refresh = if client
        .record
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
    {
        let token = generate(SecretKind::RefreshToken).map_err(|e| OAuthError::server_error(&e))?;
        let family = RefreshFamily {
            id: rec.family_id.clone(),
            client_id: rec.client_id.clone(),
            subject: rec.subject.clone(),
            scopes: rec.scopes.clone(),
            resources: rec.resources.clone(),
            session_id: rec.session_id.clone(),
            current_hash: token_hash(token.expose()),
            generation: 0,
            token_expires_at: now + app.config.tokens.refresh_token_ttl,
            session_expires_at: now + app.config.tokens.session_ttl,
            created_at: now,
            rotated_at: now,
            revoked_at: None,
            revoked_reason: None,
            grace: None,
            parent_family: None,
            dpop_jkt: jkt.clone(),
        };
        RefreshStore::create(&app.store, &family).await?;
        Some(token.expose().to_owned())
    } else {
        None
    };
    issue_pair(
        app,
        &rec.client_id,
        &rec.subject,
        &rec.family_id,
        &server,
        &scope,
        max_lifetime,
        refresh,
        "authorization_code",
        jkt.as_deref(),
        now,
    )
    .await
}

/// `grant_type=refresh_token`.
pub async fn refresh_token(
    app: &App,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.require("refresh_token")?;
    let hash = token_hash(presented);
    let (family, state) = RefreshStore::find_by_token(&app.store, &hash)
        .await?
        .ok_or_else(|| invalid_grant("refresh token is invalid"))?;
    if family.client_id != client.record.client_id {
        return Err(invalid_grant("refresh token was issued to another client"));
    }
    if family.revoked_at.is_some() {
        return Err(invalid_grant("refresh token is revoked"));
    }
    if !client
        .record
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use refresh tokens",
        ));
    }
    // RFC 9449 §5: a public client's refresh tokens are bound to its key; a
    // confidential client's to its credentials, but its access tokens stay bound.
    let holder = if client.record.confidential {
        GrantHolder::ConfidentialClient
    } else {
        GrantHolder::Key
    };
    let jkt = grant_binding(family.dpop_jkt.as_deref(), holder, dpop)?;
    let jkt = jkt.as_deref();
    if let TokenState::Superseded {
        generation,
        superseded_at,
    } = state
    {
        return replayed(app, &family, generation, superseded_at, params, jkt, now).await;
    }
    if family.token_expires_at <= now || family.session_expires_at <= now {
        return Err(invalid_grant("refresh token expired"));
    }
    let (server, scope, max_lifetime) = family_grant(app, params, &family).await?;
    let successor = generate(SecretKind::RefreshToken).map_err(|e| OAuthError::server_error(&e))?;
    let grace = if app.config.tokens.refresh_grace > 0 {
        let blob = Grace {
            refresh_token: successor.expose().to_owned(),
        };
        let json = serde_json::to_vec(&blob).map_err(|e| OAuthError::server_error(&e))?;
        Some(
            app.sealer
                .seal(&format!("grace:{}", family.id), &json)
                .map_err(|e| OAuthError::server_error(&e))?,
        )
    } else {
        None
    };
    // A family refreshed with a proof for the first time stays bound from now on: a
    // later refresh without one gets nothing (before the rotation, so that a binding is
    // never lost to a failure between the two).
    if let (None, Some(jkt)) = (&family.dpop_jkt, jkt) {
        RefreshStore::bind_dpop(&app.store, &family.id, jkt).await?;
    }
    let expires = (now + app.config.tokens.refresh_token_ttl).min(family.session_expires_at);
    match RefreshStore::rotate(
        &app.store,
        &family.id,
        &hash,
        &token_hash(successor.expose()),
        expires,
        grace.as_deref(),
        now,
    )
    .await?
    {
        RotateOutcome::Rotated(_) => {}
        // Another request rotated this token first: this one is a replay of it.
        RotateOutcome::Lost => {
            let (fresh, _) = RefreshStore::find_by_token(&app.store, &hash)
                .await?
                .ok_or_else(|| invalid_grant("refresh token is invalid"))?;
            return replayed(app, &fresh, fresh.generation - 1, now, params, jkt, now).await;
        }
        RotateOutcome::NotFound => return Err(invalid_grant("refresh token is invalid")),
    }
    issue_pair(
        app,
        &family.client_id,
        &family.subject,
        &family.id,
        &server,
        &scope,
        max_lifetime,
        Some(successor.expose().to_owned()),
        "refresh_token",
        jkt,
        now,
    )
    .await
}

/// A superseded refresh token came back: inside the grace window (and only for the token
/// just replaced) it gets the same successor; otherwise the family is revoked.
async fn replayed(
    app: &App,
    family: &RefreshFamily,
    generation: i64,
    superseded_at: i64,
    params: &Params,
    jkt: Option<&str>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let grace = app.config.tokens.refresh_grace;
    let in_window = grace > 0
        && generation + 1 == family.generation
        && now - superseded_at <= grace
        && family.revoked_at.is_none();
    if in_window {
        if let Some(blob) = &family.grace {
            let plain = app
                .sealer
                .open(&format!("grace:{}", family.id), blob)
                .map_err(|e| OAuthError::server_error(&e))?;
            let g: Grace =
                serde_json::from_slice(&plain).map_err(|e| OAuthError::server_error(&e))?;
            let (server, scope, max_lifetime) = family_grant(app, params, family).await?;
            return issue_pair(
                app,
                &family.client_id,
                &family.subject,
                &family.id,
                &server,
                &scope,
                max_lifetime,
                Some(g.refresh_token),
                "refresh_token",
                jkt,
                now,
            )
            .await;
        }
    }
    revoke_family(app, &family.id, now, "refresh token reuse detected").await?;
    app.audit
        .record(app.clock.now_ms(), Event {
            kind: "refresh.reuse_detected",
            client_id: Some(family.client_id.clone()),
            subject: Some(family.subject.clone()),
            server: None,
            detail: json!({ "family": family.id, "generation_presented": generation, "current_generation": family.generation }),
        })
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    Err(invalid_grant(
        "refresh token was already used; the session is revoked",
    ))
}

/// Mints the access token, records the audit event, and builds the response.
#[allow(clippy::too_many_arguments)]
async fn issue_pair(
    app: &App,
    client_id: &str,
    subject: &str,
    family_id: &str,
    server: &ServerRecord,
    scope: &ScopeSet,
    max_lifetime: Option<i64>,
    refresh_token: Option<String>,
    grant_type: &'static str,
    jkt: Option<&str>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let ttl = server_ttl(app, server).min(max_lifetime.unwrap_or(i64::MAX));
    let claims = Claims {
        subject,
        client_id,
        server,
        scope,
        now,
        ttl,
        sid: Some(family_id),
        act: None,
        jkt,
    };
    let outcome = Answer {
        grant_type,
        audit_kind: if grant_type == "refresh_token" {
            "token.refreshed"
        } else {
            "token.issued"
        },
        refresh_token,
        issued_token_type: None,
        detail: Map::new(),
    };
    answer(app, &claims, outcome).await
}
