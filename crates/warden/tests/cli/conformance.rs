//! The official MCP conformance suite's authorization-server scenarios against Warden.
//! The suite prints an authorization URL for a person to open; the test plays that person.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use crate::support::*;
use crate::user_agent::{self, Decision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_authorization_scenarios_pass() {
    let Some(interop) = interop_dir("conformance authorization") else {
        return;
    };
    let f = Fixture::new();
    let cb_port = free_port();
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "conformance",
        "--public",
        "--redirect-uri",
        &format!("http://127.0.0.1:{cb_port}/callback"),
    ]);
    let client: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let mut c = warden(&f.dir);
    c.args(["user", "add", "alice", "--password-stdin"]);
    ok(c, Some("alice-password-1\n"));
    let _server = f.serve(&[]);

    let mut child = node(&interop)
        .arg(interop.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args([
            "authorization",
            "--url",
            &f.base,
            "--client-id",
            &client_id,
            "--resource",
            &f.resource,
            "-p",
            &cb_port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all.join("\n")
    });
    let auth_url = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
            .await
            .expect("conformance printed no URL")
            .expect("conformance exited early");
        if line.starts_with("http") && line.contains("/oauth/authorize?") {
            break line;
        }
    };
    // Give the suite's callback listener a moment to bind after printing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let back = user_agent::authorize(&auth_url, "alice", "alice-password-1", Decision::Allow).await;
    assert!(
        back.starts_with(&format!("http://127.0.0.1:{cb_port}/callback?")),
        "{back}"
    );
    reqwest::get(&back).await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let out = reader.join().unwrap();
    eprintln!("{out}");
    assert!(status.success(), "conformance failed:\n{out}");
    for scenario in [
        "authorization-server-metadata-endpoint",
        "authorization-code-grant",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!(" {scenario}: ")))
            .unwrap_or_else(|| panic!("no result for {scenario}:\n{out}"));
        assert!(
            line.starts_with('✓') && line.ends_with(" 0 failed"),
            "{line}"
        );
    }
    let total = out
        .lines()
        .find(|l| l.starts_with("Total: "))
        .unwrap_or_default();
    assert!(
        total.ends_with(", 0 failed") && !total.starts_with("Total: 0 "),
        "{total}"
    );
}
