//! Revocation (RFC 7009) and the revocation of whole grants.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use warden_core::jwt::{AccessTokenRule, Audience, Expiry};
use warden_core::secret::token_hash;
use warden_store::{AccessTokenStore, RefreshStore, RevocationStore, StoreError};

use super::client_auth::authenticate;
use super::params::Params;
use super::OAuthError;
use crate::audit::Event;
use crate::App;

/// How long a revoked grant's `sid` stays denylisted: the longest access-token lifetime
/// Warden issues, so every access token of the grant has expired by then.
pub const SID_DENY_SECS: i64 = 86_400;

/// Revokes refresh family `family_id` (and families derived from it) and denylists its
/// `sid` so that its access tokens stop working too.
pub async fn revoke_family(
    app: &App,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    RefreshStore::revoke_family(&app.store, family_id, now, reason).await?;
    let until = now + SID_DENY_SECS;
    RevocationStore::revoke(&app.store, family_id, until, now).await?;
    app.revoked.insert(family_id.to_owned(), until);
    Ok(())
}

/// Revokes every refresh family created in browser session `sid` of `user_id`.
pub async fn revoke_session(
    app: &App,
    sid: &str,
    user_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let families = RefreshStore::list_for_subject(&app.store, user_id).await?;
    let mut n = 0;
    for f in families
        .iter()
        .filter(|f| f.session_id.as_deref() == Some(sid) && f.revoked_at.is_none())
    {
        revoke_family(app, &f.id, now, "signed out").await?;
        n += 1;
    }
    app.audit.submit(
        app.clock.now_ms(),
        Event {
            kind: "session.ended",
            client_id: None,
            subject: Some(user_id.to_owned()),
            server: None,
            detail: json!({ "families_revoked": n }),
        },
        &app.metrics,
    );
    Ok(n)
}

/// Verifies a Warden access token for any one audience, as of `now`: introspection,
/// revocation and token exchange look at tokens for every server.
pub fn verify_own_jwt(
    app: &App,
    token: &str,
    expiry: Expiry,
    now: i64,
) -> Option<Map<String, Value>> {
    let rule = AccessTokenRule {
        issuer: &app.config.issuer,
        audience: Audience::AnyOne,
        leeway: 0,
        expiry,
    };
    app.keys.verify_access_token(token, &rule, now).ok()
}

fn ok_empty() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /oauth/revoke`.
#[tracing::instrument(skip_all)]
pub async fn revoke(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&app, &headers, &body).await {
        Ok(()) => ok_empty(),
        Err(e) => e.into_response(),
    }
}

async fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let params = Params::parse(body)?;
    let now = app.clock.now();
    let client = authenticate(app, headers, &params, now).await?;
    let token = params.require("token")?;
    let client_id = client.record.client_id.as_str();
    // Refresh tokens are looked up by hash; anything else is tried as an access token.
    if let Some((family, _)) = RefreshStore::find_by_token(&app.store, &token_hash(token)).await? {
        // A token of another client is answered like an unknown one (RFC 7009 §2.2): no
        // oracle for whether it exists.
        if family.client_id == client_id && family.revoked_at.is_none() {
            revoke_family(app, &family.id, now, "revoked by client").await?;
            audit(
                app,
                client_id,
                &family.subject,
                json!({ "token_type": "refresh_token", "family": family.id }),
            )
            .await?;
        }
        return Ok(());
    }
    if let Some(t) = AccessTokenStore::find(&app.store, &token_hash(token), now).await? {
        if t.client_id == client_id {
            RevocationStore::revoke(&app.store, &t.jti, t.expires_at, now).await?;
            app.revoked.insert(t.jti.clone(), t.expires_at);
            audit(
                app,
                client_id,
                &t.subject,
                json!({ "token_type": "access_token", "jti": t.jti }),
            )
            .await?;
        }
        return Ok(());
    }
    // An expired token needs no revocation, but accept it quietly.
    if let Some(claims) = verify_own_jwt(app, token, Expiry::Ignore, now) {
        let same_client = claims.get("client_id").and_then(Value::as_str) == Some(client_id);
        let (Some(jti), Some(exp)) = (
            claims.get("jti").and_then(Value::as_str),
            claims.get("exp").and_then(Value::as_i64),
        ) else {
            return Ok(());
        };
        if same_client && exp > now {
            RevocationStore::revoke(&app.store, jti, exp, now).await?;
            app.revoked.insert(jti.to_owned(), exp);
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            audit(
                app,
                client_id,
                &sub,
                json!({ "token_type": "access_token", "jti": jti }),
            )
            .await?;
        }
    }
    Ok(())
}

async fn audit(app: &App, client_id: &str, subject: &str, detail: Value) -> Result<(), OAuthError> {
    app.audit
        .record(
            app.clock.now_ms(),
            Event {
                kind: "token.revoked",
                client_id: Some(client_id.to_owned()),
                subject: Some(subject.to_owned()),
                server: None,
                detail,
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| OAuthError::unavailable(&e))
}
