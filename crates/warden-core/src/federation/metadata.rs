//! A provider's discovery document (OIDC Discovery 1.0 §3 and §4.3, RFC 8414 §2 and §3.3)
//! and the `iss` of its authorization responses (RFC 9207).

use serde_json::Value;
use url::Url;

use super::FederationError;
use crate::uri::is_loopback_host;

/// The parts of a provider's discovery document Warden uses, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// The issuer, equal to the configured one (for a multi-tenant provider, the
    /// template).
    pub issuer: String,
    /// Where sign-ins are sent.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// The provider's key set.
    pub jwks_uri: String,
    /// The UserInfo endpoint, if any.
    pub userinfo_endpoint: Option<String>,
    /// The RP-initiated logout endpoint, if any.
    pub end_session_endpoint: Option<String>,
    /// The PKCE methods advertised, if the document lists them (it then includes `S256`).
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Whether authorization responses carry `iss` (RFC 9207); `false` when unsaid.
    pub authorization_response_iss_parameter_supported: bool,
    /// The algorithms the provider signs ID tokens with; empty when unsaid.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

// === impl ProviderMetadata ===

impl ProviderMetadata {
    /// Validates the discovery document `doc` of the provider configured with
    /// `configured_issuer`.
    ///
    /// - `issuer` must equal `configured_issuer` byte for byte (OIDC Discovery §4.3,
    ///   RFC 8414 §3.3): a document served for one issuer cannot speak for another;
    /// - `authorization_endpoint`, `token_endpoint` and `jwks_uri` are required; they and
    ///   the optional endpoints must be `https` URLs, or `http` on a loopback host, with no
    ///   credentials or fragment;
    /// - `code_challenge_methods_supported`, when present, must include `S256`, as Warden
    ///   always sends a PKCE S256 challenge.
    pub fn parse(doc: &Value, configured_issuer: &str) -> Result<Self, FederationError> {
        let doc = doc
            .as_object()
            .ok_or(FederationError::BadMetadata("document"))?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or(FederationError::BadMetadata("issuer"))?;
        if issuer != configured_issuer {
            return Err(FederationError::IssuerMismatch);
        }
        let endpoint = |name: &'static str| -> Result<Option<String>, FederationError> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(url)) if is_endpoint(url) => Ok(Some(url.clone())),
                Some(_) => Err(FederationError::BadMetadata(name)),
            }
        };
        let required =
            |name: &'static str| endpoint(name)?.ok_or(FederationError::BadMetadata(name));
        let strings = |name: &'static str| -> Result<Option<Vec<String>>, FederationError> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or(FederationError::BadMetadata(name)),
                Some(_) => Err(FederationError::BadMetadata(name)),
            }
        };
        let pkce = strings("code_challenge_methods_supported")?;
        if pkce
            .as_ref()
            .is_some_and(|m| !m.iter().any(|m| m == "S256"))
        {
            return Err(FederationError::BadMetadata(
                "code_challenge_methods_supported",
            ));
        }
        let iss_parameter = match doc.get("authorization_response_iss_parameter_supported") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(FederationError::BadMetadata(
                    "authorization_response_iss_parameter_supported",
                ))
            }
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            jwks_uri: required("jwks_uri")?,
            userinfo_endpoint: endpoint("userinfo_endpoint")?,
            end_session_endpoint: endpoint("end_session_endpoint")?,
            code_challenge_methods_supported: pkce,
            authorization_response_iss_parameter_supported: iss_parameter,
            id_token_signing_alg_values_supported: strings(
                "id_token_signing_alg_values_supported",
            )?
            .unwrap_or_default(),
        })
    }
}

/// Whether `url` is an endpoint Warden will send users or credentials to: `https`, or
/// `http` on a loopback host (a provider on the same machine), without credentials or a
/// fragment.
fn is_endpoint(url: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return false;
    }
    match (parsed.scheme(), parsed.host()) {
        ("https", Some(_)) => true,
        ("http", Some(host)) => is_loopback_host(&host),
        _ => false,
    }
}

/// Checks the `iss` parameter of an authorization response (RFC 9207 §2.4): when present
/// it must be the provider's issuer, and when the provider advertises
/// `authorization_response_iss_parameter_supported` it must be present. This is what
/// stops a mix-up attack, where a response from one provider is passed off as another's.
pub fn check_response_issuer(
    expected: &str,
    received: Option<&str>,
    advertised: bool,
) -> Result<(), FederationError> {
    match received {
        Some(iss) if iss == expected => Ok(()),
        Some(_) => Err(FederationError::IssuerMismatch),
        None if advertised => Err(FederationError::MissingClaim("iss")),
        None => Ok(()),
    }
}
