//! Admin API request bodies and the responses that are not plain views.
//!
//! Request bodies refuse unknown fields, so a misspelt field is an error rather than a
//! silently ignored setting.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ClientView, ToolGroupView, WorkloadView};

/// `POST /admin/v1/servers`: register an MCP server.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    /// Name: lowercase letters, digits, `-` and `_`; the path segment under `/mcp/`.
    pub name: String,
    /// The upstream MCP endpoint (http or https URL).
    pub upstream: String,
    /// The canonical URI; default `{public_url}/mcp/{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_uri: Option<String>,
    /// Tool groups: which scope grants which tools.
    #[serde(default)]
    pub tool_groups: Vec<ToolGroupView>,
    /// Access-token lifetime, seconds; default from config, at most the policy maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<i64>,
    /// Clock-skew leeway, seconds (0..=300); default from config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_secs: Option<i64>,
    /// The issuer of this server's tokens when it is not this Warden (an external
    /// authorization server: JWTs checked by its JWKS, opaque tokens by introspection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `jwt` (default) or `opaque`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_format: Option<String>,
    /// Per-server gateway settings: the fields of Warden's `ServerSettings` type
    /// (`transport`, `static_headers`, `unmapped_tools`, `challenge_scope`, …; see the
    /// OpenAPI document). An unknown key is refused. Credential values (`static_headers`,
    /// `env`) are sealed before they are stored and never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The introspection client secret, in clear on the way in only: the server seals it
    /// with the master key before it is stored and never returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_client_secret: Option<String>,
}

/// `PATCH /admin/v1/servers/{name}`: change some of a registered server's fields. An
/// absent field keeps its value; the result is validated exactly like a registration.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerUpdate {
    /// The upstream MCP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The canonical URI (still unique across the fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_uri: Option<String>,
    /// Replaces every tool group. A scope the policy grants cannot be dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_groups: Option<Vec<ToolGroupView>>,
    /// Access-token lifetime, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<i64>,
    /// Clock-skew leeway, seconds (0..=300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_secs: Option<i64>,
    /// An external issuer; `null` returns the server to this Warden's tokens (and drops
    /// the settings that only an external issuer uses).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer: Option<Option<String>>,
    /// `jwt` or `opaque`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_format: Option<String>,
    /// Settings to merge: each key given replaces that setting, a `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// A new introspection client secret, in clear on the way in only (sealed before it
    /// is stored, never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_client_secret: Option<String>,
}

/// A field that is present, even as `null`, is `Some(value)`: tells "set to null" from
/// "absent" in a partial update.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /admin/v1/clients`: register an OAuth client.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Display name.
    pub name: String,
    /// A confidential client gets a secret; a public one authenticates with PKCE only.
    #[serde(default)]
    pub confidential: bool,
    /// Exact redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Grant types; default `authorization_code` and `refresh_token`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Scopes the client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Workload identities whose tokens authenticate this client (jwt-bearer); such a
    /// client is public (it has no secret).
    #[serde(default)]
    pub workloads: Vec<WorkloadView>,
}

/// `POST /admin/v1/users`: create a built-in user.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Sign-in name.
    pub username: String,
    /// The password; hashed with argon2id on arrival, never stored or logged in clear.
    pub password: String,
    /// Groups, for policy.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `POST /admin/v1/clients/{client}/secrets`: rotate a client's secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secrets keep working, seconds (default 24 h; 0 ends them
    /// at once, for a leaked secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_secs: Option<i64>,
}

/// A rotated client secret, shown once.
#[derive(Clone, Serialize, Deserialize)]
pub struct RotatedSecret {
    /// The client, after the rotation.
    pub client: ClientView,
    /// The new secret's id (for audit and status).
    pub secret_id: String,
    /// The new secret; never shown again.
    pub client_secret: String,
    /// When the previous secrets stop working, UNIX seconds (none if there were none).
    pub previous_secrets_expire_at: Option<i64>,
}

/// `POST /admin/v1/keys/rotate`: rotate the signing key now.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Sign with the new key at once instead of after the publish-ahead period.
    #[serde(default)]
    pub immediate: bool,
}

/// `GET /admin/v1/policy`: the fleet policy as last applied.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyView {
    /// Increases by one on every apply; 0 when none was ever applied. Also the `ETag`.
    pub version: i64,
    /// When it was applied, UNIX seconds (absent before the first apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// The document as applied (TOML), or empty before the first apply.
    pub source: String,
    /// The policy as Warden evaluates it (client ids resolved).
    pub policy: serde_json::Value,
}

/// The answer to `PUT /admin/v1/policy` (and `warden apply`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyApplied {
    /// True when nothing was changed (`?dry_run=true`).
    pub dry_run: bool,
    /// The version now in force: the new one, or the current one on a dry run or when
    /// the document changes nothing.
    pub version: i64,
    /// What changed (or would change), one `+`/`-`/`~` line each.
    pub changes: Vec<String>,
}

/// One problem in a refused policy document.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The 1-based line of the document, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A user's consent to one client at one resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsentView {
    /// The client.
    pub client_id: String,
    /// The resource (canonical URI).
    pub resource: String,
    /// The approved scopes.
    pub scopes: Vec<String>,
    /// When approved, UNIX seconds.
    pub granted_at: i64,
}

/// `DELETE /admin/v1/users/{username}/consents` query: what to withdraw.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsentFilter {
    /// Only this client's consents (default: every client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Only this resource (canonical URI); needs `client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// The answer to a consent withdrawal.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsentsRevoked {
    /// Consents removed.
    pub consents_removed: u64,
    /// Refresh-token families (sessions) revoked with them.
    pub sessions_revoked: u64,
}

/// The answer to a removal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Removed {
    /// What was removed (server name, client id or username).
    pub removed: String,
}

/// `GET /admin/v1/events` query parameters. Unset fields do not filter.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events of this kind, e.g. `token.issued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only events about this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Only events about this subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Only events about this server (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Only events at or after this time, UNIX milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Only events before this time, UNIX milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// Only events after this sequence number (paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `GET /admin/v1/events`: one page of matching events, and whether more match.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventPage {
    /// The events, by sequence number.
    pub events: Vec<EventView>,
    /// Whether more events match than this page holds: the listing was cut at `limit`.
    pub truncated: bool,
    /// When truncated, the `after_seq` that asks for the next page; otherwise `null`.
    pub next_after_seq: Option<i64>,
}

/// One audit event, with its place in the hash chain (hashes in hex).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventView {
    /// Position in the log.
    pub seq: i64,
    /// UNIX milliseconds.
    pub ts_ms: i64,
    /// Event kind.
    pub kind: String,
    /// Client involved.
    pub client_id: Option<String>,
    /// Subject involved.
    pub subject: Option<String>,
    /// Server involved.
    pub server: Option<String>,
    /// Structured detail.
    pub detail: serde_json::Value,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// The result of verifying the audit log's hash chain.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainReport {
    /// Events whose hash was recomputed and matched.
    pub checked: u64,
    /// The first event that is missing, edited or out of place.
    pub first_broken: Option<i64>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("groups", &self.groups)
            .finish()
    }
}

impl fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("client", &self.client)
            .field("secret_id", &self.secret_id)
            .field("client_secret", &"[REDACTED]")
            .field(
                "previous_secrets_expire_at",
                &self.previous_secrets_expire_at,
            )
            .finish()
    }
}

impl std::fmt::Debug for NewServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewServer")
            .field("name", &self.name)
            .field("upstream", &self.upstream)
            .field("canonical_uri", &self.canonical_uri)
            .field("tool_groups", &self.tool_groups)
            .field("issuer", &self.issuer)
            .field("token_format", &self.token_format)
            .field(
                "introspection_client_secret",
                &self
                    .introspection_client_secret
                    .as_ref()
                    .map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerUpdate")
            .field("upstream", &self.upstream)
            .field("canonical_uri", &self.canonical_uri)
            .field("tool_groups", &self.tool_groups)
            .field("issuer", &self.issuer)
            .field("token_format", &self.token_format)
            .field(
                "introspection_client_secret",
                &self
                    .introspection_client_secret
                    .as_ref()
                    .map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let u = NewUser {
            username: "alice".into(),
            password: "hunter2".into(),
            groups: vec![],
        };
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    #[test]
    fn request_bodies_refuse_unknown_fields() {
        let e = serde_json::from_str::<NewServer>(r#"{"name":"a","upstream":"u","scopes":[]}"#);
        assert!(e.is_err());
        let e = serde_json::from_str::<ServerUpdate>(r#"{"name":"a"}"#);
        assert!(e.is_err(), "a server's name is not changed by an update");
    }

    #[test]
    fn an_update_tells_null_from_absent() {
        let u: ServerUpdate = serde_json::from_str(r#"{"issuer":null}"#).unwrap();
        assert_eq!(u.issuer, Some(None));
        let u: ServerUpdate = serde_json::from_str(r#"{"issuer":"https://idp.example"}"#).unwrap();
        assert_eq!(u.issuer, Some(Some("https://idp.example".into())));
        let u: ServerUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(u, ServerUpdate::default());
        assert_eq!(serde_json::to_string(&u).unwrap(), "{}");
        let secret = ServerUpdate {
            introspection_client_secret: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
