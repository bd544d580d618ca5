//! RFC 9728 protected resource metadata.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn metadata_document_is_exact() {
    let gw = Gw::start(json!({})).await;
    let r = gw
        .send(
            Request::get("/.well-known/oauth-protected-resource/mcp/notes")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert_eq!(
        r.json(),
        json!({
            "resource": NOTES,
            "authorization_servers": [BASE],
            "scopes_supported": ["notes:admin", "notes:read", "notes:write"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "PS256", "RS256"],
            "resource_name": "notes",
        })
    );
    // Byte for byte: the resource is the canonical URI, unnormalized.
    assert!(r.body.contains(&format!("\"resource\":\"{NOTES}\"")));
}

#[tokio::test]
async fn unknown_server_has_no_metadata() {
    let gw = Gw::start(json!({})).await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp/nope",
        "/.well-known/oauth-protected-resource/mcp/..%2Fetc",
    ] {
        let r = gw
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn resource_name_setting_and_preflight() {
    let gw = Gw::start(json!({"resource_name": "Team notebook"})).await;
    let r = gw
        .send(
            Request::get("/.well-known/oauth-protected-resource/mcp/notes")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.json()["resource_name"], "Team notebook");
    let r = gw
        .send(
            Request::options("/.well-known/oauth-protected-resource/mcp/notes")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("access-control-allow-origin"), "*");
}
