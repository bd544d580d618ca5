//! Servers whose tokens come from the organisation's own authorization server (Keycloak,
//! Okta, Entra, …) rather than from this Warden.
//!
//! A server is *external* when its registration's `issuer` differs from Warden's own. Its
//! tokens are then checked one of two ways, chosen by the registration's `token_format`:
//!
//! - **`jwt`: JWKS** ([`jwks`]). The issuer's `jwks_uri` is discovered from
//!   `{issuer}/.well-known/openid-configuration`, else from the RFC 8414 document
//!   `/.well-known/oauth-authorization-server{path}`; the document's `issuer` must equal the
//!   configured one byte for byte. `settings.jwks_uri` skips discovery. Keys are cached
//!   per issuer as the JWKS response's `Cache-Control` allows (bounded, see [`jwks`]) and
//!   refetched on an unknown `kid` at most once per 30 s per issuer. A token is checked
//!   exactly like Warden's own: the algorithm allow-list is the algorithms of the JWKS's
//!   signing keys (never `none`, never HMAC), `iss` exact, `aud` exactly this server's
//!   canonical URI (a one-element array is accepted, a longer one only when every other
//!   member is listed in `settings.extra_audiences`, names like Keycloak's `account`
//!   that are not URLs), `exp`/`nbf`
//!   with the server's leeway, `typ` `at+jwt` (with `settings.accept_jwt_typ = true`, also
//!   `JWT` or no `typ`, as many IdPs issue).
//! - **`opaque`: RFC 7662 introspection** ([`introspect`]), with
//!   `settings.introspection_endpoint`, `introspection_client_id` and
//!   `introspection_client_secret` (sealed with the master key; `warden server add
//!   --introspection-client-secret-stdin` writes it). `active` must be true, `aud` must
//!   contain the canonical URI (an answer without `aud` is refused unless
//!   `introspection_requires_aud = false`), `iss`, if given, must be the issuer, and `exp`
//!   is honoured. Results are cached until the earlier of the token's `exp` and
//!   `introspection_cache_secs` (default 60; the issuer does not tell Warden about
//!   revocations); refusals are remembered for 5 s so a bad token cannot hammer the IdP.
//!
//! From a validated token: the subject is `sub`; the client is `client_id`, else `azp`;
//! scopes are `scope` (space-separated) or `scp` (an array, or a space-separated string);
//! `jti` is used for Warden's revocation list when present.
//!
//! When the issuer cannot be reached (no keys yet, discovery or introspection failing)
//! the request gets 503, not 401: the token may well be good. Fetches to the issuer are
//! trusted configuration, so they are not held to the address policy of client-chosen
//! URLs, but they are bounded in time ([`crate::issuer::IDP_TIMEOUT`]) and size, never follow redirects,
//! and go over `https://` (plain `http://` only to a loopback host), verified against the
//! public web PKI or `settings.issuer_ca` (PEM).

use axum::http::{header, Uri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};
use warden_core::jwt::JwtError;
use warden_core::keys::Sealer;
use warden_core::secret::{token_hash, SecretString};
use warden_core::server_settings::{seal_context, Credential, ServerSettings, TokenFormat};
use warden_store::ServerRecord;

use super::registry::Protected;
use super::tls::TrustRoots;
use super::validate::{Principal, Rejection};
use crate::issuer::check_idp_url;
use crate::App;

pub mod introspect;
pub mod jwks;

/// Default lifetime of a cached introspection result, seconds.
const DEFAULT_INTROSPECTION_CACHE: i64 = 60;

/// A server's external issuer, compiled from its registration.
pub struct ExternalIssuer {
    /// The exact `iss`.
    pub issuer: String,
    /// How tokens are checked.
    pub check: Check,
    /// Trust anchors for the issuer's `https://` endpoints (`settings.issuer_ca`); the
    /// public web PKI if `None`.
    pub roots: Option<TrustRoots>,
}

/// How an external issuer's tokens are checked.
pub enum Check {
    /// Signed JWTs, verified with the issuer's JWKS.
    Jwks(JwksSettings),
    /// Opaque tokens, introspected.
    Introspection(IntrospectionSettings),
}

/// Settings of a JWKS-checked issuer.
pub struct JwksSettings {
    /// A `jwks_uri` that replaces discovery.
    pub jwks_uri: Option<Uri>,
    /// Also accept `typ` `JWT` (or none).
    pub accept_jwt_typ: bool,
    /// Audiences a token may carry besides the canonical URI (`settings.extra_audiences`,
    /// e.g. Keycloak's default `account`); never URLs, so that no other resource's
    /// tokens become acceptable here.
    pub extra_audiences: Vec<String>,
}

/// Settings of an introspected issuer. The secret is never printed.
pub struct IntrospectionSettings {
    /// The RFC 7662 endpoint.
    pub endpoint: Uri,
    /// Warden's client id at the issuer.
    pub client_id: String,
    secret: SecretString,
    /// Refuse an answer without `aud`.
    pub requires_aud: bool,
    /// Longest a positive result is cached, seconds.
    pub cache_secs: i64,
}

/// The gateway's state for external issuers.
pub struct ExternalState {
    /// Recently refused opaque tokens.
    pub refused: introspect::RefusedCache,
}

// === impl ExternalIssuer ===

impl ExternalIssuer {
    /// Compiles the external-issuer part of `record` (whose issuer is `issuer`).
    pub fn compile(issuer: &str, record: &ServerRecord, sealer: &Sealer) -> Result<Self, String> {
        let settings = ServerSettings::parse(&record.settings)?;
        Self::compile_parsed(issuer, record, &settings, sealer)
    }

    /// [`Self::compile`] with the record's settings already parsed.
    pub fn compile_parsed(
        issuer: &str,
        record: &ServerRecord,
        settings: &ServerSettings,
        sealer: &Sealer,
    ) -> Result<Self, String> {
        check_idp_url(issuer, "issuer")?;
        let roots = match &settings.issuer_ca {
            None => None,
            Some(pem) => Some(TrustRoots::from_pem(pem, "issuer_ca")?),
        };
        let check = match record.token_format.parse()? {
            TokenFormat::Opaque => Check::Introspection(IntrospectionSettings::compile(
                &record.name,
                settings,
                sealer,
            )?),
            TokenFormat::Jwt if settings.has_introspection() => {
                return Err("settings.introspection_* apply to token_format \"opaque\" only".into())
            }
            TokenFormat::Jwt => Check::Jwks(JwksSettings {
                jwks_uri: match &settings.jwks_uri {
                    None => None,
                    Some(u) => Some(check_idp_url(u, "settings.jwks_uri")?),
                },
                accept_jwt_typ: settings.accept_jwt_typ.unwrap_or(false),
                extra_audiences: settings.extra_audiences()?,
            }),
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            check,
            roots,
        })
    }
}

impl std::fmt::Debug for ExternalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let check = match &self.check {
            Check::Jwks(_) => "jwks",
            Check::Introspection(_) => "introspection",
        };
        f.debug_struct("ExternalIssuer")
            .field("issuer", &self.issuer)
            .field("check", &check)
            .finish_non_exhaustive()
    }
}

// === impl IntrospectionSettings ===

impl IntrospectionSettings {
    fn compile(server: &str, settings: &ServerSettings, sealer: &Sealer) -> Result<Self, String> {
        let required = |value: &Option<String>, key: &str| -> Result<String, String> {
            value
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("settings.{key} is required for opaque external tokens"))
        };
        let endpoint = check_idp_url(
            &required(&settings.introspection_endpoint, "introspection_endpoint")?,
            "settings.introspection_endpoint",
        )?;
        Ok(Self {
            endpoint,
            client_id: required(&settings.introspection_client_id, "introspection_client_id")?,
            secret: settings.open_introspection_secret(sealer, server)?,
            requires_aud: settings.introspection_requires_aud.unwrap_or(true),
            cache_secs: settings
                .introspection_cache_secs
                .unwrap_or(DEFAULT_INTROSPECTION_CACHE),
        })
    }

    /// `Authorization: Basic` for the endpoint (RFC 6749 §2.3.1: each part form-encoded
    /// first), marked sensitive.
    fn authorization(&self) -> Option<header::HeaderValue> {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = SecretString::new(format!(
            "{}:{}",
            encode(&self.client_id),
            encode(self.secret.expose())
        ));
        let mut value = header::HeaderValue::try_from(format!(
            "Basic {}",
            STANDARD.encode(pair.expose().as_bytes())
        ))
        .ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

// === impl ExternalState ===

impl ExternalState {
    /// Empty caches.
    pub fn new() -> Self {
        Self {
            refused: introspect::RefusedCache::new(),
        }
    }
}

impl Default for ExternalState {
    fn default() -> Self {
        Self::new()
    }
}

// === validation ===

/// Validates `token` for `server`, whose tokens come from `issuer`.
pub async fn authenticate(
    app: &App,
    server: &Protected,
    issuer: &ExternalIssuer,
    token: &str,
    now: i64,
) -> Result<Principal, Rejection> {
    match &issuer.check {
        Check::Jwks(settings) => jwks::verify(app, server, issuer, settings, token, now).await,
        Check::Introspection(settings) => {
            introspect::introspect(app, server, issuer, settings, token, now).await
        }
    }
}

/// Claims from an issuer, in the shape [`Principal`] reads: `client_id` from `azp` if
/// absent, `scope` from `scp`, a `jti` derived from the token if absent. Only the claims
/// the gateway uses are kept.
pub(crate) fn normalize(
    claims: &Map<String, Value>,
    token: &str,
) -> Result<Map<String, Value>, Rejection> {
    let bad = |name: &'static str| Rejection::Jwt(JwtError::Claim(name));
    let mut out = Map::new();
    // `cnf` too: an issuer's DPoP-bound token (RFC 9449 §6) is held to its binding here
    // as Warden's own are.
    for name in ["sub", "exp", "nbf", "act", "authorization_details", "cnf"] {
        if let Some(v) = claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    let client = match (claims.get("client_id"), claims.get("azp")) {
        (Some(Value::String(c)), _) | (None, Some(Value::String(c))) if !c.is_empty() => c,
        _ => return Err(bad("client_id")),
    };
    out.insert("client_id".into(), Value::String(client.clone()));
    let scope = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s.clone(),
        (None, Some(Value::Array(list))) => list
            .iter()
            .map(|s| s.as_str().ok_or(bad("scp")))
            .collect::<Result<Vec<_>, _>>()?
            .join(" "),
        (None, None) => String::new(),
        _ => return Err(bad("scope")),
    };
    out.insert("scope".into(), Value::String(scope));
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() => j.clone(),
        None => {
            // Not every IdP sets `jti`; the hash names the token without revealing it.
            let hash = token_hash(token);
            format!("ext-{}", warden_core::secret::hex(&hash[..16]))
        }
        Some(_) => return Err(bad("jti")),
    };
    out.insert("jti".into(), Value::String(jti));
    Ok(out)
}

/// The stored value of `settings.introspection_client_secret` for `secret`: sealed with
/// the master key and bound to the server's name, so the database never holds it in clear.
pub fn seal_secret(sealer: &Sealer, server: &str, secret: &str) -> Result<Value, String> {
    let mut credential = Credential::clear(secret);
    credential.seal(sealer, &seal_context(server, "introspection_client_secret"))?;
    serde_json::to_value(&credential).map_err(|_| "cannot store the sealed secret".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claims_from_idps_are_normalized() {
        let c = json!({"sub": "u", "azp": "app", "scp": ["a", "b"], "exp": 5});
        let out = normalize(c.as_object().unwrap(), "tok").unwrap();
        assert_eq!(out["client_id"], "app");
        assert_eq!(out["scope"], "a b");
        assert!(out["jti"].as_str().unwrap().starts_with("ext-"));
        let c = json!({"sub": "u", "client_id": "c", "azp": "x", "scp": "a b", "jti": "j"});
        let out = normalize(c.as_object().unwrap(), "tok").unwrap();
        assert_eq!(out["client_id"], "c");
        assert_eq!(out["scope"], "a b");
        assert_eq!(out["jti"], "j");
        let c = json!({"sub": "u"});
        assert!(
            normalize(c.as_object().unwrap(), "tok").is_err(),
            "no client"
        );
        let c = json!({"sub": "u", "client_id": "c", "scp": [1]});
        assert!(normalize(c.as_object().unwrap(), "tok").is_err());
    }

    #[test]
    fn nothing_prints_the_secret() {
        let master = warden_core::keys::MasterKey::generate().unwrap();
        let sealer = master.sealer();
        let rec = ServerRecord {
            name: "vault".into(),
            canonical_uri: "https://gw.example/mcp/vault".into(),
            upstream: "http://127.0.0.1:1/mcp".into(),
            tool_groups: Vec::new(),
            token_format: "opaque".into(),
            access_token_ttl_secs: 900,
            leeway_secs: 30,
            issuer: Some("https://idp.example".into()),
            settings: json!({
                "introspection_endpoint": "https://idp.example/introspect",
                "introspection_client_id": "gw",
                "introspection_client_secret": sealed(&sealer, "vault", "s3cret-value"),
            }),
            created_at: 0,
            updated_at: 0,
        };
        let issuer = ExternalIssuer::compile("https://idp.example", &rec, &sealer).unwrap();
        assert!(!format!("{issuer:?}").contains("s3cret"));
        let Check::Introspection(settings) = &issuer.check else {
            panic!("introspection expected");
        };
        let basic = settings.authorization().unwrap();
        assert!(basic.is_sensitive());
        assert!(!format!("{basic:?}").contains("Basic"));
        assert_eq!(
            basic.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("gw:s3cret-value"))
        );
    }

    fn sealed(sealer: &Sealer, server: &str, secret: &str) -> Value {
        seal_secret(sealer, server, secret).unwrap()
    }

    #[test]
    fn the_secret_is_sealed_and_bound_to_the_server() {
        let master = warden_core::keys::MasterKey::generate().unwrap();
        let sealer = master.sealer();
        let v = json!({ "introspection_client_secret": sealed(&sealer, "a", "s3cret") });
        assert!(!v.to_string().contains("s3cret"));
        let s = ServerSettings::parse(&v).unwrap();
        let open = |server| s.open_introspection_secret(&sealer, server);
        assert_eq!(open("a").unwrap().expose(), "s3cret");
        assert!(open("b").is_err());
        let clear = ServerSettings::parse(&json!({"introspection_client_secret": "s3cret"}));
        let err = clear
            .unwrap()
            .open_introspection_secret(&sealer, "a")
            .unwrap_err();
        assert!(!err.contains("s3cret"));
    }
}
