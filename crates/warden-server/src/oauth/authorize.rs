//! The authorization endpoint, sign-in, consent and sign-out.
//!
//! Errors follow RFC 6749 §4.1.2.1: until the client and its redirect URI are known to be
//! valid, errors are shown on a page; after that, they are redirected to the client with
//! `state` and `iss` (RFC 9207).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;
use warden_core::grant::narrow_scope;
use warden_core::idp::IdpUse;
use warden_core::pkce;
use warden_core::scope::ScopeSet;
use warden_core::secret::{generate, random_id, token_hash, SecretKind};
use warden_core::uri::CanonicalUri;
use warden_store::{
    AuthCodeRecord, ClientRecord, CodeStore, ConsentRecord, ConsentStore, IdpStore, ServerRecord,
    ServerStore, UserStore,
};

use super::browser::{self, BrowserSession, CSRF_COOKIE, PENDING_TTL, SESSION_COOKIE, SESSION_TTL};
use super::cimd;
use super::directory::{self, find_client, LookupError};
use super::lockout::Verdict;
use super::pages::{self, ConsentView};
use super::params::Params;
use super::ErrorCode;
use crate::audit::Event;
use crate::{federation, App};

/// An authorization request waiting for sign-in and consent, carried sealed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
    resources: Vec<String>,
    code_challenge: String,
    nonce: Option<String>,
    /// RFC 9449 §10: the DPoP key the code is to be bound to.
    #[serde(default)]
    dpop_jkt: Option<String>,
    force_consent: bool,
    exp: i64,
}

impl Pending {
    /// The client that asked.
    pub(super) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where the client wants the browser back.
    pub(super) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

/// Sends an OAuth error back to the client of a validated pending request, with its
/// `state` and `iss`.
pub(super) fn redirect_error(
    app: &App,
    pending: &Pending,
    code: ErrorCode,
    description: &str,
) -> Response {
    fail(
        app,
        Failure::Redirect {
            redirect_uri: pending.redirect_uri.clone(),
            state: pending.state.clone(),
            code,
            description: description.to_owned(),
        },
        StatusCode::SEE_OTHER,
    )
}

/// Where an error goes.
enum Failure {
    /// Shown on a page: the redirect URI is not trustworthy.
    Page(StatusCode, &'static str, String),
    /// Sent back to the client.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: ErrorCode,
        description: String,
    },
}

fn redirect_to(
    app: &App,
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    status: StatusCode,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The redirect URI is not valid.",
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        q.append_pair("iss", &app.config.issuer);
    }
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn fail(app: &App, f: Failure, status: StatusCode) -> Response {
    match f {
        Failure::Page(code, title, detail) => pages::error_page(code, title, &detail),
        Failure::Redirect {
            redirect_uri,
            state,
            code,
            description,
        } => {
            let mut pairs = vec![
                ("error", code.as_str()),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            redirect_to(app, &redirect_uri, &pairs, status)
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Resolves each `resource` to a registered server.
async fn resolve_servers(app: &App, resources: &[String]) -> Result<Vec<ServerRecord>, String> {
    if resources.is_empty() {
        return Err("resource is required: the canonical URI of the MCP server".into());
    }
    let mut out: Vec<ServerRecord> = Vec::new();
    for r in resources {
        let c = CanonicalUri::parse(r).map_err(|e| format!("resource {e}"))?;
        let server = ServerStore::get_by_uri(&app.store, c.as_str())
            .await
            .map_err(|_| "the server registry is unavailable".to_owned())?
            .ok_or_else(|| "resource is not a registered server".to_owned())?;
        // The admin API is for machine identities (client credentials) only: a user never
        // consents to admin scopes on behalf of an app.
        if crate::builtin::is_builtin(&server) {
            return Err("the admin API cannot be authorized by a user".to_owned());
        }
        if !out.iter().any(|s| s.name == server.name) {
            out.push(server);
        }
    }
    Ok(out)
}

/// The scopes `servers` define.
pub fn defined_scopes(servers: &[ServerRecord]) -> ScopeSet {
    ScopeSet::from_iter_valid(
        servers
            .iter()
            .flat_map(|s| s.tool_groups.iter().map(|g| g.scope.clone())),
    )
}

async fn validate(
    app: &App,
    query: &[u8],
    now: i64,
) -> Result<(ClientRecord, Pending, Option<String>), Failure> {
    let page = |d: &str| {
        Failure::Page(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            d.to_owned(),
        )
    };
    let p = Params::parse(query).map_err(|e| page(&e.description))?;
    let client_id = p
        .get("client_id")
        .ok_or_else(|| page("client_id is missing."))?;
    let client = match find_client(app, client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(page("This application is not registered with Warden.")),
        Err(LookupError::Document(e)) => {
            return Err(page(&format!("{}.", capitalize(&e.to_string()))))
        }
        Err(LookupError::Store(_)) => {
            return Err(Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "The client registry is unavailable.".into(),
            ))
        }
    };
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| page("redirect_uri is missing."))?;
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(page(
            "The redirect URI is not registered for this application.",
        ));
    }
    let state = p.get("state").map(str::to_owned);
    let back = |code: ErrorCode, d: &str| Failure::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        code,
        description: d.to_owned(),
    };
    match p.get("response_type") {
        Some("code") => {}
        None => return Err(back(ErrorCode::InvalidRequest, "response_type is required")),
        Some(_) => {
            return Err(back(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(back(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    pkce::check_challenge(p.get("code_challenge"), p.get("code_challenge_method"))
        .map_err(|e| back(ErrorCode::InvalidRequest, &e.to_string()))?;
    let servers = resolve_servers(app, p.all("resource"))
        .await
        .map_err(|d| back(ErrorCode::InvalidTarget, &d))?;
    let defined = defined_scopes(&servers);
    // The ceiling and what is allowed are both what the resources define; the policy
    // narrows the grant at the token endpoint.
    let scopes = narrow_scope(p.get("scope"), &defined, &defined)
        .map_err(|e| back(ErrorCode::InvalidScope, &e.to_string()))?;
    let dpop_jkt = match p.get("dpop_jkt") {
        None => None,
        Some(jkt) if warden_core::dpop::is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(back(
                ErrorCode::InvalidRequest,
                "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK",
            ))
        }
    };
    let prompt = p.get("prompt").unwrap_or("");
    let pending = Pending {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        scopes: scopes.to_vec(),
        resources: servers.iter().map(|s| s.canonical_uri.clone()).collect(),
        code_challenge: p.get("code_challenge").unwrap_or_default().to_owned(),
        nonce: p.get("nonce").map(str::to_owned),
        dpop_jkt,
        force_consent: prompt.split(' ').any(|x| x == "consent"),
        exp: now + PENDING_TTL,
    };
    Ok((
        Arc::unwrap_or_clone(client),
        pending,
        Some(prompt.to_owned()),
    ))
}

fn csrf_for(app: &App, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(c) = browser::get_cookie(app, headers, CSRF_COOKIE).filter(|c| c.len() >= 32) {
        return (c, None);
    }
    let token = generate(SecretKind::Csrf)
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let cookie = browser::set_cookie(app, CSRF_COOKIE, &token, SESSION_TTL);
    (token, Some(cookie))
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

async fn login_page(
    app: &App,
    headers: &HeaderMap,
    client: &ClientRecord,
    pending: &Pending,
    error: Option<&str>,
    username: &str,
) -> Response {
    let (csrf, cookie) = csrf_for(app, headers);
    let sealed = browser::seal(app, "pending", pending).unwrap_or_default();
    let providers = match federation::login_providers(app).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the identity providers for sign-in");
            Vec::new()
        }
    };
    let choices: Vec<pages::IdpChoice<'_>> = providers
        .iter()
        .map(|p| pages::IdpChoice {
            name: &p.name,
            label: p.display_name.as_deref().unwrap_or(&p.name),
        })
        .collect();
    let routes_by_domain = providers.iter().any(|p| !p.domains.is_empty());
    with_cookie(
        pages::login(&pages::LoginView {
            client_name: &client.name,
            pending: &sealed,
            csrf: &csrf,
            error,
            username,
            local: app.config.login.local,
            providers: &choices,
            email_routing: routes_by_domain,
        }),
        cookie,
    )
}

/// The signed-in session, if any and still good: the user exists and is enabled, and a
/// session begun at an IdP ends when that IdP is removed, disabled or no longer trusted
/// for sign-in. `Err` is the page to show when the store cannot say.
async fn live_session(
    app: &App,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<BrowserSession>, Response> {
    let Some(session) = browser::session(app, headers, now) else {
        return Ok(None);
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "cannot check the sign-in session");
        pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "Warden could not complete the request.",
        )
    };
    let user = UserStore::get(&app.store, &session.user_id)
        .await
        .map_err(|e| unavailable(&e))?;
    if user.is_none_or(|u| u.disabled) {
        return Ok(None);
    }
    match &session.idp {
        None if !app.config.login.local => Ok(None),
        None => Ok(Some(session)),
        Some(idp) => {
            let provider = IdpStore::get(&app.store, idp)
                .await
                .map_err(|e| unavailable(&e))?;
            let live = provider
                .is_some_and(|p| !p.disabled && p.uses.iter().any(|u| u == IdpUse::Login.as_str()));
            Ok(live.then_some(session))
        }
    }
}

/// The requested scopes this user may grant this client under the fleet policy.
async fn policy_allows(
    app: &App,
    client: &ClientRecord,
    pending: &Pending,
    session: &BrowserSession,
) -> Result<Vec<String>, Response> {
    let unavailable = || {
        pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "Warden could not complete the request.",
        )
    };
    let groups = UserStore::get(&app.store, &session.user_id)
        .await
        .map_err(|_| unavailable())?
        .map(|u| u.groups)
        .unwrap_or_default();
    let policy = app.policy.get();
    let mut allowed = ScopeSet::default();
    for r in &pending.resources {
        let Some(server) = ServerStore::get_by_uri(&app.store, r)
            .await
            .map_err(|_| unavailable())?
        else {
            continue;
        };
        let defined = defined_scopes(std::slice::from_ref(&server));
        allowed = allowed.union(&policy.delegated_scopes(
            &client.client_id,
            &groups,
            &server.name,
            &defined,
        ));
    }
    Ok(pending
        .scopes
        .iter()
        .filter(|s| allowed.contains(s))
        .cloned()
        .collect())
}

/// Shows consent, or issues the code at once if consent was already given.
pub(super) async fn continue_flow(
    app: &App,
    headers: &HeaderMap,
    client: &ClientRecord,
    pending: &Pending,
    session: &BrowserSession,
    status: StatusCode,
) -> Response {
    // What the fleet policy lets this user grant this client: the request is narrowed to
    // it before consent is asked, so the page never offers what could not be issued.
    let narrowed = match policy_allows(app, client, pending, session).await {
        Ok(scopes) => scopes,
        Err(resp) => return resp,
    };
    if narrowed.is_empty() {
        let f = Failure::Redirect {
            redirect_uri: pending.redirect_uri.clone(),
            state: pending.state.clone(),
            code: ErrorCode::AccessDenied,
            description:
                "the fleet policy allows none of the requested scopes for this user and client"
                    .into(),
        };
        return fail(app, f, status);
    }
    let narrowed_pending;
    let pending = if narrowed.len() == pending.scopes.len() {
        pending
    } else {
        narrowed_pending = Pending {
            scopes: narrowed,
            ..pending.clone()
        };
        &narrowed_pending
    };
    let mut covered = !pending.force_consent;
    if covered {
        for r in &pending.resources {
            match ConsentStore::get(&app.store, &session.user_id, &client.client_id, r).await {
                Ok(Some(c)) => {
                    let have = ScopeSet::from_iter_valid(c.scopes);
                    let want = ScopeSet::from_iter_valid(pending.scopes.iter().cloned());
                    // Consent is per resource: only the scopes this resource defines matter.
                    if !want.is_subset(&have) {
                        covered = false;
                    }
                }
                _ => covered = false,
            }
        }
    }
    if covered {
        return issue_code(app, client, pending, session, status).await;
    }
    let (csrf, cookie) = csrf_for(app, headers);
    let sealed = browser::seal(app, "pending", pending).unwrap_or_default();
    let host = Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let document_host = cimd::document_host(client);
    let view = ConsentView {
        client_name: &client.name,
        client_id: &client.client_id,
        document_host: document_host.as_deref(),
        self_registered: directory::is_dynamic(client),
        redirect_host: &host,
        resources: &pending.resources,
        scopes: &pending.scopes,
        username: &session.username,
    };
    with_cookie(pages::consent(&view, &sealed, &csrf), cookie)
}

async fn issue_code(
    app: &App,
    client: &ClientRecord,
    pending: &Pending,
    session: &BrowserSession,
    status: StatusCode,
) -> Response {
    let now = app.clock.now();
    let (Ok(code), Ok(family_id)) = (generate(SecretKind::AuthCode), random_id()) else {
        return pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        );
    };
    let rec = AuthCodeRecord {
        code_hash: token_hash(code.expose()),
        client_id: client.client_id.clone(),
        subject: session.user_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        scopes: pending.scopes.clone(),
        resources: pending.resources.clone(),
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        session_id: Some(session.sid.clone()),
        family_id,
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + app.config.tokens.code_ttl,
        used_at: None,
        dpop_jkt: pending.dpop_jkt.clone(),
    };
    if let Err(e) = CodeStore::insert(&app.store, &rec).await {
        tracing::error!(error = %e, "cannot store an authorization code");
        return pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "Warden could not complete the request.",
        );
    }
    let mut pairs = vec![("code", code.expose())];
    if let Some(s) = &pending.state {
        pairs.push(("state", s));
    }
    redirect_to(app, &pending.redirect_uri, &pairs, status)
}

/// `GET /oauth/authorize`.
#[tracing::instrument(skip_all)]
pub async fn authorize(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = app.clock.now();
    let (client, pending, prompt) =
        match validate(&app, query.unwrap_or_default().as_bytes(), now).await {
            Ok(v) => v,
            Err(f) => return fail(&app, f, StatusCode::FOUND),
        };
    let prompt = prompt.unwrap_or_default();
    let session = match live_session(&app, &headers, now).await {
        Ok(s) => s.filter(|_| !prompt.split(' ').any(|x| x == "login")),
        Err(page) => return page,
    };
    match session {
        Some(s) => continue_flow(&app, &headers, &client, &pending, &s, StatusCode::FOUND).await,
        None if prompt.split(' ').any(|x| x == "none") => fail(
            &app,
            Failure::Redirect {
                redirect_uri: pending.redirect_uri.clone(),
                state: pending.state.clone(),
                code: ErrorCode::AccessDenied,
                description: "login_required".into(),
            },
            StatusCode::FOUND,
        ),
        None => login_page(&app, &headers, &client, &pending, None, "").await,
    }
}

/// Parses a browser form post, checks its CSRF token and origin, and opens its pending
/// request.
async fn read_form(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(Params, ClientRecord, Pending), Response> {
    let p = Params::parse(body).map_err(|e| {
        pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", &e.description)
    })?;
    let (client, pending) = open_form(app, headers, &p, now).await?;
    Ok((p, client, pending))
}

/// Checks the CSRF token and origin of a browser form post and opens its pending request.
async fn open_form(
    app: &App,
    headers: &HeaderMap,
    p: &Params,
    now: i64,
) -> Result<(ClientRecord, Pending), Response> {
    let cookie = browser::get_cookie(app, headers, CSRF_COOKIE);
    let form = p.get("csrf");
    let csrf_ok = matches!((cookie.as_deref(), form), (Some(c), Some(f)) if warden_core::secret::ct_eq(c.as_bytes(), f.as_bytes()));
    if !csrf_ok || !browser::same_origin(app, headers) {
        return Err(pages::error_page(StatusCode::FORBIDDEN, "Request refused", "The form was not submitted from this sign-in page. Go back to the application and try again."));
    }
    let pending: Pending = p
        .get("pending")
        .and_then(|t| browser::unseal(app, "pending", t))
        .filter(|x: &Pending| x.exp > now)
        .ok_or_else(|| {
            pages::error_page(
                StatusCode::BAD_REQUEST,
                "Request expired",
                "This sign-in request has expired. Go back to the application and try again.",
            )
        })?;
    let client = find_client(app, &pending.client_id)
        .await
        .ok()
        .flatten()
        .filter(|c| c.redirect_uris.contains(&pending.redirect_uri))
        .ok_or_else(|| {
            pages::error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The application is no longer registered.",
            )
        })?;
    Ok((Arc::unwrap_or_clone(client), pending))
}

/// `POST /oauth/login`.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app.clock.now();
    let (p, client, pending) = match read_form(&app, &headers, &body, now).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let username = p.get("username").unwrap_or_default();
    let password = p.get("password").unwrap_or_default();
    let source = peer.ip().to_string();
    match route_by_email(&app, username).await {
        Ok(Some(provider)) => {
            return super::federated::start(&app, &provider, pending, Some(username), now).await
        }
        Ok(None) => {}
        Err(page) => return page,
    }
    if !app.config.login.local {
        record_login(&app, "login.refused", username, None, &source).await;
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Password sign-in is turned off",
            "Sign in with your organisation's identity provider.",
        );
    }
    match app.login_throttle.check(username, &source, now) {
        Verdict::Locked(_) => {
            record_login(&app, "login.locked", username, None, &source).await;
            return login_page(
                &app,
                &headers,
                &client,
                &pending,
                Some("Too many failed attempts. Try again later."),
                username,
            )
            .await;
        }
        Verdict::Proceed(delay) if delay > Duration::ZERO => tokio::time::sleep(delay).await,
        Verdict::Proceed(_) => {}
    }
    let user = UserStore::get_by_username(&app.store, username)
        .await
        .ok()
        .flatten()
        // A federated user (no password hash) signs in at its IdP only; it is checked
        // like an unknown user, against the dummy hash, so the answer takes as long.
        .filter(|u| !u.disabled && !u.password_hash.is_empty());
    let hash = user
        .as_ref()
        .map_or(warden_core::password::dummy_hash(), |u| {
            u.password_hash.as_str()
        })
        .to_owned();
    let pw = password.to_owned();
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || warden_core::password::verify(&pw, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        app.login_throttle.failure(username, &source, now);
        record_login(&app, "login.failed", username, None, &source).await;
        return login_page(
            &app,
            &headers,
            &client,
            &pending,
            Some("Wrong username or password."),
            username,
        )
        .await;
    };
    app.login_throttle.success(username);
    record_login(&app, "login.succeeded", username, Some(&user.id), &source).await;
    let Ok(sid) = random_id() else {
        return pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        );
    };
    let session = BrowserSession {
        sid,
        user_id: user.id.clone(),
        username: user.username.clone(),
        auth_time: now,
        exp: now + SESSION_TTL,
        idp: None,
    };
    let cookie = browser::seal(&app, "session", &session)
        .map(|v| browser::set_cookie(&app, SESSION_COOKIE, &v, SESSION_TTL));
    let resp = continue_flow(
        &app,
        &headers,
        &client,
        &pending,
        &session,
        StatusCode::SEE_OTHER,
    )
    .await;
    with_cookie(resp, cookie)
}

/// `POST /oauth/login/federated`: sign in at the IdP named by `idp`, or at the one that
/// claims the domain of `email`.
#[tracing::instrument(skip_all)]
pub async fn login_federated(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let now = app.clock.now();
    let (p, client, pending) = match read_form(&app, &headers, &body, now).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let email = p.get("email").filter(|e| !e.is_empty());
    let provider = match (p.get("idp"), email) {
        (Some(name), _) => match federation::provider(&app, name).await {
            Ok(found) => found.filter(|f| f.serves(IdpUse::Login)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the identity provider");
                return pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "Warden could not complete the request.",
                );
            }
        },
        (None, Some(email)) => match route_by_email(&app, email).await {
            Ok(found) => found,
            Err(page) => return page,
        },
        (None, None) => None,
    };
    let Some(provider) = provider else {
        let message = if email.is_some() {
            "No identity provider signs in addresses of this domain."
        } else {
            "This identity provider is not available for sign-in."
        };
        return login_page(
            &app,
            &headers,
            &client,
            &pending,
            Some(message),
            email.unwrap_or_default(),
        )
        .await;
    };
    super::federated::start(&app, &provider, pending, email, now).await
}

/// The IdP for sign-in that claims the domain of `text`, if it is an email address.
async fn route_by_email(app: &App, text: &str) -> Result<Option<federation::Provider>, Response> {
    let Some((_, domain)) = text.rsplit_once('@') else {
        return Ok(None);
    };
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() {
        return Ok(None);
    }
    let found = IdpStore::find_by_domain(&app.store, &domain)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot route the sign-in by domain");
            pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Warden could not complete the request.",
            )
        })?;
    let Some(record) = found else {
        return Ok(None);
    };
    match federation::provider(app, &record.name).await {
        Ok(p) => Ok(p.filter(|p| p.serves(IdpUse::Login))),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the identity provider");
            Ok(None)
        }
    }
}

async fn record_login(
    app: &App,
    kind: &'static str,
    username: &str,
    user_id: Option<&str>,
    source: &str,
) {
    let event = Event {
        kind,
        client_id: None,
        subject: user_id.map(str::to_owned),
        server: None,
        detail: json!({ "username": username.chars().take(64).collect::<String>(), "source": source }),
    };
    app.audit.submit(app.clock.now_ms(), event, &app.metrics);
}

/// `POST /oauth/consent`.
#[tracing::instrument(skip_all)]
pub async fn consent(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let now = app.clock.now();
    let (p, client, pending) = match read_form(&app, &headers, &body, now).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let session = match live_session(&app, &headers, now).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let Some(session) = session else {
        return login_page(
            &app,
            &headers,
            &client,
            &pending,
            Some("Your session ended. Sign in again."),
            "",
        )
        .await;
    };
    let event = |kind: &'static str| Event {
        kind,
        client_id: Some(client.client_id.clone()),
        subject: Some(session.user_id.clone()),
        server: None,
        detail: json!({ "resources": pending.resources, "scope": pending.scopes.join(" ") }),
    };
    match p.get("decision") {
        Some("allow") => {
            for r in &pending.resources {
                let rec = ConsentRecord {
                    user_id: session.user_id.clone(),
                    client_id: client.client_id.clone(),
                    resource: r.clone(),
                    scopes: pending.scopes.clone(),
                    granted_at: now,
                };
                if let Err(e) = ConsentStore::upsert(&app.store, &rec).await {
                    tracing::error!(error = %e, "cannot store consent");
                    return pages::error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Try again shortly",
                        "Warden could not record your decision.",
                    );
                }
            }
            if app
                .audit
                .record(app.clock.now_ms(), event("consent.given"))
                .await
                .is_err()
            {
                return pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "Warden could not record your decision.",
                );
            }
            issue_code(&app, &client, &pending, &session, StatusCode::SEE_OTHER).await
        }
        Some("deny") => {
            app.audit
                .submit(app.clock.now_ms(), event("consent.denied"), &app.metrics);
            let f = Failure::Redirect {
                redirect_uri: pending.redirect_uri.clone(),
                state: pending.state.clone(),
                code: ErrorCode::AccessDenied,
                description: "the user denied the request".into(),
            };
            fail(&app, f, StatusCode::SEE_OTHER)
        }
        _ => pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "decision must be allow or deny.",
        ),
    }
}

/// `GET /oauth/logout`: a confirmation form (sign-out changes state, so it is a POST).
pub async fn logout_form(State(app): State<App>, headers: HeaderMap) -> Response {
    let (csrf, cookie) = csrf_for(&app, &headers);
    let body = format!(
        "<h1>Sign out</h1><p>End your Warden session and revoke the tokens it issued?</p>\
<form method=\"post\" action=\"/oauth/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" id=\"sign-out\">Sign out</button></form>",
        pages::esc(&csrf)
    );
    with_cookie(pages::page(StatusCode::OK, "Sign out", &body), cookie)
}

/// `POST /oauth/logout`: ends the browser session and revokes its refresh families.
pub async fn logout(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let now = app.clock.now();
    let p = Params::parse(&body).unwrap_or_default();
    let cookie = browser::get_cookie(&app, &headers, CSRF_COOKIE);
    let csrf_ok = matches!((cookie.as_deref(), p.get("csrf")), (Some(c), Some(f)) if warden_core::secret::ct_eq(c.as_bytes(), f.as_bytes()));
    if !csrf_ok || !browser::same_origin(&app, &headers) {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "Sign out from Warden's own page.",
        );
    }
    if let Some(s) = browser::session(&app, &headers, now) {
        if let Err(e) = super::revoke::revoke_session(&app, &s.sid, &s.user_id, now).await {
            tracing::error!(error = %e, "sign-out could not revoke the session's tokens");
            return pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Warden could not end the session.",
            );
        }
    }
    let mut resp = pages::signed_out();
    resp.headers_mut().append(
        header::SET_COOKIE,
        browser::set_cookie(&app, SESSION_COOKIE, "", 0),
    );
    resp
}

/// `GET /oauth/static/warden.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::CSS,
    )
        .into_response()
}
