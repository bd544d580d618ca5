//! `https://` upstreams: verified against the server's own CA bundle (`upstream_ca`) or
//! the public web PKI, never unverified.

use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use warden_demo::DemoState;
use warden_store::ServerStore;

use crate::support::*;

include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/test_tls.rs"
));

/// The demo MCP server over TLS on 127.0.0.1; its `https://…/mcp` URL.
async fn tls_demo() -> String {
    let acceptor = test_tls_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = warden_demo::router(DemoState::new());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://127.0.0.1:{port}/mcp")
}

async fn https_server(gw: &Gw, name: &str, upstream: &str, settings: serde_json::Value) {
    ServerStore::create(&gw.store, &record(name, upstream, settings))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_https_upstream_is_trusted_only_under_its_ca() {
    let gw = Gw::start(json!({})).await;
    let upstream = tls_demo().await;
    https_server(
        &gw,
        "secure",
        &upstream,
        json!({"upstream_ca": pem(TEST_CA)}),
    )
    .await;
    // The public web PKI does not know the test CA; the leaf is not a CA.
    https_server(&gw, "untrusted", &upstream, json!({})).await;
    https_server(
        &gw,
        "wrong-ca",
        &upstream,
        json!({"upstream_ca": pem(TEST_LEAF)}),
    )
    .await;
    let localhost = upstream.replace("127.0.0.1", "localhost");
    https_server(
        &gw,
        "by-name",
        &localhost,
        json!({"upstream_ca": pem(TEST_CA)}),
    )
    .await;

    for name in ["secure", "by-name"] {
        let token = gw.token(name, "notes:read").await;
        let session = gw.initialize(name, &token).await;
        let r = gw.call(name, &token, &session, "whoami").await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert!(
            !r.body.contains(&token),
            "the client token reached the upstream"
        );
        let seen = r.json()["result"]["structuredContent"].clone();
        assert!(seen["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ey"));
        // The stream of a POST answered with SSE comes through TLS too.
        let r = gw
            .rpc(
                name,
                Some(&token),
                Some(&session),
                json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    for name in ["untrusted", "wrong-ca"] {
        let token = gw.token(name, "notes:read").await;
        let r = gw.initialize_with(name, &token, json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{name}: {}", r.body);
    }
}

#[tokio::test]
async fn a_bad_upstream_ca_makes_the_server_unavailable() {
    let gw = Gw::start(json!({})).await;
    let upstream = tls_demo().await;
    https_server(
        &gw,
        "garbled",
        &upstream,
        json!({"upstream_ca": "not a certificate"}),
    )
    .await;
    https_server(&gw, "typed", &upstream, json!({"upstream_ca": 42})).await;
    for name in ["garbled", "typed"] {
        let token = gw.token(name, "notes:read").await;
        let r = gw.initialize_with(name, &token, json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            r.body
        );
    }
}
