//! A server's settings through the admin API: every setting the gateway reads can be set,
//! credentials are sealed at rest and shown back only as "set", and a registration that
//! no client could ever get a token for is refused.

use serde_json::{json, Value};
use warden_store::ServerStore;

use crate::admin_support::*;
use crate::support::*;

fn groups() -> Value {
    json!([{ "scope": "crm:read", "tools": ["search"] }])
}

/// Registers server `crm` (one tool group) with `settings`.
async fn register_crm(h: &H, token: &str, settings: Value) -> Resp {
    let body = json!({
        "name": "crm",
        "upstream": "http://127.0.0.1:9/mcp",
        "tool_groups": groups(),
        "settings": settings,
    });
    post(h, "/admin/v1/servers", token, body).await
}

#[tokio::test]
async fn a_registration_without_a_tool_group_is_refused() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:write"]).await;
    let before = ServerStore::list(&h.store).await.unwrap();
    for body in [
        json!({ "name": "crm", "upstream": "http://127.0.0.1:9/mcp" }),
        json!({ "name": "crm", "upstream": "http://127.0.0.1:9/mcp", "tool_groups": [] }),
    ] {
        let r = post(&h, "/admin/v1/servers", &t, body).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let d = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(d.contains("at least one tool group"), "{d}");
    }
    assert_eq!(ServerStore::list(&h.store).await.unwrap(), before);
    // Nor can an update take the last one away.
    let body =
        json!({ "name": "crm", "upstream": "http://127.0.0.1:9/mcp", "tool_groups": groups() });
    assert_eq!(post(&h, "/admin/v1/servers", &t, body).await.status, 201);
    let r = patch(
        &h,
        "/admin/v1/servers/crm",
        &t,
        json!({ "tool_groups": [] }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("at least one tool group"), "{}", r.body);
}

#[tokio::test]
async fn challenge_scope_and_every_other_setting_can_be_set_and_unset() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let r = register_crm(
        &h,
        &t,
        json!({
            "challenge_scope": "crm:read",
            "unmapped_tools": "allow",
            "unmapped_resources": "deny",
            "unmapped_prompts": "allow",
            "allowed_origins": ["https://app.example"],
            "upstream_timeout_secs": 30,
            "resource_name": "CRM",
            "transport": "streamable-http",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = get(&h, "/admin/v1/servers/crm", &t).await.json();
    assert_eq!(v["settings"]["challenge_scope"], "crm:read");
    assert_eq!(v["settings"]["unmapped_tools"], "allow");
    assert_eq!(v["settings"]["upstream_timeout_secs"], 30);
    let r = patch(
        &h,
        "/admin/v1/servers/crm",
        &t,
        json!({ "settings": { "challenge_scope": "crm:read crm:write" } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["settings"]["challenge_scope"],
        "crm:read crm:write"
    );
    let r = patch(
        &h,
        "/admin/v1/servers/crm",
        &t,
        json!({ "settings": { "challenge_scope": null } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["settings"].get("challenge_scope").is_none());
    // A bad value names the setting.
    let r = patch(
        &h,
        "/admin/v1/servers/crm",
        &t,
        json!({ "settings": { "challenge_scope": "crm:read \"x" } }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("challenge_scope"), "{}", r.body);
    // The internal fields are not settings a registration may carry.
    for key in ["builtin", "introspection_client_secret"] {
        let r = patch(
            &h,
            "/admin/v1/servers/crm",
            &t,
            json!({ "settings": { key: "x" } }),
        )
        .await;
        assert_eq!(r.status, 400, "{key}: {}", r.body);
    }
}

#[tokio::test]
async fn static_header_values_are_sealed_and_shown_only_as_set() {
    const SECRET: &str = "hdr-Zm9vYmFyLXNlY3JldC12YWx1ZQ";
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let headers = json!({ "static_headers": { "x-api-key": SECRET } });
    let r = register_crm(&h, &t, headers).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.contains(SECRET));
    assert_eq!(r.json()["settings"]["static_headers"]["x-api-key"], "set");
    let shown = get(&h, "/admin/v1/servers/crm", &t).await;
    assert!(!shown.body.contains(SECRET), "{}", shown.body);
    let listed = get(&h, "/admin/v1/servers", &t).await;
    assert!(!listed.body.contains(SECRET));
    let stored = ServerStore::get(&h.store, "crm").await.unwrap().unwrap();
    assert!(!stored.settings.to_string().contains(SECRET));
    // An unrelated update keeps the sealed value as it is.
    let r = patch(&h, "/admin/v1/servers/crm", &t, json!({ "leeway_secs": 5 })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = ServerStore::get(&h.store, "crm").await.unwrap().unwrap();
    assert_eq!(
        after.settings["static_headers"],
        stored.settings["static_headers"]
    );
    // The gateway opens it.
    let compiled =
        warden_server::gateway::registry::Protected::compile(&after, &h.app.config, &h.app.sealer)
            .unwrap();
    assert_eq!(compiled.static_headers[0].1.to_str().unwrap(), SECRET);
}
