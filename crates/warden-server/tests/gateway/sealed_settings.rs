//! Upstream credentials stored sealed (static header values, a stdio upstream's `env`)
//! still reach the upstream in clear, and only there.

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{json, Value};
use warden_core::server_settings::ServerSettings;
use warden_store::{ServerStore, ToolGroup};

use crate::support::*;

const HEADER_SECRET: &str = "hdr-c2VhbGVkLWhlYWRlci12YWx1ZQ";
const ENV_SECRET: &str = "env-c2VhbGVkLWVudi12YWx1ZQ";

/// `settings` as the admin API stores them: every credential sealed for `server`.
fn sealed(gw: &Gw, server: &str, settings: Value) -> Value {
    let mut s = ServerSettings::parse(&settings).unwrap();
    s.seal_credentials(&gw.app.sealer, server).unwrap();
    let stored = s.to_value();
    assert!(!stored.to_string().contains(HEADER_SECRET));
    assert!(!stored.to_string().contains(ENV_SECRET));
    stored
}

#[tokio::test]
async fn a_sealed_static_header_reaches_the_upstream() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    let settings = sealed(
        &gw,
        "echo",
        json!({"static_headers": {"x-api-key": HEADER_SECRET}}),
    );
    gw.register_upstream("echo", &echo, settings).await;
    let token = gw.token("echo", "notes:read").await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t"}});
    let req = gw
        .post("echo", Some(&token), None)
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["result"]["headers"]["x-api-key"], HEADER_SECRET);
}

#[tokio::test]
async fn a_sealed_env_value_reaches_the_stdio_process() {
    let gw = Gw::start(json!({})).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/stdio_server.py");
    let settings = sealed(&gw, "local", json!({"env": {"STDIO_TEST": ENV_SECRET}}));
    let mut rec = record("local", &format!("stdio:python3 '{script}'"), settings);
    rec.tool_groups = vec![ToolGroup {
        scope: "notes:read".into(),
        tools: vec!["whoami_env".into()],
    }];
    ServerStore::create(&gw.store, &rec).await.unwrap();
    let token = gw.token("local", "notes:read").await;
    let session = gw.initialize("local", &token).await;
    let r = gw.call("local", &token, &session, "whoami_env").await;
    let result = &r.events()[0]["result"]["structuredContent"];
    assert_eq!(result["extra"], ENV_SECRET);
}
