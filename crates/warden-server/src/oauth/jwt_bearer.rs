//! The JWT bearer grant (RFC 7523 §2.1) for identity that arrives from outside:
//!
//! - **ID-JAG** (SEP-990, enterprise-managed authorization): an assertion typed
//!   `oauth-id-jag+jwt` from an IdP registered with `--use id-jag`, presented by an
//!   authenticated client allowed the grant. The token is for the `resource` the ID-JAG
//!   names (a registered server, else `invalid_target`), its scope the intersection of
//!   the request, the ID-JAG's `scope` (when it names one) and the fleet policy for the
//!   user's groups, and its subject the user linked to the ID-JAG's (`iss`, `sub`),
//!   provisioned on first use. No refresh token: the client asks its IdP for a new
//!   ID-JAG.
//! - **Workload identity** (SEP-1933): any other assertion, a platform token (a
//!   Kubernetes service-account token, a SPIFFE JWT-SVID) from an IdP registered with
//!   `--use workload`. No client secret is involved: the token's `sub` is bound to exactly
//!   one client (`warden client add --workload IDP:SUBJECT`), and the token issued is that
//!   client's, with the policy's scopes for it, as for `client_credentials`.
//!
//! The rules for each kind of assertion are in [`warden_core::federation`]; single use
//! (`jti`) is enforced here. Every refusal is `invalid_grant` (or the specific RFC error:
//! `invalid_target`, `invalid_scope`, `unauthorized_client`) with the reason in the audit
//! log only; an IdP that cannot be reached is `temporarily_unavailable` (503).

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use serde_json::{json, Map, Value};
use warden_core::federation::{
    map_groups, verify_id_jag, verify_workload_token, FederationError, IdJagRule, Identity,
    WorkloadRule, ID_JAG_TYP,
};
use warden_core::grant::narrow_scope;
use warden_core::idp::IdpUse;
use warden_core::jwt::{self, VerifyingKey};
use warden_core::scope::ScopeSet;
use warden_proto::oauth::{TokenResponse, JWT_BEARER_GRANT};
use warden_store::{ClientRecord, ClientStore, ServerRecord};

use super::authorize::defined_scopes;
use super::client_auth::authenticate;
use super::federated::{link_user, record_arrival, LEEWAY};
use super::issue::{answer, server_ttl, Answer, Claims};
use super::params::Params;
use super::token::{machine_token, registered_server};
use super::{ErrorCode, OAuthError};
use crate::federation::{provider_for_issuer, Provider, TokenRefusal};
use crate::App;

/// The grant: an ID-JAG or a workload token in `assertion`.
pub async fn grant(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let assertion = params.require("assertion")?;
    let parsed = jwt::parse(assertion).map_err(|_| refused("malformed", None))?;
    let Some(iss) = parsed.claims.get("iss").and_then(Value::as_str) else {
        return Err(refused("missing_claim", None));
    };
    let is_id_jag = parsed
        .header
        .typ
        .as_deref()
        .is_some_and(|t| jwt::typ_matches(t, ID_JAG_TYP));
    if is_id_jag {
        id_jag(app, headers, params, assertion, iss, now, dpop).await
    } else {
        workload(app, headers, params, assertion, iss, now, dpop).await
    }
}

async fn id_jag(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    assertion: &str,
    iss: &str,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let client = authenticate(app, headers, params, now).await?;
    let rec = &client.record;
    allowed_the_grant(rec)?;
    let provider = trusted(app, iss, IdpUse::IdJag).await?;
    let rule = IdJagRule {
        idp_issuer: &provider.record.issuer,
        audience: &app.config.issuer,
        client_id: &rec.client_id,
        leeway: LEEWAY,
    };
    let grant = verified(app, &provider, now, |keys| {
        verify_id_jag(assertion, keys, &rule, now)
    })
    .await?;
    single_use(app, &provider, "id-jag", &grant.jti, grant.exp, now).await?;
    let server = grant_resource(app, params, &grant.resources).await?;
    let identity = Identity {
        issuer: provider.record.issuer.clone(),
        sub: grant.sub.clone(),
        email: grant.email.clone(),
        email_verified: false,
        name: grant.name.clone(),
        preferred_username: None,
        tenant: None,
        claims: grant.claims.clone(),
    };
    // Groups come with the ID-JAG when it carries the groups claim; otherwise the user
    // keeps those of their last sign-in.
    let groups = grant
        .claims
        .contains_key(
            provider
                .record
                .groups_claim
                .split('.')
                .next()
                .unwrap_or_default(),
        )
        .then(|| {
            map_groups(
                &grant.claims,
                &provider.record.groups_claim,
                &provider.record.group_map,
            )
        });
    let user = match link_user(app, provider.name(), &identity, groups, now).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(refused("user_disabled", Some(provider.name()))),
        Err(e) => return Err(e.into()),
    };
    record_arrival(
        app,
        "identity.id_jag",
        provider.name(),
        &identity.issuer,
        &identity.sub,
        &user,
    );
    let defined = defined_scopes(std::slice::from_ref(&*server));
    let policy = app.policy.get();
    let mut allowed = policy.delegated_scopes(&rec.client_id, &user.groups, &server.name, &defined);
    if !grant.scopes.is_empty() {
        allowed = allowed.intersection(&ScopeSet::from_iter_valid(grant.scopes.iter().cloned()));
    }
    let granted = narrow_scope(params.get("scope"), &defined, &allowed)?;
    let ttl = server_ttl(app, &server).min(
        policy
            .max_lifetime(&rec.client_id, &user.groups)
            .unwrap_or(i64::MAX),
    );
    let claims = Claims {
        subject: &user.id,
        client_id: &rec.client_id,
        server: &server,
        scope: &granted,
        now,
        ttl,
        sid: None,
        act: None,
        // A new grant: bound to the proof's key if the request has a proof.
        jkt: dpop,
    };
    let mut detail = Map::new();
    detail.insert("assertion".into(), json!("id-jag"));
    detail.insert("idp".into(), json!(provider.name()));
    detail.insert("issuer".into(), json!(provider.record.issuer));
    detail.insert("idp_subject".into(), json!(grant.sub));
    answer(
        app,
        &claims,
        Answer {
            grant_type: JWT_BEARER_GRANT,
            audit_kind: "token.issued",
            refresh_token: None,
            issued_token_type: None,
            detail,
        },
    )
    .await
}

async fn workload(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    assertion: &str,
    iss: &str,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let provider = trusted(app, iss, IdpUse::Workload).await?;
    let mut audiences = vec![app.config.issuer.clone()];
    audiences.extend(provider.record.audiences.iter().cloned());
    let rule = WorkloadRule {
        issuer: &provider.record.issuer,
        audiences: &audiences,
        leeway: LEEWAY,
    };
    let workload = verified(app, &provider, now, |keys| {
        verify_workload_token(assertion, keys, &rule, now)
    })
    .await?;
    if let Some(jti) = &workload.jti {
        single_use(app, &provider, "workload", jti, workload.exp, now).await?;
    }
    let Some(client_id) =
        ClientStore::client_for_workload(&app.store, provider.name(), &workload.sub).await?
    else {
        return Err(refused("unknown_subject", Some(provider.name())));
    };
    // A client that also authenticates (or names itself) must be the bound one.
    let presents_client = headers.contains_key(header::AUTHORIZATION)
        || params.get("client_id").is_some()
        || params.get("client_assertion").is_some();
    if presents_client {
        let presented = authenticate(app, headers, params, now).await?;
        if presented.record.client_id != client_id {
            return Err(refused("client_mismatch", Some(provider.name())));
        }
    }
    let Some(rec) = ClientStore::get(&app.store, &client_id).await? else {
        return Err(refused("unknown_subject", Some(provider.name())));
    };
    allowed_the_grant(&rec)?;
    let mut detail = Map::new();
    detail.insert("assertion".into(), json!("workload"));
    detail.insert("idp".into(), json!(provider.name()));
    detail.insert("issuer".into(), json!(provider.record.issuer));
    detail.insert("idp_subject".into(), json!(workload.sub));
    machine_token(app, &rec, params, now, dpop, JWT_BEARER_GRANT, detail).await
}

/// Claims an assertion's `jti` until its `exp`, once across every replica sharing the
/// store: a replay is `invalid_grant`, a store that cannot say is 503.
async fn single_use(
    app: &App,
    provider: &Provider,
    kind: &str,
    jti: &str,
    exp: i64,
    now: i64,
) -> Result<(), OAuthError> {
    let key = crate::dpop::single_use_key(kind, &provider.record.issuer, jti);
    match app.dpop.claim_once(&app.store, key, exp, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused("replayed", Some(provider.name()))),
        Err(_) => Err(OAuthError::unavailable(
            &"the single-use table is unavailable",
        )),
    }
}

/// `unauthorized_client` unless the client was registered with the grant.
fn allowed_the_grant(rec: &ClientRecord) -> Result<(), OAuthError> {
    if rec.grant_types.iter().any(|g| g == JWT_BEARER_GRANT) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not allowed the jwt-bearer grant",
        ))
    }
}

/// The enabled IdP trusted for `what` that issued the assertion.
async fn trusted(app: &App, iss: &str, what: IdpUse) -> Result<Provider, OAuthError> {
    provider_for_issuer(app, iss, what)
        .await?
        .ok_or_else(|| refused("unknown_issuer", None))
}

/// Verifies an assertion with the IdP's keys; a refusal is `invalid_grant`, an IdP that
/// cannot be reached `temporarily_unavailable`.
async fn verified<T>(
    app: &App,
    provider: &Provider,
    now: i64,
    check: impl Fn(&[Arc<VerifyingKey>]) -> Result<T, FederationError>,
) -> Result<T, OAuthError> {
    provider
        .verify(app, None, now, check)
        .await
        .map_err(|e| match e {
            TokenRefusal::Refused(e) => refused(e.reason(), Some(provider.name())),
            TokenRefusal::Unavailable(why) => OAuthError::unavailable(&why.0),
        })
}

/// The registered server an ID-JAG is for: the request's `resource`, which must be one
/// the ID-JAG names, or else the one resource the ID-JAG names.
async fn grant_resource(
    app: &App,
    params: &Params,
    named: &[String],
) -> Result<Arc<ServerRecord>, OAuthError> {
    let requested = params.all("resource");
    let resource = match (requested, named) {
        ([one], _) if named.is_empty() || named.iter().any(|n| n == one) => one.as_str(),
        ([_], _) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the resource is not one the assertion is for",
            ))
        }
        ([], [one]) => one.as_str(),
        ([], []) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is required: the canonical URI of the MCP server the token is for",
            ))
        }
        _ => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "one resource per token: request a token for each server",
            ))
        }
    };
    registered_server(app, resource).await
}

/// `invalid_grant`, with `reason` for the audit log (the description stays generic, so
/// that probing learns nothing).
fn refused(reason: &str, idp: Option<&str>) -> OAuthError {
    OAuthError {
        audit_reason: Some(match idp {
            Some(idp) => format!("{idp}: {reason}"),
            None => reason.to_owned(),
        }),
        ..OAuthError::new(ErrorCode::InvalidGrant, "the assertion is not acceptable")
    }
}
