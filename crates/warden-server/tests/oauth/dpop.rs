//! DPoP at the token endpoint (RFC 9449 §5): bound tokens for every grant with a good
//! proof, bound refresh families, and refusals as OAuth errors.

use axum::http::StatusCode;
use serde_json::json;
use warden_core::keys::{SigningAlg, SigningKey};

use crate::proofs::*;
use crate::support::*;

const TOKEN_URI: &str = "http://127.0.0.1:8080/oauth/token";

/// A proof for the token endpoint by `key`.
fn token_proof(h: &H, key: &SigningKey, jti: &str) -> String {
    h.token_proof(key, jti)
}

async fn client_credentials(h: &H, resource: &str, proof: Option<&str>) -> Resp {
    let (id, s) = (&h.machine.0, &h.machine.1);
    h.token_dpop(
        &[("grant_type", "client_credentials"), ("resource", resource)],
        Some((id, s)),
        proof,
    )
    .await
}

#[tokio::test]
async fn client_credentials_with_a_proof_is_a_bound_token_and_introspection_says_so() {
    let h = H::new().await;
    let key = client_key(SigningAlg::Es256);
    let r = client_credentials(&h, NOTES, Some(&token_proof(&h, &key, "cc-1"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["token_type"], "DPoP");
    let token = j["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["cnf"], json!({ "jkt": jkt(&key) }));
    let seen = h.introspect(token).await;
    assert_eq!(seen["cnf"], json!({ "jkt": jkt(&key) }));
    assert_eq!(seen["token_type"], "DPoP");
    // The same for an opaque token.
    let r = client_credentials(&h, VAULT, Some(&token_proof(&h, &key, "cc-2"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    let seen = h
        .introspect(r.json()["access_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["cnf"], json!({ "jkt": jkt(&key) }));
    // Without a proof: a bearer token, as before.
    let r = client_credentials(&h, NOTES, None).await;
    assert_eq!(r.json()["token_type"], "Bearer");
    assert!(claims(r.json()["access_token"].as_str().unwrap())
        .get("cnf")
        .is_none());
    // The metadata lists the proof algorithms.
    let m = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await;
    assert_eq!(
        m.json()["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "PS256", "RS256"])
    );
}

#[tokio::test]
async fn a_bad_or_replayed_proof_gets_no_token() {
    let h = H::new().await;
    let key = client_key(SigningAlg::Es256);
    let now = h.clock_now();
    let once = token_proof(&h, &key, "once");
    assert_eq!(client_credentials(&h, NOTES, Some(&once)).await.status, 200);
    let mut private = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key) });
    private["jwk"]["d"] = json!("c2VjcmV0");
    for (case, bad) in [
        ("replayed", once),
        (
            "wrong htu",
            proof(&key, &proof_claims("POST", NOTES, None, now, "htu")),
        ),
        (
            "wrong htm",
            proof(&key, &proof_claims("GET", TOKEN_URI, None, now, "htm")),
        ),
        (
            "stale",
            proof(
                &key,
                &proof_claims("POST", TOKEN_URI, None, now - 300, "old"),
            ),
        ),
        (
            "private jwk",
            signed(
                &key,
                &private,
                &proof_claims("POST", TOKEN_URI, None, now, "d"),
            ),
        ),
        ("garbage", "not-a-jwt".into()),
    ] {
        let r = client_credentials(&h, NOTES, Some(&bad)).await;
        assert_eq!(r.status, 400, "{case}: {}", r.body);
        assert_eq!(r.error(), "invalid_dpop_proof", "{case}");
        assert!(r.json().get("access_token").is_none());
    }
}

#[tokio::test]
async fn a_public_clients_refresh_tokens_are_bound_to_its_key() {
    let h = H::new().await;
    let key = client_key(SigningAlg::EdDsa);
    let mut jar = Jar::default();
    let code = h.code_for(&[], &mut jar).await;
    let r = exchange_code(&h, &code, Some(token_proof(&h, &key, "code"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt(&key)
    );
    let rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |proof: Option<String>| {
        let rt = rt.clone();
        let h = &h;
        async move {
            h.token_dpop(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &h.public),
                ],
                None,
                proof.as_deref(),
            )
            .await
        }
    };
    // Without a proof, or with another key's: nothing, and the token is not spent.
    let r = refresh(None).await;
    refused(&r, "invalid_dpop_proof");
    let thief = client_key(SigningAlg::Es256);
    let r = refresh(Some(token_proof(&h, &thief, "thief"))).await;
    refused(&r, "invalid_grant");
    // With the key: a bound token again.
    let r = refresh(Some(token_proof(&h, &key, "refresh"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt(&key)
    );
}

#[tokio::test]
async fn token_endpoint_nonces_when_on() {
    let h = H::with(&[("WARDEN_DPOP__NONCE", "true")]).await;
    let key = client_key(SigningAlg::Es256);
    let r = client_credentials(&h, NOTES, Some(&token_proof(&h, &key, "n0"))).await;
    refused(&r, "use_dpop_nonce");
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let mut claims = proof_claims("POST", TOKEN_URI, None, h.clock_now(), "n1");
    claims["nonce"] = json!(nonce);
    let r = client_credentials(&h, NOTES, Some(&proof(&key, &claims))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert!(r.headers.contains_key("dpop-nonce"));
}

#[tokio::test]
async fn a_server_that_requires_dpop_gets_no_token_without_a_proof() {
    use warden_store::{ServerRecord, ServerStore, ToolGroup};

    let h = H::new().await;
    let strict = format!("{BASE}/mcp/strict");
    let rec = ServerRecord {
        name: "strict".into(),
        canonical_uri: strict.clone(),
        upstream: "http://127.0.0.1:9/mcp".into(),
        tool_groups: vec![ToolGroup {
            scope: "notes:read".into(),
            tools: vec!["search".into()],
        }],
        token_format: "jwt".into(),
        access_token_ttl_secs: 900,
        leeway_secs: 30,
        issuer: None,
        settings: json!({ "require_dpop": true }),
        created_at: T0,
        updated_at: T0,
    };
    ServerStore::create(&h.store, &rec).await.unwrap();
    let r = client_credentials(&h, &strict, None).await;
    refused(&r, "invalid_dpop_proof");
    assert!(r.json().get("access_token").is_none());
    let key = client_key(SigningAlg::Es256);
    let r = client_credentials(&h, &strict, Some(&token_proof(&h, &key, "strict"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    // Servers without the setting still issue bearer tokens.
    assert_eq!(client_credentials(&h, NOTES, None).await.status, 200);
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_is_exchanged_only_with_that_key() {
    let h = H::new().await;
    let key = client_key(SigningAlg::Es256);
    let thief = client_key(SigningAlg::Es256);
    // Without a proof, or by another key: no token, and the code is spent.
    let r = exchange_code(&h, &bound_code(&h, &key).await, None).await;
    refused(&r, "invalid_dpop_proof");
    let r = exchange_code(
        &h,
        &bound_code(&h, &key).await,
        Some(token_proof(&h, &thief, "thief")),
    )
    .await;
    refused(&r, "invalid_grant");
    let r = exchange_code(
        &h,
        &bound_code(&h, &key).await,
        Some(token_proof(&h, &key, "good")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt(&key)
    );
    // A dpop_jkt that is no thumbprint is refused at the authorization endpoint.
    let url = h.authorize_url(&[("dpop_jkt", "not a thumbprint")]);
    let r = h.get(&url, &Jar::default()).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert_eq!(
        r.location_query().get("error").map(String::as_str),
        Some("invalid_request")
    );
}

/// A code for the public client, bound to `key` with `dpop_jkt`.
async fn bound_code(h: &H, key: &SigningKey) -> String {
    let jkt = jkt(key);
    let mut jar = Jar::default();
    h.code_for(&[("dpop_jkt", jkt.as_str())], &mut jar).await
}

/// A 400 with the OAuth error `code` and no token.
fn refused(r: &Resp, code: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.error(), code, "{}", r.body);
    assert!(r.json().get("access_token").is_none());
}

/// The public client's code exchange, with `proof` if any.
async fn exchange_code(h: &H, code: &str, proof: Option<String>) -> Resp {
    h.token_dpop(
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", &h.public),
        ],
        None,
        proof.as_deref(),
    )
    .await
}

#[tokio::test]
async fn a_confidential_clients_refresh_needs_a_proof_by_any_key() {
    let h = H::new().await;
    let (wid, ws) = h.web.clone();
    let key = client_key(SigningAlg::Es256);
    let mut jar = Jar::default();
    let code = h.code_for_client(&wid, &[], &mut jar).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
    ];
    let r = h
        .token_dpop(&form, Some((&wid, &ws)), Some(&token_proof(&h, &key, "w0")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: &str, proof: Option<String>| {
        let (h, rt, wid, ws) = (&h, rt.to_owned(), wid.clone(), ws.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ];
            h.token_dpop(&form, Some((&wid, &ws)), proof.as_deref())
                .await
        }
    };
    refused(&refresh(&rt, None).await, "invalid_dpop_proof");
    // RFC 9449 §5: a confidential client may move to a new key; its token stays bound.
    let new_key = client_key(SigningAlg::EdDsa);
    let r = refresh(&rt, Some(token_proof(&h, &new_key, "w1"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt(&new_key)
    );
    rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    refused(&refresh(&rt, None).await, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_bearer_family_refreshed_with_a_proof_stays_bound() {
    let h = H::new().await;
    let (at, rt) = h.tokens().await;
    assert!(claims(&at).get("cnf").is_none());
    let key = client_key(SigningAlg::Es256);
    let public = h.public.clone();
    let refresh = |rt: String, proof: Option<String>| {
        let (h, public) = (&h, public.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", public.as_str()),
            ];
            h.token_dpop(&form, None, proof.as_deref()).await
        }
    };
    let r = refresh(rt, Some(token_proof(&h, &key, "b1"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    let rt = r.json()["refresh_token"].as_str().unwrap().to_owned();
    // The binding is not dropped by the next refresh.
    refused(&refresh(rt.clone(), None).await, "invalid_dpop_proof");
    let thief = client_key(SigningAlg::Es256);
    refused(
        &refresh(rt.clone(), Some(token_proof(&h, &thief, "b2"))).await,
        "invalid_grant",
    );
    let r = refresh(rt, Some(token_proof(&h, &key, "b3"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
