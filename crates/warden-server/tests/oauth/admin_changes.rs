//! Changing the registry and the policy through the admin API: `PATCH` of a server,
//! `GET`/`PUT` of the policy, users' consents. Each happy path, each refusal (which
//! changes nothing), and the audit trail.

use axum::body::Body;
use axum::http::{header, Method, Request};
use serde_json::json;
use warden_store::{ConsentStore, PolicyStore, ServerStore};

use crate::admin_support::*;
use crate::support::*;

async fn delete(h: &H, path: &str, token: &str) -> Resp {
    call(h, Method::DELETE, path, Some(token), None).await
}

/// `PUT /admin/v1/policy` with a TOML body, optionally `If-Match`.
async fn put_policy(h: &H, query: &str, token: &str, text: &str, if_match: Option<&str>) -> Resp {
    let mut req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/admin/v1/policy{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/toml");
    if let Some(v) = if_match {
        req = req.header(header::IF_MATCH, v);
    }
    h.send(req.body(Body::from(text.to_owned())).unwrap()).await
}

fn etag(r: &Resp) -> String {
    r.headers
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn machine_token(h: &H) -> Resp {
    let (id, s) = (&h.machine.0, &h.machine.1);
    h.token(
        &[("grant_type", "client_credentials"), ("resource", NOTES)],
        Some((id, s)),
    )
    .await
}

const GRANTS_WRITE: &str =
    "version = 1\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:write\"] }\n";

#[tokio::test]
async fn patch_changes_only_the_fields_given_and_takes_effect_at_once() {
    let h = H::new().await;
    let (id, secret) = admin_client(&h, &["admin:read", "admin:write"]).await;
    let t = token_for(&h, (&id, &secret), ADMIN).await;
    // The token endpoint has the registration cached.
    assert_eq!(machine_token(&h).await.json()["expires_in"], 900);
    let before = ServerStore::get(&h.store, "notes").await.unwrap().unwrap();
    h.clock.advance(60);

    let r = patch(
        &h,
        "/admin/v1/servers/notes",
        &t,
        json!({
            "upstream": "http://127.0.0.1:9001/mcp",
            "access_token_ttl_secs": 600,
            "leeway_secs": 10,
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["upstream"], "http://127.0.0.1:9001/mcp");
    assert_eq!(v["access_token_ttl_secs"], 600);
    assert_eq!(v["leeway_secs"], 10);
    assert_eq!(v["canonical_uri"], NOTES, "unchanged");
    assert_eq!(v["tool_groups"].as_array().unwrap().len(), 2, "unchanged");
    assert_eq!(v["created_at"], before.created_at);
    assert_eq!(get(&h, "/admin/v1/servers/notes", &t).await.json(), v);
    let after = ServerStore::get(&h.store, "notes").await.unwrap().unwrap();
    assert!(after.updated_at > before.updated_at);
    // No stale cache: the next token already has the new lifetime.
    assert_eq!(machine_token(&h).await.json()["expires_in"], 600);

    // Tool groups are replaced as a whole.
    let r = patch(
        &h,
        "/admin/v1/servers/notes",
        &t,
        json!({ "tool_groups": [
            { "scope": "notes:read", "tools": ["notes_list", "notes_read", "notes_search"] },
            { "scope": "notes:write", "tools": ["notes_write"] },
            { "scope": "notes:admin", "tools": ["notes_purge"] },
        ] }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tool_groups"][2]["scope"], "notes:admin");

    // A patch that changes nothing writes nothing.
    let same = patch(
        &h,
        "/admin/v1/servers/notes",
        &t,
        json!({ "leeway_secs": 10 }),
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.body);

    // Audited as a registry change, with what changed (and who changed it).
    let events = get(&h, "/admin/v1/events?kind=server.updated", &t)
        .await
        .json()["events"]
        .clone();
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert_eq!(events[0]["server"], "notes");
    assert_eq!(events[0]["detail"]["actor"], format!("client:{id}"));
    let changes = &events[0]["detail"]["changes"];
    assert_eq!(
        changes["access_token_ttl_secs"],
        json!({ "from": 900, "to": 600 })
    );
    assert_eq!(changes["leeway_secs"]["to"], 10);
    assert!(changes.get("canonical_uri").is_none());
    assert_eq!(
        events[1]["detail"]["changes"]["tool_groups"]["to"],
        json!(["notes:read", "notes:write", "notes:admin"])
    );
}

#[tokio::test]
async fn patch_refusals_are_clear_and_change_nothing() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let r = put_policy(&h, "", &t, GRANTS_WRITE, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let before = ServerStore::list(&h.store).await.unwrap();
    let cases = [
        (
            "notes",
            json!({ "canonical_uri": "https://a.example/x#f" }),
            400,
            "fragment",
        ),
        (
            "notes",
            json!({ "canonical_uri": "http://a.example/notes" }),
            400,
            "https",
        ),
        // Another server's canonical URI: each would accept the other's tokens.
        (
            "notes",
            json!({ "canonical_uri": OTHER }),
            409,
            "canonical uri",
        ),
        ("notes", json!({ "canonical_uri": ADMIN }), 400, "reserved"),
        // The policy grants machine notes:write: the scope cannot go.
        (
            "notes",
            json!({ "tool_groups": [{ "scope": "notes:read", "tools": ["notes_list"] }] }),
            409,
            "notes:write",
        ),
        ("notes", json!({ "leeway_secs": 301 }), 400, "leeway"),
        (
            "notes",
            json!({ "access_token_ttl_secs": 86_400 }),
            400,
            "max_access_token_ttl",
        ),
        ("notes", json!({ "upstream": "ftp://x" }), 400, "http(s)"),
        (
            "notes",
            json!({ "token_format": "paseto" }),
            400,
            "token_format",
        ),
        (
            "notes",
            json!({ "issuer": "http://idp.example" }),
            400,
            "https",
        ),
        (
            "notes",
            json!({ "settings": { "colour": "blue" } }),
            400,
            "unknown setting",
        ),
        (
            "notes",
            json!({ "name": "renamed" }),
            400,
            "unknown field `name`",
        ),
        (
            "notes",
            json!({ "leeway_secs": "soon" }),
            400,
            "leeway_secs",
        ),
        ("nope", json!({ "leeway_secs": 5 }), 404, "no server"),
        ("admin", json!({ "leeway_secs": 5 }), 400, "built in"),
        // A stdio upstream is a command run on Warden's host: the local CLI only.
        (
            "notes",
            json!({ "upstream": "stdio:sh -c id" }),
            400,
            "CLI on the data dir",
        ),
    ];
    for (name, body, status, needle) in cases {
        let r = patch(&h, &format!("/admin/v1/servers/{name}"), &t, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let d = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(d.contains(needle), "{body}: {d}");
    }
    let r = post(
        &h,
        "/admin/v1/servers",
        &t,
        json!({ "name": "tool", "upstream": "stdio:sh -c id", "tool_groups": [{ "scope": "tool:use", "tools": ["t"] }] }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("CLI on the data dir"), "{}", r.body);
    assert_eq!(ServerStore::list(&h.store).await.unwrap(), before);
    // Nor can the server go while the policy has a rule for it.
    let r = delete(&h, "/admin/v1/servers/notes", &t).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("client machine"), "{}", r.body);
    assert_eq!(ServerStore::list(&h.store).await.unwrap(), before);

    // Without admin:write: 403, nothing changed, and the refusal is audited.
    let ro = admin_token(&h, &["admin:read"]).await;
    let r = patch(
        &h,
        "/admin/v1/servers/notes",
        &ro,
        json!({ "leeway_secs": 5 }),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.error(), "insufficient_scope");
    assert!(challenge(&r).contains("scope=\"admin:write\""));
    assert_eq!(ServerStore::list(&h.store).await.unwrap(), before);
    assert!(!h.audit_kinds().await.contains(&"server.updated".to_owned()));
    assert!(h.audit_kinds().await.contains(&"admin.denied".to_owned()));
}

#[tokio::test]
async fn patch_moves_a_server_between_issuers() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:write"]).await;
    let r = patch(
        &h,
        "/admin/v1/servers/other",
        &t,
        json!({ "issuer": "https://sso.example.com/realms/acme", "settings": { "accept_jwt_typ": true } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["issuer"], "https://sso.example.com/realms/acme");
    let rec = ServerStore::get(&h.store, "other").await.unwrap().unwrap();
    assert_eq!(rec.settings["accept_jwt_typ"], true);
    // Back to Warden's own tokens: the external issuer's settings go with it.
    let r = patch(&h, "/admin/v1/servers/other", &t, json!({ "issuer": null })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("issuer").is_none());
    let rec = ServerStore::get(&h.store, "other").await.unwrap().unwrap();
    assert_eq!((rec.issuer, rec.settings), (None, json!({})));
}

#[tokio::test]
async fn policy_get_and_put_validate_diff_and_guard_versions() {
    let h = H::new().await;
    let (id, secret) = admin_client(&h, &["admin:read", "admin:write"]).await;
    let t = token_for(&h, (&id, &secret), ADMIN).await;

    let r = get(&h, "/admin/v1/policy", &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(etag(&r), "\"0\"");
    assert_eq!(r.json()["version"], 0);
    assert_eq!(r.json()["source"], "");

    // An invalid document: 400 naming each line, nothing stored.
    let bad = "version = 1\n\n[[client]]\nid = \"nobody\"\n\n[[client]]\nid = \"machine\"\nservers = { notes = [\"notes:admin\"] }\n";
    let r = put_policy(&h, "", &t, bad, None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error(), "invalid_request");
    let errors = r.json()["errors"].clone();
    assert_eq!(errors[0]["line"], 4);
    assert!(errors[0]["message"].as_str().unwrap().contains("nobody"));
    assert_eq!(errors[1]["line"], 8);
    assert!(errors[1]["message"]
        .as_str()
        .unwrap()
        .contains("notes:admin"));
    let d = r.json()["error_description"].as_str().unwrap().to_owned();
    assert!(
        d.contains("line 4:") && d.contains("nothing was changed"),
        "{d}"
    );
    let r = put_policy(&h, "", &t, "version = [", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["line"], 1);

    // A dry run: the diff, nothing stored.
    let r = put_policy(&h, "?dry_run=true", &t, GRANTS_WRITE, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["dry_run"], true);
    assert_eq!(r.json()["version"], 0);
    assert!(r.json()["changes"][0]
        .as_str()
        .unwrap()
        .starts_with("+ client machine"));
    assert!(PolicyStore::current(&h.store).await.unwrap().is_none());
    assert_eq!(machine_token(&h).await.json()["scope"], "notes:read");
    assert_eq!(
        put_policy(&h, "?dry_run=maybe", &t, GRANTS_WRITE, None)
            .await
            .status,
        400
    );

    // Applied on the version named, in force at once, audited.
    let r = put_policy(&h, "", &t, GRANTS_WRITE, Some("\"0\"")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], 1);
    assert_eq!(etag(&r), "\"1\"");
    assert_eq!(machine_token(&h).await.json()["scope"], "notes:write");
    let r = get(&h, "/admin/v1/policy", &t).await;
    assert_eq!(r.json()["version"], 1);
    assert_eq!(r.json()["source"], GRANTS_WRITE);
    assert_eq!(
        r.json()["policy"]["clients"]["machine"]["servers"]["notes"],
        json!(["notes:write"])
    );
    let events = h.audit_events("policy.applied").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["version"], 1);
    assert_eq!(events[0].detail["actor"], format!("client:{id}"));

    // A stale If-Match: 412, nothing changed.
    let other = "version = 1\ndefault = \"deny\"\n";
    let r = put_policy(&h, "", &t, other, Some("\"0\"")).await;
    assert_eq!(r.status, 412, "{}", r.body);
    assert_eq!(r.error(), "precondition_failed");
    assert_eq!(
        put_policy(&h, "", &t, other, Some("soon")).await.status,
        400
    );
    assert_eq!(
        PolicyStore::current(&h.store)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );

    // Without admin:write: 403 and nothing changed; reading needs only admin:read.
    let ro = admin_token(&h, &["admin:read"]).await;
    let r = put_policy(&h, "", &ro, other, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error(), "insufficient_scope");
    assert_eq!(
        PolicyStore::current(&h.store)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(get(&h, "/admin/v1/policy", &ro).await.status, 200);
    assert_eq!(h.audit_events("policy.applied").await.len(), 1);
}

/// A malformed `If-Match` (or `dry_run`) is refused with the plain error body, not the
/// document-problems one, and the OpenAPI document lists both shapes for the 400.
#[tokio::test]
async fn policy_put_header_refusals_answer_the_documented_error_shape() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let doc = "version = 1\ndefault = \"deny\"\n";
    for (query, if_match) in [("", Some("")), ("", Some("soon")), ("?dry_run=maybe", None)] {
        let r = put_policy(&h, query, &t, doc, if_match).await;
        assert_eq!(r.status, 400, "{query} {if_match:?}: {}", r.body);
        let body = r.json();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["error", "error_description"], "{body}");
        assert_eq!(r.error(), "invalid_request");
    }

    let openapi = h
        .get("/admin/v1/openapi.json", &Jar::default())
        .await
        .json();
    let refused = &openapi["paths"]["/admin/v1/policy"]["put"]["responses"]["400"]["content"]
        ["application/json"]["schema"]["oneOf"];
    assert_eq!(
        refused,
        &json!([
            { "$ref": "#/components/schemas/PolicyError" },
            { "$ref": "#/components/schemas/Error" }
        ])
    );
    assert_eq!(
        openapi["components"]["schemas"]["PolicyError"]["required"],
        json!(["error", "error_description", "errors"])
    );
}

#[tokio::test]
async fn consents_are_listed_and_withdrawn_through_the_api() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    let tokens = h.exchange(&code).await.json();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    let r = get(&h, "/admin/v1/users/alice/consents", &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["client_id"], "pub");
    assert_eq!(r.json()[0]["resource"], NOTES);
    assert_eq!(
        get(&h, "/admin/v1/users/nobody/consents", &t).await.status,
        404
    );

    let r = delete(&h, "/admin/v1/users/alice/consents?client=web", &t).await;
    assert_eq!(r.status, 404, "no consent for that client");
    let r = delete(&h, "/admin/v1/users/alice/consents?resource=x", &t).await;
    assert_eq!(r.status, 400, "a resource needs a client");
    let r = delete(&h, "/admin/v1/users/alice/consents?client=pub", &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({ "consents_removed": 1, "sessions_revoked": 1 })
    );
    assert!(ConsentStore::list_for_user(&h.store, "u_alice")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.refresh(&rt, &[]).await.error(), "invalid_grant");
    assert!(h
        .audit_kinds()
        .await
        .contains(&"consent.revoked".to_owned()));
}

#[tokio::test]
async fn status_probes_each_external_issuer_and_flags_an_unreachable_one() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let idp = crate::docs::DocServer::start().await;
    idp.serve(
        "/.well-known/openid-configuration",
        crate::docs::Served::json(
            json!({ "issuer": idp.base, "jwks_uri": idp.url("/jwks") }).to_string(),
        ),
    );
    idp.serve(
        "/jwks",
        crate::docs::Served::json(json!({ "keys": [{ "kty": "EC", "kid": "k1" }] }).to_string()),
    );
    // A loopback port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (name, issuer) in [
        ("sso", idp.base.clone()),
        ("down", format!("http://127.0.0.1:{closed}")),
    ] {
        let r = post(
            &h,
            "/admin/v1/servers",
            &t,
            json!({
                "name": name,
                "upstream": "http://127.0.0.1:9/mcp",
                "issuer": issuer,
                "tool_groups": [{ "scope": format!("{name}:use"), "tools": ["t"] }],
            }),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let s = get(&h, "/admin/v1/status", &t).await.json();
    let server = |name: &str| {
        s["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let sso = server("sso");
    assert_eq!(sso["issuer_reachable"], true, "{sso:#}");
    assert_eq!(sso["findings"], json!([]));
    assert_eq!(idp.hits("/jwks"), 1, "the JWKS itself was fetched");
    let down = server("down");
    assert_eq!(down["issuer_reachable"], false, "{down:#}");
    assert_eq!(down["findings"][0]["severity"], "warning");
    let reason = down["findings"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("unreachable") && reason.contains(&closed.to_string()),
        "{reason}"
    );
    assert!(server("notes").get("issuer_reachable").is_none());
    // A warning: the fleet is still in policy.
    assert_eq!(s["ok"], true);
    assert!(s["warnings"].as_u64().unwrap() >= 1);

    // An issuer whose JWKS is gone is flagged too.
    idp.serve("/jwks", crate::docs::Served::json("{}").status(404));
    let s = get(&h, "/admin/v1/status", &t).await.json();
    let sso = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sso")
        .unwrap()
        .clone();
    assert_eq!(sso["issuer_reachable"], false);
    assert!(sso["findings"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("HTTP 404"));
}

#[tokio::test]
async fn concurrent_patches_of_different_fields_both_land() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:write"]).await;
    for round in 0..4 {
        let (a, b) = tokio::join!(
            patch(
                &h,
                "/admin/v1/servers/notes",
                &t,
                json!({ "leeway_secs": 10 + round }),
            ),
            patch(
                &h,
                "/admin/v1/servers/notes",
                &t,
                json!({ "access_token_ttl_secs": 300 + round }),
            ),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(b.status, 200, "{}", b.body);
        let rec = ServerStore::get(&h.store, "notes").await.unwrap().unwrap();
        assert_eq!(
            (rec.leeway_secs, rec.access_token_ttl_secs),
            (10 + round, 300 + round),
            "neither update was lost"
        );
    }
}
