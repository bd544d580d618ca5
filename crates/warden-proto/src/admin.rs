//! Admin DTOs, printed by the CLI with `--json` and served by the admin API.

use serde::{Deserialize, Serialize};

mod api;
mod idps;
mod posture;

pub use api::*;
pub use idps::*;
pub use posture::*;

/// A tool group: the scope that grants the listed tools.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ToolGroupView {
    /// The scope.
    pub scope: String,
    /// Tool names in the group.
    pub tools: Vec<String>,
}

/// A registered MCP server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServerView {
    /// The server's name (its path segment under `/mcp/`).
    pub name: String,
    /// The canonical URI: what its tokens' `aud` equals.
    pub canonical_uri: String,
    /// Where the gateway forwards to.
    pub upstream: String,
    /// Tool groups and their scopes.
    pub tool_groups: Vec<ToolGroupView>,
    /// `jwt` or `opaque`.
    pub token_format: String,
    /// Access-token lifetime, seconds.
    pub access_token_ttl_secs: i64,
    /// Clock-skew leeway, seconds.
    pub leeway_secs: i64,
    /// The external issuer this server trusts; absent for this Warden's own tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The server's settings (see `NewServer::settings`); a credential (a static header's
    /// value, an `env` value, the introspection client secret) is shown only as `"set"`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Created, UNIX seconds.
    pub created_at: i64,
}

/// A registered OAuth client. Never carries a secret or its hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientView {
    /// The client id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// `public` or `confidential`.
    pub client_type: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grants.
    pub grant_types: Vec<String>,
    /// Registered scopes (machine clients get no more than these).
    pub scopes: Vec<String>,
    /// Token endpoint authentication method.
    pub token_endpoint_auth_method: String,
    /// How many secrets are valid now.
    pub active_secrets: usize,
    /// Created, UNIX seconds.
    pub created_at: i64,
    /// Last successful authentication, UNIX seconds.
    pub last_used_at: Option<i64>,
    /// Workload identities bound to the client.
    pub workloads: Vec<WorkloadView>,
}

/// A newly created client, with its secret shown once.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The client secret, for confidential clients; never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient")
            .field("client", &self.client)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// A built-in user. Never carries the password hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserView {
    /// Stable id (the token `sub`).
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Groups, for policy.
    pub groups: Vec<String>,
    /// Whether sign-in is disabled.
    pub disabled: bool,
    /// Created, UNIX seconds.
    pub created_at: i64,
}

/// A signing key's public state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// `pending`, `active`, `retired` or `removed`.
    pub state: String,
    /// Published in JWKS from, UNIX seconds.
    pub publish_at: i64,
    /// Signs from, UNIX seconds.
    pub activate_at: i64,
    /// Stops signing at, UNIX seconds.
    pub retire_at: Option<i64>,
    /// Leaves JWKS at, UNIX seconds.
    pub remove_at: Option<i64>,
}
