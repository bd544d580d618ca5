//! An orchestrator hands a sub-agent a narrower token: it gets a token for two tool
//! groups, exchanges it for one with a single group, and the gateway lets the sub-agent
//! use only that group. The upstream sees the delegation chain in the gateway's assertion,
//! and the audit log records it.

use serde_json::{json, Value};

use crate::support::*;

const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_agent_token_reaches_only_its_tool_group_and_the_chain_is_audited() {
    let f = Fixture::new();
    let _upstream = start_demo_upstream(&f, "demo");
    let mut c = warden(&f.dir);
    c.args([
        "--json",
        "client",
        "add",
        "orchestrator",
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
    let orch: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let (id, secret) = (
        orch["client_id"].as_str().unwrap().to_owned(),
        orch["client_secret"].as_str().unwrap().to_owned(),
    );
    let server = f.serve(&[]);
    let http = reqwest::Client::new();
    let resource = format!("{}/mcp/demo", f.base);
    let token = |form: Vec<(&'static str, String)>| {
        http.post(format!("{}/oauth/token", f.base))
            .basic_auth(&id, Some(&secret))
            .form(&form)
            .send()
    };

    let both: Value = token(vec![
        ("grant_type", "client_credentials".into()),
        ("resource", resource.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let both = both["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&both)["scope"], "notes:read notes:write");
    let r = token(vec![
        ("grant_type", TE.into()),
        ("subject_token", both.clone()),
        ("subject_token_type", AT.into()),
        ("scope", "notes:read".into()),
        ("resource", resource.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let sub: Value = r.json().await.unwrap();
    let sub = sub["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&sub)["scope"], "notes:read");
    assert_eq!(claims(&sub)["act"]["sub"], id.as_str());

    // The orchestrator's own token may write.
    let mut orch_session = Mcp::open(&http, &resource, &both).await;
    let (status, body) = orch_session
        .call(
            1,
            "tools/call",
            json!({ "name": "notes_write", "arguments": { "title": "t", "body": "b" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].is_object(), "{body}");

    // The sub-agent sees and may use only the read group.
    let mut agent = Mcp::open(&http, &resource, &sub).await;
    let (_, listed) = agent.call(1, "tools/list", json!({})).await;
    let mut names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["notes_list", "notes_read", "whoami"]);
    let (status, body) = agent
        .call(
            2,
            "tools/call",
            json!({ "name": "notes_list", "arguments": {} }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, denied) = agent
        .call(
            3,
            "tools/call",
            json!({ "name": "notes_write", "arguments": { "title": "x", "body": "y" } }),
        )
        .await;
    assert_eq!(status, 403, "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("notes:write"),
        "{denied}"
    );
    assert_eq!(denied["id"], 3);

    // The upstream sees who acts for whom, and never the agent's token.
    let (_, who) = agent
        .call(
            4,
            "tools/call",
            json!({ "name": "whoami", "arguments": {} }),
        )
        .await;
    let seen = &who["result"]["structuredContent"];
    let assertion = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    assert_ne!(assertion, sub);
    let a = claims(assertion);
    assert_eq!(a["act"]["sub"], id.as_str(), "{a}");
    assert_eq!(a["scope"], "notes:read");

    // A graceful stop flushes the audit events queued by the gateway.
    let (status, _, _) = tokio::task::spawn_blocking(move || server.stop(15))
        .await
        .unwrap();
    assert!(status.success());
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", "token.exchanged"]);
    let page: Value = serde_json::from_str(&ok(c, None)).unwrap();
    let events = &page["events"];
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["detail"]["act"]["sub"], id.as_str(), "{events}");
    let mut c = warden(&f.dir);
    c.args(["--json", "events", "--kind", "gateway.deny"]);
    let denies = serde_json::from_str::<Value>(&ok(c, None)).unwrap()["events"].clone();
    assert!(
        denies
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].to_string().contains("notes_write")),
        "{denies}"
    );
}
