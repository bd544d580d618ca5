//! Fleet policy: which scopes each agent identity and each user group may be granted on
//! each server, how long their tokens may live, and who may delegate by token exchange.
//!
//! A policy is a declarative TOML document (it can live in git) applied with
//! `warden apply -f FILE`. Parsing keeps the source spans, so every error — a syntax
//! error, an unknown key, or a rule naming a server, scope or client the registry does
//! not know — points at a line. Evaluation is pure: the authorization server asks it what
//! a client or user may get, and narrows every grant to that.
//!
//! ```toml
//! version = 1
//! default = "allow"            # users with no group rule: any scope a server defines
//!
//! [[client]]                   # an agent identity (client id or unique name)
//! id = "ci-agent"
//! servers = { notes = ["notes:read"] }
//! max_token_lifetime = "10m"
//! token_exchange = { allowed = true, max_depth = 1 }
//!
//! [[group]]                    # users in a group
//! name = "contractors"
//! servers = { notes = ["notes:read"] }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::parse_duration;
use crate::scope::ScopeSet;

mod diff;
mod raw;

pub use diff::diff;

/// The policy format version.
pub const POLICY_VERSION: u32 = 1;

/// What users with no matching group rule may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserDefault {
    /// Any scope the server defines (the user still consents).
    #[default]
    Allow,
    /// Nothing: every user needs a group rule.
    Deny,
}

/// Token exchange rights of a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRule {
    /// Whether the client may exchange tokens at all.
    pub allowed: bool,
    /// Deepest delegation chain its exchanges may produce.
    pub max_depth: Option<u32>,
}

/// What one identity (a client or a group) may be granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Server name → scopes.
    pub servers: BTreeMap<String, BTreeSet<String>>,
    /// Upper bound on access-token lifetime, seconds.
    pub max_token_lifetime: Option<i64>,
    /// Token exchange rights (clients only).
    pub token_exchange: Option<ExchangeRule>,
}

/// A validated policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The default for users without a group rule.
    pub default: UserDefault,
    /// Client id → rule.
    pub clients: BTreeMap<String, Rule>,
    /// Group name → rule.
    pub groups: BTreeMap<String, Rule>,
}

/// A policy error, with the 1-based line it refers to when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The line in the policy file.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What the registry knows, for checking a policy against it.
pub trait Registry {
    /// The scopes server `name` defines, or `None` if no such server.
    fn server_scopes(&self, name: &str) -> Option<ScopeSet>;
    /// The canonical client id for `id_or_name`, if it names exactly one client.
    fn client_id(&self, id_or_name: &str) -> Option<String>;
}

impl Policy {
    /// Parses `text` and checks it against `registry`. Every problem found is returned,
    /// each with its line.
    pub fn parse(text: &str, registry: &dyn Registry) -> Result<Policy, Vec<PolicyError>> {
        raw::parse(text, registry)
    }

    /// The scopes a machine identity (client credentials, token exchange) may get on a
    /// server: its client rule if it has one, otherwise the scopes it was registered with;
    /// always within what the server defines.
    pub fn client_scopes(
        &self,
        client_id: &str,
        registered: &ScopeSet,
        server: &str,
        defined: &ScopeSet,
    ) -> ScopeSet {
        let base = match self.clients.get(client_id) {
            Some(rule) => rule_scopes(rule, server),
            None => registered.clone(),
        };
        base.intersection(defined)
    }

    /// The scopes a user in `groups` may consent to on a server: the union of their
    /// groups' rules for it if any group has a rule, else everything the server defines
    /// (`default = "allow"`) or nothing (`"deny"`).
    pub fn user_scopes(&self, groups: &[String], server: &str, defined: &ScopeSet) -> ScopeSet {
        let rules: Vec<&Rule> = groups.iter().filter_map(|g| self.groups.get(g)).collect();
        if rules.is_empty() {
            return match self.default {
                UserDefault::Allow => defined.clone(),
                UserDefault::Deny => ScopeSet::default(),
            };
        }
        rules
            .iter()
            .fold(ScopeSet::default(), |acc, r| {
                acc.union(&rule_scopes(r, server))
            })
            .intersection(defined)
    }

    /// What a client acting for a user may be granted: the user's allowance, narrowed by
    /// the client's rule when it has one.
    pub fn delegated_scopes(
        &self,
        client_id: &str,
        groups: &[String],
        server: &str,
        defined: &ScopeSet,
    ) -> ScopeSet {
        let user = self.user_scopes(groups, server, defined);
        match self.clients.get(client_id) {
            Some(rule) => user.intersection(&rule_scopes(rule, server)),
            None => user,
        }
    }

    /// The longest access-token lifetime allowed for `client_id` (and, for users, their
    /// groups): the smallest bound that applies, or `None`.
    pub fn max_lifetime(&self, client_id: &str, groups: &[String]) -> Option<i64> {
        let client = self
            .clients
            .get(client_id)
            .and_then(|r| r.max_token_lifetime);
        let group = groups
            .iter()
            .filter_map(|g| self.groups.get(g)?.max_token_lifetime)
            .min();
        match (client, group) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `client_id` may exchange tokens, and how deep: `None` when the policy does
    /// not say (the client's registration decides), `Some(None)` when it forbids.
    pub fn exchange(&self, client_id: &str) -> Option<Option<u32>> {
        let rule = self.clients.get(client_id)?.token_exchange.as_ref()?;
        Some(rule.allowed.then_some(rule.max_depth.unwrap_or(u32::MAX)))
    }
}

fn rule_scopes(rule: &Rule, server: &str) -> ScopeSet {
    rule.servers
        .get(server)
        .map(|s| ScopeSet::from_iter_valid(s.iter().cloned()))
        .unwrap_or_default()
}

/// Parses a human duration for a policy key (shared with config).
fn duration(text: &str) -> Result<i64, String> {
    parse_duration(text)
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
