//! RFC 7591 client metadata, validated and normalized. Dynamic registration and client ID
//! metadata documents read the same fields with the same rules; they differ only in which
//! authentication methods and grants they admit ([`Source`]). This is a rule with no I/O:
//! fetching a metadata document and storing a registration are the server's.
//!
//! Unknown members are ignored and not kept (RFC 7591 §2); what is kept is the normalized
//! form, which is also what the idempotency fingerprint is computed over.

use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use crate::jwt::VerifyingKey;
use crate::scope::ScopeSet;
use crate::uri::{is_loopback_host, validate_redirect_uri, UriError};

/// Where the metadata came from; decides what it may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `POST /oauth/register`.
    Registration,
    /// A client ID metadata document: public clients, or `private_key_jwt`; no shared
    /// secrets, no machine grants.
    Document,
}

/// A metadata refusal, as RFC 7591 §3.2.2 names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`.
    #[error("{0}")]
    RedirectUri(String),
    /// `invalid_client_metadata`.
    #[error("{0}")]
    Metadata(String),
}

impl MetadataError {
    /// The RFC 7591 error code.
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::RedirectUri(_) => "invalid_redirect_uri",
            MetadataError::Metadata(_) => "invalid_client_metadata",
        }
    }
}

fn bad(d: impl Into<String>) -> MetadataError {
    MetadataError::Metadata(d.into())
}

/// Authentication methods Warden implements at the token endpoint.
pub const AUTH_METHODS: &[&str] = &[
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// Largest inline `jwks`, serialized.
const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Most keys in an inline `jwks`.
const MAX_KEYS: usize = 10;
/// Longest free-text member (names, versions, ids).
const MAX_TEXT: usize = 200;

/// Client metadata after validation, in one canonical shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Normalized {
    /// Exact redirect URIs, sorted and without duplicates.
    pub redirect_uris: Vec<String>,
    /// One of [`AUTH_METHODS`].
    pub token_endpoint_auth_method: String,
    /// Sorted grant types.
    pub grant_types: Vec<String>,
    /// Always `["code"]` when the code grant is used, else empty.
    pub response_types: Vec<String>,
    /// `web` or `native`.
    pub application_type: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Terms of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Contacts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Scopes the client says it will ask for (informational: never granted by itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Identifies the software, across installations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// The software's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Inline public keys, for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where the public keys are published, for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 9449 §5.2: the client always uses DPoP; a token request without a proof gets
    /// nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

impl Normalized {
    /// Whether the client authenticates (a secret or a key), i.e. is confidential.
    pub fn confidential(&self) -> bool {
        self.token_endpoint_auth_method != "none"
    }

    /// Whether the client holds a shared secret.
    pub fn uses_secret(&self) -> bool {
        self.token_endpoint_auth_method
            .starts_with("client_secret_")
    }

    /// As a JSON object, for `ClientRecord::metadata` and registration responses.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, MetadataError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(bad(format!(
            "{key} must be a string of at most {MAX_TEXT} printable characters"
        ))),
    }
}

fn strings(
    m: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<Vec<String>>, MetadataError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= max => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(bad(format!("{key} has more than {max} entries"))),
        Some(_) => Err(bad(format!("{key} must be an array of strings"))),
    }
}

/// An https URL member (`client_uri`, `logo_uri`, …, `jwks_uri`).
fn https_url(m: &Map<String, Value>, key: &str) -> Result<Option<String>, MetadataError> {
    let Some(v) = m.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .filter(|s| s.len() <= 2048)
        .ok_or_else(|| bad(format!("{key} must be a URL")))?;
    let url = Url::parse(s).map_err(|_| bad(format!("{key} must be an absolute URL")))?;
    let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
    let ok = (url.scheme() == "https" || (url.scheme() == "http" && loopback))
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none();
    if !ok {
        return Err(bad(format!(
            "{key} must be an https URL without credentials or fragment"
        )));
    }
    Ok(Some(s.to_owned()))
}

/// Whether a redirect URI is a native app's: loopback http or a private-use scheme.
fn is_native_redirect(uri: &str) -> bool {
    match Url::parse(uri) {
        Ok(u) if u.scheme() == "http" => u.host().is_some_and(|h| is_loopback_host(&h)),
        Ok(u) => u.scheme() != "https",
        Err(_) => false,
    }
}

/// Validates an inline JWKS: public keys only, each one parseable.
pub fn validate_jwks(jwks: &Value) -> Result<(), MetadataError> {
    let size = serde_json::to_vec(jwks).map_or(usize::MAX, |v| v.len());
    if size > MAX_JWKS_BYTES {
        return Err(bad("jwks is too large"));
    }
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEYS)
        .ok_or_else(|| bad(format!("jwks must be an object with 1 to {MAX_KEYS} keys")))?;
    for key in keys {
        // A private member means the client published its private key: refuse rather
        // than store it.
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| key.get(*m).is_some())
        {
            return Err(bad("jwks must contain public keys only"));
        }
        VerifyingKey::from_jwk(key).map_err(|_| {
            bad("jwks holds a key that is not a usable EC P-256, Ed25519 or RSA public key")
        })?;
    }
    Ok(())
}

/// Validates and normalizes client metadata from `source`, with at most
/// `max_redirect_uris` redirect URIs.
pub fn normalize(
    m: &Map<String, Value>,
    source: Source,
    max_redirect_uris: usize,
) -> Result<Normalized, MetadataError> {
    let auth = text(m, "token_endpoint_auth_method")?.unwrap_or_else(|| match source {
        // RFC 7591 §2's default; a document cannot hold a secret, so "none" there.
        Source::Registration => "client_secret_basic".into(),
        Source::Document => "none".into(),
    });
    if !AUTH_METHODS.contains(&auth.as_str()) {
        return Err(bad(
            "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt",
        ));
    }
    if source == Source::Document && auth.starts_with("client_secret_") {
        return Err(bad(
            "a client metadata document cannot use shared-secret authentication",
        ));
    }
    if source == Source::Document
        && (m.contains_key("client_secret") || m.contains_key("client_secret_expires_at"))
    {
        return Err(bad(
            "a client metadata document must not contain a client secret",
        ));
    }

    let mut grants =
        strings(m, "grant_types", 8)?.unwrap_or_else(|| vec!["authorization_code".into()]);
    grants.sort();
    grants.dedup();
    for g in &grants {
        match (g.as_str(), source) {
            ("authorization_code" | "refresh_token", _) => {}
            ("client_credentials", Source::Registration) => {}
            ("implicit" | "password", _) => {
                return Err(bad(format!("grant type {g} is not supported (OAuth 2.1 removed it)")))
            }
            (warden_proto::oauth::TOKEN_EXCHANGE_GRANT, Source::Registration) => {
                return Err(bad(
                    "the token-exchange grant is assigned by an administrator, not registered",
                ))
            }
            _ => return Err(bad("grant_types may hold authorization_code, refresh_token and (registered clients only) client_credentials")),
        }
    }
    if grants.is_empty() {
        return Err(bad("grant_types must not be empty"));
    }
    let code = grants.iter().any(|g| g == "authorization_code");
    if auth == "none" && grants.iter().any(|g| g == "client_credentials") {
        return Err(bad("client_credentials needs an authenticating client, not token_endpoint_auth_method none"));
    }
    if grants.iter().any(|g| g == "refresh_token") && !code {
        return Err(bad("refresh_token is only issued with authorization_code"));
    }

    let mut response_types = strings(m, "response_types", 4)?.unwrap_or_else(|| {
        if code {
            vec!["code".into()]
        } else {
            vec![]
        }
    });
    response_types.sort();
    response_types.dedup();
    match (code, response_types.as_slice()) {
        (true, [only]) if only == "code" => {}
        (false, []) => {}
        _ => {
            return Err(bad(
                "response_types must be [\"code\"] with the authorization_code grant, and empty without it",
            ))
        }
    }

    let mut redirect_uris = strings(m, "redirect_uris", usize::MAX)?.unwrap_or_default();
    redirect_uris.sort();
    redirect_uris.dedup();
    if code && redirect_uris.is_empty() {
        return Err(MetadataError::RedirectUri(
            "redirect_uris is required for the authorization_code grant".into(),
        ));
    }
    if redirect_uris.len() > max_redirect_uris {
        return Err(MetadataError::RedirectUri(format!(
            "at most {max_redirect_uris} redirect URIs per client"
        )));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri).map_err(|e| {
            MetadataError::RedirectUri(match e {
                UriError::Fragment => "a redirect URI must not contain a fragment".into(),
                other => format!("a redirect URI {other}"),
            })
        })?;
    }
    let application_type = match text(m, "application_type")?.as_deref() {
        Some("web") => {
            // OIDC Registration §2: web clients use https and never localhost.
            let unfit = |u: &String| {
                Url::parse(u).map_or(true, |p| {
                    p.scheme() != "https" || p.host().is_some_and(|h| is_loopback_host(&h))
                })
            };
            if redirect_uris.iter().any(unfit) {
                return Err(MetadataError::RedirectUri(
                    "a web application's redirect URIs must be https and not on localhost".into(),
                ));
            }
            "web".to_owned()
        }
        Some("native") => "native".to_owned(),
        // Unstated: whatever the redirect URIs show. MCP clients rarely say, and most are
        // native apps listening on loopback.
        None if redirect_uris.iter().any(|u| is_native_redirect(u)) => "native".to_owned(),
        None => "web".to_owned(),
        Some(_) => return Err(bad("application_type must be web or native")),
    };

    let jwks = m.get("jwks").filter(|v| !v.is_null()).cloned();
    let jwks_uri = https_url(m, "jwks_uri")?;
    if let Some(j) = &jwks {
        validate_jwks(j)?;
    }
    match (auth.as_str(), &jwks, &jwks_uri) {
        ("private_key_jwt", Some(_), None) | ("private_key_jwt", None, Some(_)) => {}
        ("private_key_jwt", _, _) => {
            return Err(bad(
                "private_key_jwt needs exactly one of jwks and jwks_uri",
            ))
        }
        (_, None, None) => {}
        _ => return Err(bad("jwks and jwks_uri are only used with private_key_jwt")),
    }

    let scope = match text(m, "scope")? {
        Some(s) => Some(
            ScopeSet::parse(&s)
                .map_err(|_| bad("scope must be space-separated OAuth scope tokens"))?
                .to_string(),
        ),
        None => None,
    };
    let contacts = strings(m, "contacts", 10)?.unwrap_or_default();
    if contacts
        .iter()
        .any(|c| c.len() > MAX_TEXT || c.chars().any(char::is_control))
    {
        return Err(bad("contacts must be short printable strings"));
    }
    Ok(Normalized {
        redirect_uris,
        token_endpoint_auth_method: auth,
        grant_types: grants,
        response_types,
        application_type,
        client_name: text(m, "client_name")?,
        client_uri: https_url(m, "client_uri")?,
        logo_uri: https_url(m, "logo_uri")?,
        tos_uri: https_url(m, "tos_uri")?,
        policy_uri: https_url(m, "policy_uri")?,
        contacts,
        scope,
        software_id: text(m, "software_id")?,
        software_version: text(m, "software_version")?,
        jwks,
        jwks_uri,
        dpop_bound_access_tokens: match m.get("dpop_bound_access_tokens") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("dpop_bound_access_tokens must be a boolean")),
        },
    })
}

/// Whether stored client metadata (a [`Normalized`] map) says the client always uses
/// DPoP (RFC 9449 §5.2). Metadata without the member, such as an administrator's
/// client's, says no.
pub fn dpop_bound_access_tokens(metadata: &Value) -> bool {
    metadata.get("dpop_bound_access_tokens") == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(v: Value, source: Source) -> Result<Normalized, MetadataError> {
        normalize(v.as_object().unwrap(), source, 3)
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let n = run(
            json!({"redirect_uris": ["https://app.example/cb"]}),
            Source::Registration,
        )
        .unwrap();
        assert_eq!(n.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(n.grant_types, ["authorization_code"]);
        assert_eq!(n.response_types, ["code"]);
        assert_eq!(n.application_type, "web");
        let n = run(
            json!({"redirect_uris": ["http://127.0.0.1:3/cb"]}),
            Source::Document,
        )
        .unwrap();
        assert_eq!(n.token_endpoint_auth_method, "none");
        assert_eq!(n.application_type, "native");
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                json!({"redirect_uris": ["https://a.example/cb#x"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["http://a.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "web"}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["a:/1", "b.x:/2", "c.x:/3", "d.x:/4"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"grant_types": ["authorization_code"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["urn:x"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "application_type": "tv"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": 5}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "javascript:alert(1)"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_client_metadata",
            ),
        ];
        for (v, code) in cases {
            let e = run(v.clone(), Source::Registration).unwrap_err();
            assert_eq!(e.code(), code, "{v}: {e}");
        }
        let doc = json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"});
        assert!(run(doc, Source::Document).is_err());
        let doc = json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]});
        assert!(run(doc, Source::Document).is_err());
    }

    #[test]
    fn normalization_is_order_insensitive_and_drops_unknown_members() {
        let a = run(json!({"redirect_uris": ["http://127.0.0.1/b", "http://127.0.0.1/a"], "grant_types": ["refresh_token", "authorization_code"], "token_endpoint_auth_method": "none", "x-extra": 1}), Source::Registration).unwrap();
        let b = run(json!({"redirect_uris": ["http://127.0.0.1/a", "http://127.0.0.1/b", "http://127.0.0.1/a"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}), Source::Registration).unwrap();
        assert_eq!(a, b);
        assert!(!a.to_map().contains_key("x-extra"));
    }
}
