//! Server nonces: issued and checked with no shared state, through `verify_proof` too.

use super::*;

const SLOT: i64 = 30;

fn nonce_key() -> NonceKey {
    NonceKey::new(&[7u8; 32])
}

fn nonce_rule(key: &NonceKey) -> ProofRule<'_> {
    ProofRule {
        nonce: Some(NonceRule {
            key,
            slot_secs: SLOT,
        }),
        ..token_rule()
    }
}

fn proof_with_nonce(nonce: &str) -> String {
    proof(&with(claims("POST", TOKEN_URI), "nonce", json!(nonce)))
}

#[test]
fn a_nonce_lives_its_slot_and_the_next() {
    let key = nonce_key();
    let start = NOW - NOW.rem_euclid(SLOT);
    let n = issue_nonce(&key, start, SLOT);
    assert_eq!(n, issue_nonce(&key, start + SLOT - 1, SLOT));
    assert_ne!(n, issue_nonce(&key, start + SLOT, SLOT));
    assert!(!nonce_is_fresh(&key, &n, start - 1, SLOT));
    assert!(nonce_is_fresh(&key, &n, start, SLOT));
    assert!(nonce_is_fresh(&key, &n, start + 2 * SLOT - 1, SLOT));
    assert!(!nonce_is_fresh(&key, &n, start + 2 * SLOT, SLOT));
    // NQCHAR only, and no more than a few dozen characters.
    assert!(
        n.len() <= 40
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    );
}

#[test]
fn a_nonce_made_with_another_key_or_altered_is_refused() {
    let key = nonce_key();
    let n = issue_nonce(&key, NOW, SLOT);
    assert!(!nonce_is_fresh(&NonceKey::new(&[8u8; 32]), &n, NOW, SLOT));
    let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
    raw[7] ^= 1; // the slot
    assert!(!nonce_is_fresh(
        &key,
        &URL_SAFE_NO_PAD.encode(&raw),
        NOW,
        SLOT
    ));
    raw[7] ^= 1;
    let last = raw.len() - 1;
    raw[last] ^= 1; // the tag
    assert!(!nonce_is_fresh(
        &key,
        &URL_SAFE_NO_PAD.encode(&raw),
        NOW,
        SLOT
    ));
    for junk in ["", "!", "AAAA", &n[..n.len() - 2]] {
        assert!(!nonce_is_fresh(&key, junk, NOW, SLOT), "{junk}");
    }
}

#[test]
fn proofs_must_carry_a_fresh_nonce_when_nonces_are_on() {
    let key = nonce_key();
    let rule = nonce_rule(&key);
    let fresh = issue_nonce(&key, NOW, SLOT);
    let previous = issue_nonce(&key, NOW - SLOT, SLOT);
    for n in [&fresh, &previous] {
        let got = check(&proof_with_nonce(n), &rule).unwrap();
        assert_eq!(got.nonce.as_deref(), Some(n.as_str()));
    }
    assert_eq!(
        check(&proof(&claims("POST", TOKEN_URI)), &rule),
        Err(DpopError::MissingNonce)
    );
    let stale = issue_nonce(&key, NOW - 2 * SLOT, SLOT);
    assert_eq!(
        check(&proof_with_nonce(&stale), &rule),
        Err(DpopError::StaleNonce)
    );
    let ahead = issue_nonce(&key, NOW + SLOT, SLOT);
    assert_eq!(
        check(&proof_with_nonce(&ahead), &rule),
        Err(DpopError::StaleNonce)
    );
    let forged = issue_nonce(&NonceKey::new(b"guessed"), NOW, SLOT);
    assert_eq!(
        check(&proof_with_nonce(&forged), &rule),
        Err(DpopError::InvalidNonce)
    );
    for e in [
        DpopError::MissingNonce,
        DpopError::StaleNonce,
        DpopError::InvalidNonce,
    ] {
        assert_eq!(e.error_code(Endpoint::Resource), "use_dpop_nonce");
    }
    // With nonces off, a nonce is returned but not judged.
    let got = check(&proof_with_nonce("anything"), &token_rule()).unwrap();
    assert_eq!(got.nonce.as_deref(), Some("anything"));
}

#[test]
fn the_nonce_key_never_prints() {
    assert_eq!(format!("{:?}", nonce_key()), "NonceKey([REDACTED])");
}
