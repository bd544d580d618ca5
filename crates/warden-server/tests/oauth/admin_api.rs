//! The admin API's operations: each happy path, each refusal, and the audit trail.

use serde_json::{json, Value};
use warden_store::{ClientStore, ServerStore, UserStore};

use crate::admin_support::*;
use crate::support::*;

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn servers_register_list_show_remove_and_are_audited() {
    let h = H::new().await;
    let (id, secret) = admin_client(&h, &["admin:read", "admin:write"]).await;
    let t = token_for(&h, (&id, &secret), ADMIN).await;
    let r = post(
        &h,
        "/admin/v1/servers",
        &t,
        json!({
            "name": "tickets",
            "upstream": "http://127.0.0.1:9/mcp",
            "tool_groups": [{ "scope": "tickets:read", "tools": ["list", "show"] }],
            "access_token_ttl_secs": 600,
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["canonical_uri"], format!("{BASE}/mcp/tickets"));
    assert_eq!(v["access_token_ttl_secs"], 600);
    assert_eq!(v["leeway_secs"], 30);
    let list = get(&h, "/admin/v1/servers", &t).await.json();
    assert_eq!(
        names(&list, "name"),
        ["admin", "notes", "other", "tickets", "vault"]
    );
    assert_eq!(get(&h, "/admin/v1/servers/tickets", &t).await.json(), v);
    // A token for the new server is now available: the registry is live.
    let machine = (h.machine.0.as_str(), h.machine.1.as_str());
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", &format!("{BASE}/mcp/tickets")),
            ],
            Some(machine),
        )
        .await;
    assert_eq!(
        r.error(),
        "invalid_scope",
        "the machine client has no tickets scope"
    );
    let r = delete(&h, "/admin/v1/servers/tickets", &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "removed": "tickets" }));
    assert_eq!(get(&h, "/admin/v1/servers/tickets", &t).await.status, 404);

    let page = get(&h, "/admin/v1/events?kind=server.registered", &t)
        .await
        .json();
    assert_eq!(page["truncated"], false);
    assert_eq!(page["next_after_seq"], Value::Null);
    let events = &page["events"];
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["server"], "tickets");
    assert_eq!(events[0]["detail"]["actor"], format!("client:{id}"));
    assert_eq!(events[0]["hash"].as_str().unwrap().len(), 64);
    let removed = get(&h, "/admin/v1/events?kind=server.removed", &t)
        .await
        .json();
    assert_eq!(removed["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn registry_bad_input_is_a_clear_4xx_and_changes_nothing() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:write"]).await;
    let before = ServerStore::list(&h.store).await.unwrap();
    let cases = [
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "canonical_uri": "https://a.example/x#f" }),
            400,
            "fragment",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "canonical_uri": "http://a.example/x" }),
            400,
            "https",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "canonical_uri": NOTES, "tool_groups": [{ "scope": "x:use", "tools": ["t"] }] }),
            409,
            "canonical uri",
        ),
        (
            json!({ "name": "notes", "upstream": "http://127.0.0.1:9/mcp", "tool_groups": [{ "scope": "x:use", "tools": ["t"] }] }),
            409,
            "server named \"notes\"",
        ),
        (
            json!({ "name": "admin", "upstream": "http://127.0.0.1:9/mcp" }),
            400,
            "reserved",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "canonical_uri": ADMIN }),
            400,
            "reserved",
        ),
        (
            json!({ "name": "Bad Name", "upstream": "http://127.0.0.1:9/mcp" }),
            400,
            "server name",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "leeway_secs": 301 }),
            400,
            "leeway",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "access_token_ttl_secs": 86400 }),
            400,
            "max_access_token_ttl",
        ),
        (
            json!({ "name": "x", "upstream": "http://127.0.0.1:9/mcp", "scopes": ["a"] }),
            400,
            "unknown field `scopes`",
        ),
        (json!({ "name": "x" }), 400, "missing field `upstream`"),
        (
            json!({ "name": 7, "upstream": "u" }),
            400,
            "invalid value at `name`",
        ),
    ];
    for (body, status, needle) in cases {
        let r = post(&h, "/admin/v1/servers", &t, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let d = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(d.contains(needle), "{body}: {d}");
        assert!(!r.json()["error"].as_str().unwrap().is_empty());
    }
    let r = call(
        &h,
        axum::http::Method::POST,
        "/admin/v1/servers",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid_request");
    assert_eq!(ServerStore::list(&h.store).await.unwrap(), before);
    assert_eq!(delete(&h, "/admin/v1/servers/nope", &t).await.status, 404);
    assert!(!h
        .audit_kinds()
        .await
        .contains(&"server.registered".to_owned()));
}

#[tokio::test]
async fn clients_users_keys_events_and_status_through_the_api() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;

    // Clients: a confidential one's secret is in the creation answer only.
    let r = post(
        &h,
        "/admin/v1/clients",
        &t,
        json!({ "name": "robot", "confidential": true, "grant_types": ["client_credentials"], "scopes": ["notes:read"] }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let robot = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wdn_cs_"));
    token_for(&h, (&robot, &secret), NOTES).await;
    let shown = get(&h, &format!("/admin/v1/clients/{robot}"), &t).await;
    assert!(!shown.body.contains(&secret));
    assert_eq!(shown.json()["active_secrets"], 1);
    // By unique name, too.
    assert_eq!(
        get(&h, "/admin/v1/clients/robot", &t).await.json()["client_id"],
        robot
    );
    let bad = [
        json!({ "name": "c", "grant_types": ["password"] }),
        json!({ "name": "c", "grant_types": ["client_credentials"] }),
        json!({ "name": "c", "redirect_uris": ["http://evil.example/cb"] }),
        json!({ "name": "" }),
    ];
    let count = ClientStore::list(&h.store).await.unwrap().len();
    for b in bad {
        let r = post(&h, "/admin/v1/clients", &t, b.clone()).await;
        assert_eq!(r.status, 400, "{b}: {}", r.body);
    }
    assert_eq!(ClientStore::list(&h.store).await.unwrap().len(), count);
    assert_eq!(get(&h, "/admin/v1/clients/nope", &t).await.status, 404);
    assert_eq!(delete(&h, "/admin/v1/clients/nope", &t).await.status, 404);
    let r = post(&h, "/admin/v1/clients/nope/secrets", &t, json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "not_found");
    let r = post(&h, "/admin/v1/clients/pub/secrets", &t, json!({})).await;
    assert_eq!(r.status, 400, "a public client has no secret");
    let r = delete(&h, &format!("/admin/v1/clients/{robot}"), &t).await;
    assert_eq!(r.json(), json!({ "removed": robot }));

    // Users: the password is write-only.
    let r = post(
        &h,
        "/admin/v1/users",
        &t,
        json!({ "username": "bob", "password": "hunter2 hunter2", "groups": ["eng"] }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.contains("hunter2"));
    let stored = UserStore::get_by_username(&h.store, "bob")
        .await
        .unwrap()
        .unwrap();
    assert!(warden_core::password::verify(
        "hunter2 hunter2",
        &stored.password_hash
    ));
    let r = post(
        &h,
        "/admin/v1/users",
        &t,
        json!({ "username": "bob", "password": "x" }),
    )
    .await;
    assert_eq!(r.status, 409);
    let r = post(
        &h,
        "/admin/v1/users",
        &t,
        json!({ "username": "b b", "password": "x" }),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&h, "/admin/v1/users/bob", &t).await.json()["groups"],
        json!(["eng"])
    );
    let users = get(&h, "/admin/v1/users", &t).await.json();
    assert_eq!(names(&users, "username"), ["alice", "bob"]);
    assert_eq!(delete(&h, "/admin/v1/users/bob", &t).await.status, 200);
    assert_eq!(get(&h, "/admin/v1/users/bob", &t).await.status, 404);

    // Keys: a rotation publishes at once; a second one while it waits is refused.
    let r = post(&h, "/admin/v1/keys/rotate", &t, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let kid = r.json()["kid"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["state"], "pending");
    let jwks = h.get("/oauth/jwks.json", &Jar::default()).await;
    assert!(jwks.body.contains(&kid), "published in JWKS at once");
    let r = post(&h, "/admin/v1/keys/rotate", &t, json!({})).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("already in progress"));
    assert_eq!(
        get(&h, "/admin/v1/keys", &t)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Events: filters, bad parameters, and the chain.
    let kinds = h.audit_kinds().await;
    for k in [
        "client.created",
        "client.removed",
        "user.created",
        "user.removed",
        "key.created",
    ] {
        assert!(kinds.contains(&k.to_owned()), "{k} in {kinds:?}");
    }
    let r = get(&h, "/admin/v1/events?kind=user.created&limit=5", &t)
        .await
        .json();
    assert_eq!(r["events"].as_array().unwrap().len(), 1);
    assert_eq!(r["events"][0]["detail"]["username"], "bob");
    assert_eq!(r["truncated"], false);
    // A cut listing says so, and its cursor continues right after it.
    let first = get(&h, "/admin/v1/events?limit=2", &t).await.json();
    assert_eq!(first["truncated"], true);
    let next = first["next_after_seq"].as_i64().unwrap();
    assert_eq!(Some(next), first["events"][1]["seq"].as_i64());
    let second = get(
        &h,
        &format!("/admin/v1/events?limit=2&after_seq={next}"),
        &t,
    )
    .await
    .json();
    assert_eq!(second["events"][0]["seq"].as_i64(), Some(next + 1));
    assert_eq!(get(&h, "/admin/v1/events?limit=0", &t).await.status, 400);
    assert_eq!(get(&h, "/admin/v1/events?limit=abc", &t).await.status, 400);
    assert_eq!(
        get(&h, "/admin/v1/events?colour=blue", &t).await.status,
        400
    );
    let v = get(&h, "/admin/v1/events/verify", &t).await.json();
    assert_eq!(v["first_broken"], Value::Null);
    assert!(v["checked"].as_u64().unwrap() >= 6);

    // Status: every server, in policy.
    let s = get(&h, "/admin/v1/status", &t).await.json();
    assert_eq!(s["ok"], true, "{s:#}");
    assert_eq!(
        names(&s["servers"], "name"),
        ["admin", "notes", "other", "vault"]
    );
    assert!(s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["pkce_enforced"] == true && p["audience_binding"] == true));
    assert!(s["signing_key"]["kid"].is_string());
    assert_eq!(s["signing_key"]["next_kid"], kid);
}

#[tokio::test]
async fn status_flags_what_is_out_of_policy() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read"]).await;
    // A registration that predates a stricter policy: 2 h tokens.
    let mut notes = ServerStore::get(&h.store, "notes").await.unwrap().unwrap();
    notes.access_token_ttl_secs = 7_200;
    ServerStore::update(&h.store, &notes).await.unwrap();
    // And a machine secret past its maximum age.
    h.clock.advance(91 * 86_400);
    let t2 = admin_token(&h, &["admin:read"]).await;
    let _ = t;
    let s = get(&h, "/admin/v1/status", &t2).await.json();
    assert_eq!(s["ok"], false);
    let notes = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "notes")
        .unwrap();
    assert!(notes["findings"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_access_token_ttl"));
    let machine = s["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "machine")
        .unwrap();
    assert_eq!(machine["findings"][0]["severity"], "violation");
    assert!(machine["findings"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("secrets.max_age"));
}

/// The top-level fields of `body` are allowed by the document's schema `name` (which
/// admits no other field) and include every field it requires.
fn fits_schema(doc: &Value, name: &str, body: &Value) {
    let schema = &doc["components"]["schemas"][name];
    assert_eq!(schema["additionalProperties"], false, "{name}");
    let allowed = schema["properties"].as_object().unwrap();
    for key in body.as_object().unwrap().keys() {
        assert!(allowed.contains_key(key), "{name} does not list {key:?}");
    }
    for key in schema["required"].as_array().unwrap() {
        assert!(
            body.get(key.as_str().unwrap()).is_some(),
            "{name} requires {key}"
        );
    }
}

/// A confidential client's 201 carries `client_secret` beside the view's fields; the
/// document once combined the view (which admits no other field) with the secret by
/// `allOf`, a schema no confidential client's answer could match.
#[tokio::test]
async fn created_clients_answer_the_documented_schema() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let doc = h
        .get("/admin/v1/openapi.json", &Jar::default())
        .await
        .json();
    assert!(doc["components"]["schemas"]["CreatedClient"]["allOf"].is_null());
    let machine = json!({
        "name": "machine",
        "confidential": true,
        "grant_types": ["client_credentials"],
    });
    let app = json!({
        "name": "app",
        "redirect_uris": ["http://127.0.0.1:9/callback"],
    });
    for (new, confidential) in [(machine, true), (app, false)] {
        let r = post(&h, "/admin/v1/clients", &t, new).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let body = r.json();
        assert_eq!(body.get("client_secret").is_some(), confidential, "{body}");
        fits_schema(&doc, "CreatedClient", &body);
    }
}
