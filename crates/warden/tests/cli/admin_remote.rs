//! Admin commands against a running server (`--server URL`) with the bootstrap
//! credential from `init`, and the same `--json` shapes as on the data dir.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// The bootstrap admin credential and a data dir with a running server.
struct Remote {
    f: Fixture,
    id: String,
    secret: String,
}

impl Remote {
    fn setup() -> Remote {
        let (f, init) = Fixture::initialized();
        let admin = &init["admin_client"];
        assert_eq!(admin["name"], "warden-admin");
        assert_eq!(
            admin["scopes"],
            serde_json::json!(["admin:read", "admin:write"])
        );
        let id = admin["client_id"].as_str().unwrap().to_owned();
        let secret = admin["client_secret"].as_str().unwrap().to_owned();
        Remote { f, id, secret }
    }

    /// `warden --server URL …` with the admin credential in the environment, and a data
    /// dir that does not exist: nothing may be read locally.
    fn remote(&self, args: &[&str]) -> Command {
        let mut c = warden(Path::new("/nonexistent/warden-data"));
        c.env("WARDEN_ADMIN_CLIENT_ID", &self.id)
            .env("WARDEN_ADMIN_CLIENT_SECRET", &self.secret)
            .args(["--server", &self.f.base])
            .args(args);
        c
    }

    fn local(&self, args: &[&str]) -> Command {
        let mut c = warden(&self.f.dir);
        c.args(args);
        c
    }
}

fn json(cmd: Command, stdin: Option<&str>) -> Value {
    serde_json::from_str(&ok(cmd, stdin)).unwrap()
}

/// The value's shape: its keys and the JSON types of its leaves.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => Value::Null,
    }
}

/// `warden serve` at TRACE level with its output in a file (a pipe would fill up).
async fn serve_logging_to(f: &Fixture, log: &Path) -> Server {
    let file = std::fs::File::create(log).unwrap();
    let mut c = warden(&f.dir);
    c.env("RUST_LOG", "trace")
        .args(["serve", "--listen", &format!("127.0.0.1:{}", f.port)])
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let server = Server {
        child: Some(c.spawn().unwrap()),
        base: f.base.clone(),
        drain: None,
    };
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{}/readyz", f.base)).send().await {
            if r.status() == 200 {
                return server;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("warden did not become ready");
}

async fn token_status(base: &str, id: &str, secret: &str, resource: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", resource)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_command_works_remotely_with_the_bootstrap_credential() {
    let r = Remote::setup();
    let log_path = r.f.dir.with_file_name("serve.log");
    let server = serve_logging_to(&r.f, &log_path).await;

    // Registry.
    let added = json(
        r.remote(&[
            "--json",
            "server",
            "add",
            "tickets",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "tickets:read=list,show",
            "--token-ttl",
            "10m",
        ]),
        None,
    );
    assert_eq!(added["canonical_uri"], format!("{}/mcp/tickets", r.f.base));
    assert_eq!(added["access_token_ttl_secs"], 600);
    let remote_list = json(r.remote(&["--json", "server", "list"]), None);
    let local_list = json(r.local(&["--json", "server", "list"]), None);
    assert_eq!(remote_list, local_list, "one shape, one truth");
    assert_eq!(remote_list.as_array().unwrap().len(), 2);
    assert_eq!(
        json(r.remote(&["--json", "server", "show", "tickets"]), None),
        added
    );
    let text = ok(r.remote(&["server", "list"]), None);
    assert!(
        text.contains("tickets") && text.contains("admin:read"),
        "{text}"
    );

    // A refusal is the server's message, with its code, and a failing exit.
    let err = fails(r.remote(&[
        "server",
        "add",
        "tickets",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "tickets:use=t",
    ]));
    assert!(
        err.contains("already registered") && err.contains("409"),
        "{err}"
    );
    let err = fails(r.remote(&[
        "server",
        "add",
        "x",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "x:use=t",
        "--canonical-uri",
        "https://a.example/x#frag",
    ]));
    assert!(err.contains("fragment"), "{err}");

    // Clients, and a secret rotation whose old and new secrets both work in the overlap.
    let robot = json(
        r.remote(&[
            "--json",
            "client",
            "add",
            "robot",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "tickets:read",
        ]),
        None,
    );
    let local_robot = json(r.local(&["--json", "client", "show", "robot"]), None);
    let robot_id = robot["client_id"].as_str().unwrap().to_owned();
    let old = robot["client_secret"].as_str().unwrap().to_owned();
    let mut robot_view = robot.clone();
    robot_view.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(robot_view, local_robot);
    let tickets = format!("{}/mcp/tickets", r.f.base);
    assert_eq!(
        token_status(&r.f.base, &robot_id, &old, &tickets).await,
        200
    );
    let rotated = json(
        r.remote(&[
            "--json",
            "client",
            "rotate-secret",
            "robot",
            "--overlap",
            "1h",
        ]),
        None,
    );
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["client"]["active_secrets"], 2);
    assert!(rotated["previous_secrets_expire_at"].is_number());
    assert_eq!(
        token_status(&r.f.base, &robot_id, &old, &tickets).await,
        200
    );
    assert_eq!(
        token_status(&r.f.base, &robot_id, &new, &tickets).await,
        200
    );
    let remote_clients = json(r.remote(&["--json", "client", "list"]), None);
    assert_eq!(
        remote_clients,
        json(r.local(&["--json", "client", "list"]), None)
    );
    let err = fails(r.remote(&["client", "show", "nobody"]));
    assert!(err.contains("no client") && err.contains("404"), "{err}");

    // Users: the password travels in the body, never in an argument.
    let bob = json(
        r.remote(&[
            "--json",
            "user",
            "add",
            "bob",
            "--password-stdin",
            "--group",
            "eng",
        ]),
        Some("correct horse battery\n"),
    );
    assert_eq!(bob["groups"], serde_json::json!(["eng"]));
    assert_eq!(
        json(r.remote(&["--json", "user", "list"]), None),
        json(r.local(&["--json", "user", "list"]), None)
    );
    assert_eq!(
        json(r.remote(&["--json", "user", "remove", "bob"]), None),
        serde_json::json!({ "removed": "bob" })
    );

    // Keys.
    let keys = json(r.remote(&["--json", "keys", "list"]), None);
    assert_eq!(keys, json(r.local(&["--json", "keys", "list"]), None));
    let key = json(r.remote(&["--json", "keys", "rotate"]), None);
    assert_eq!(key["state"], "pending");
    let err = fails(r.remote(&["keys", "rotate"]));
    assert!(err.contains("already in progress"), "{err}");

    // Events: the same events either way, each change attributed to the admin client.
    let q = ["--json", "events", "--kind", "client.secret_rotated"];
    let remote_page = json(r.remote(&q), None);
    assert_eq!(remote_page, json(r.local(&q), None));
    let remote_events = &remote_page["events"];
    assert_eq!(remote_events.as_array().unwrap().len(), 1);
    assert_eq!(remote_events[0]["client_id"], robot_id);
    assert_eq!(
        remote_events[0]["detail"]["actor"],
        format!("client:{}", r.id)
    );
    let lines = ok(
        r.remote(&["events", "export", "--kind", "server.registered"]),
        None,
    );
    assert_eq!(
        lines.lines().count(),
        2,
        "admin (init) and tickets: {lines}"
    );
    assert!(ok(r.remote(&["events", "verify"]), None).contains("intact"));

    // Status: the same report either way, in policy, exit 0.
    let remote_status = json(r.remote(&["--json", "status"]), None);
    let local_status = json(r.local(&["--json", "status"]), None);
    assert_eq!(shape(&remote_status), shape(&local_status));
    assert_eq!(remote_status["ok"], true, "{remote_status:#}");
    assert_eq!(remote_status["servers"], local_status["servers"]);
    let text = ok(r.remote(&["status"]), None);
    assert!(
        text.contains("In policy") && text.contains("tickets"),
        "{text}"
    );

    // Removal.
    assert_eq!(
        json(r.remote(&["--json", "server", "remove", "tickets"]), None),
        serde_json::json!({ "removed": "tickets" })
    );
    let err = fails(r.remote(&["server", "remove", "admin"]));
    assert!(err.contains("built in"), "{err}");

    // Not one of the secrets that crossed the admin API reached the server's log.
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("/admin/v1/"), "the calls are logged");
    for secret in [r.secret.as_str(), &old, &new, "correct horse battery"] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_refuses_without_the_right_credentials() {
    let r = Remote::setup();
    // A read-only admin client, made locally.
    let ro = json(
        r.local(&[
            "--json",
            "client",
            "add",
            "reader",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "admin:read",
        ]),
        None,
    );
    let _server = r.f.serve(&[]);
    let mut c = r.remote(&[
        "server",
        "add",
        "x",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "x:use=t",
    ]);
    c.env("WARDEN_ADMIN_CLIENT_ID", ro["client_id"].as_str().unwrap())
        .env(
            "WARDEN_ADMIN_CLIENT_SECRET",
            ro["client_secret"].as_str().unwrap(),
        );
    let err = fails(c);
    assert!(err.contains("admin:write") && err.contains("403"), "{err}");
    let mut c = r.remote(&["--json", "server", "list"]);
    c.env("WARDEN_ADMIN_CLIENT_ID", ro["client_id"].as_str().unwrap())
        .env(
            "WARDEN_ADMIN_CLIENT_SECRET",
            ro["client_secret"].as_str().unwrap(),
        );
    ok(c, None);

    let mut c = r.remote(&["server", "list"]);
    c.env("WARDEN_ADMIN_CLIENT_SECRET", "wdn_cs_wrong");
    let err = fails(c);
    assert!(
        err.contains("cannot get an admin token") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("wdn_cs_wrong"));

    let mut c = r.remote(&["server", "list"]);
    c.env_remove("WARDEN_ADMIN_CLIENT_SECRET");
    assert!(fails(c).contains("WARDEN_ADMIN_CLIENT_SECRET"));

    let err = fails(r.remote(&["init", "--public-url", "http://127.0.0.1:1"]));
    assert!(err.contains("data dir only"), "{err}");

    let mut c = warden(Path::new("/nonexistent"));
    c.env("WARDEN_ADMIN_CLIENT_ID", "x")
        .env("WARDEN_ADMIN_CLIENT_SECRET", "y")
        .args(["--server", "http://10.1.2.3:8080", "server", "list"]);
    assert!(fails(c).contains("plain HTTP"));
    let mut c = warden(Path::new("/nonexistent"));
    c.env("WARDEN_ADMIN_CLIENT_ID", "x")
        .env("WARDEN_ADMIN_CLIENT_SECRET", "y")
        .args(["--server", "ftp://127.0.0.1:8080", "server", "list"]);
    assert!(fails(c).contains("https URL"));

    // The help text never shows the secret from the environment.
    let mut c = r.remote(&["--help"]);
    c.env("WARDEN_ADMIN_CLIENT_SECRET", "wdn_cs_should_not_show");
    assert!(!ok(c, None).contains("wdn_cs_should_not_show"));
}

#[test]
fn status_exits_2_when_something_is_out_of_policy() {
    let r = Remote::setup();
    let mut c = r.local(&["--json", "status"]);
    let s = json(c, None);
    assert_eq!(s["ok"], true, "{s:#}");
    // The policy tightens under a registered server's 15-minute tokens.
    c = r.local(&[
        "server",
        "add",
        "notes",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "notes:read=a",
    ]);
    ok(c, None);
    let mut c = r.local(&["status"]);
    c.env("WARDEN_TOKENS__MAX_ACCESS_TOKEN_TTL", "5m")
        .env("WARDEN_TOKENS__ACCESS_TOKEN_TTL", "5m");
    let out = run(c, None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OUT OF POLICY"), "{text}");
    assert!(text.contains("tokens.max_access_token_ttl"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of policy"));
}

#[test]
fn server_updates_policy_and_consents_work_remotely() {
    let r = Remote::setup();
    let _server = r.f.serve(&[]);
    json(
        r.remote(&[
            "--json",
            "server",
            "add",
            "notes",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "notes:read=notes_list",
            "--scope",
            "notes:write=notes_write",
        ]),
        None,
    );

    // A partial update: only what is given changes, and local and remote agree.
    let updated = json(
        r.remote(&[
            "--json",
            "server",
            "update",
            "notes",
            "--upstream",
            "http://127.0.0.1:9001/mcp",
            "--leeway",
            "10s",
            "--token-ttl",
            "10m",
        ]),
        None,
    );
    assert_eq!(updated["upstream"], "http://127.0.0.1:9001/mcp");
    assert_eq!(updated["leeway_secs"], 10);
    assert_eq!(updated["access_token_ttl_secs"], 600);
    assert_eq!(updated["tool_groups"].as_array().unwrap().len(), 2);
    assert_eq!(
        json(r.local(&["--json", "server", "show", "notes"]), None),
        updated
    );
    let err = fails(r.remote(&["server", "update", "notes", "--leeway", "301s"]));
    assert!(err.contains("leeway") && err.contains("400"), "{err}");
    let err = fails(r.remote(&["server", "update", "notes"]));
    assert!(err.contains("nothing to change"), "{err}");

    // A policy applied remotely: dry run, apply, show, each as on the data dir.
    json(
        r.remote(&[
            "--json",
            "client",
            "add",
            "robot",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "notes:read",
        ]),
        None,
    );
    let file = r.f.dir.with_file_name("policy.toml");
    let policy =
        "version = 1\n\n[[client]]\nid = \"robot\"\nservers = { notes = [\"notes:write\"] }\n";
    std::fs::write(&file, policy).unwrap();
    let path = file.to_str().unwrap();
    let dry = json(
        r.remote(&["--json", "apply", "-f", path, "--dry-run"]),
        None,
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["version"], 0);
    assert!(dry["changes"][0].as_str().unwrap().starts_with("+ client "));
    assert_eq!(
        json(r.remote(&["--json", "policy", "show"]), None)["version"],
        0
    );
    let applied = json(r.remote(&["--json", "apply", "-f", path]), None);
    assert_eq!(applied["version"], 1);
    assert_eq!(ok(r.remote(&["policy", "show"]), None), policy);
    assert_eq!(
        json(r.remote(&["--json", "policy", "show"]), None),
        json(r.local(&["--json", "policy", "show"]), None)
    );
    let events = json(
        r.local(&["--json", "events", "--kind", "policy.applied"]),
        None,
    );
    assert_eq!(
        events["events"][0]["detail"]["actor"],
        format!("client:{}", r.id)
    );

    // An invalid file: each problem with its line, as locally, and nothing changes.
    std::fs::write(
        &file,
        "version = 1\n\n[[client]]\nid = \"nobody\"\nservers = { notes = [\"notes:admin\"] }\n",
    )
    .unwrap();
    let err = fails(r.remote(&["apply", "-f", path]));
    assert!(
        err.contains("policy.toml:line 4:") && err.contains("nobody"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        json(r.remote(&["--json", "policy", "show"]), None)["version"],
        1
    );

    // The policy grants notes:write: an update dropping it is refused.
    let err = fails(r.remote(&[
        "server",
        "update",
        "notes",
        "--scope",
        "notes:read=notes_list",
    ]));
    assert!(err.contains("notes:write") && err.contains("409"), "{err}");
    assert_eq!(
        json(r.local(&["--json", "server", "show", "notes"]), None)["tool_groups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A stdio upstream is a command run on Warden's host: the data dir registers and
    // changes it; an admin client reads it but may not change it.
    ok(
        r.local(&[
            "server",
            "add",
            "tool",
            "--upstream",
            "stdio:python3 -u tool.py",
            "--env",
            "MODE=demo",
            "--scope",
            "tool:use=echo",
        ]),
        None,
    );
    let shown = json(r.remote(&["--json", "server", "show", "tool"]), None);
    assert_eq!(shown["upstream"], "stdio:python3 -u tool.py");
    let err = fails(r.remote(&["server", "update", "tool", "--env", "LD_PRELOAD=/x.so"]));
    assert!(
        err.contains("CLI on the data dir") && err.contains("400"),
        "{err}"
    );
    let err = fails(r.remote(&[
        "server",
        "add",
        "tool2",
        "--upstream",
        "stdio:sh -c id",
        "--scope",
        "tool:use=t",
    ]));
    assert!(err.contains("CLI on the data dir"), "{err}");
    let local = json(
        r.local(&["--json", "server", "update", "tool", "--leeway", "5s"]),
        None,
    );
    assert_eq!(local["leeway_secs"], 5);

    // Consents.
    ok(
        r.remote(&["user", "add", "bob", "--password-stdin"]),
        Some("correct horse battery\n"),
    );
    let remote = json(
        r.remote(&["--json", "consent", "list", "--user", "bob"]),
        None,
    );
    assert_eq!(remote, serde_json::json!([]));
    assert_eq!(
        remote,
        json(
            r.local(&["--json", "consent", "list", "--user", "bob"]),
            None
        )
    );
    let err = fails(r.remote(&["consent", "list", "--user", "nobody"]));
    assert!(err.contains("no user") && err.contains("404"), "{err}");
    let err = fails(r.remote(&["consent", "revoke", "--user", "bob", "--client", "x"]));
    assert!(err.contains("no matching consent"), "{err}");
    let all = json(
        r.remote(&["--json", "consent", "revoke", "--user", "bob"]),
        None,
    );
    assert_eq!(
        all,
        serde_json::json!({ "consents_removed": 0, "sessions_revoked": 0 })
    );
}

#[test]
fn status_warns_of_an_unreachable_external_issuer_and_still_exits_0() {
    let r = Remote::setup();
    let closed = free_port();
    let issuer = format!("http://127.0.0.1:{closed}");
    ok(
        r.local(&[
            "server",
            "add",
            "ext",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "ext:use=t",
            "--issuer",
            &issuer,
        ]),
        None,
    );
    let out = run(r.local(&["status"]), None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "a warning passes: {text}");
    assert!(text.contains("(UNREACHABLE)"), "{text}");
    assert!(
        text.contains("warning: the external issuer") && text.contains("unreachable"),
        "{text}"
    );
    let s = json(r.local(&["--json", "status"]), None);
    let ext = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ext")
        .unwrap();
    assert_eq!(ext["issuer_reachable"], false);
    assert_eq!(ext["findings"][0]["severity"], "warning");
    assert_eq!(s["ok"], true);
}
