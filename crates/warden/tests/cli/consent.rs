//! Consent is remembered per user, client and resource, and withdrawing it revokes the
//! sessions it produced.

use crate::support::*;
use crate::user_agent::{self, Decision};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_listed_and_withdrawal_revokes_its_sessions() {
    let f = Fixture::new();
    let redirect = "http://127.0.0.1:1/cb";
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
    let client: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let mut c = warden(&f.dir);
    c.args(["user", "add", "alice", "--password-stdin"]);
    ok(c, Some("pw-for-alice\n"));
    let _server = f.serve(&[]);

    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", f.resource.as_str()),
            ("scope", "notes:read"),
        ])
        .finish();
    let back = user_agent::authorize(
        &format!("{}/oauth/authorize?{q}", f.base),
        "alice",
        "pw-for-alice",
        Decision::Allow,
    )
    .await;
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let http = reqwest::Client::new();
    let tokens: serde_json::Value = http
        .post(format!("{}/oauth/token", f.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    let mut c = warden(&f.dir);
    c.args(["--json", "consent", "list", "--user", "alice"]);
    let list: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["client_id"], client_id.as_str());
    assert_eq!(list[0]["resource"], f.resource.as_str());
    assert_eq!(list[0]["scopes"], serde_json::json!(["notes:read"]));

    let mut c = warden(&f.dir);
    c.args([
        "--json", "consent", "revoke", "--user", "alice", "--client", &client_id,
    ]);
    let out: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert_eq!(out["consents_removed"], 1);
    assert_eq!(out["sessions_revoked"], 1);

    let r = http
        .post(format!("{}/oauth/token", f.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut c = warden(&f.dir);
    c.args(["--json", "consent", "list", "--user", "alice"]);
    let list: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert!(list.as_array().unwrap().is_empty());
    let mut c = warden(&f.dir);
    c.args([
        "consent", "revoke", "--user", "alice", "--client", &client_id,
    ]);
    fails(c);
}
