//! Token exchange (RFC 8693): narrowing, audience, expiry, `act` chains, depth, revocation
//! and audit.

use serde_json::{json, Value};
use warden_core::secret::{generate, SecretKind};
use warden_store::{ClientRecord, ClientSecret, ClientStore};

use crate::support::*;

const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A confidential client with `grants` and `scopes`; returns (id, secret).
async fn client(h: &H, id: &str, grants: &[&str], scopes: &[&str]) -> (String, String) {
    let secret = generate(SecretKind::ClientSecret)
        .unwrap()
        .expose()
        .to_owned();
    let rec = ClientRecord {
        client_id: id.into(),
        name: id.into(),
        confidential: true,
        redirect_uris: vec![],
        grant_types: grants.iter().map(|g| (*g).into()).collect(),
        scopes: scopes.iter().map(|s| (*s).into()).collect(),
        token_endpoint_auth_method: "client_secret_basic".into(),
        secrets: vec![ClientSecret {
            id: format!("{id}-s"),
            hash: h.app.secrets.hash(&secret),
            created_at: T0,
            expires_at: None,
        }],
        metadata: json!({}),
        created_at: T0,
        updated_at: T0,
        last_used_at: None,
    };
    ClientStore::create(&h.store, &rec).await.unwrap();
    (id.into(), secret)
}

/// The orchestrator (client credentials for both notes groups, may exchange) and a
/// sub-agent (may exchange only).
async fn fleet(h: &H) -> ((String, String), (String, String)) {
    let orch = client(
        h,
        "orchestrator",
        &["client_credentials", TE],
        &["notes:read", "notes:write"],
    )
    .await;
    let sub = client(h, "subagent", &[TE], &[]).await;
    (orch, sub)
}

async fn cc_token(h: &H, (id, s): &(String, String), scope: &str) -> String {
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("scope", scope),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn exchange(
    h: &H,
    (id, s): &(String, String),
    subject: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut form = vec![
        ("grant_type", TE),
        ("subject_token", subject),
        ("subject_token_type", AT),
    ];
    form.extend_from_slice(extra);
    h.token(&form, Some((id, s))).await
}

fn token_of(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_subset_of_the_subject_scopes_is_granted_with_an_act_claim() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let subject = cc_token(&h, &orch, "notes:read notes:write").await;
    let r = exchange(
        &h,
        &orch,
        &subject,
        &[("scope", "notes:read"), ("resource", NOTES)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let j = r.json();
    assert_eq!(j["issued_token_type"], AT);
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["scope"], "notes:read");
    assert!(j.get("refresh_token").is_none());
    let c = claims(j["access_token"].as_str().unwrap());
    let s = claims(&subject);
    assert_eq!(c["scope"], "notes:read");
    assert_eq!(c["aud"], NOTES);
    assert_eq!(c["sub"], s["sub"]);
    assert_eq!(c["client_id"], "orchestrator");
    assert_eq!(c["act"], json!({"sub": "orchestrator"}));
    assert_eq!(
        c["sid"], s["jti"],
        "a grant-less subject's jti links what derives from it"
    );
    assert!(c["exp"].as_i64() <= s["exp"].as_i64());
    let active = h.introspect(j["access_token"].as_str().unwrap()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["act"], json!({"sub": "orchestrator"}));
    // The audience parameter naming the same resource is fine too; no scope = all held.
    let r = exchange(&h, &orch, &subject, &[("audience", NOTES)]).await;
    assert_eq!(r.json()["scope"], "notes:read notes:write");
}

#[tokio::test]
async fn wider_scope_other_audience_and_bad_types_are_refused() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let narrow = cc_token(&h, &orch, "notes:read").await;
    let r = exchange(&h, &orch, &narrow, &[("scope", "notes:read notes:write")]).await;
    assert_eq!(r.error(), "invalid_scope", "{}", r.body);
    let r = exchange(&h, &orch, &narrow, &[("scope", "other:use")]).await;
    assert_eq!(r.error(), "invalid_scope");
    for (k, v) in [
        ("resource", OTHER),
        ("audience", OTHER),
        ("resource", "https://unknown.example.com/mcp"),
        ("resource", "not a uri"),
    ] {
        let r = exchange(&h, &orch, &narrow, &[(k, v)]).await;
        assert_eq!(r.error(), "invalid_target", "{k}={v}");
    }
    let r = h
        .token(
            &[
                ("grant_type", TE),
                ("subject_token", &narrow),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            Some((&orch.0, &orch.1)),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
    let r = exchange(
        &h,
        &orch,
        &narrow,
        &[(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        )],
    )
    .await;
    assert_eq!(r.error(), "invalid_request");
    let r = exchange(&h, &orch, "not-a-token", &[]).await;
    assert_eq!(r.error(), "invalid_request");
    let r = exchange(&h, &orch, &narrow, &[("actor_token", &narrow)]).await;
    assert_eq!(r.error(), "invalid_request", "actor_token_type is required");
}

#[tokio::test]
async fn only_clients_granted_token_exchange_may_exchange() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let subject = cc_token(&h, &orch, "notes:read").await;
    let r = exchange(&h, &h.machine.clone(), &subject, &[]).await;
    assert_eq!(r.error(), "unauthorized_client");
    let r = h
        .token(
            &[
                ("grant_type", TE),
                ("subject_token", &subject),
                ("subject_token_type", AT),
                ("client_id", "pub"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "unauthorized_client");
}

#[tokio::test]
async fn the_exchanged_token_never_outlives_the_subject() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let subject = cc_token(&h, &orch, "notes:read").await;
    h.clock.advance(600);
    let r = exchange(&h, &orch, &subject, &[]).await;
    assert_eq!(r.json()["expires_in"], 300);
    let c = claims(&token_of(&r));
    assert_eq!(c["exp"], claims(&subject)["exp"]);
    h.clock.advance(301);
    assert_eq!(
        exchange(&h, &orch, &subject, &[]).await.error(),
        "invalid_request",
        "expired subject"
    );
}

#[tokio::test]
async fn chains_nest_act_and_stop_at_the_configured_depth() {
    let h = H::with(&[("WARDEN_EXCHANGE__MAX_DELEGATION_DEPTH", "2")]).await;
    let (orch, sub) = fleet(&h).await;
    let subject = cc_token(&h, &orch, "notes:read notes:write").await;
    let hop1 =
        token_of(&exchange(&h, &orch, &subject, &[("scope", "notes:read notes:write")]).await);
    let hop2 = token_of(&exchange(&h, &sub, &hop1, &[("scope", "notes:read")]).await);
    let c = claims(&hop2);
    assert_eq!(
        c["act"],
        json!({"sub": "subagent", "act": {"sub": "orchestrator"}}),
        "the most recent actor outermost"
    );
    assert_eq!(c["client_id"], "subagent");
    assert_eq!(c["sub"], "orchestrator");
    assert_eq!(c["scope"], "notes:read");
    let r = exchange(&h, &sub, &hop2, &[]).await;
    assert_eq!(r.error(), "invalid_request");
    assert!(r.body.contains("too deep"), "{}", r.body);

    // The audit log carries each exchange's whole chain.
    let events = h.audit_events("token.exchanged").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].detail["act"], c["act"]);
    assert_eq!(events[1].detail["depth"], 2);
    assert_eq!(events[1].client_id.as_deref(), Some("subagent"));
    assert_eq!(events[1].detail["subject_client_id"], "orchestrator");
    assert_eq!(events[1].detail["jti"], c["jti"]);
}

#[tokio::test]
async fn an_actor_token_names_the_actor() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let worker = client(&h, "worker", &["client_credentials"], &["notes:read"]).await;
    let subject = cc_token(&h, &orch, "notes:read").await;
    let actor = cc_token(&h, &worker, "notes:read").await;
    let r = exchange(
        &h,
        &orch,
        &subject,
        &[("actor_token", &actor), ("actor_token_type", AT)],
    )
    .await;
    assert_eq!(claims(&token_of(&r))["act"], json!({"sub": "worker"}));
    let r = exchange(
        &h,
        &orch,
        &subject,
        &[("actor_token", "forged"), ("actor_token_type", AT)],
    )
    .await;
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn revoked_subjects_are_refused_and_revocation_reaches_derived_tokens() {
    let h = H::new().await;
    let (orch, sub) = fleet(&h).await;
    // A client-credentials subject: revoking it (by jti) kills every descendant.
    let subject = cc_token(&h, &orch, "notes:read").await;
    let hop1 = token_of(&exchange(&h, &orch, &subject, &[]).await);
    let hop2 = token_of(&exchange(&h, &sub, &hop1, &[]).await);
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", &subject)],
            &Jar::default(),
            Some((&orch.0, &orch.1)),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        exchange(&h, &orch, &subject, &[]).await.error(),
        "invalid_request"
    );
    assert_eq!(h.introspect(&hop1).await["active"], false);
    assert_eq!(h.introspect(&hop2).await["active"], false);

    // A user's token from the code flow: revoking its refresh family (the grant) makes
    // the exchanged token inactive.
    let (user_at, user_rt) = h.tokens().await;
    let derived = token_of(&exchange(&h, &orch, &user_at, &[("scope", "notes:read")]).await);
    let c = claims(&derived);
    assert_eq!(c["sub"], "u_alice");
    assert_eq!(c["sid"], claims(&user_at)["sid"]);
    assert_eq!(h.introspect(&derived).await["active"], true);
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", &user_rt), ("client_id", "pub")],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.introspect(&derived).await["active"], false);
    assert_eq!(h.introspect(&user_at).await["active"], false);
    assert_eq!(
        exchange(&h, &orch, &user_at, &[]).await.error(),
        "invalid_request"
    );
}

#[tokio::test]
async fn refused_exchanges_are_audited_without_tokens() {
    let h = H::new().await;
    let (orch, _) = fleet(&h).await;
    let subject = cc_token(&h, &orch, "notes:read").await;
    exchange(&h, &orch, &subject, &[("scope", "notes:write")]).await;
    let denied = h.audit_events("token.denied").await;
    let last: &Value = &denied.last().unwrap().detail;
    assert_eq!(last["grant_type"], TE);
    assert_eq!(last["error"], "invalid_scope");
    assert!(!last.to_string().contains(&subject));
}

#[tokio::test]
async fn a_bound_subject_token_is_exchanged_only_by_its_key_and_stays_bound() {
    use crate::proofs::{client_key, jkt};
    use warden_core::keys::SigningAlg;

    let h = H::new().await;
    let (orch, sub) = fleet(&h).await;
    let key = client_key(SigningAlg::Es256);
    let at = |jti: &str| h.token_proof(&key, jti);
    let (id, s) = (&orch.0, &orch.1);
    let r = h
        .token_dpop(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("scope", "notes:read"),
            ],
            Some((id, s)),
            Some(&at("cc")),
        )
        .await;
    let subject = token_of(&r);
    let form = |subject: &str| {
        vec![
            ("grant_type", TE.to_owned()),
            ("subject_token", subject.to_owned()),
            ("subject_token_type", AT.to_owned()),
            ("resource", NOTES.to_owned()),
        ]
    };
    let pairs = form(&subject);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let creds = Some((sub.0.as_str(), sub.1.as_str()));
    // Without a proof the binding would be dropped: refused.
    let r = h.token_dpop(&pairs, creds, None).await;
    assert_eq!(
        (r.status, r.error()),
        (
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_dpop_proof".into()
        ),
        "{}",
        r.body
    );
    // By another key: refused, the subject token is bound to its key's holder.
    let thief = client_key(SigningAlg::Es256);
    let other = h.token_proof(&thief, "x");
    let r = h.token_dpop(&pairs, creds, Some(&other)).await;
    assert_eq!(
        (r.status, r.error()),
        (axum::http::StatusCode::BAD_REQUEST, "invalid_grant".into()),
        "{}",
        r.body
    );
    // By the key: a token bound to it.
    let r = h.token_dpop(&pairs, creds, Some(&at("te"))).await;
    let exchanged = token_of(&r);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(claims(&exchanged)["cnf"]["jkt"], jkt(&key));
}
