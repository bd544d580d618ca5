//! Client-secret rotation with an overlap window, on an injected clock.

use serde_json::json;
use warden_proto::admin::RotateSecret;
use warden_server::admin::{clients, Actor};
use warden_store::ClientStore;

use crate::admin_support::*;
use crate::support::*;

async fn cc(h: &H, id: &str, secret: &str) -> u16 {
    h.token(
        &[("grant_type", "client_credentials"), ("resource", NOTES)],
        Some((id, secret)),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn old_and_new_secrets_both_work_in_the_overlap_and_only_the_new_one_after() {
    let h = H::new().await;
    let (id, old) = h.machine.clone();
    let t = admin_token(&h, &["admin:write"]).await;
    let r = post(
        &h,
        &format!("/admin/v1/clients/{id}/secrets"),
        &t,
        json!({ "overlap_secs": 3_600 }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let new = v["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(v["previous_secrets_expire_at"], T0 + 3_600);
    assert_eq!(v["client"]["active_secrets"], 2);
    // The answer is the only place the secret appears; the store has its hash.
    let shown = get(&h, &format!("/admin/v1/clients/{id}"), &t).await;
    assert!(!shown.body.contains(&new));

    // In the window: both.
    assert_eq!(cc(&h, &id, &old).await, 200);
    assert_eq!(cc(&h, &id, &new).await, 200);
    h.clock.advance(3_599);
    assert_eq!(cc(&h, &id, &old).await, 200);
    // After it: only the new one.
    h.clock.advance(1);
    assert_eq!(cc(&h, &id, &old).await, 401);
    assert_eq!(cc(&h, &id, &new).await, 200);

    let events = h.audit_kinds().await;
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "client.secret_rotated")
            .count(),
        1
    );

    // The next rotation drops the expired secret; overlap 0 ends the current one at once.
    let rotated = clients::rotate_secret(
        &h.app,
        &Actor::Local,
        &id,
        &RotateSecret {
            overlap_secs: Some(0),
        },
    )
    .await
    .unwrap();
    assert_eq!(cc(&h, &id, &new).await, 401);
    assert_eq!(cc(&h, &id, &rotated.client_secret).await, 200);
    let rec = ClientStore::get(&h.store, &id).await.unwrap().unwrap();
    assert_eq!(rec.secrets.len(), 2, "the expired secret is gone: {rec:?}");
}

#[tokio::test]
async fn concurrent_rotations_both_take_effect() {
    let h = H::new().await;
    let id = h.machine.0.clone();
    let req = RotateSecret::default();
    let (a, b) = tokio::join!(
        clients::rotate_secret(&h.app, &Actor::Local, &id, &req),
        clients::rotate_secret(&h.app, &Actor::Local, &id, &req),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(cc(&h, &id, &a.client_secret).await, 200);
    assert_eq!(cc(&h, &id, &b.client_secret).await, 200);
    assert_eq!(cc(&h, &id, &h.machine.1).await, 200, "in its overlap");
    let rec = ClientStore::get(&h.store, &id).await.unwrap().unwrap();
    assert_eq!(rec.secrets.len(), 3);
}

#[tokio::test]
async fn rotation_refuses_bad_overlaps_and_piles_of_live_secrets() {
    let h = H::new().await;
    let id = h.machine.0.clone();
    let rotate = async |overlap| {
        let req = RotateSecret {
            overlap_secs: Some(overlap),
        };
        clients::rotate_secret(&h.app, &Actor::Local, &id, &req).await
    };
    assert!(rotate(-1)
        .await
        .unwrap_err()
        .to_string()
        .contains("overlap"));
    assert!(rotate(31 * 86_400).await.is_err());
    for _ in 0..4 {
        rotate(3_600).await.unwrap();
    }
    let err = rotate(3_600).await.unwrap_err();
    assert!(err.to_string().contains("still work"), "{err}");
    rotate(0).await.unwrap();
}
