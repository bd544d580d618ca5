//! Servers whose tokens are opaque: looked up by hash, cached until expiry or revocation.

use axum::http::StatusCode;
use serde_json::json;
use warden_core::scope::ScopeSet;
use warden_server::oauth::token::{issue, Claims};
use warden_store::ServerStore;

use crate::support::*;

async fn opaque_server(gw: &Gw, name: &str) {
    let mut rec = record(name, &gw.upstream, json!({}));
    rec.token_format = "opaque".into();
    ServerStore::create(&gw.store, &rec).await.unwrap();
}

async fn opaque_token(gw: &Gw, server: &str, scope: &str, ttl: i64) -> (String, String) {
    let rec = gw.server(server).await;
    let scope = ScopeSet::parse(scope).unwrap();
    let claims = Claims {
        subject: "alice",
        client_id: "cli",
        server: &rec,
        scope: &scope,
        now: gw.clock.now_secs(),
        ttl,
        sid: None,
        act: None,
        jkt: None,
    };
    let issued = issue(&gw.app, &claims).await.unwrap();
    (issued.token, issued.jti)
}

#[tokio::test]
async fn opaque_tokens_work_until_they_expire_or_are_revoked() {
    let gw = Gw::start(json!({})).await;
    opaque_server(&gw, "vault").await;
    opaque_server(&gw, "vault2").await;
    let (token, jti) = opaque_token(&gw, "vault", "notes:read", 60).await;
    assert!(token.starts_with("wdn_at_"));
    let session = gw.initialize("vault", &token).await;
    let r = gw.call("vault", &token, &session, "whoami").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        !r.body.contains(&token),
        "the opaque token must not reach the upstream"
    );
    // Scope still applies.
    let denied = gw.call("vault", &token, &session, "notes_write").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // Audience still applies: the same token at another opaque server.
    assert_eq!(
        gw.initialize_with("vault2", &token, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A JWT is not accepted where opaque tokens are configured, nor a made-up token.
    let jwt = gw.token("vault", "notes:read").await;
    assert_eq!(
        gw.initialize_with("vault", &jwt, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        gw.initialize_with("vault", "wdn_at_made_up", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Revocation evicts the cached validation.
    gw.app.revoked.insert(jti, gw.clock.now_secs() + 60);
    assert_eq!(
        gw.initialize_with("vault", &token, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_opaque_token_is_refused_beyond_the_leeway() {
    let gw = Gw::start(json!({})).await;
    opaque_server(&gw, "vault").await;
    let (token, _) = opaque_token(&gw, "vault", "notes:read", 60).await;
    assert_eq!(
        gw.initialize_with("vault", &token, json!({})).await.status,
        StatusCode::OK
    );
    gw.clock.advance(60 + 30);
    assert_eq!(
        gw.initialize_with("vault", &token, json!({})).await.status,
        StatusCode::OK,
        "within the leeway"
    );
    gw.clock.advance(1);
    assert_eq!(
        gw.initialize_with("vault", &token, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A store that fails while an opaque token is looked up gives no verdict on the token:
/// 503 with `Retry-After`, so the client keeps its token, never 401 `invalid_token`.
#[tokio::test]
async fn a_store_failure_is_503_not_a_bad_token() {
    let gw = Gw::start(json!({})).await;
    opaque_server(&gw, "vault").await;
    let (token, _) = opaque_token(&gw, "vault", "notes:read", 60).await;
    gw.store.close().await;
    let r = gw.initialize_with("vault", &token, json!({})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    let challenge = r
        .headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(!challenge.contains("invalid_token"), "{challenge}");
}
