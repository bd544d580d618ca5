//! `/oauth/token`: the code grant, client credentials, and refused grants.

use crate::support::*;

#[tokio::test]
async fn code_exchange_issues_an_audience_bound_token_and_a_refresh_token() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[("scope", "notes:read")], &mut jar).await;
    let r = h.exchange(&code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["scope"], "notes:read");
    assert_eq!(j["expires_in"], 900);
    assert!(j["refresh_token"].as_str().unwrap().starts_with("wdn_rt_"));
    let c = claims(j["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], NOTES);
    assert_eq!(c["iss"], BASE);
    assert_eq!(c["sub"], "u_alice");
    assert_eq!(c["client_id"], "pub");
    assert_eq!(c["exp"], T0 + 900);
    assert!(c["sid"].is_string() && c["jti"].is_string());
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    let first = h.exchange(&code).await.json();
    let again = h.exchange(&code).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.error(), "invalid_grant");
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        h.refresh(rt, &[]).await.error(),
        "invalid_grant",
        "the refresh token from the first use is revoked"
    );
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(
        h.introspect(at).await["active"],
        false,
        "the access token from the first use is revoked"
    );
    assert!(h
        .app
        .revoked
        .token_revoked(None, claims(at)["sid"].as_str()));
    assert!(h
        .audit_kinds()
        .await
        .contains(&"code.replay_detected".to_owned()));
}

#[tokio::test]
async fn pkce_redirect_and_client_must_match_the_authorization() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let wrong_verifier = "a".repeat(43);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("code_verifier", wrong_verifier.clone())],
        vec![("code_verifier", "short".into())],
        vec![("redirect_uri", "http://127.0.0.1:5555/other".into())],
    ];
    for over in cases {
        let code = h.code_for(&[], &mut jar).await;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("code_verifier", VERIFIER.into()),
            ("redirect_uri", REDIRECT.into()),
            ("client_id", "pub".into()),
        ];
        for (k, v) in &over {
            form.retain(|(x, _)| x != k);
            form.push((k, v.clone()));
        }
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = h.token(&f, None).await;
        assert_eq!(r.error(), "invalid_grant", "{over:?}");
        // The code is spent even by a failed attempt.
        assert_eq!(h.exchange(&code).await.error(), "invalid_grant");
    }
    // Missing verifier is a malformed request.
    let code = h.code_for(&[], &mut jar).await;
    let r = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "pub"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
    // Another client cannot redeem it.
    let (wid, ws) = &h.web;
    let r = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
            ],
            Some((wid, ws)),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    h.clock.advance(61);
    assert_eq!(h.exchange(&code).await.error(), "invalid_grant");
}

#[tokio::test]
async fn the_token_resource_must_be_one_that_was_authorized() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    let r = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
                ("client_id", "pub"),
                ("resource", OTHER),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_target");
}

#[tokio::test]
async fn removed_and_unknown_grants_are_unsupported() {
    let h = H::new().await;
    for g in ["password", "implicit", "urn:example:nope"] {
        let r = h
            .token(
                &[
                    ("grant_type", g),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("client_id", "pub"),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.error(), "unsupported_grant_type", "{g}");
        assert!(!r.body.contains(PASSWORD));
    }
    assert_eq!(
        h.token(&[("client_id", "pub")], None).await.error(),
        "invalid_request"
    );
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn the_token_endpoint_requires_a_form_body() {
    let h = H::new().await;
    let req = axum::http::Request::post("/oauth/token")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            "{\"grant_type\":\"client_credentials\"}",
        ))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn client_credentials_gets_only_registered_scopes_on_a_named_resource() {
    let h = H::new().await;
    let (id, s) = (&h.machine.0, &h.machine.1);
    let ok = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", NOTES)],
            Some((id, s)),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let c = claims(ok.json()["access_token"].as_str().unwrap());
    assert_eq!(c["scope"], "notes:read");
    assert_eq!(c["sub"], "machine");
    assert_eq!(c["aud"], NOTES);
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("scope", "notes:write"),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_scope");
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("scope", "notes:admin"),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_scope");
    let r = h
        .token(&[("grant_type", "client_credentials")], Some((id, s)))
        .await;
    assert_eq!(r.error(), "invalid_target");
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", "http://127.0.0.1:8080/mcp/unknown"),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_target");
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("resource", OTHER),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_target");
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", OTHER)],
            Some((id, s)),
        )
        .await;
    assert_eq!(
        r.error(),
        "invalid_scope",
        "no registered scope applies to the other server"
    );
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_id", "pub"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "unauthorized_client");
}

/// A server whose token format this build does not know gets no token at all (fail
/// closed), where any format but `opaque` used to get a JWT.
#[tokio::test]
async fn an_unknown_token_format_gets_no_token() {
    use warden_store::ServerStore;
    let h = H::new().await;
    let mut vault = ServerStore::get(&h.store, "vault").await.unwrap().unwrap();
    let (id, secret) = (&h.machine.0, &h.machine.1);
    let form = [("grant_type", "client_credentials"), ("resource", VAULT)];
    vault.token_format = "pasta".into();
    ServerStore::update(&h.store, &vault).await.unwrap();
    let r = h.token(&form, Some((id, secret))).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.error(), "server_error");
    assert!(!r.body.contains("access_token"));
}
