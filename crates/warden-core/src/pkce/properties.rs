//! Properties of PKCE: a challenge accepts exactly the verifier that made it.

use proptest::prelude::*;

use super::*;

fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

proptest! {
    #[test]
    fn the_verifier_that_made_the_challenge_passes(v in verifier()) {
        let challenge = s256(&v);
        prop_assert_eq!(check_challenge(Some(&challenge), Some("S256")), Ok(()));
        prop_assert_eq!(verify(&v, &challenge), Ok(()));
    }

    #[test]
    fn any_other_verifier_fails(v in verifier(), other in verifier()) {
        prop_assume!(v != other);
        prop_assert_eq!(verify(&other, &s256(&v)), Err(PkceError::Mismatch));
    }

    #[test]
    fn a_changed_challenge_fails(v in verifier(), at in 0usize..43, c in "[A-Za-z0-9_-]") {
        let challenge = s256(&v);
        let mut changed = challenge.clone();
        changed.replace_range(at..=at, &c);
        prop_assume!(changed != challenge);
        prop_assert_eq!(verify(&v, &changed), Err(PkceError::Mismatch));
    }

    #[test]
    fn a_malformed_verifier_fails_whatever_the_challenge(v in "[ -~]{0,130}") {
        let well_formed = (43..=128).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        prop_assume!(!well_formed);
        prop_assert_eq!(verify(&v, &s256(&v)), Err(PkceError::VerifierFormat));
    }
}
