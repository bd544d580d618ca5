//! Fleet posture: what `warden status` and `GET /admin/v1/status` report.

use serde::{Deserialize, Serialize};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Still in policy, but needs attention soon (a secret nearing its maximum age).
    Warning,
    /// Out of policy.
    Violation,
}

/// One thing flagged, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    /// Warning or violation.
    pub severity: Severity,
    /// Why, in words an operator can act on.
    pub reason: String,
}

/// The posture of the whole fleet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FleetStatus {
    /// The issuer.
    pub issuer: String,
    /// When the posture was computed, UNIX seconds.
    pub checked_at: i64,
    /// True when nothing is out of policy (warnings allowed).
    pub ok: bool,
    /// Number of violations.
    pub violations: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// PKCE: Warden requires S256 for every authorization-code client; not configurable.
    pub pkce: String,
    /// The signing key.
    pub signing_key: KeyPosture,
    /// Every registered server.
    pub servers: Vec<ServerPosture>,
    /// Every client that has secrets.
    pub clients: Vec<ClientPosture>,
}

/// The active signing key against the rotation schedule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyPosture {
    /// The key that signs now.
    pub kid: Option<String>,
    /// Its algorithm.
    pub alg: Option<String>,
    /// When it started signing, UNIX seconds.
    pub active_since: Option<i64>,
    /// How long it has been signing, seconds.
    pub age_secs: Option<i64>,
    /// The configured rotation interval, seconds.
    pub rotation_interval_secs: i64,
    /// A published key waiting to take over, if any.
    pub next_kid: Option<String>,
    /// What is flagged.
    pub findings: Vec<Finding>,
}

/// One registered server's posture.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerPosture {
    /// The server's name.
    pub name: String,
    /// Its canonical URI.
    pub canonical_uri: String,
    /// The canonical URI is valid and no other server has it, so its tokens' `aud`
    /// names this server alone.
    pub audience_binding: bool,
    /// Always true: Warden requires PKCE S256 of every authorization-code client.
    pub pkce_enforced: bool,
    /// `jwt` or `opaque`.
    pub token_format: String,
    /// The access-token lifetime this server gets, seconds.
    pub token_lifetime_secs: i64,
    /// The policy maximum (`tokens.max_access_token_ttl`), seconds.
    pub max_token_lifetime_secs: i64,
    /// The clock-skew leeway, seconds (policy: 0..=300).
    pub leeway_secs: i64,
    /// `warden`, or the external issuer this server trusts.
    pub issuer: String,
    /// For an external issuer: whether its metadata and JWKS (or its introspection
    /// endpoint) answered when the posture was computed. Absent for Warden's own tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_reachable: Option<bool>,
    /// What is flagged; empty when the server is in policy.
    pub findings: Vec<Finding>,
}

/// One client's secrets against `secrets.max_age`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientPosture {
    /// The client id.
    pub client_id: String,
    /// Its display name.
    pub name: String,
    /// Its secrets, oldest first.
    pub secrets: Vec<SecretPosture>,
    /// What is flagged.
    pub findings: Vec<Finding>,
}

/// One client secret's age and state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretPosture {
    /// The secret's id (never the secret).
    pub id: String,
    /// Created, UNIX seconds.
    pub created_at: i64,
    /// Age, seconds.
    pub age_secs: i64,
    /// When it reaches `secrets.max_age`, UNIX seconds.
    pub max_age_at: i64,
    /// When it stops authenticating (end of a rotation overlap), if set.
    pub expires_at: Option<i64>,
    /// `active`, `retiring` (works until `expires_at`) or `expired`.
    pub state: String,
}
