//! Federated sign-in: Warden as a confidential OpenID Connect client of the
//! organisation's identity provider.
//!
//! The sign-in page offers each IdP registered for `login` (and sends an address whose
//! domain an IdP claims to that IdP). [`start`] sends the browser to the IdP's
//! authorization endpoint with the authorization code flow, PKCE S256, a `state` and a
//! `nonce`; all of them, with the pending MCP authorization request, travel in a sealed,
//! `HttpOnly` cookie bound to this browser, so any replica can finish the sign-in.
//! [`callback`] then:
//!
//! 1. requires the cookie, and `state` equal to the cookie's; a `state` is accepted once
//!    (a replayed response is refused);
//! 2. checks the response's `iss` (RFC 9207) when the IdP sends it, and always when the
//!    IdP advertises it;
//! 3. redeems the code at the IdP's token endpoint (`client_secret_basic`, the PKCE
//!    verifier) and validates the ID token ([`warden_core::federation::verify_id_token`]:
//!    signature from the IdP's keys, refetched once on an unknown `kid`; `iss` (a tenant
//!    of the allow-list for a multi-tenant issuer), `aud`, `azp`, `exp`/`iat` with
//!    leeway, `nonce`);
//! 4. finds the user linked to the ID token's (`iss`, `sub`), or provisions one (never
//!    linking by email), sets their groups from the groups claim through the IdP's group
//!    map, and starts a session remembering the IdP.
//!
//! Until `state` is verified, errors end on a page (the response may not be ours); after
//! that, the MCP client's redirect URI is known good and errors go back to it as OAuth
//! errors (`access_denied`, or `temporarily_unavailable` when the IdP cannot be reached),
//! each with a reason in the audit log. Nothing the IdP returned (code, ID token) is
//! logged or stored.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;
use warden_core::federation::{
    check_response_issuer, is_issuer_template, map_groups, verify_id_token, IdTokenRule, Identity,
    IssuerRule,
};
use warden_core::idp::IdpUse;
use warden_core::pkce;
use warden_core::secret::{ct_eq, random_bytes, random_id};
use warden_store::{IdentityLink, StoreError, UserRecord, UserStore};

use super::authorize::{self, Pending};
use super::browser::{self, BrowserSession, SESSION_COOKIE, SESSION_TTL};
use super::directory::find_client;
use super::pages;
use super::ErrorCode;
use crate::audit::Event;
use crate::federation::{self, Provider, TokenRefusal, Unavailable};
use crate::App;

/// The cookie carrying a sign-in in progress at an IdP.
pub const FEDERATED_COOKIE: &str = "warden_fed";

/// How long a sign-in may take at the IdP, seconds.
pub const FEDERATED_TTL: i64 = 600;

/// Clock-skew tolerance for ID tokens, seconds.
pub const LEEWAY: i64 = 60;

/// A sign-in in progress at an IdP, sealed in [`FEDERATED_COOKIE`].
#[derive(Serialize, Deserialize)]
struct InFlight {
    idp: String,
    state: String,
    nonce: String,
    verifier: String,
    pending: Pending,
    exp: i64,
}

/// Warden's redirect URI at every IdP: `{public_url}/oauth/federated/callback`.
pub fn callback_url(app: &App) -> String {
    format!(
        "{}/oauth/federated/callback",
        app.config.public_url.trim_end_matches('/')
    )
}

/// Sends the browser to `provider` to sign in, for the pending request `pending`.
pub(super) async fn start(
    app: &App,
    provider: &Provider,
    pending: Pending,
    login_hint: Option<&str>,
    now: i64,
) -> Response {
    let Some((client_id, _)) = provider.client_credentials() else {
        tracing::error!(idp = %provider.name(), "the identity provider has no client credentials for sign-in");
        return unavailable_page();
    };
    let metadata = match provider.metadata(app, now).await {
        Ok(m) => m,
        Err(_) => return unavailable_page(),
    };
    let (Ok(state), Ok(nonce), Ok(raw)) = (random_id(), random_id(), random_bytes::<32>()) else {
        return pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        );
    };
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let Ok(mut url) = Url::parse(&metadata.authorization_endpoint) else {
        return unavailable_page();
    };
    let scope = if provider.record.scopes.is_empty() {
        warden_core::idp::DEFAULT_SCOPES.join(" ")
    } else {
        provider.record.scopes.join(" ")
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &callback_url(app))
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce::s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = login_hint {
            q.append_pair("login_hint", hint);
        }
    }
    let in_flight = InFlight {
        idp: provider.name().to_owned(),
        state,
        nonce,
        verifier,
        pending,
        exp: now + FEDERATED_TTL,
    };
    let Some(sealed) = browser::seal(app, "federated", &in_flight) else {
        return unavailable_page();
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(
        header::SET_COOKIE,
        browser::set_cookie(app, FEDERATED_COOKIE, &sealed, FEDERATED_TTL),
    );
    resp
}

/// `GET /oauth/federated/callback`: the IdP's authorization response.
#[tracing::instrument(skip_all)]
pub async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = app.clock.now();
    let resp = finish(&app, &headers, query.as_deref().unwrap_or_default(), now).await;
    // The in-flight cookie is spent whatever happened.
    with_cleared_cookie(&app, resp)
}

async fn finish(app: &App, headers: &HeaderMap, query: &str, now: i64) -> Response {
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(seen, _)| *seen == k) {
            return refused_page(
                app,
                None,
                "repeated_parameter",
                "The sign-in response is malformed.",
            );
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(flight) = browser::get_cookie(app, headers, FEDERATED_COOKIE)
        .and_then(|c| browser::unseal::<InFlight>(app, "federated", &c))
        .filter(|f| f.exp > now)
    else {
        return refused_page(
            app,
            None,
            "no_sign_in_in_progress",
            "This sign-in has expired or was not started in this browser. Go back to the application and try again.",
        );
    };
    let state_ok = param("state").is_some_and(|s| ct_eq(s.as_bytes(), flight.state.as_bytes()));
    if !state_ok {
        return refused_page(
            app,
            Some(&flight.idp),
            "state_mismatch",
            "The sign-in response does not belong to this sign-in. Go back to the application and try again.",
        );
    }
    let key = crate::dpop::single_use_key("federated-state", &flight.idp, &flight.state);
    match app.dpop.claim_once(&app.store, key, flight.exp, now).await {
        Ok(true) => {}
        Ok(false) => {
            return refused_page(
                app,
                Some(&flight.idp),
                "state_replayed",
                "This sign-in response was already used. Go back to the application and try again.",
            )
        }
        Err(_) => return unavailable_page(),
    }
    // From here the pending request was validated when the sign-in began: errors go back
    // to the MCP client.
    let client = match find_client(app, flight.pending.client_id()).await {
        Ok(Some(c))
            if c.redirect_uris
                .iter()
                .any(|r| r == flight.pending.redirect_uri()) =>
        {
            c
        }
        Ok(_) => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The application is no longer registered.",
            )
        }
        Err(_) => return unavailable_page(),
    };
    let back = |code: ErrorCode, description: &str| {
        authorize::redirect_error(app, &flight.pending, code, description)
    };
    let refuse = |reason: &str, description: &str| {
        audit_refused(app, Some(&flight.idp), reason);
        back(ErrorCode::AccessDenied, description)
    };
    let provider = match federation::provider(app, &flight.idp).await {
        Ok(Some(p)) if p.serves(IdpUse::Login) => p,
        Ok(_) => {
            return refuse(
                "idp_unavailable",
                "the identity provider is no longer available for sign-in",
            )
        }
        Err(_) => return back(ErrorCode::TemporarilyUnavailable, "try again shortly"),
    };
    let Ok(metadata) = provider.metadata(app, now).await else {
        return back(
            ErrorCode::TemporarilyUnavailable,
            "the identity provider cannot be reached",
        );
    };
    if !is_issuer_template(&provider.record.issuer) {
        if let Err(e) = check_response_issuer(
            &metadata.issuer,
            param("iss"),
            metadata.authorization_response_iss_parameter_supported,
        ) {
            return refuse(e.reason(), "the sign-in response came from another issuer");
        }
    }
    if let Some(error) = param("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        audit_refused(app, Some(&flight.idp), &format!("idp_error:{code}"));
        return back(
            ErrorCode::AccessDenied,
            &format!("the identity provider did not sign the user in ({code})"),
        );
    }
    let Some(code) = param("code").filter(|c| !c.is_empty()) else {
        return refuse(
            "no_code",
            "the identity provider sent no authorization code",
        );
    };
    let id_token = match redeem(
        app,
        &provider,
        &metadata.token_endpoint,
        code,
        &flight.verifier,
    )
    .await
    {
        Ok(t) => t,
        Err(Redeem::Unavailable(why)) => {
            tracing::warn!(idp = %provider.name(), reason = why, "cannot redeem the sign-in code");
            return back(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider cannot be reached",
            );
        }
        Err(Redeem::Refused(reason)) => {
            return refuse(reason, "the identity provider refused the sign-in code")
        }
    };
    let client_id = provider.record.client_id.clone().unwrap_or_default();
    let rule = IdTokenRule {
        issuer: IssuerRule::from_config(&provider.record.issuer, &provider.record.tenants),
        client_id: &client_id,
        nonce: &flight.nonce,
        leeway: LEEWAY,
    };
    let identity = match provider
        .verify(app, Some(&metadata), now, |keys| {
            verify_id_token(&id_token, keys, &rule, now)
        })
        .await
    {
        Ok(identity) => identity,
        Err(TokenRefusal::Refused(e)) => {
            return refuse(e.reason(), "the identity provider's ID token was refused")
        }
        Err(TokenRefusal::Unavailable(Unavailable(why))) => {
            tracing::warn!(idp = %provider.name(), reason = why, "cannot verify the ID token");
            return back(
                ErrorCode::TemporarilyUnavailable,
                "the identity provider cannot be reached",
            );
        }
    };
    let groups = map_groups(
        &identity.claims,
        &provider.record.groups_claim,
        &provider.record.group_map,
    );
    let user = match link_user(app, provider.name(), &identity, Some(groups), now).await {
        Ok(Some(user)) => user,
        Ok(None) => return refuse("user_disabled", "the user is disabled in Warden"),
        Err(e) => {
            tracing::error!(error = %e, "cannot record the federated user");
            return back(ErrorCode::TemporarilyUnavailable, "try again shortly");
        }
    };
    let Ok(sid) = random_id() else {
        return back(ErrorCode::ServerError, "internal error");
    };
    record_arrival(
        app,
        "login.federated",
        provider.name(),
        &identity.issuer,
        &identity.sub,
        &user,
    );
    let session = BrowserSession {
        sid,
        user_id: user.id.clone(),
        username: user.username.clone(),
        auth_time: now,
        exp: now + SESSION_TTL,
        idp: Some(provider.name().to_owned()),
    };
    let cookie = browser::seal(app, "session", &session)
        .map(|v| browser::set_cookie(app, SESSION_COOKIE, &v, SESSION_TTL));
    let mut resp = authorize::continue_flow(
        app,
        headers,
        &client,
        &flight.pending,
        &session,
        StatusCode::SEE_OTHER,
    )
    .await;
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// Why a code could not be redeemed.
enum Redeem {
    /// The IdP could not be reached or answered unusably.
    Unavailable(&'static str),
    /// The IdP refused the code; the audit reason.
    Refused(&'static str),
}

/// Redeems `code` at the IdP's token endpoint; returns the ID token.
async fn redeem(
    app: &App,
    provider: &Provider,
    token_endpoint: &str,
    code: &str,
    verifier: &str,
) -> Result<String, Redeem> {
    let (client_id, secret) = provider
        .client_credentials()
        .ok_or(Redeem::Unavailable("no client credentials"))?;
    let uri = crate::issuer::check_idp_url(token_endpoint, "token_endpoint")
        .map_err(|_| Redeem::Unavailable("unusable token endpoint"))?;
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &callback_url(app))
        .append_pair("code_verifier", verifier)
        .finish();
    // RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = warden_core::secret::SecretString::new(format!(
        "{}:{}",
        encode(client_id),
        encode(secret.expose())
    ));
    let mut authorization =
        HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair.expose())))
            .map_err(|_| Redeem::Unavailable("unusable client credentials"))?;
    authorization.set_sensitive(true);
    let request = axum::http::Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::AUTHORIZATION, authorization)
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(axum::body::Body::from(body))
        .map_err(|_| Redeem::Unavailable("cannot build the request"))?;
    let answer = crate::issuer::exchange(app, provider.roots.as_ref(), request)
        .await
        .map_err(Redeem::Unavailable)?;
    if answer.status.is_server_error() {
        return Err(Redeem::Unavailable(
            "the identity provider answered a server error",
        ));
    }
    if answer.status != StatusCode::OK {
        return Err(Redeem::Refused("code_refused"));
    }
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| Redeem::Refused("token_response_not_json"))?;
    doc.get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(Redeem::Refused("no_id_token"))
}

/// The user linked to `identity`'s (`iss`, `sub`), provisioned on first use. With
/// `groups`, the user's groups become these (the IdP owns a federated user's groups).
/// `Ok(None)` if the user is disabled.
pub(crate) async fn link_user(
    app: &App,
    idp: &str,
    identity: &Identity,
    groups: Option<Vec<String>>,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    for _ in 0..2 {
        if let Some(mut user) =
            UserStore::find_by_identity(&app.store, &identity.issuer, &identity.sub).await?
        {
            if user.disabled {
                return Ok(None);
            }
            if let Some(groups) = groups.clone().filter(|g| *g != user.groups) {
                user.groups = groups;
                user.updated_at = now;
                UserStore::update(&app.store, &user).await?;
            }
            UserStore::touch_identity(&app.store, &identity.issuer, &identity.sub, now).await?;
            return Ok(Some(user));
        }
        let handle = identity
            .preferred_username
            .as_deref()
            .or(identity.email.as_deref())
            .unwrap_or(&identity.sub);
        let user = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: federated_username(idp, handle),
            password_hash: String::new(),
            groups: groups.clone().unwrap_or_default(),
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let link = IdentityLink {
            idp_name: idp.to_owned(),
            issuer: identity.issuer.clone(),
            subject: identity.sub.clone(),
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
        };
        match UserStore::create_federated(&app.store, &user, &link).await {
            Ok(()) => return Ok(Some(user)),
            Err(StoreError::Conflict(what)) if what.contains("username") => {
                // Another identity took the name: fall back to the stable subject.
                let user = UserRecord {
                    username: federated_username(idp, &identity.sub),
                    ..user
                };
                match UserStore::create_federated(&app.store, &user, &link).await {
                    Ok(()) => return Ok(Some(user)),
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            // Provisioned concurrently (another request or replica): read it back.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("federated identity".into()))
}

/// A federated user's name: the IdP's name and the user's handle there, so it never
/// collides with a local user's name (those have no `:`) nor another IdP's user.
fn federated_username(idp: &str, handle: &str) -> String {
    let handle: String = handle
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    format!("{idp}:{handle}")
}

/// Audits an identity that arrived (sign-in, ID-JAG): its IdP, issuer and subject.
pub(crate) fn record_arrival(
    app: &App,
    kind: &'static str,
    idp: &str,
    issuer: &str,
    subject: &str,
    user: &UserRecord,
) {
    let event = Event {
        kind,
        client_id: None,
        subject: Some(user.id.clone()),
        server: None,
        detail: json!({
            "idp": idp,
            "issuer": issuer,
            "idp_subject": subject,
            "username": user.username,
            "groups": user.groups,
        }),
    };
    app.audit.submit(app.clock.now_ms(), event, &app.metrics);
}

fn audit_refused(app: &App, idp: Option<&str>, reason: &str) {
    let event = Event {
        kind: "login.federated.refused",
        client_id: None,
        subject: None,
        server: None,
        detail: json!({ "idp": idp, "reason": reason }),
    };
    app.audit.submit(app.clock.now_ms(), event, &app.metrics);
}

fn refused_page(app: &App, idp: Option<&str>, reason: &str, detail: &str) -> Response {
    audit_refused(app, idp, reason);
    pages::error_page(StatusCode::BAD_REQUEST, "Sign-in refused", detail)
}

fn unavailable_page() -> Response {
    let mut resp = pages::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The identity provider cannot be reached right now.",
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(crate::health::RETRY_AFTER_SECS),
    );
    resp
}

fn with_cleared_cookie(app: &App, mut resp: Response) -> Response {
    resp.headers_mut().append(
        header::SET_COOKIE,
        browser::set_cookie(app, FEDERATED_COOKIE, "", 0),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_names_are_namespaced_and_clean() {
        assert_eq!(federated_username("corp", "alice"), "corp:alice");
        assert_eq!(federated_username("corp", "a\nb\u{7}"), "corp:ab");
        assert_eq!(federated_username("corp", &"x".repeat(500)).len(), 5 + 128);
    }
}
