//! `private_key_jwt` client authentication (RFC 7523): inline keys, keys by URL, and
//! every way an assertion can be wrong.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use warden_core::jwt;
use warden_core::keys::{SigningAlg, SigningKey};
use warden_store::{ClientRecord, ClientStore};

use crate::docs::*;
use crate::support::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(SigningAlg::Es256, kid.into()).unwrap()
}

fn assertion(key: &SigningKey, client_id: &str, patch: Value) -> String {
    let mut c = Map::new();
    c.insert("iss".into(), json!(client_id));
    c.insert("sub".into(), json!(client_id));
    c.insert("aud".into(), json!(BASE));
    c.insert("iat".into(), json!(T0));
    c.insert("exp".into(), json!(T0 + 60));
    c.insert(
        "jti".into(),
        json!(warden_core::secret::random_id().unwrap()),
    );
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    jwt::sign(&c, "JWT", key).unwrap()
}

/// An HS256 "assertion" keyed with something the attacker knows.
fn hs256(client_id: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let c = URL_SAFE_NO_PAD.encode(
        json!({"iss": client_id, "sub": client_id, "aud": BASE, "exp": T0 + 60, "jti": "h1"})
            .to_string(),
    );
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"public key bytes");
    let sig = ring::hmac::sign(&k, format!("{h}.{c}").as_bytes());
    format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

async fn signer_client(h: &H, key: &SigningKey) -> String {
    let rec = ClientRecord {
        client_id: "signer".into(),
        name: "Signer".into(),
        confidential: true,
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["notes:read".into()],
        token_endpoint_auth_method: "private_key_jwt".into(),
        secrets: vec![],
        metadata: json!({ "jwks": { "keys": [key.public_jwk()] } }),
        created_at: T0,
        updated_at: T0,
        last_used_at: None,
    };
    ClientStore::create(&h.store, &rec).await.unwrap();
    rec.client_id
}

async fn cc_with(h: &H, assertion: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("resource", NOTES),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    h.token(&form, None).await
}

#[tokio::test]
async fn a_valid_assertion_authenticates_once() {
    let h = H::new().await;
    let k = key("k1");
    let id = signer_client(&h, &k).await;
    let a = assertion(&k, &id, json!({}));
    let r = cc_with(&h, &a, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims(r.json()["access_token"].as_str().unwrap())["client_id"],
        "signer"
    );
    // Replay of the same assertion.
    let again = cc_with(&h, &a, &[]).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.error(), "invalid_client");
    assert!(again.body.contains("already used"));
    // The token endpoint URL is an accepted audience too; a matching client_id is fine.
    let a = assertion(&k, &id, json!({"aud": format!("{BASE}/oauth/token")}));
    assert_eq!(
        cc_with(&h, &a, &[("client_id", "signer")]).await.status,
        200
    );
    let a = assertion(
        &k,
        &id,
        json!({"aud": [format!("{BASE}/oauth/token"), "https://x"]}),
    );
    assert_eq!(cc_with(&h, &a, &[]).await.status, 200);
}

#[tokio::test]
async fn forged_and_malformed_assertions_are_refused() {
    let h = H::new().await;
    let k = key("k1");
    let id = signer_client(&h, &k).await;
    let stranger = key("k1");
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            assertion(&k, &id, json!({"aud": "https://other.example"})),
        ),
        ("no aud", assertion(&k, &id, json!({"aud": null}))),
        ("expired", assertion(&k, &id, json!({"exp": T0 - 120}))),
        ("no exp", assertion(&k, &id, json!({"exp": null}))),
        (
            "too long-lived",
            assertion(&k, &id, json!({"exp": T0 + 3_600})),
        ),
        ("no jti", assertion(&k, &id, json!({"jti": null}))),
        (
            "iss differs",
            assertion(&k, &id, json!({"iss": "someone-else"})),
        ),
        ("wrong key", assertion(&stranger, &id, json!({}))),
        ("HS256", hs256(&id)),
        ("garbage", "not.a.jwt".into()),
    ];
    for (why, a) in cases {
        let r = cc_with(&h, &a, &[]).await;
        assert_eq!(r.status, 401, "{why}: {}", r.body);
        assert_eq!(r.error(), "invalid_client", "{why}");
    }
    // sub names another client: the client_id beside it disagrees.
    let a = assertion(&k, &id, json!({"sub": "machine"}));
    assert_eq!(
        cc_with(&h, &a, &[("client_id", "signer")]).await.error(),
        "invalid_client"
    );
    // Mixing methods, or the wrong assertion type.
    let a = assertion(&k, &id, json!({}));
    let r = cc_with(&h, &a, &[("client_secret", "x")]).await;
    assert_eq!(r.error(), "invalid_request");
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    // A key client cannot fall back to no authentication or a secret.
    let r = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", NOTES),
                ("client_id", "signer"),
            ],
            None,
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", NOTES)],
            Some(("signer", "guess")),
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    // And a secret client cannot use an assertion.
    let a = assertion(&k, "machine", json!({}));
    assert_eq!(cc_with(&h, &a, &[]).await.error(), "invalid_client");
}

#[tokio::test]
async fn registered_keys_inline_or_by_url() {
    let docs = DocServer::start().await;
    let h = H::with(&[ALLOW_LOOPBACK]).await;
    let k = key("reg-1");
    // Inline, through dynamic registration.
    let r = h
        .post_json(
            "/oauth/register",
            &json!({
                "client_name": "Key client",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [k.public_jwk()] },
            }),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json().get("client_secret").is_none());
    let id = r.json()["client_id"].as_str().unwrap().to_owned();
    let introspect = |a: String| {
        let h = &h;
        async move {
            h.post_form(
                "/oauth/introspect",
                &[
                    ("token", "x"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
                &Jar::default(),
                None,
            )
            .await
        }
    };
    assert_eq!(introspect(assertion(&k, &id, json!({}))).await.status, 200);
    assert_eq!(
        introspect(assertion(&key("other"), &id, json!({})))
            .await
            .status,
        401
    );

    // By URL: the JWKS is fetched with the guarded fetcher and cached.
    let k2 = key("url-1");
    docs.serve(
        "/jwks.json",
        Served::json(json!({ "keys": [k2.public_jwk()] }).to_string()),
    );
    let r = h
        .post_json(
            "/oauth/register",
            &json!({
                "client_name": "URL key client",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": docs.url("/jwks.json"),
            }),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id2 = r.json()["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect(assertion(&k2, &id2, json!({}))).await.status,
        200
    );
    assert_eq!(
        introspect(assertion(&k2, &id2, json!({}))).await.status,
        200
    );
    assert_eq!(docs.hits("/jwks.json"), 1, "cached");
    // A private key in an inline JWKS is refused at registration.
    let mut private = k.public_jwk();
    private["d"] = json!("c2VjcmV0");
    let r = h
        .post_json(
            "/oauth/register",
            &json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [private] },
            }),
            &[],
        )
        .await;
    assert_eq!(r.error(), "invalid_client_metadata");
}

#[tokio::test]
async fn a_metadata_document_client_may_authenticate_with_its_published_keys() {
    let docs = DocServer::start().await;
    let h = H::with(&[ALLOW_LOOPBACK]).await;
    let k = key("doc-1");
    let id = docs.url("/signed-client.json");
    docs.serve(
        "/signed-client.json",
        Served::json(
            json!({
                "client_id": id,
                "client_name": "Signed document client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": docs.url("/doc-jwks.json"),
            })
            .to_string(),
        ),
    );
    docs.serve(
        "/doc-jwks.json",
        Served::json(json!({ "keys": [k.public_jwk()] }).to_string()),
    );
    let good = assertion(&k, &id, json!({}));
    let r = h
        .post_form(
            "/oauth/revoke",
            &[
                ("token", "x"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &good),
            ],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Without an assertion the confidential document client is refused.
    let r = h
        .post_form(
            "/oauth/revoke",
            &[("token", "x"), ("client_id", &id)],
            &Jar::default(),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
}
