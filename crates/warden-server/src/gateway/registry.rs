//! The gateway's in-memory copy of the server registry.
//!
//! The hot path must not wait on the database, so each server's registration is compiled
//! once into a [`Protected`] (policy, upstream URI, metadata document, challenge strings)
//! and kept here. An entry older than [`REFRESH_AFTER`] is still served while one
//! background task reloads it, so a registry change (or removal) takes effect within a few
//! seconds without any request paying for it. Only the very first request for a name
//! reads the database. The admin API calls [`Registry::invalidate`] after a change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, Uri};
use bytes::Bytes;
use serde_json::json;
use warden_core::config::Config;
use warden_core::keys::Sealer;
use warden_core::server_settings::{ServerSettings, TokenFormat, Transport, UpstreamAuth};
use warden_core::tool_policy::Policy;
use warden_core::uri::CanonicalUri;
use warden_store::{ServerRecord, ServerStore};

use super::external::ExternalIssuer;
use super::tls::TrustRoots;
use super::SharedStr;
use crate::App;

/// How long a compiled entry is served before a background reload.
pub const REFRESH_AFTER: Duration = Duration::from_secs(5);

/// Names cached at most; past this, unknown names are not remembered (so a scan of random
/// names cannot grow memory) and every lookup of one reads the database.
const MAX_SLOTS: usize = 10_000;

/// Default time to the upstream's response headers.
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// A registered server, compiled for the gateway.
pub struct Protected {
    /// The registry name.
    pub name: SharedStr,
    /// The canonical URI: the required token audience.
    pub canonical_uri: SharedStr,
    /// A digest of everything that decides whether a token is valid here (audience,
    /// issuer, token format, leeway, settings): a cached validation counts only while it
    /// is unchanged, so a server moved to another issuer stops accepting the old one's
    /// tokens at once.
    pub validation_id: SharedStr,
    /// Where tokens must come from, and how they are checked.
    pub tokens: TokenSource,
    /// Clock-skew leeway for `exp`/`nbf`, seconds (0..=300).
    pub leeway: i64,
    /// Where requests go.
    pub upstream: Upstream,
    /// Trust anchors for an `https://` upstream (`settings.upstream_ca`); the public web
    /// PKI if `None`.
    pub upstream_roots: Option<TrustRoots>,
    /// Which scope each tool, resource and prompt needs.
    pub policy: Policy,
    /// The RFC 9728 document, serialized once.
    pub metadata: Bytes,
    /// The URL of that document, for `resource_metadata` in challenges.
    pub resource_metadata: String,
    /// The `scope` of a 401 challenge.
    pub challenge_scope: String,
    /// Only DPoP-bound tokens are accepted (`settings.require_dpop`); challenges then
    /// offer only the DPoP scheme.
    pub require_dpop: bool,
    /// Credentials configured for the upstream; values are marked sensitive.
    pub static_headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether the assertion goes in `Authorization` (else `X-Warden-Assertion`, because a
    /// static header or the upstream's own token uses `Authorization`).
    pub assertion_in_authorization: bool,
    /// How the gateway authenticates to the upstream (`settings.upstream_auth`), opened.
    pub upstream_auth: UpstreamAuth,
    /// In the token modes: the upstream's URL and its canonical form (the `resource` of
    /// token requests).
    pub upstream_resource: Option<(url::Url, String)>,
    /// Time allowed to the upstream's response headers.
    pub upstream_timeout: Duration,
    /// Browser origins allowed besides the gateway's own and loopback.
    pub allowed_origins: Vec<String>,
    /// The gateway's own origin (`scheme://host[:port]` of `public_url`).
    pub public_origin: String,
}

/// How a server's tokens are validated.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// JWTs signed by this Warden's keys, with `iss` = the issuer.
    Warden {
        /// The exact `iss`.
        issuer: String,
    },
    /// Opaque `wdn_at_` tokens issued by this Warden: looked up by hash in the store
    /// (Warden's own introspection, without the HTTP round trip), then cached like JWTs
    /// until they expire or are revoked.
    WardenOpaque,
    /// Tokens of another issuer: JWTs checked with its JWKS, or opaque tokens
    /// introspected (see [`super::external`]).
    External(Arc<ExternalIssuer>),
    /// A token source this build cannot check: every token is refused, and the reason is
    /// logged.
    Unsupported(&'static str),
}

/// Where a server's requests are forwarded.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// A command spawned per session and bridged over stdin/stdout.
    Stdio(super::stdio::StdioCommand),
    /// Streamable HTTP at this URI.
    Http {
        /// The endpoint.
        uri: Uri,
        /// The endpoint as text: the `aud` of assertions.
        audience: String,
        /// The `Host` header for `uri`, made once: left to the HTTP client, it is
        /// formatted anew (two allocations) on every request.
        host: Option<HeaderValue>,
    },
    /// The legacy HTTP+SSE transport (MCP 2024-11-05): `GET` on this URI opens the event
    /// stream whose `endpoint` event names where to POST (see [`super::legacy`]).
    LegacySse {
        /// The SSE endpoint.
        uri: Uri,
        /// The endpoint as text: the `aud` of assertions.
        audience: String,
    },
    /// An upstream this build cannot reach; requests get 502 and the reason is logged.
    Unsupported(String),
}

/// The result of a registry lookup.
pub enum Lookup {
    /// The server, compiled.
    Found(Arc<Protected>),
    /// No server has this name.
    Missing,
    /// The registration is invalid, or the registry could not be read.
    Unavailable,
}

#[derive(Clone)]
enum Entry {
    Found(Arc<Protected>),
    Missing,
    Broken,
}

struct Slot {
    entry: Entry,
    loaded: Instant,
    refreshing: Arc<AtomicBool>,
}

/// The in-memory registry.
#[derive(Default)]
pub struct Registry {
    slots: RwLock<HashMap<String, Slot>>,
}

// === impl Registry ===

impl Registry {
    /// The server called `name`.
    pub async fn lookup(&self, app: &App, name: &str) -> Lookup {
        if !plausible_name(name) {
            return Lookup::Missing;
        }
        let cached = self.read(|slots| {
            slots.get(name).map(|slot| {
                let stale = slot.loaded.elapsed() >= REFRESH_AFTER;
                (slot.entry.clone(), stale, Arc::clone(&slot.refreshing))
            })
        });
        match cached {
            Some((entry, stale, refreshing)) => {
                if stale && !refreshing.swap(true, Ordering::AcqRel) {
                    let app = app.clone();
                    let name = name.to_owned();
                    tokio::spawn(async move {
                        let entry = load(&app, &name).await;
                        app.gateway.registry.store(name, entry, refreshing);
                    });
                }
                entry.into()
            }
            None => {
                let entry = load(app, name).await;
                self.store(name.to_owned(), entry.clone(), Arc::default());
                entry.into()
            }
        }
    }

    /// Forgets `name`, so the next request reloads it.
    pub fn invalidate(&self, name: &str) {
        self.write(|slots| {
            slots.remove(name);
        });
    }

    /// Forgets every server.
    pub fn invalidate_all(&self) {
        self.write(HashMap::clear);
    }

    fn store(&self, name: String, entry: Option<Entry>, refreshing: Arc<AtomicBool>) {
        refreshing.store(false, Ordering::Release);
        self.write(|slots| {
            let slot = match entry {
                Some(entry) => Slot {
                    entry,
                    loaded: Instant::now(),
                    refreshing,
                },
                // The store failed: keep serving what we had, try again later.
                None => match slots.remove(&name) {
                    Some(old) => Slot {
                        loaded: Instant::now(),
                        ..old
                    },
                    None => return,
                },
            };
            let unknown = matches!(slot.entry, Entry::Missing);
            if unknown && slots.len() >= MAX_SLOTS && !slots.contains_key(&name) {
                return;
            }
            slots.insert(name, slot);
        });
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<String, Slot>) -> T) -> T {
        match self.slots.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut HashMap<String, Slot>) -> T) -> T {
        match self.slots.write() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl From<Option<Entry>> for Lookup {
    fn from(entry: Option<Entry>) -> Self {
        match entry {
            Some(Entry::Found(p)) => Lookup::Found(p),
            Some(Entry::Missing) => Lookup::Missing,
            Some(Entry::Broken) | None => Lookup::Unavailable,
        }
    }
}

impl From<Entry> for Lookup {
    fn from(entry: Entry) -> Self {
        Some(entry).into()
    }
}

/// Reads and compiles `name`; `None` if the store failed.
async fn load(app: &App, name: &str) -> Option<Entry> {
    match ServerStore::get(&app.store, name).await {
        // The admin API is served by Warden itself, not proxied: not a gateway server.
        Ok(Some(record)) if crate::builtin::is_builtin(&record) => Some(Entry::Missing),
        Ok(Some(record)) => match Protected::compile(&record, &app.config, &app.sealer) {
            Ok(p) => Some(Entry::Found(Arc::new(p))),
            Err(reason) => {
                tracing::error!(server = %name, %reason, "server registration is invalid");
                Some(Entry::Broken)
            }
        },
        Ok(None) => Some(Entry::Missing),
        Err(e) => {
            tracing::error!(server = %name, error = %e, "cannot read the server registry");
            None
        }
    }
}

/// Server names are short identifiers; anything else is not worth a database read.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

// === impl Protected ===

impl Protected {
    /// Compiles `record` against the gateway's `config`; `sealer` opens sealed settings.
    /// The record's settings are parsed here, once, into [`ServerSettings`].
    pub fn compile(
        record: &ServerRecord,
        config: &Config,
        sealer: &Sealer,
    ) -> Result<Self, String> {
        let settings = ServerSettings::parse(&record.settings)?;
        let format: TokenFormat = record.token_format.parse()?;
        let groups = record.tool_groups.iter();
        let policy = Policy::compile(
            groups.map(|g| (g.scope.as_str(), g.tools.as_slice())),
            &settings,
        );
        let issuer = record
            .issuer
            .clone()
            .unwrap_or_else(|| config.issuer.clone());
        let tokens = if issuer != config.issuer {
            TokenSource::External(Arc::new(ExternalIssuer::compile_parsed(
                &issuer, record, &settings, sealer,
            )?))
        } else if format == TokenFormat::Opaque {
            TokenSource::WardenOpaque
        } else {
            TokenSource::Warden {
                issuer: issuer.clone(),
            }
        };
        let resource_metadata = format!(
            "{}/.well-known/oauth-protected-resource/mcp/{}",
            config.public_url, record.name
        );
        let resource_name = settings.resource_name.as_deref().unwrap_or(&record.name);
        let metadata = json!({
            "resource": record.canonical_uri,
            "authorization_servers": [issuer],
            "scopes_supported": policy.scopes(),
            "bearer_methods_supported": ["header"],
            // RFC 9728 §2: the gateway checks DPoP proofs (RFC 9449 §7).
            "dpop_signing_alg_values_supported": warden_core::dpop::SUPPORTED_ALGORITHMS,
            "resource_name": resource_name,
        });
        let metadata = Bytes::from(serde_json::to_vec(&metadata).map_err(|e| e.to_string())?);
        let challenge_scope = settings
            .challenge_scope
            .clone()
            .unwrap_or_else(|| policy.scopes().join(" "));
        let static_headers = static_headers(&settings, sealer, &record.name)?;
        let upstream_auth = settings.open_upstream_auth(sealer, &record.name)?;
        let assertion_in_authorization = upstream_auth.client().is_none()
            && !static_headers
                .iter()
                .any(|(n, _)| n == axum::http::header::AUTHORIZATION);
        let upstream = Upstream::parse(&record.upstream, &settings, sealer, &record.name)?;
        let upstream_resource = upstream_resource(&upstream, &upstream_auth, &record.upstream)?;
        let upstream_timeout = settings
            .upstream_timeout_secs
            .map_or(DEFAULT_UPSTREAM_TIMEOUT, Duration::from_secs);
        let allowed_origins = settings
            .allowed_origins
            .iter()
            .flatten()
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        let upstream_roots = match &settings.upstream_ca {
            None => None,
            Some(pem) => Some(TrustRoots::from_pem(pem, "upstream_ca")?),
        };
        let validation_id = validation_id(record, &issuer);
        Ok(Self {
            name: record.name.as_str().into(),
            canonical_uri: record.canonical_uri.as_str().into(),
            validation_id,
            tokens,
            leeway: record.leeway_secs.clamp(0, 300),
            upstream,
            upstream_roots,
            policy,
            metadata,
            resource_metadata,
            challenge_scope,
            require_dpop: settings.require_dpop.unwrap_or(false),
            static_headers,
            assertion_in_authorization,
            upstream_auth,
            upstream_resource,
            upstream_timeout,
            allowed_origins,
            public_origin: origin_of(&config.public_url),
        })
    }
}

/// In the token modes of `upstream_auth`: the upstream's URL and canonical form. Its
/// authorization server issues tokens for a resource, so the upstream must be one: an
/// `http(s)` URL that is a canonical resource URI.
fn upstream_resource(
    upstream: &Upstream,
    auth: &UpstreamAuth,
    text: &str,
) -> Result<Option<(url::Url, String)>, String> {
    if auth.client().is_none() {
        return Ok(None);
    }
    let mode = auth.mode();
    match upstream {
        Upstream::Http { .. } | Upstream::LegacySse { .. } => {}
        Upstream::Stdio(_) | Upstream::Unsupported(_) => {
            return Err(format!(
                "settings.upstream_auth {mode} needs an http(s) upstream"
            ))
        }
    }
    let canonical = CanonicalUri::parse(text).map_err(|e| {
        format!(
            "settings.upstream_auth {mode}: the upstream must be a resource URI (https, or http              to a loopback host; no query or fragment): {e}"
        )
    })?;
    let url = url::Url::parse(text).map_err(|_| "the upstream is not a URL".to_owned())?;
    Ok(Some((url, canonical.as_str().to_owned())))
}

/// See [`Protected::validation_id`]: SHA-256, hex, so that no setting (some are
/// credentials) is kept in clear.
fn validation_id(record: &ServerRecord, issuer: &str) -> SharedStr {
    let text = format!(
        "{}\n{}\n{}\n{}\n{}",
        record.canonical_uri, issuer, record.token_format, record.leeway_secs, record.settings
    );
    warden_core::secret::hex(&warden_core::secret::token_hash(&text)).into()
}

/// The `static_headers` setting, opened and marked sensitive.
fn static_headers(
    settings: &ServerSettings,
    sealer: &Sealer,
    server: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    settings
        .open_static_headers(sealer, server)?
        .into_iter()
        .map(|(name, value)| {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("settings.static_headers: invalid header name {name:?}"))?;
            // The error names the header, never the value: it may be a credential.
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("settings.static_headers.{name}: invalid value"))?;
            value.set_sensitive(true);
            Ok((header, value))
        })
        .collect()
}

/// `scheme://host[:port]` of `url`, lower-cased; `url` is a validated `public_url`.
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.trim_end_matches('/').to_ascii_lowercase(),
    }
}

// === impl Upstream ===

impl Upstream {
    /// Parses a registration's `upstream` (and, for stdio, its settings, whose `env` is
    /// opened with `sealer`).
    ///
    /// An `http(s)://` upstream speaks Streamable HTTP unless `settings.transport` is
    /// `"sse"`, or, with no `transport` setting, its path ends in `/sse` (the legacy
    /// transport's conventional endpoint); `"streamable-http"` forces the modern transport.
    pub fn parse(
        text: &str,
        settings: &ServerSettings,
        sealer: &Sealer,
        server: &str,
    ) -> Result<Self, String> {
        if let Some(command) = text.strip_prefix("stdio:") {
            let env = settings
                .open_env(sealer, server)?
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.expose().to_owned()))
                .collect();
            return super::stdio::StdioCommand::parse(command, env, settings.max_processes)
                .map(Upstream::Stdio);
        }
        let legacy = settings.transport.map(|t| t == Transport::Sse);
        Ok(match text.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some() =>
            {
                let legacy = legacy.unwrap_or_else(|| uri.path().ends_with("/sse"));
                let audience = text.to_owned();
                if legacy {
                    Upstream::LegacySse { uri, audience }
                } else {
                    let host = host_header(&uri);
                    Upstream::Http {
                        uri,
                        audience,
                        host,
                    }
                }
            }
            _ => Upstream::Unsupported("upstream is not an http(s):// URL".into()),
        })
    }
}

/// The `Host` header an HTTP client sends for `uri`: the host, and the port unless it is
/// the scheme's default.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    match uri.port_u16() {
        Some(port) if port != default_port => HeaderValue::try_from(format!("{host}:{port}")).ok(),
        _ => HeaderValue::from_str(host).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_is_what_an_http_client_sends() {
        for (uri, expected) in [
            ("http://up.internal/mcp", Some("up.internal")),
            ("http://up.internal:80/mcp", Some("up.internal")),
            ("http://up.internal:8080/mcp", Some("up.internal:8080")),
            ("https://up.internal:443/mcp", Some("up.internal")),
            ("https://up.internal:80/mcp", Some("up.internal:80")),
            ("http://[::1]:9000/mcp", Some("[::1]:9000")),
            ("/relative", None),
        ] {
            let host = host_header(&uri.parse().unwrap());
            assert_eq!(
                host.as_ref().map(|v| v.to_str().unwrap()),
                expected,
                "{uri}"
            );
        }
    }
}
