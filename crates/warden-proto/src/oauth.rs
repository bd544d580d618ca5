//! OAuth 2.1 wire types.

use serde::{Deserialize, Serialize};

/// `grant_type` of token exchange (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The JWT bearer grant (RFC 7523): a workload token or an ID-JAG as the grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The authorization grant profile of ID-JAGs (SEP-990), advertised in
/// `authorization_grant_profiles_supported`.
pub const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// RFC 8414 authorization server metadata (also served as OpenID discovery).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier, byte-identical everywhere it appears.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWKS document.
    pub jwks_uri: String,
    /// The revocation endpoint (RFC 7009).
    pub revocation_endpoint: String,
    /// The introspection endpoint (RFC 7662).
    pub introspection_endpoint: String,
    /// The dynamic registration endpoint (RFC 7591), when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes any registered server defines.
    pub scopes_supported: Vec<String>,
    /// Always `["code"]`.
    pub response_types_supported: Vec<String>,
    /// Always `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// The grants Warden implements; never implicit or password.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms accepted on `private_key_jwt` client assertions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Always `["S256"]`.
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207.
    pub authorization_response_iss_parameter_supported: bool,
    /// Client ID metadata documents (MCP 2025-11-25).
    pub client_id_metadata_document_supported: bool,
    /// OIDC discovery requires these; Warden issues no ID tokens, subjects are public.
    pub subject_types_supported: Vec<String>,
    /// Signing algorithms for access tokens.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Grant profiles of the JWT bearer grant accepted: ID-JAGs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_grant_profiles_supported: Vec<String>,
    /// RFC 9449 §5.1: the algorithms DPoP proofs may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449 §5).
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A refresh token, for grants that issue one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// RFC 8693 issued token type, for token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// An OAuth error body (RFC 6749 §5.2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error code.
    pub error: String,
    /// A human-readable description that never echoes a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The JWKS document.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Jwks {
    /// Public keys.
    pub keys: Vec<serde_json::Value>,
}
