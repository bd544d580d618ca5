//! `warden serve` as a process: health, metadata, a token, and graceful shutdown.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_metadata_tokens_and_stops_gracefully_on_sigterm() {
    let f = Fixture::new();
    let server = f.serve(&[]);
    let http = reqwest::Client::new();
    let get = |p: &str| http.get(format!("{}{p}", f.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready: serde_json::Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let meta: serde_json::Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], f.base);
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: serde_json::Value = get("/oauth/jwks.json").await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    let resp = http
        .post(format!("{}/oauth/token", f.base))
        .basic_auth(&f.client_id, Some(&f.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &f.resource),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], f.resource);
    assert_eq!(c["scope"], "notes:read");

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("warden_tokens_issued_total{grant_type=\"client_credentials\"} 1"),
        "{metrics}"
    );

    // A slow in-flight request finishes even though SIGTERM arrives meanwhile.
    let slow = {
        let http = http.clone();
        let url = format!("{}/oauth/token", f.base);
        let (id, secret, resource) = (
            f.client_id.clone(),
            f.client_secret.clone(),
            f.resource.clone(),
        );
        tokio::spawn(async move {
            // Send headers now, body later: the server is mid-request when SIGTERM lands.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
            let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
            let req = http
                .post(url)
                .basic_auth(id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send();
            let sender = async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let form = format!(
                    "grant_type=client_credentials&resource={}",
                    urlencode(&resource)
                );
                tx.send(Ok(form.into_bytes())).await.unwrap();
            };
            let (resp, ()) = tokio::join!(req, sender);
            resp.unwrap().status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, stderr) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the in-flight request must complete"
    );
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status}\n{stderr}"
    );
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
