//! Token validation, both ways for every rule, and the assertion the upstream gets.

use axum::http::StatusCode;
use serde_json::{json, Value};
use warden_core::jwt;
use warden_core::secret::SecretHasher;

use crate::support::*;

/// `initialize` with `token`: the cheapest request that reaches the upstream.
async fn status_of(gw: &Gw, token: &str) -> StatusCode {
    gw.initialize_with("notes", token, json!({})).await.status
}

#[tokio::test]
async fn valid_token_reaches_upstream_as_an_assertion_never_as_itself() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    let r = gw.call("notes", &token, &session, "whoami").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        !r.body.contains(&token),
        "the client token reached the upstream"
    );
    let seen = r.json()["result"]["structuredContent"].clone();
    let assertion = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    assert_ne!(assertion, token);
    let (header, _) = decode(assertion);
    assert_eq!(header["typ"], "warden-assertion+jwt");
    let now = gw.clock.now_secs();
    let claims = verify_assertion(&gw.jwk(), assertion, &gw.upstream, now);
    assert_eq!(claims["aud"], Value::String(gw.upstream.clone()));
    assert_eq!(claims["iss"], BASE);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "cli");
    assert_eq!(claims["scope"], "notes:read");
    assert!(claims["exp"].as_i64().unwrap() <= now + 60);
    assert_ne!(claims["jti"], decode(&token).1["jti"]);
    assert_eq!(seen["x-warden-subject"], "alice");
    assert_eq!(seen["x-warden-client-id"], "cli");
    assert_eq!(seen["x-warden-scope"], "notes:read");
    // The assertion cannot be used as an access token at the gateway.
    assert_eq!(status_of(&gw, assertion).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn delegation_chain_reaches_the_assertion() {
    let gw = Gw::start(json!({})).await;
    let mut claims = gw.claims("notes:read");
    claims.insert(
        "act".into(),
        json!({"sub": "agent-7", "act": {"sub": "orchestrator"}}),
    );
    let token = gw.sign(&claims, jwt::AT_JWT_TYP);
    let session = gw.initialize("notes", &token).await;
    let r = gw.call("notes", &token, &session, "whoami").await;
    let seen = r.json()["result"]["structuredContent"].clone();
    let assertion = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let claims = verify_assertion(&gw.jwk(), assertion, &gw.upstream, gw.clock.now_secs());
    assert_eq!(
        claims["act"],
        json!({"sub": "agent-7", "act": {"sub": "orchestrator"}})
    );
}

#[tokio::test]
async fn audience_must_be_exactly_this_server() {
    let gw = Gw::start(json!({})).await;
    let mut claims = gw.claims("notes:read");
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::OK
    );
    claims.insert("aud".into(), json!("http://127.0.0.1:8080/mcp/elsewhere"));
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
    claims.insert("aud".into(), json!("http://127.0.0.1:8080/mcp/notes/"));
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
    claims.insert("aud".into(), json!([NOTES]));
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::OK
    );
    // A token for several audiences is not a token for this one.
    claims.insert(
        "aud".into(),
        json!([NOTES, "http://127.0.0.1:8080/mcp/other"]),
    );
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_token_for_another_registered_server_is_refused() {
    let gw = Gw::start(json!({})).await;
    let other = gw.token("other", "notes:read").await;
    let notes = gw.token("notes", "notes:read").await;
    // Valid at its own server (and cached there)...
    assert_eq!(
        gw.initialize_with("other", &other, json!({})).await.status,
        StatusCode::OK
    );
    // ...refused here, cached or not.
    assert_eq!(status_of(&gw, &other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&gw, &notes).await, StatusCode::OK);
    let r = gw.initialize_with("other", &notes, json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expiry_with_leeway_exact_to_the_second() {
    let gw = Gw::start(json!({})).await;
    let cached = gw.token("notes", "notes:read").await; // exp = T0 + 900, leeway 30
    let fresh = gw.token("notes", "notes:read").await;
    assert_eq!(status_of(&gw, &cached).await, StatusCode::OK);
    gw.clock.set(T0 + 900 + 30);
    assert_eq!(
        status_of(&gw, &cached).await,
        StatusCode::OK,
        "expired within leeway, cached"
    );
    assert_eq!(
        status_of(&gw, &fresh).await,
        StatusCode::OK,
        "expired within leeway, fresh"
    );
    gw.clock.set(T0 + 900 + 31);
    assert_eq!(
        status_of(&gw, &cached).await,
        StatusCode::UNAUTHORIZED,
        "beyond leeway, cached"
    );
    let never_seen = {
        gw.clock.set(T0);
        let t = gw.token("notes", "notes:read").await;
        gw.clock.set(T0 + 900 + 31);
        t
    };
    assert_eq!(
        status_of(&gw, &never_seen).await,
        StatusCode::UNAUTHORIZED,
        "beyond leeway, fresh"
    );
}

#[tokio::test]
async fn leeway_is_per_server() {
    let gw = Gw::start(json!({})).await;
    let mut rec = gw.server("notes").await;
    rec.leeway_secs = 0;
    warden_store::ServerStore::update(&gw.store, &rec)
        .await
        .unwrap();
    gw.app.gateway.registry.invalidate("notes");
    let token = gw.token("notes", "notes:read").await;
    gw.clock.set(T0 + 900);
    assert_eq!(status_of(&gw, &token).await, StatusCode::OK);
    gw.clock.set(T0 + 901);
    assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cached_token_is_checked_afresh_after_the_server_changes_how_it_validates() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    assert_eq!(
        status_of(&gw, &token).await,
        StatusCode::OK,
        "validated, cached"
    );
    assert_eq!(
        status_of(&gw, &token).await,
        StatusCode::OK,
        "from the cache"
    );
    // The server now takes only opaque tokens: the JWT validated a moment ago is refused
    // at once, not when its cache entry expires.
    let mut rec = gw.server("notes").await;
    rec.token_format = "opaque".into();
    warden_store::ServerStore::update(&gw.store, &rec)
        .await
        .unwrap();
    gw.app.gateway.registry.invalidate("notes");
    assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
    // Back to JWTs: accepted again (validated afresh).
    rec.token_format = "jwt".into();
    warden_store::ServerStore::update(&gw.store, &rec)
        .await
        .unwrap();
    gw.app.gateway.registry.invalidate("notes");
    assert_eq!(status_of(&gw, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn not_before_in_the_future() {
    let gw = Gw::start(json!({})).await;
    let mut claims = gw.claims("notes:read");
    claims.insert("nbf".into(), json!(T0 + 120));
    claims.insert("iat".into(), json!(T0 + 120));
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
    claims.insert("nbf".into(), json!(T0 + 20));
    claims.insert("iat".into(), json!(T0 + 20));
    claims.insert("jti".into(), json!("within-leeway"));
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let gw = Gw::start(json!({})).await;
    let claims = Value::Object(gw.claims("notes:admin"));
    for alg in ["none", "None", "NONE"] {
        let token = compact(&json!({"alg": alg, "typ": "at+jwt"}), &claims, b"");
        // An empty signature is not even a token68 credential: 400 or 401, never 200.
        let token = if token.ends_with('.') {
            format!("{token}AA")
        } else {
            token
        };
        let r = gw.initialize_with("notes", &token, json!({})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{alg}: {}", r.body);
        // The RFC 6750 challenge of a token that was sent and refused, pointing at the
        // server's metadata.
        let challenge = r.header("www-authenticate");
        assert!(challenge.starts_with("Bearer "), "{alg}: {challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{alg}: {challenge}"
        );
        assert!(
            challenge.contains(&format!(
                r#"resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp/notes""#
            )),
            "{alg}: {challenge}"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let gw = Gw::start(json!({})).await;
    let jwk = gw.jwk();
    let kid = jwk["kid"].as_str().unwrap().to_owned();
    let claims = Value::Object(gw.claims("notes:admin"));
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let unsigned = compact(&header, &claims, b"");
    let input = unsigned.trim_end_matches('.');
    // The classic confusion: the public key, as the verifier might hold it, as HMAC key.
    for secret in [jwk.to_string(), serde_json::to_string_pretty(&jwk).unwrap()] {
        let sig = SecretHasher::new(secret.as_bytes()).hash(input);
        let token = compact(&header, &claims, &sig);
        assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn unknown_kid_and_foreign_keys_are_refused() {
    let gw = Gw::start(json!({})).await;
    let claims = gw.claims("notes:read");
    let stranger = foreign_key("k-unknown");
    let token = jwt::sign(&claims, "at+jwt", &stranger).unwrap();
    assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
    // A stranger reusing our kid fails on the signature.
    let kid = gw.jwk()["kid"].as_str().unwrap().to_owned();
    let impostor = foreign_key(&kid);
    let token = jwt::sign(&claims, "at+jwt", &impostor).unwrap();
    assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
    // The genuine key passes.
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "at+jwt")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let (header, mut claims) = decode(&token);
    claims["scope"] = json!("notes:read notes:admin");
    let signature = token.rsplit('.').next().unwrap();
    let forged = format!(
        "{}.{signature}",
        compact(&header, &claims, b"").trim_end_matches('.')
    );
    assert_eq!(status_of(&gw, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&gw, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn typ_issuer_and_required_claims() {
    let gw = Gw::start(json!({})).await;
    let claims = gw.claims("notes:read");
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "application/at+jwt")).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&gw, &gw.sign(&claims, "JWT")).await,
        StatusCode::UNAUTHORIZED
    );
    let mut wrong_iss = claims.clone();
    wrong_iss.insert("iss".into(), json!("http://127.0.0.1:8080/"));
    assert_eq!(
        status_of(&gw, &gw.sign(&wrong_iss, "at+jwt")).await,
        StatusCode::UNAUTHORIZED
    );
    for missing in ["sub", "client_id", "jti", "exp"] {
        let mut c = claims.clone();
        c.remove(missing);
        assert_eq!(
            status_of(&gw, &gw.sign(&c, "at+jwt")).await,
            StatusCode::UNAUTHORIZED,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn revocation_is_seen_even_after_caching() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    assert_eq!(status_of(&gw, &token).await, StatusCode::OK);
    assert_eq!(gw.app.gateway.tokens.len(), 1, "validated once, cached");
    let jti = decode(&token).1["jti"].as_str().unwrap().to_owned();
    gw.app.revoked.insert(jti, T0 + 900);
    assert_eq!(status_of(&gw, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        gw.app.gateway.tokens.len(),
        0,
        "the cached validation was evicted"
    );
    // Revoked before its first use.
    let second = gw.token("notes", "notes:read").await;
    gw.app.revoked.insert(
        decode(&second).1["jti"].as_str().unwrap().to_owned(),
        T0 + 900,
    );
    assert_eq!(status_of(&gw, &second).await, StatusCode::UNAUTHORIZED);
    // Revoking the grant (its sid) reaches the token too.
    let mut claims = gw.claims("notes:read");
    claims.insert("sid".into(), json!("family-1"));
    let with_sid = gw.sign(&claims, "at+jwt");
    assert_eq!(status_of(&gw, &with_sid).await, StatusCode::OK);
    gw.app.revoked.insert("family-1".into(), T0 + 900);
    assert_eq!(status_of(&gw, &with_sid).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn steady_traffic_uses_the_cache() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let session = gw.initialize("notes", &token).await;
    for _ in 0..5 {
        assert_eq!(
            gw.call("notes", &token, &session, "notes_list")
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(gw.app.gateway.tokens.len(), 1);
}

/// The assertion cached for a token names the upstream it was minted for: after the
/// server's upstream changes (`warden server update NAME --upstream NEW`), the same token's
/// next request carries an assertion for the new upstream, never the old one's.
#[tokio::test]
async fn a_cached_assertion_follows_the_upstream_it_was_minted_for() {
    let gw = Gw::start(json!({})).await;
    let (first, second) = (echo_upstream().await, echo_upstream().await);
    gw.register_upstream("moving", &first, json!({})).await;
    let token = gw.token("moving", "notes:read").await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let audience_seen = |r: Resp| {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let header = r.json()["result"]["headers"]["authorization"]
            .as_str()
            .unwrap()
            .to_owned();
        let assertion = header.strip_prefix("Bearer ").unwrap().to_owned();
        decode(&assertion).1["aud"].as_str().unwrap().to_owned()
    };
    let r = gw.rpc("moving", Some(&token), None, ping.clone()).await;
    assert_eq!(audience_seen(r), first);

    let mut rec = gw.server("moving").await;
    rec.upstream = second.clone();
    warden_store::ServerStore::update(&gw.store, &rec)
        .await
        .unwrap();
    gw.app.gateway.registry.invalidate("moving");
    let r = gw.rpc("moving", Some(&token), None, ping).await;
    let header = r.json()["result"]["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(audience_seen(r), second);
    let now = gw.clock.now_secs();
    verify_assertion(
        &gw.jwk(),
        header.strip_prefix("Bearer ").unwrap(),
        &second,
        now,
    );
}
