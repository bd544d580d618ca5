//! Every flow, end to end, then a search of every log line, every audit event and every
//! byte of the database for every secret that was issued or sent: none may be there.

use std::process::Stdio;

use serde_json::{json, Value};

use crate::support::*;
use crate::user_agent::{self, Decision};

const VERIFIER: &str = "scrubVerifier-0123456789abcdefghijklmnopqrstuvwxyzABCD";
const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_survives_anywhere_after_every_flow() {
    let f = Fixture::new();
    let _up = start_demo_upstream(&f, "demo");
    let resource = format!("{}/mcp/demo", f.base);
    let redirect = "http://127.0.0.1:1/cb";
    let password = "Scrub-Pa55word-for-alice";
    let wrong_password = "Wrong-Pa55word-never-stored";
    let mut c = warden(&f.dir);
    c.args(["user", "add", "alice", "--password-stdin"]);
    ok(c, Some(&format!("{password}\n")));
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "ide",
        "--public",
        "--redirect-uri",
        redirect,
    ]);
    let ide: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let ide_id = ide["client_id"].as_str().unwrap().to_owned();
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "orch",
        "--confidential",
        "--grant",
        "client_credentials",
        "--grant",
        TE,
        "--scope",
        "notes:read",
        "--scope",
        "notes:write",
        "--scope",
        "warden:introspect",
    ]);
    let orch: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let (orch_id, orch_secret) = (
        orch["client_id"].as_str().unwrap().to_owned(),
        orch["client_secret"].as_str().unwrap().to_owned(),
    );

    let mut secrets: Vec<String> = vec![
        password.into(),
        wrong_password.into(),
        VERIFIER.into(),
        orch_secret.clone(),
        f.client_secret.clone(),
    ];
    let server = f.serve(&[("RUST_LOG", "trace"), ("WARDEN_LOG__FORMAT", "json")]);
    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth/token", f.base);

    // A failed sign-in, then authorize → sign in → consent → code.
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", ide_id.as_str()),
            ("redirect_uri", redirect),
            ("state", "st"),
            ("code_challenge", warden_core::pkce::s256(VERIFIER).as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource.as_str()),
        ])
        .finish();
    let auth_url = format!("{}/oauth/authorize?{q}", f.base);
    let page = http
        .get(&auth_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("password"));
    let _ = http
        .post(format!("{}/oauth/login", f.base))
        .form(&[("username", "alice"), ("password", wrong_password)])
        .send()
        .await
        .unwrap();
    let back = user_agent::authorize(&auth_url, "alice", password, Decision::Allow).await;
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    secrets.push(code.clone());

    // Code → tokens; refresh; a replay of the old refresh token (reuse detection).
    let t1: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect),
            ("client_id", ide_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (at1, rt1) = (
        t1["access_token"].as_str().unwrap().to_owned(),
        t1["refresh_token"].as_str().unwrap().to_owned(),
    );
    let t2: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1.as_str()),
            ("client_id", ide_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (at2, rt2) = (
        t2["access_token"].as_str().unwrap().to_owned(),
        t2["refresh_token"].as_str().unwrap().to_owned(),
    );
    secrets.extend([at1.clone(), rt1.clone(), at2.clone(), rt2.clone()]);

    // Gateway calls with the user's token.
    let init = http.post(&resource).bearer_auth(&at2).header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .send().await.unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The demo (rmcp) answers as a one-event SSE stream.
    let who = http.post(&resource).bearer_auth(&at2).header("accept", "application/json, text/event-stream").header("mcp-session-id", &session)
        .json(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}))
        .send().await.unwrap().text().await.unwrap();
    let who: Value = who
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .unwrap_or_else(|| panic!("no SSE data in {who}"));
    let assertion = who["result"]["structuredContent"]["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    secrets.push(assertion);

    // Machine token, exchange, introspection, revocation.
    let cc: Value = http
        .post(&token_url)
        .basic_auth(&orch_id, Some(&orch_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource.as_str()),
            ("scope", "notes:read notes:write"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let machine = cc["access_token"].as_str().unwrap().to_owned();
    let ex: Value = http
        .post(&token_url)
        .basic_auth(&orch_id, Some(&orch_secret))
        .form(&[
            ("grant_type", TE),
            ("subject_token", machine.as_str()),
            ("subject_token_type", AT),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exchanged = ex["access_token"].as_str().unwrap().to_owned();
    secrets.extend([machine.clone(), exchanged.clone()]);
    for t in [&at2, &rt2, &exchanged] {
        let r: Value = http
            .post(format!("{}/oauth/introspect", f.base))
            .basic_auth(&orch_id, Some(&orch_secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["active"], true, "{r}");
    }
    let _ = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1.as_str()),
            ("client_id", ide_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let r = http
        .post(format!("{}/oauth/revoke", f.base))
        .form(&[("token", rt2.as_str()), ("client_id", ide_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Dynamic registration of a confidential client: its secret is shown once.
    let reg: Value = http.post(format!("{}/oauth/register", f.base))
        .json(&json!({"client_name":"dyn","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic","grant_types":["authorization_code"]}))
        .send().await.unwrap().json().await.unwrap();
    if let Some(s) = reg["client_secret"].as_str() {
        secrets.push(s.to_owned());
    }

    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
    let logs = format!("{stdout}\n{stderr}");
    assert!(logs.lines().count() > 50, "a trace-level log was captured");

    // The audit log, as exported.
    let mut c = warden(&f.dir);
    c.args(["events", "export", "--limit", "10000"]);
    c.stdout(Stdio::piped());
    let events = ok(c, None);
    assert!(
        events.contains("token.exchanged") && events.contains("refresh.reuse_detected"),
        "the flows were audited"
    );

    // Every byte of the database files.
    let db = database_bytes(&f.dir);
    assert!(db.len() > 10_000);

    for s in &secrets {
        let short = &s[..s.len().min(10)];
        assert!(
            !logs.contains(s.as_str()),
            "a secret ({short}…) is in the logs"
        );
        assert!(
            !events.contains(s.as_str()),
            "a secret ({short}…) is in the audit log"
        );
        assert!(
            !db.windows(s.len()).any(|w| w == s.as_bytes()),
            "a secret ({short}…) is in the database"
        );
        // JWTs: not even their signature part.
        if let Some(sig) = s.rsplit('.').next().filter(|_| s.matches('.').count() == 2) {
            assert!(
                !logs.contains(sig) && !events.contains(sig),
                "a JWT signature ({short}…) leaked"
            );
        }
    }
    eprintln!(
        "searched logs ({} lines), {} audit events and {} database bytes for {} secrets",
        logs.lines().count(),
        events.lines().count(),
        db.len(),
        secrets.len()
    );
}
