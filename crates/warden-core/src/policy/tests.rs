use std::collections::HashMap;

use super::*;

struct Reg {
    servers: HashMap<&'static str, &'static str>,
    clients: Vec<(&'static str, &'static str)>,
}

impl Registry for Reg {
    fn server_scopes(&self, name: &str) -> Option<ScopeSet> {
        self.servers.get(name).map(|s| ScopeSet::parse(s).unwrap())
    }
    fn client_id(&self, key: &str) -> Option<String> {
        self.clients
            .iter()
            .find(|(id, name)| *id == key || *name == key)
            .map(|(id, _)| (*id).to_owned())
    }
}

fn reg() -> Reg {
    Reg {
        servers: HashMap::from([
            ("notes", "notes:read notes:write notes:admin"),
            ("billing", "billing:read"),
        ]),
        clients: vec![("c1", "ci-agent"), ("c2", "orchestrator")],
    }
}

const GOOD: &str = r#"version = 1
default = "allow"

[[client]]
id = "ci-agent"
servers = { notes = ["notes:read"] }
max_token_lifetime = "10m"

[[client]]
id = "c2"
servers = { notes = ["notes:read", "notes:write"], billing = ["billing:read"] }
token_exchange = { allowed = true, max_depth = 1 }

[[group]]
name = "contractors"
servers = { notes = ["notes:read"] }
max_token_lifetime = "5m"
"#;

fn s(text: &str) -> ScopeSet {
    ScopeSet::parse(text).unwrap()
}

#[test]
fn a_valid_policy_evaluates() {
    let p = Policy::parse(GOOD, &reg()).unwrap();
    let notes = s("notes:read notes:write notes:admin");
    // Clients: the rule decides, within what the server defines.
    assert_eq!(
        p.client_scopes("c1", &s("notes:write"), "notes", &notes),
        s("notes:read")
    );
    assert_eq!(
        p.client_scopes("c1", &s(""), "billing", &s("billing:read")),
        s("")
    );
    // A client without a rule keeps its registered scopes.
    assert_eq!(
        p.client_scopes("c9", &s("notes:write"), "notes", &notes),
        s("notes:write")
    );
    // Users: group rules restrict; no group rule means the default.
    assert_eq!(
        p.user_scopes(&["contractors".into()], "notes", &notes),
        s("notes:read")
    );
    assert_eq!(p.user_scopes(&["eng".into()], "notes", &notes), notes);
    assert_eq!(p.user_scopes(&[], "notes", &notes), notes);
    // A client acting for a user is narrowed by both.
    assert_eq!(
        p.delegated_scopes("c1", &[], "notes", &notes),
        s("notes:read")
    );
    assert_eq!(p.max_lifetime("c1", &["contractors".into()]), Some(300));
    assert_eq!(p.max_lifetime("c1", &[]), Some(600));
    assert_eq!(p.max_lifetime("c9", &[]), None);
    assert_eq!(p.exchange("c2"), Some(Some(1)));
    assert_eq!(p.exchange("c1"), None);
}

#[test]
fn default_deny_makes_users_need_a_group_rule() {
    let text = GOOD.replace("default = \"allow\"", "default = \"deny\"");
    let p = Policy::parse(&text, &reg()).unwrap();
    let notes = s("notes:read notes:write notes:admin");
    assert!(p.user_scopes(&["eng".into()], "notes", &notes).is_empty());
    assert_eq!(
        p.user_scopes(&["contractors".into(), "eng".into()], "notes", &notes),
        s("notes:read")
    );
}

#[test]
fn errors_name_their_lines() {
    let bad = r#"version = 1

[[client]]
id = "nobody"
servers = { notes = ["notes:read"] }

[[client]]
id = "c1"
servers = { notes = ["notes:everything"], ghosts = ["x"] }
max_token_lifetime = "3d"
"#;
    let errs = Policy::parse(bad, &reg()).unwrap_err();
    let lines: Vec<Option<usize>> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(4), Some(9), Some(9), Some(10)], "{errs:?}");
    assert!(errs[0].message.contains("nobody"));
    assert!(errs.iter().any(|e| e.message.contains("notes:everything")));
    assert!(errs.iter().any(|e| e.message.contains("ghosts")));
}

#[test]
fn syntax_and_unknown_keys_are_errors_with_lines() {
    let errs = Policy::parse(
        "version = 1\n[[client]]\nid = \"c1\"\nservrs = {}\n",
        &reg(),
    )
    .unwrap_err();
    assert_eq!(errs[0].line, Some(4), "{errs:?}");
    let errs = Policy::parse("version = \n", &reg()).unwrap_err();
    assert_eq!(errs[0].line, Some(1));
    let errs = Policy::parse("version = 2\n", &reg()).unwrap_err();
    assert_eq!(errs[0].line, Some(1));
}

#[test]
fn diff_lists_changes() {
    let a = Policy::parse(GOOD, &reg()).unwrap();
    assert!(diff(&a, &a).is_empty());
    let b = Policy::parse(
        &GOOD.replace(
            "servers = { notes = [\"notes:read\"] }\nmax_token_lifetime = \"10m\"",
            "servers = { notes = [\"notes:read\", \"notes:write\"] }",
        ),
        &reg(),
    )
    .unwrap();
    let d = diff(&a, &b);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].starts_with("- client c1") && d[1].starts_with("+ client c1"));
    assert!(d[1].contains("notes:write"));
    let empty = Policy::default();
    assert_eq!(diff(&empty, &a).len(), 3);
}
