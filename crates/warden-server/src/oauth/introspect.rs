//! Token introspection (RFC 7662).
//!
//! Only confidential clients may introspect. A client sees its own tokens; a client
//! registered with the `warden:introspect` scope (a resource server that validates
//! Warden's tokens itself) sees any. Everything else, and anything expired, revoked or
//! unknown, is `{"active": false}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use warden_core::jwt::Expiry;
use warden_core::secret::{token_hash, SecretKind};
use warden_store::{AccessTokenStore, RefreshStore};

use super::client_auth::{authenticate, AuthMethod};
use super::params::Params;
use super::revoke::verify_own_jwt;
use super::{ErrorCode, OAuthError};
use crate::App;

/// The registered scope that lets a client introspect every token.
pub const INTROSPECT_ALL: &str = "warden:introspect";

/// `POST /oauth/introspect`. Debug level, as for the token endpoint: a span per
/// request at info level is a measurable cost on a hot endpoint.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn introspect(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&app, &headers, &body).await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let params = Params::parse(body)?;
    let now = app.clock.now();
    let client = authenticate(app, headers, &params, now).await?;
    if client.method == AuthMethod::None {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "introspection requires client authentication",
        ));
    }
    let token = params.require("token")?;
    let caller = client.record.client_id.as_str();
    let sees_all = client.record.scopes.iter().any(|s| s == INTROSPECT_ALL);
    let inactive = json!({ "active": false });

    if let Some(claims) = verify_own_jwt(app, token, Expiry::Enforce, now) {
        let get = |k: &str| claims.get(k).and_then(Value::as_str);
        if app.revoked.token_revoked(get("jti"), get("sid")) {
            return Ok(inactive);
        }
        if !(sees_all || get("client_id") == Some(caller)) {
            return Ok(inactive);
        }
        let bound = claims.contains_key("cnf");
        let mut out =
            json!({ "active": true, "token_type": if bound { "DPoP" } else { "Bearer" } });
        for k in [
            "scope",
            "client_id",
            "sub",
            "aud",
            "iss",
            "exp",
            "iat",
            "nbf",
            "jti",
            "act",
            "cnf",
        ] {
            if let Some(v) = claims.get(k) {
                out[k] = v.clone();
            }
        }
        return Ok(out);
    }
    if token.starts_with(SecretKind::AccessToken.prefix()) {
        let Some(t) = AccessTokenStore::find(&app.store, &token_hash(token), now).await? else {
            return Ok(inactive);
        };
        let revoked = app.revoked.token_revoked(Some(&t.jti), t.sid.as_deref());
        if revoked || !(sees_all || t.client_id == caller) {
            return Ok(inactive);
        }
        let mut out = json!({
            "active": true,
            "token_type": if t.cnf_jkt.is_some() { "DPoP" } else { "Bearer" },
            "scope": t.scope,
            "client_id": t.client_id,
            "sub": t.subject,
            "aud": t.audience,
            "iss": app.config.issuer,
            "exp": t.expires_at,
            "iat": t.issued_at,
            "jti": t.jti,
        });
        if let Some(act) = t
            .act
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
        {
            out["act"] = act;
        }
        if let Some(jkt) = &t.cnf_jkt {
            out["cnf"] = warden_core::dpop::cnf_for(jkt);
        }
        return Ok(out);
    }
    if let Some((family, state)) =
        RefreshStore::find_by_token(&app.store, &token_hash(token)).await?
    {
        let live = matches!(state, warden_store::TokenState::Current)
            && family.revoked_at.is_none()
            && family.token_expires_at > now
            && family.session_expires_at > now;
        if live && (sees_all || family.client_id == caller) {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": family.client_id,
                "sub": family.subject,
                "scope": family.scopes.join(" "),
                "exp": family.token_expires_at,
                "iss": app.config.issuer,
            }));
        }
    }
    Ok(inactive)
}
