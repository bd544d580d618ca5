//! Who may call the admin API: tokens for the admin resource only, with the right
//! scope, from client-credentials clients still registered for it.

use axum::http::Method;
use serde_json::json;
use warden_core::scope::ScopeSet;
use warden_store::{ClientStore, ServerStore};

use crate::admin_support::*;
use crate::support::*;

#[tokio::test]
async fn no_token_gets_401_with_a_bearer_challenge_naming_the_resource_metadata() {
    let h = H::new().await;
    let r = call(&h, Method::GET, "/admin/v1/servers", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_token");
    let c = challenge(&r);
    assert!(c.starts_with("Bearer "), "{c}");
    assert!(
        c.contains(&format!("resource_metadata=\"{METADATA}\"")),
        "{c}"
    );
    assert!(!c.contains("error="), "no error code without a token: {c}");
    assert_eq!(r.headers["cache-control"], "no-store");

    // The metadata it names (RFC 9728) points back at Warden.
    let m = h
        .get(
            "/.well-known/oauth-protected-resource/admin",
            &Jar::default(),
        )
        .await;
    assert_eq!(m.status, 200);
    let m = m.json();
    assert_eq!(m["resource"], ADMIN);
    assert_eq!(m["authorization_servers"], json!([BASE]));
    assert_eq!(m["scopes_supported"], json!(["admin:read", "admin:write"]));

    // Another scheme is no bearer token either.
    let basic = axum::http::Request::get("/admin/v1/status")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = h.send(basic).await;
    assert_eq!(r.status, 401);
    assert!(challenge(&r).starts_with("Bearer "));
}

#[tokio::test]
async fn tokens_for_another_resource_forged_or_expired_are_401_invalid_token() {
    let h = H::new().await;
    // A perfectly good token, for the notes server.
    let notes = token_for(&h, (&h.machine.0, &h.machine.1), NOTES).await;
    let r = get(&h, "/admin/v1/servers", &notes).await;
    assert_eq!(r.status, 401);
    assert!(
        challenge(&r).contains("error=\"invalid_token\""),
        "{}",
        challenge(&r)
    );
    assert!(challenge(&r).contains("resource_metadata="));

    let admin = admin_token(&h, &["admin:read"]).await;
    assert_eq!(get(&h, "/admin/v1/servers", &admin).await.status, 200);
    // Tampered: the signature no longer covers the claims.
    let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert_eq!(
        get(&h, "/admin/v1/servers", &parts.join(".")).await.status,
        401
    );
    assert_eq!(get(&h, "/admin/v1/servers", "garbage").await.status, 401);
    // Expired, past the leeway.
    h.clock.advance(900 + 31);
    let r = get(&h, "/admin/v1/servers", &admin).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_token");
}

#[tokio::test]
async fn read_scope_reads_but_a_mutation_is_403_insufficient_scope_and_changes_nothing() {
    let h = H::new().await;
    let read = admin_token(&h, &["admin:read"]).await;
    for path in [
        "/admin/v1/servers",
        "/admin/v1/clients",
        "/admin/v1/keys",
        "/admin/v1/status",
    ] {
        assert_eq!(get(&h, path, &read).await.status, 200, "{path}");
    }
    let before = ServerStore::list(&h.store).await.unwrap().len();
    let r = post(
        &h,
        "/admin/v1/servers",
        &read,
        json!({ "name": "new", "upstream": "http://127.0.0.1:9/mcp" }),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error(), "insufficient_scope");
    let c = challenge(&r);
    assert!(
        c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"admin:write\""),
        "{c}"
    );
    assert_eq!(
        delete(&h, "/admin/v1/servers/notes", &read).await.status,
        403
    );
    assert_eq!(
        post(&h, "/admin/v1/keys/rotate", &read, json!({}))
            .await
            .status,
        403
    );
    assert_eq!(ServerStore::list(&h.store).await.unwrap().len(), before);
    assert!(h.audit_kinds().await.contains(&"admin.denied".to_owned()));

    // admin:write alone may read too.
    let write = admin_token(&h, &["admin:write"]).await;
    assert_eq!(get(&h, "/admin/v1/servers", &write).await.status, 200);
}

#[tokio::test]
async fn user_tokens_and_delegated_tokens_are_refused_even_for_the_admin_audience() {
    let h = H::new().await;
    let admin = ServerStore::get(&h.store, "admin").await.unwrap().unwrap();
    let scope = ScopeSet::parse("admin:read admin:write").unwrap();
    // A token a user could get by consenting to the admin resource: sub is the user.
    let user = warden_server::oauth::token::mint_access_token(
        &h.app,
        "u_alice",
        "pub",
        &admin,
        &scope,
        h.clock_now(),
        900,
    )
    .unwrap();
    let r = get(&h, "/admin/v1/servers", &user.token).await;
    assert_eq!(r.status, 403);
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("client-credentials"));
    // A machine-shaped token with a session id (from a refresh family) is no better.
    let (id, _) = admin_client(&h, &["admin:write"]).await;
    let mint = |id: &str, sid: Option<&str>, jkt: Option<&str>| {
        warden_server::oauth::token::mint(
            &h.app,
            &warden_server::oauth::token::Claims {
                subject: id,
                client_id: id,
                server: &admin,
                scope: &scope,
                now: h.clock_now(),
                ttl: 900,
                sid,
                act: None,
                jkt,
            },
        )
        .unwrap()
    };
    let sid = mint(&id, Some("family"), None);
    assert_eq!(get(&h, "/admin/v1/servers", &sid.token).await.status, 403);
    // A DPoP-bound token is never a bearer token (RFC 9449 §7.2), whatever it grants.
    let (id, _) = admin_client(&h, &["admin:write"]).await;
    let bound = mint(
        &id,
        None,
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
    );
    assert_eq!(get(&h, "/admin/v1/servers", &bound.token).await.status, 401);
}

#[tokio::test]
async fn removing_an_admin_client_or_its_scope_or_revoking_the_token_cuts_it_off() {
    let h = H::new().await;
    let (id, secret) = admin_client(&h, &["admin:read", "admin:write"]).await;
    let token = token_for(&h, (&id, &secret), ADMIN).await;
    assert_eq!(get(&h, "/admin/v1/clients", &token).await.status, 200);

    // The registration loses admin:write: writes stop at once, reads go on.
    let mut rec = ClientStore::get(&h.store, &id).await.unwrap().unwrap();
    rec.scopes = vec!["admin:read".into()];
    ClientStore::update(&h.store, &rec).await.unwrap();
    let r = post(&h, "/admin/v1/keys/rotate", &token, json!({})).await;
    assert_eq!(r.status, 403);
    assert_eq!(get(&h, "/admin/v1/clients", &token).await.status, 200);

    // Revoked (RFC 7009) by its own client.
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", &token)],
            &Jar::default(),
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&h, "/admin/v1/clients", &token).await.status, 401);

    // Deleted client: its fresh token stops working.
    let token = token_for(&h, (&id, &secret), ADMIN).await;
    assert!(ClientStore::delete(&h.store, &id).await.unwrap());
    assert_eq!(get(&h, "/admin/v1/clients", &token).await.status, 401);
}

#[tokio::test]
async fn the_admin_resource_is_registered_and_protected_from_removal() {
    let h = H::new().await;
    let write = admin_token(&h, &["admin:write"]).await;
    let r = get(&h, "/admin/v1/servers/admin", &write).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["canonical_uri"], ADMIN);
    let r = delete(&h, "/admin/v1/servers/admin", &write).await;
    assert_eq!(r.status, 400);
    assert!(ServerStore::get(&h.store, "admin").await.unwrap().is_some());
    // Its scopes are not advertised in the authorization server's metadata.
    let m = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await;
    assert!(!m.body.contains("admin:write"));
}

#[tokio::test]
async fn every_path_in_the_openapi_document_is_served() {
    let h = H::new().await;
    let r = h.get("/admin/v1/openapi.json", &Jar::default()).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], BASE);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 18);
    let mut checked = 0;
    for (path, item) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue; // `parameters`
            };
            let r = call(&h, m, &concrete, None, None).await;
            assert!(
                r.status != 404 && r.status != 405,
                "{method} {path} is documented but not served: {}",
                r.status
            );
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let expected = if public { 200 } else { 401 };
            assert_eq!(r.status, expected, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 31, "{checked}");
    // And an undocumented admin path is a plain 404, not a challenge.
    let r = call(&h, Method::GET, "/admin/v1/nope", None, None).await;
    assert_eq!(r.status, 404);
}
