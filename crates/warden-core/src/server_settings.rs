//! A registered server's settings, as one type.
//!
//! The store keeps a registration's settings as a JSON object. [`ServerSettings::parse`]
//! reads that object once, where a record comes in (the gateway's registry, the admin
//! API's create and update), and everything downstream reads typed fields. The admin API
//! accepts exactly the fields of this type ([`ServerSettings::settable`]), the CLI builds
//! this type, and the OpenAPI document is held to the same list, so a setting the gateway
//! reads can no longer be refused by the admin API, or the reverse.
//!
//! Credentials for the upstream (`static_headers` values, a stdio upstream's `env`, the
//! introspection client secret, the upstream client secret of [`upstream_auth`]) are [`Credential`]s: sealed with the master key before
//! they are stored, and shown back only as `"set"`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::keys::Sealer;
use crate::scope::valid_token;
use crate::secret::SecretString;

pub mod upstream_auth;

pub use upstream_auth::{UpstreamAuth, UpstreamAuthMode, UpstreamClient};

/// Longest `upstream_timeout_secs`.
pub const MAX_UPSTREAM_TIMEOUT_SECS: u64 = 3600;
/// Most processes `max_processes` may allow.
pub const MAX_PROCESSES: u64 = 10_000;
/// Longest `introspection_cache_secs`.
pub const MAX_INTROSPECTION_CACHE_SECS: i64 = 3600;
/// How a credential is shown back: only that it is set.
pub const SET: &str = "set";

/// Fields of [`ServerSettings`] that a registration cannot set directly: the marker of
/// the built-in admin resource, and the sealed introspection secret (given through its
/// own request field, so that it is sealed on arrival).
const INTERNAL: &[&str] = &["builtin", "introspection_client_secret"];

/// Settings that only an external issuer uses: a server returned to Warden's own tokens
/// drops them.
const EXTERNAL: &[&str] = &[
    "accept_jwt_typ",
    "extra_audiences",
    "introspection_endpoint",
    "introspection_client_id",
    "introspection_client_secret",
    "introspection_requires_aud",
    "introspection_cache_secs",
    "issuer_ca",
    "jwks_uri",
];

/// The format of a server's access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// RFC 9068 JWTs (the default).
    Jwt,
    /// Opaque tokens: looked up (Warden's own) or introspected (an external issuer's).
    Opaque,
}

/// The transport of an `http(s)` upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// Streamable HTTP.
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    /// The legacy HTTP+SSE transport (MCP 2024-11-05).
    #[serde(rename = "sse")]
    Sse,
}

/// What a server does with a tool, resource or prompt that no tool group names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// Refuse it and hide it from lists (the default): a new upstream tool is not
    /// silently reachable.
    Deny,
    /// Allow it to any valid token for the server.
    Allow,
}

/// A credential the gateway presents to an upstream or an issuer. It arrives in clear,
/// is sealed with the master key (bound to the server and the setting) before it is
/// stored, and is never printed: `Debug` and [`ServerSettings::redacted`] show only that
/// it is set.
#[derive(Clone)]
pub enum Credential {
    /// In clear: on the way in, or as a record written before credentials were sealed.
    Clear(SecretString),
    /// Sealed: base64 of the sealed bytes, stored as `{"sealed": "…"}`.
    Sealed(String),
}

/// A registration's settings. Every field is optional; an absent one takes the default
/// the gateway documents.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    // --- the upstream ---
    /// The transport of an `http(s)` upstream; by default Streamable HTTP, or legacy SSE
    /// when the upstream's path ends in `/sse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// PEM bundle of the CA(s) of an `https` upstream, replacing the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<String>,
    /// Time allowed to the upstream's response headers, 1..=3600 seconds (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_timeout_secs: Option<u64>,
    /// Headers sent to the upstream with every request (an API key, say); sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_headers: Option<BTreeMap<String, Credential>>,
    /// Environment of a stdio upstream's processes; sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, Credential>>,
    /// Most processes of a stdio upstream at once, 1..=10000 (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u64>,

    // --- the upstream's own credentials ---
    /// How the gateway authenticates to the upstream (default `assertion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_auth: Option<UpstreamAuthMode>,
    /// Warden's client id at the upstream's authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_client_id: Option<String>,
    /// That client's secret; sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_client_secret: Option<Credential>,
    /// The scopes asked of the upstream's authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_scopes: Option<Vec<String>>,
    /// The upstream's authorization server, instead of discovering it from the upstream's
    /// protected-resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_issuer: Option<String>,

    // --- the scope policy ---
    /// Tools no group names: denied and hidden unless `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmapped_tools: Option<Unmapped>,
    /// Resources no group names: denied and hidden unless `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmapped_resources: Option<Unmapped>,
    /// Prompts no group names: denied and hidden unless `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmapped_prompts: Option<Unmapped>,
    /// Accept and issue only DPoP-bound tokens for this server (RFC 9449): the token
    /// endpoint refuses a request without a proof, the gateway a token without `cnf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_dpop: Option<bool>,
    /// The `scope` of the gateway's 401 challenge (default: every scope the server
    /// defines), space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_scope: Option<String>,

    // --- browsers and discovery ---
    /// Browser origins allowed besides the gateway's own and loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// `resource_name` of the protected-resource metadata (default: the server's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,

    // --- an external issuer ---
    /// Also accept JWTs whose `typ` is `JWT` (or absent), besides `at+jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_jwt_typ: Option<bool>,
    /// Audience names (not URLs) a token may carry besides the canonical URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_audiences: Option<Vec<String>>,
    /// The issuer's JWKS, replacing discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// PEM bundle of the CA(s) of the issuer's `https` endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ca: Option<String>,
    /// The issuer's RFC 7662 introspection endpoint (opaque tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Warden's client id at that endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_client_id: Option<String>,
    /// That client's secret; sealed, and set through its own request field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_client_secret: Option<Credential>,
    /// Refuse an introspection answer without `aud` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_requires_aud: Option<bool>,
    /// Longest a positive introspection result is cached, 1..=3600 seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_cache_secs: Option<i64>,

    // --- internal ---
    /// Marks the built-in admin resource; never set through a registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
}

// === impl TokenFormat ===

impl TokenFormat {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jwt" => Ok(TokenFormat::Jwt),
            "opaque" => Ok(TokenFormat::Opaque),
            other => Err(format!("token_format {other:?} is not jwt or opaque")),
        }
    }
}

// === impl Transport ===

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "streamable-http" => Ok(Transport::StreamableHttp),
            "sse" => Ok(Transport::Sse),
            _ => Err("the transport must be streamable-http or sse".into()),
        }
    }
}

// === impl Unmapped ===

impl FromStr for Unmapped {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Unmapped::Allow),
            "deny" => Ok(Unmapped::Deny),
            _ => Err("must be allow or deny".into()),
        }
    }
}

// === impl Credential ===

impl Credential {
    /// A credential given in clear.
    pub fn clear(value: impl Into<String>) -> Self {
        Credential::Clear(SecretString::new(value))
    }

    /// Whether it is stored sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Credential::Sealed(_))
    }

    /// Seals a clear value with `sealer`, bound to `context` (see [`seal_context`]); a
    /// sealed one is left as it is.
    pub fn seal(&mut self, sealer: &Sealer, context: &str) -> Result<(), String> {
        if let Credential::Clear(plain) = self {
            let sealed = sealer
                .seal(context, plain.expose().as_bytes())
                .map_err(|_| "cannot seal a credential".to_owned())?;
            *self = Credential::Sealed(STANDARD.encode(sealed));
        }
        Ok(())
    }

    /// The value: opened with `sealer` and `context`, or as stored in clear. `what` names
    /// the setting in errors, which never carry the value.
    pub fn open(&self, sealer: &Sealer, context: &str, what: &str) -> Result<SecretString, String> {
        let sealed = match self {
            Credential::Clear(plain) => return Ok(plain.clone()),
            Credential::Sealed(sealed) => sealed,
        };
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| format!("settings.{what} is not valid base64"))?;
        let plain = sealer
            .open(context, &bytes)
            .map_err(|_| format!("settings.{what} does not open with this master key"))?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| format!("settings.{what} is not UTF-8"))?;
        Ok(SecretString::new(text))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Clear(_) => f.write_str("Credential(clear)"),
            Credential::Sealed(_) => f.write_str("Credential(sealed)"),
        }
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Credential::Clear(plain) => s.serialize_str(plain.expose()),
            Credential::Sealed(sealed) => {
                use serde::ser::SerializeMap as _;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("sealed", sealed)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map, not a struct: a struct would also take a one-element list.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Clear(String),
            Sealed(BTreeMap<String, String>),
        }
        // The untagged enum's error names no value.
        match Stored::deserialize(d)? {
            Stored::Clear(plain) => Ok(Credential::clear(plain)),
            Stored::Sealed(mut m) => match (m.remove("sealed"), m.is_empty()) {
                (Some(sealed), true) => Ok(Credential::Sealed(sealed)),
                _ => Err(de::Error::custom(
                    "a credential is a string or {\"sealed\": …}",
                )),
            },
        }
    }
}

/// The sealing context of a server's credential: bound to the server and the setting
/// (`what` is `introspection_client_secret`, `static_headers:NAME` or `env:KEY`), so a
/// sealed value copied to another server or setting does not open.
pub fn seal_context(server: &str, what: &str) -> String {
    format!("warden:server:{server}:{what}")
}

// === impl ServerSettings ===

impl ServerSettings {
    /// Reads and checks a record's or a request's settings. An error names the setting,
    /// never a credential's value.
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Self::parse_map(map),
            _ => Err("settings must be an object".into()),
        }
    }

    /// [`Self::parse`] of an object.
    pub fn parse_map(map: &Map<String, Value>) -> Result<Self, String> {
        let settings = Self::parse_fields(map)?;
        settings.check_upstream_auth()?;
        Ok(settings)
    }

    /// Reads and checks the settings of an update, each on its own: the rules that tie
    /// settings together (`upstream_auth` and its fields) apply to the merged result,
    /// which [`Self::parse`] checks.
    pub fn parse_patch(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Self::parse_fields(map),
            _ => Err("settings must be an object".into()),
        }
    }

    fn parse_fields(map: &Map<String, Value>) -> Result<Self, String> {
        let fields = Self::fields();
        if let Some(k) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(format!("unknown setting {k:?}"));
        }
        let settings: Self =
            serde_path_to_error::deserialize(Value::Object(map.clone())).map_err(|e| {
                let path = e.path().to_string();
                let top = path.split(['.', '[']).next().unwrap_or_default();
                if matches!(
                    top,
                    "static_headers" | "env" | "introspection_client_secret"
                ) {
                    // The serde message may quote the value: a credential.
                    format!("settings.{top} must be an object of names to strings")
                } else if top == "upstream_client_secret" {
                    format!("settings.{top} must be a string")
                } else {
                    format!("settings.{path}: {}", e.into_inner())
                }
            })?;
        settings.check()?;
        Ok(settings)
    }

    /// The checks a JSON type cannot express.
    fn check(&self) -> Result<(), String> {
        if let Some(s) = self.upstream_timeout_secs {
            if !(1..=MAX_UPSTREAM_TIMEOUT_SECS).contains(&s) {
                return Err("settings.upstream_timeout_secs must be 1..=3600".into());
            }
        }
        if let Some(n) = self.max_processes {
            if !(1..=MAX_PROCESSES).contains(&n) {
                return Err("settings.max_processes must be 1..=10000".into());
            }
        }
        if let Some(s) = self.introspection_cache_secs {
            if !(1..=MAX_INTROSPECTION_CACHE_SECS).contains(&s) {
                return Err("settings.introspection_cache_secs must be 1..=3600".into());
            }
        }
        if let Some(scope) = &self.challenge_scope {
            if let Some(bad) = scope.split_whitespace().find(|t| !valid_token(t)) {
                return Err(format!(
                    "settings.challenge_scope: {bad:?} is not a valid OAuth scope"
                ));
            }
        }
        for name in self.static_headers.iter().flat_map(BTreeMap::keys) {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(format!(
                    "settings.static_headers: invalid header name {name:?}"
                ));
            }
        }
        for key in self.env.iter().flat_map(BTreeMap::keys) {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(format!("settings.env: invalid variable name {key:?}"));
            }
        }
        if self
            .allowed_origins
            .iter()
            .flatten()
            .any(|o| o.trim().is_empty())
        {
            return Err("settings.allowed_origins must not hold an empty origin".into());
        }
        self.extra_audiences()?;
        self.check_upstream_fields()
    }

    /// Every field name, in declaration order: derived from the type itself, so the
    /// admin API's allow-list and the OpenAPI document cannot drift from it.
    pub fn fields() -> &'static [&'static str] {
        let mut fields: &'static [&'static str] = &[];
        // The probe deserializer records the names and then fails on purpose.
        let _ = Self::deserialize(FieldNames(&mut fields));
        fields
    }

    /// The fields a registration may set in `settings`.
    pub fn settable() -> impl Iterator<Item = &'static str> {
        Self::fields()
            .iter()
            .copied()
            .filter(|f| !INTERNAL.contains(f))
    }

    /// Whether `key` is a field that a registration may not set in `settings`.
    pub fn is_internal(key: &str) -> bool {
        INTERNAL.contains(&key)
    }

    /// The settings as the store keeps them. Credentials serialize as they are: seal
    /// them first ([`Self::seal_credentials`]).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The settings as an operator sees them: every credential shown as `"set"`.
    pub fn redacted(&self) -> Map<String, Value> {
        let mut shown = self.clone();
        let hide = |m: &mut BTreeMap<String, Credential>| {
            m.values_mut().for_each(|c| *c = Credential::clear(SET));
        };
        shown.static_headers.as_mut().map(hide);
        shown.env.as_mut().map(hide);
        if shown.introspection_client_secret.is_some() {
            shown.introspection_client_secret = Some(Credential::clear(SET));
        }
        if shown.upstream_client_secret.is_some() {
            shown.upstream_client_secret = Some(Credential::clear(SET));
        }
        match shown.to_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Seals every clear credential with `sealer`, bound to `server`.
    pub fn seal_credentials(&mut self, sealer: &Sealer, server: &str) -> Result<(), String> {
        for (name, value) in self.static_headers.iter_mut().flatten() {
            value.seal(sealer, &header_context(server, name))?;
        }
        for (key, value) in self.env.iter_mut().flatten() {
            value.seal(sealer, &env_context(server, key))?;
        }
        if let Some(secret) = &mut self.introspection_client_secret {
            secret.seal(sealer, &seal_context(server, "introspection_client_secret"))?;
        }
        self.seal_upstream_secret(sealer, server)
    }

    /// The static headers, opened: `(name, value)`.
    pub fn open_static_headers(
        &self,
        sealer: &Sealer,
        server: &str,
    ) -> Result<Vec<(&str, SecretString)>, String> {
        self.static_headers
            .iter()
            .flatten()
            .map(|(name, value)| {
                let what = format!("static_headers.{name}");
                Ok((
                    name.as_str(),
                    value.open(sealer, &header_context(server, name), &what)?,
                ))
            })
            .collect()
    }

    /// A stdio upstream's environment, opened: `(key, value)`.
    pub fn open_env(
        &self,
        sealer: &Sealer,
        server: &str,
    ) -> Result<Vec<(&str, SecretString)>, String> {
        self.env
            .iter()
            .flatten()
            .map(|(key, value)| {
                let what = format!("env.{key}");
                Ok((
                    key.as_str(),
                    value.open(sealer, &env_context(server, key), &what)?,
                ))
            })
            .collect()
    }

    /// The introspection client secret, opened. It must be sealed: one in clear was never
    /// written by Warden.
    pub fn open_introspection_secret(
        &self,
        sealer: &Sealer,
        server: &str,
    ) -> Result<SecretString, String> {
        const WHAT: &str = "introspection_client_secret";
        match &self.introspection_client_secret {
            None => Err(format!(
                "settings.{WHAT} is required for opaque external tokens"
            )),
            Some(Credential::Clear(_)) => Err(format!(
                "settings.{WHAT} must be sealed, not clear text \
                 (use `warden server add --introspection-client-secret-stdin`)"
            )),
            Some(sealed) => sealed.open(sealer, &seal_context(server, WHAT), WHAT),
        }
    }

    /// The extra audiences, checked and without repeats: names, never URLs (a URL would
    /// name a resource, and accepting tokens also meant for another resource is what
    /// audience binding forbids).
    pub fn extra_audiences(&self) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for name in self.extra_audiences.iter().flatten() {
            if name.trim().is_empty() {
                return Err("settings.extra_audiences must be a list of audience names".into());
            }
            if name.contains(':') || name.contains('/') {
                return Err(format!(
                    "settings.extra_audiences: {name:?} looks like a resource URI; only names \
                     such as Keycloak's `account` may be accepted besides the canonical URI"
                ));
            }
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// Whether any `introspection_*` setting is present.
    pub fn has_introspection(&self) -> bool {
        self.introspection_endpoint.is_some()
            || self.introspection_client_id.is_some()
            || self.introspection_client_secret.is_some()
            || self.introspection_requires_aud.is_some()
            || self.introspection_cache_secs.is_some()
    }

    /// Drops the settings only an external issuer uses (the server went back to Warden's
    /// own tokens).
    pub fn clear_external(map: &mut Map<String, Value>) {
        for k in EXTERNAL {
            map.remove(*k);
        }
    }
}

fn header_context(server: &str, name: &str) -> String {
    // Header names are case-insensitive: `X-Key` and `x-key` are one setting.
    seal_context(
        server,
        &format!("static_headers:{}", name.to_ascii_lowercase()),
    )
}

fn env_context(server: &str, key: &str) -> String {
    seal_context(server, &format!("env:{key}"))
}

/// RFC 9110 `tchar`: what a header name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A deserializer that only records the field names of the struct asked of it.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sealer() -> Sealer {
        crate::keys::MasterKey::generate().unwrap().sealer()
    }

    #[test]
    fn every_field_is_known_and_the_internal_ones_are_not_settable() {
        let fields = ServerSettings::fields();
        assert!(fields.contains(&"challenge_scope"));
        assert!(fields.contains(&"static_headers"));
        assert!(fields.contains(&"builtin"));
        let settable: Vec<&str> = ServerSettings::settable().collect();
        assert_eq!(settable.len(), fields.len() - INTERNAL.len());
        assert!(!settable.contains(&"builtin"));
        for k in EXTERNAL {
            assert!(fields.contains(k), "{k}");
        }
    }

    #[test]
    fn parses_typed_values_and_refuses_the_rest() {
        let s = ServerSettings::parse(&json!({
            "transport": "sse",
            "unmapped_tools": "allow",
            "challenge_scope": "a:read b:write",
            "upstream_timeout_secs": 30,
            "allowed_origins": ["https://app.example"],
            "extra_audiences": ["account", "account"],
            "resource_name": null,
        }))
        .unwrap();
        assert_eq!(s.transport, Some(Transport::Sse));
        assert_eq!(s.unmapped_tools, Some(Unmapped::Allow));
        assert_eq!(s.extra_audiences().unwrap(), ["account"]);
        assert_eq!(s.resource_name, None);
        let bad = |v: Value| ServerSettings::parse(&v).unwrap_err();
        assert!(bad(json!({"nope": 1})).contains("unknown setting \"nope\""));
        assert!(bad(json!({"unmapped_tools": "yes"})).contains("settings.unmapped_tools"));
        assert!(bad(json!({"upstream_timeout_secs": 0})).contains("1..=3600"));
        assert!(bad(json!({"max_processes": 10_001})).contains("1..=10000"));
        assert!(bad(json!({"challenge_scope": "a \"b"})).contains("challenge_scope"));
        assert!(bad(json!({"extra_audiences": ["https://x"]})).contains("resource URI"));
        assert!(bad(json!({"static_headers": {"bad name": "v"}})).contains("header name"));
        assert!(bad(json!({"env": {"A=B": "v"}})).contains("variable name"));
        let e = bad(json!({"env": {"K": ["hunter2-value"]}}));
        assert!(e.contains("settings.env") && !e.contains("hunter2"), "{e}");
        assert!(bad(json!("x")).contains("object"));
    }

    #[test]
    fn credentials_are_sealed_bound_and_shown_only_as_set() {
        let sealer = sealer();
        let mut s = ServerSettings::parse(&json!({
            "static_headers": {"X-Api-Key": "hdr-s3cret"},
            "env": {"TOKEN": "env-s3cret"},
        }))
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
        s.seal_credentials(&sealer, "srv").unwrap();
        let stored = s.to_value().to_string();
        assert!(!stored.contains("s3cret"), "{stored}");
        let again = ServerSettings::parse(&s.to_value()).unwrap();
        let headers = again.open_static_headers(&sealer, "srv").unwrap();
        assert_eq!(headers[0].0, "X-Api-Key");
        assert_eq!(headers[0].1.expose(), "hdr-s3cret");
        assert_eq!(
            again.open_env(&sealer, "srv").unwrap()[0].1.expose(),
            "env-s3cret"
        );
        // Bound to the server: another one's sealed value does not open.
        assert!(again.open_env(&sealer, "other").is_err());
        let shown = Value::Object(again.redacted());
        assert_eq!(shown["static_headers"]["X-Api-Key"], SET);
        assert_eq!(shown["env"]["TOKEN"], SET);
    }

    #[test]
    fn a_record_with_clear_credentials_still_loads() {
        let s = ServerSettings::parse(&json!({"env": {"K": "v"}, "static_headers": {"a": "b"}}))
            .unwrap();
        let env = s.open_env(&sealer(), "srv").unwrap();
        assert_eq!((env[0].0, env[0].1.expose()), ("K", "v"));
        // The introspection secret was always sealed: clear text is refused, unprinted.
        let s = ServerSettings::parse(&json!({"introspection_client_secret": "s3cret"})).unwrap();
        let e = s.open_introspection_secret(&sealer(), "srv").unwrap_err();
        assert!(e.contains("sealed") && !e.contains("s3cret"));
    }
}
