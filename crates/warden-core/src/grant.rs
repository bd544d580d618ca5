//! The scope a grant issues: one rule for the authorization request, the authorization
//! code, refresh, client credentials and token exchange.
//!
//! Every grant has two bounds:
//!
//! - a **ceiling**, what the grant can ever carry: the scopes the resource defines (an
//!   authorization request, client credentials), the scopes consented to (a code and the
//!   refresh tokens after it), or the subject token's scopes (token exchange). A `scope`
//!   parameter that names anything above the ceiling is refused with `invalid_scope`
//!   (RFC 6749 §3.3 and §6: a refresh "MUST NOT include any scope not originally
//!   granted"), never silently trimmed: a client asking for more than it can have is told.
//! - what is **allowed now**: the scopes the resource still defines, the fleet policy,
//!   the client's registration. The request is narrowed to these without an error
//!   (RFC 6749 §3.3 lets the server issue less than asked, and the token response names
//!   the scope issued), and an empty result is `invalid_scope`.
//!
//! Without a `scope` parameter the request is the whole ceiling. The result is always a
//! subset of both bounds: no grant ever widens.

use crate::scope::{ScopeError, ScopeSet};

/// Why a grant issues no scope. Every variant is `invalid_scope`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRefusal {
    /// The `scope` parameter does not parse.
    #[error("{0}")]
    Malformed(ScopeError),
    /// The request names a scope above the grant's ceiling.
    #[error("scope {0} is beyond what this grant can carry")]
    Exceeds(String),
    /// Nothing requested is allowed now.
    #[error("none of the requested scopes is allowed for this client on this resource")]
    NothingAllowed,
}

/// The scope to issue for `requested` (the raw `scope` parameter, if any) under
/// `ceiling` and `allowed`; see the module docs.
pub fn narrow_scope(
    requested: Option<&str>,
    ceiling: &ScopeSet,
    allowed: &ScopeSet,
) -> Result<ScopeSet, ScopeRefusal> {
    let requested = match requested {
        Some(text) => ScopeSet::parse(text).map_err(ScopeRefusal::Malformed)?,
        None => ceiling.clone(),
    };
    if let Some(beyond) = requested.iter().find(|s| !ceiling.contains(s)) {
        return Err(ScopeRefusal::Exceeds(beyond.chars().take(64).collect()));
    }
    let issued = requested.intersection(allowed);
    if issued.is_empty() {
        return Err(ScopeRefusal::NothingAllowed);
    }
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn no_parameter_asks_for_the_ceiling_narrowed_to_what_is_allowed() {
        let got = narrow_scope(None, &set("a b c"), &set("b c d")).unwrap();
        assert_eq!(got, set("b c"));
    }

    #[test]
    fn a_request_within_the_ceiling_is_narrowed_silently() {
        let got = narrow_scope(Some("a b"), &set("a b c"), &set("b")).unwrap();
        assert_eq!(got, set("b"));
    }

    #[test]
    fn a_request_above_the_ceiling_is_refused_not_trimmed() {
        assert_eq!(
            narrow_scope(Some("a z"), &set("a b"), &set("a b z")),
            Err(ScopeRefusal::Exceeds("z".into()))
        );
    }

    #[test]
    fn nothing_allowed_and_malformed_are_refused() {
        assert_eq!(
            narrow_scope(Some("a"), &set("a b"), &set("b")),
            Err(ScopeRefusal::NothingAllowed)
        );
        assert_eq!(
            narrow_scope(None, &ScopeSet::default(), &set("b")),
            Err(ScopeRefusal::NothingAllowed)
        );
        assert!(matches!(
            narrow_scope(Some("a\"b"), &set("a"), &set("a")),
            Err(ScopeRefusal::Malformed(_))
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn scopes() -> impl Strategy<Value = ScopeSet> {
            proptest::collection::btree_set("[a-d](:[rw])?", 0..6)
                .prop_map(ScopeSet::from_iter_valid)
        }

        proptest! {
            /// Whatever is asked, what is issued is within both bounds, contains only
            /// what was asked, and a request above the ceiling is refused, never trimmed.
            #[test]
            fn a_grant_never_widens(
                asked in proptest::option::of(scopes()),
                ceiling in scopes(),
                allowed in scopes(),
            ) {
                let text = asked.as_ref().map(ScopeSet::to_string);
                match narrow_scope(text.as_deref(), &ceiling, &allowed) {
                    Ok(issued) => {
                        prop_assert!(!issued.is_empty());
                        prop_assert!(issued.is_subset(&ceiling));
                        prop_assert!(issued.is_subset(&allowed));
                        if let Some(asked) = &asked {
                            prop_assert!(issued.is_subset(asked));
                        }
                    }
                    Err(ScopeRefusal::Exceeds(_)) => {
                        let asked = asked.unwrap_or_default();
                        prop_assert!(!asked.is_subset(&ceiling));
                    }
                    Err(ScopeRefusal::NothingAllowed) => {
                        let asked = asked.unwrap_or_else(|| ceiling.clone());
                        prop_assert!(asked.is_subset(&ceiling));
                        prop_assert!(asked.intersection(&allowed).is_empty());
                    }
                    Err(ScopeRefusal::Malformed(e)) => prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
