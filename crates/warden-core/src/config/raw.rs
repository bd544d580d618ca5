//! The raw, as-written form of `warden.toml`, and its validation.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use super::dpop::{RawDpop, TEMPLATE as DPOP_TEMPLATE};
use super::registration::{RawExchange, RawRegistration, TEMPLATE as REGISTRATION_TEMPLATE};
use super::{
    default_listen, invalid, parse_duration, validate_public_url, AuditSettings, AuditSink, Config,
    ConfigError, DatabaseSettings, GatewaySettings, KeySettings, LogFormat, LogSettings,
    LoginSettings, SecretSettings, TokenSettings, CONFIG_VERSION, RESERVED_ENV,
};
use crate::keys::SigningAlg;
use crate::secret::SecretString;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    version: u32,
    public_url: String,
    listen: Option<String>,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    login: RawLogin,
    #[serde(default)]
    registration: RawRegistration,
    #[serde(default)]
    exchange: RawExchange,
    #[serde(default)]
    secrets: RawSecrets,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    dpop: RawDpop,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    sink: Option<String>,
    retention: Option<RawDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    connect_timeout: Option<RawDuration>,
    max_connections: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    signing_alg: Option<String>,
    access_token_ttl: Option<RawDuration>,
    max_access_token_ttl: Option<RawDuration>,
    refresh_token_ttl: Option<RawDuration>,
    session_ttl: Option<RawDuration>,
    refresh_grace: Option<RawDuration>,
    code_ttl: Option<RawDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    rotation_interval: Option<RawDuration>,
    publish_ahead: Option<RawDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    leeway: Option<RawDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    max_failures: Option<u32>,
    lockout: Option<RawDuration>,
    local: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    max_age: Option<RawDuration>,
    expiry_warning: Option<RawDuration>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(i64),
    Text(String),
}

pub(super) fn duration(
    key: &str,
    raw: Option<RawDuration>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let secs = match raw {
        None => default,
        Some(RawDuration::Seconds(s)) => s,
        Some(RawDuration::Text(t)) => parse_duration(&t).map_err(|m| invalid(key, m))?,
    };
    if !range.contains(&secs) {
        return Err(invalid(
            key,
            format!("must be between {}s and {}s", range.start(), range.end()),
        ));
    }
    Ok(secs)
}

const DAY: i64 = 86_400;

impl RawConfig {
    pub(super) fn validate(self, data_dir: &Path) -> Result<Config, ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "this warden reads config version {CONFIG_VERSION}, the file says {}",
                    self.version
                ),
            ));
        }
        let public_url =
            validate_public_url(&self.public_url).map_err(|m| invalid("public_url", m))?;
        let listen = match &self.listen {
            Some(l) => l.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "listen",
                    "expected HOST:PORT with an IP address, e.g. 127.0.0.1:8080",
                )
            })?,
            None => default_listen(&public_url),
        };
        let database_url = resolve_db_url(self.database.url.as_deref(), data_dir)?;
        let connect_timeout = duration(
            "database.connect_timeout",
            self.database.connect_timeout,
            10,
            1..=300,
        )?;
        if self
            .database
            .max_connections
            .is_some_and(|n| !(1..=1000).contains(&n))
        {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        let level = self.log.level.unwrap_or_else(|| "info".into());
        if level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        let t = self.tokens;
        let signing_alg = SigningAlg::parse(t.signing_alg.as_deref().unwrap_or("ES256"))
            .map_err(|e| invalid("tokens.signing_alg", e.to_string()))?;
        let tokens = TokenSettings {
            signing_alg,
            access_token_ttl: duration(
                "tokens.access_token_ttl",
                t.access_token_ttl,
                900,
                30..=DAY,
            )?,
            max_access_token_ttl: duration(
                "tokens.max_access_token_ttl",
                t.max_access_token_ttl,
                3_600,
                30..=DAY,
            )?,
            refresh_token_ttl: duration(
                "tokens.refresh_token_ttl",
                t.refresh_token_ttl,
                30 * DAY,
                60..=365 * DAY,
            )?,
            session_ttl: duration(
                "tokens.session_ttl",
                t.session_ttl,
                90 * DAY,
                60..=3 * 365 * DAY,
            )?,
            refresh_grace: duration("tokens.refresh_grace", t.refresh_grace, 0, 0..=120)?,
            code_ttl: duration("tokens.code_ttl", t.code_ttl, 60, 10..=600)?,
        };
        if tokens.access_token_ttl > tokens.max_access_token_ttl {
            return Err(invalid(
                "tokens.access_token_ttl",
                "must not exceed tokens.max_access_token_ttl",
            ));
        }
        if tokens.refresh_token_ttl > tokens.session_ttl {
            return Err(invalid(
                "tokens.refresh_token_ttl",
                "must not exceed tokens.session_ttl",
            ));
        }
        let keys = KeySettings {
            rotation_interval: duration(
                "keys.rotation_interval",
                self.keys.rotation_interval,
                30 * DAY,
                3_600..=365 * DAY,
            )?,
            publish_ahead: duration(
                "keys.publish_ahead",
                self.keys.publish_ahead,
                DAY,
                0..=30 * DAY,
            )?,
        };
        if keys.publish_ahead >= keys.rotation_interval {
            return Err(invalid(
                "keys.publish_ahead",
                "must be shorter than keys.rotation_interval",
            ));
        }
        let gateway = GatewaySettings {
            leeway: duration("gateway.leeway", self.gateway.leeway, 30, 0..=300)?,
        };
        let max_failures = self.login.max_failures.unwrap_or(5);
        if !(1..=100).contains(&max_failures) {
            return Err(invalid("login.max_failures", "must be between 1 and 100"));
        }
        let login = LoginSettings {
            max_failures,
            lockout: duration("login.lockout", self.login.lockout, 900, 1..=DAY)?,
            local: self.login.local.unwrap_or(true),
        };
        let secrets = SecretSettings {
            max_age: duration(
                "secrets.max_age",
                self.secrets.max_age,
                90 * DAY,
                DAY..=5 * 365 * DAY,
            )?,
            expiry_warning: duration(
                "secrets.expiry_warning",
                self.secrets.expiry_warning,
                14 * DAY,
                0..=365 * DAY,
            )?,
        };
        if secrets.expiry_warning >= secrets.max_age {
            return Err(invalid(
                "secrets.expiry_warning",
                "must be shorter than secrets.max_age",
            ));
        }
        Ok(Config {
            issuer: public_url.clone(),
            public_url,
            listen,
            database: DatabaseSettings {
                url: database_url,
                connect_timeout,
                max_connections: self.database.max_connections,
            },
            log: LogSettings {
                format: self.log.format.unwrap_or(LogFormat::Pretty),
                level,
            },
            tokens,
            keys,
            gateway,
            login,
            registration: self.registration.validate()?,
            exchange: self.exchange.validate()?,
            dpop: self.dpop.validate()?,
            secrets,
            audit: AuditSettings {
                sink: match self.audit.sink.as_deref().unwrap_or("none") {
                    "none" => AuditSink::None,
                    "stdout" => AuditSink::Stdout,
                    other => match other.strip_prefix("file:") {
                        Some(path) if !path.is_empty() => {
                            AuditSink::File(std::path::PathBuf::from(path))
                        }
                        _ => {
                            return Err(invalid(
                                "audit.sink",
                                "must be \"none\", \"stdout\" or \"file:PATH\"",
                            ))
                        }
                    },
                },
                retention: duration(
                    "audit.retention",
                    self.audit.retention.clone(),
                    365 * DAY,
                    DAY..=3650 * DAY,
                )?,
            },
        })
    }
}

fn resolve_db_url(url: Option<&str>, data_dir: &Path) -> Result<SecretString, ConfigError> {
    let url = url.unwrap_or("sqlite://warden.db");
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(invalid("database.url", "sqlite:// needs a file path"));
        }
        let p = Path::new(path);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            data_dir.join(p)
        };
        return Ok(SecretString::new(format!("sqlite://{}", full.display())));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(SecretString::new(url));
    }
    Err(invalid(
        "database.url",
        "must start with sqlite:// or postgres://",
    ))
}

/// Applies `WARDEN_*` overrides to `table`. `WARDEN_PUBLIC_URL` sets `public_url`;
/// a double underscore descends into a section (`WARDEN_TOKENS__ACCESS_TOKEN_TTL`);
/// `WARDEN_DATABASE_URL` is accepted as the common spelling of `WARDEN_DATABASE__URL`.
/// Returns which keys came from which variable.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeSet<(String, String)>, ConfigError> {
    let mut applied = BTreeSet::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("WARDEN_") && !RESERVED_ENV.contains(&k.as_str()))
        .collect();
    vars.sort();
    for (var, value) in vars {
        let name = &var["WARDEN_".len()..];
        let path: Vec<String> = if name == "DATABASE_URL" {
            vec!["database".into(), "url".into()]
        } else {
            name.split("__").map(str::to_ascii_lowercase).collect()
        };
        if path.iter().any(String::is_empty) {
            return Err(ConfigError {
                key: String::new(),
                origin: Some(format!("environment {var}")),
                message: "not a valid override name".into(),
            });
        }
        let mut cursor = &mut *table;
        for section in &path[..path.len() - 1] {
            let entry = cursor
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError {
                        key: section.clone(),
                        origin: Some(format!("environment {var}")),
                        message: "is not a section".into(),
                    })
                }
            };
        }
        let leaf = path[path.len() - 1].clone();
        cursor.insert(leaf, env_value(&value));
        applied.insert((path.join("."), var));
    }
    Ok(applied)
}

/// An environment value as TOML: a number or boolean if it reads as one, else a string.
fn env_value(value: &str) -> toml::Value {
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_owned()),
    }
}

pub(super) fn template(public_url: &str) -> String {
    let q = toml::Value::String(public_url.to_owned());
    format!(
        r#"# Warden configuration. Every key can be overridden from the environment:
# WARDEN_PUBLIC_URL, WARDEN_LISTEN, WARDEN_DATABASE_URL, WARDEN_TOKENS__ACCESS_TOKEN_TTL, ...
version = {CONFIG_VERSION}

# The externally visible base URL; it is also the OAuth issuer identifier.
public_url = {q}
# listen = "127.0.0.1:8080"   # default: derived from public_url

[database]
# Embedded default: a SQLite file in the data dir. For several replicas use PostgreSQL:
# url = "postgres://warden@db.internal/warden"
url = "sqlite://warden.db"
connect_timeout = "10s"     # how long to wait for the database at startup and per query
# max_connections = 8       # pool size (default 8 for SQLite, 16 for PostgreSQL)

[log]
format = "pretty"   # or "json"
level = "info"

[tokens]
signing_alg = "ES256"       # or "EdDSA", "RS256"
access_token_ttl = "15m"    # servers may override
max_access_token_ttl = "1h" # policy: the longest lifetime a server may be registered with
refresh_token_ttl = "30d"
session_ttl = "90d"         # absolute lifetime of a refresh-token family
refresh_grace = "0s"        # replay window answered with the same successor
code_ttl = "60s"

[keys]
rotation_interval = "30d"
publish_ahead = "1d"        # a new key is in JWKS this long before it signs

[gateway]
leeway = "30s"              # clock-skew tolerance for exp/nbf (0s..300s)

[login]
max_failures = 5
lockout = "15m"
local = true                # sign-in with built-in users; false leaves only identity providers

[secrets]
max_age = "90d"             # client secrets older than this are flagged by `warden status`
expiry_warning = "14d"      # ... and reported as nearing expiry this long before

[audit]
# Every event is stored (hash-chained) in the database; also stream it as JSON lines to:
sink = "none"               # or "stdout", or "file:/var/log/warden/audit.jsonl"
retention = "365d"          # events older than this are pruned (the chain stays verifiable)
{REGISTRATION_TEMPLATE}{DPOP_TEMPLATE}"#
    )
}
