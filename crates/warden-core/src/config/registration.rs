//! `[registration]` and `[exchange]`: how clients get an identity without an admin
//! (dynamic registration, client ID metadata documents) and how far delegation may go.

use serde::Deserialize;

use super::raw::{duration, RawDuration};
use super::{invalid, ConfigError};
use crate::net::{Cidr, HostPattern};

const DAY: i64 = 86_400;

/// Dynamic registration (RFC 7591) and client ID metadata documents.
#[derive(Clone, Debug)]
pub struct RegistrationSettings {
    /// Whether `POST /oauth/register` is served (and advertised).
    pub enabled: bool,
    /// SHA-256 digests of the initial access tokens that gate registration. Empty means
    /// registration is open.
    pub initial_access_tokens: Vec<[u8; 32]>,
    /// Registrations per minute one source may sustain (IPv6 sources: per /64).
    pub rate_per_minute: u32,
    /// Registrations one source may make at once before the rate applies; generous, since
    /// hosted MCP clients share egress addresses.
    pub burst: u32,
    /// Registrations per minute from all sources together.
    pub global_per_minute: u32,
    /// Dynamically registered clients kept at once.
    pub max_clients: u32,
    /// Redirect URIs one client may register.
    pub max_redirect_uris: u32,
    /// Seconds after which a registration never used at the token endpoint is deleted.
    pub reap_unused_after: i64,
    /// Whether https `client_id` URLs (client ID metadata documents) are accepted.
    pub metadata_documents: bool,
    /// If not empty, only these hosts may serve metadata documents.
    pub allow_hosts: Vec<HostPattern>,
    /// Hosts that may never serve metadata documents; wins over `allow_hosts`.
    pub deny_hosts: Vec<HostPattern>,
    /// Non-public networks that fetches may reach anyway (default: none).
    pub fetch_allow_addresses: Vec<Cidr>,
    /// Seconds a whole fetch (resolve, connect, TLS, response) may take.
    pub fetch_timeout: i64,
}

/// Token exchange (RFC 8693).
#[derive(Clone, Debug)]
pub struct ExchangeSettings {
    /// How many actors an exchanged token's `act` chain may hold.
    pub max_delegation_depth: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistration {
    enabled: Option<bool>,
    initial_access_tokens: Option<StringList>,
    rate_per_minute: Option<u32>,
    burst: Option<u32>,
    global_per_minute: Option<u32>,
    max_clients: Option<u32>,
    max_redirect_uris: Option<u32>,
    reap_unused_after: Option<RawDuration>,
    metadata_documents: Option<bool>,
    allow_hosts: Option<StringList>,
    deny_hosts: Option<StringList>,
    fetch_allow_addresses: Option<StringList>,
    fetch_timeout: Option<RawDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExchange {
    max_delegation_depth: Option<u32>,
}

/// A list written as a TOML array, or as one comma-separated string (so that an
/// environment variable can set it).
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    fn items(self) -> Vec<String> {
        let all = match self {
            StringList::One(s) => s.split(',').map(str::to_owned).collect(),
            StringList::Many(v) => v,
        };
        all.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn count(key: &str, v: Option<u32>, default: u32, max: u32) -> Result<u32, ConfigError> {
    let n = v.unwrap_or(default);
    if !(1..=max).contains(&n) {
        return Err(invalid(key, format!("must be between 1 and {max}")));
    }
    Ok(n)
}

fn parse_list<T: std::str::FromStr>(
    key: &str,
    raw: Option<StringList>,
) -> Result<Vec<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    raw.map(StringList::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<T>()
                .map_err(|e| invalid(key, format!("entry {}: {e}", i + 1)))
        })
        .collect()
}

/// A SHA-256 digest written as 64 hex digits. The message never echoes the value, which
/// may be a token pasted by mistake.
fn digest(key: &str, i: usize, s: &str) -> Result<[u8; 32], ConfigError> {
    if s.starts_with("wdn_") {
        return Err(invalid(
            key,
            format!(
                "entry {}: put the token's SHA-256 digest here, not the token (`warden client initial-token` prints both)",
                i + 1
            ),
        ));
    }
    let bad = || invalid(key, format!("entry {}: expected 64 hex digits", i + 1));
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (j, byte) in out.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(s.get(2 * j..2 * j + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl RawRegistration {
    pub(super) fn validate(self) -> Result<RegistrationSettings, ConfigError> {
        let key = "registration.initial_access_tokens";
        let initial_access_tokens = self
            .initial_access_tokens
            .map(StringList::items)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| digest(key, i, s))
            .collect::<Result<Vec<_>, _>>()?;
        let rate_per_minute = count(
            "registration.rate_per_minute",
            self.rate_per_minute,
            10,
            100_000,
        )?;
        let burst = count("registration.burst", self.burst, 30, 100_000)?;
        let global_per_minute = count(
            "registration.global_per_minute",
            self.global_per_minute,
            600,
            1_000_000,
        )?;
        if global_per_minute < rate_per_minute {
            return Err(invalid(
                "registration.global_per_minute",
                "must not be lower than registration.rate_per_minute",
            ));
        }
        Ok(RegistrationSettings {
            enabled: self.enabled.unwrap_or(true),
            initial_access_tokens,
            rate_per_minute,
            burst,
            global_per_minute,
            max_clients: count(
                "registration.max_clients",
                self.max_clients,
                10_000,
                10_000_000,
            )?,
            max_redirect_uris: count(
                "registration.max_redirect_uris",
                self.max_redirect_uris,
                10,
                100,
            )?,
            reap_unused_after: duration(
                "registration.reap_unused_after",
                self.reap_unused_after,
                7 * DAY,
                60..=365 * DAY,
            )?,
            metadata_documents: self.metadata_documents.unwrap_or(true),
            allow_hosts: parse_list("registration.allow_hosts", self.allow_hosts)?,
            deny_hosts: parse_list("registration.deny_hosts", self.deny_hosts)?,
            fetch_allow_addresses: parse_list(
                "registration.fetch_allow_addresses",
                self.fetch_allow_addresses,
            )?,
            fetch_timeout: duration("registration.fetch_timeout", self.fetch_timeout, 3, 1..=30)?,
        })
    }
}

impl RawExchange {
    pub(super) fn validate(self) -> Result<ExchangeSettings, ConfigError> {
        Ok(ExchangeSettings {
            max_delegation_depth: count(
                "exchange.max_delegation_depth",
                self.max_delegation_depth,
                3,
                10,
            )?,
        })
    }
}

/// The `[registration]` and `[exchange]` part of a fresh config file.
pub(super) const TEMPLATE: &str = r#"
[registration]
enabled = true              # dynamic client registration (RFC 7591) at /oauth/register
# initial_access_tokens = ["<sha256 hex>"]  # gate registration; `warden client initial-token`
rate_per_minute = 10        # sustained registrations per source address (IPv6: per /64)
burst = 30                  # registrations a source may make at once (shared egress IPs)
global_per_minute = 600     # all sources together
max_clients = 10000         # dynamically registered clients kept at once
max_redirect_uris = 10      # per client
reap_unused_after = "7d"    # delete registrations never used at the token endpoint
metadata_documents = true   # accept https client_id URLs (client ID metadata documents)
# allow_hosts = ["*.example.com"]       # only these hosts may serve metadata documents
# deny_hosts = ["untrusted.example"]    # never these
# fetch_allow_addresses = ["10.1.0.0/16"]  # private networks fetches may reach (default none)
fetch_timeout = "3s"        # a metadata document or JWKS fetch, start to finish

[exchange]
max_delegation_depth = 3    # actors in a token-exchange act chain (sub-agent of a sub-agent …)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_arrays_or_comma_strings() {
        let one = StringList::One(" a.example , *.b.example ,".into());
        assert_eq!(one.items(), ["a.example", "*.b.example"]);
        let many = StringList::Many(vec!["x".into(), " ".into()]);
        assert_eq!(many.items(), ["x"]);
    }

    #[test]
    fn digests_are_hex_and_tokens_are_refused_without_echo() {
        let hex = "ab".repeat(32);
        assert_eq!(digest("k", 0, &hex).unwrap(), [0xab; 32]);
        let e = digest("k", 0, "wdn_iat_supersecret").unwrap_err();
        assert!(!e.message.contains("supersecret"));
        assert!(digest("k", 0, &"zz".repeat(32)).is_err());
        assert!(digest("k", 0, "abcd").is_err());
    }
}
