//! A server's scope policy, compiled from its tool groups and settings.
//!
//! See the [gateway module docs](super) for the entry syntax (`tool`, `tool*`,
//! `resource:<prefix>`, `prompt:<name>`) and the `unmapped_*` settings.

use std::collections::HashMap;

use serde_json::Value;
use warden_store::ToolGroup;

/// What a server does with a tool, resource or prompt no group names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// Refuse it (the default): a new upstream tool is not silently reachable.
    Deny,
    /// Allow it to any valid token for the server.
    Allow,
}

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
    /// Compiles `groups` and the `unmapped_*` members of `settings`. A setting with a value
    /// other than `"allow"` or `"deny"` is an error (failing closed would hide a typo).
    pub fn compile(groups: &[ToolGroup], settings: &Value) -> Result<Self, String> {
        let mut policy = Policy::default();
        for group in groups {
            if !policy.scopes.contains(&group.scope) {
                policy.scopes.push(group.scope.clone());
            }
            for entry in &group.tools {
                let scope = group.scope.clone();
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
        policy.unmapped_tools = unmapped(settings, "unmapped_tools")?;
        policy.unmapped_resources = unmapped(settings, "unmapped_resources")?;
        policy.unmapped_prompts = unmapped(settings, "unmapped_prompts")?;
        policy.scopes.sort();
        Ok(policy)
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

fn unmapped(settings: &Value, key: &str) -> Result<Option<Unmapped>, String> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "deny" => Ok(Some(Unmapped::Deny)),
        Some(Value::String(s)) if s == "allow" => Ok(Some(Unmapped::Allow)),
        Some(_) => Err(format!("settings.{key} must be \"allow\" or \"deny\"")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(scope: &str, tools: &[&str]) -> ToolGroup {
        ToolGroup {
            scope: scope.into(),
            tools: tools.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn entries_map_to_scopes_and_unmapped_is_denied() {
        let p = Policy::compile(
            &[
                group(
                    "read",
                    &["a", "tool:b", "x_*", "resource:note://", "prompt:p"],
                ),
                group("admin", &["resource:note://secret/", "x_admin*"]),
            ],
            &json!({}),
        )
        .unwrap();
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
        let p = Policy::compile(&[], &json!({"unmapped_tools": "allow"})).unwrap();
        assert_eq!(p.tool("anything"), Requirement::AnyToken);
        assert_eq!(p.prompt("anything"), Requirement::Unmapped);
        assert!(Policy::compile(&[], &json!({"unmapped_tools": "yes"})).is_err());
    }

    /// A list shows an item exactly when calling it would be allowed: for every policy
    /// over a small universe of entries, every token scope and session pin, `tools/call`,
    /// `prompts/get` and `resources/read` are authorized just when `tools/list`,
    /// `prompts/list` and `resources/list` keep the item.
    #[test]
    fn listing_and_calling_decide_alike() {
        use std::path::Path;
        use std::sync::Arc;

        use serde_json::Map;
        use warden_core::config::Config;
        use warden_core::keys::MasterKey;
        use warden_store::ServerRecord;

        use crate::gateway::authorize::Visibility;
        use crate::gateway::jsonrpc::{ListKind, Message};
        use crate::gateway::registry::Protected;
        use crate::gateway::validate::Principal;

        const READ: &[&str] = &["a", "a_*", "prompt:p", "resource:note://", "b"];
        const WRITE: &[&str] = &["a_admin*", "tool:ab", "prompt:q", "resource:note://s/"];
        const TOOLS: &[&str] = &["a", "ab", "a_x", "a_admin_reset", "b", "c"];
        const PROMPTS: &[&str] = &["p", "q", "r"];
        const URIS: &[&str] = &["note://1", "note://s/1", "file:///x"];
        let cases = [
            (
                ListKind::Tools,
                "tools",
                "name",
                "tools/call",
                "name",
                TOOLS,
            ),
            (
                ListKind::Prompts,
                "prompts",
                "name",
                "prompts/get",
                "name",
                PROMPTS,
            ),
            (
                ListKind::Resources,
                "resources",
                "uri",
                "resources/read",
                "uri",
                URIS,
            ),
        ];

        let config = Config::load(
            "version = 1\npublic_url = \"http://127.0.0.1:8080\"\n",
            Vec::new(),
            Path::new("/data"),
        )
        .unwrap();
        let sealer = MasterKey::generate().unwrap().sealer();
        let subset = |all: &[&str], bits: usize| -> Vec<String> {
            let chosen = all.iter().enumerate().filter(|(i, _)| bits >> i & 1 == 1);
            chosen.map(|(_, e)| (*e).to_owned()).collect()
        };
        let mut checked = 0;
        for read_bits in 0..1 << READ.len() {
            for write_bits in 0..1 << WRITE.len() {
                for unmapped in ["allow", "deny"] {
                    let record = ServerRecord {
                        name: "notes".into(),
                        canonical_uri: "http://127.0.0.1:8080/mcp/notes".into(),
                        upstream: "http://127.0.0.1:9/mcp".into(),
                        tool_groups: vec![
                            ToolGroup {
                                scope: "r".into(),
                                tools: subset(READ, read_bits),
                            },
                            ToolGroup {
                                scope: "w".into(),
                                tools: subset(WRITE, write_bits),
                            },
                        ],
                        token_format: "jwt".into(),
                        access_token_ttl_secs: 900,
                        leeway_secs: 0,
                        issuer: None,
                        settings: json!({
                            "unmapped_tools": unmapped,
                            "unmapped_prompts": unmapped,
                            "unmapped_resources": unmapped,
                        }),
                        created_at: 0,
                        updated_at: 0,
                    };
                    let server = Arc::new(Protected::compile(&record, &config, &sealer).unwrap());
                    for scope in ["", "r", "w", "r w"] {
                        let claims: Map<String, Value> = serde_json::from_value(json!({
                            "sub": "u", "client_id": "c", "jti": "j", "exp": 1, "scope": scope,
                        }))
                        .unwrap();
                        let Ok(principal) = Principal::from_claims(&claims, &server) else {
                            panic!("claims refused");
                        };
                        let principal = Arc::new(principal);
                        for pin in [None, Some(vec!["a".to_owned(), "ab".to_owned()])] {
                            let v =
                                Visibility::new(Arc::clone(&server), Arc::clone(&principal), pin);
                            for (kind, key, field, method, param, names) in cases {
                                for name in names {
                                    let body = json!({
                                        "jsonrpc": "2.0", "id": 1, "method": method,
                                        "params": { param: name },
                                    })
                                    .to_string();
                                    let message = Message::parse(body.as_bytes()).unwrap();
                                    let call = message.call().unwrap();
                                    let called = v.authorize(&message, &call).is_ok();
                                    let mut result = json!({ key: [{ field: name }] });
                                    let listed = v.filter_result(kind, &mut result) == 0;
                                    assert_eq!(
                                        called, listed,
                                        "{method} {name} with scope {scope:?}, groups {:?}",
                                        record.tool_groups
                                    );
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 98_304, "the whole universe was checked");
    }
}
