//! The token requests to an upstream's authorization server, and the subject tokens
//! Warden mints for token exchange.
//!
//! Both grants authenticate Warden with `client_secret_basic` (RFC 6749 §2.3.1: id and
//! secret form-encoded, then Base64) and name the upstream with `resource` (RFC 8707).
//!
//! **Token exchange** (RFC 8693 §2.1). The subject token is an access token Warden signs
//! for the user (`typ` `at+jwt`, `subject_token_type`
//! `urn:ietf:params:oauth:token-type:access_token`):
//!
//! | claim | value |
//! |---|---|
//! | `iss` | Warden's issuer |
//! | `aud` | the upstream authorization server's **issuer** identifier: the party that consumes the token (as RFC 7523 §3 says of assertions); its token endpoint may move, its issuer does not |
//! | `sub`, `client_id` | the user and the MCP client, from the validated token |
//! | `iat`, `nbf`, `exp`, `jti` | now, now, at most [`SUBJECT_TOKEN_TTL`] later (never past the user's own token), fresh |
//!
//! When the caller's token carries an `act` chain (a delegated agent), the acting party
//! goes as `actor_token`: the same kind of token with the outermost actor as `sub` and
//! the rest of the chain as its `act`. The upstream's authorization server must trust
//! Warden's issuer (and its JWKS) for token exchange.

use axum::http::{header, HeaderValue, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use warden_core::jwt;
use warden_core::secret::random_id;
use warden_core::server_settings::UpstreamClient;

use super::discovery::{fetch_failure, Discovered};
use super::CredentialError;
use crate::gateway::validate::Principal;
use crate::oauth::fetch::Outgoing;
use crate::App;

/// Longest life of a subject or actor token, seconds.
pub const SUBJECT_TOKEN_TTL: i64 = 300;
/// `expires_in` assumed when a token response has none (RFC 6749 §5.1 makes it
/// optional), seconds.
const DEFAULT_EXPIRES_IN: i64 = 300;
/// Longest a token is kept, whatever its `expires_in`, seconds.
const MAX_EXPIRES_IN: i64 = 24 * 3600;
/// Largest token response read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token the upstream's authorization server issued.
pub struct Issued {
    /// `Bearer …`, marked sensitive.
    pub header: HeaderValue,
    /// Its lifetime, seconds, within the bounds.
    pub expires_in: i64,
}

/// Which grant to ask for.
pub enum Grant<'p> {
    /// Warden as itself.
    ClientCredentials,
    /// On behalf of the user `principal` identifies.
    TokenExchange(&'p Principal),
}

/// Asks `at`'s token endpoint for a token for the upstream.
pub async fn request(
    app: &App,
    at: &Discovered,
    client: &UpstreamClient,
    grant: Grant<'_>,
    now: i64,
) -> Result<Issued, CredentialError> {
    let scope = client.scopes.join(" ");
    let mut fields: Vec<(&str, String)> = Vec::with_capacity(8);
    match &grant {
        Grant::ClientCredentials => fields.push(("grant_type", "client_credentials".into())),
        Grant::TokenExchange(principal) => {
            fields.push(("grant_type", TOKEN_EXCHANGE.into()));
            let subject = subject_token(app, &at.issuer, principal, now)?;
            fields.push(("subject_token", subject));
            fields.push(("subject_token_type", ACCESS_TOKEN_TYPE.into()));
            if let Some(act) = principal.act() {
                fields.push((
                    "actor_token",
                    actor_token(app, &at.issuer, principal, act, now)?,
                ));
                fields.push(("actor_token_type", ACCESS_TOKEN_TYPE.into()));
            }
            fields.push(("requested_token_type", ACCESS_TOKEN_TYPE.into()));
        }
    }
    fields.push(("resource", at.resource.clone()));
    if !scope.is_empty() {
        fields.push(("scope", scope));
    }
    let mut outgoing = Outgoing::post_form(
        &at.token_endpoint,
        fields.iter().map(|(k, v)| (*k, v.as_str())),
    );
    outgoing
        .headers
        .insert(header::AUTHORIZATION, basic_authorization(client)?);
    let answer = app
        .directory
        .fetcher
        .send(outgoing, MAX_TOKEN_RESPONSE)
        .await
        .map_err(|e| fetch_failure(&e, "the token endpoint"))?;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status != StatusCode::OK {
        let code = body
            .get("error")
            .and_then(Value::as_str)
            .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
            .unwrap_or("no error code");
        let detail = format!(
            "the token endpoint answered {} ({code})",
            answer.status.as_u16()
        );
        return Err(
            if answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS {
                CredentialError::Unavailable(detail)
            } else {
                CredentialError::Refused(detail)
            },
        );
    }
    issued(&body, matches!(grant, Grant::TokenExchange(_)))
}

/// Reads a successful token response: a Bearer access token and its lifetime.
fn issued(body: &Value, exchange: bool) -> Result<Issued, CredentialError> {
    let refused = |why: &str| CredentialError::Refused(format!("the token response {why}"));
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refused("has no access_token"))?;
    let token_type = body
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(refused("is not a Bearer token"));
    }
    if exchange {
        let issued_type = body.get("issued_token_type").and_then(Value::as_str);
        if issued_type.is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(refused("issued another token type than an access token"));
        }
    }
    let expires_in = match body.get("expires_in") {
        None => DEFAULT_EXPIRES_IN,
        Some(v) => v
            .as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| refused("has an invalid expires_in"))?,
    }
    .min(MAX_EXPIRES_IN);
    let mut header = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| refused("has an access_token that cannot be sent in a header"))?;
    header.set_sensitive(true);
    Ok(Issued { header, expires_in })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1), sensitive.
fn basic_authorization(client: &UpstreamClient) -> Result<HeaderValue, CredentialError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(&client.client_id),
        encode(client.client_secret.expose())
    );
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
        .map_err(|_| CredentialError::Refused("the client credentials cannot be sent".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The subject token for `principal`, for the authorization server `audience`.
fn subject_token(
    app: &App,
    audience: &str,
    principal: &Principal,
    now: i64,
) -> Result<String, CredentialError> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(principal.subject().to_owned()));
    claims.insert(
        "client_id".into(),
        Value::String(principal.client_id().to_owned()),
    );
    mint(app, audience, claims, principal.usable_until(), now)
}

/// The actor token for the outermost actor of `act`.
fn actor_token(
    app: &App,
    audience: &str,
    principal: &Principal,
    act: &Value,
    now: i64,
) -> Result<String, CredentialError> {
    let sub = act.get("sub").and_then(Value::as_str).ok_or_else(|| {
        CredentialError::Refused("the caller's delegation chain names no actor".into())
    })?;
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(sub.to_owned()));
    if let Some(prior) = act.get("act") {
        claims.insert("act".into(), prior.clone());
    }
    mint(app, audience, claims, principal.usable_until(), now)
}

/// Signs `claims` with the issuer, audience and times every Warden-minted token here
/// carries.
fn mint(
    app: &App,
    audience: &str,
    mut claims: Map<String, Value>,
    usable_until: i64,
    now: i64,
) -> Result<String, CredentialError> {
    let internal = |why: &str| CredentialError::Internal(why.to_owned());
    let key = app
        .keys
        .signing_key()
        .ok_or_else(|| internal("no active signing key"))?;
    let jti = random_id().map_err(|_| internal("random generator failed"))?;
    let exp = (now + SUBJECT_TOKEN_TTL).min(usable_until.max(now + 1));
    claims.insert("iss".into(), Value::String(app.config.issuer.clone()));
    claims.insert("aud".into(), Value::String(audience.to_owned()));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(exp));
    claims.insert("jti".into(), Value::String(jti));
    jwt::sign(&claims, "at+jwt", &key).map_err(|_| internal("subject token signing failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_must_be_a_bearer_access_token() {
        let ok = issued(
            &json!({"access_token": "t", "token_type": "bearer", "expires_in": 60}),
            false,
        )
        .unwrap();
        assert_eq!(ok.expires_in, 60);
        assert!(ok.header.is_sensitive());
        assert_eq!(
            issued(&json!({"access_token": "t", "token_type": "Bearer"}), false)
                .unwrap()
                .expires_in,
            DEFAULT_EXPIRES_IN
        );
        assert_eq!(
            issued(
                &json!({"access_token": "t", "token_type": "Bearer", "expires_in": 1_000_000}),
                false
            )
            .unwrap()
            .expires_in,
            MAX_EXPIRES_IN
        );
        for bad in [
            json!({"token_type": "Bearer"}),
            json!({"access_token": "t", "token_type": "DPoP"}),
            json!({"access_token": "t", "token_type": "N_A"}),
            json!({"access_token": "t", "token_type": "Bearer", "expires_in": -1}),
            json!({"access_token": "t", "token_type": "Bearer", "expires_in": "60"}),
            json!({"access_token": "a\nb", "token_type": "Bearer"}),
        ] {
            assert!(issued(&bad, false).is_err(), "{bad}");
        }
        let refresh = json!({"access_token": "t", "token_type": "Bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"});
        assert!(issued(&refresh, true).is_err());
        assert!(issued(&refresh, false).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let client = UpstreamClient {
            client_id: "a b:c".into(),
            client_secret: warden_core::secret::SecretString::new("p@ss/w"),
            scopes: vec![],
            issuer: None,
        };
        let v = basic_authorization(&client).unwrap();
        assert!(v.is_sensitive());
        let encoded = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "a+b%3Ac:p%40ss%2Fw");
    }
}
