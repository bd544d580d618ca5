//! The official MCP conformance suite's server scenarios (`conformance server`, every
//! scenario for revision 2025-11-25) against `@modelcontextprotocol/server-everything`,
//! first directly and then through Warden's gateway: every scenario, and every single
//! check, that passes directly must pass through the gateway too.
//!
//! The suite's `server` command has no option for a token. `tests/interop/bearer-fetch.mjs`,
//! preloaded with `node --import`, adds `Authorization: Bearer …` to the suite's requests
//! to Warden's origin (and nowhere else).
//!
//! The token is an ordinary client-credentials token, and the server's registration maps
//! every tool (`*`), every resource (`resource:`) and each prompt the upstream lists to one
//! scope, so that the gateway's deny-by-default policy is in force but grants the suite
//! everything the upstream offers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// The revision whose scenarios run (the one server-everything speaks).
const SPEC: &str = "2025-11-25";
/// One suite run must finish within this (it takes a few seconds).
const RUN_DEADLINE: Duration = Duration::from_secs(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passing_directly_passes_through_the_gateway() {
    let Some(interop) = interop_dir("conformance server") else {
        return;
    };
    let started = Instant::now();
    let f = Fixture::new();
    let logs = f.dir.parent().unwrap();

    // The upstream: server-everything in Streamable HTTP mode, on a free port.
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let mut c = node(&interop);
    c.arg("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(File::create(logs.join("everything.out")).unwrap())
        .stderr(File::create(logs.join("everything.err")).unwrap());
    let _everything = Server {
        child: Some(c.spawn().unwrap()),
        base: format!("http://127.0.0.1:{port}"),
        drain: None,
    };
    wait_for_port(port, &logs.join("everything.err"));

    // Directly.
    let direct = run_suite(&interop, &upstream, None, &logs.join("direct"));

    // Through the gateway: one scope for everything the upstream offers.
    let prompts = list_prompts(&upstream).await;
    let mut entries = vec!["*".to_owned(), "resource:".to_owned()];
    entries.extend(prompts.iter().map(|p| format!("prompt:{p}")));
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "everything",
        "--upstream",
        &upstream,
        "--scope",
        &format!("everything:all={}", entries.join(",")),
    ]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "conformance-suite",
        "--confidential",
        "--grant",
        "client_credentials",
        "--scope",
        "everything:all",
    ]);
    let client: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let _warden = f.serve(&[]);
    let resource = format!("{}/mcp/everything", f.base);
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/token", f.base))
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource.as_str()),
            ("scope", "everything:all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let gateway = run_suite(
        &interop,
        &resource,
        Some((&token, &f.base)),
        &logs.join("gateway"),
    );

    let direct_passed = direct.passed_scenarios();
    let gateway_passed = gateway.passed_scenarios();
    eprintln!(
        "conformance server (spec {SPEC}), {} scenarios run",
        direct.scenarios.len()
    );
    eprintln!(
        "passing directly ({}): {}",
        direct_passed.len(),
        list(&direct_passed)
    );
    eprintln!(
        "passing through the gateway ({}): {}",
        gateway_passed.len(),
        list(&gateway_passed)
    );
    eprintln!("runtime: {:.1}s", started.elapsed().as_secs_f64());

    assert!(
        direct_passed.contains("server-initialize") && direct_passed.len() >= 5,
        "too few scenarios pass directly: is server-everything up?\n{}",
        direct.log
    );
    assert_eq!(
        direct.scenarios.keys().collect::<Vec<_>>(),
        gateway.scenarios.keys().collect::<Vec<_>>(),
        "both runs must cover the same scenarios"
    );
    let lost: Vec<&String> = direct_passed.difference(&gateway_passed).collect();
    assert!(
        lost.is_empty(),
        "passing directly but not through the gateway: {lost:?}\n{}",
        gateway.failures()
    );
    let direct_checks = direct.passed_checks();
    let gateway_checks = gateway.passed_checks();
    let lost: Vec<_> = direct_checks.difference(&gateway_checks).collect();
    assert!(
        lost.is_empty(),
        "checks passing directly but not through the gateway: {lost:?}\n{}",
        gateway.failures()
    );
}

/// One check of a scenario, as the suite records it in `checks.json`.
struct Check {
    id: String,
    status: String,
    message: String,
}

/// The results of one suite run.
struct Run {
    /// Scenario name → its checks.
    scenarios: BTreeMap<String, Vec<Check>>,
    /// The suite's output, for failure messages.
    log: String,
}

impl Run {
    /// Scenarios with no failed check and at least one passed one (the suite's `✓`,
    /// without counting a scenario that checked nothing).
    fn passed_scenarios(&self) -> BTreeSet<String> {
        self.scenarios
            .iter()
            .filter(|(_, checks)| {
                checks.iter().any(|c| c.status == "SUCCESS")
                    && checks.iter().all(|c| c.status != "FAILURE")
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `(scenario, check id)` pairs that passed (and never failed within the scenario).
    fn passed_checks(&self) -> BTreeSet<(String, String)> {
        let mut passed = BTreeSet::new();
        for (name, checks) in &self.scenarios {
            for c in checks.iter().filter(|c| c.status == "SUCCESS") {
                let failed_too = checks.iter().any(|d| d.id == c.id && d.status == "FAILURE");
                if !failed_too {
                    passed.insert((name.clone(), c.id.clone()));
                }
            }
        }
        passed
    }

    /// Every failed check with its message.
    fn failures(&self) -> String {
        let mut out = String::new();
        for (name, checks) in &self.scenarios {
            for c in checks.iter().filter(|c| c.status == "FAILURE") {
                out.push_str(&format!("  {name} / {}: {}\n", c.id, c.message));
            }
        }
        out
    }
}

/// Runs `conformance server` against `url`, with the bearer preload when `bearer` is
/// `(token, origin)`, writing its results under `out`.
fn run_suite(interop: &Path, url: &str, bearer: Option<(&str, &str)>, out: &Path) -> Run {
    std::fs::create_dir_all(out).unwrap();
    let log_path = out.with_extension("log");
    let mut c: Command = node(interop);
    if let Some((token, origin)) = bearer {
        c.args(["--import", "./bearer-fetch.mjs"])
            .env("WARDEN_BEARER", token)
            .env("WARDEN_BEARER_ORIGIN", origin);
    }
    c.arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .args([
            "server",
            "--url",
            url,
            "--suite",
            "all",
            "--spec-version",
            SPEC,
        ])
        .args(["--timeout", "20000", "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(File::create(&log_path).unwrap())
        .stderr(File::create(out.with_extension("err")).unwrap());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + RUN_DEADLINE;
    // The suite exits non-zero whenever any scenario fails; the results are in `out`.
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "conformance server against {url} took over {RUN_DEADLINE:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log_path).unwrap()
        + &std::fs::read_to_string(out.with_extension("err")).unwrap();
    let mut scenarios = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let entry = entry.unwrap();
        let dir = entry.file_name().into_string().unwrap();
        let name = scenario_of(&dir).unwrap_or_else(|| panic!("unexpected result dir {dir}"));
        let text = std::fs::read_to_string(entry.path().join("checks.json"))
            .unwrap_or_else(|e| panic!("{dir}/checks.json: {e}\n{log}"));
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        let checks = checks
            .iter()
            .map(|c| Check {
                id: c["id"].as_str().unwrap_or_default().to_owned(),
                status: c["status"].as_str().unwrap_or_default().to_owned(),
                message: c["errorMessage"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        assert!(
            scenarios.insert(name.to_owned(), checks).is_none(),
            "{name} ran twice"
        );
    }
    assert!(!scenarios.is_empty(), "no results from {url}:\n{log}");
    Run { scenarios, log }
}

/// The scenario of a result directory: `server-{scenario}-{YYYY-MM-DDTHH-MM-SS-mmmZ}`.
fn scenario_of(dir: &str) -> Option<&str> {
    const STAMP: usize = "-2025-01-01T00-00-00-000Z".len();
    let rest = dir.strip_prefix("server-")?;
    let cut = rest.len().checked_sub(STAMP)?;
    let (name, stamp) = rest.split_at(cut);
    let looks_right = stamp.starts_with('-')
        && stamp.ends_with('Z')
        && stamp[1..5].bytes().all(|b| b.is_ascii_digit());
    (looks_right && !name.is_empty()).then_some(name)
}

fn list(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server-everything did not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The names of the upstream's prompts, from a short MCP session of our own.
async fn list_prompts(upstream: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let (session, init) = mcp_post(
        &http,
        upstream,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": SPEC, "capabilities": {},
            "clientInfo": {"name": "warden-test", "version": "1"}}}),
    )
    .await;
    let session = session.expect("server-everything gives a session id");
    assert!(
        init["result"]["capabilities"]["prompts"].is_object(),
        "{init}"
    );
    mcp_post(
        &http,
        upstream,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let (_, listed) = mcp_post(
        &http,
        upstream,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "prompts/list"}),
    )
    .await;
    let _ = http
        .delete(upstream)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", SPEC)
        .send()
        .await;
    let prompts: Vec<String> = listed["result"]["prompts"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!prompts.is_empty(), "{listed}");
    prompts
}

/// POSTs one JSON-RPC message; returns the session id header and the response (a JSON body
/// or the first non-empty SSE `data:` event; `Null` for a 202).
async fn mcp_post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Value) {
    let mut req = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", SPEC)
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{body}: {}", resp.status());
    let session = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = resp.text().await.unwrap();
    let value = if sse {
        // Skipping empty events: a resumable server primes the stream with one.
        text.lines()
            .filter_map(|l| l.strip_prefix("data:").map(str::trim))
            .find(|d| !d.is_empty())
            .map_or(Value::Null, |d| serde_json::from_str(d).unwrap())
    } else if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (session, value)
}
