//! A real headless Chromium, driven over W3C WebDriver (chromedriver), through the sign-in
//! and consent pages: the browser really parses the pages, keeps the cookies, enforces the
//! CSP and follows the redirects.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`. Without them each test prints
//! `SKIPPED` and passes, unless `WARDEN_REQUIRE_BROWSER=1` (CI sets it), when it fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one condition may take to become true (generous: CI machines are slow).
const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 appendix B: a verifier and its S256 challenge, computed independently of Warden.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser tools are installed; if not, skips loudly (or fails, when required).
pub(crate) fn browser_available(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("WARDEN_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "WARDEN_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing"
    );
    // Straight to the stderr handle, not `eprintln!`: libtest would capture that and show
    // it only if the test failed.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test} (no chromium/chromedriver): install them with \
         `apt-get install chromium chromium-driver` ***\n"
    );
    false
}

// ---------------------------------------------------------------------------------------------
// WebDriver
// ---------------------------------------------------------------------------------------------

/// A chromedriver process with one browser session. Dropping it ends the session and kills
/// chromedriver's whole process group, so no Chromium outlives a failed test.
pub(crate) struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver_port: u16,
    session_id: String,
    driver: Option<Child>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let profile = tempfile::tempdir().unwrap();
        let driver_port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut b = Self {
            http,
            session: String::new(),
            driver_port,
            session_id: String::new(),
            driver: Some(driver),
            _profile: profile,
        };
        let root = format!("http://127.0.0.1:{driver_port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = match b.http.get(format!("{root}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .map(|v| v["value"]["ready"] == true),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            if let Some(status) = b.driver.as_mut().unwrap().try_wait().unwrap() {
                panic!("chromedriver exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    "--password-store=basic",
                    format!("--user-data-dir={}", b._profile.path().display()),
                ],
            },
        }}});
        let resp = b
            .http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "new session failed: {status} {body}");
        b.session_id = body["value"]["sessionId"].as_str().unwrap().to_owned();
        b.session = format!("{root}/session/{}", b.session_id);
        b
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.try_cmd(method.clone(), path, body).await;
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {value}"
        );
        value
    }

    async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        (status, v["value"].clone())
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub(crate) async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap().to_owned()
    }

    pub(crate) async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap().to_owned()
    }

    /// The element matching `css`, once it exists (polled until [`WAIT`]).
    pub(crate) async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, v) = self
                .try_cmd(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if status.is_success() {
                return v[ELEMENT].as_str().unwrap().to_owned();
            }
            self.fail_fast_on_error_page(&format!("element {css:?}"))
                .await;
            assert!(
                Instant::now() < deadline,
                "no element {css:?} on {} after {WAIT:?}; last error {v}; page:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn property(&self, css: &str, name: &str) -> Value {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/property/{name}"),
            None,
        )
        .await
    }

    /// Panics at once if Warden answered with an error page: waiting on would only time out.
    async fn fail_fast_on_error_page(&self, waiting_for: &str) {
        let src = self.source().await;
        assert!(
            !is_error_page(&src),
            "an error page instead of {waiting_for} at {}:\n{src}",
            self.url().await
        );
    }

    /// Waits until the current URL satisfies `pred`; returns it.
    pub(crate) async fn wait_url(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if pred(&url) {
                return url;
            }
            self.fail_fast_on_error_page(what).await;
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; at {url}; page:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page text contains `needle`; returns the page source.
    pub(crate) async fn wait_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let src = self.source().await;
            if src.contains(needle) {
                return src;
            }
            assert!(
                !is_error_page(&src),
                "an error page instead of {needle:?} at {}:\n{src}",
                self.url().await
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?} at {}; page:\n{src}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cookies visible to the current page.
    async fn cookies(&self) -> Vec<Value> {
        let v = self.cmd(reqwest::Method::GET, "/cookie", None).await;
        v.as_array().unwrap().clone()
    }

    /// The browser console log since the last call (chromedriver's `goog:loggingPrefs`).
    async fn console(&self) -> Vec<Value> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Asserts the console shows no CSP violation (the pages must obey their own policy).
    async fn assert_no_csp_violations(&self) {
        let log = self.console().await;
        for entry in &log {
            eprintln!("browser console: {entry}");
        }
        let bad: Vec<&Value> = log
            .iter()
            .filter(|e| {
                let m = e["message"].as_str().unwrap_or_default();
                m.contains("Content Security Policy") || m.contains("Refused to")
            })
            .collect();
        assert!(bad.is_empty(), "CSP violations in the console: {bad:#?}");
    }
}

/// `DELETE path` on loopback `port`, without a runtime; waits for the whole response
/// (chromedriver keeps the connection open, so reading to EOF would hang).
fn blocking_delete(port: u16, path: &str) {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req =
        format!("DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return;
        }
    }
}

/// Whether `src` is one of Warden's error pages (the sign-in form's own error has a role).
fn is_error_page(src: &str) -> bool {
    src.contains("<p class=\"error\">")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (closes Chromium) with a tiny blocking request: this runs on
        // panic too, where no async runtime can be awaited.
        if !self.session_id.is_empty() {
            blocking_delete(self.driver_port, &format!("/session/{}", self.session_id));
        }
        if let Some(mut child) = self.driver.take() {
            // The whole group: chromedriver and anything of Chromium's still running.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client's redirect target
// ---------------------------------------------------------------------------------------------

/// A loopback HTTP listener standing in for the client's redirect URI: it answers every
/// request `200 ok` and reports `/callback` queries on a channel.
pub(crate) struct Callback {
    pub(crate) uri: String,
    rx: mpsc::UnboundedReceiver<String>,
}

impl Callback {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    if let Some(query) = target.strip_prefix("/callback") {
                        let _ = tx.send(query.trim_start_matches('?').to_owned());
                    }
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\
                              connection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            uri: format!("http://127.0.0.1:{port}/callback"),
            rx,
        }
    }

    /// The query of the next `/callback` request, as name/value pairs.
    pub(crate) async fn next(&mut self) -> Vec<(String, String)> {
        let q = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("the browser never reached the redirect URI")
            .unwrap();
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }
}

pub(crate) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

/// A running Warden with a public client whose redirect URI is a live listener, a user
/// `alice`, and a browser. (Fields drop in order: the browser, then warden, then its
/// data dir.)
struct Setup {
    browser: Browser,
    _server: Server,
    callback: Callback,
    client_id: String,
    user_id: String,
    issuer: String,
    f: Fixture,
}

impl Setup {
    async fn new() -> Self {
        let callback = Callback::start().await;
        let f = Fixture::new();
        let mut c = warden(&f.dir);
        c.args([
            "--json",
            "client",
            "add",
            "Notes Desktop",
            "--public",
            "--redirect-uri",
            &callback.uri,
        ]);
        let client: Value = serde_json::from_str(&ok(c, None)).unwrap();
        let mut c = warden(&f.dir);
        c.args(["--json", "user", "add", "alice", "--password-stdin"]);
        let user: Value = serde_json::from_str(&ok(c, Some(&format!("{PASSWORD}\n")))).unwrap();
        // Chromium starts while warden does.
        let browser = tokio::spawn(Browser::start());
        let server = tokio::task::block_in_place(|| f.serve(&[]));
        let meta: Value =
            reqwest::get(format!("{}/.well-known/oauth-authorization-server", f.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        Self {
            issuer: meta["issuer"].as_str().unwrap().to_owned(),
            client_id: client["client_id"].as_str().unwrap().to_owned(),
            user_id: user["id"].as_str().unwrap().to_owned(),
            browser: browser.await.unwrap(),
            _server: server,
            callback,
            f,
        }
    }

    fn authorize_url(&self, state: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.callback.uri)
            .append_pair("state", state)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.f.resource)
            .append_pair("scope", "notes:read")
            .finish();
        format!("{}/oauth/authorize?{query}", self.f.base)
    }

    /// Opens the authorize URL and signs in as alice with `password`.
    async fn sign_in(&self, state: &str, password: &str) {
        let b = &self.browser;
        b.goto(&self.authorize_url(state)).await;
        let src = b.wait_text("Sign in").await;
        assert!(src.contains("Notes Desktop"), "the client is named: {src}");
        b.type_into("#username", "alice").await;
        b.type_into("#password", password).await;
        b.click("#sign-in").await;
    }

    /// Signs in and waits for the consent page; checks what it shows and the cookies.
    async fn reach_consent(&self, state: &str) {
        self.sign_in(state, PASSWORD).await;
        let b = &self.browser;
        b.find("#allow").await;
        let src = b.source().await;
        for shown in [
            "Authorize Notes Desktop",
            "alice",
            "notes:read",
            "127.0.0.1",
        ] {
            assert!(src.contains(shown), "consent page lacks {shown:?}:\n{src}");
        }
        assert!(
            src.contains(&self.f.resource),
            "consent names the server:\n{src}"
        );
        assert!(
            !src.contains("notes:write"),
            "only the asked-for scope:\n{src}"
        );
        // Plain-http loopback: no `__Host-`/`Secure` (the browser would drop them), but
        // HttpOnly and SameSite=Lax.
        let cookies = b.cookies().await;
        let session = cookies
            .iter()
            .find(|c| c["name"] == "warden_session")
            .unwrap_or_else(|| panic!("no session cookie in {cookies:#?}"));
        assert_eq!(session["httpOnly"], true, "{session}");
        assert_eq!(session["sameSite"], "Lax", "{session}");
        assert_eq!(session["path"], "/", "{session}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_consents_and_the_code_redeems() {
    if !browser_available("browser_signs_in_consents_and_the_code_redeems") {
        return;
    }
    let started = Instant::now();
    let mut s = Setup::new().await;
    let state = "st-allow-Zx9";
    s.reach_consent(state).await;
    s.browser.click("#allow").await;

    let url = s
        .browser
        .wait_url("the redirect URI", |u| u.starts_with(&s.callback.uri))
        .await;
    assert!(
        s.browser.source().await.contains("ok"),
        "the listener answered"
    );
    let q = s.callback.next().await;
    assert_eq!(param(&q, "state"), Some(state), "{q:?}");
    assert_eq!(param(&q, "iss"), Some(s.issuer.as_str()), "{q:?}");
    assert_eq!(param(&q, "error"), None, "{q:?}");
    let code = param(&q, "code").expect("a code").to_owned();
    assert!(url.contains(&format!("code={code}")), "{url}");

    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/token", s.f.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", s.callback.uri.as_str()),
            ("client_id", s.client_id.as_str()),
            ("code_verifier", VERIFIER),
            ("resource", s.f.resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer"),
        "{body}"
    );
    assert_eq!(body["scope"], "notes:read", "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], s.issuer.as_str(), "{c}");
    assert_eq!(c["aud"], s.f.resource.as_str(), "{c}");
    assert_eq!(c["sub"], s.user_id.as_str(), "{c}");
    assert_eq!(c["client_id"], s.client_id.as_str(), "{c}");
    assert_eq!(c["scope"], "notes:read", "{c}");

    // Warden itself vouches for it (signature, expiry, revocation), to a resource server
    // allowed to introspect.
    let mut c = warden(&s.f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "notes-rs",
        "--confidential",
        "--grant",
        "client_credentials",
        "--scope",
        "warden:introspect",
    ]);
    let rs: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/introspect", s.f.base))
        .basic_auth(
            rs["client_id"].as_str().unwrap(),
            rs["client_secret"].as_str(),
        )
        .form(&[("token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], s.user_id.as_str(), "{info}");
    assert_eq!(info["client_id"], s.client_id.as_str(), "{info}");

    s.browser.assert_no_csp_violations().await;
    eprintln!("browser allow flow took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_deny_returns_access_denied() {
    if !browser_available("browser_deny_returns_access_denied") {
        return;
    }
    let started = Instant::now();
    let mut s = Setup::new().await;
    let state = "st-deny-Qw3";
    s.reach_consent(state).await;
    s.browser.click("#deny").await;

    s.browser
        .wait_url("the redirect URI", |u| u.starts_with(&s.callback.uri))
        .await;
    let q = s.callback.next().await;
    assert_eq!(param(&q, "error"), Some("access_denied"), "{q:?}");
    assert_eq!(param(&q, "state"), Some(state), "{q:?}");
    assert_eq!(param(&q, "iss"), Some(s.issuer.as_str()), "{q:?}");
    assert_eq!(param(&q, "code"), None, "{q:?}");
    s.browser.assert_no_csp_violations().await;
    eprintln!("browser deny flow took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_wrong_password_shows_the_error_and_stays() {
    if !browser_available("browser_wrong_password_shows_the_error_and_stays") {
        return;
    }
    let started = Instant::now();
    let mut s = Setup::new().await;
    s.sign_in("st-pw-Lk2", "not the password").await;
    let b = &s.browser;
    let src = b.wait_text("Wrong username or password.").await;
    assert!(src.contains("role=\"alert\""), "{src}");
    let url = b.url().await;
    assert!(url.starts_with(&format!("{}/oauth/", s.f.base)), "{url}");
    assert!(
        !src.contains("id=\"allow\""),
        "no consent without sign-in: {src}"
    );
    // The form is there again, the name kept, the password not.
    assert_eq!(b.property("#username", "value").await, "alice");
    assert_eq!(b.property("#password", "value").await, "");
    assert!(
        s.callback.rx.try_recv().is_err(),
        "nothing may reach the redirect URI"
    );
    b.assert_no_csp_violations().await;

    // And the right password still works from the error page.
    b.type_into("#password", PASSWORD).await;
    b.click("#sign-in").await;
    b.find("#allow").await;
    assert!(
        s.callback.rx.try_recv().is_err(),
        "nothing may reach the redirect URI before consent"
    );
    eprintln!("browser wrong-password flow took {:?}", started.elapsed());
}
