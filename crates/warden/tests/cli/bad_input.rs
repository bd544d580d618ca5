//! Bad input to `init` and `serve`: one clear message, a non-zero exit, no panic and no
//! partial data dir.

use crate::support::*;

#[test]
fn init_refuses_a_bad_public_url_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut c = warden(&dir);
    c.args(["init", "--public-url", "http://example.com"]);
    let err = fails(c);
    assert!(err.contains("--public-url must use https"), "{err}");
    assert!(!dir.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no staging dir left behind"
    );
}

#[test]
fn init_refuses_to_overwrite() {
    let f = Fixture::new();
    let before = std::fs::read(f.dir.join("warden.toml")).unwrap();
    let mut c = warden(&f.dir);
    c.args(["init", "--public-url", "http://127.0.0.1:1"]);
    let err = fails(c);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(f.dir.join("warden.toml")).unwrap(), before);
}

#[test]
fn init_with_a_broken_override_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut c = warden(&dir);
    c.env("WARDEN_TOKENS__CODE_TTL", "forever");
    c.args(["init", "--public-url", "http://127.0.0.1:1"]);
    let err = fails(c);
    assert!(
        err.contains("tokens.code_ttl") && err.contains("WARDEN_TOKENS__CODE_TTL"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn data_dir_and_key_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.dir), 0o700);
    assert_eq!(mode(&f.dir.join("master.key")), 0o600);
}

#[test]
fn unknown_config_key_is_named() {
    let f = Fixture::new();
    let path = f.dir.join("warden.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("[gateway]\n", "[gateway]\nleway = \"30s\"\n"),
    )
    .unwrap();
    let mut c = warden(&f.dir);
    c.args(["server", "list"]);
    let err = fails(c);
    assert!(
        err.contains("gateway.leway") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn malformed_config_is_reported_with_a_line() {
    let f = Fixture::new();
    std::fs::write(f.dir.join("warden.toml"), "version = 1\npublic_url = [\n").unwrap();
    let mut c = warden(&f.dir);
    c.args(["server", "list"]);
    let err = fails(c);
    assert!(
        err.contains("not valid TOML") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn missing_data_dir_says_how_to_create_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = warden(&tmp.path().join("nope"));
    c.arg("serve");
    let err = fails(c);
    assert!(err.contains("warden init"), "{err}");
}

#[test]
fn wrong_master_key_is_detected() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.env(
        "WARDEN_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    c.args(["serve", "--listen", "127.0.0.1:0"]);
    let err = fails(c);
    assert!(err.contains("master key does not match"), "{err}");
    let mut c = warden(&f.dir);
    c.env("WARDEN_MASTER_KEY", "not-a-key");
    c.args(["serve", "--listen", "127.0.0.1:0"]);
    let err = fails(c);
    assert!(
        err.contains("WARDEN_MASTER_KEY") && !err.contains("not-a-key"),
        "{err}"
    );
}

#[test]
fn world_readable_master_key_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::new();
    let key = f.dir.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = warden(&f.dir);
    c.args(["server", "list"]);
    let err = fails(c);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn unreachable_database_fails_fast_with_the_host_and_no_password() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.env(
        "WARDEN_DATABASE_URL",
        "postgres://warden:hunter2@127.0.0.1:1/warden",
    );
    c.env("WARDEN_DATABASE__CONNECT_TIMEOUT", "2s");
    c.args(["server", "list"]);
    let started = std::time::Instant::now();
    let err = fails(c);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn admin_commands_refuse_bad_input_without_writing() {
    let f = Fixture::new();
    let dup_uri = [
        "server",
        "add",
        "x",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--scope",
        "x:use=t",
        "--canonical-uri",
        f.resource.as_str(),
    ];
    let cases: &[&[&str]] = &[
        &dup_uri,
        &[
            "server",
            "add",
            "notes",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "notes:use=t",
        ],
        &[
            "server",
            "add",
            "Bad Name",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "bad-name:use=t",
        ],
        &[
            "server",
            "add",
            "y",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "y:use=t",
            "--canonical-uri",
            "https://a.example/x#f",
        ],
        &["client", "add", "c", "--grant", "password"],
        &["client", "add", "c", "--grant", "implicit"],
        &[
            "client",
            "add",
            "c",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &["client", "add", "c", "--grant", "client_credentials"],
        &["server", "show", "nope"],
        &["client", "remove", "nope"],
    ];
    for args in cases {
        let mut c = warden(&f.dir);
        c.args(*args);
        fails(c);
    }
    let mut c = warden(&f.dir);
    c.args(["--json", "server", "list"]);
    let servers: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    // notes, and the built-in admin resource.
    assert_eq!(servers.as_array().unwrap().len(), 2);
    let mut c = warden(&f.dir);
    c.args(["--json", "client", "list"]);
    let clients: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    // agent, and the bootstrap warden-admin.
    assert_eq!(clients.as_array().unwrap().len(), 2);
}

#[test]
fn user_and_client_lifecycle_with_json_output() {
    let f = Fixture::new();
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--group",
        "eng",
    ]);
    let u: serde_json::Value =
        serde_json::from_str(&ok(c, Some("correct horse battery\n"))).unwrap();
    assert_eq!(u["username"], "alice");
    assert_eq!(u["groups"][0], "eng");
    assert!(u.get("password_hash").is_none());
    let mut c = warden(&f.dir);
    c.args(["user", "add", "alice", "--password-stdin"]);
    let out = run(c, Some("x\n"));
    assert!(!out.status.success());
    let mut c = warden(&f.dir);
    c.args(["user", "list"]);
    assert!(ok(c, None).contains("alice"));
    let mut c = warden(&f.dir);
    c.args(["--json", "client", "show", &f.client_id]);
    let shown = ok(c, None);
    assert!(
        !shown.contains(&f.client_secret),
        "a secret is shown only at creation"
    );
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["active_secrets"], 1);
    let mut c = warden(&f.dir);
    c.args(["user", "remove", "alice"]);
    ok(c, None);
    let mut c = warden(&f.dir);
    c.args(["user", "show", "alice"]);
    fails(c);
    // The database never holds a secret in clear.
    let needle = f.client_secret.as_bytes();
    for entry in std::fs::read_dir(&f.dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("warden.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}",
                path.display()
            );
        }
    }
}
