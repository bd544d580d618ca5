//! RFC 6750 challenges: 401 without or with a bad token, 400 for misplaced or malformed
//! credentials; nothing reaches the upstream.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

use crate::support::*;

const METADATA: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/notes";

fn init_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string()
}

#[tokio::test]
async fn no_token_is_401_with_resource_metadata_and_scope() {
    let gw = Gw::start(json!({})).await;
    let r = gw
        .rpc(
            "notes",
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        format!(
            r#"Bearer resource_metadata="{METADATA}", scope="notes:admin notes:read notes:write""#
        )
    );
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Unauthorized"));
    // GET and DELETE too.
    for method in ["GET", "DELETE"] {
        let req = Request::builder()
            .method(method)
            .uri("/mcp/notes")
            .body(Body::empty())
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}");
        assert!(r.header("www-authenticate").contains("resource_metadata="));
    }
    assert_eq!(gw.demo.session_count(), 0);
}

#[tokio::test]
async fn challenge_scope_setting() {
    let gw = Gw::start(json!({"challenge_scope": "notes:read"})).await;
    let r = gw
        .rpc(
            "notes",
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert!(r
        .header("www-authenticate")
        .ends_with(r#"scope="notes:read""#));
}

#[tokio::test]
async fn invalid_token_is_401_invalid_token_with_generic_text() {
    let gw = Gw::start(json!({})).await;
    let r = gw
        .rpc(
            "notes",
            Some("not.a.jwt"),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenge = r.header("www-authenticate");
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token", error_description="#),
        "{challenge}"
    );
    assert!(challenge.contains(&format!(r#"resource_metadata="{METADATA}""#)));
    // The reason (malformed) is not leaked.
    assert!(!r.body.to_lowercase().contains("malformed"), "{}", r.body);
}

#[tokio::test]
async fn token_in_query_string_is_400_even_with_a_valid_header() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    for uri in [
        format!("/mcp/notes?access_token={token}"),
        format!("/mcp/notes?x=1&access_token={token}"),
    ] {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(init_body()))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r
            .header("www-authenticate")
            .contains(r#"error="invalid_request""#));
        assert!(r.header("www-authenticate").contains("resource_metadata="));
    }
    assert_eq!(gw.demo.session_count(), 0);
}

#[tokio::test]
async fn malformed_authorization_is_400_and_other_schemes_are_no_credentials() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    for bad in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer {x}",
        "Bearer\ttoken",
    ] {
        let req = Request::post("/mcp/notes")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, bad)
            .body(Body::from(init_body()))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(r
            .header("www-authenticate")
            .contains(r#"error="invalid_request""#));
    }
    // Two Authorization headers: which one would the upstream read?
    let req = Request::post("/mcp/notes")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, "Bearer other")
        .body(Body::from(init_body()))
        .unwrap();
    assert_eq!(gw.send(req).await.status, StatusCode::BAD_REQUEST);
    // Basic is not a bearer credential: 401 without an error code (RFC 6750 §3.1).
    let req = Request::post("/mcp/notes")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Basic YWxpY2U6cHc=")
        .body(Body::from(init_body()))
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.header("www-authenticate").contains("error="));
    assert_eq!(gw.demo.session_count(), 0);
}

#[tokio::test]
async fn unknown_server_and_method() {
    let gw = Gw::start(json!({})).await;
    let token = gw.token("notes", "notes:read").await;
    let r = gw
        .rpc(
            "nope",
            Some(&token),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let req = Request::put("/mcp/notes")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = gw.send(req).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.header("allow").contains("POST"));
}
