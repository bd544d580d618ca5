//! Federated sign-in end to end, with every component real: `oidc-provider` (panva's,
//! OpenID Certified) as the organisation's IdP with users whose ID tokens carry groups,
//! the `warden` binary with the IdP registered through the CLI, headless Chromium as the
//! user's browser, and the official TypeScript MCP SDK client calling tools through the
//! gateway as that user. The IdP's groups, mapped to Warden groups, decide through the
//! fleet policy which tools each user sees.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};

use serde_json::{json, Value};

use crate::browser::{browser_available, Browser, Callback};
use crate::sdk_clients::run_client_with;
use crate::support::*;

/// The fleet policy: engineers read and write notes, readers only read.
const POLICY: &str = "version = 1\ndefault = \"deny\"\n\n\
[[group]]\nname = \"engineers\"\nservers = { demo = [\"notes:read\", \"notes:write\"] }\n\n\
[[group]]\nname = \"readers\"\nservers = { demo = [\"notes:read\"] }\n";

/// Warden's client secret at the IdP.
const IDP_SECRET: &str = "warden-at-the-idp-0b5c2f9e";

/// `oidc-provider` running as a child process; killed on drop.
struct OidcProvider {
    child: Child,
    issuer: String,
    /// The paths the IdP was asked for, in order.
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl OidcProvider {
    fn start(interop: &std::path::Path, config: &Value) -> Self {
        let mut cmd = node(interop);
        cmd.arg(interop.join("idp.mjs"))
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let issuer = loop {
            let line = lines
                .next()
                .expect("oidc-provider exited before it was ready")
                .unwrap();
            if let Some(issuer) = line.strip_prefix("READY ") {
                break issuer.to_owned();
            }
        };
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(req) = line.strip_prefix("REQ ") {
                    seen.lock().unwrap().push(req.to_owned());
                }
            }
        });
        Self {
            child,
            issuer,
            requests,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's run: the SDK client connects, the browser signs the user in at the IdP
/// and allows access at Warden, the client calls tools. Returns the client's RESULT.
async fn run_as(
    interop: &std::path::Path,
    server_url: &str,
    client_id: &str,
    callback: &mut Callback,
    login: &str,
) -> Value {
    let mut cmd = node(interop);
    cmd.arg(interop.join("sdk_client.mjs")).args([
        server_url,
        client_id,
        &callback.uri,
        "--no-refresh",
    ]);
    let browser = Browser::start().await;
    let redirect = callback.uri.clone();
    run_client_with(cmd, async |url: &str| {
        // Warden's sign-in page offers the IdP; the IdP signs the user in and asks for
        // consent; Warden asks for consent; the browser lands on the client.
        browser.goto(url).await;
        browser.wait_text("Continue with Corp SSO").await;
        let page = browser.source().await;
        assert!(
            !page.contains("type=\"password\""),
            "login.local = false: no password form on Warden's page:\n{page}"
        );
        browser.click("#idp-corp").await;
        browser.type_into("input[name=login]", login).await;
        browser.type_into("input[name=password]", "any").await;
        browser.click("button[type=submit]").await;
        // oidc-provider's consent form for Warden's scopes.
        browser.wait_text("Authorize").await;
        browser.click("button[type=submit]").await;
        browser.click("#allow").await;
        let back = browser
            .wait_url("the client's redirect URI", |u| u.starts_with(&redirect))
            .await;
        let q = callback.next().await;
        assert!(
            q.iter().any(|(k, _)| k == "code"),
            "a code came back: {q:?}"
        );
        back
    })
    .await
}

fn tools(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sign_in_at_the_organisations_idp_and_their_groups_decide_the_tools() {
    if !browser_available(
        "users_sign_in_at_the_organisations_idp_and_their_groups_decide_the_tools",
    ) {
        return;
    }
    let Some(interop) = interop_dir("oidc-provider and the TypeScript SDK client") else {
        return;
    };
    let (f, _upstream) = demo_fixture(&[]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let mut c = warden(&f.dir);
    c.arg("apply").arg("-f").arg(&policy);
    ok(c, None);

    let idp = OidcProvider::start(
        &interop,
        &json!({
            "clients": [{
                "client_id": "warden",
                "client_secret": IDP_SECRET,
                "redirect_uris": [format!("{}/oauth/federated/callback", f.base)],
            }],
            "users": {
                "alice": {"email": "alice@corp.example", "name": "Alice", "groups": ["eng", "all"]},
                "bob": {"email": "bob@corp.example", "name": "Bob", "groups": ["sales", "all"]},
            },
        }),
    );
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "idp",
        "add",
        "corp",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "warden",
        "--client-secret-stdin",
        "--use",
        "login",
        "--display-name",
        "Corp SSO",
        "--scope",
        "openid",
        "--scope",
        "email",
        "--scope",
        "profile",
        "--scope",
        "groups",
        "--group-map",
        "eng=engineers",
        "--group-map",
        "sales=readers",
    ]);
    let added: Value = serde_json::from_str(&ok(c, Some(&format!("{IDP_SECRET}\n")))).unwrap();
    assert!(
        !added.to_string().contains(IDP_SECRET),
        "the secret is never shown: {added}"
    );
    let mut callback = Callback::start().await;
    let mut c = warden(&f.dir);
    c.args(["--json", "client", "add", "sdk", "--public"]);
    c.args(["--redirect-uri", &callback.uri]);
    let client: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let warden_server =
        tokio::task::block_in_place(|| f.serve(&[("WARDEN_LOGIN__LOCAL", "false")]));
    let server_url = format!("{}/mcp/demo", f.base);

    let alice = run_as(&interop, &server_url, &client_id, &mut callback, "alice").await;
    let bob = run_as(&interop, &server_url, &client_id, &mut callback, "bob").await;

    // Group mapping through the fleet policy: eng → engineers may write, sales →
    // readers may only read; the unmapped `all` grants nothing.
    let (a, b) = (tools(&alice), tools(&bob));
    assert!(a.contains(&"notes_write".to_owned()), "alice: {a:?}");
    assert!(a.contains(&"notes_list".to_owned()), "alice: {a:?}");
    assert!(!b.contains(&"notes_write".to_owned()), "bob: {b:?}");
    assert!(b.contains(&"notes_list".to_owned()), "bob: {b:?}");
    assert!(!a.contains(&"admin_reset".to_owned()), "alice: {a:?}");

    // The users were provisioned, linked to the IdP, with the mapped groups only.
    let mut c = warden(&f.dir);
    c.args(["--json", "user", "list"]);
    let users: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let users = users
        .as_array()
        .or_else(|| users["users"].as_array())
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        users
            .iter()
            .find(|u| u["username"] == name)
            .unwrap_or_else(|| panic!("no user {name} in {users:?}"))
            .clone()
    };
    let alice_user = find("corp:alice");
    assert_eq!(alice_user["groups"], json!(["engineers"]));
    assert_eq!(find("corp:bob")["groups"], json!(["readers"]));

    // The upstream saw Warden's assertion for the provisioned user, never the token.
    let who = &alice["who"];
    let auth = who["authorization"].as_str().unwrap_or_default();
    let bearer = auth
        .strip_prefix("Bearer ")
        .expect("an assertion reached the upstream");
    let seen = claims(bearer);
    assert_eq!(seen["sub"], alice_user["id"], "{who}");

    // Warden really talked to the IdP: discovery, its keys, and the code redemption.
    let asked = idp.requests.lock().unwrap().clone();
    for path in [
        "GET /.well-known/openid-configuration",
        "GET /jwks",
        "POST /token",
    ] {
        assert!(asked.iter().any(|r| r == path), "{path} in {asked:?}");
    }

    // Audited with the IdP's issuer and subject; no ID token in the log.
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", "login.federated"]);
    let text = ok(c, None);
    assert!(!text.contains("eyJ"), "no JWT in the audit log: {text}");
    let events: Value = serde_json::from_str(&text).unwrap();
    let alice_signed_in = events["events"].as_array().unwrap().iter().any(|e| {
        e["detail"]["idp_subject"] == "alice"
            && e["detail"]["issuer"] == idp.issuer.as_str()
            && e["subject"] == alice_user["id"]
    });
    assert!(alice_signed_in, "{text}");

    // Nothing the IdP issued (ID tokens), nor any token, in Warden's log or its database.
    let (_, out, log) = tokio::task::spawn_blocking(move || warden_server.stop(15))
        .await
        .unwrap();
    for (what, text) in [("stdout", &out), ("log", &log)] {
        assert!(!text.contains("eyJ"), "a JWT in Warden's {what}:\n{text}");
        assert!(
            !text.contains(IDP_SECRET),
            "the IdP secret in Warden's {what}"
        );
    }
    let db = database_bytes(&f.dir);
    assert!(
        !db.windows(IDP_SECRET.len())
            .any(|w| w == IDP_SECRET.as_bytes()),
        "the IdP client secret is sealed at rest"
    );
    assert!(
        !db.windows(3).any(|w| w == b"eyJ"),
        "no JWT stored in clear"
    );
}
