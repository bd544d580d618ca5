//! AuditStore: the hash chain under concurrency, tampering and pruning.

use std::sync::Arc;

use serde_json::json;
use warden_store::{
    audit_event_hash, AuditDetail, AuditFilter, AuditStore, NewAuditEvent, Store, VerifyReport,
    AUDIT_GENESIS_HASH,
};

use crate::fixtures::event;

/// Waits for `tasks`, each returning the seqs its appends got, and asserts that each
/// appender saw its own events in increasing order and that together they are exactly
/// `1..=n`: unique, with no gap.
async fn assert_seqs_cover(mut tasks: tokio::task::JoinSet<Vec<i64>>, n: i64) {
    let mut seqs = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let mine = joined.unwrap();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        seqs.extend(mine);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "unique and gapless");
}

/// Asserts what verifying `audit`'s chain reports.
async fn assert_verifies(audit: &dyn AuditStore, checked: u64, first_broken: Option<i64>) {
    assert_eq!(
        audit.verify().await.unwrap(),
        VerifyReport {
            checked,
            first_broken
        }
    );
}
use crate::harness::raw_execute;

const T0: i64 = 1_700_000_000_000;

backend_tests!(
    audit_append_query_verify,
    audit_pages_visit_every_event_once,
    audit_text_detail_is_stored_as_written,
    audit_concurrent_appends,
    audit_prune_keeps_chain
);
backend_tests_with_url!(
    audit_verify_detects_edit,
    audit_verify_detects_deletion,
    audit_appends_from_two_stores,
    audit_failed_batch_writes_nothing
);

async fn audit_append_query_verify(store: Store) {
    let audit: &dyn AuditStore = &store;
    assert_verifies(audit, 0, None).await;
    assert!(audit.append(Vec::new()).await.unwrap().is_empty());

    let mut login = event(T0, "login");
    login.client_id = None;
    let mut call = event(T0 + 5, "tool.call");
    call.server = Some("files".to_owned());
    call.detail = json!({ "tool": "read_file", "nested": { "b": 2, "a": 1 } }).into();
    assert_eq!(
        audit
            .append(vec![login, event(T0 + 1, "token.issued")])
            .await
            .unwrap(),
        vec![1, 2]
    );
    assert_eq!(audit.append(vec![call.clone()]).await.unwrap(), vec![3]);

    let all = audit.query(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[0].prev_hash, AUDIT_GENESIS_HASH.to_vec());
    assert_eq!(all[0].client_id, None);
    assert_eq!(AuditDetail::from(all[2].detail.clone()), call.detail);
    assert_eq!(all[2].server.as_deref(), Some("files"));
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    // An outside verifier recomputes the same hashes from what `query` returns.
    for e in &all {
        assert_eq!(audit_event_hash(e).to_vec(), e.hash);
    }

    let q = |f: AuditFilter| async move {
        audit
            .query(&f)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        q(AuditFilter {
            kind: Some("tool.call".into()),
            ..Default::default()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        q(AuditFilter {
            client_id: Some("c1".into()),
            ..Default::default()
        })
        .await,
        vec![2, 3]
    );
    assert_eq!(
        q(AuditFilter {
            subject: Some("u1".into()),
            server: Some("files".into()),
            ..Default::default()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        q(AuditFilter {
            since_ms: Some(T0 + 1),
            until_ms: Some(T0 + 5),
            ..Default::default()
        })
        .await,
        vec![2]
    );
    assert_eq!(
        q(AuditFilter {
            after_seq: Some(1),
            limit: Some(1),
            ..Default::default()
        })
        .await,
        vec![2]
    );
    assert_eq!(
        q(AuditFilter {
            subject: Some("nobody".into()),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );

    assert_verifies(audit, 3, None).await;
}

/// A detail handed over as JSON text (a struct written straight to JSON, fields in
/// sorted order) is stored as that text: queried back as the same value, hashed so that
/// an outside verifier's re-serialisation matches, next to a `Value` detail.
/// Follows `next_after_seq` from the start; returns every seq seen and the pages' sizes.
async fn follow_pages(audit: &dyn AuditStore, mut filter: AuditFilter) -> (Vec<i64>, Vec<usize>) {
    let (mut seqs, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let page = audit.page(&filter).await.unwrap();
        sizes.push(page.events.len());
        seqs.extend(page.events.iter().map(|e| e.seq));
        match page.next_after_seq {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    seqs.last().copied(),
                    "the cursor is the last seq"
                );
                filter.after_seq = Some(next);
            }
            None => return (seqs, sizes),
        }
    }
}

async fn audit_pages_visit_every_event_once(store: Store) {
    let audit: &dyn AuditStore = &store;
    // 2,500 events, every fifth of another kind, more than the default query returns.
    let events = (0..2_500)
        .map(|i| event(T0 + i, if i % 5 == 0 { "fifth" } else { "other" }))
        .collect();
    audit.append(events).await.unwrap();
    assert_eq!(
        audit.query(&AuditFilter::default()).await.unwrap().len(),
        1_000
    );

    let all = AuditFilter {
        limit: Some(1_000),
        ..AuditFilter::default()
    };
    let (seqs, sizes) = follow_pages(audit, all.clone()).await;
    assert_eq!(
        seqs,
        (1..=2_500).collect::<Vec<_>>(),
        "complete, in order, once"
    );
    assert_eq!(sizes, [1_000, 1_000, 500]);

    // A page that ends exactly on the last event says there is no next one.
    let exact = AuditFilter {
        limit: Some(500),
        ..AuditFilter::default()
    };
    let (seqs, sizes) = follow_pages(audit, exact).await;
    assert_eq!(seqs.len(), 2_500);
    assert_eq!(sizes, [500; 5]);

    // Filters hold on every page.
    let fifth = AuditFilter {
        kind: Some("fifth".into()),
        limit: Some(150),
        ..AuditFilter::default()
    };
    let (seqs, sizes) = follow_pages(audit, fifth).await;
    assert_eq!(seqs, (0..500).map(|i| 5 * i + 1).collect::<Vec<_>>());
    assert_eq!(sizes, [150, 150, 150, 50]);

    // A cursor past the end is an empty last page.
    let past = AuditFilter {
        after_seq: Some(2_500),
        ..all
    };
    let page = audit.page(&past).await.unwrap();
    assert!(page.events.is_empty() && page.next_after_seq.is_none());
}

async fn audit_text_detail_is_stored_as_written(store: Store) {
    #[derive(serde::Serialize)]
    struct Detail<'a> {
        decision: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        method: Option<&'a str>,
        status: u16,
        target: &'a str,
    }
    let audit: &dyn AuditStore = &store;
    let mut text = event(T0, "gateway.allow");
    let detail = Detail {
        decision: "allow",
        method: None,
        status: 200,
        target: "quote \"and\" \u{e9}\n",
    };
    text.detail = AuditDetail::Text(serde_json::value::to_raw_value(&detail).unwrap());
    let value = event(T0 + 1, "token.issued");
    assert_eq!(
        audit
            .append(vec![text.clone(), value.clone()])
            .await
            .unwrap(),
        vec![1, 2]
    );
    let all = audit.query(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all[0].detail,
        json!({ "decision": "allow", "status": 200, "target": "quote \"and\" \u{e9}\n" })
    );
    assert_eq!(AuditDetail::from(all[1].detail.clone()), value.detail);
    for e in &all {
        assert_eq!(audit_event_hash(e).to_vec(), e.hash);
    }
    assert_verifies(audit, 2, None).await;
}

async fn audit_concurrent_appends(store: Store) {
    let audit: Arc<dyn AuditStore> = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16i64 {
        let audit = audit.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let mut seqs = Vec::new();
            for i in 0..25i64 {
                let mut e = event(T0 + task * 100 + i, "concurrent");
                e.detail = json!({ "task": task, "i": i }).into();
                seqs.extend(audit.append(vec![e]).await.unwrap());
            }
            seqs
        });
    }
    assert_seqs_cover(tasks, 400).await;
    assert_verifies(&*audit, 400, None).await;
}

/// Two stores on one database stand for two processes (`warden serve` and a CLI
/// command): their appends interleave into one unbroken chain.
async fn audit_appends_from_two_stores(store: Store, url: String) {
    let other = Store::open(&url).await.unwrap();
    let stores: [Arc<dyn AuditStore>; 2] = [Arc::new(store), Arc::new(other)];
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8i64 {
        let audit = stores[(task % 2) as usize].clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20i64 {
                // Batches of one and of three, so merged and single batches interleave.
                let n = if i % 2 == 0 { 1 } else { 3 };
                let batch = (0..n)
                    .map(|k| event(T0 + task * 1000 + i * 10 + k, "two"))
                    .collect();
                seqs.extend(audit.append(batch).await.unwrap());
            }
            seqs
        });
    }
    assert_seqs_cover(tasks, 320).await;
    for audit in &stores {
        assert_verifies(&**audit, 320, None).await;
    }
}

/// A batch that fails part-way leaves no event and no moved head behind, and the next
/// append works.
async fn audit_failed_batch_writes_nothing(store: Store, url: String) {
    let audit: &dyn AuditStore = &store;
    let first: Vec<NewAuditEvent> = (0..2).map(|i| event(T0 + i, "ok")).collect();
    assert_eq!(audit.append(first).await.unwrap(), vec![1, 2]);
    // A row squatting on seq 4 makes the second insert of the next batch fail.
    let blob = if url.starts_with("sqlite") {
        "zeroblob(32)"
    } else {
        "decode(repeat('00', 32), 'hex')"
    };
    raw_execute(
        &url,
        &format!(
            "INSERT INTO audit_events (seq, ts, kind, client_id, subject, server, detail, prev_hash, hash) \
             VALUES (4, 0, 'squatter', NULL, NULL, NULL, '{{}}', {blob}, {blob})"
        ),
    )
    .await;
    let batch: Vec<NewAuditEvent> = (0..3).map(|i| event(T0 + 10 + i, "lost")).collect();
    assert!(audit.append(batch).await.is_err());
    raw_execute(&url, "DELETE FROM audit_events WHERE seq = 4").await;
    let kinds: Vec<String> = audit
        .query(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["ok", "ok"], "nothing of the failed batch is kept");
    assert_eq!(
        audit.append(vec![event(T0 + 20, "after")]).await.unwrap(),
        vec![3]
    );
    assert_verifies(audit, 3, None).await;
}

async fn audit_prune_keeps_chain(store: Store) {
    let audit: &dyn AuditStore = &store;
    let batch: Vec<NewAuditEvent> = (0..10).map(|i| event(T0 + i * 1000, "tick")).collect();
    audit.append(batch).await.unwrap();

    // Nothing is older than T0.
    assert_eq!(audit.prune_before(T0).await.unwrap(), 0);
    // Events with ts < T0 + 4000 are seqs 1..=4.
    assert_eq!(audit.prune_before(T0 + 4000).await.unwrap(), 4);
    assert_verifies(audit, 6, None).await;
    let first = audit
        .query(&AuditFilter::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.seq, 5);
    // Pruning the same range again is a no-op.
    assert_eq!(audit.prune_before(T0 + 4000).await.unwrap(), 0);

    // The chain continues after a prune, and pruning everything leaves a clean log.
    assert_eq!(
        audit
            .append(vec![event(T0 + 20_000, "tock")])
            .await
            .unwrap(),
        vec![11]
    );
    assert_verifies(audit, 7, None).await;
    assert_eq!(audit.prune_before(T0 + 1_000_000).await.unwrap(), 7);
    assert_verifies(audit, 0, None).await;
    assert_eq!(
        audit
            .append(vec![event(T0 + 30_000, "tock")])
            .await
            .unwrap(),
        vec![12]
    );
    assert_verifies(audit, 1, None).await;
}

async fn audit_verify_detects_edit(store: Store, url: String) {
    let audit: &dyn AuditStore = &store;
    let batch: Vec<NewAuditEvent> = (0..8).map(|i| event(T0 + i, "tick")).collect();
    audit.append(batch).await.unwrap();
    assert_eq!(audit.verify().await.unwrap().first_broken, None);

    raw_execute(
        &url,
        r#"UPDATE audit_events SET detail = '{"ip":"203.0.113.9"}' WHERE seq = 5"#,
    )
    .await;
    assert_verifies(audit, 4, Some(5)).await;

    // Re-chaining after an edit does not help: the next event's prev_hash breaks.
    raw_execute(&url, "UPDATE audit_events SET kind = 'tock' WHERE seq = 3").await;
    assert_eq!(audit.verify().await.unwrap().first_broken, Some(3));
}

async fn audit_verify_detects_deletion(store: Store, url: String) {
    let audit: &dyn AuditStore = &store;
    let batch: Vec<NewAuditEvent> = (0..6).map(|i| event(T0 + i, "tick")).collect();
    audit.append(batch).await.unwrap();

    // Deleting the newest event shows as a missing tail against the head.
    raw_execute(&url, "DELETE FROM audit_events WHERE seq = 6").await;
    assert_verifies(audit, 5, Some(6)).await;
    // Deleting one in the middle shows as a gap.
    raw_execute(&url, "DELETE FROM audit_events WHERE seq = 2").await;
    assert_verifies(audit, 1, Some(2)).await;
    // Deleting the oldest without moving the anchor is caught too.
    raw_execute(&url, "DELETE FROM audit_events WHERE seq = 1").await;
    assert_verifies(audit, 0, Some(1)).await;
}
