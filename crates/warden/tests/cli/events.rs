//! `warden keys` and `warden events`: rotation from the CLI, and a tamper-evident log.

use crate::support::*;

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
    let events: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
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
