//! `warden.toml`: raw serde types, then validated types.
//!
//! Parsing is pure: the caller reads the file and the environment and passes both in.
//! Errors name the key (and the line, or the environment variable it came from) but never
//! echo a value, since values may be secrets such as a database password.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;
use url::{Host, Url};

use crate::keys::SigningAlg;
use crate::secret::SecretString;
use crate::uri::is_loopback_host;

mod dpop;
mod duration;
mod raw;
mod registration;

pub use dpop::DpopSettings;
pub use duration::parse_duration;
use raw::RawConfig;
pub use registration::{ExchangeSettings, RegistrationSettings};

/// The config format version this binary reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// The config file's name inside the data dir.
pub const CONFIG_FILE: &str = "warden.toml";

/// Environment variables with the `WARDEN_` prefix that are not config overrides.
pub const RESERVED_ENV: &[&str] = &[
    "WARDEN_MASTER_KEY",
    "WARDEN_DATA_DIR",
    "WARDEN_TEST_DATABASE_URL",
    "WARDEN_REQUIRE_POSTGRES",
    "WARDEN_BIN",
    "WARDEN_LOG",
    "WARDEN_ADMIN_CLIENT_ID",
    "WARDEN_ADMIN_CLIENT_SECRET",
    "WARDEN_ADMIN_CA_FILE",
];

/// A configuration error: which key, where it came from, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `tokens.access_token_ttl`, or empty for the whole file.
    pub key: String,
    /// `warden.toml line N`, or `environment WARDEN_…`.
    pub origin: Option<String>,
    /// What is wrong, without the value.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.origin, self.key.is_empty()) {
            (Some(o), false) => write!(f, "config key `{}` ({o}): {}", self.key, self.message),
            (None, false) => write!(f, "config key `{}`: {}", self.key, self.message),
            (Some(o), true) => write!(f, "config ({o}): {}", self.message),
            (None, true) => write!(f, "config: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The externally visible base URL, without a trailing slash.
    pub public_url: String,
    /// The issuer identifier: equal to `public_url`.
    pub issuer: String,
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// The database.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// Token lifetimes and signing.
    pub tokens: TokenSettings,
    /// Signing-key rotation.
    pub keys: KeySettings,
    /// Gateway defaults.
    pub gateway: GatewaySettings,
    /// Browser login protection.
    pub login: LoginSettings,
    /// Dynamic registration and client ID metadata documents.
    pub registration: RegistrationSettings,
    /// Token exchange.
    pub exchange: ExchangeSettings,
    /// Client-secret policy.
    pub secrets: SecretSettings,
    /// The audit log's sink and retention.
    pub audit: AuditSettings,
    /// DPoP proofs and nonces.
    pub dpop: DpopSettings,
}

/// Where audit events are streamed besides the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditSink {
    /// Only the database.
    None,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to this file.
    File(std::path::PathBuf),
}

/// Audit settings.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// The extra sink.
    pub sink: AuditSink,
    /// How long events are kept, seconds.
    pub retention: i64,
}

/// Database settings.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// The database URL (may hold a password, hence secret-typed).
    pub url: SecretString,
    /// How long to wait for a connection, seconds.
    pub connect_timeout: i64,
    /// Pool size, if not the backend's default.
    pub max_connections: Option<u32>,
}

/// Logging settings.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// JSON or pretty.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `warden=debug,info`.
    pub level: String,
}

/// Token settings; every duration in seconds.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// The algorithm new signing keys use.
    pub signing_alg: SigningAlg,
    /// Default access-token lifetime (servers may override).
    pub access_token_ttl: i64,
    /// The longest access-token lifetime a server may be registered with (policy).
    pub max_access_token_ttl: i64,
    /// Lifetime of one refresh token.
    pub refresh_token_ttl: i64,
    /// Absolute lifetime of a refresh family (session), however often refreshed.
    pub session_ttl: i64,
    /// Window in which a replayed refresh token gets the same successor (0 = none).
    pub refresh_grace: i64,
    /// Authorization code lifetime.
    pub code_ttl: i64,
}

/// Signing-key rotation settings; seconds.
#[derive(Clone, Debug)]
pub struct KeySettings {
    /// How often a new signing key takes over.
    pub rotation_interval: i64,
    /// How long a new key is published in JWKS before it signs.
    pub publish_ahead: i64,
}

/// Gateway defaults.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Default clock-skew leeway for `exp`/`nbf`, seconds (0..=300).
    pub leeway: i64,
}

/// Client-secret policy; seconds.
#[derive(Clone, Debug)]
pub struct SecretSettings {
    /// A secret older than this is out of policy (`warden status` flags it; it keeps
    /// authenticating until rotated, so that a missed rotation is not an outage).
    pub max_age: i64,
    /// A secret this close to `max_age` is reported as nearing expiry.
    pub expiry_warning: i64,
}

/// Browser-login protection.
#[derive(Clone, Debug)]
pub struct LoginSettings {
    /// Failed attempts before a lockout.
    pub max_failures: u32,
    /// How long a lockout lasts, seconds.
    pub lockout: i64,
    /// Whether the sign-in page offers built-in (local) users; when false only identity
    /// providers sign users in.
    pub local: bool,
}

impl Config {
    /// Parses `text` (the contents of `warden.toml`), applies `WARDEN_*` overrides from
    /// `env`, and validates. Relative SQLite paths resolve against `data_dir`.
    pub fn load(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        data_dir: &Path,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            key: String::new(),
            origin: e
                .span()
                .map(|s| format!("{CONFIG_FILE} line {}", line_at(text, s.start))),
            message: format!("not valid TOML: {}", scrub(e.message())),
        })?;
        let from_env = raw::apply_env(&mut table, env)?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let key = if path == "." { String::new() } else { path };
                let inner = scrub(&e.inner().to_string());
                let field = unknown_field(&inner);
                // The path already ends with an unknown field's name; add it only if not.
                let full = match field {
                    Some(f) if key.is_empty() => f,
                    Some(f) if !key.ends_with(&f) => format!("{key}.{f}"),
                    _ => key,
                };
                let origin = origin_of(&full, &from_env, text);
                ConfigError {
                    key: full,
                    origin,
                    message: inner,
                }
            })?;
        raw.validate(data_dir).map_err(|mut e| {
            e.origin = origin_of(&e.key, &from_env, text);
            e
        })
    }

    /// A fresh config file for `init`.
    pub fn template(public_url: &str) -> String {
        raw::template(public_url)
    }
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn origin_of(key: &str, from_env: &BTreeSet<(String, String)>, text: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    if let Some((_, var)) = from_env.iter().find(|(k, _)| k == key) {
        return Some(format!("environment {var}"));
    }
    find_line(text, key).map(|n| format!("{CONFIG_FILE} line {n}"))
}

/// The 1-based line of byte offset `pos`.
fn line_at(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(1, |t| t.matches('\n').count() + 1)
}

/// The line where dotted `key` is set in `text`, by a forgiving scan of sections and keys.
fn find_line(text: &str, key: &str) -> Option<usize> {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.trim().to_owned();
            if current == key {
                return Some(i + 1);
            }
            continue;
        }
        if current == section {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim().trim_matches('"') == leaf {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// Replaces quoted values in a parser message, so that a secret given with the wrong type
/// is not echoed back.
fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut in_quote = false;
    for ch in msg.chars() {
        if ch == '"' {
            if in_quote {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(ch);
        }
    }
    out
}

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        origin: None,
        message: message.into(),
    }
}

/// Validates a public URL: absolute http(s), no query, fragment or credentials; http only
/// on loopback. Returns it without a trailing slash.
pub fn validate_public_url(text: &str) -> Result<String, String> {
    let url = Url::parse(text).map_err(|_| "must be an absolute URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query or fragment".into());
    }
    let host = url.host().ok_or("must have a host")?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => return Err("must use https unless the host is loopback".into()),
        _ => return Err("must be http(s)".into()),
    }
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(p) = url.port() {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    Ok(out)
}

/// The address to listen on when none is configured: the public URL's port, on loopback
/// for a loopback host and on all interfaces otherwise.
pub fn default_listen(public_url: &str) -> SocketAddr {
    let Ok(url) = Url::parse(public_url) else {
        return SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    };
    let port = url.port_or_known_default().unwrap_or(8080);
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(h) if is_loopback_host(&h) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests;
