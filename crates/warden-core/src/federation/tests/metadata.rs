use serde_json::{json, Value};

use super::{with, ENTRA, IDP};
use crate::federation::*;

// === Provider metadata ===

fn discovery() -> Value {
    json!({
        "issuer": IDP,
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/keys",
        "userinfo_endpoint": "https://idp.example/userinfo",
        "end_session_endpoint": "https://idp.example/logout?client=x",
        "code_challenge_methods_supported": ["plain", "S256"],
        "authorization_response_iss_parameter_supported": true,
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "response_types_supported": ["code"],
    })
}

fn doc_with(changes: Value) -> Value {
    Value::Object(with(discovery().as_object().unwrap(), changes))
}

#[test]
fn a_discovery_document_parses() {
    let m = ProviderMetadata::parse(&discovery(), IDP).unwrap();
    assert_eq!(m.issuer, IDP);
    assert_eq!(m.authorization_endpoint, "https://idp.example/authorize");
    assert_eq!(m.token_endpoint, "https://idp.example/token");
    assert_eq!(m.jwks_uri, "https://idp.example/keys");
    assert_eq!(
        m.userinfo_endpoint.as_deref(),
        Some("https://idp.example/userinfo")
    );
    assert_eq!(
        m.end_session_endpoint.as_deref(),
        Some("https://idp.example/logout?client=x")
    );
    assert!(m.authorization_response_iss_parameter_supported);
    assert_eq!(m.id_token_signing_alg_values_supported, ["RS256", "ES256"]);
    let minimal = json!({
        "issuer": "http://127.0.0.1:8080/realms/dev",
        "authorization_endpoint": "http://localhost:8080/auth",
        "token_endpoint": "http://[::1]:8080/token",
        "jwks_uri": "http://127.0.0.1:8080/certs",
    });
    let m = ProviderMetadata::parse(&minimal, "http://127.0.0.1:8080/realms/dev").unwrap();
    assert_eq!(m.code_challenge_methods_supported, None);
    assert!(!m.authorization_response_iss_parameter_supported);
    assert!(m.id_token_signing_alg_values_supported.is_empty());
    assert_eq!(m.userinfo_endpoint, None);
    // A multi-tenant provider's document names the template, which equals itself.
    let entra = doc_with(json!({ "issuer": ENTRA }));
    assert_eq!(
        ProviderMetadata::parse(&entra, ENTRA).unwrap().issuer,
        ENTRA
    );
}

#[test]
fn a_document_for_another_issuer_is_refused() {
    for configured in [
        "https://evil.example",
        "https://idp.example/",
        "https://IDP.example",
        "https://login.microsoftonline.com/organizations/v2.0",
    ] {
        let err = ProviderMetadata::parse(&discovery(), configured).unwrap_err();
        assert_eq!(err, FederationError::IssuerMismatch, "{configured}");
        assert_eq!(err.reason(), "issuer_mismatch");
    }
    assert_eq!(
        ProviderMetadata::parse(&doc_with(json!({"issuer": null})), IDP),
        Err(FederationError::BadMetadata("issuer"))
    );
    assert_eq!(
        ProviderMetadata::parse(&json!([IDP]), IDP),
        Err(FederationError::BadMetadata("document"))
    );
}

#[test]
fn required_endpoints_must_be_present_and_safe() {
    for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        let doc = doc_with(json!({ name: null }));
        assert_eq!(
            ProviderMetadata::parse(&doc, IDP),
            Err(FederationError::BadMetadata(name))
        );
    }
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        for bad in [
            json!("http://idp.example/x"),
            json!("http://10.0.0.1/x"),
            json!("https://user:pw@idp.example/x"),
            json!("https://idp.example/x#frag"),
            json!("/relative"),
            json!("ftp://idp.example/x"),
            json!(7),
        ] {
            let doc = doc_with(json!({ name: bad }));
            let err = ProviderMetadata::parse(&doc, IDP).unwrap_err();
            assert_eq!(err, FederationError::BadMetadata(name), "{name} {bad}");
            assert_eq!(err.reason(), "bad_metadata");
        }
    }
}

#[test]
fn a_pkce_list_without_s256_is_refused() {
    let doc = doc_with(json!({"code_challenge_methods_supported": ["plain"]}));
    assert_eq!(
        ProviderMetadata::parse(&doc, IDP),
        Err(FederationError::BadMetadata(
            "code_challenge_methods_supported"
        ))
    );
    let doc = doc_with(json!({"code_challenge_methods_supported": []}));
    assert!(ProviderMetadata::parse(&doc, IDP).is_err());
    let doc = doc_with(json!({"code_challenge_methods_supported": "S256"}));
    assert!(ProviderMetadata::parse(&doc, IDP).is_err());
    let doc = doc_with(json!({"authorization_response_iss_parameter_supported": "yes"}));
    assert_eq!(
        ProviderMetadata::parse(&doc, IDP),
        Err(FederationError::BadMetadata(
            "authorization_response_iss_parameter_supported"
        ))
    );
    let doc = doc_with(json!({"id_token_signing_alg_values_supported": ["RS256", 1]}));
    assert_eq!(
        ProviderMetadata::parse(&doc, IDP),
        Err(FederationError::BadMetadata(
            "id_token_signing_alg_values_supported"
        ))
    );
}

#[test]
fn the_authorization_response_iss_is_checked_per_rfc_9207() {
    for (received, advertised, ok) in [
        (Some(IDP), true, true),
        (Some(IDP), false, true),
        (None, false, true),
        (None, true, false),
        (Some("https://evil.example"), true, false),
        (Some("https://evil.example"), false, false),
        (Some("https://idp.example/"), false, false),
    ] {
        let got = check_response_issuer(IDP, received, advertised);
        assert_eq!(got.is_ok(), ok, "{received:?} {advertised}");
    }
    assert_eq!(
        check_response_issuer(IDP, Some("https://evil.example"), false),
        Err(FederationError::IssuerMismatch)
    );
    assert_eq!(
        check_response_issuer(IDP, None, true),
        Err(FederationError::MissingClaim("iss"))
    );
}
