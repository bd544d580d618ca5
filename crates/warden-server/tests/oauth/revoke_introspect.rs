//! Revocation (RFC 7009) and introspection (RFC 7662).

use crate::support::*;

async fn revoke(h: &H, token: &str, client: Option<(&str, &str)>) -> Resp {
    let mut form = vec![("token", token)];
    if client.is_none() {
        form.push(("client_id", "pub"));
    }
    h.post_form("/oauth/revoke", &form, &Jar::default(), client)
        .await
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() {
    let h = H::new().await;
    let (at, rt) = h.tokens().await;
    assert_eq!(h.introspect(&rt).await["active"], true);
    let r = revoke(&h, &rt, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.refresh(&rt, &[]).await.error(), "invalid_grant");
    assert_eq!(h.introspect(&rt).await["active"], false);
    assert_eq!(h.introspect(&at).await["active"], false);
    assert!(h.audit_kinds().await.contains(&"token.revoked".to_owned()));
}

#[tokio::test]
async fn revoking_an_access_token_denylists_its_jti_until_expiry() {
    let h = H::new().await;
    let (at, rt) = h.tokens().await;
    assert_eq!(h.introspect(&at).await["active"], true);
    assert_eq!(revoke(&h, &at, None).await.status, 200);
    assert_eq!(h.introspect(&at).await["active"], false);
    let jti = claims(&at)["jti"].as_str().unwrap().to_owned();
    assert!(h.app.revoked.contains(&jti));
    assert!(warden_store::RevocationStore::is_revoked(&h.store, &jti)
        .await
        .unwrap());
    // The refresh family is untouched.
    assert_eq!(h.refresh(&rt, &[]).await.status, 200);
}

#[tokio::test]
async fn unknown_or_foreign_tokens_answer_200_and_change_nothing() {
    let h = H::new().await;
    assert_eq!(revoke(&h, "wdn_rt_nothing", None).await.status, 200);
    assert_eq!(revoke(&h, "not.a.jwt", None).await.status, 200);
    let (at, rt) = h.tokens().await;
    let (wid, ws) = h.web.clone();
    assert_eq!(revoke(&h, &rt, Some((&wid, &ws))).await.status, 200);
    assert_eq!(revoke(&h, &at, Some((&wid, &ws))).await.status, 200);
    assert_eq!(
        h.introspect(&at).await["active"],
        true,
        "another client cannot revoke it"
    );
    assert_eq!(h.introspect(&rt).await["active"], true);
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", &at)],
            &Jar::default(),
            Some(("web", "wrong")),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn introspection_shows_claims_to_whom_it_may_and_nothing_to_others() {
    let h = H::new().await;
    let (at, _) = h.tokens().await;
    let j = h.introspect(&at).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["aud"], NOTES);
    assert_eq!(j["client_id"], "pub");
    assert_eq!(j["sub"], "u_alice");
    // A confidential client sees only its own tokens without warden:introspect.
    let (mid, ms) = h.machine.clone();
    let r = h
        .post_form(
            "/oauth/introspect",
            &[("token", &at)],
            &Jar::default(),
            Some((&mid, &ms)),
        )
        .await;
    assert_eq!(r.json()["active"], false);
    let own = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", NOTES)],
            Some((&mid, &ms)),
        )
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .post_form(
            "/oauth/introspect",
            &[("token", &own)],
            &Jar::default(),
            Some((&mid, &ms)),
        )
        .await;
    assert_eq!(r.json()["active"], true);
    // A public client may not introspect at all.
    let r = h
        .post_form(
            "/oauth/introspect",
            &[("token", &at), ("client_id", "pub")],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    // Garbage and expired tokens are inactive.
    assert_eq!(h.introspect("garbage").await["active"], false);
    h.clock.advance(901);
    assert_eq!(h.introspect(&at).await["active"], false);
}

#[tokio::test]
async fn opaque_tokens_are_stored_as_hashes_introspected_and_revoked() {
    let h = H::new().await;
    let (id, s) = (h.machine.0.clone(), h.machine.1.clone());
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", VAULT)],
            Some((&id, &s)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(
        at.starts_with("wdn_at_") && at.split('.').count() == 1,
        "opaque, not a JWT"
    );
    let j = h.introspect(&at).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["aud"], VAULT);
    assert_eq!(j["scope"], "vault:read");
    assert_eq!(j["client_id"], id.as_str());
    // Only the hash is stored.
    let rec =
        warden_store::AccessTokenStore::find(&h.store, &warden_core::secret::token_hash(&at), T0)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(rec.audience, VAULT);
    // Revocation by the owning client; then inactive.
    assert_eq!(
        h.post_form(
            "/oauth/revoke",
            &[("token", &at)],
            &Jar::default(),
            Some((&id, &s))
        )
        .await
        .status,
        200
    );
    assert_eq!(h.introspect(&at).await["active"], false);
    // Expiry.
    let at2 = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", VAULT)],
            Some((&id, &s)),
        )
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.introspect(&at2).await["active"], true);
    h.clock.advance(901);
    assert_eq!(h.introspect(&at2).await["active"], false);
    assert_eq!(h.introspect("wdn_at_unknown").await["active"], false);
}
