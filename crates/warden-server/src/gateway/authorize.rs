//! Authorization of each JSON-RPC message, and filtering of list results.
//!
//! The decision for a call and the decision to list an item are the same function
//! ([`Visibility::check`]), so a list never shows what a call would then refuse.

use std::sync::Arc;

use serde_json::Value;
use warden_core::scope::ScopeSet;
use warden_core::tool_policy::Requirement;

use super::challenge::GatewayError;
use super::jsonrpc::{Call, ListKind, Message};
use super::registry::Protected;
use super::validate::Principal;

/// What may be used by one request: the token's scopes, narrowed by any tool pins (from
/// the token's `authorization_details`, the session, or the request's own declaration).
#[derive(Clone)]
pub struct Visibility {
    server: Arc<Protected>,
    principal: Arc<Principal>,
    pins: Vec<Arc<[String]>>,
}

/// The kind of item a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A tool, by name.
    Tool,
    /// A resource, by URI.
    Resource,
    /// A resource template, by URI template.
    Template,
    /// A prompt, by name.
    Prompt,
}

/// Why an item may not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    /// The token lacks this scope.
    Scope(String),
    /// No group maps the item and the server denies unmapped items.
    Unmapped,
    /// The item is outside the declared (pinned) tools.
    NotDeclared,
}

/// An allowed message, and what the proxy must do with its answer.
#[derive(Debug, Default)]
pub struct Permit {
    /// Filter the result of this list.
    pub filter: Option<ListKind>,
    /// The tools to pin a new session to (an `initialize` that declared them).
    pub pin: Option<Vec<String>>,
    /// What was called, for the audit log (`tools/call notes_read`).
    pub target: Option<String>,
}

// === impl Visibility ===

impl Visibility {
    /// What `principal` may use on `server`, with the session's pinned tools.
    pub fn new(
        server: Arc<Protected>,
        principal: Arc<Principal>,
        session_pin: Option<Vec<String>>,
    ) -> Self {
        let mut pins: Vec<Arc<[String]>> = Vec::new();
        if let Some(p) = principal.pinned() {
            pins.push(p.into());
        }
        if let Some(p) = session_pin {
            pins.push(p.into());
        }
        Self {
            server,
            principal,
            pins,
        }
    }

    /// Whether `name` of kind `item` may be used.
    pub fn check(&self, item: Item, name: &str) -> Result<(), Denial> {
        let policy = &self.server.policy;
        let requirement = match item {
            Item::Tool => {
                if !self.pins.iter().all(|pin| pin.iter().any(|t| t == name)) {
                    return Err(Denial::NotDeclared);
                }
                policy.tool(name)
            }
            Item::Resource => policy.resource(name),
            Item::Template => policy.resource_template(name),
            Item::Prompt => policy.prompt(name),
        };
        match requirement {
            Requirement::Scope(scope) if self.principal.scope().contains(scope) => Ok(()),
            Requirement::Scope(scope) => Err(Denial::Scope(scope.to_owned())),
            Requirement::AnyToken => Ok(()),
            Requirement::Unmapped => Err(Denial::Unmapped),
        }
    }

    /// Decides `call`; `message` supplies the id echoed in a refusal.
    pub fn authorize(
        &self,
        message: &Message<'_>,
        call: &Call<'_>,
    ) -> Result<Permit, GatewayError> {
        let one = |item: Item, name: &str, what: &str| -> Result<Permit, GatewayError> {
            // Sized once (`format!` grows its buffer): this runs on every call.
            let mut target = String::with_capacity(what.len() + 1 + name.len());
            target.push_str(what);
            target.push(' ');
            target.push_str(name);
            self.check(item, name)
                .map_err(|d| self.refusal(message, vec![(name.to_owned(), d)], &target))?;
            Ok(Permit {
                target: Some(target),
                ..Permit::default()
            })
        };
        match call {
            Call::Tool { name, intended } => {
                if let Some(declared) = intended {
                    // A 2026-07-28 request declares its tools itself: the declaration must
                    // be covered, and the call must be one of them.
                    self.check_declared(message, declared)?;
                    if !declared.iter().any(|t| t == name) {
                        let target = format!("tool {name}");
                        return Err(self.refusal(
                            message,
                            vec![(name.to_string(), Denial::NotDeclared)],
                            &target,
                        ));
                    }
                }
                one(Item::Tool, name, "tool")
            }
            Call::Resource { uri } => one(Item::Resource, uri, "resource"),
            Call::Prompt { name } => one(Item::Prompt, name, "prompt"),
            Call::CompletePrompt { name } => one(Item::Prompt, name, "prompt"),
            Call::CompleteResource { uri } => one(Item::Template, uri, "resource template"),
            Call::Initialize { intended } => {
                let Some(declared) = intended else {
                    return Ok(Permit::default());
                };
                self.check_declared(message, declared)?;
                let mut pin: Vec<String> = Vec::with_capacity(declared.len());
                for tool in declared {
                    if !pin.contains(tool) {
                        pin.push(tool.clone());
                    }
                }
                Ok(Permit {
                    target: Some(format!("declared tools {}", pin.join(","))),
                    pin: Some(pin),
                    ..Permit::default()
                })
            }
            Call::List(kind) => Ok(Permit {
                filter: Some(*kind),
                ..Permit::default()
            }),
            Call::Other | Call::Reply => Ok(Permit::default()),
        }
    }

    /// Every declared tool must be usable, or the declaration is refused as a whole.
    fn check_declared(
        &self,
        message: &Message<'_>,
        declared: &[String],
    ) -> Result<(), GatewayError> {
        let denied: Vec<(String, Denial)> = declared
            .iter()
            .filter_map(|t| self.check(Item::Tool, t).err().map(|d| (t.clone(), d)))
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = denied.iter().map(|(t, _)| t.as_str()).collect();
        let target = format!("declared tools {}", names.join(", "));
        Err(self.refusal(message, denied, &target))
    }

    /// The refusal for `denied` items: 403 with step-up if scopes would fix every one,
    /// else a plain 403 naming what no scope can allow.
    fn refusal(
        &self,
        message: &Message<'_>,
        denied: Vec<(String, Denial)>,
        target: &str,
    ) -> GatewayError {
        let mut needed = Vec::new();
        for (name, denial) in &denied {
            match denial {
                Denial::Scope(scope) => needed.push(scope.clone()),
                Denial::Unmapped => {
                    return GatewayError::NotPermitted {
                        id: message.id(),
                        message: format!("{name} is not available through this gateway"),
                    }
                }
                Denial::NotDeclared => {
                    return GatewayError::NotPermitted {
                        id: message.id(),
                        message: format!("{name} is outside the tools declared for this session"),
                    }
                }
            }
        }
        GatewayError::InsufficientScope {
            id: message.id(),
            needed: ScopeSet::from_iter_valid(needed),
            granted: self.principal.scope().clone(),
            target: target.to_owned(),
        }
    }

    /// Removes what may not be used from a list `result`; how many items were removed.
    pub fn filter_result(&self, kind: ListKind, result: &mut Value) -> usize {
        let (key, field, item) = match kind {
            ListKind::Tools => ("tools", "name", Item::Tool),
            ListKind::Resources => ("resources", "uri", Item::Resource),
            ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate", Item::Template),
            ListKind::Prompts => ("prompts", "name", Item::Prompt),
        };
        let Some(Value::Array(items)) = result.get_mut(key) else {
            return 0;
        };
        let before = items.len();
        items.retain(|entry| {
            entry
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|name| self.check(item, name).is_ok())
        });
        before - items.len()
    }

    /// Filters a whole JSON-RPC response `message` from the upstream: with `kind` when the
    /// request is known, else (a replayed or unsolicited event) by the result's shape.
    /// Whether anything changed.
    pub fn filter_response(&self, kind: Option<ListKind>, message: &mut Value) -> bool {
        let Some(result) = message.get_mut("result") else {
            return false;
        };
        let kinds: &[ListKind] = match &kind {
            Some(k) => std::slice::from_ref(k),
            None => &[
                ListKind::Tools,
                ListKind::Resources,
                ListKind::ResourceTemplates,
                ListKind::Prompts,
            ],
        };
        kinds
            .iter()
            .map(|k| self.filter_result(*k, result))
            .sum::<usize>()
            > 0
    }

    /// The server this is about.
    pub fn server(&self) -> &Arc<Protected> {
        &self.server
    }

    /// The identity this is about.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warden_store::ToolGroup;

    use super::*;

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
