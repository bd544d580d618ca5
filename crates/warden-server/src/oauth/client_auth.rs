//! Client authentication at the token, revocation and introspection endpoints:
//! `none` (public clients), `client_secret_basic`, `client_secret_post` and
//! `private_key_jwt` (RFC 7523, see [`super::assertion`]).

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use warden_core::credentials;
use warden_store::ClientRecord;

use super::assertion::{self, JWT_BEARER};
use super::directory::{find_client, note_first_use, LookupError};
use super::params::Params;
use super::{ErrorCode, OAuthError};
use crate::App;

/// How the client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: identified, not authenticated.
    None,
    /// HTTP Basic.
    SecretBasic,
    /// Secret in the form body.
    SecretPost,
    /// A JWT signed with the client's private key.
    PrivateKeyJwt,
}

/// A client that passed authentication (or identified itself, if public).
#[derive(Clone)]
pub struct AuthenticatedClient {
    /// The client's registration.
    pub record: Arc<ClientRecord>,
    /// The method used.
    pub method: AuthMethod,
}

struct Presented {
    client_id: String,
    secret: Option<String>,
    assertion: Option<String>,
    method: AuthMethod,
}

fn invalid_client(basic: bool) -> OAuthError {
    OAuthError {
        basic_challenge: basic,
        ..OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
    }
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    if assertion.is_some() || assertion_type.is_some() {
        if headers.contains_key(header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let (Some(assertion), Some(JWT_BEARER)) = (assertion, assertion_type) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, with a client_assertion",
            ));
        };
        // The assertion names its client; a client_id sent beside it must agree.
        let claimed = assertion::claimed_client(assertion).ok_or_else(|| invalid_client(false))?;
        if body_id.is_some_and(|b| b != claimed) {
            return Err(invalid_client(false));
        }
        return Ok(Presented {
            client_id: claimed,
            secret: None,
            assertion: Some(assertion.to_owned()),
            method: AuthMethod::PrivateKeyJwt,
        });
    }
    let values = headers.get_all(header::AUTHORIZATION).iter();
    let header = credentials::single_header(values.map(HeaderValue::as_bytes))
        .map_err(|_| invalid_client(true))?;
    if let Some(text) = header {
        let Some(basic) = credentials::basic(text).map_err(|_| invalid_client(true))? else {
            return Err(OAuthError::invalid_request(
                "only HTTP Basic client authentication is accepted in the Authorization header",
            ));
        };
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let (id, secret) = basic.oauth_client();
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret.to_string()),
            assertion: None,
            method: AuthMethod::SecretBasic,
        });
    }
    let client_id = body_id.ok_or_else(|| invalid_client(false))?.to_owned();
    match body_secret {
        Some(s) => Ok(Presented {
            client_id,
            secret: Some(s.to_owned()),
            assertion: None,
            method: AuthMethod::SecretPost,
        }),
        None => Ok(Presented {
            client_id,
            secret: None,
            assertion: None,
            method: AuthMethod::None,
        }),
    }
}

/// Authenticates the client of a token-endpoint style request, as of `now`.
pub async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    now: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let p = presented(headers, params)?;
    let basic = p.method == AuthMethod::SecretBasic;
    if p.client_id.is_empty() || p.client_id.len() > 2048 {
        return Err(invalid_client(basic));
    }
    let record = match find_client(app, &p.client_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(invalid_client(basic)),
        Err(LookupError::Store(e)) => return Err(e.into()),
        Err(LookupError::Document(e)) => {
            return Err(OAuthError {
                basic_challenge: basic,
                ..OAuthError::new(ErrorCode::InvalidClient, e.to_string())
            })
        }
    };
    let key_client = record.token_endpoint_auth_method == "private_key_jwt";
    match (p.method, &p.secret, &p.assertion) {
        (AuthMethod::None, _, _) if !record.confidential => {}
        (AuthMethod::SecretBasic | AuthMethod::SecretPost, Some(secret), _)
            if record.confidential && !key_client =>
        {
            let ok = record
                .secrets
                .iter()
                .filter(|s| s.expires_at.is_none_or(|e| e > now))
                .fold(false, |acc, s| acc | app.secrets.verify(secret, &s.hash));
            if !ok {
                return Err(invalid_client(basic));
            }
        }
        (AuthMethod::PrivateKeyJwt, _, Some(jwt)) if key_client => {
            assertion::verify(app, &record, jwt, now).await?;
        }
        // A confidential client without credentials, a public client presenting some, or
        // a method the client did not register.
        _ => return Err(invalid_client(basic)),
    }
    note_first_use(app, &record, now).await;
    Ok(AuthenticatedClient {
        record,
        method: p.method,
    })
}
