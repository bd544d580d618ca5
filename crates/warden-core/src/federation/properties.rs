use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn group() -> impl Strategy<Value = String> {
    "[a-d]{1,2}"
}

proptest! {
    /// Whatever the token says, a user is only ever put in groups the map names, and only
    /// for a provider group the token carries.
    #[test]
    fn mapped_groups_come_only_from_the_map(
        token_groups in prop::collection::vec(
            prop_oneof![group().prop_map(Value::from), any::<i64>().prop_map(Value::from)],
            0..8,
        ),
        map in prop::collection::vec((group(), group()), 0..8),
    ) {
        let mut claims = Map::new();
        claims.insert("realm_access".into(), json!({ "roles": token_groups }));
        let got = map_groups(&claims, "realm_access.roles", &map);
        let carried: BTreeSet<&str> = token_groups.iter().filter_map(Value::as_str).collect();
        for g in &got {
            prop_assert!(map.iter().any(|(idp, w)| w == g && carried.contains(idp.as_str())));
        }
        let expected: BTreeSet<&str> = map
            .iter()
            .filter(|(idp, _)| carried.contains(idp.as_str()))
            .map(|(_, w)| w.as_str())
            .collect();
        prop_assert_eq!(got.iter().map(String::as_str).collect::<BTreeSet<_>>(), expected);
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    }

    /// A mapping written as `IDP=WARDEN` parses back to itself.
    #[test]
    fn a_written_mapping_parses_back(
        idp in "[A-Za-z0-9=,. -]{0,20}[A-Za-z0-9=,.-]",
        warden in "[a-z0-9_:-]{1,64}",
    ) {
        let idp = idp.trim().to_owned();
        prop_assume!(!idp.is_empty());
        let parsed = parse_group_mapping(&format!("{idp}={warden}"));
        prop_assert_eq!(parsed, Ok((idp, warden)));
    }

    /// Routing ignores the case of the domain, never of anything else.
    #[test]
    fn routing_ignores_domain_case(local in "[a-z0-9.+]{1,10}", domain in "[a-z]{1,8}\\.[a-z]{2,4}") {
        let domains = vec![domain.clone()];
        let candidates: Vec<(&str, &[String])> = vec![("corp", &domains)];
        let upper = format!("{local}@{}", domain.to_uppercase());
        prop_assert_eq!(idp_for_email(&upper, &candidates), Some("corp"));
        let other = format!("{local}@x{domain}");
        prop_assert_eq!(idp_for_email(&other, &candidates), None);
    }
}
