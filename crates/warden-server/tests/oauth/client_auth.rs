//! Client authentication: basic, post, none; and every way to get it wrong.

use axum::body::Body;
use axum::http::{header, Request};

use crate::support::*;

fn cc(resource: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".into()),
        ("resource", resource.into()),
    ]
}

#[tokio::test]
async fn basic_and_post_both_authenticate() {
    let h = H::new().await;
    let (id, s) = (&h.machine.0, &h.machine.1);
    let form: Vec<(&str, String)> = cc(NOTES);
    let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(h.token(&f, Some((id, s))).await.status, 200);
    let mut post = f.clone();
    post.push(("client_id", id));
    post.push(("client_secret", s));
    assert_eq!(h.token(&post, None).await.status, 200);
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_with_a_basic_challenge() {
    let h = H::new().await;
    let id = &h.machine.0;
    let f = [("grant_type", "client_credentials"), ("resource", NOTES)];
    let r = h.token(&f, Some((id, "wdn_cs_wrong"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_client");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert!(!r.body.contains("wdn_cs_wrong"));
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_id", id),
                ("client_secret", "nope"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = h.token(&f, Some(("no-such-client", "x"))).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn confidential_without_secret_and_public_with_secret_are_refused() {
    let h = H::new().await;
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_id", "machine"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    let r = h
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "pub"),
                ("client_secret", "guess"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
}

#[tokio::test]
async fn two_methods_at_once_or_mismatched_ids_are_malformed() {
    let h = H::new().await;
    let (id, s) = (&h.machine.0, &h.machine.1);
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_secret", s),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_id", "pub"),
            ],
            Some((id, s)),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn an_expired_client_secret_no_longer_authenticates() {
    let h = H::new().await;
    let (id, s) = (h.machine.0.clone(), h.machine.1.clone());
    let mut rec = warden_store::ClientStore::get(&h.store, &id)
        .await
        .unwrap()
        .unwrap();
    rec.secrets[0].expires_at = Some(T0 + 10);
    warden_store::ClientStore::update(&h.store, &rec)
        .await
        .unwrap();
    let f = [("grant_type", "client_credentials"), ("resource", NOTES)];
    assert_eq!(h.token(&f, Some((&id, &s))).await.status, 200);
    h.clock.advance(11);
    assert_eq!(h.token(&f, Some((&id, &s))).await.status, 401);
}

/// `POST path` with the form and `Authorization: {scheme} base64(id:secret)`.
async fn with_scheme(h: &H, path: &str, scheme: &str, form: &[(&str, &str)]) -> Resp {
    use base64::Engine as _;
    let (id, secret) = (&h.introspector.0, &h.introspector.1);
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("{scheme} {enc}"))
        .body(Body::from(body))
        .unwrap();
    h.send(req).await
}

/// RFC 7235 §2.1: the scheme is case-insensitive, at every endpoint that authenticates
/// clients. Another scheme, or Basic credentials that do not decode, are still refused.
#[tokio::test]
async fn the_basic_scheme_is_matched_case_insensitively() {
    let h = H::new().await;
    let (token, _) = h.tokens().await;
    for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
        let r = with_scheme(&h, "/oauth/introspect", scheme, &[("token", &token)]).await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
        assert_eq!(r.json()["active"], true, "{scheme}");
        let r = with_scheme(&h, "/oauth/revoke", scheme, &[("token", "unknown")]).await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
        let r = with_scheme(&h, "/oauth/token", scheme, &cc_form()).await;
        // The introspector may not use client credentials for NOTES; what matters is that
        // it authenticated (no invalid_client, no invalid_request about the header).
        assert_ne!(r.status, 401, "{scheme}: {}", r.body);
        assert!(
            !["invalid_client", "invalid_request"].contains(&r.error().as_str()),
            "{scheme}: {}",
            r.body
        );
    }
    let r = with_scheme(&h, "/oauth/introspect", "Bearer", &[("token", &token)]).await;
    assert_eq!(r.error(), "invalid_request");
    let bad = Request::post("/oauth/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, "BASIC not*base64")
        .body(Body::from("token=x"))
        .unwrap();
    let r = h.send(bad).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_client");
}

fn cc_form() -> [(&'static str, &'static str); 2] {
    [("grant_type", "client_credentials"), ("resource", NOTES)]
}
