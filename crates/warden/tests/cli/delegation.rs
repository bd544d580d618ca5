//! The real binary: an initial access token gating dynamic registration, and an
//! orchestrator registered by the CLI for token exchange handing a sub-agent a narrower
//! token.

use serde_json::json;

use crate::support::*;

const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_token_and_delegation_through_the_cli_and_server() {
    let mut c = warden(std::path::Path::new("/nonexistent"));
    c.args(["--json", "client", "initial-token"]);
    let minted: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    let token = minted["initial_access_token"].as_str().unwrap().to_owned();
    let digest = minted["sha256"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wdn_iat_"));
    assert_eq!(digest.len(), 64);

    let env = [(
        "WARDEN_REGISTRATION__INITIAL_ACCESS_TOKENS",
        digest.as_str(),
    )];
    let f = Fixture::with_env(&env);
    // Token exchange is for confidential clients, assigned by an administrator.
    let mut c = warden(&f.dir);
    c.args(["client", "add", "orch", "--grant", TE]);
    assert!(fails(c).contains("needs --confidential"));
    let mut c = warden(&f.dir);
    c.envs(env);
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
    ]);
    let orch: serde_json::Value = serde_json::from_str(&ok(c, None)).unwrap();
    assert!(orch["grant_types"].as_array().unwrap().contains(&json!(TE)));
    let (id, secret) = (
        orch["client_id"].as_str().unwrap().to_owned(),
        orch["client_secret"].as_str().unwrap().to_owned(),
    );

    let server = f.serve(&env);
    let http = reqwest::Client::new();
    let meta: serde_json::Value = http
        .get(format!("{}/.well-known/oauth-authorization-server", f.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["registration_endpoint"],
        format!("{}/oauth/register", f.base)
    );
    let register = |auth: Option<String>| {
        let mut req = http
            .post(format!("{}/oauth/register", f.base))
            .json(&json!({
                "client_name": "SDK client",
                "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            }));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(register(None).await.unwrap().status(), 401);
    let r = register(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(r.status(), 201);

    let tok = |form: Vec<(&'static str, String)>| {
        http.post(format!("{}/oauth/token", f.base))
            .basic_auth(&id, Some(&secret))
            .form(&form)
            .send()
    };
    let r: serde_json::Value = tok(vec![
        ("grant_type", "client_credentials".into()),
        ("resource", f.resource.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let both = r["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&both)["scope"], "notes:read notes:write");
    let r = tok(vec![
        ("grant_type", TE.into()),
        ("subject_token", both.clone()),
        ("subject_token_type", AT.into()),
        ("scope", "notes:read".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r: serde_json::Value = r.json().await.unwrap();
    assert_eq!(r["issued_token_type"], AT);
    let sub_agent = claims(r["access_token"].as_str().unwrap());
    assert_eq!(sub_agent["scope"], "notes:read");
    assert_eq!(sub_agent["act"], json!({ "sub": id }));
    let wider = tok(vec![
        ("grant_type", TE.into()),
        (
            "subject_token",
            r["access_token"].as_str().unwrap().to_owned(),
        ),
        ("subject_token_type", AT.into()),
        ("scope", "notes:write".into()),
    ])
    .await
    .unwrap();
    assert_eq!(wider.status(), 400);
    drop(server);
}
