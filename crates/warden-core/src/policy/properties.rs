//! Properties of policy evaluation: every grant is narrowed by what the server defines,
//! by the user's groups, and by the client's rule; none is ever widened.

use proptest::prelude::*;

use super::*;

const SERVERS: &[&str] = &["notes", "billing"];

fn scopes() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::btree_set("[a-d](:[rw])?", 0..5)
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    scopes().prop_map(ScopeSet::from_iter_valid)
}

fn rule() -> impl Strategy<Value = Rule> {
    let servers = proptest::collection::btree_map(
        proptest::sample::select(SERVERS).prop_map(str::to_owned),
        scopes(),
        0..3,
    );
    (servers, proptest::option::of(1i64..100_000)).prop_map(|(servers, max)| Rule {
        servers,
        max_token_lifetime: max,
        token_exchange: None,
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    let default = prop_oneof![Just(UserDefault::Allow), Just(UserDefault::Deny)];
    let names = |n: &'static [&'static str]| proptest::sample::select(n).prop_map(str::to_owned);
    (
        default,
        proptest::collection::btree_map(names(&["c1", "c2"]), rule(), 0..3),
        proptest::collection::btree_map(names(&["g1", "g2", "g3"]), rule(), 0..4),
    )
        .prop_map(|(default, clients, groups)| Policy {
            default,
            clients,
            groups,
        })
}

fn user_groups() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(vec!["g1", "g2", "g3", "g4"], 0..=4)
        .prop_map(|g| g.into_iter().map(str::to_owned).collect())
}

fn rule_of(p: &Policy, client: &str, server: &str) -> Option<ScopeSet> {
    p.clients.get(client).map(|r| rule_scopes(r, server))
}

proptest! {
    #[test]
    fn client_grants_stay_within_the_server_and_the_rule(
        p in policy(),
        client in "c[1-3]",
        server in proptest::sample::select(SERVERS),
        registered in scope_set(),
        defined in scope_set(),
    ) {
        let got = p.client_scopes(&client, &registered, server, &defined);
        prop_assert!(got.is_subset(&defined));
        let bound = rule_of(&p, &client, server).unwrap_or(registered);
        prop_assert!(got.is_subset(&bound));
    }

    #[test]
    fn delegation_narrows_the_user_allowance(
        p in policy(),
        client in "c[1-3]",
        groups in user_groups(),
        server in proptest::sample::select(SERVERS),
        defined in scope_set(),
    ) {
        let user = p.user_scopes(&groups, server, &defined);
        prop_assert!(user.is_subset(&defined));
        let delegated = p.delegated_scopes(&client, &groups, server, &defined);
        prop_assert!(delegated.is_subset(&user));
        if let Some(rule) = rule_of(&p, &client, server) {
            prop_assert!(delegated.is_subset(&rule));
        }
        let ruled = groups.iter().any(|g| p.groups.contains_key(g));
        if !ruled && p.default == UserDefault::Deny {
            prop_assert!(user.is_empty());
        }
        if ruled {
            // Only what some group of the user's grants.
            for s in user.iter() {
                let granted = groups
                    .iter()
                    .filter_map(|g| p.groups.get(g))
                    .any(|r| r.servers.get(server).is_some_and(|set| set.contains(s)));
                prop_assert!(granted, "{} granted by no group", s);
            }
        }
    }

    #[test]
    fn the_lifetime_bound_is_the_tightest_that_applies(
        p in policy(),
        client in "c[1-3]",
        groups in user_groups(),
    ) {
        let bounds: Vec<i64> = p
            .clients
            .get(&client)
            .and_then(|r| r.max_token_lifetime)
            .into_iter()
            .chain(groups.iter().filter_map(|g| p.groups.get(g)?.max_token_lifetime))
            .collect();
        prop_assert_eq!(p.max_lifetime(&client, &groups), bounds.iter().copied().min());
    }
}
