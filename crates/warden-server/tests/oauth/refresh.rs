//! Refresh-token rotation, reuse detection, the grace window and concurrency.

use crate::support::*;

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let h = H::new().await;
    let (_, rt1) = h.tokens().await;
    let r = h.refresh(&rt1, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt2 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let at2 = r.json()["access_token"].as_str().unwrap().to_owned();
    // Replaying the old token: refused, and the whole family dies with it.
    let replay = h.refresh(&rt1, &[]).await;
    assert_eq!(replay.error(), "invalid_grant");
    assert_eq!(h.refresh(&rt2, &[]).await.error(), "invalid_grant");
    assert_eq!(h.introspect(&at2).await["active"], false);
    assert!(h
        .audit_kinds()
        .await
        .contains(&"refresh.reuse_detected".to_owned()));
}

#[tokio::test]
async fn refresh_can_narrow_but_never_widen() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[("scope", "notes:read")], &mut jar).await;
    let rt = h.exchange(&code).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.refresh(&rt, &[("scope", "notes:read notes:write")]).await;
    assert_eq!(r.error(), "invalid_scope");
    let r = h.refresh(&rt, &[("resource", OTHER)]).await;
    assert_eq!(r.error(), "invalid_target");
    let (_, rt) = h.tokens().await;
    let r = h.refresh(&rt, &[("scope", "notes:read")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "notes:read");
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["scope"],
        "notes:read"
    );
}

#[tokio::test]
async fn refresh_tokens_expire_and_belong_to_their_client() {
    let h = H::with(&[("WARDEN_TOKENS__REFRESH_TOKEN_TTL", "1h")]).await;
    let (_, rt) = h.tokens().await;
    let (wid, ws) = &h.web;
    let r = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            Some((wid, ws)),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
    h.clock.advance(3601);
    assert_eq!(h.refresh(&rt, &[]).await.error(), "invalid_grant");
    assert_eq!(
        h.refresh("wdn_rt_unknown", &[]).await.error(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_replay_inside_the_grace_window_gets_the_same_successor() {
    let h = H::with(&[("WARDEN_TOKENS__REFRESH_GRACE", "10s")]).await;
    let (_, rt1) = h.tokens().await;
    let rt2 = h.refresh(&rt1, &[]).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.clock.advance(5);
    let again = h.refresh(&rt1, &[]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["refresh_token"], rt2.as_str());
    // Outside the window the same replay is theft.
    h.clock.advance(10);
    assert_eq!(h.refresh(&rt1, &[]).await.error(), "invalid_grant");
    assert_eq!(h.refresh(&rt2, &[]).await.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_never_fork_a_family() {
    for grace in ["0s", "10s"] {
        let h = H::with(&[("WARDEN_TOKENS__REFRESH_GRACE", grace)]).await;
        let (_, rt) = h.tokens().await;
        let mut tasks = Vec::new();
        let h = std::sync::Arc::new(h);
        for _ in 0..8 {
            let (h, rt) = (h.clone(), rt.clone());
            tasks.push(tokio::spawn(async move { h.refresh(&rt, &[]).await }));
        }
        let mut successors = std::collections::HashSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                successors.insert(r.json()["refresh_token"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(
            successors.len(),
            1,
            "grace {grace}: one successor at most, got {}",
            successors.len()
        );
    }
}
