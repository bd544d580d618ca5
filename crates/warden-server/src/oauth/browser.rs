//! What the browser-facing pages share: cookies, sealed state, and security headers.
//!
//! Nothing here is stored server-side. The sign-in session and the pending authorization
//! request travel sealed (AES-256-GCM under a subkey of the master key, bound to a
//! purpose string), so any replica can continue a flow another one started.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::App;

/// The sign-in session cookie's base name.
pub const SESSION_COOKIE: &str = "warden_session";
/// The CSRF cookie's base name.
pub const CSRF_COOKIE: &str = "warden_csrf";

/// How long a sign-in session lasts.
pub const SESSION_TTL: i64 = 12 * 3600;
/// How long a pending authorization request may wait for sign-in and consent.
pub const PENDING_TTL: i64 = 15 * 60;

/// Whether cookies can be `Secure` with the `__Host-` prefix: only over https.
/// Plain-http loopback development drops both (browsers refuse them on http).
pub fn secure_cookies(app: &App) -> bool {
    app.config.public_url.starts_with("https://")
}

/// The full cookie name for `base`.
pub fn cookie_name(app: &App, base: &str) -> String {
    if secure_cookies(app) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` over https.
pub fn set_cookie(app: &App, base: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure_cookies(app) { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(app, base)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The value of cookie `base` in the request, if present.
pub fn get_cookie(app: &App, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(app, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Seals `value` for `purpose`, as base64url text.
pub fn seal<T: Serialize>(app: &App, purpose: &str, value: &T) -> Option<String> {
    let json = serde_json::to_vec(value).ok()?;
    let sealed = app.sealer.seal(purpose, &json).ok()?;
    Some(URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens what [`seal`] made for the same `purpose`; `None` if altered or foreign.
pub fn unseal<T: DeserializeOwned>(app: &App, purpose: &str, text: &str) -> Option<T> {
    if text.len() > 16 * 1024 {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD.decode(text).ok()?;
    let plain = app.sealer.open(purpose, &sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// A signed-in browser session.
#[derive(Clone, Serialize, Deserialize)]
pub struct BrowserSession {
    /// Session id: refresh families created in this session carry it, so sign-out can
    /// revoke them.
    pub sid: String,
    /// The user's id (the token `sub`).
    pub user_id: String,
    /// The user's name, for display.
    pub username: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// When the session ends.
    pub exp: i64,
    /// The identity provider the user signed in at; `None` for a password sign-in.
    #[serde(default)]
    pub idp: Option<String>,
}

/// The current session, if the cookie is valid and unexpired at `now`.
pub fn session(app: &App, headers: &HeaderMap, now: i64) -> Option<BrowserSession> {
    let raw = get_cookie(app, headers, SESSION_COOKIE)?;
    let s: BrowserSession = unseal(app, "session", &raw)?;
    (s.exp > now).then_some(s)
}

/// Adds the headers every HTML page carries.
pub fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`, not `no-referrer`: with no-referrer, browsers send `Origin: null` on
    // our own form posts, which the origin check in `same_origin` would then refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Whether a state-changing browser request comes from our own pages: its `Origin`, when
/// sent, must be the public origin (defence in depth beside the CSRF token).
pub fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let public = &app.config.public_url;
    let public_origin = match public
        .find("://")
        .and_then(|i| public[i + 3..].find('/').map(|j| i + 3 + j))
    {
        Some(end) => &public[..end],
        None => public.as_str(),
    };
    origin.eq_ignore_ascii_case(public_origin)
}
