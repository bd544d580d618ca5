//! Sign-in, CSRF, cookies, lockout and sign-out.

use axum::http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn pages_forbid_framing_and_cookies_are_httponly_lax() {
    let h = H::new().await;
    let r = h.get(&h.authorize_url(&[]), &Jar::default()).await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers["cache-control"], "no-store");
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("warden_csrf="),
        "plain-http loopback drops the __Host- prefix: {cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Secure"));
}

#[tokio::test]
async fn over_https_cookies_are_host_prefixed_and_secure() {
    let h = H::with_base("https://auth.example.com", &[]).await;
    let url = h
        .authorize_url(&[])
        .replace("127.0.0.1%3A8080", "auth.example.com")
        .replace("http%3A%2F%2Fauth", "https%3A%2F%2Fauth");
    // The registered server lives on 127.0.0.1; any authorize response sets the CSRF cookie.
    let _ = url;
    let r = h.get("/oauth/logout", &Jar::default()).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-warden_csrf="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax")
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_audited() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let r = h.get(&h.authorize_url(&[]), &jar).await;
    let r = h.sign_in(&r, &mut jar, "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong username or password"));
    assert!(!r.body.contains("wrong password"));
    assert!(h.audit_kinds().await.contains(&"login.failed".to_owned()));
}

#[tokio::test]
async fn a_federated_user_cannot_sign_in_with_a_password() {
    let h = H::new().await;
    // A federated user has an empty password hash: no password, not even an empty one,
    // may match it.
    let mut alice = warden_store::UserStore::get(&h.store, "u_alice")
        .await
        .unwrap()
        .unwrap();
    alice.password_hash = String::new();
    warden_store::UserStore::update(&h.store, &alice)
        .await
        .unwrap();
    for password in ["", PASSWORD, "anything"] {
        let mut jar = Jar::default();
        let r = h.get(&h.authorize_url(&[]), &jar).await;
        let r = h.sign_in(&r, &mut jar, password).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{password:?}");
        assert!(r.body.contains("Wrong username or password"));
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let h = H::with(&[
        ("WARDEN_LOGIN__MAX_FAILURES", "2"),
        ("WARDEN_LOGIN__LOCKOUT", "60s"),
    ])
    .await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    for _ in 0..2 {
        h.sign_in(&page, &mut jar, "nope").await;
    }
    let r = h.sign_in(&page, &mut jar, PASSWORD).await;
    assert!(r.body.contains("Too many failed attempts"), "{}", r.body);
    h.clock.advance(61);
    let r = h.sign_in(&page, &mut jar, PASSWORD).await;
    assert!(
        r.body.contains("name=\"decision\""),
        "after the lockout the right password works"
    );
}

#[tokio::test]
async fn login_and_consent_posts_need_the_csrf_token_and_our_origin() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    jar.absorb(&page);
    let pending = page.field("pending");
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", &pending),
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", &pending),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("pending", pending.as_str()),
            ("csrf", page.field("csrf").as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .finish();
    let req = axum::http::Request::post("/oauth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", jar.header())
        .header("origin", "https://evil.example")
        .body(axum::body::Body::from(body))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::FORBIDDEN);
    // A tampered pending request is refused.
    let r = h
        .post_form(
            "/oauth/login",
            &[
                ("pending", "AAAA"),
                ("csrf", &page.field("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_pending_request_expires() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let page = h.get(&h.authorize_url(&[]), &jar).await;
    h.clock.advance(16 * 60);
    let r = h.sign_in(&page, &mut jar, PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("expired"));
}

#[tokio::test]
async fn sign_out_ends_the_session_and_revokes_its_refresh_tokens() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    let rt = h.exchange(&code).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = h.get("/oauth/logout", &jar).await;
    jar.absorb(&form);
    let r = h
        .post_form(
            "/oauth/logout",
            &[("csrf", &form.field("csrf"))],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    jar.absorb(&r);
    assert_eq!(h.refresh(&rt, &[]).await.error(), "invalid_grant");
    // The browser must sign in again.
    let r = h.get(&h.authorize_url(&[]), &jar).await;
    assert!(r.body.contains("name=\"password\""));
    // Sign-out without the CSRF token is refused.
    let r = h.post_form("/oauth/logout", &[], &jar, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
