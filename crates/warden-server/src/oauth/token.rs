//! `POST /oauth/token`.
//!
//! This file dispatches on `grant_type` and mints access tokens; each grant's rules
//! live beside it. Implemented grants: `client_credentials`. Refused by design:
//! `password` and `implicit` (OAuth 2.1), and anything unknown.
//!
//! A request with a `DPoP` header gets its proof checked here, once, for every grant
//! (`token_proof`); each grant then decides what its token is bound to with
//! [`warden_core::dpop::grant_binding`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map};
use warden_core::credentials;
use warden_core::grant::narrow_scope;
use warden_core::scope::ScopeSet;
use warden_core::uri::CanonicalUri;
use warden_proto::oauth::{TokenResponse, JWT_BEARER_GRANT};
use warden_store::{ClientRecord, ServerRecord};

use super::authorize::defined_scopes;
use super::client_auth::{authenticate, AuthenticatedClient};
use super::grants;
pub use super::issue::{
    answer, issue, mint, mint_access_token, server_ttl, ttl_of, Answer, Claims, Issued,
};
use super::params::Params;
use super::{ErrorCode, OAuthError};
use crate::audit::Event;
use crate::dpop::{Dpop, ProofFailure, Request, DPOP_NONCE_HEADER};
use crate::App;
use warden_core::dpop::Proof;

/// `POST /oauth/token`. The span is at debug level: at info, creating and recording it
/// cost about 3% of the endpoint's CPU.
#[tracing::instrument(level = "debug", skip_all, fields(grant_type))]
pub async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let result = handle(&app, &headers, &body).await;
    let mut response = match result {
        Ok(resp) => {
            let mut r = Json(resp).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => {
            app.metrics.record_token_error(e.code.as_str());
            audit_denied(&app, &headers, &body, &e);
            e.into_response()
        }
    };
    // The current server nonce, when nonces are on (RFC 9449 §8): a `use_dpop_nonce`
    // error needs it, and any other answer lets the client follow a rotation.
    if let Some(nonce) = app.dpop.nonce(app.clock.now()) {
        response.headers_mut().insert(DPOP_NONCE_HEADER, nonce);
    }
    response
}

/// Records a refused token request. Only non-secret fields go in: the grant type and
/// the claimed client id (truncated, since it is unauthenticated input).
fn audit_denied(app: &App, headers: &HeaderMap, body: &[u8], e: &OAuthError) {
    let params = Params::parse(body).unwrap_or_default();
    let clip = |s: Option<&str>| s.map(|v| v.chars().take(64).collect::<String>());
    let basic_id = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| credentials::basic(v).ok().flatten())
        .map(|basic| basic.oauth_client().0);
    let client_id = clip(params.get("client_id")).or_else(|| clip(basic_id.as_deref()));
    let event = Event {
        kind: "token.denied",
        client_id,
        subject: None,
        server: None,
        detail: json!({
            "grant_type": clip(params.get("grant_type")),
            "error": e.code.as_str(),
            "error_description": e.description,
            "reason": e.audit_reason,
        }),
    };
    app.audit.submit(app.clock.now_ms(), event, &app.metrics);
}

fn form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, OAuthError> {
    if !form_content_type(headers) {
        return Err(OAuthError::invalid_request(
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let grant_type = params.require("grant_type")?;
    tracing::Span::current().record("grant_type", grant_type);
    match grant_type {
        "client_credentials"
        | "authorization_code"
        | "refresh_token"
        | super::exchange::GRANT_TYPE => {}
        // The assertion may itself be the client's credential (a workload's), so this
        // grant authenticates the client its own way.
        JWT_BEARER_GRANT => {
            let now = app.clock.now();
            let proof = token_proof(app, headers, now).await?;
            let dpop = proof.as_ref().map(|p| p.jkt.as_str());
            return super::jwt_bearer::grant(app, headers, &params, now, dpop).await;
        }
        "password" | "implicit" => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "OAuth 2.1 removed this grant type",
            ))
        }
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            ))
        }
    }
    let now = app.clock.now();
    let client = authenticate(app, headers, &params, now).await?;
    let proof = token_proof(app, headers, now).await?;
    let dpop = proof.as_ref().map(|p| p.jkt.as_str());
    match grant_type {
        "authorization_code" => grants::authorization_code(app, &client, &params, now, dpop).await,
        "refresh_token" => grants::refresh_token(app, &client, &params, now, dpop).await,
        super::exchange::GRANT_TYPE => {
            super::exchange::token_exchange(app, &client, &params, now, dpop).await
        }
        _ => client_credentials(app, &client, &params, now, dpop).await,
    }
}

/// The request's DPoP proof (RFC 9449 §5), if it has one: verified for this endpoint
/// (`POST` to the token endpoint's URI as published), with the server's nonce when
/// nonces are on, and claimed so that it is never accepted again. Each grant decides
/// what its token is bound to from the proof's key ([`warden_core::dpop::grant_binding`]).
async fn token_proof(
    app: &App,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Proof>, OAuthError> {
    let Some(proof) = Dpop::header(headers)? else {
        return Ok(None);
    };
    let uri = format!("{}/oauth/token", app.config.issuer);
    let request = Request {
        method: "POST",
        uri: &uri,
        access_token: None,
        expected_jkt: None,
    };
    match app.dpop.accept(&app.store, proof, &request, now).await {
        Ok(proof) => Ok(Some(proof)),
        Err(ProofFailure::Refused(e)) => Err(e.into()),
        Err(ProofFailure::Unavailable) => Err(OAuthError::unavailable(&"DPoP replay table")),
    }
}

/// Resolves the `resource` parameters (RFC 8707) to exactly one registered server.
async fn resolve_resource(app: &App, params: &Params) -> Result<Arc<ServerRecord>, OAuthError> {
    let resources = params.all("resource");
    let [resource] = resources else {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            if resources.is_empty() {
                "resource is required: the canonical URI of the MCP server the token is for"
            } else {
                "one resource per token: request a token for each server"
            },
        ));
    };
    // A resource sent in canonical form that names a cached server needs no parsing
    // (the cache is keyed by canonical URIs): about 3% of client_credentials' CPU.
    registered_server(app, resource).await
}

/// The registered server whose canonical URI `resource` names; `invalid_target` if none.
pub(super) async fn registered_server(
    app: &App,
    resource: &str,
) -> Result<Arc<ServerRecord>, OAuthError> {
    if let Some(hit) = app.servers_by_uri.get(resource, app.clock.now_ms()) {
        return Ok(hit);
    }
    let canonical = CanonicalUri::parse(resource)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, format!("resource {e}")))?;
    super::directory::server_by_uri(app, canonical.as_str())
        .await?
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is not a registered server",
            )
        })
}

async fn client_credentials(
    app: &App,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let rec = &client.record;
    if !rec.confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials requires a confidential client",
        ));
    }
    if !rec.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not allowed the client_credentials grant",
        ));
    }
    machine_token(
        app,
        rec,
        params,
        now,
        dpop,
        "client_credentials",
        Map::new(),
    )
    .await
}

/// A token for a machine client acting as itself (`client_credentials`, a workload's
/// jwt-bearer grant): for the one requested resource, with what the fleet policy grants
/// the client there or, without a rule for it, the scopes it was registered with.
/// `dpop` is the key thumbprint of the request's DPoP proof, if any: the token is bound
/// to it.
pub(super) async fn machine_token(
    app: &App,
    rec: &ClientRecord,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
    grant_type: &'static str,
    detail: Map<String, serde_json::Value>,
) -> Result<TokenResponse, OAuthError> {
    let server = resolve_resource(app, params).await?;
    let defined = defined_scopes(std::slice::from_ref(&server));
    let policy = app.policy.get();
    let registered = ScopeSet::from_iter_valid(rec.scopes.iter().cloned());
    let allowed = policy.client_scopes(&rec.client_id, &registered, &server.name, &defined);
    // The ceiling is what the resource defines: naming another scope is an error.
    let granted = narrow_scope(params.get("scope"), &defined, &allowed)?;
    let ttl =
        server_ttl(app, &server).min(policy.max_lifetime(&rec.client_id, &[]).unwrap_or(i64::MAX));
    let claims = Claims {
        subject: &rec.client_id,
        client_id: &rec.client_id,
        server: &server,
        scope: &granted,
        now,
        ttl,
        sid: None,
        act: None,
        jkt: dpop,
    };
    let outcome = Answer {
        grant_type,
        audit_kind: "token.issued",
        refresh_token: None,
        issued_token_type: None,
        detail,
    };
    answer(app, &claims, outcome).await
}
