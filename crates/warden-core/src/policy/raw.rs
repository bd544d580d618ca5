//! The as-written policy document, with spans, and its checks against the registry.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use super::{
    duration, ExchangeRule, Policy, PolicyError, Registry, Rule, UserDefault, POLICY_VERSION,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<u32>,
    #[serde(default)]
    default: Option<Spanned<UserDefault>>,
    #[serde(default)]
    client: Vec<Spanned<RawClient>>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Spanned<String>,
    #[serde(default)]
    servers: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    max_token_lifetime: Option<Spanned<String>>,
    token_exchange: Option<Spanned<RawExchange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    servers: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    max_token_lifetime: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    allowed: bool,
    max_depth: Option<u32>,
}

struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, pos: usize) -> usize {
        self.0.get(..pos).map_or(1, |t| t.matches('\n').count() + 1)
    }

    fn err<T>(&self, span: &Spanned<T>, message: String) -> PolicyError {
        PolicyError {
            line: Some(self.at(span.span().start)),
            message,
        }
    }
}

pub(super) fn parse(text: &str, registry: &dyn Registry) -> Result<Policy, Vec<PolicyError>> {
    let lines = Lines(text);
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        vec![PolicyError {
            line: e.span().map(|s| lines.at(s.start)),
            message: e.message().to_owned(),
        }]
    })?;
    let mut errors = Vec::new();
    if *raw.version.get_ref() != POLICY_VERSION {
        errors.push(lines.err(
            &raw.version,
            format!("this warden reads policy version {POLICY_VERSION}"),
        ));
    }
    let mut policy = Policy {
        default: raw.default.map(|d| d.into_inner()).unwrap_or_default(),
        ..Policy::default()
    };

    let servers_rule = |servers: &BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
                        errors: &mut Vec<PolicyError>| {
        let mut out = BTreeMap::new();
        for (server, scopes) in servers {
            let Some(defined) = registry.server_scopes(server.get_ref()) else {
                errors.push(lines.err(
                    server,
                    format!("no server named {:?} is registered", server.get_ref()),
                ));
                continue;
            };
            let mut set = BTreeSet::new();
            for scope in scopes {
                if !defined.contains(scope.get_ref()) {
                    errors.push(lines.err(
                        scope,
                        format!(
                            "server {:?} defines no scope {:?}",
                            server.get_ref(),
                            scope.get_ref()
                        ),
                    ));
                } else {
                    set.insert(scope.get_ref().clone());
                }
            }
            out.insert(server.get_ref().clone(), set);
        }
        out
    };
    let lifetime = |v: &Option<Spanned<String>>, errors: &mut Vec<PolicyError>| -> Option<i64> {
        let v = v.as_ref()?;
        match duration(v.get_ref()) {
            Ok(s) if (30..=86_400).contains(&s) => Some(s),
            Ok(_) => {
                errors.push(lines.err(v, "max_token_lifetime must be between 30s and 1d".into()));
                None
            }
            Err(m) => {
                errors.push(lines.err(v, m));
                None
            }
        }
    };

    for c in &raw.client {
        let c = c.get_ref();
        let Some(id) = registry.client_id(c.id.get_ref()) else {
            errors.push(lines.err(
                &c.id,
                format!("no client with id or unique name {:?}", c.id.get_ref()),
            ));
            continue;
        };
        if policy.clients.contains_key(&id) {
            errors.push(lines.err(&c.id, format!("client {:?} has two rules", c.id.get_ref())));
            continue;
        }
        let rule = Rule {
            servers: servers_rule(&c.servers, &mut errors),
            max_token_lifetime: lifetime(&c.max_token_lifetime, &mut errors),
            token_exchange: c.token_exchange.as_ref().map(|x| ExchangeRule {
                allowed: x.get_ref().allowed,
                max_depth: x.get_ref().max_depth,
            }),
        };
        policy.clients.insert(id, rule);
    }
    for g in &raw.group {
        let g = g.get_ref();
        let name = g.name.get_ref();
        if name.is_empty() || name.len() > 64 {
            errors.push(lines.err(&g.name, "a group name must be 1-64 characters".into()));
            continue;
        }
        if policy.groups.contains_key(name) {
            errors.push(lines.err(&g.name, format!("group {name:?} has two rules")));
            continue;
        }
        let rule = Rule {
            servers: servers_rule(&g.servers, &mut errors),
            max_token_lifetime: lifetime(&g.max_token_lifetime, &mut errors),
            token_exchange: None,
        };
        policy.groups.insert(name.clone(), rule);
    }
    if errors.is_empty() {
        Ok(policy)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}
