//! What applying a policy would change, for `warden apply --dry-run`.

use std::collections::BTreeSet;

use super::{Policy, Rule};

fn describe(rule: &Rule) -> String {
    let mut parts: Vec<String> = rule
        .servers
        .iter()
        .map(|(s, scopes)| {
            format!(
                "{s}: [{}]",
                scopes.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    if let Some(l) = rule.max_token_lifetime {
        parts.push(format!("max_token_lifetime {l}s"));
    }
    if let Some(x) = &rule.token_exchange {
        parts.push(match (x.allowed, x.max_depth) {
            (false, _) => "token_exchange denied".into(),
            (true, Some(d)) => format!("token_exchange allowed (depth {d})"),
            (true, None) => "token_exchange allowed".into(),
        });
    }
    parts.join("; ")
}

fn rules(
    kind: &str,
    old: &std::collections::BTreeMap<String, Rule>,
    new: &std::collections::BTreeMap<String, Rule>,
    out: &mut Vec<String>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        match (old.get(k), new.get(k)) {
            (None, Some(n)) => out.push(format!("+ {kind} {k}: {}", describe(n))),
            (Some(o), None) => out.push(format!("- {kind} {k}: {}", describe(o))),
            (Some(o), Some(n)) if o != n => {
                out.push(format!("- {kind} {k}: {}", describe(o)));
                out.push(format!("+ {kind} {k}: {}", describe(n)));
            }
            _ => {}
        }
    }
}

/// The changes from `old` to `new`, one line each, `+`/`-` prefixed; empty when equal.
pub fn diff(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    if old.default != new.default {
        out.push(format!("~ default: {:?} -> {:?}", old.default, new.default).to_lowercase());
    }
    rules("client", &old.clients, &new.clients, &mut out);
    rules("group", &old.groups, &new.groups, &mut out);
    out
}
