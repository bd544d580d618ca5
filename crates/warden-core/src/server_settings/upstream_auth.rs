//! How the gateway authenticates to an upstream: the `upstream_auth` setting and the
//! fields that go with it, checked together and opened into one [`UpstreamAuth`].
//!
//! | mode | the upstream receives |
//! |---|---|
//! | `assertion` (default) | Warden's signed assertion in `Authorization` |
//! | `static` | the sealed `static_headers` (the assertion moves to `X-Warden-Assertion` if one of them is `Authorization`) |
//! | `client-credentials` | a token its own authorization server issued to Warden (RFC 6749 §4.4) |
//! | `token-exchange` | a token its own authorization server issued for the user, in exchange for a Warden-signed subject token (RFC 8693) |
//!
//! The two token modes need Warden's client registration at the upstream's authorization
//! server: `upstream_client_id` and the sealed `upstream_client_secret`, optionally the
//! `upstream_scopes` to ask for and the `upstream_issuer` (which skips discovery from the
//! upstream's protected-resource metadata).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{seal_context, ServerSettings};
use crate::keys::Sealer;
use crate::scope::valid_token;
use crate::secret::SecretString;
use crate::uri::is_loopback_host;

/// The `upstream_auth` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum UpstreamAuthMode {
    /// Warden's signed assertion (the default).
    #[serde(rename = "assertion")]
    Assertion,
    /// The sealed `static_headers` only carry the credential.
    #[serde(rename = "static")]
    Static,
    /// RFC 8693 token exchange at the upstream's authorization server, per user.
    #[serde(rename = "token-exchange")]
    TokenExchange,
    /// Warden's own client-credentials token at the upstream's authorization server.
    #[serde(rename = "client-credentials")]
    ClientCredentials,
}

/// Warden's registration at an upstream's authorization server, opened.
pub struct UpstreamClient {
    /// Warden's client id there.
    pub client_id: String,
    /// Its secret (sent with `client_secret_basic`).
    pub client_secret: SecretString,
    /// The scopes asked for, if any.
    pub scopes: Vec<String>,
    /// The authorization server's issuer, when configured rather than discovered.
    pub issuer: Option<String>,
}

/// How the gateway authenticates to an upstream, opened and checked.
pub enum UpstreamAuth {
    /// Warden's assertion, plus any static headers (the behaviour without the setting).
    Assertion,
    /// The static headers carry the credential.
    Static,
    /// Warden's client-credentials token at the upstream's authorization server.
    ClientCredentials(UpstreamClient),
    /// A per-user token exchanged at the upstream's authorization server.
    TokenExchange(UpstreamClient),
}

/// What every mode's name is, for errors and help texts.
pub const MODES: &str = "assertion, static, token-exchange or client-credentials";

/// The fields only the two token modes use.
const CLIENT_FIELDS: &[&str] = &[
    "upstream_client_id",
    "upstream_client_secret",
    "upstream_scopes",
    "upstream_issuer",
];

// === impl UpstreamAuthMode ===

impl UpstreamAuthMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamAuthMode::Assertion => "assertion",
            UpstreamAuthMode::Static => "static",
            UpstreamAuthMode::TokenExchange => "token-exchange",
            UpstreamAuthMode::ClientCredentials => "client-credentials",
        }
    }

    /// Whether Warden obtains a token from the upstream's authorization server.
    pub fn uses_upstream_as(self) -> bool {
        match self {
            UpstreamAuthMode::TokenExchange | UpstreamAuthMode::ClientCredentials => true,
            UpstreamAuthMode::Assertion | UpstreamAuthMode::Static => false,
        }
    }
}

impl FromStr for UpstreamAuthMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "assertion" => Ok(UpstreamAuthMode::Assertion),
            "static" => Ok(UpstreamAuthMode::Static),
            "token-exchange" => Ok(UpstreamAuthMode::TokenExchange),
            "client-credentials" => Ok(UpstreamAuthMode::ClientCredentials),
            "oauth" => Err(
                "upstream_auth oauth (per-user authorization at the upstream) is not supported \
                 yet"
                .into(),
            ),
            _ => Err(format!("upstream_auth must be {MODES}")),
        }
    }
}

impl TryFrom<String> for UpstreamAuthMode {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for UpstreamAuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl UpstreamClient ===

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .finish()
    }
}

// === impl UpstreamAuth ===

impl UpstreamAuth {
    /// The mode, by name.
    pub fn mode(&self) -> UpstreamAuthMode {
        match self {
            UpstreamAuth::Assertion => UpstreamAuthMode::Assertion,
            UpstreamAuth::Static => UpstreamAuthMode::Static,
            UpstreamAuth::ClientCredentials(_) => UpstreamAuthMode::ClientCredentials,
            UpstreamAuth::TokenExchange(_) => UpstreamAuthMode::TokenExchange,
        }
    }

    /// Warden's registration at the upstream's authorization server, in the token modes.
    pub fn client(&self) -> Option<&UpstreamClient> {
        match self {
            UpstreamAuth::ClientCredentials(c) | UpstreamAuth::TokenExchange(c) => Some(c),
            UpstreamAuth::Assertion | UpstreamAuth::Static => None,
        }
    }
}

impl fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client() {
            Some(client) => write!(f, "{}({client:?})", self.mode()),
            None => write!(f, "{}", self.mode()),
        }
    }
}

// === impl ServerSettings (upstream_auth) ===

impl ServerSettings {
    /// The mode, `assertion` when unset.
    pub fn upstream_auth_mode(&self) -> UpstreamAuthMode {
        self.upstream_auth.unwrap_or(UpstreamAuthMode::Assertion)
    }

    /// Checks `upstream_auth` against the fields that go with it. An error names the
    /// setting, never the secret's value.
    pub(super) fn check_upstream_auth(&self) -> Result<(), String> {
        let mode = self.upstream_auth_mode();
        let static_authorization = self
            .static_headers
            .iter()
            .flatten()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        match mode {
            UpstreamAuthMode::Assertion if self.upstream_auth.is_some() && static_authorization => {
                return Err("settings.upstream_auth assertion sends the assertion in \
                            Authorization; a static Authorization header needs upstream_auth \
                            static"
                    .into())
            }
            UpstreamAuthMode::Assertion => {}
            UpstreamAuthMode::Static => {
                if self.static_headers.as_ref().is_none_or(|h| h.is_empty()) {
                    return Err("settings.upstream_auth static needs static_headers (the \
                                credential to send)"
                        .into());
                }
            }
            UpstreamAuthMode::TokenExchange | UpstreamAuthMode::ClientCredentials => {
                if static_authorization {
                    return Err(format!(
                        "settings.upstream_auth {mode} sends the upstream's token in \
                         Authorization; static_headers must not set it"
                    ));
                }
                if self
                    .upstream_client_id
                    .as_deref()
                    .is_none_or(|id| id.trim().is_empty())
                    || self.upstream_client_secret.is_none()
                {
                    return Err(format!(
                        "settings.upstream_auth {mode} needs upstream_client_id and \
                         upstream_client_secret (Warden's client at the upstream's \
                         authorization server)"
                    ));
                }
            }
        }
        if !mode.uses_upstream_as() {
            let present = [
                self.upstream_client_id.is_some(),
                self.upstream_client_secret.is_some(),
                self.upstream_scopes.is_some(),
                self.upstream_issuer.is_some(),
            ];
            if let Some((field, _)) = CLIENT_FIELDS.iter().zip(present).find(|(_, p)| *p) {
                return Err(format!(
                    "settings.{field} applies to upstream_auth client-credentials or \
                     token-exchange, not {mode}"
                ));
            }
        }
        Ok(())
    }

    /// The checks of the `upstream_*` settings each on its own.
    pub(super) fn check_upstream_fields(&self) -> Result<(), String> {
        if let Some(bad) = self
            .upstream_scopes
            .iter()
            .flatten()
            .find(|s| !valid_token(s))
        {
            return Err(format!(
                "settings.upstream_scopes: {bad:?} is not a valid OAuth scope"
            ));
        }
        if let Some(issuer) = &self.upstream_issuer {
            check_issuer(issuer)?;
        }
        Ok(())
    }

    /// The `upstream_auth` setting, opened: the client secret is unsealed with `sealer`.
    pub fn open_upstream_auth(
        &self,
        sealer: &Sealer,
        server: &str,
    ) -> Result<UpstreamAuth, String> {
        let client = || -> Result<UpstreamClient, String> {
            const WHAT: &str = "upstream_client_secret";
            let secret = self
                .upstream_client_secret
                .as_ref()
                .ok_or_else(|| format!("settings.{WHAT} is required"))?;
            Ok(UpstreamClient {
                client_id: self.upstream_client_id.clone().unwrap_or_default(),
                client_secret: secret.open(sealer, &seal_context(server, WHAT), WHAT)?,
                scopes: self.upstream_scopes.clone().unwrap_or_default(),
                issuer: self.upstream_issuer.clone(),
            })
        };
        Ok(match self.upstream_auth_mode() {
            UpstreamAuthMode::Assertion => UpstreamAuth::Assertion,
            UpstreamAuthMode::Static => UpstreamAuth::Static,
            UpstreamAuthMode::ClientCredentials => UpstreamAuth::ClientCredentials(client()?),
            UpstreamAuthMode::TokenExchange => UpstreamAuth::TokenExchange(client()?),
        })
    }

    /// Seals the upstream client secret, if it is in clear.
    pub(super) fn seal_upstream_secret(
        &mut self,
        sealer: &Sealer,
        server: &str,
    ) -> Result<(), String> {
        match &mut self.upstream_client_secret {
            Some(secret) => secret.seal(sealer, &seal_context(server, "upstream_client_secret")),
            None => Ok(()),
        }
    }

    /// Drops the fields only the token modes use (the mode went back to another).
    pub fn clear_upstream_client(map: &mut serde_json::Map<String, serde_json::Value>) {
        for k in CLIENT_FIELDS {
            map.remove(*k);
        }
    }
}

/// An upstream authorization server's issuer: an absolute `https://` URL (`http://` only
/// to a loopback host), without credentials, query or fragment.
fn check_issuer(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "settings.upstream_issuer {text:?} must be an https URL (http only for a loopback \
             host) without credentials, query or fragment"
        )
    };
    let url = Url::parse(text).map_err(|_| bad())?;
    let host = url.host().ok_or_else(bad)?;
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => is_loopback_host(&host),
        _ => false,
    };
    if !scheme_ok
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sealer() -> Sealer {
        crate::keys::MasterKey::generate().unwrap().sealer()
    }

    fn parse(v: serde_json::Value) -> Result<ServerSettings, String> {
        ServerSettings::parse(&v)
    }

    #[test]
    fn the_token_modes_need_a_client_and_a_secret() {
        let s = parse(json!({
            "upstream_auth": "client-credentials",
            "upstream_client_id": "warden",
            "upstream_client_secret": "up-s3cret",
            "upstream_scopes": ["notes:read"],
            "upstream_issuer": "https://as.example/realm",
        }))
        .unwrap();
        assert_eq!(s.upstream_auth_mode(), UpstreamAuthMode::ClientCredentials);
        let e = parse(json!({"upstream_auth": "token-exchange", "upstream_client_id": "w"}))
            .unwrap_err();
        assert!(e.contains("upstream_client_secret"), "{e}");
        let e = parse(json!({"upstream_auth": "client-credentials",
            "upstream_client_id": " ", "upstream_client_secret": "x"}))
        .unwrap_err();
        assert!(e.contains("upstream_client_id"), "{e}");
    }

    #[test]
    fn each_mode_refuses_what_does_not_fit_it() {
        let e = parse(json!({"upstream_auth": "static"})).unwrap_err();
        assert!(e.contains("static needs static_headers"), "{e}");
        assert!(parse(json!({"upstream_auth": "static",
            "static_headers": {"Authorization": "Bearer k"}}))
        .is_ok());
        let e = parse(json!({"upstream_auth": "assertion",
            "static_headers": {"authorization": "Bearer k"}}))
        .unwrap_err();
        assert!(e.contains("needs upstream_auth static"), "{e}");
        // Without the setting, a static Authorization header is today's static mode.
        assert!(parse(json!({"static_headers": {"authorization": "Bearer k"}})).is_ok());
        let e = parse(json!({"upstream_auth": "client-credentials",
            "upstream_client_id": "w", "upstream_client_secret": "s",
            "static_headers": {"Authorization": "Bearer k"}}))
        .unwrap_err();
        assert!(e.contains("must not set it"), "{e}");
        let e = parse(json!({"upstream_client_id": "w"})).unwrap_err();
        assert!(e.contains("upstream_client_id applies to"), "{e}");
        let e = parse(
            json!({"upstream_auth": "static", "static_headers": {"k": "v"},
            "upstream_scopes": ["a"]}),
        )
        .unwrap_err();
        assert!(e.contains("upstream_scopes applies to"), "{e}");
        let e = parse(json!({"upstream_auth": "oauth"})).unwrap_err();
        assert!(e.contains("not supported yet"), "{e}");
        let e = parse(json!({"upstream_auth": "magic"})).unwrap_err();
        assert!(e.contains("settings.upstream_auth"), "{e}");
        let e = parse(json!({"upstream_auth": "client-credentials",
            "upstream_client_id": "w", "upstream_client_secret": "s",
            "upstream_scopes": ["a b"]}))
        .unwrap_err();
        assert!(e.contains("not a valid OAuth scope"), "{e}");
        for issuer in [
            "http://as.example",
            "https://u:p@as.example",
            "https://as.example/?x=1",
            "as",
        ] {
            let e = parse(json!({"upstream_auth": "client-credentials",
                "upstream_client_id": "w", "upstream_client_secret": "s",
                "upstream_issuer": issuer}))
            .unwrap_err();
            assert!(e.contains("upstream_issuer"), "{issuer}: {e}");
        }
    }

    #[test]
    fn the_secret_is_sealed_bound_to_the_server_and_shown_only_as_set() {
        let sealer = sealer();
        let mut s = parse(json!({
            "upstream_auth": "token-exchange",
            "upstream_client_id": "warden",
            "upstream_client_secret": "up-s3cret",
        }))
        .unwrap();
        s.seal_credentials(&sealer, "srv").unwrap();
        let stored = s.to_value().to_string();
        assert!(!stored.contains("up-s3cret"), "{stored}");
        let again = ServerSettings::parse(&s.to_value()).unwrap();
        let opened = again.open_upstream_auth(&sealer, "srv").unwrap();
        assert_eq!(opened.mode(), UpstreamAuthMode::TokenExchange);
        let client = opened.client().unwrap();
        assert_eq!(client.client_secret.expose(), "up-s3cret");
        assert!(!format!("{opened:?}").contains("s3cret"));
        assert!(again.open_upstream_auth(&sealer, "other").is_err());
        let shown = serde_json::Value::Object(again.redacted());
        assert_eq!(shown["upstream_client_secret"], crate::server_settings::SET);
        let e = parse(json!({"upstream_auth": "client-credentials",
            "upstream_client_id": "w", "upstream_client_secret": ["hunter2-value"]}))
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
