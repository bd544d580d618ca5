//! Client ID metadata documents: SSRF guards, fetch limits, caching, validation, host
//! policy, and the whole flow with a document served from 127.0.0.1.

use std::time::Duration;

use crate::docs::*;
use crate::support::*;

/// The authorize error page (or redirect) for a client id.
async fn authorize_as(h: &H, client_id: &str) -> Resp {
    h.get(&h.authorize_url_for(client_id, &[]), &Jar::default())
        .await
}

/// A token request identifying as `client_id` (the code is bogus: only client lookup
/// matters here).
async fn token_as(h: &H, client_id: &str) -> Resp {
    h.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", "wdn_ac_bogus"),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn private_loopback_and_link_local_hosts_are_refused_without_the_allowlist() {
    let docs = DocServer::start().await;
    docs.serve(
        "/client.json",
        Served::json(docs.client_document("/client.json", REDIRECT)),
    );
    let h = H::new().await;
    let local = docs.url("/client.json");
    for id in [
        "https://127.0.0.1/client.json",
        "https://10.0.0.1/client.json",
        "https://10.255.1.2:8443/c",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "https://[fe80::1]/client.json",
        "https://[::ffff:a00:1]/client.json",
        "https://localhost/client.json",
        local.as_str(),
    ] {
        let page = authorize_as(&h, id).await;
        assert_eq!(page.status, 400, "{id}: {}", page.body);
        assert!(
            page.body.contains("private, loopback or link-local"),
            "{id}: {}",
            page.body
        );
        let t = token_as(&h, id).await;
        assert_eq!(t.status, 401, "{id}");
        assert_eq!(t.error(), "invalid_client");
        assert!(t.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("private, loopback or link-local"));
    }
    assert_eq!(docs.hits("/client.json"), 0, "nothing was fetched");
}

#[tokio::test]
async fn an_allowlisted_document_client_completes_the_flow() {
    let docs = DocServer::start().await;
    docs.serve(
        "/client.json",
        Served::json(docs.client_document("/client.json", REDIRECT)),
    );
    let h = H::with(&[ALLOW_LOOPBACK]).await;
    let id = docs.url("/client.json");
    let mut jar = Jar::default();
    let login = h.get(&h.authorize_url_for(&id, &[]), &jar).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("Document Client"));
    let consent = h.sign_in(&login, &mut jar, PASSWORD).await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    assert!(
        consent
            .body
            .contains("id=\"document-host\"><strong>127.0.0.1</strong>"),
        "the consent page shows the document's host: {}",
        consent.body
    );
    let code = h.code_for_client(&id, &[], &mut jar).await;
    let r = token_as_with_code(&h, &id, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    let c = claims(j["access_token"].as_str().unwrap());
    assert_eq!(c["client_id"], id);
    assert_eq!(c["aud"], NOTES);
    // Refresh works for a document client too.
    let rt = j["refresh_token"].as_str().unwrap();
    let r = h
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        docs.hits("/client.json"),
        1,
        "the document was fetched once and served from the cache after"
    );
    // A redirect URI the document does not list is refused.
    let mut other = h.authorize_url_for(&id, &[]);
    other = other.replace("5555%2Fcallback", "5555%2Fother");
    let page = h.get(&other, &Jar::default()).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("redirect URI is not registered"));
}

async fn token_as_with_code(h: &H, client_id: &str, code: &str) -> Resp {
    h.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn oversized_slow_and_redirecting_hosts_are_refused() {
    let docs = DocServer::start().await;
    let big = {
        let mut d: serde_json::Value =
            serde_json::from_str(&docs.client_document("/big.json", REDIRECT)).unwrap();
        d["padding"] = serde_json::json!("x".repeat(6 * 1024));
        d.to_string()
    };
    docs.serve("/big.json", Served::json(big));
    docs.serve(
        "/slow.json",
        Served::json(docs.client_document("/slow.json", REDIRECT)).delay(Duration::from_secs(3)),
    );
    docs.serve(
        "/moved.json",
        Served::json("")
            .status(302)
            .header("location", &docs.url("/target.json")),
    );
    docs.serve(
        "/target.json",
        Served::json(docs.client_document("/target.json", REDIRECT)),
    );
    let h = H::with(&[ALLOW_LOOPBACK, FAST_TIMEOUT]).await;
    let cases = [
        ("/big.json", "larger than 5120 bytes"),
        ("/slow.json", "did not answer in time"),
        ("/moved.json", "redirect, which is not followed"),
        ("/missing.json", "answered HTTP 404"),
    ];
    for (path, why) in cases {
        let started = std::time::Instant::now();
        let t = token_as(&h, &docs.url(path)).await;
        assert_eq!(t.error(), "invalid_client", "{path}");
        let d = t.json()["error_description"].as_str().unwrap().to_owned();
        assert!(d.contains(why), "{path}: {d}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{path} bounded by the deadline"
        );
    }
    assert_eq!(
        docs.hits("/target.json"),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn failures_are_never_cached_and_successes_are_cached_by_their_headers() {
    let docs = DocServer::start().await;
    let h = H::with(&[ALLOW_LOOPBACK]).await;
    let id = docs.url("/flaky.json");
    docs.serve("/flaky.json", Served::json("oops").status(500));
    assert_eq!(token_as(&h, &id).await.error(), "invalid_client");
    // Fixed: the next request fetches again and succeeds.
    docs.serve(
        "/flaky.json",
        Served::json(docs.client_document("/flaky.json", REDIRECT))
            .header("cache-control", "max-age=60"),
    );
    assert_eq!(
        token_as(&h, &id).await.error(),
        "invalid_grant",
        "client known now"
    );
    assert_eq!(docs.hits("/flaky.json"), 2);
    assert_eq!(token_as(&h, &id).await.error(), "invalid_grant");
    assert_eq!(docs.hits("/flaky.json"), 2, "cached for max-age");
    h.clock.advance(61);
    assert_eq!(token_as(&h, &id).await.error(), "invalid_grant");
    assert_eq!(docs.hits("/flaky.json"), 3, "refetched after max-age");

    // An invalid document is a failure too: not cached.
    let bad = docs.url("/bad.json");
    docs.serve("/bad.json", Served::json("{\"client_id\": 1}"));
    assert_eq!(token_as(&h, &bad).await.error(), "invalid_client");
    assert_eq!(token_as(&h, &bad).await.error(), "invalid_client");
    assert_eq!(docs.hits("/bad.json"), 2);

    // no-store: fetched every time.
    let fresh = docs.url("/fresh.json");
    docs.serve(
        "/fresh.json",
        Served::json(docs.client_document("/fresh.json", REDIRECT))
            .header("cache-control", "no-store"),
    );
    token_as(&h, &fresh).await;
    token_as(&h, &fresh).await;
    assert_eq!(docs.hits("/fresh.json"), 2);
}

#[tokio::test]
async fn documents_must_be_valid_and_name_themselves() {
    let docs = DocServer::start().await;
    let h = H::with(&[ALLOW_LOOPBACK]).await;
    let doc = |path: &str, patch: serde_json::Value| {
        let mut d: serde_json::Value =
            serde_json::from_str(&docs.client_document(path, REDIRECT)).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            d[k] = v.clone();
        }
        d.to_string()
    };
    let cases = [
        (
            "/other-id.json",
            doc(
                "/other-id.json",
                serde_json::json!({"client_id": "https://evil.example.com/c.json"}),
            ),
            "does not equal the URL",
        ),
        (
            "/secret.json",
            doc(
                "/secret.json",
                serde_json::json!({"token_endpoint_auth_method": "client_secret_basic"}),
            ),
            "shared-secret",
        ),
        (
            "/has-secret.json",
            doc(
                "/has-secret.json",
                serde_json::json!({"client_secret": "s3cret"}),
            ),
            "client secret",
        ),
        (
            "/fragment.json",
            doc(
                "/fragment.json",
                serde_json::json!({"redirect_uris": ["http://127.0.0.1:5555/callback#x"]}),
            ),
            "fragment",
        ),
        (
            "/implicit.json",
            doc(
                "/implicit.json",
                serde_json::json!({"grant_types": ["implicit"]}),
            ),
            "implicit",
        ),
        (
            "/machine.json",
            doc(
                "/machine.json",
                serde_json::json!({"grant_types": ["client_credentials"]}),
            ),
            "grant_types",
        ),
        ("/not-json.json", "<html>".to_owned(), "not a JSON object"),
    ];
    for (path, body, why) in cases {
        docs.serve(path, Served::json(body));
        let page = authorize_as(&h, &docs.url(path)).await;
        assert_eq!(page.status, 400, "{path}");
        assert!(page.body.contains(why), "{path}: {}", page.body);
        assert!(!page.body.contains("s3cret"));
    }
    // Bad client_id URLs are refused before anything is fetched.
    let base = docs.base.clone();
    for (id, why) in [
        (format!("{base}/a/../client.json"), "dot segments"),
        (format!("{base}/./client.json"), "dot segments"),
        (
            format!("http://user:pw@{}/client.json", &base[7..]),
            "credentials",
        ),
        (format!("{base}/client.json#frag"), "fragment"),
        (format!("{base}/"), "must contain a path"),
        ("http://client.example.com/c.json".to_owned(), "https"),
    ] {
        let page = authorize_as(&h, &id).await;
        assert_eq!(page.status, 400, "{id}");
        assert!(page.body.contains(why), "{id}: {}", page.body);
    }
    assert_eq!(docs.hits("/client.json"), 0);
}

#[tokio::test]
async fn the_host_policy_decides_who_may_serve_documents() {
    let docs = DocServer::start().await;
    docs.serve(
        "/client.json",
        Served::json(docs.client_document("/client.json", REDIRECT)),
    );
    let id = docs.url("/client.json");
    let denied = H::with(&[
        ALLOW_LOOPBACK,
        ("WARDEN_REGISTRATION__DENY_HOSTS", "127.0.0.1"),
    ])
    .await;
    assert!(authorize_as(&denied, &id)
        .await
        .body
        .contains("not permitted"));
    let not_allowed = H::with(&[
        ALLOW_LOOPBACK,
        ("WARDEN_REGISTRATION__ALLOW_HOSTS", "*.example.com"),
    ])
    .await;
    assert!(authorize_as(&not_allowed, &id)
        .await
        .body
        .contains("not permitted"));
    let off = H::with(&[
        ALLOW_LOOPBACK,
        ("WARDEN_REGISTRATION__METADATA_DOCUMENTS", "false"),
    ])
    .await;
    assert!(authorize_as(&off, &id).await.body.contains("not accepted"));
    let m = off
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await
        .json();
    assert_eq!(m["client_id_metadata_document_supported"], false);
    assert_eq!(docs.hits("/client.json"), 0);
    let allowed = H::with(&[
        ALLOW_LOOPBACK,
        ("WARDEN_REGISTRATION__ALLOW_HOSTS", "127.0.0.1"),
    ])
    .await;
    assert_eq!(authorize_as(&allowed, &id).await.status, 200);
}
