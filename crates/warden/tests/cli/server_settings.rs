//! `warden server add|update` and the per-server settings: every setting has a flag,
//! upstream credentials are sealed at rest and never shown back, and a server no client
//! could get a token for is refused.

use crate::support::*;

const HEADER_SECRET: &str = "hdr-Y2xpLXN0YXRpYy1oZWFkZXItdmFsdWU";
const STDIN_SECRET: &str = "hdr-c3RkaW4taGVhZGVyLXZhbHVlLXNlY3JldA";
const ENV_SECRET: &str = "env-Y2xpLWVudi12YWx1ZS1zZWNyZXQtdmFs";

fn json_of(c: std::process::Command) -> serde_json::Value {
    serde_json::from_str(&ok(c, None)).unwrap()
}

#[test]
fn upstream_credentials_are_sealed_at_rest_and_never_shown() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "vault",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "vault:use=lookup",
        "--static-header",
        &format!("x-api-key={HEADER_SECRET}"),
        "--static-header-stdin",
        "authorization",
    ]);
    ok(c, Some(&format!("Bearer {STDIN_SECRET}\n")));
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "server",
        "add",
        "tool",
        "--upstream",
        "stdio:python3 -u tool.py",
        "--scope",
        "tool:use=run",
        "--env",
        &format!("TOOL_TOKEN={ENV_SECRET}"),
        "--env",
        "MODE=demo",
    ]);
    let added = ok(c, None);
    assert!(!added.contains(ENV_SECRET), "{added}");

    // Shown only as set, in JSON and in text.
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "show", "vault"]);
    let vault = json_of(c);
    assert_eq!(vault["settings"]["static_headers"]["x-api-key"], "set");
    assert_eq!(vault["settings"]["static_headers"]["authorization"], "set");
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "show", "tool"]);
    let tool = json_of(c);
    assert_eq!(tool["settings"]["env"]["TOOL_TOKEN"], "set");
    assert_eq!(tool["settings"]["env"]["MODE"], "set");
    let mut shown = String::new();
    for args in [
        &["--json", "server", "list"][..],
        &["server", "show", "vault"],
        &["server", "show", "tool"],
    ] {
        let mut c = warden(&f.dir);
        c.args(args);
        shown.push_str(&ok(c, None));
    }
    assert!(shown.contains("x-api-key"), "{shown}");

    // An update that changes something else keeps them sealed; one that replaces the
    // environment seals the new value.
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "update",
        "tool",
        "--env",
        &format!("TOOL_TOKEN={ENV_SECRET}-2"),
    ]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["server", "update", "vault", "--leeway", "5s"]);
    ok(c, None);

    let db = database_bytes(&f.dir);
    assert!(db.len() > 10_000);
    for secret in [HEADER_SECRET, STDIN_SECRET, ENV_SECRET] {
        assert!(!shown.contains(secret), "{secret} shown");
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the database"
        );
    }
}

#[test]
fn a_server_without_a_scope_is_refused() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "lonely",
        "--upstream",
        "http://127.0.0.1:9/mcp",
    ]);
    let err = fails(c);
    assert!(err.contains("at least one --scope"), "{err}");
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "list"]);
    let all = json_of(c);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["name"] != "lonely"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_scope_and_the_unmapped_settings_are_set_from_the_cli() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "server",
        "add",
        "crm",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "crm:read=search,resource:crm://,prompt:summary",
        "--scope",
        "crm:write=update_*",
        "--challenge-scope",
        "crm:read",
        "--unmapped-tools",
        "allow",
        "--unmapped-prompts",
        "deny",
        "--allowed-origin",
        "https://app.example",
        "--upstream-timeout",
        "30s",
        "--resource-name",
        "CRM",
    ]);
    let added = json_of(c);
    assert_eq!(added["settings"]["challenge_scope"], "crm:read");
    assert_eq!(added["settings"]["unmapped_tools"], "allow");
    assert_eq!(added["settings"]["unmapped_prompts"], "deny");
    assert_eq!(added["settings"]["upstream_timeout_secs"], 30);
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "add",
        "bad",
        "--upstream",
        "http://127.0.0.1:9/mcp",
    ]);
    c.args(["--scope", "b:r=t", "--unmapped-tools", "maybe"]);
    let err = fails(c);
    assert!(err.contains("allow or deny"), "{err}");

    // The gateway's challenge asks for the configured scope.
    let server = f.serve(&[]);
    let challenge = || async {
        let r = reqwest::Client::new()
            .post(format!("{}/mcp/crm", server.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        r.headers()["www-authenticate"].to_str().unwrap().to_owned()
    };
    let www = challenge().await;
    assert!(www.contains(r#"scope="crm:read""#), "{www}");
    let mut c = warden(&f.dir);
    c.args([
        "server",
        "update",
        "crm",
        "--challenge-scope",
        "crm:read crm:write",
    ]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["server", "update", "crm", "--unset", "unmapped_tools"]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "show", "crm"]);
    let shown = json_of(c);
    assert_eq!(shown["settings"]["challenge_scope"], "crm:read crm:write");
    assert!(shown["settings"].get("unmapped_tools").is_none());
    // The running gateway picks the change up within its refresh interval.
    let mut www = String::new();
    for _ in 0..100 {
        www = challenge().await;
        if www.contains(r#"scope="crm:read crm:write""#) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(www.contains(r#"scope="crm:read crm:write""#), "{www}");
}
