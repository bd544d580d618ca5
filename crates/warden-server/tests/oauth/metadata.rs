use crate::support::*;

#[tokio::test]
async fn both_discovery_documents_carry_the_same_issuer_and_safe_capabilities() {
    let h = H::new().await;
    let a = h
        .get("/.well-known/oauth-authorization-server", &Jar::default())
        .await
        .json();
    let o = h
        .get("/.well-known/openid-configuration", &Jar::default())
        .await
        .json();
    assert_eq!(a["issuer"], BASE);
    assert_eq!(a["issuer"], o["issuer"]);
    assert_eq!(
        a["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(a["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(a["authorization_response_iss_parameter_supported"], true);
    let grants: Vec<&str> = a["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        grants.contains(&"authorization_code")
            && grants.contains(&"refresh_token")
            && grants.contains(&"client_credentials")
    );
    assert!(!grants.contains(&"implicit") && !grants.contains(&"password"));
    for k in [
        "token_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "authorization_endpoint",
    ] {
        assert!(a[k].as_str().unwrap().starts_with(BASE), "{k}");
    }
    let scopes: Vec<&str> = a["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        ["notes:read", "notes:write", "other:use", "vault:read"]
    );
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_without_private_parts() {
    let h = H::new().await;
    let r = h.get("/oauth/jwks.json", &Jar::default()).await;
    assert_eq!(r.headers["content-type"], "application/jwk-set+json");
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("d").is_none());
    let (at, _) = h.tokens().await;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            at.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], keys[0]["kid"]);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn an_issuer_with_a_path_is_served_at_the_path_inserted_locations() {
    let h = H::with_base("https://auth.example.com/tenant", &[]).await;
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/openid-configuration/tenant",
        "/tenant/.well-known/openid-configuration",
        "/tenant/.well-known/oauth-authorization-server",
    ] {
        let r = h.get(path, &Jar::default()).await;
        assert_eq!(r.status, 200, "{path}");
        let j = r.json();
        assert_eq!(j["issuer"], "https://auth.example.com/tenant", "{path}");
        assert_eq!(
            j["token_endpoint"],
            "https://auth.example.com/tenant/oauth/token"
        );
    }
    // Endpoints answer under the path too (for proxies that keep it).
    let r = h.get("/tenant/oauth/jwks.json", &Jar::default()).await;
    assert_eq!(r.status, 200);
    let r = h
        .get(
            "/.well-known/oauth-authorization-server/other",
            &Jar::default(),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn token_failures_are_audited_without_secrets() {
    let h = H::new().await;
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", NOTES)],
            Some(("machine", "wdn_cs_wrong_secret_value")),
        )
        .await;
    assert_eq!(r.status, 401);
    let f = warden_store::AuditFilter {
        kind: Some("token.denied".into()),
        limit: Some(10),
        ..Default::default()
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let events = warden_store::AuditStore::query(&h.store, &f).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some("machine"));
    assert_eq!(events[0].detail["error"], "invalid_client");
    assert!(!events[0]
        .detail
        .to_string()
        .contains("wdn_cs_wrong_secret_value"));
}

#[tokio::test]
async fn rs256_and_eddsa_signing_by_configuration() {
    for alg in ["RS256", "EdDSA"] {
        let h = H::with(&[("WARDEN_TOKENS__SIGNING_ALG", alg)]).await;
        // The fixture's first key is ES256; a rotation to the configured algorithm:
        let master_sealer = &h.app.sealer;
        let alg_v = warden_core::keys::SigningAlg::parse(alg).unwrap();
        warden_server::keyring::create_key(&h.store, master_sealer, alg_v, T0, T0, T0 + 1)
            .await
            .unwrap();
        h.clock.advance(1);
        h.app
            .keys
            .reload(&h.store, &h.app.sealer, T0 + 1)
            .await
            .unwrap();
        let (id, s) = (&h.machine.0, &h.machine.1);
        let r = h
            .token(
                &[("grant_type", "client_credentials"), ("resource", NOTES)],
                Some((id, s)),
            )
            .await;
        let at = r.json()["access_token"].as_str().unwrap().to_owned();
        let header: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                at.split('.').next().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        assert_eq!(
            h.introspect(&at).await["active"],
            true,
            "{alg} tokens verify"
        );
        let jwks = h.get("/oauth/jwks.json", &Jar::default()).await.json();
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            2,
            "both keys are published"
        );
    }
}
