//! Identity providers and workload bindings in the admin API.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::api::present;

/// One entry of an IdP's group map: a group the IdP names, and the Warden group it
/// grants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The group as the IdP's groups claim names it.
    pub idp_group: String,
    /// The Warden group (for policy) it maps to.
    pub group: String,
}

/// A workload identity bound to a client: the IdP (with the `workload` use) and the
/// token subject.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct WorkloadView {
    /// The IdP's name.
    pub idp: String,
    /// The `sub` of the workload's tokens.
    pub subject: String,
}

/// `POST /admin/v1/idps`: register an identity provider.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIdp {
    /// Name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The issuer identifier (https, or http on loopback); may hold `{tenantid}` in its
    /// path, with `tenants`.
    pub issuer: String,
    /// What it is trusted for: `login`, `id-jag`, `workload` (at least one).
    pub uses: Vec<String>,
    /// The sign-in button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Warden's client id at the IdP (required for `login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Warden's client secret at the IdP (required for `login`), in clear on the way in
    /// only: sealed with the master key before it is stored, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The ID-token claim listing the user's groups; default `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// IdP groups to Warden groups.
    #[serde(default)]
    pub group_map: Vec<GroupMapping>,
    /// Email domains whose users sign in with this IdP (each routes to one IdP only).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Tenants accepted by a `{tenantid}` issuer (required then, refused otherwise).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Audiences accepted on workload tokens besides Warden's issuer.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// OIDC scopes requested at sign-in (must include `openid`); default
    /// `openid email profile`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The IdP's JWKS URL, to skip discovery of its keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// PEM trust anchors for the IdP's https endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ca: Option<String>,
    /// Register it disabled.
    #[serde(default)]
    pub disabled: bool,
}

/// `PATCH /admin/v1/idps/{name}`: change some fields. An absent field keeps its value;
/// `null` clears an optional one (the default, for `groups_claim` and `scopes`). The
/// result is validated exactly like a registration.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdpUpdate {
    /// The issuer identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Replaces the uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<String>>,
    /// The sign-in button label; `null` shows the name.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<Option<String>>,
    /// Warden's client id at the IdP.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_id: Option<Option<String>>,
    /// A new client secret (sealed before it is stored, never returned); `null` drops it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<Option<String>>,
    /// The groups claim; `null` for `groups`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub groups_claim: Option<Option<String>>,
    /// Replaces the group map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_map: Option<Vec<GroupMapping>>,
    /// Replaces the domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// Replaces the tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// Replaces the audiences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// Replaces the scopes; `null` for the default.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes: Option<Option<Vec<String>>>,
    /// The JWKS URL; `null` to use discovery.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwks_uri: Option<Option<String>>,
    /// PEM trust anchors; `null` for the public web roots.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_ca: Option<Option<String>>,
    /// Disable (sign-ins and tokens refused, its users' sessions revoked) or enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A registered identity provider. Never carries the client secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdpView {
    /// The name.
    pub name: String,
    /// The issuer identifier.
    pub issuer: String,
    /// The sign-in button label, if set.
    pub display_name: Option<String>,
    /// What it is trusted for.
    pub uses: Vec<String>,
    /// Warden's client id at the IdP.
    pub client_id: Option<String>,
    /// Whether a client secret is stored (it is never shown).
    pub client_secret_set: bool,
    /// The groups claim.
    pub groups_claim: String,
    /// IdP groups to Warden groups.
    pub group_map: Vec<GroupMapping>,
    /// Email domains routed to it.
    pub domains: Vec<String>,
    /// Accepted tenants.
    pub tenants: Vec<String>,
    /// Extra accepted audiences for workload tokens.
    pub audiences: Vec<String>,
    /// OIDC scopes requested at sign-in.
    pub scopes: Vec<String>,
    /// The JWKS URL, when discovery is skipped.
    pub jwks_uri: Option<String>,
    /// PEM trust anchors, if set.
    pub issuer_ca: Option<String>,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Created, UNIX seconds.
    pub created_at: i64,
    /// Last changed, UNIX seconds.
    pub updated_at: i64,
}

/// `PATCH /admin/v1/clients/{client}`: change some of a client's fields. An absent field
/// keeps its value; the result is validated exactly like a registration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Replaces the grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Replaces the scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Replaces the workload bindings (`[]` removes them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<WorkloadView>>,
}

/// The answer to removing an IdP.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdpRemoved {
    /// The IdP removed.
    pub removed: String,
    /// Refresh-token families (sessions) of its users revoked with it.
    pub sessions_revoked: u64,
}

impl fmt::Debug for NewIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewIdp")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("uses", &self.uses)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IdpUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpUpdate")
            .field("issuer", &self.issuer)
            .field("uses", &self.uses)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self
                    .client_secret
                    .as_ref()
                    .map(|s| s.as_ref().map(|_| "[REDACTED]")),
            )
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_secret_is_redacted_in_debug_output() {
        let n = NewIdp {
            client_secret: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{n:?}").contains("hunter2"));
        let u = IdpUpdate {
            client_secret: Some(Some("hunter2".into())),
            ..Default::default()
        };
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    #[test]
    fn an_update_tells_null_from_absent() {
        let u: IdpUpdate = serde_json::from_str(r#"{"client_secret":null}"#).unwrap();
        assert_eq!(u.client_secret, Some(None));
        let u: IdpUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(u, IdpUpdate::default());
        assert!(serde_json::from_str::<IdpUpdate>(r#"{"name":"x"}"#).is_err());
    }
}
