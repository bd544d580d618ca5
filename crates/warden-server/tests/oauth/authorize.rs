//! `/oauth/authorize`: which errors are pages and which go back to the client.

use axum::http::StatusCode;
use warden_core::pkce;

use crate::support::*;

fn url(pairs: &[(&str, &str)]) -> String {
    format!(
        "/oauth/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    )
}

fn base(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "pub".into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "xyz".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("resource", NOTES.into()),
    ]
}

fn with(mut v: Vec<(&'static str, String)>, key: &'static str, value: Option<&str>) -> String {
    v.retain(|(k, _)| *k != key);
    if let Some(val) = value {
        v.push((key, val.into()));
    }
    url(&v.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_valid_request_shows_the_sign_in_page() {
    let h = H::new().await;
    let r = h.get(&h.authorize_url(&[]), &Jar::default()).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"username\"") && r.body.contains("name=\"password\""));
    assert!(r.body.contains("pub app"));
}

#[tokio::test]
async fn untrusted_client_or_redirect_errors_are_pages_never_redirects() {
    let h = H::new().await;
    let c = pkce::s256(VERIFIER);
    for u in [
        with(base(&c), "client_id", Some("nope")),
        with(base(&c), "client_id", None),
        with(
            base(&c),
            "redirect_uri",
            Some("http://127.0.0.1:5555/other"),
        ),
        with(base(&c), "redirect_uri", Some("https://evil.example/cb")),
        with(base(&c), "redirect_uri", None),
    ] {
        let r = h.get(&u, &Jar::default()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{u}");
        assert!(
            r.headers.get("location").is_none(),
            "must not redirect: {u}"
        );
        assert!(r.body.contains("<h1>"));
    }
}

#[tokio::test]
async fn errors_after_the_redirect_is_trusted_go_back_with_state_and_iss() {
    let h = H::new().await;
    let c = pkce::s256(VERIFIER);
    let cases = [
        (with(base(&c), "code_challenge", None), "invalid_request"),
        (
            with(base(&c), "code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            with(base(&c), "code_challenge_method", None),
            "invalid_request",
        ),
        (
            with(base(&c), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (with(base(&c), "response_type", None), "invalid_request"),
        (with(base(&c), "resource", None), "invalid_target"),
        (
            with(
                base(&c),
                "resource",
                Some("http://127.0.0.1:8080/mcp/unknown"),
            ),
            "invalid_target",
        ),
        (
            with(
                base(&c),
                "resource",
                Some("http://127.0.0.1:8080/mcp/notes#frag"),
            ),
            "invalid_target",
        ),
        (
            with(base(&c), "scope", Some("notes:admin")),
            "invalid_scope",
        ),
        (with(base(&c), "scope", Some("other:use")), "invalid_scope"),
    ];
    for (u, err) in cases {
        let r = h.get(&u, &Jar::default()).await;
        assert_eq!(r.status, StatusCode::FOUND, "{u}: {}", r.body);
        let q = r.location_query();
        assert!(r.location().starts_with(REDIRECT));
        assert_eq!(q["error"], err, "{u}");
        assert_eq!(q["state"], "xyz");
        assert_eq!(q["iss"], BASE);
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn resource_is_compared_in_canonical_form() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    assert!(!code.is_empty());
    let c = pkce::s256(VERIFIER);
    let r = h
        .get(
            &with(
                base(&c),
                "resource",
                Some("HTTP://127.0.0.1:8080/mcp/notes/"),
            ),
            &jar,
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.location_query().contains_key("code"), "{}", r.location());
}

#[tokio::test]
async fn a_client_without_the_code_grant_is_refused() {
    let h = H::new().await;
    let c = pkce::s256(VERIFIER);
    let r = h
        .get(
            &with(base(&c), "client_id", Some("machine")),
            &Jar::default(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location_query()["error"], "unauthorized_client");
}

#[tokio::test]
async fn duplicated_parameters_are_refused() {
    let h = H::new().await;
    let u = format!("{}&state=again", h.authorize_url(&[]));
    let r = h.get(&u, &Jar::default()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consent_deny_returns_access_denied_and_no_code() {
    let h = H::new().await;
    let mut jar = Jar::default();
    let r = h.get(&h.authorize_url(&[]), &jar).await;
    let r = h.sign_in(&r, &mut jar, PASSWORD).await;
    assert!(
        r.body.contains("notes:read") && r.body.contains("127.0.0.1") && r.body.contains(NOTES),
        "consent page names scopes, redirect host and resource"
    );
    let r = h
        .post_form(
            "/oauth/consent",
            &[
                ("pending", &r.field("pending")),
                ("csrf", &r.field("csrf")),
                ("decision", "deny"),
            ],
            &jar,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let q = r.location_query();
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["iss"], BASE);
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn consent_is_remembered_and_prompt_consent_asks_again() {
    let h = H::new().await;
    let mut jar = Jar::default();
    h.code_for(&[], &mut jar).await;
    // Signed in and consented: the next request goes straight back with a code.
    let r = h.get(&h.authorize_url(&[]), &jar).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.location_query().contains_key("code"));
    // A wider request (new scope) or prompt=consent shows the consent page again.
    let r = h
        .get(&h.authorize_url(&[("prompt", "consent")]), &jar)
        .await;
    assert!(r.body.contains("name=\"decision\""));
    assert!(h.audit_kinds().await.contains(&"consent.given".to_owned()));
}

#[tokio::test]
async fn users_cannot_authorize_the_admin_api() {
    let h = H::new().await;
    let c = pkce::s256(VERIFIER);
    let admin = format!("{BASE}/admin");
    let r = h
        .get(
            &with(base(&c), "resource", Some(admin.as_str())),
            &Jar::default(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.location_query()["error"], "invalid_target");
    // And the gateway does not proxy it.
    let r = h.get("/mcp/admin", &Jar::default()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
