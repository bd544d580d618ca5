//! Signing-key rotation with an injected clock.

use warden_server::rotation::{self, RETIRED_KEY_GRACE};

use crate::support::*;

const DAY: i64 = 86_400;

async fn cc_token(h: &H) -> String {
    let (id, s) = (&h.machine.0, &h.machine.1);
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", NOTES)],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn kid(jwt: &str) -> String {
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwt.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(h: &H) -> Vec<String> {
    let j = h.get("/oauth/jwks.json", &Jar::default()).await.json();
    j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn scheduled_rotation_publishes_ahead_switches_and_retires_after_the_last_token() {
    let h = H::new().await;
    let first = kid(&cc_token(&h).await);
    assert_eq!(jwks_kids(&h).await, vec![first.clone()]);

    // Mid-interval: nothing happens.
    h.clock.set(T0 + 10 * DAY);
    h.app.maintain().await;
    assert_eq!(jwks_kids(&h).await.len(), 1);

    // A day before the interval ends, the successor is published but does not sign.
    h.clock.set(T0 + 29 * DAY);
    h.app.maintain().await;
    let kids = jwks_kids(&h).await;
    assert_eq!(kids.len(), 2, "the new key is in JWKS ahead of use");
    let second = kids.iter().find(|k| **k != first).unwrap().clone();
    h.clock.set(T0 + 30 * DAY - 100);
    let before = cc_token(&h).await;
    assert_eq!(
        kid(&before),
        first,
        "nothing is signed with a key before its activation"
    );

    // At activation the new key signs; the old one retires but stays published.
    h.clock.set(T0 + 30 * DAY);
    h.app.maintain().await;
    let after = cc_token(&h).await;
    assert_eq!(kid(&after), second);
    assert!(jwks_kids(&h).await.contains(&first));
    assert_eq!(
        h.introspect(&before).await["active"],
        true,
        "a token signed before rotation still validates"
    );
    assert_eq!(h.introspect(&after).await["active"], true);
    h.clock.set(T0 + 30 * DAY + 801);
    assert_eq!(
        h.introspect(&before).await["active"],
        false,
        "until it expires"
    );

    // The retired key leaves JWKS only once every token it could have signed has expired.
    h.clock.set(T0 + 30 * DAY + RETIRED_KEY_GRACE - 1);
    h.app.maintain().await;
    assert!(jwks_kids(&h).await.contains(&first));
    h.clock.set(T0 + 30 * DAY + RETIRED_KEY_GRACE);
    h.app.maintain().await;
    assert_eq!(jwks_kids(&h).await, vec![second.clone()]);
    assert!(h.audit_kinds().await.iter().any(|k| k == "key.created"));
    assert!(h.audit_kinds().await.iter().any(|k| k == "key.retired"));
}

#[tokio::test]
async fn a_manual_rotation_refuses_while_one_is_in_progress() {
    let h = H::new().await;
    let s = &h.app.config.keys;
    let alg = h.app.config.tokens.signing_alg;
    rotation::rotate_now(&h.store, &h.app.sealer, alg, s, T0 + 5, false)
        .await
        .unwrap();
    let again = rotation::rotate_now(&h.store, &h.app.sealer, alg, s, T0 + 6, false).await;
    assert!(matches!(
        again,
        Err(warden_server::keyring::KeyRingError::RotationInProgress)
    ));
}
