//! Who may call the admin API: bearer tokens Warden issued for the admin resource.
//!
//! A token is accepted when it verifies (signature, `typ`, `iss`, `exp`/`nbf` with the
//! resource's leeway), its `aud` is the admin resource, it is not revoked, and it is a
//! client-credentials token (`sub` is the client itself, no session, no delegation) of a
//! client that is still registered with the scope it carries. A user's consented token
//! is refused even for the admin audience: administration is for admin clients only, and
//! deleting an admin client, or removing its scope, cuts its tokens off at once.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use warden_core::credentials;
use warden_core::jwt::{AccessTokenRule, Audience, Expiry};
use warden_core::scope::ScopeSet;
use warden_store::{ClientStore, ServerStore};

use super::{
    ensure_resource, is_builtin, resource_metadata_url, AdminError, ADMIN_SERVER, SCOPE_READ,
    SCOPE_WRITE,
};
use crate::audit::Event;
use crate::App;

/// The authenticated caller, for handlers (and the audit log).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The admin client.
    pub client_id: String,
    /// The scopes it holds now: the token's, still granted by its registration.
    pub scopes: ScopeSet,
}

/// Middleware on every protected admin route: `GET`/`HEAD` need `admin:read`, anything
/// else `admin:write`. Puts the [`Caller`] into the request's extensions.
pub async fn require_token(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let required = if matches!(*req.method(), Method::GET | Method::HEAD) {
        SCOPE_READ
    } else {
        SCOPE_WRITE
    };
    match authorize(&app, req.headers(), required).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            if !matches!(
                e,
                AdminError::Unauthenticated {
                    presented: false,
                    ..
                }
            ) {
                let event = Event {
                    kind: "admin.denied",
                    client_id: None,
                    subject: None,
                    server: Some(ADMIN_SERVER.to_owned()),
                    detail: json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "error": e.code(),
                        "required_scope": required,
                    }),
                };
                app.audit.submit(app.clock.now_ms(), event, &app.metrics);
            }
            e.into_response()
        }
    }
}

/// The bearer token of `Authorization: Bearer …`, if that is what the one header holds
/// (the same parser as the gateway's: anything malformed is no token here).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let values = headers.get_all(header::AUTHORIZATION).iter();
    let text = credentials::single_header(values.map(HeaderValue::as_bytes)).ok()??;
    credentials::bearer(text).ok()?
}

/// Checks the request's token for a call that needs `required`.
pub async fn authorize(
    app: &App,
    headers: &HeaderMap,
    required: &'static str,
) -> Result<Caller, AdminError> {
    let resource_metadata = resource_metadata_url(&app.config);
    let refuse = |presented: bool| AdminError::Unauthenticated {
        presented,
        resource_metadata: resource_metadata.clone(),
    };
    let token = bearer(headers).ok_or_else(|| refuse(false))?;
    let now = app.clock.now();
    let resource = match ServerStore::get(&app.store, ADMIN_SERVER).await? {
        Some(rec) if is_builtin(&rec) => rec,
        // Not registered yet (the store was down at startup): register it now.
        None => ensure_resource(&app.store, &app.config, now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e.detail(), "cannot register the admin resource");
                AdminError::Unavailable("the admin API is not available; see the server log".into())
            })?,
        Some(_) => return Err(AdminError::Unavailable(
            "the admin API is not available: a server named `admin` blocks it; see the server log"
                .into(),
        )),
    };
    let claims = verify(
        app,
        token,
        &resource.canonical_uri,
        resource.leeway_secs,
        now,
    )
    .ok_or_else(|| refuse(true))?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if app.revoked.token_revoked(text("jti"), text("sid")) {
        return Err(refuse(true));
    }
    let client_id = text("client_id").ok_or_else(|| refuse(true))?;
    let machine = text("sub") == Some(client_id)
        && !claims.contains_key("sid")
        && !claims.contains_key("act");
    if !machine {
        return Err(AdminError::InsufficientScope {
            required,
            description: "the admin API accepts only client-credentials tokens of admin clients"
                .into(),
            resource_metadata,
        });
    }
    let client = ClientStore::get(&app.store, client_id)
        .await?
        .filter(|c| c.confidential)
        .ok_or_else(|| refuse(true))?;
    let held = text("scope")
        .and_then(|s| ScopeSet::parse(s).ok())
        .unwrap_or_default()
        .intersection(&ScopeSet::from_iter_valid(client.scopes.iter().cloned()));
    let allowed =
        held.contains(SCOPE_WRITE) || (required == SCOPE_READ && held.contains(SCOPE_READ));
    if !allowed {
        return Err(AdminError::InsufficientScope {
            required,
            description: format!("this call needs the {required} scope").into(),
            resource_metadata,
        });
    }
    Ok(Caller {
        client_id: client.client_id,
        scopes: held,
    })
}

fn verify(
    app: &App,
    token: &str,
    audience: &str,
    leeway: i64,
    now: i64,
) -> Option<Map<String, Value>> {
    let rule = AccessTokenRule {
        issuer: &app.config.issuer,
        audience: Audience::Exactly(audience),
        leeway,
        expiry: Expiry::Enforce,
    };
    match app.keys.verify_access_token(token, &rule, now) {
        // The admin API reads bearer tokens only: a DPoP-bound token is never one
        // (RFC 9449 §7.2).
        Ok(claims) => match warden_core::dpop::check_binding(claims.get("cnf"), None, false) {
            Ok(()) => Some(claims),
            Err(e) => {
                tracing::info!(reason = e.reason(), "admin API token refused");
                None
            }
        },
        Err(e) => {
            tracing::info!(reason = %e, "admin API token refused");
            None
        }
    }
}

/// `GET /.well-known/oauth-protected-resource/admin`: the admin resource's RFC 9728
/// metadata.
pub async fn resource_metadata(State(app): State<App>) -> Response {
    let c = &app.config;
    Json(json!({
        "resource": super::resource_uri(c),
        "authorization_servers": [c.issuer],
        "scopes_supported": [SCOPE_READ, SCOPE_WRITE],
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden admin API",
        "resource_documentation": format!("{}{}/openapi.json", c.public_url, super::PREFIX),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_takes_exactly_one_well_formed_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a b"),
        );
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer def"),
        );
        assert_eq!(bearer(&h), None);
    }
}
