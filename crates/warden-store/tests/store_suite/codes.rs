//! CodeStore: single-use take, expiry, purge, and the race for one code.

use std::sync::Arc;

use warden_store::{CodeStore, Store, StoreError, TakeOutcome};

use crate::fixtures::{code, hash, NOW};

backend_tests!(
    code_take_once,
    code_expired_is_never_taken,
    code_purge,
    code_take_race
);

async fn code_take_once(store: Store) {
    let codes: &dyn CodeStore = &store;
    let issued = code("k1", NOW + 60);
    codes.insert(&issued).await.unwrap();

    let err = codes.insert(&issued).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(f) if f == "authorization code"),
        "{err:?}"
    );

    let mut expected = issued.clone();
    expected.used_at = Some(NOW + 1);
    assert_eq!(
        codes.take(&issued.code_hash, NOW + 1).await.unwrap(),
        TakeOutcome::Taken(expected.clone())
    );
    // A replay reports the record so the caller can revoke its family.
    assert_eq!(
        codes.take(&issued.code_hash, NOW + 2).await.unwrap(),
        TakeOutcome::AlreadyUsed(expected.clone())
    );
    // Still a replay after expiry: that is the case the caller must act on.
    assert_eq!(
        codes.take(&issued.code_hash, NOW + 600).await.unwrap(),
        TakeOutcome::AlreadyUsed(expected)
    );
    assert_eq!(
        codes.take(&hash("unknown"), NOW).await.unwrap(),
        TakeOutcome::NotFound
    );
}

async fn code_expired_is_never_taken(store: Store) {
    let codes: &dyn CodeStore = &store;
    let issued = code("k2", NOW + 60);
    codes.insert(&issued).await.unwrap();
    // expires_at is the first instant at which the code is refused.
    assert_eq!(
        codes.take(&issued.code_hash, NOW + 60).await.unwrap(),
        TakeOutcome::Expired
    );
    assert_eq!(
        codes.take(&issued.code_hash, NOW + 61).await.unwrap(),
        TakeOutcome::Expired
    );
    // Refusal does not mark it used, and going back in time cannot revive it twice.
    assert!(matches!(
        codes.take(&issued.code_hash, NOW + 59).await.unwrap(),
        TakeOutcome::Taken(_)
    ));
}

async fn code_purge(store: Store) {
    let codes: &dyn CodeStore = &store;
    codes.insert(&code("fresh", NOW + 60)).await.unwrap();
    codes.insert(&code("stale", NOW + 10)).await.unwrap();
    codes
        .insert(&code("used-long-ago", NOW + 60))
        .await
        .unwrap();
    codes
        .insert(&code("used-recently", NOW + 60))
        .await
        .unwrap();
    assert!(matches!(
        codes.take(&hash("used-long-ago"), NOW).await.unwrap(),
        TakeOutcome::Taken(_)
    ));
    assert!(matches!(
        codes.take(&hash("used-recently"), NOW + 50).await.unwrap(),
        TakeOutcome::Taken(_)
    ));

    // At NOW+55, keeping used codes for 30 s: "stale" expired unused, "used-long-ago"
    // was redeemed 55 s ago.
    assert_eq!(codes.purge_expired(NOW + 55, 30).await.unwrap(), 2);
    assert_eq!(
        codes.take(&hash("stale"), NOW + 55).await.unwrap(),
        TakeOutcome::NotFound
    );
    assert_eq!(
        codes.take(&hash("used-long-ago"), NOW + 55).await.unwrap(),
        TakeOutcome::NotFound
    );
    assert!(matches!(
        codes.take(&hash("used-recently"), NOW + 55).await.unwrap(),
        TakeOutcome::AlreadyUsed(_)
    ));
    assert!(matches!(
        codes.take(&hash("fresh"), NOW + 55).await.unwrap(),
        TakeOutcome::Taken(_)
    ));
    assert_eq!(codes.purge_expired(NOW + 55, 30).await.unwrap(), 0);
}

async fn code_take_race(store: Store) {
    let issued = code("race", NOW + 60);
    store.insert(&issued).await.unwrap();
    let codes: Arc<dyn CodeStore> = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let codes = codes.clone();
        let barrier = barrier.clone();
        let code_hash = issued.code_hash.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            codes.take(&code_hash, NOW + 1 + i % 3).await
        });
    }
    let (mut taken, mut replayed) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().unwrap() {
            TakeOutcome::Taken(_) => taken += 1,
            TakeOutcome::AlreadyUsed(rec) => {
                assert!(rec.used_at.is_some());
                replayed += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((taken, replayed), (1, 31));
}
