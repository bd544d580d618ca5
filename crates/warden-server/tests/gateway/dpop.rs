//! DPoP at the gateway (RFC 9449 §7): a token bound to a key is used only with a fresh
//! proof by that key for this request, never twice, on one replica or two; the refusals
//! are RFC 9449 challenges.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use warden_core::keys::{SigningAlg, SigningKey};
use warden_core::pkce::s256;

pub use crate::proofs::*;
use crate::support::*;

/// A token for `notes` bound to `key`, signed by the gateway's own key.
fn bound_token(gw: &Gw, key: &SigningKey, jti: &str) -> String {
    let mut claims = gw.claims("notes:read");
    claims.insert("jti".into(), json!(jti));
    claims.insert("cnf".into(), json!({ "jkt": jkt(key) }));
    gw.sign(&claims, "at+jwt")
}

/// An `initialize` POST to `server` with `authorization` and, if any, a `DPoP` header.
pub fn initialize(server: &str, authorization: &str, proof: Option<&str>) -> Request<Body> {
    let mut req = Request::post(format!("/mcp/{server}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH)
        .header("mcp-protocol-version", "2025-11-25")
        .header(header::AUTHORIZATION, authorization);
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    req.body(Body::from(initialize_request(json!({})).to_string()))
        .unwrap()
}

/// The DPoP challenge of a refusal.
fn dpop_challenge(r: &Resp) -> String {
    r.headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("DPoP "))
        .unwrap_or_else(|| panic!("no DPoP challenge: {:?}", r.headers))
}

fn assert_refused(r: &Resp, error: &str, case: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{case}: {}", r.body);
    let challenge = dpop_challenge(r);
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{case}: {challenge}"
    );
    assert!(
        challenge.contains("algs=\"ES256 EdDSA PS256 RS256\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let bearer = r.header("www-authenticate");
    assert!(
        bearer.starts_with("Bearer ") && !bearer.contains("error="),
        "{bearer}"
    );
}

#[tokio::test]
async fn a_bound_token_needs_a_good_proof_by_its_key() {
    let gw = Gw::start(json!({})).await;
    let key = client_key(SigningAlg::Es256);
    let now = gw.clock.now_secs();
    let token = bound_token(&gw, &key, "bound-1");
    let auth = format!("DPoP {token}");
    let good = |jti: &str| proof(&key, &proof_claims("POST", NOTES, Some(&token), now, jti));

    let r = gw.send(initialize("notes", &auth, Some(&good("ok")))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Another proof, another request: fine; the scheme name is case-insensitive.
    let r = gw
        .send(initialize(
            "notes",
            &format!("dpop {token}"),
            Some(&good("ok-2")),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let thief = client_key(SigningAlg::Es256);
    let rsa = client_key(SigningAlg::Rs256);
    let other_token = bound_token(&gw, &key, "bound-2");
    let mut private = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key) });
    private["jwk"]["d"] = json!("c2VjcmV0");
    let claims = proof_claims("POST", NOTES, Some(&token), now, "bad");
    let none_header = json!({ "typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(&key) });
    let hs_header =
        json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"} });
    let bad_proofs: Vec<(&str, Option<String>, &str)> = vec![
        ("missing proof", None, "invalid_dpop_proof"),
        (
            "wrong htm",
            Some(proof(
                &key,
                &proof_claims("GET", NOTES, Some(&token), now, "m"),
            )),
            "invalid_dpop_proof",
        ),
        (
            "wrong htu",
            Some(proof(
                &key,
                &proof_claims("POST", &format!("{BASE}/mcp/other"), Some(&token), now, "u"),
            )),
            "invalid_dpop_proof",
        ),
        (
            "stale iat",
            Some(proof(
                &key,
                &proof_claims("POST", NOTES, Some(&token), now - 120, "s"),
            )),
            "invalid_dpop_proof",
        ),
        (
            "future iat",
            Some(proof(
                &key,
                &proof_claims("POST", NOTES, Some(&token), now + 60, "f"),
            )),
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            Some(proof(
                &key,
                &proof_claims("POST", NOTES, Some(&other_token), now, "a"),
            )),
            "invalid_dpop_proof",
        ),
        ("another key", Some(proof(&thief, &claims)), "invalid_token"),
        (
            "another algorithm's key",
            Some(proof(&rsa, &claims)),
            "invalid_token",
        ),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(none_header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )),
            "invalid_dpop_proof",
        ),
        (
            "HS256",
            Some(signed(&key, &hs_header, &claims)),
            "invalid_dpop_proof",
        ),
        (
            "private jwk",
            Some(signed(&key, &private, &claims)),
            "invalid_dpop_proof",
        ),
        (
            "wrong typ",
            Some(signed(
                &key,
                &json!({ "typ": "JWT", "alg": "ES256", "jwk": public_jwk(&key) }),
                &claims,
            )),
            "invalid_dpop_proof",
        ),
        ("not a JWT", Some("garbage".into()), "invalid_dpop_proof"),
    ];
    for (case, proof, error) in bad_proofs {
        let r = gw.send(initialize("notes", &auth, proof.as_deref())).await;
        assert_refused(&r, error, case);
        assert!(!r.body.contains(&token), "{case}: the token echoed");
    }
    // Two DPoP headers: which one counts is ambiguous.
    let mut req = initialize("notes", &auth, Some(&good("two-a")));
    req.headers_mut()
        .append("dpop", good("two-b").parse().unwrap());
    assert_refused(&gw.send(req).await, "invalid_dpop_proof", "two proofs");
}

#[tokio::test]
async fn a_bound_token_as_a_bearer_token_is_refused_and_an_unbound_one_as_dpop() {
    let gw = Gw::start(json!({})).await;
    let key = client_key(SigningAlg::EdDsa);
    let now = gw.clock.now_secs();
    let token = bound_token(&gw, &key, "bound-bearer");
    let good = proof(&key, &proof_claims("POST", NOTES, Some(&token), now, "b1"));
    // §7.2: as a bearer token, with or without a proof alongside.
    for proof in [None, Some(good.as_str())] {
        let r = gw
            .send(initialize("notes", &format!("Bearer {token}"), proof))
            .await;
        assert_refused(&r, "invalid_token", "bound token as bearer");
    }
    // A bearer token stays one: with the DPoP scheme it is refused, even with a proof
    // for it, and with the Bearer scheme a proof alongside changes nothing.
    let plain = gw.token("notes", "notes:read").await;
    let for_plain = |jti: &str| proof(&key, &proof_claims("POST", NOTES, Some(&plain), now, jti));
    let r = gw
        .send(initialize(
            "notes",
            &format!("DPoP {plain}"),
            Some(&for_plain("p1")),
        ))
        .await;
    assert_refused(&r, "invalid_token", "unbound token as DPoP");
    let r = gw
        .send(initialize(
            "notes",
            &format!("Bearer {plain}"),
            Some(&for_plain("p2")),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A confirmation method Warden does not support is not taken for a bearer token.
    let mut claims = gw.claims("notes:read");
    claims.insert("jti".into(), json!("x5t"));
    claims.insert("cnf".into(), json!({ "x5t#S256": "abc" }));
    let mtls = gw.sign(&claims, "at+jwt");
    let r = gw
        .send(initialize("notes", &format!("Bearer {mtls}"), None))
        .await;
    assert_refused(&r, "invalid_token", "unsupported cnf");
}

#[tokio::test]
async fn a_proof_is_accepted_once_on_one_replica_or_two() {
    let gw = Gw::start(json!({})).await;
    let replica = gw.replica().await;
    let key = client_key(SigningAlg::Es256);
    let now = gw.clock.now_secs();
    let token = bound_token(&gw, &key, "bound-replay");
    let auth = format!("DPoP {token}");
    let once = proof(
        &key,
        &proof_claims("POST", NOTES, Some(&token), now, "once"),
    );

    let r = gw.send(initialize("notes", &auth, Some(&once))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The same replica remembers it; the other learns it from the shared table.
    let r = gw.send(initialize("notes", &auth, Some(&once))).await;
    assert_refused(&r, "invalid_dpop_proof", "replay, same replica");
    let r = Gw::send_to(&replica, initialize("notes", &auth, Some(&once))).await;
    assert_refused(&r, "invalid_dpop_proof", "replay, other replica");

    // A proof first used on the replica is refused here.
    let other = proof(
        &key,
        &proof_claims("POST", NOTES, Some(&token), now, "twice"),
    );
    let r = Gw::send_to(&replica, initialize("notes", &auth, Some(&other))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = gw.send(initialize("notes", &auth, Some(&other))).await;
    assert_refused(&r, "invalid_dpop_proof", "replay of the replica's proof");

    // Both replicas at once, many times: each proof is accepted exactly once.
    for round in 0..8 {
        let p = proof(
            &key,
            &proof_claims("POST", NOTES, Some(&token), now, &format!("race-{round}")),
        );
        let (a, b) = tokio::join!(
            gw.send(initialize("notes", &auth, Some(&p))),
            Gw::send_to(&replica, initialize("notes", &auth, Some(&p)))
        );
        let ok = [a.status, b.status]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "round {round}: {} / {}", a.status, b.status);
    }
}

#[tokio::test]
async fn an_unavailable_replay_table_is_503_not_401() {
    let gw = Gw::start(json!({})).await;
    let key = client_key(SigningAlg::Es256);
    let now = gw.clock.now_secs();
    let token = bound_token(&gw, &key, "bound-outage");
    gw.store.close().await;
    let p = proof(
        &key,
        &proof_claims("POST", NOTES, Some(&token), now, "outage"),
    );
    let r = gw
        .send(initialize("notes", &format!("DPoP {token}"), Some(&p)))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert!(r.headers.get(header::WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn server_nonces_when_on() {
    let gw = Gw::start_env(json!({}), &[("WARDEN_DPOP__NONCE", "true")]).await;
    let key = client_key(SigningAlg::Es256);
    let token = bound_token(&gw, &key, "bound-nonce");
    let auth = format!("DPoP {token}");
    let with_nonce = |jti: &str, nonce: Option<&str>| {
        let mut claims = proof_claims("POST", NOTES, Some(&token), gw.clock.now_secs(), jti);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        proof(&key, &claims)
    };
    let r = gw
        .send(initialize("notes", &auth, Some(&with_nonce("n0", None))))
        .await;
    assert_refused(&r, "use_dpop_nonce", "no nonce");
    let nonce = r.header("dpop-nonce").to_owned();
    let r = gw
        .send(initialize(
            "notes",
            &auth,
            Some(&with_nonce("n1", Some("made-up"))),
        ))
        .await;
    assert_refused(&r, "use_dpop_nonce", "a nonce Warden never issued");
    let r = gw
        .send(initialize(
            "notes",
            &auth,
            Some(&with_nonce("n2", Some(&nonce))),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("dpop-nonce"), nonce);
    // Two rotations later the nonce is stale, and the answer carries the new one.
    gw.clock.advance(600);
    let token = bound_token(&gw, &key, "bound-nonce-2");
    let auth = format!("DPoP {token}");
    let stale = proof(
        &key,
        &json!({
            "jti": "n3", "htm": "POST", "htu": NOTES, "iat": gw.clock.now_secs(),
            "ath": s256(&token), "nonce": nonce,
        }),
    );
    let r = gw.send(initialize("notes", &auth, Some(&stale))).await;
    assert_refused(&r, "use_dpop_nonce", "stale nonce");
    assert_ne!(r.header("dpop-nonce"), nonce);
}

#[tokio::test]
async fn without_nonces_no_nonce_is_sent() {
    let gw = Gw::start(json!({})).await;
    let r = gw.send(initialize("notes", "Bearer abc", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("dpop-nonce").is_none());
    // Every 401 offers DPoP beside Bearer.
    let challenge = dpop_challenge(&r);
    assert!(challenge.contains("algs="), "{challenge}");
}

#[tokio::test]
async fn a_bound_opaque_token_is_held_to_its_key() {
    use warden_core::scope::ScopeSet;
    use warden_server::oauth::token::{issue, Claims};
    use warden_store::ServerStore;

    let gw = Gw::start(json!({})).await;
    let mut rec = record("vault", &gw.upstream, json!({}));
    rec.token_format = "opaque".into();
    ServerStore::create(&gw.store, &rec).await.unwrap();
    let key = client_key(SigningAlg::Es256);
    let jkt = jkt(&key);
    let scope = ScopeSet::parse("notes:read").unwrap();
    let now = gw.clock.now_secs();
    let claims = Claims {
        subject: "alice",
        client_id: "cli",
        server: &rec,
        scope: &scope,
        now,
        ttl: 300,
        sid: None,
        act: None,
        jkt: Some(&jkt),
    };
    let token = issue(&gw.app, &claims).await.unwrap().token;
    let vault = format!("{BASE}/mcp/vault");
    let good = proof(&key, &proof_claims("POST", &vault, Some(&token), now, "v1"));
    let r = gw
        .send(initialize("vault", &format!("DPoP {token}"), Some(&good)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = gw
        .send(initialize("vault", &format!("Bearer {token}"), None))
        .await;
    assert_refused(&r, "invalid_token", "bound opaque token as bearer");
}

#[tokio::test]
async fn a_server_that_requires_dpop_takes_only_bound_tokens() {
    let gw = Gw::start(json!({ "require_dpop": true })).await;
    let key = client_key(SigningAlg::Es256);
    let now = gw.clock.now_secs();
    let plain = gw.token("notes", "notes:read").await;
    let r = gw
        .send(initialize("notes", &format!("Bearer {plain}"), None))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // Only the DPoP scheme is offered, still with the resource metadata.
    let challenges: Vec<_> = r.headers.get_all(header::WWW_AUTHENTICATE).iter().collect();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    let challenge = dpop_challenge(&r);
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    let r = gw.send(initialize("notes", "Bearer", None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let token = bound_token(&gw, &key, "strict");
    let good = proof(&key, &proof_claims("POST", NOTES, Some(&token), now, "s1"));
    let r = gw
        .send(initialize("notes", &format!("DPoP {token}"), Some(&good)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Another server, without the setting, still takes bearer tokens.
    let other = gw.token("other", "notes:read").await;
    let r = gw
        .send(initialize("other", &format!("Bearer {other}"), None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn neither_the_token_nor_the_proof_reaches_the_upstream() {
    let gw = Gw::start(json!({})).await;
    let echo = echo_upstream().await;
    gw.register_upstream("echo", &echo, json!({})).await;
    let key = client_key(SigningAlg::Es256);
    let mut claims = gw.claims("notes:read");
    claims.insert("aud".into(), json!(format!("{BASE}/mcp/echo")));
    claims.insert("cnf".into(), json!({ "jkt": jkt(&key) }));
    let token = gw.sign(&claims, "at+jwt");
    let htu = format!("{BASE}/mcp/echo");
    let p = proof(
        &key,
        &proof_claims("POST", &htu, Some(&token), gw.clock.now_secs(), "echo"),
    );
    let r = gw
        .send(initialize("echo", &format!("DPoP {token}"), Some(&p)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = &r.json()["result"]["headers"];
    assert!(seen.get("dpop").is_none(), "{seen}");
    assert!(!r.body.contains(&p) && !r.body.contains(&token));
}
