//! The fleet policy file (`warden apply -f`), `warden_core::policy::Policy::parse`, against
//! a fixed registry.
//!
//! Properties: a policy that parses names only servers and scopes the registry defines
//! and clients it knows, by id; evaluating it never grants a scope the server does not
//! define; it survives the JSON round trip it takes through the store; and it differs
//! from itself by nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::policy::{diff, Policy, Registry};
use warden_core::scope::ScopeSet;

struct Fixed;

const SERVERS: &[(&str, &str)] = &[
    ("notes", "notes:read notes:write notes:admin"),
    ("billing", "billing:read"),
];
const CLIENTS: &[(&str, &str)] = &[("c1", "ci-agent"), ("c2", "orchestrator")];

impl Registry for Fixed {
    fn server_scopes(&self, name: &str) -> Option<ScopeSet> {
        let (_, scopes) = SERVERS.iter().find(|(n, _)| *n == name)?;
        ScopeSet::parse(scopes).ok()
    }

    fn client_id(&self, key: &str) -> Option<String> {
        CLIENTS
            .iter()
            .find(|(id, name)| *id == key || *name == key)
            .map(|(id, _)| (*id).to_owned())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse(text, &Fixed) else {
        return;
    };
    for (id, rule) in &policy.clients {
        assert!(
            CLIENTS.iter().any(|(c, _)| c == id),
            "unknown client {id:?}"
        );
        for (server, scopes) in &rule.servers {
            let defined = Fixed.server_scopes(server).expect("a registered server");
            assert!(
                scopes.iter().all(|s| defined.contains(s)),
                "undefined scope"
            );
        }
    }
    for rule in policy.groups.values() {
        for (server, scopes) in &rule.servers {
            let defined = Fixed.server_scopes(server).expect("a registered server");
            assert!(
                scopes.iter().all(|s| defined.contains(s)),
                "undefined scope"
            );
        }
    }

    let groups: Vec<String> = policy.groups.keys().cloned().collect();
    for (server, _) in SERVERS {
        let defined = Fixed.server_scopes(server).expect("a registered server");
        for (client, _) in CLIENTS {
            let registered = ScopeSet::parse("notes:read billing:read other").expect("valid");
            let c = policy.client_scopes(client, &registered, server, &defined);
            assert!(c.is_subset(&defined));
            let d = policy.delegated_scopes(client, &groups, server, &defined);
            let u = policy.user_scopes(&groups, server, &defined);
            assert!(d.is_subset(&u) && u.is_subset(&defined), "a grant widened");
        }
    }

    let json = serde_json::to_string(&policy).expect("a policy serializes");
    let back: Policy = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back, policy);
    assert!(diff(&policy, &policy).is_empty());
});
