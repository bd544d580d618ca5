//! DpopProofStore: a proof is claimed once, across every connection, until it expires.

use std::sync::Arc;

use warden_store::{DpopProofStore, Store};

use crate::fixtures::{hash, NOW};

backend_tests!(dpop_claim_once, dpop_claim_race);
backend_tests_with_url!(dpop_claim_race_across_stores);

async fn dpop_claim_once(store: Store) {
    let proofs: &dyn DpopProofStore = &store;
    assert!(proofs.claim_once(&hash("p1"), NOW + 60, NOW).await.unwrap());
    assert!(!proofs.claim_once(&hash("p1"), NOW + 60, NOW).await.unwrap());
    // A later claim does not extend the first.
    assert!(!proofs
        .claim_once(&hash("p1"), NOW + 600, NOW + 59)
        .await
        .unwrap());
    assert!(proofs.claim_once(&hash("p2"), NOW + 60, NOW).await.unwrap());
    // Expired: the proof is refused as too old before it gets here, so the row may go.
    assert!(proofs
        .claim_once(&hash("p1"), NOW + 120, NOW + 60)
        .await
        .unwrap());
    assert!(!proofs
        .claim_once(&hash("p1"), NOW + 120, NOW + 61)
        .await
        .unwrap());
    assert_eq!(proofs.purge_used_proofs(NOW + 60).await.unwrap(), 1);
    assert!(!proofs
        .claim_once(&hash("p1"), NOW + 120, NOW + 61)
        .await
        .unwrap());
    assert_eq!(proofs.purge_used_proofs(NOW + 120).await.unwrap(), 1);
    assert!(proofs
        .claim_once(&hash("p1"), NOW + 200, NOW + 121)
        .await
        .unwrap());
}

/// 32 claims of one proof at once: exactly one wins.
async fn dpop_claim_race(store: Store) {
    let proofs: Arc<dyn DpopProofStore> = Arc::new(store);
    assert_eq!(race(vec![proofs; 32], "race").await, 1);
}

/// The same through two pools on one database, as two replicas would claim: exactly one
/// wins, also over a row left expired by an earlier claim.
async fn dpop_claim_race_across_stores(store: Store, url: String) {
    let other = Store::open(&url).await.unwrap();
    assert!(store
        .claim_once(&hash("stale"), NOW - 1, NOW - 61)
        .await
        .unwrap());
    let replicas: Vec<Arc<dyn DpopProofStore>> = (0..32)
        .map(|i| -> Arc<dyn DpopProofStore> {
            if i % 2 == 0 {
                Arc::new(store.clone())
            } else {
                Arc::new(other.clone())
            }
        })
        .collect();
    assert_eq!(race(replicas.clone(), "replicas").await, 1);
    assert_eq!(race(replicas, "stale").await, 1);
    other.close().await;
}

/// Claims `tag` once through each of `stores`, all released together; how many won.
async fn race(stores: Vec<Arc<dyn DpopProofStore>>, tag: &str) -> usize {
    let barrier = Arc::new(tokio::sync::Barrier::new(stores.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for proofs in stores {
        let barrier = barrier.clone();
        let key = hash(tag);
        tasks.spawn(async move {
            barrier.wait().await;
            proofs.claim_once(&key, NOW + 60, NOW).await
        });
    }
    let mut won = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap().unwrap() {
            won += 1;
        }
    }
    won
}
