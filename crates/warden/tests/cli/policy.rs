//! `warden apply -f`: a declarative policy, dry-run diffs, and line-precise refusals.

use crate::support::*;

#[test]
fn apply_validates_diffs_and_records_the_policy() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let apply = |text: &str, extra: &[&str]| {
        std::fs::write(&file, text).unwrap();
        let mut c = warden(&f.dir);
        c.arg("--json")
            .arg("apply")
            .arg("-f")
            .arg(&file)
            .args(extra);
        run(c, None)
    };

    // An invalid file: every problem with its line, and nothing changes.
    let bad = "version = 1\n\n[[client]]\nid = \"nobody\"\n\n[[client]]\nid = \"agent\"\nservers = { notes = [\"notes:admin\"], ghosts = [\"x\"] }\n";
    let out = apply(bad, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.toml:line 4:") && err.contains("nobody"),
        "{err}"
    );
    assert!(
        err.contains("policy.toml:line 8:")
            && err.contains("notes:admin")
            && err.contains("ghosts"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let mut c = warden(&f.dir);
    c.args(["--json", "policy", "show"]);
    let shown: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(shown["version"], 0);

    // Dry run: the diff, nothing stored.
    let good = "version = 1\ndefault = \"deny\"\n\n[[client]]\nid = \"agent\"\nservers = { notes = [\"notes:read\"] }\nmax_token_lifetime = \"5m\"\n\n[[group]]\nname = \"eng\"\nservers = { notes = [\"notes:read\", \"notes:write\"] }\n";
    let out = apply(good, &["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["dry_run"], true);
    let changes: Vec<String> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(
        changes.iter().any(|c| c.starts_with("~ default")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("+ client ") && c.contains("notes: [notes:read]")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("+ group eng")),
        "{changes:?}"
    );
    let mut c = warden(&f.dir);
    c.args(["--json", "policy", "show"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ok(c, None)).unwrap()["version"],
        0
    );

    // Apply, then the same file again is a no-op; the change is audited.
    let out = apply(good, &[]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["version"],
        1
    );
    let out = apply(good, &[]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["changes"],
        serde_json::json!([])
    );
    let mut c = warden(&f.dir);
    c.args(["policy", "show"]);
    assert_eq!(ok(c, None), good);
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", "policy.applied"]);
    let page: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);

    // The machine client now gets only what the policy grants, for at most 5 minutes.
    let server = f.serve(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
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
            .unwrap()
    });
    assert_eq!(body["scope"], "notes:read");
    assert_eq!(body["expires_in"], 300);
    drop(server);
}
