//! Identity providers and workload bindings through the admin API: each happy path,
//! each refusal (clear, and changing nothing), the secret never shown, and sessions
//! revoked when an IdP is removed or disabled.

use serde_json::{json, Value};
use warden_store::{IdentityLink, IdpStore, RefreshFamily, RefreshStore, UserRecord, UserStore};

use crate::admin_support::*;
use crate::support::*;

const SECRET: &str = "idp-client-secret-do-not-show";

fn okta() -> Value {
    json!({
        "name": "okta",
        "issuer": "https://okta.idp.example",
        "uses": ["login", "workload"],
        "client_id": "warden-at-okta",
        "client_secret": SECRET,
        "group_map": [{ "idp_group": "Engineering", "group": "staff" }],
        "domains": ["Example.COM"],
        "display_name": "Sign in with Okta",
    })
}

/// A federated user linked through `idp`, with one live refresh-token family.
async fn linked_user(h: &H, idp: &str, id: &str) {
    let user = UserRecord {
        id: id.into(),
        username: format!("{id}@example.com"),
        password_hash: String::new(),
        groups: vec![],
        disabled: false,
        created_at: h.clock_now(),
        updated_at: h.clock_now(),
    };
    let link = IdentityLink {
        idp_name: idp.into(),
        issuer: format!("https://{idp}.idp.example"),
        subject: format!("sub-{id}"),
        user_id: id.into(),
        created_at: h.clock_now(),
        last_seen_at: h.clock_now(),
    };
    UserStore::create_federated(&h.store, &user, &link)
        .await
        .unwrap();
    let family = RefreshFamily {
        id: format!("fam-{id}"),
        client_id: "c".into(),
        subject: id.into(),
        scopes: vec![],
        resources: vec![],
        session_id: None,
        current_hash: id.bytes().chain(std::iter::repeat(0)).take(32).collect(),
        generation: 0,
        token_expires_at: h.clock_now() + 3600,
        session_expires_at: h.clock_now() + 86_400,
        created_at: h.clock_now(),
        rotated_at: h.clock_now(),
        revoked_at: None,
        revoked_reason: None,
        grace: None,
        parent_family: None,
        dpop_jkt: None,
    };
    RefreshStore::create(&h.store, &family).await.unwrap();
}

async fn revoked_reason(h: &H, id: &str) -> Option<String> {
    RefreshStore::get(&h.store, &format!("fam-{id}"))
        .await
        .unwrap()
        .unwrap()
        .revoked_reason
}

#[tokio::test]
async fn idps_register_list_show_update_remove_and_never_show_the_secret() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let r = post(&h, "/admin/v1/idps", &t, okta()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.contains(SECRET));
    let v = r.json();
    assert_eq!(v["client_secret_set"], true);
    assert_eq!(v["domains"], json!(["example.com"]));
    assert_eq!(v["scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(v["groups_claim"], "groups");
    assert_eq!(v["uses"], json!(["login", "workload"]));
    // Sealed at rest: the stored bytes are not the secret, and open only with its context.
    let rec = IdpStore::get(&h.store, "okta").await.unwrap().unwrap();
    let sealed = rec.client_secret_sealed.unwrap();
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    let opened = warden_core::idp::open_client_secret(&h.app.sealer, "okta", &sealed).unwrap();
    assert_eq!(opened.expose(), SECRET);

    let list = get(&h, "/admin/v1/idps", &t).await;
    assert_eq!(list.json(), json!([v]));
    assert!(!list.body.contains(SECRET));
    assert_eq!(get(&h, "/admin/v1/idps/okta", &t).await.json(), v);

    let r = patch(
        &h,
        "/admin/v1/idps/okta",
        &t,
        json!({ "display_name": null, "scopes": ["openid", "email"], "audiences": ["api://warden"] }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = r.json();
    assert_eq!(u["display_name"], Value::Null);
    assert_eq!(u["scopes"], json!(["openid", "email"]));
    assert_eq!(
        u["client_secret_set"], true,
        "an update without a secret keeps it"
    );
    assert_eq!(u["client_id"], "warden-at-okta");
    let r = patch(&h, "/admin/v1/idps/okta", &t, json!({ "scopes": null })).await;
    assert_eq!(r.json()["scopes"], json!(["openid", "email", "profile"]));

    let r = delete(&h, "/admin/v1/idps/okta", &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({ "removed": "okta", "sessions_revoked": 0 })
    );
    assert_eq!(get(&h, "/admin/v1/idps/okta", &t).await.status, 404);
    assert_eq!(delete(&h, "/admin/v1/idps/okta", &t).await.status, 404);
    let r = patch(&h, "/admin/v1/idps/okta", &t, json!({ "disabled": true })).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "not_found");

    let kinds = h.audit_kinds().await;
    for k in ["idp.created", "idp.updated", "idp.removed"] {
        assert!(kinds.contains(&k.to_owned()), "{k}: {kinds:?}");
    }
    // The audit trail never holds the secret either.
    let events = get(&h, "/admin/v1/events?kind=idp.created", &t).await;
    assert!(!events.body.contains(SECRET));
    assert!(events.body.contains("client_secret_set"));
}

#[tokio::test]
async fn idp_refusals_are_clear_400s_and_change_nothing() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = okta();
        f(&mut v);
        v
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|v| v["name"] = json!("Okta Prod")), "name"),
        (
            with(&|v| v["issuer"] = json!("http://okta.example")),
            "https",
        ),
        (
            with(&|v| v["issuer"] = json!("https://okta.example/?x=1")),
            "query",
        ),
        (
            with(&|v| v["issuer"] = json!("https://okta.example/#x")),
            "fragment",
        ),
        (with(&|v| v["uses"] = json!([])), "at least one use"),
        (
            with(&|v| v["uses"] = json!(["sso"])),
            "login, id-jag, workload",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("client_secret");
            }),
            "client secret",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("client_id");
            }),
            "client id",
        ),
        (
            with(&|v| v["group_map"] = json!([{ "idp_group": "", "group": "staff" }])),
            "is empty",
        ),
        (with(&|v| v["domains"] = json!(["not a domain"])), "domain"),
        (with(&|v| v["scopes"] = json!(["email"])), "openid"),
        (
            with(&|v| v["issuer"] = json!("https://login.microsoftonline.com/{tenantid}/v2.0")),
            "--tenant",
        ),
        (
            with(&|v| v["tenants"] = json!(["t1"])),
            "tenants apply only",
        ),
        (with(&|v| v["issuer_ca"] = json!("not pem")), "issuer_ca"),
        (
            with(&|v| {
                v["issuer_ca"] =
                    json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            }),
            "issuer_ca",
        ),
        (
            with(&|v| v["jwks_uri"] = json!("ftp://x.example/keys")),
            "jwks_uri",
        ),
        (
            with(&|v| v["surprise"] = json!(1)),
            "unknown field `surprise`",
        ),
    ];
    for (body, says) in cases {
        let r = post(&h, "/admin/v1/idps", &t, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.error(), "invalid_request");
        let d = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(d.contains(says), "{says:?} not in {d:?}");
        assert!(!d.contains(SECRET), "{d}");
    }
    assert!(IdpStore::list(&h.store).await.unwrap().is_empty());

    // A multi-tenant issuer with tenants, and no login (no client credentials needed).
    let entra = json!({
        "name": "entra",
        "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
        "tenants": ["9188040d-6c67-4c5b-b112-36a304b66dad"],
        "uses": ["id-jag"],
        "domains": ["contoso.example"],
    });
    assert_eq!(post(&h, "/admin/v1/idps", &t, entra).await.status, 201);
    assert_eq!(post(&h, "/admin/v1/idps", &t, okta()).await.status, 201);
    // Conflicts: the name, a domain of another IdP.
    let r = post(&h, "/admin/v1/idps", &t, okta()).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error(), "conflict");
    assert!(r.body.contains("already exists"), "{}", r.body);
    let r = post(
        &h,
        "/admin/v1/idps",
        &t,
        with(&|v| {
            v["name"] = json!("okta2");
            v["domains"] = json!(["EXAMPLE.com"]);
        }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r
        .body
        .contains("domain example.com already routes to identity provider okta"));
    let r = patch(
        &h,
        "/admin/v1/idps/entra",
        &t,
        json!({ "domains": ["contoso.example", "example.com"] }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // An update is checked like a registration.
    let r = patch(&h, "/admin/v1/idps/entra", &t, json!({ "tenants": [] })).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("--tenant"), "{}", r.body);
    let r = patch(
        &h,
        "/admin/v1/idps/okta",
        &t,
        json!({ "client_secret": null }),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("confidential OIDC client"), "{}", r.body);
    let r = patch(&h, "/admin/v1/idps/okta", &t, json!({ "name": "x" })).await;
    assert_eq!(r.status, 400);
    let kept = IdpStore::get(&h.store, "entra").await.unwrap().unwrap();
    assert_eq!(kept.domains, ["contoso.example"]);
    assert_eq!(kept.tenants.len(), 1);
}

#[tokio::test]
async fn removing_or_disabling_an_idp_revokes_its_users_sessions() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    assert_eq!(post(&h, "/admin/v1/idps", &t, okta()).await.status, 201);
    let mut other = okta();
    other["name"] = json!("other");
    other["issuer"] = json!("https://other.idp.example");
    other["domains"] = json!([]);
    assert_eq!(post(&h, "/admin/v1/idps", &t, other).await.status, 201);
    linked_user(&h, "okta", "u1").await;
    linked_user(&h, "okta", "u2").await;
    linked_user(&h, "other", "u3").await;

    let r = patch(&h, "/admin/v1/idps/okta", &t, json!({ "disabled": true })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(
        revoked_reason(&h, "u1").await.as_deref(),
        Some("idp_disabled")
    );
    assert_eq!(
        revoked_reason(&h, "u2").await.as_deref(),
        Some("idp_disabled")
    );
    assert_eq!(
        revoked_reason(&h, "u3").await,
        None,
        "another IdP's users keep theirs"
    );
    let enabled = patch(&h, "/admin/v1/idps/okta", &t, json!({ "disabled": false })).await;
    assert_eq!(enabled.json()["disabled"], false);

    let r = delete(&h, "/admin/v1/idps/other", &t).await;
    assert_eq!(
        r.json(),
        json!({ "removed": "other", "sessions_revoked": 1 })
    );
    assert_eq!(
        revoked_reason(&h, "u3").await.as_deref(),
        Some("idp_removed")
    );
    // The user and its link stay: adding the IdP back finds them.
    assert!(UserStore::get(&h.store, "u3").await.unwrap().is_some());
}

#[tokio::test]
async fn clients_bind_workload_identities_once_and_keep_their_idp() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    assert_eq!(post(&h, "/admin/v1/idps", &t, okta()).await.status, 201);
    let mut login_only = okta();
    login_only["name"] = json!("corp");
    login_only["issuer"] = json!("https://corp.idp.example");
    login_only["domains"] = json!([]);
    login_only["uses"] = json!(["login"]);
    assert_eq!(post(&h, "/admin/v1/idps", &t, login_only).await.status, 201);

    let sa = "system:serviceaccount:agents:runner";
    let r = post(
        &h,
        "/admin/v1/clients",
        &t,
        json!({ "name": "runner", "workloads": [{ "idp": "okta", "subject": sa }] }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_eq!(c["client_type"], "public");
    assert_eq!(c["token_endpoint_auth_method"], "none");
    assert!(c.get("client_secret").is_none());
    assert_eq!(
        c["grant_types"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert_eq!(c["workloads"], json!([{ "idp": "okta", "subject": sa }]));
    let id = c["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        warden_store::ClientStore::client_for_workload(&h.store, "okta", sa)
            .await
            .unwrap(),
        Some(id.clone())
    );

    // Refusals: the binding taken, an unknown IdP, an IdP not used for workloads, a
    // confidential client.
    let bind = |idp: &str, extra: Value| {
        let mut v = json!({ "name": "second", "workloads": [{ "idp": idp, "subject": sa }] });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let r = post(&h, "/admin/v1/clients", &t, bind("okta", json!({}))).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("already bound to another client"),
        "{}",
        r.body
    );
    let r = post(&h, "/admin/v1/clients", &t, bind("nope", json!({}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no identity provider named"), "{}", r.body);
    let r = post(&h, "/admin/v1/clients", &t, bind("corp", json!({}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not used for workloads"), "{}", r.body);
    let r = post(
        &h,
        "/admin/v1/clients",
        &t,
        bind("okta", json!({ "confidential": true })),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no secret"), "{}", r.body);
    let names: Vec<String> = get(&h, "/admin/v1/clients", &t)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"second".to_owned()), "{names:?}");

    // The IdP cannot be removed, or lose its workload use, while the client is bound.
    let r = delete(&h, "/admin/v1/idps/okta", &t).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains(&id),
        "the refusal names the client: {}",
        r.body
    );
    let r = patch(&h, "/admin/v1/idps/okta", &t, json!({ "uses": ["login"] })).await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Unbinding through a client update, then the IdP goes.
    let r = patch(
        &h,
        &format!("/admin/v1/clients/{id}"),
        &t,
        json!({ "workloads": [] }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["workloads"], json!([]));
    assert_eq!(delete(&h, "/admin/v1/idps/okta", &t).await.status, 200);
    assert!(h.audit_kinds().await.contains(&"client.updated".to_owned()));
}

#[tokio::test]
async fn the_jwt_bearer_grant_is_accepted_by_its_short_name() {
    let h = H::new().await;
    let t = admin_token(&h, &["admin:read", "admin:write"]).await;
    let r = post(
        &h,
        "/admin/v1/clients",
        &t,
        json!({ "name": "agent", "confidential": true, "grant_types": ["jwt-bearer"] }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_eq!(
        c["grant_types"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    let id = c["client_id"].as_str().unwrap();
    let r = patch(
        &h,
        &format!("/admin/v1/clients/{id}"),
        &t,
        json!({ "grant_types": ["jwt-bearer", "client_credentials"], "name": "agent2" }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["grant_types"],
        json!([
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_credentials"
        ])
    );
    assert_eq!(r.json()["name"], "agent2");
    let r = patch(
        &h,
        &format!("/admin/v1/clients/{id}"),
        &t,
        json!({ "grant_types": ["password"] }),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = patch(&h, "/admin/v1/clients/nope", &t, json!({ "name": "x" })).await;
    assert_eq!(r.status, 404);
}
