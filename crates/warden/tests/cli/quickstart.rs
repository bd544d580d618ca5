//! `warden quickstart` from nothing: data dir, demo upstream, registration, credentials.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_from_nothing_gives_a_working_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qs");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut c = warden(&dir);
    c.args([
        "quickstart",
        "--public-url",
        &base,
        "--demo-listen",
        "127.0.0.1:0",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Manage it:");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    let server = Server {
        child: Some(child),
        base: base.clone(),
        drain: None,
    };
    let text = lines.join("\n");
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .map(|r| r.split_whitespace().next().unwrap().to_owned())
            })
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    let upstream = field("demo MCP upstream");
    let client_id = field("demo agent          client_id");
    let secret = field("client_secret");
    assert!(text.contains("demo user           demo / "), "{text}");

    // The demo upstream is a live MCP server.
    let http = reqwest::Client::new();
    let init = http
        .post(&upstream)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.headers().contains_key("mcp-session-id"));

    // The agent gets a token for the registered demo server.
    let resource = format!("{base}/mcp/demo");
    let resp = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        resource
    );

    let mut c = warden(&dir);
    c.args(["--json", "server", "show", "demo"]);
    let shown: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(shown["upstream"], upstream);
    assert_eq!(shown["tool_groups"].as_array().unwrap().len(), 3);
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
}
