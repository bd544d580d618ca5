//! A server's scope policy, compiled from its tool groups and settings: what each tool,
//! resource and prompt needs. The gateway asks it for every call and for every item of a
//! list result, so what is listed and what may be called are decided by the same rule.
//!
//! A tool group is a scope and the entries it unlocks. An entry is a tool name
//! (`notes_read`), a tool-name prefix ending in `*` (`notes_*`; the longest prefix wins),
//! explicitly `tool:<name>`, `resource:<uri-prefix>` (the longest matching prefix wins),
//! or `prompt:<name>`. Anything no entry covers needs [`Requirement::Unmapped`] (denied)
//! unless the server's `unmapped_*` setting is `allow`.

use std::collections::HashMap;

use crate::server_settings::ServerSettings;
pub use crate::server_settings::Unmapped;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement<'p> {
    /// A token carrying this scope.
    Scope(&'p str),
    /// Any valid token (an unmapped item on a server that allows those).
    AnyToken,
    /// Nothing allows it: no group maps it and the server denies unmapped items.
    Unmapped,
}

/// The compiled policy of one server.
#[derive(Debug, Default)]
pub struct Policy {
    tools: HashMap<String, String>,
    /// `(prefix, scope)` for tool patterns ending in `*`, longest first.
    tool_prefixes: Vec<(String, String)>,
    /// `(uri prefix, scope)`, longest first.
    resources: Vec<(String, String)>,
    prompts: HashMap<String, String>,
    unmapped_tools: Option<Unmapped>,
    unmapped_resources: Option<Unmapped>,
    unmapped_prompts: Option<Unmapped>,
    scopes: Vec<String>,
}

// === impl Policy ===

impl Policy {
    /// Compiles tool groups, each a scope and its entries, and the `unmapped_*` members
    /// of `settings` (a value other than `"allow"` or `"deny"` was refused when they were
    /// parsed: failing closed would hide a typo).
    pub fn compile<'g>(
        groups: impl IntoIterator<Item = (&'g str, &'g [String])>,
        settings: &ServerSettings,
    ) -> Self {
        let mut policy = Policy::default();
        for (group_scope, entries) in groups {
            if !policy.scopes.iter().any(|s| s == group_scope) {
                policy.scopes.push(group_scope.to_owned());
            }
            for entry in entries {
                let scope = group_scope.to_owned();
                if let Some(prefix) = entry.strip_prefix("resource:") {
                    policy.resources.push((prefix.to_owned(), scope));
                } else if let Some(name) = entry.strip_prefix("prompt:") {
                    policy.prompts.entry(name.to_owned()).or_insert(scope);
                } else {
                    let name = entry.strip_prefix("tool:").unwrap_or(entry);
                    match name.strip_suffix('*') {
                        Some(prefix) => policy.tool_prefixes.push((prefix.to_owned(), scope)),
                        None => {
                            // A tool in two groups keeps its first: the registry refuses
                            // that, so this only matters for hand-edited data.
                            policy.tools.entry(name.to_owned()).or_insert(scope);
                        }
                    }
                }
            }
        }
        policy
            .tool_prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        policy
            .resources
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        policy.unmapped_tools = settings.unmapped_tools;
        policy.unmapped_resources = settings.unmapped_resources;
        policy.unmapped_prompts = settings.unmapped_prompts;
        policy.scopes.sort();
        policy
    }

    /// Every scope the server defines, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// What calling tool `name` needs.
    pub fn tool(&self, name: &str) -> Requirement<'_> {
        if let Some(scope) = self.tools.get(name) {
            return Requirement::Scope(scope);
        }
        let by_prefix = self
            .tool_prefixes
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()));
        match by_prefix {
            Some((_, scope)) => Requirement::Scope(scope),
            None => fallback(self.unmapped_tools),
        }
    }

    /// What reading resource `uri` needs.
    pub fn resource(&self, uri: &str) -> Requirement<'_> {
        let found = self
            .resources
            .iter()
            .find(|(prefix, _)| uri.starts_with(prefix.as_str()));
        match found {
            Some((_, scope)) => Requirement::Scope(scope),
            None => fallback(self.unmapped_resources),
        }
    }

    /// What a resource template needs: the scope covering its literal prefix (the text
    /// before the first `{`), so that every URI it expands to is covered.
    pub fn resource_template(&self, template: &str) -> Requirement<'_> {
        let literal = template.split('{').next().unwrap_or(template);
        self.resource(literal)
    }

    /// What getting prompt `name` needs.
    pub fn prompt(&self, name: &str) -> Requirement<'_> {
        match self.prompts.get(name) {
            Some(scope) => Requirement::Scope(scope),
            None => fallback(self.unmapped_prompts),
        }
    }
}

fn fallback(setting: Option<Unmapped>) -> Requirement<'static> {
    match setting.unwrap_or(Unmapped::Deny) {
        Unmapped::Deny => Requirement::Unmapped,
        Unmapped::Allow => Requirement::AnyToken,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(scope: &str, tools: &[&str]) -> (String, Vec<String>) {
        (
            scope.to_owned(),
            tools.iter().map(|t| (*t).to_owned()).collect(),
        )
    }

    fn compile(groups: &[(String, Vec<String>)], settings: &ServerSettings) -> Policy {
        Policy::compile(
            groups.iter().map(|(s, t)| (s.as_str(), t.as_slice())),
            settings,
        )
    }

    #[test]
    fn entries_map_to_scopes_and_unmapped_is_denied() {
        let p = compile(
            &[
                group(
                    "read",
                    &["a", "tool:b", "x_*", "resource:note://", "prompt:p"],
                ),
                group("admin", &["resource:note://secret/", "x_admin*"]),
            ],
            &ServerSettings::default(),
        );
        assert_eq!(p.tool("a"), Requirement::Scope("read"));
        assert_eq!(p.tool("b"), Requirement::Scope("read"));
        assert_eq!(p.tool("x_list"), Requirement::Scope("read"));
        assert_eq!(p.tool("x_admin_reset"), Requirement::Scope("admin"));
        assert_eq!(p.tool("c"), Requirement::Unmapped);
        assert_eq!(p.resource("note://1"), Requirement::Scope("read"));
        assert_eq!(p.resource("note://secret/1"), Requirement::Scope("admin"));
        assert_eq!(p.resource("file:///etc/passwd"), Requirement::Unmapped);
        assert_eq!(
            p.resource_template("note://{id}"),
            Requirement::Scope("read")
        );
        assert_eq!(p.prompt("p"), Requirement::Scope("read"));
        assert_eq!(p.prompt("q"), Requirement::Unmapped);
        assert_eq!(p.scopes(), ["admin", "read"]);
    }

    #[test]
    fn unmapped_settings_relax_or_fail_loudly() {
        let settings = ServerSettings::parse(&json!({"unmapped_tools": "allow"})).unwrap();
        let p = compile(&[], &settings);
        assert_eq!(p.tool("anything"), Requirement::AnyToken);
        assert_eq!(p.prompt("anything"), Requirement::Unmapped);
        assert!(ServerSettings::parse(&json!({"unmapped_tools": "yes"})).is_err());
    }
}
