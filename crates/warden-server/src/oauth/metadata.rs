//! Discovery documents (RFC 8414, OpenID Discovery) and the JWKS.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use warden_proto::oauth::AuthorizationServerMetadata;
use warden_store::ServerStore;

use super::OAuthError;
use crate::App;

/// Builds the metadata document from the config and the registered servers' scopes.
pub async fn document(app: &App) -> Result<AuthorizationServerMetadata, OAuthError> {
    let iss = &app.config.issuer;
    let mut scopes: Vec<String> = ServerStore::list(&app.store)
        .await?
        .into_iter()
        // The admin scopes are for admin clients only: not advertised to everyone.
        .filter(|s| !crate::builtin::is_builtin(s))
        .flat_map(|s| s.tool_groups.into_iter().map(|g| g.scope))
        .collect();
    scopes.sort();
    scopes.dedup();
    let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let auth_methods = v(&[
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]);
    let reg = &app.config.registration;
    Ok(AuthorizationServerMetadata {
        issuer: iss.clone(),
        authorization_endpoint: format!("{iss}/oauth/authorize"),
        token_endpoint: format!("{iss}/oauth/token"),
        jwks_uri: format!("{iss}/oauth/jwks.json"),
        revocation_endpoint: format!("{iss}/oauth/revoke"),
        introspection_endpoint: format!("{iss}/oauth/introspect"),
        registration_endpoint: reg.enabled.then(|| format!("{iss}/oauth/register")),
        scopes_supported: scopes,
        response_types_supported: v(&["code"]),
        response_modes_supported: v(&["query"]),
        grant_types_supported: v(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            super::exchange::GRANT_TYPE,
            warden_proto::oauth::JWT_BEARER_GRANT,
        ]),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: v(super::assertion::ALGORITHMS),
        revocation_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: v(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]),
        code_challenge_methods_supported: v(&["S256"]),
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: reg.metadata_documents,
        subject_types_supported: v(&["public"]),
        id_token_signing_alg_values_supported: v(&[app.config.tokens.signing_alg.as_str()]),
        authorization_grant_profiles_supported: v(&[warden_proto::oauth::ID_JAG_PROFILE]),
        dpop_signing_alg_values_supported: v(app.dpop.algorithms()),
    })
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn metadata(State(app): State<App>) -> Result<Response, OAuthError> {
    let doc = document(&app).await?;
    let mut resp = Json(doc).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// `GET /oauth/jwks.json`.
pub async fn jwks(State(app): State<App>) -> Response {
    let mut resp = Json(app.keys.jwks().as_ref().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    resp
}
