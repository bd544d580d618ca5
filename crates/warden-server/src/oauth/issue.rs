//! Issuing an access token: its claims, its format (an RFC 9068 JWT, or an opaque token
//! of which only the hash is stored), and the one tail every grant ends with (audit
//! record, metric, token response). The grants themselves are in [`super::grants`],
//! [`super::exchange`] and [`super::token`].

use serde::Serialize;
use serde_json::{Map, Value};
use warden_core::client_metadata::dpop_bound_access_tokens;
use warden_core::dpop::{cnf_for, require_binding};
use warden_core::jwt::{self, AT_JWT_TYP};
use warden_core::scope::ScopeSet;
use warden_core::secret::{generate, random_id, token_hash, SecretKind};
use warden_core::server_settings::{ServerSettings, TokenFormat};
use warden_proto::oauth::TokenResponse;
use warden_store::{AccessTokenRecord, AccessTokenStore, ServerRecord};

use super::OAuthError;
use crate::audit::Event;
use crate::App;

/// The access-token lifetime of `server`: its own setting, else the configured default.
pub fn server_ttl(app: &App, server: &ServerRecord) -> i64 {
    ttl_of(server, &app.config)
}

/// The access-token lifetime `server` gets under `config`: its own, else the default.
pub fn ttl_of(server: &ServerRecord, config: &warden_core::config::Config) -> i64 {
    if server.access_token_ttl_secs > 0 {
        server.access_token_ttl_secs
    } else {
        config.tokens.access_token_ttl
    }
}

/// A freshly signed access token and its id.
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
}

/// What goes into an access token.
pub struct Claims<'a> {
    /// `sub`: the user, or the client itself for machine grants.
    pub subject: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// The server whose canonical URI is the `aud`.
    pub server: &'a ServerRecord,
    /// `scope`.
    pub scope: &'a ScopeSet,
    /// `iat`/`nbf`.
    pub now: i64,
    /// Lifetime, seconds.
    pub ttl: i64,
    /// `sid`: the refresh family (grant) the token belongs to, so revoking the family
    /// reaches its access tokens.
    pub sid: Option<&'a str>,
    /// `act`: the delegation chain (RFC 8693).
    pub act: Option<Value>,
    /// `cnf.jkt`: the DPoP key the token is bound to (RFC 9449 §6), decided by the grant.
    pub jkt: Option<&'a str>,
}

/// Signs an RFC 9068 access token for `server` (no session, no delegation).
pub fn mint_access_token(
    app: &App,
    subject: &str,
    client_id: &str,
    server: &ServerRecord,
    scope: &ScopeSet,
    now: i64,
    ttl: i64,
) -> Result<Issued, OAuthError> {
    mint(
        app,
        &Claims {
            subject,
            client_id,
            server,
            scope,
            now,
            ttl,
            sid: None,
            act: None,
            jkt: None,
        },
    )
}

/// Issues an access token in the server's format: an RFC 9068 JWT, or for servers whose
/// `token_format` is `opaque`, a random `wdn_at_` token of which only the hash is stored.
pub async fn issue(app: &App, c: &Claims<'_>) -> Result<Issued, OAuthError> {
    // A format this build does not know gets no token at all (fail closed), not a JWT.
    match c.server.token_format.parse::<TokenFormat>() {
        Ok(TokenFormat::Jwt) => return mint(app, c),
        Ok(TokenFormat::Opaque) => {}
        Err(e) => return Err(OAuthError::server_error(&e)),
    }
    let token = generate(SecretKind::AccessToken).map_err(|e| OAuthError::server_error(&e))?;
    let jti = random_id().map_err(|e| OAuthError::server_error(&e))?;
    let rec = AccessTokenRecord {
        token_hash: token_hash(token.expose()),
        jti: jti.clone(),
        client_id: c.client_id.to_owned(),
        subject: c.subject.to_owned(),
        audience: c.server.canonical_uri.clone(),
        scope: c.scope.to_string(),
        sid: c.sid.map(str::to_owned),
        act: c.act.as_ref().map(Value::to_string),
        cnf_jkt: c.jkt.map(str::to_owned),
        issued_at: c.now,
        expires_at: c.now + c.ttl,
    };
    AccessTokenStore::insert(&app.store, &rec).await?;
    Ok(Issued {
        token: token.expose().to_owned(),
        jti,
    })
}

/// How a grant's token is recorded and answered, besides its claims.
pub struct Answer {
    /// The grant, for the metrics label and the audit record.
    pub grant_type: &'static str,
    /// The audit event's kind (`token.issued`, `token.refreshed`, `token.exchanged`).
    pub audit_kind: &'static str,
    /// The refresh token that goes with the access token, if any.
    pub refresh_token: Option<String>,
    /// `issued_token_type` (RFC 8693), for token exchange.
    pub issued_token_type: Option<&'static str>,
    /// Audit detail particular to the grant, beside the fields every issuance records.
    pub detail: Map<String, Value>,
}

/// The one tail of every grant: issues the access token in the server's format, waits
/// for its audit record (a token is never handed out without one), counts it, and builds
/// the token response.
pub async fn answer(
    app: &App,
    claims: &Claims<'_>,
    answer: Answer,
) -> Result<TokenResponse, OAuthError> {
    // The one check of every grant: a server that takes only bound tokens gets none
    // without a proof.
    let settings = ServerSettings::parse(&claims.server.settings)
        .map_err(|e| OAuthError::server_error(&format!("server {}: {e}", claims.server.name)))?;
    require_binding(settings.require_dpop.unwrap_or(false), claims.jkt.is_some())?;
    // And a client registered with `dpop_bound_access_tokens` (RFC 9449 §5.2) none
    // either. The lookup is the token endpoint's cached one.
    let client = super::directory::find_client(app, claims.client_id)
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    let client_requires = client
        .as_ref()
        .is_some_and(|c| dpop_bound_access_tokens(&c.metadata));
    require_binding(client_requires, claims.jkt.is_some())?;
    let issued = issue(app, claims).await?;
    let scope = claims.scope.to_string();
    let mut detail = answer.detail;
    detail.insert("grant_type".into(), answer.grant_type.into());
    detail.insert("jti".into(), issued.jti.as_str().into());
    detail.insert("scope".into(), scope.as_str().into());
    detail.insert("aud".into(), claims.server.canonical_uri.as_str().into());
    detail.insert("exp".into(), (claims.now + claims.ttl).into());
    if let Some(sid) = claims.sid {
        detail.insert("sid".into(), sid.into());
    }
    if let Some(jkt) = claims.jkt {
        detail.insert("cnf_jkt".into(), jkt.into());
    }
    app.audit
        .record(
            app.clock.now_ms(),
            Event {
                kind: answer.audit_kind,
                client_id: Some(claims.client_id.to_owned()),
                subject: Some(claims.subject.to_owned()),
                server: Some(claims.server.name.clone()),
                detail: Value::Object(detail),
            },
        )
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    app.metrics.record_token_issued(answer.grant_type);
    Ok(TokenResponse {
        access_token: issued.token,
        // RFC 9449 §5: a bound token's type is `DPoP`.
        token_type: if claims.jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
        .into(),
        expires_in: claims.ttl,
        scope: Some(scope),
        refresh_token: answer.refresh_token,
        issued_token_type: answer.issued_token_type.map(str::to_owned),
    })
}

/// The claims of an RFC 9068 access token, serialised straight from borrowed values.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Value>,
}

/// Signs an RFC 9068 access token.
pub fn mint(app: &App, c: &Claims<'_>) -> Result<Issued, OAuthError> {
    let key = app
        .keys
        .signing_key()
        .ok_or_else(|| OAuthError::server_error(&"no active signing key"))?;
    let jti = random_id().map_err(|e| OAuthError::server_error(&e))?;
    let scope = c.scope.to_string();
    let claims = AccessClaims {
        iss: &app.config.issuer,
        sub: c.subject,
        aud: &c.server.canonical_uri,
        exp: c.now + c.ttl,
        iat: c.now,
        nbf: c.now,
        jti: &jti,
        client_id: c.client_id,
        scope: &scope,
        sid: c.sid,
        act: c.act.as_ref(),
        cnf: c.jkt.map(cnf_for),
    };
    let token = jwt::sign(&claims, AT_JWT_TYP, &key).map_err(|e| OAuthError::server_error(&e))?;
    Ok(Issued { token, jti })
}
