//! `warden serve` killed with SIGKILL in the middle of a burst of writes: the store opens
//! cleanly afterwards and every write that was acknowledged is there.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_store::{AuditFilter, AuditStore, Store};

use crate::support::*;

async fn burst_then_kill(f: &Fixture, server: Server) -> HashSet<String> {
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, acked) = (http.clone(), Arc::clone(&acked));
        let url = format!("{}/oauth/token", f.base);
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", f.resource.as_str()),
        ];
        let (id, secret) = (f.client_id.clone(), f.client_secret.clone());
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        tasks.push(tokio::spawn(async move {
            loop {
                let r = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&form)
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status() != 200 {
                    break;
                }
                let Ok(body) = r.json::<serde_json::Value>().await else {
                    break;
                };
                let jti = claims(body["access_token"].as_str().unwrap())["jti"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                acked.lock().unwrap().insert(jti);
            }
        }));
    }
    // Let the burst build up, then pull the plug.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(9))
        .await
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the burst should have produced writes, got {}",
        acked.len()
    );
    acked
}

async fn assert_all_present(url: &str, acked: &HashSet<String>) {
    let store = Store::open(url)
        .await
        .expect("store must open cleanly after SIGKILL");
    let events = AuditStore::query(
        &store,
        &AuditFilter {
            kind: Some("token.issued".into()),
            limit: Some(1_000_000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let stored: HashSet<String> = events
        .iter()
        .filter_map(|e| e.detail["jti"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost (of {})",
        missing.len(),
        acked.len()
    );
    let report = store.verify().await.unwrap();
    assert_eq!(
        report.first_broken, None,
        "the audit chain must verify after a crash"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_write_sqlite() {
    let f = Fixture::new();
    let server = f.serve(&[]);
    let acked = burst_then_kill(&f, server).await;
    let url = format!("sqlite://{}", f.dir.join("warden.db").display());
    assert_all_present(&url, &acked).await;
    // And warden itself starts again on the same data dir.
    let server = f.serve(&[]);
    let (status, _, _) = server.stop(15);
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_write_postgres() {
    let Some(url) = crate::support::postgres_database("crash") else {
        return;
    };
    let env = [("WARDEN_DATABASE_URL", url.as_str())];
    let f = Fixture::with_env(&env);
    let server = f.serve(&env);
    let acked = burst_then_kill(&f, server).await;
    assert_all_present(&url, &acked).await;
}
