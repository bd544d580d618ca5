//! `warden keys` and `warden events`: rotation from the CLI, and a tamper-evident log.

use std::path::Path;

use warden_store::{AuditStore, NewAuditEvent, Store};

use crate::support::*;

/// Events appended straight to the store, more than a listing shows by default.
const BULK: usize = 2_500;

/// The seqs of `export`'s JSON lines, checked to be contiguous and increasing (in order,
/// none skipped, none twice), and how many of them are of the bulk kind.
fn exported_seqs(export: &str) -> (Vec<i64>, usize) {
    let events: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous and in order"
    );
    let bulk = events.iter().filter(|e| e["kind"] == "test.bulk").count();
    (seqs, bulk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_and_events_verify_detects_an_edited_event() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.args(["--json", "keys", "list"]);
    let keys: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "active");

    let mut c = warden(&f.dir);
    c.args(["--json", "keys", "rotate"]);
    let new: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(
        new["state"], "pending",
        "published now, signs after the publish-ahead period"
    );
    let mut c = warden(&f.dir);
    c.args(["keys", "rotate"]);
    let err = fails(c);
    assert!(err.contains("already in progress"), "{err}");

    // Some traffic for the log.
    let server = f.serve(&[]);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .post(format!("{}/oauth/token", f.base))
            .basic_auth(&f.client_id, Some(&f.client_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", f.resource.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());

    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", "token.issued"]);
    let page: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(page["truncated"], false);
    let events = &page["events"];
    assert_eq!(events.as_array().unwrap().len(), 3);
    let mut c = warden(&f.dir);
    c.args(["events", "export"]);
    let lines = ok(c, None);
    assert!(lines.lines().count() >= 4, "{lines}");
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["hash"].as_str().unwrap().len() == 64);
    }
    let mut c = warden(&f.dir);
    c.args(["events", "verify"]);
    assert!(ok(c, None).contains("intact"));

    // Edit one event behind Warden's back: verify names it.
    let victim = events[1]["seq"].as_i64().unwrap();
    let url = format!("sqlite://{}", f.dir.join("warden.db").display());
    let mut conn = <sqlx::sqlite::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET detail = '{\"scope\":\"everything\"}' WHERE seq = ?")
        .bind(victim)
        .execute(&mut conn)
        .await
        .unwrap();
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "verify"]);
    let out = run(c, None);
    assert!(!out.status.success(), "a broken chain is a failing exit");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["first_broken"], victim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_to_a_file_sink_without_token_material() {
    let f = Fixture::new();
    let sink = f.dir.parent().unwrap().join("audit.jsonl");
    let sink_setting = format!("file:{}", sink.display());
    let server = f.serve(&[("WARDEN_AUDIT__SINK", sink_setting.as_str())]);
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", f.base))
        .basic_auth(&f.client_id, Some(&f.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", f.resource.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&sink).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let issued = lines
        .iter()
        .find(|l| l["kind"] == "token.issued")
        .expect("token.issued in the sink");
    assert_eq!(issued["detail"]["jti"], claims(&token)["jti"]);
    assert!(!text.contains(&token) && !text.contains(&f.client_secret));
    // A bad sink setting is refused at start, naming the key.
    let mut c = warden(&f.dir);
    c.env("WARDEN_AUDIT__SINK", "syslog");
    c.args(["serve", "--listen", "127.0.0.1:0"]);
    assert!(fails(c).contains("audit.sink"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_export_writes_every_event_locally_and_remotely() {
    let (f, init) = Fixture::initialized();
    let url = format!("sqlite://{}", f.dir.join("warden.db").display());
    let store = Store::open(&url).await.unwrap();
    let bulk = (0..BULK)
        .map(|i| NewAuditEvent {
            ts: 1_700_000_000_000 + i as i64,
            kind: "test.bulk".into(),
            client_id: None,
            subject: Some(format!("user-{i}")),
            server: None,
            detail: serde_json::json!({ "i": i }).into(),
        })
        .collect();
    AuditStore::append(&store, bulk).await.unwrap();
    store.close().await;

    // Locally: every event, from the first, though more than a listing's default.
    let mut c = warden(&f.dir);
    c.args(["events", "export"]);
    let local = ok(c, None);
    let (seqs, bulk) = exported_seqs(&local);
    assert_eq!(bulk, BULK, "every bulk event exported");
    assert_eq!(seqs[0], 1);
    assert!(seqs.len() > BULK);

    // --limit still limits, across pages.
    let mut c = warden(&f.dir);
    c.args(["events", "export", "--limit", "1500"]);
    let (seqs, _) = exported_seqs(&ok(c, None));
    assert_eq!(seqs, (1..=1500).collect::<Vec<_>>());

    // A listing says it was cut, and where the rest begins.
    let mut c = warden(&f.dir);
    c.args(["--json", "events"]);
    let page: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 1000);
    assert_eq!(page["truncated"], true);
    assert_eq!(page["next_after_seq"], 1000);
    let mut c = warden(&f.dir);
    c.args(["events", "--after-seq", "1000", "--limit", "5"]);
    let out = run(c, None);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--after-seq 1005"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1001"));

    // Remotely, through the admin API's cursor: the same events, in the same order.
    let server = f.serve(&[]);
    let admin = &init["admin_client"];
    let remote = |args: &[&str]| {
        let mut c = warden(Path::new("/nonexistent/warden-data"));
        c.env(
            "WARDEN_ADMIN_CLIENT_ID",
            admin["client_id"].as_str().unwrap(),
        )
        .env(
            "WARDEN_ADMIN_CLIENT_SECRET",
            admin["client_secret"].as_str().unwrap(),
        )
        .args(["--server", &f.base])
        .args(args);
        c
    };
    let exported = ok(remote(&["events", "export"]), None);
    let (seqs, bulk) = exported_seqs(&exported);
    assert_eq!(bulk, BULK);
    assert_eq!(seqs[0], 1);
    let local_lines: Vec<&str> = local.lines().collect();
    assert_eq!(
        exported.lines().take(local_lines.len()).collect::<Vec<_>>(),
        local_lines,
        "the remote export begins with exactly what the local one wrote"
    );
    let (seqs, _) = exported_seqs(&ok(
        remote(&["events", "export", "--kind", "test.bulk", "--limit", "2200"]),
        None,
    ));
    assert_eq!(seqs.len(), 2200);
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
}
