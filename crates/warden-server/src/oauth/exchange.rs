//! Token exchange (RFC 8693) for orchestrators that hand sub-agents narrower tokens.
//!
//! Policy, until the control plane narrows it further:
//! - **Who may exchange:** an authenticated client whose registration includes the
//!   token-exchange grant (an administrator assigns it: `warden client add --grant
//!   urn:ietf:params:oauth:grant-type:token-exchange`; dynamic registration cannot ask for
//!   it). It may exchange any live Warden access token it holds: the result can only do
//!   less than that token already can.
//! - **What comes out:** an access token for the same audience as the subject token
//!   (a `resource` or `audience` naming any other is `invalid_target`: tokens are
//!   single-audience, so another audience would widen it), scopes a subset of the
//!   subject's (`invalid_scope` otherwise), `exp` never later than the subject's, the same
//!   `sub`, the exchanging client as `client_id`, and an `act` claim naming the actor (the
//!   `actor_token`'s subject if one is given, else the exchanging client) with the
//!   subject's own `act` nested inside it.
//! - **Depth:** the `act` chain may hold at most `exchange.max_delegation_depth` actors.
//!   A deeper request is `invalid_request`, as RFC 8693 §2.2.2 answers a subject token
//!   that is unacceptable.
//! - **Revocation:** the new token carries the subject's `sid` (its grant's refresh
//!   family), or the subject's `jti` when the subject has no grant (a client-credentials
//!   token). Revoking the subject's family, or revoking such a subject token, therefore
//!   denylists everything derived from it, however deep, with no extra state. Revoking an
//!   intermediate exchanged token by its `jti` stops that token only.
//!
//! Invalid, expired or revoked subject and actor tokens are `invalid_request` (RFC 8693
//! §2.2.2). Every exchange is audited as `token.exchanged` with the whole `act` chain.

use serde_json::{Map, Value};
use warden_core::dpop::{grant_binding, DpopError, GrantHolder};
use warden_core::grant::narrow_scope;
use warden_core::jwt::Expiry;
use warden_core::scope::ScopeSet;
use warden_core::uri::CanonicalUri;
use warden_proto::oauth::TokenResponse;
use warden_store::ServerStore;

use super::authorize::defined_scopes;
use super::client_auth::{AuthMethod, AuthenticatedClient};
use super::issue::{answer, Answer, Claims};
use super::params::Params;
use super::revoke::verify_own_jwt;
use super::{ErrorCode, OAuthError};
use crate::App;

/// `grant_type` of token exchange.
pub const GRANT_TYPE: &str = warden_proto::oauth::TOKEN_EXCHANGE_GRANT;
/// The one token type exchanged and issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Bound on how deep an `act` chain is walked.
const WALK_LIMIT: usize = 64;

/// A verified, live Warden access token.
struct Live(Map<String, Value>);

impl Live {
    fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
}

fn invalid(d: &'static str) -> OAuthError {
    OAuthError::invalid_request(d)
}

/// Verifies `token` as an unexpired, unrevoked Warden access token.
fn live_token(app: &App, token: &str, now: i64) -> Option<Live> {
    let claims = verify_own_jwt(app, token, Expiry::Enforce, now)?;
    let get = |k: &str| claims.get(k).and_then(Value::as_str);
    let exp = claims.get("exp").and_then(Value::as_i64)?;
    if exp <= now || app.revoked.token_revoked(get("jti"), get("sid")) {
        return None;
    }
    get("jti")?;
    get("sub")?;
    get("aud")?;
    Some(Live(claims))
}

/// How many actors an `act` claim holds.
pub fn chain_depth(act: Option<&Value>) -> usize {
    let mut depth = 0;
    let mut cur = act;
    while let Some(Value::Object(o)) = cur {
        depth += 1;
        if depth >= WALK_LIMIT {
            break;
        }
        cur = o.get("act");
    }
    depth
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub async fn token_exchange(
    app: &App,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let rec = &client.record;
    // The fleet policy decides when it has a say; otherwise the client's registration.
    let policy_depth = match app.policy.get().exchange(&rec.client_id) {
        Some(None) => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the fleet policy does not allow this client token exchange",
            ))
        }
        Some(Some(depth)) => Some(depth),
        None if rec.grant_types.iter().any(|g| g == GRANT_TYPE) => None,
        None => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client is not allowed token exchange",
            ))
        }
    };
    if client.method == AuthMethod::None {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "token exchange requires an authenticated client",
        ));
    }
    let subject_token = params.require("subject_token")?;
    if params.require("subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(invalid(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(invalid(
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    let subject = live_token(app, subject_token, now).ok_or_else(|| {
        invalid("subject_token is not a valid, unexpired and unrevoked Warden access token")
    })?;
    let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
        (None, None) => None,
        (Some(t), Some(ACCESS_TOKEN_TYPE)) => Some(live_token(app, t, now).ok_or_else(|| {
            invalid("actor_token is not a valid, unexpired and unrevoked Warden access token")
        })?),
        (Some(_), None) => return Err(invalid("actor_token_type is required with actor_token")),
        (None, Some(_)) => return Err(invalid("actor_token_type without actor_token")),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "actor_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ))
        }
    };

    // The audience: the subject's, and only the subject's.
    let aud = subject.str("aud").unwrap_or_default().to_owned();
    let mut targets: Vec<&str> = params.all("resource").iter().map(String::as_str).collect();
    targets.extend(params.get("audience"));
    for t in targets {
        let same = CanonicalUri::parse(t).is_ok_and(|c| c.as_str() == aud);
        if !same {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "an exchanged token is for the subject token's audience only",
            ));
        }
    }
    let server = ServerStore::get_by_uri(&app.store, &aud)
        .await?
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "the audience is no longer registered",
            )
        })?;

    let held = ScopeSet::parse(subject.str("scope").unwrap_or_default())
        .map_err(|_| invalid("the subject token's scope is malformed"))?;
    // The ceiling is what the subject token holds; allowed now is what the server still
    // defines.
    let defined = defined_scopes(std::slice::from_ref(&server));
    let scope = narrow_scope(params.get("scope"), &held, &defined)?;

    let prior = subject.0.get("act");
    let depth = chain_depth(prior) + 1;
    let configured = app.config.exchange.max_delegation_depth as usize;
    let max = policy_depth.map_or(configured, |d| configured.min(d as usize));
    if depth > max {
        return Err(OAuthError::invalid_request(format!(
            "delegation chain too deep: at most {max} actors"
        )));
    }
    let actor_sub = match &actor {
        Some(a) => a.str("sub").unwrap_or_default().to_owned(),
        None => rec.client_id.clone(),
    };
    let mut act = Map::new();
    act.insert("sub".into(), Value::String(actor_sub));
    if let Some(p) = prior {
        act.insert("act".into(), p.clone());
    }
    let act = Value::Object(act);

    let subject_exp = subject.0.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let ttl = super::token::server_ttl(app, &server).min(subject_exp - now);
    let sid = subject
        .str("sid")
        .or_else(|| subject.str("jti"))
        .unwrap_or_default()
        .to_owned();
    let sub = subject.str("sub").unwrap_or_default().to_owned();
    // A bound subject token is exchanged only by its key's holder, and the new token is
    // bound to that key: exchange never turns a bound token into a bearer token.
    let subject_jkt = match subject.0.get("cnf") {
        None => None,
        Some(cnf) => Some(
            cnf.get("jkt")
                .and_then(Value::as_str)
                .ok_or(DpopError::UnsupportedConfirmation)?,
        ),
    };
    let jkt = grant_binding(subject_jkt, GrantHolder::Key, dpop)?;
    let claims = Claims {
        subject: &sub,
        client_id: &rec.client_id,
        server: &server,
        scope: &scope,
        now,
        ttl,
        sid: Some(&sid),
        act: Some(act.clone()),
        jkt: jkt.as_deref(),
    };
    let mut detail = Map::new();
    detail.insert("subject_jti".into(), subject.str("jti").into());
    detail.insert("subject_client_id".into(), subject.str("client_id").into());
    detail.insert("actor_token".into(), actor.is_some().into());
    detail.insert("act".into(), act);
    detail.insert("depth".into(), depth.into());
    let outcome = Answer {
        grant_type: GRANT_TYPE,
        audit_kind: "token.exchanged",
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        detail,
    };
    answer(app, &claims, outcome).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn depth_counts_nested_actors() {
        assert_eq!(chain_depth(None), 0);
        assert_eq!(chain_depth(Some(&json!({"sub": "a"}))), 1);
        assert_eq!(
            chain_depth(Some(&json!({"sub": "b", "act": {"sub": "a"}}))),
            2
        );
        assert_eq!(chain_depth(Some(&json!("not an object"))), 0);
    }
}
