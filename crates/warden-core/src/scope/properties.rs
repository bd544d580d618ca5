//! Properties of the scope algebra: narrowing never widens.

use proptest::prelude::*;

use super::*;

/// Scope sets over a small alphabet, so that overlaps are common.
fn scopes() -> impl Strategy<Value = ScopeSet> {
    proptest::collection::btree_set("[a-d](:[rw])?", 0..6).prop_map(ScopeSet)
}

proptest! {
    #[test]
    fn intersection_is_within_both(a in scopes(), b in scopes()) {
        let i = a.intersection(&b);
        prop_assert!(i.is_subset(&a) && i.is_subset(&b));
        prop_assert_eq!(&i, &b.intersection(&a));
        for s in a.iter() {
            prop_assert_eq!(i.contains(s), b.contains(s));
        }
    }

    #[test]
    fn union_covers_both_and_nothing_else(a in scopes(), b in scopes()) {
        let u = a.union(&b);
        prop_assert!(a.is_subset(&u) && b.is_subset(&u));
        prop_assert!(u.iter().all(|s| a.contains(s) || b.contains(s)));
    }

    #[test]
    fn narrowing_twice_never_widens(a in scopes(), b in scopes(), c in scopes()) {
        let once = a.intersection(&b);
        let twice = once.intersection(&c);
        prop_assert!(twice.is_subset(&once));
        prop_assert_eq!(twice, a.intersection(&b.intersection(&c)));
    }

    #[test]
    fn text_form_round_trips(a in scopes()) {
        prop_assert_eq!(ScopeSet::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn parse_keeps_only_valid_tokens(text in "[ -~]{0,40}") {
        if let Ok(set) = ScopeSet::parse(&text) {
            prop_assert!(set.iter().all(valid_token));
            prop_assert!(set.iter().all(|s| text.split(' ').any(|t| t == s)));
        }
    }
}
