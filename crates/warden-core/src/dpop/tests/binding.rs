//! `cnf_for` and `check_binding`: what a resource server checks about a token's binding.

use super::*;

const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const OTHER: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

#[test]
fn cnf_names_the_key() {
    assert_eq!(cnf_for(JKT), json!({ "jkt": JKT }));
}

#[test]
fn a_bound_token_needs_the_dpop_scheme_and_a_proof_by_its_key() {
    let cnf = cnf_for(JKT);
    assert_eq!(check_binding(Some(&cnf), Some(JKT), true), Ok(()));
    assert_eq!(
        check_binding(Some(&cnf), Some(OTHER), true),
        Err(DpopError::KeyMismatch)
    );
    assert_eq!(
        check_binding(Some(&cnf), None, true),
        Err(DpopError::MissingProof)
    );
    // §7.2: never accepted as a bearer token, even with a good proof alongside.
    assert_eq!(
        check_binding(Some(&cnf), Some(JKT), false),
        Err(DpopError::BoundTokenAsBearer)
    );
    assert_eq!(
        check_binding(Some(&cnf), None, false),
        Err(DpopError::BoundTokenAsBearer)
    );
}

#[test]
fn an_unbound_token_is_a_bearer_token_only() {
    assert_eq!(check_binding(None, None, false), Ok(()));
    assert_eq!(check_binding(None, Some(JKT), false), Ok(()));
    assert_eq!(
        check_binding(None, Some(JKT), true),
        Err(DpopError::UnboundTokenAsDpop)
    );
    assert_eq!(
        check_binding(None, None, true),
        Err(DpopError::UnboundTokenAsDpop)
    );
}

#[test]
fn a_confirmation_warden_does_not_know_is_refused_either_way() {
    for cnf in [
        json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
        json!({ "jkt": 42 }),
        json!(JKT),
        Value::Null,
    ] {
        for scheme_is_dpop in [true, false] {
            assert_eq!(
                check_binding(Some(&cnf), Some(JKT), scheme_is_dpop),
                Err(DpopError::UnsupportedConfirmation),
                "{cnf} {scheme_is_dpop}"
            );
        }
    }
}

#[test]
fn a_verified_proof_and_a_bound_token_fit_together() {
    let proof = check(&proof(&resource_claims()), &resource_rule()).unwrap();
    let cnf = cnf_for(&proof.jkt);
    assert_eq!(check_binding(Some(&cnf), Some(&proof.jkt), true), Ok(()));
    let ed = key(SigningAlg::EdDsa);
    let stolen = sign(ed, &header(ed), &resource_claims());
    let thief = check(&stolen, &resource_rule()).unwrap();
    assert_eq!(
        check_binding(Some(&cnf), Some(&thief.jkt), true),
        Err(DpopError::KeyMismatch)
    );
}

#[test]
fn a_replay_key_names_one_jti_of_one_key() {
    let a = check(&proof(&resource_claims()), &resource_rule()).unwrap();
    assert_eq!(a.replay_key(), a.clone().replay_key());
    let other_jti = Proof {
        jti: "another".into(),
        ..a.clone()
    };
    assert_ne!(a.replay_key(), other_jti.replay_key());
    let ed = key(SigningAlg::EdDsa);
    let other_key = check(&sign(ed, &header(ed), &resource_claims()), &resource_rule()).unwrap();
    assert_eq!(other_key.jti, a.jti);
    assert_ne!(a.replay_key(), other_key.replay_key());
    // The separator keeps `jkt`+`jti` splits apart.
    let shifted = Proof {
        jkt: format!("{}x", a.jkt),
        jti: a.jti[1..].to_owned(),
        ..a.clone()
    };
    assert_ne!(a.replay_key(), shifted.replay_key());
}

#[test]
fn a_grant_binding_is_never_dropped() {
    for holder in [GrantHolder::Key, GrantHolder::ConfidentialClient] {
        assert_eq!(
            grant_binding(Some(JKT), holder, None),
            Err(DpopError::MissingProof)
        );
        assert_eq!(
            grant_binding(Some(JKT), holder, Some(JKT)),
            Ok(Some(JKT.to_owned()))
        );
        // An unbound grant stays a bearer grant without a proof, and is bound with one.
        assert_eq!(grant_binding(None, holder, None), Ok(None));
        assert_eq!(
            grant_binding(None, holder, Some(OTHER)),
            Ok(Some(OTHER.to_owned()))
        );
    }
    assert_eq!(
        grant_binding(Some(JKT), GrantHolder::Key, Some(OTHER)),
        Err(DpopError::KeyMismatch)
    );
    // A confidential client may move its refresh family to a new key (§5), bound still.
    assert_eq!(
        grant_binding(Some(JKT), GrantHolder::ConfidentialClient, Some(OTHER)),
        Ok(Some(OTHER.to_owned()))
    );
}

#[test]
fn a_thumbprint_has_its_form() {
    assert!(is_thumbprint(JKT));
    let made = check(&proof(&resource_claims()), &resource_rule())
        .unwrap()
        .jkt;
    assert!(is_thumbprint(&made));
    for bad in [
        "",
        "abc",
        &format!("{JKT}A"),
        &JKT.replace('-', "+"),
        &JKT.replace('Z', "="),
    ] {
        assert!(!is_thumbprint(bad), "{bad}");
    }
}
