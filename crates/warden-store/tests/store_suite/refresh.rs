//! RefreshStore: rotation as compare-and-swap, reuse detection, cascading revocation.

use std::sync::Arc;

use warden_store::{RefreshStore, RotateOutcome, Store, StoreError, TokenState};

use crate::fixtures::{family, hash, NOW};

backend_tests!(
    refresh_rotate_and_detect_reuse,
    refresh_revoke_cascades,
    refresh_list_and_purge,
    refresh_rotate_race,
    refresh_bind_dpop_once,
);

async fn refresh_rotate_and_detect_reuse(store: Store) {
    let families: &dyn RefreshStore = &store;
    let fam = family("f1", "t0");
    families.create(&fam).await.unwrap();
    let err = families.create(&fam).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "refresh family id"),
        "{err:?}"
    );
    let err = families.create(&family("f-other", "t0")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "refresh token"),
        "{err:?}"
    );
    assert_eq!(families.get("f-other").await.unwrap(), None);

    assert_eq!(families.get("f1").await.unwrap().as_ref(), Some(&fam));
    assert_eq!(
        families.find_by_token(&hash("t0")).await.unwrap(),
        Some((fam.clone(), TokenState::Current))
    );

    let rotated = families
        .rotate(
            "f1",
            &hash("t0"),
            &hash("t1"),
            NOW + 7200,
            Some(b"sealed-t1"),
            NOW + 100,
        )
        .await
        .unwrap();
    let RotateOutcome::Rotated(now_fam) = rotated else {
        panic!("expected Rotated, got {rotated:?}");
    };
    assert_eq!(now_fam.generation, 1);
    assert_eq!(now_fam.current_hash, hash("t1"));
    assert_eq!(now_fam.token_expires_at, NOW + 7200);
    assert_eq!(now_fam.rotated_at, NOW + 100);
    assert_eq!(now_fam.grace.as_deref(), Some(&b"sealed-t1"[..]));
    assert_eq!(now_fam.created_at, NOW);
    assert_eq!(families.get("f1").await.unwrap(), Some(now_fam.clone()));

    families
        .rotate("f1", &hash("t1"), &hash("t2"), NOW + 9000, None, NOW + 200)
        .await
        .unwrap();

    // Every old token is still recognised, with the generation it was issued as.
    let (f, state) = families.find_by_token(&hash("t0")).await.unwrap().unwrap();
    assert_eq!(f.id, "f1");
    assert_eq!(f.generation, 2);
    assert_eq!(f.grace, None);
    assert_eq!(
        state,
        TokenState::Superseded {
            generation: 0,
            superseded_at: NOW + 100
        }
    );
    let (_, state) = families.find_by_token(&hash("t1")).await.unwrap().unwrap();
    assert_eq!(
        state,
        TokenState::Superseded {
            generation: 1,
            superseded_at: NOW + 200
        }
    );
    let (_, state) = families.find_by_token(&hash("t2")).await.unwrap().unwrap();
    assert_eq!(state, TokenState::Current);
    assert_eq!(families.find_by_token(&hash("never")).await.unwrap(), None);

    // A stale expected hash loses; an unknown family is NotFound.
    assert_eq!(
        families
            .rotate("f1", &hash("t0"), &hash("t9"), NOW, None, NOW + 300)
            .await
            .unwrap(),
        RotateOutcome::Lost
    );
    assert_eq!(
        families
            .rotate("nope", &hash("t2"), &hash("t9"), NOW, None, NOW + 300)
            .await
            .unwrap(),
        RotateOutcome::NotFound
    );
    // A revoked family cannot rotate, even with the right hash.
    assert_eq!(
        families
            .revoke_family("f1", NOW + 400, "reuse")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        families
            .rotate("f1", &hash("t2"), &hash("t9"), NOW, None, NOW + 500)
            .await
            .unwrap(),
        RotateOutcome::Lost
    );
    let f = families.get("f1").await.unwrap().unwrap();
    assert_eq!(f.revoked_at, Some(NOW + 400));
    assert_eq!(f.revoked_reason.as_deref(), Some("reuse"));
    assert_eq!(f.generation, 2);
}

async fn refresh_revoke_cascades(store: Store) {
    let families: &dyn RefreshStore = &store;
    let parent = family("p", "tp");
    let mut child = family("c", "tc");
    child.parent_family = Some("p".to_owned());
    child.session_id = None;
    let mut grandchild = family("g", "tg");
    grandchild.parent_family = Some("c".to_owned());
    grandchild.session_id = None;
    let mut unrelated = family("u", "tu");
    unrelated.session_id = Some("sess-2".to_owned());
    for f in [&parent, &child, &grandchild, &unrelated] {
        families.create(f).await.unwrap();
    }

    // Revoking the child takes the grandchild along, not the parent.
    assert_eq!(
        families.revoke_family("c", NOW + 1, "admin").await.unwrap(),
        2
    );
    assert_eq!(families.get("p").await.unwrap().unwrap().revoked_at, None);
    // Revoking the parent now revokes only the parent (the rest already are), and
    // keeps the earlier revocation time and reason of the others.
    assert_eq!(
        families.revoke_family("p", NOW + 2, "reuse").await.unwrap(),
        1
    );
    let g = families.get("g").await.unwrap().unwrap();
    assert_eq!(
        (g.revoked_at, g.revoked_reason.as_deref()),
        (Some(NOW + 1), Some("admin"))
    );
    assert_eq!(
        families.revoke_family("p", NOW + 3, "again").await.unwrap(),
        0
    );
    assert_eq!(
        families
            .revoke_family("missing", NOW + 3, "x")
            .await
            .unwrap(),
        0
    );
    assert_eq!(families.get("u").await.unwrap().unwrap().revoked_at, None);

    // By session: the session's family and its descendants.
    let mut s1 = family("s1", "ts1");
    s1.session_id = Some("sess-9".to_owned());
    let mut s1_child = family("s1c", "ts1c");
    s1_child.session_id = None;
    s1_child.parent_family = Some("s1".to_owned());
    families.create(&s1).await.unwrap();
    families.create(&s1_child).await.unwrap();
    assert_eq!(
        families
            .revoke_by_session("sess-9", NOW + 4, "logout")
            .await
            .unwrap(),
        2
    );
    let c = families.get("s1c").await.unwrap().unwrap();
    assert_eq!(c.revoked_reason.as_deref(), Some("logout"));
    assert_eq!(families.get("u").await.unwrap().unwrap().revoked_at, None);
}

async fn refresh_list_and_purge(store: Store) {
    let families: &dyn RefreshStore = &store;
    let a = family("a", "ta");
    let mut b = family("b", "tb");
    b.created_at = NOW + 10;
    b.token_expires_at = NOW + 100;
    let mut other = family("o", "to");
    other.subject = "u2".to_owned();
    other.session_expires_at = NOW + 50;
    for f in [&b, &a, &other] {
        families.create(f).await.unwrap();
    }
    assert_eq!(
        families.list_for_subject("u1").await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        families.list_for_subject("u2").await.unwrap(),
        vec![other.clone()]
    );
    assert!(families.list_for_subject("u3").await.unwrap().is_empty());

    // At NOW+100: "o" (session over) and "b" (current token expired) go.
    assert_eq!(families.purge_expired(NOW + 100).await.unwrap(), 2);
    assert_eq!(families.list_for_subject("u1").await.unwrap(), vec![a]);
    assert_eq!(families.find_by_token(&hash("tb")).await.unwrap(), None);
    assert_eq!(families.purge_expired(NOW + 100).await.unwrap(), 0);
}

async fn refresh_rotate_race(store: Store) {
    store.create(&family("race", "t0")).await.unwrap();
    let families: Arc<dyn RefreshStore> = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u8 {
        let families = families.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let new_hash = hash(&format!("t1-{i}"));
            barrier.wait().await;
            let outcome = families
                .rotate("race", &hash("t0"), &new_hash, NOW + 7200, None, NOW + 1)
                .await
                .unwrap();
            (outcome, new_hash)
        });
    }
    let mut winners = Vec::new();
    let mut lost = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (RotateOutcome::Rotated(f), new_hash) => winners.push((f, new_hash)),
            (RotateOutcome::Lost, _) => lost += 1,
            (other, _) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((winners.len(), lost), (1, 31));
    let (won, new_hash) = winners.pop().unwrap();
    assert_eq!(won.generation, 1);
    let stored = families.get("race").await.unwrap().unwrap();
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.current_hash, new_hash);
    // Only the winner's token was recorded.
    for i in 0..32u8 {
        let h = hash(&format!("t1-{i}"));
        let found = families.find_by_token(&h).await.unwrap();
        assert_eq!(found.is_some(), h == new_hash);
    }
}

/// A family is bound to a DPoP key once, and keeps it.
async fn refresh_bind_dpop_once(store: Store) {
    let mut unbound = family("bind", "b0");
    unbound.dpop_jkt = None;
    store.create(&unbound).await.unwrap();
    store.bind_dpop("bind", "k1").await.unwrap();
    store.bind_dpop("bind", "k2").await.unwrap();
    let got = store.get("bind").await.unwrap().unwrap();
    assert_eq!(got.dpop_jkt.as_deref(), Some("k1"));
}
