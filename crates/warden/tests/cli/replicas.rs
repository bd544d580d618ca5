//! Two replicas on one PostgreSQL database: a token revoked on one is refused by the
//! other's gateway, and a key rotated through the shared store is used by both, each
//! within the maintenance interval (5 s; the documented bound).

use std::time::{Duration, Instant};

use crate::support::*;

/// The documented bound, with slack for a loaded CI machine.
const BOUND: Duration = Duration::from_secs(12);

async fn gateway_status(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    http.post(format!("{base}/mcp/demo"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn kid(jwt: &str) -> String {
    let h = jwt.split('.').next().unwrap();
    let v: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).unwrap(),
    )
    .unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_key_rotations_reach_the_other_replica() {
    let Some(url) = postgres_database("replicas") else {
        return;
    };
    let env = [("WARDEN_DATABASE_URL", url.as_str())];
    let f = Fixture::with_env(&env);
    let mut up = start_demo_upstream_with_env(&f, "demo", &env);
    let mut c = warden(&f.dir);
    c.envs(env);
    c.args([
        "--json",
        "client",
        "add",
        "agent2",
        "--confidential",
        "--grant",
        "client_credentials",
        "--scope",
        "notes:read",
    ]);
    let client: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let a = f.serve(&env);
    let b = f.serve_on(free_port(), &env);
    let http = reqwest::Client::new();
    let resource = format!("{}/mcp/demo", f.base);
    let token_from = |base: String| {
        let (http, id, secret, resource) =
            (http.clone(), id.clone(), secret.clone(), resource.clone());
        async move {
            let r: serde_json::Value = http
                .post(format!("{base}/oauth/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("resource", resource.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_owned()
        }
    };

    // A token from replica A works at replica B's gateway, until A revokes it.
    let token = token_from(a.base.clone()).await;
    assert_eq!(gateway_status(&http, &b.base, &token).await, 200);
    let r = http
        .post(format!("{}/oauth/revoke", a.base))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        gateway_status(&http, &a.base, &token).await,
        401,
        "the revoking replica refuses at once"
    );
    let start = Instant::now();
    while gateway_status(&http, &b.base, &token).await != 401 {
        assert!(
            start.elapsed() < BOUND,
            "replica B still accepts a revoked token after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("revocation reached replica B after {:?}", start.elapsed());

    // A key rotated in the shared store: both replicas sign with it within the bound.
    let before = kid(&token_from(b.base.clone()).await);
    let mut c = warden(&f.dir);
    c.envs(env);
    c.args(["--json", "keys", "rotate", "--immediate"]);
    let rotated: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(before, new_kid);
    let start = Instant::now();
    for base in [a.base.clone(), b.base.clone()] {
        loop {
            let t = token_from(base.clone()).await;
            if kid(&t) == new_kid {
                // And the other replica's gateway accepts what this one now signs.
                assert_eq!(gateway_status(&http, &a.base, &t).await, 200);
                assert_eq!(gateway_status(&http, &b.base, &t).await, 200);
                break;
            }
            assert!(
                start.elapsed() < BOUND,
                "{base} still signs with the old key after {:?}",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("rotation reached both replicas after {:?}", start.elapsed());
    drop((a, b));
    let _ = up.child.take().map(|mut c| c.kill());
}
