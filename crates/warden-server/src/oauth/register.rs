//! Dynamic client registration (RFC 7591) at `POST /oauth/register`, with the abuse
//! controls hosted MCP clients make necessary (they register on every connect, from
//! shared egress addresses):
//!
//! - **Idempotency.** A public or `private_key_jwt` client whose normalized metadata
//!   (including `software_id`) equals an existing dynamic registration gets that
//!   registration back instead of a new one. Its id is not a secret and its redirect URIs
//!   are the same, so handing it out gives nothing away. Clients with a shared secret are
//!   never deduplicated: returning the old secret is impossible (only its hash is kept)
//!   and minting a new one for whoever repeats the metadata would hand that caller a
//!   credential of someone else's client.
//! - **Rate limits.** A token bucket per source address (IPv6: per /64) with a generous
//!   burst, and one global bucket. Idempotent answers cost nothing, so a shared egress
//!   address full of the same client is never locked out.
//! - **Initial access tokens** (optional): `Authorization: Bearer wdn_iat_…`, compared by
//!   SHA-256 digest against the config, in constant time.
//! - **Reaping.** A registration never used at the token endpoint within
//!   `registration.reap_unused_after` is deleted by [`reap_unused`], which the
//!   maintenance task runs (see `App::new`).
//! - **Caps** on dynamic clients in all and on redirect URIs per client.
//!
//! A dynamic client is never granted scopes by registering: its `scope` metadata is
//! informational. Users consent per request; `client_credentials` gets nothing until an
//! administrator assigns scopes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use warden_core::config::RegistrationSettings;
use warden_core::credentials;
use warden_core::secret::{ct_eq, generate, random_id, token_hash, SecretKind};
use warden_core::sync::lock_recovering;
use warden_store::{ClientRecord, ClientSecret, ClientStore, StoreError};

use super::directory::is_dynamic;
use crate::audit::Event;
use crate::App;
use warden_core::client_metadata::{normalize, MetadataError, Normalized, Source};

/// Largest registration request body.
const MAX_BODY: usize = 64 * 1024;
/// Most rate-limit buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 50_000;

/// The registration endpoint's error boundary (RFC 7591 §3.2.2, RFC 6750 §3).
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Registration is turned off.
    #[error("not_found")]
    Disabled,
    /// No initial access token, though one is required.
    #[error("invalid_token")]
    TokenRequired,
    /// The initial access token is not one of the configured ones.
    #[error("invalid_token")]
    TokenInvalid,
    /// `invalid_client_metadata` or `invalid_redirect_uri`.
    #[error("{}", .0.code())]
    Metadata(#[from] MetadataError),
    /// Too many registrations from this source or in all; retry after the seconds given.
    #[error("temporarily_unavailable")]
    RateLimited(u64),
    /// The cap on dynamic clients is reached.
    #[error("temporarily_unavailable")]
    Full,
    /// The store or audit log failed; detail is logged only.
    #[error("temporarily_unavailable")]
    Unavailable,
    /// An internal failure; detail is logged only.
    #[error("server_error")]
    Internal,
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "registration store failure");
        if e.is_transient() {
            RegisterError::Unavailable
        } else {
            RegisterError::Internal
        }
    }
}

impl IntoResponse for RegisterError {
    fn into_response(self) -> Response {
        let (status, description) = match &self {
            RegisterError::Disabled => (
                StatusCode::NOT_FOUND,
                "dynamic registration is not enabled".to_owned(),
            ),
            RegisterError::TokenRequired => (
                StatusCode::UNAUTHORIZED,
                "an initial access token is required".to_owned(),
            ),
            RegisterError::TokenInvalid => (
                StatusCode::UNAUTHORIZED,
                "the initial access token is not valid".to_owned(),
            ),
            RegisterError::Metadata(e) => (StatusCode::BAD_REQUEST, e.to_string()),
            RegisterError::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many registrations; retry later".to_owned(),
            ),
            RegisterError::Full => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the registration capacity is reached".to_owned(),
            ),
            RegisterError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "try again shortly".to_owned(),
            ),
            RegisterError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            ),
        };
        let body = json!({ "error": self.to_string(), "error_description": description });
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            RegisterError::TokenRequired => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"warden\""),
                );
            }
            RegisterError::TokenInvalid => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"warden\", error=\"invalid_token\""),
                );
            }
            RegisterError::RateLimited(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            RegisterError::Disabled
            | RegisterError::Metadata(_)
            | RegisterError::Full
            | RegisterError::Unavailable
            | RegisterError::Internal => {}
        }
        resp
    }
}

// === Limiter ===

/// A token bucket: `tokens` as of `at_ms`.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl Bucket {
    fn full(capacity: f64, now_ms: i64) -> Self {
        Bucket {
            tokens: capacity,
            at_ms: now_ms,
        }
    }

    /// Refills at `per_ms` up to `capacity`.
    fn refill(&mut self, capacity: f64, per_ms: f64, now_ms: i64) {
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * per_ms).min(capacity);
        self.at_ms = now_ms;
    }

    /// Seconds until one token is there.
    fn wait_secs(&self, per_ms: f64) -> u64 {
        ((1.0 - self.tokens).max(0.0) / per_ms / 1000.0).ceil() as u64
    }
}

/// Registration rate limits, and the number of dynamic clients (kept per replica; it is
/// recounted from the store by every reaping pass).
pub struct Limiter {
    sources: Mutex<HashMap<String, Bucket>>,
    global: Mutex<Option<Bucket>>,
    burst: f64,
    source_per_ms: f64,
    global_capacity: f64,
    global_per_ms: f64,
    /// Dynamic clients, or -1 until first counted.
    dynamic_clients: AtomicI64,
}

impl Limiter {
    /// Limits from the config.
    pub fn new(s: &RegistrationSettings) -> Self {
        Self {
            sources: Mutex::new(HashMap::new()),
            global: Mutex::new(None),
            burst: f64::from(s.burst),
            source_per_ms: f64::from(s.rate_per_minute) / 60_000.0,
            global_capacity: f64::from(s.global_per_minute),
            global_per_ms: f64::from(s.global_per_minute) / 60_000.0,
            dynamic_clients: AtomicI64::new(-1),
        }
    }

    /// Takes one registration for `source` at `now_ms`, or says how long to wait.
    pub fn take(&self, source: &str, now_ms: i64) -> Result<(), u64> {
        let mut sources = lock_recovering(&self.sources);
        let mut global = lock_recovering(&self.global);
        let g = global.get_or_insert_with(|| Bucket::full(self.global_capacity, now_ms));
        g.refill(self.global_capacity, self.global_per_ms, now_ms);
        let s = sources
            .entry(source.to_owned())
            .or_insert_with(|| Bucket::full(self.burst, now_ms));
        s.refill(self.burst, self.source_per_ms, now_ms);
        if s.tokens < 1.0 {
            return Err(s.wait_secs(self.source_per_ms));
        }
        if g.tokens < 1.0 {
            return Err(g.wait_secs(self.global_per_ms));
        }
        s.tokens -= 1.0;
        g.tokens -= 1.0;
        if sources.len() > MAX_BUCKETS {
            self.drop_full(&mut sources, now_ms);
        }
        Ok(())
    }

    /// Drops buckets that have refilled completely: they hold no state worth keeping.
    pub fn purge(&self, now_ms: i64) {
        let mut sources = lock_recovering(&self.sources);
        self.drop_full(&mut sources, now_ms);
    }

    fn drop_full(&self, sources: &mut HashMap<String, Bucket>, now_ms: i64) {
        sources.retain(|_, b| {
            let mut b = *b;
            b.refill(self.burst, self.source_per_ms, now_ms);
            b.tokens < self.burst
        });
    }
}

/// The rate-limit key of a peer: its address, or its /64 for IPv6 (one host usually holds
/// a whole /64).
pub fn source_key(ip: IpAddr) -> String {
    match warden_core::net::canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

// === Endpoint ===

/// `POST /oauth/register`.
#[tracing::instrument(skip_all, fields(source))]
pub async fn register(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = source_key(peer.ip());
    tracing::Span::current().record("source", source.as_str());
    match handle(&app, &headers, &body, &source).await {
        Ok((status, v)) => {
            let mut r = (status, Json(v)).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => {
            match &e {
                // A flood would only flood the audit log too; the log line is enough.
                RegisterError::RateLimited(_) => {
                    tracing::warn!(source = %source, "registration rate limited");
                }
                RegisterError::Disabled => {}
                _ => app.audit.submit(
                    app.clock.now_ms(),
                    Event {
                        kind: "client.registration_refused",
                        client_id: None,
                        subject: None,
                        server: None,
                        detail: json!({ "source": source, "error": e.to_string() }),
                    },
                    &app.metrics,
                ),
            }
            e.into_response()
        }
    }
}

fn check_initial_token(s: &RegistrationSettings, headers: &HeaderMap) -> Result<(), RegisterError> {
    if s.initial_access_tokens.is_empty() {
        return Ok(());
    }
    // The one Authorization parser: a malformed header is a bad token, another scheme none.
    let values = headers.get_all(header::AUTHORIZATION).iter();
    let presented = credentials::single_header(values.map(HeaderValue::as_bytes))
        .and_then(|h| h.map(credentials::bearer).transpose())
        .map_err(|_| RegisterError::TokenInvalid)?
        .flatten()
        .ok_or(RegisterError::TokenRequired)?;
    let digest = token_hash(presented);
    let ok = s
        .initial_access_tokens
        .iter()
        .fold(false, |acc, t| acc | ct_eq(t, &digest));
    if ok {
        Ok(())
    } else {
        Err(RegisterError::TokenInvalid)
    }
}

fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The idempotency key: a digest of the normalized metadata.
fn fingerprint(n: &Normalized) -> String {
    let canonical = serde_json::to_vec(n).unwrap_or_default();
    warden_core::secret::hex(&token_hash(&String::from_utf8_lossy(&canonical)))
}

/// The registration response (RFC 7591 §3.2.1): the metadata as registered, the id, and
/// a secret if one was minted now.
fn response(rec: &ClientRecord, secret: Option<&str>) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = &rec.metadata {
        for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "warden") {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("client_id".into(), json!(rec.client_id));
    out.insert("client_id_issued_at".into(), json!(rec.created_at));
    if let Some(s) = secret {
        out.insert("client_secret".into(), json!(s));
        out.insert("client_secret_expires_at".into(), json!(0));
    }
    Value::Object(out)
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    source: &str,
) -> Result<(StatusCode, Value), RegisterError> {
    let settings = &app.config.registration;
    if !settings.enabled {
        return Err(RegisterError::Disabled);
    }
    check_initial_token(settings, headers)?;
    if !json_content_type(headers) {
        return Err(MetadataError::Metadata("the request must be application/json".into()).into());
    }
    if body.len() > MAX_BODY {
        return Err(MetadataError::Metadata("the request is too large".into()).into());
    }
    let raw: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| MetadataError::Metadata("the request must be a JSON object".into()))?;
    let n = normalize(
        &raw,
        Source::Registration,
        settings.max_redirect_uris as usize,
    )?;
    let fp = fingerprint(&n);
    let name = n
        .client_name
        .clone()
        .unwrap_or_else(|| "Unnamed client".into());

    if !n.uses_secret() {
        let same = ClientStore::find_by_name(&app.store, &name)
            .await?
            .into_iter()
            .find(|c| {
                is_dynamic(c)
                    && c.metadata
                        .get("warden")
                        .and_then(|w| w.get("fingerprint"))
                        .and_then(Value::as_str)
                        == Some(fp.as_str())
            });
        if let Some(existing) = same {
            app.audit.submit(
                app.clock.now_ms(),
                Event {
                    kind: "client.registration_reused",
                    client_id: Some(existing.client_id.clone()),
                    subject: None,
                    server: None,
                    detail: json!({ "source": source }),
                },
                &app.metrics,
            );
            return Ok((StatusCode::CREATED, response(&existing, None)));
        }
    }

    app.directory
        .registrations
        .take(source, app.clock.now_ms())
        .map_err(RegisterError::RateLimited)?;
    if dynamic_count(app).await? >= i64::from(settings.max_clients) {
        return Err(RegisterError::Full);
    }

    let now = app.clock.now();
    let client_id = random_id().map_err(|_| RegisterError::Internal)?;
    let secret = if n.uses_secret() {
        Some(generate(SecretKind::ClientSecret).map_err(|_| RegisterError::Internal)?)
    } else {
        None
    };
    let secrets = match &secret {
        Some(s) => vec![ClientSecret {
            id: random_id().map_err(|_| RegisterError::Internal)?,
            hash: app.secrets.hash(s.expose()),
            created_at: now,
            expires_at: None,
        }],
        None => Vec::new(),
    };
    let mut metadata = n.to_map();
    metadata.insert(
        "warden".into(),
        json!({ "origin": "dynamic_registration", "fingerprint": fp }),
    );
    let rec = ClientRecord {
        client_id,
        name,
        confidential: n.confidential(),
        redirect_uris: n.redirect_uris.clone(),
        grant_types: n.grant_types.clone(),
        scopes: Vec::new(),
        token_endpoint_auth_method: n.token_endpoint_auth_method.clone(),
        secrets,
        metadata: Value::Object(metadata),
        created_at: now,
        updated_at: now,
        last_used_at: None,
    };
    ClientStore::create(&app.store, &rec).await?;
    app.directory
        .registrations
        .dynamic_clients
        .fetch_add(1, Ordering::SeqCst);
    let hosts: Vec<String> = rec
        .redirect_uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| {
            u.host_str()
                .map_or_else(|| u.scheme().to_owned(), str::to_owned)
        })
        .collect();
    let event = Event {
        kind: "client.registered",
        client_id: Some(rec.client_id.clone()),
        subject: None,
        server: None,
        detail: json!({
            "source": source,
            "client_name": rec.name,
            "application_type": n.application_type,
            "token_endpoint_auth_method": rec.token_endpoint_auth_method,
            "grant_types": rec.grant_types,
            "redirect_hosts": hosts,
            "software_id": n.software_id,
        }),
    };
    if app.audit.record(app.clock.now_ms(), event).await.is_err() {
        // No registration without its audit record: undo it.
        if let Err(e) = ClientStore::delete(&app.store, &rec.client_id).await {
            tracing::error!(error = %e, "cannot undo a registration whose audit failed");
        }
        return Err(RegisterError::Unavailable);
    }
    Ok((
        StatusCode::CREATED,
        response(&rec, secret.as_ref().map(|s| s.expose())),
    ))
}

/// The number of dynamic clients, counted from the store the first time.
async fn dynamic_count(app: &App) -> Result<i64, StoreError> {
    let held = app
        .directory
        .registrations
        .dynamic_clients
        .load(Ordering::SeqCst);
    if held >= 0 {
        return Ok(held);
    }
    let n = count_dynamic(app).await?;
    app.directory
        .registrations
        .dynamic_clients
        .store(n, Ordering::SeqCst);
    Ok(n)
}

async fn count_dynamic(app: &App) -> Result<i64, StoreError> {
    let all = ClientStore::list(&app.store).await?;
    Ok(all.iter().filter(|c| is_dynamic(c)).count() as i64)
}

/// Deletes dynamic registrations never used at the token endpoint within
/// `registration.reap_unused_after` of their creation, as of `now`. Returns how many.
pub async fn reap_unused(app: &App, now: i64) -> Result<usize, StoreError> {
    let after = app.config.registration.reap_unused_after;
    let all = ClientStore::list(&app.store).await?;
    let mut reaped = Vec::new();
    for c in all
        .iter()
        .filter(|c| is_dynamic(c) && c.last_used_at.is_none() && c.created_at + after <= now)
    {
        let deleted = ClientStore::delete(&app.store, &c.client_id).await?;
        app.clients.invalidate(&c.client_id);
        if deleted {
            reaped.push(c.client_id.clone());
        }
    }
    if !reaped.is_empty() {
        app.audit.submit(
            app.clock.now_ms(),
            Event {
                kind: "client.reaped",
                client_id: None,
                subject: None,
                server: None,
                detail: json!({ "clients": reaped, "unused_for_secs": after }),
            },
            &app.metrics,
        );
    }
    let n = count_dynamic(app).await?;
    app.directory
        .registrations
        .dynamic_clients
        .store(n, Ordering::SeqCst);
    Ok(reaped.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: u32, burst: u32, global: u32) -> RegistrationSettings {
        let mut c = warden_core::config::Config::load(
            "version = 1\npublic_url = \"http://127.0.0.1:1\"\n",
            Vec::new(),
            std::path::Path::new("/tmp"),
        )
        .unwrap()
        .registration;
        c.rate_per_minute = rate;
        c.burst = burst;
        c.global_per_minute = global;
        c
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let l = Limiter::new(&settings(6, 3, 1000));
        for _ in 0..3 {
            assert!(l.take("a", 0).is_ok());
        }
        assert_eq!(l.take("a", 0), Err(10), "6/min: one every 10 s");
        assert!(l.take("b", 0).is_ok(), "another source is unaffected");
        assert!(l.take("a", 10_000).is_ok(), "refilled");
        assert!(l.take("a", 10_000).is_err());
    }

    #[test]
    fn the_global_cap_binds_all_sources() {
        let l = Limiter::new(&settings(1, 5, 2));
        assert!(l.take("a", 0).is_ok());
        assert!(l.take("b", 0).is_ok());
        assert!(l.take("c", 0).is_err());
        l.purge(3_600_000);
        assert!(l.sources.lock().unwrap().is_empty(), "full buckets dropped");
    }

    #[test]
    fn ipv6_sources_group_by_64() {
        let a = source_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = source_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(source_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
