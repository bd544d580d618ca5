//! The official MCP SDK clients (TypeScript and Python) against Warden: discovery through
//! the gateway's 401, pre-registered or dynamic registration, authorization code + PKCE
//! with this test playing the user, a session through the gateway to the demo upstream
//! with an SSE-streamed tool call, then a refresh after the access token really expired
//! (30 s tokens, no leeway: the gateway refuses the old token, the SDK refreshes). The
//! demo runs either as an HTTP upstream or as a `stdio:` upstream the gateway spawns.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use crate::support::*;
use crate::user_agent::{self, Decision};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// Shortest lifetime Warden allows, and no leeway, so the test can outwait a token.
const SHORT_TOKENS: &[&str] = &["--token-ttl", "30s", "--leeway", "0s"];

/// How the demo upstream is reached.
#[derive(Clone, Copy, PartialEq)]
enum Upstream {
    Http,
    Stdio,
}

/// A Warden with the demo upstream registered as `demo`, a public client and a user.
struct Demo {
    f: Fixture,
    upstream: Upstream,
    upstream_server: Option<Server>,
    _warden: Server,
    client_id: String,
    user_id: String,
}

fn demo(upstream: Upstream) -> Demo {
    let f = Fixture::new();
    let running = match upstream {
        Upstream::Http => {
            let server = spawn_demo_upstream(&f);
            register_demo(
                warden(&f.dir),
                "demo",
                &format!("{}/mcp", server.base),
                SHORT_TOKENS,
            );
            Some(server)
        }
        Upstream::Stdio => {
            register_demo(
                warden(&f.dir),
                "demo",
                &format!("stdio:{BIN} demo-upstream --stdio"),
                SHORT_TOKENS,
            );
            None
        }
    };
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "sdk",
        "--public",
        "--redirect-uri",
        REDIRECT,
    ]);
    let client: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let mut c = warden(&f.dir);
    c.args(["--json", "user", "add", "alice", "--password-stdin"]);
    let user: serde_json::Value = serde_json::from_str(&ok(c, Some("alice-sdk-pw\n"))).unwrap();
    let warden_server = f.serve(&[]);
    Demo {
        client_id: client["client_id"].as_str().unwrap().to_owned(),
        user_id: user["id"].as_str().unwrap().to_owned(),
        f,
        upstream,
        upstream_server: running,
        _warden: warden_server,
    }
}

/// Runs an SDK client script, playing the user when it asks, and returns its RESULT.
async fn run_client(cmd: Command) -> serde_json::Value {
    run_client_with(cmd, async |url: &str| {
        user_agent::authorize(url, "alice", "alice-sdk-pw", Decision::Allow).await
    })
    .await
}

/// Runs an SDK client script; `user` plays the user on each authorization URL and
/// returns where the browser came back. Returns the client's RESULT.
pub(crate) async fn run_client_with(
    mut cmd: Command,
    mut user: impl AsyncFnMut(&str) -> String,
) -> serde_json::Value {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut result = None;
    let mut transcript = Vec::new();
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_secs(150), rx.recv()).await
    {
        transcript.push(line.clone());
        if let Some(url) = line.strip_prefix("AUTHORIZE ") {
            let back = user(url).await;
            writeln!(stdin, "CALLBACK {back}").unwrap();
            stdin.flush().unwrap();
        } else if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<serde_json::Value>(json).unwrap());
        }
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = result.unwrap_or_else(|| {
        panic!(
            "no RESULT; stdout:\n{}\nstderr:\n{stderr}",
            transcript.join("\n")
        )
    });
    assert_eq!(result["ok"], true, "{result}\nstderr:\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    result
}

fn check(result: &serde_json::Value, d: &Demo) {
    assert_eq!(result["resource"], format!("{}/mcp/demo", d.f.base));
    let tools: Vec<&str> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"notes_list") && tools.contains(&"whoami"),
        "{tools:?}"
    );
    let progress: Vec<f64> = result["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert_eq!(
        progress,
        [1.0, 2.0, 3.0],
        "the SSE-streamed progress reached the client"
    );
    assert_eq!(result["listed_is_error"], false);
    assert_eq!(
        result["expired_status"], 401,
        "the gateway refused the expired token: {result}"
    );
    assert_eq!(result["after_refresh_is_error"], false);
    let who = &result["who"];
    match d.upstream {
        Upstream::Http => {
            // What the upstream received is the gateway's assertion, never the client's
            // token: an access token is typed `at+jwt` and names the gateway's resource
            // as its audience; an assertion is typed `warden-assertion+jwt` and names the
            // upstream.
            let auth = who["authorization"].as_str().unwrap_or_default();
            let bearer = auth
                .strip_prefix("Bearer ")
                .unwrap_or_else(|| panic!("no bearer reached the upstream: {result}"));
            let header: serde_json::Value = serde_json::from_slice(
                &base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    bearer.split('.').next().unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(header["typ"], "warden-assertion+jwt", "{result}");
            let upstream = d.upstream_server.as_ref().unwrap();
            let seen = claims(bearer);
            assert_eq!(seen["aud"], format!("{}/mcp", upstream.base), "{result}");
            assert_ne!(seen["aud"], result["resource"], "{result}");
            assert_eq!(seen["iss"], d.f.base.as_str(), "{result}");
            assert_eq!(seen["sub"], d.user_id.as_str(), "{result}");
        }
        Upstream::Stdio => {
            assert_eq!(who["x-warden-subject"], d.user_id.as_str(), "{result}");
            if result["registered_dynamically"] == false {
                assert_eq!(who["x-warden-client-id"], d.client_id.as_str());
            }
            assert!(
                who.get("authorization").is_none(),
                "a stdio process gets no credential: {result}"
            );
        }
    }
}

async fn typescript(upstream: Upstream, dynamic: bool) {
    let Some(interop) = interop_dir("TypeScript SDK client") else {
        return;
    };
    let d = demo(upstream);
    let client_id = if dynamic {
        "-".to_owned()
    } else {
        d.client_id.clone()
    };
    let mut cmd = node(&interop);
    cmd.arg(interop.join("sdk_client.mjs")).args([
        format!("{}/mcp/demo", d.f.base),
        client_id,
        REDIRECT.to_owned(),
    ]);
    let r = run_client(cmd).await;
    check(&r, &d);
    assert_eq!(r["registered_dynamically"], dynamic);
}

async fn python(upstream: Upstream, dynamic: bool) {
    let Some(interop) = interop_dir("Python SDK client") else {
        return;
    };
    let python = interop.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the interop virtualenv is missing (scripts/test creates it)"
    );
    let d = demo(upstream);
    let client_id = if dynamic {
        "-".to_owned()
    } else {
        d.client_id.clone()
    };
    let mut cmd = Command::new(python);
    cmd.current_dir(&interop)
        .arg(interop.join("sdk_client.py"))
        .args([
            format!("{}/mcp/demo", d.f.base),
            client_id,
            REDIRECT.to_owned(),
        ]);
    let r = run_client(cmd).await;
    check(&r, &d);
    assert_eq!(r["registered_dynamically"], dynamic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_with_a_preregistered_client() {
    typescript(Upstream::Http, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_registering_dynamically() {
    typescript(Upstream::Http, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_through_a_stdio_upstream() {
    typescript(Upstream::Stdio, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_with_a_preregistered_client() {
    python(Upstream::Http, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_registering_dynamically() {
    python(Upstream::Http, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_through_a_stdio_upstream() {
    python(Upstream::Stdio, false).await;
}
