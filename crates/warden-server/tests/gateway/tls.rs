//! `https://` upstreams: verified against the server's own CA bundle (`upstream_ca`) or
//! the public web PKI, never unverified.

use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use warden_demo::DemoState;
use warden_store::ServerStore;

use crate::support::*;

// A throwaway CA and a leaf for 127.0.0.1 and localhost (the same pair as the guarded
// fetcher's tests), made with openssl for tests; they protect nothing.
const TEST_CA: &str = "MIIBmTCCAT+gAwIBAgIUQB4ppoVSE0vYZcuCRwaZBIHkAMYwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOV2FyZGVuIFRlc3QgQ0EwIBcNMjYxMTI2MDkzODE1WhgPMjEyNjExMDIwOTM4MTVaMBkxFzAVBgNVBAMMDldhcmRlbiBUZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaCK3cawMtHw8/v+Y0oIYf4eeOMv+G6OTZLKI5m7SxgOjpLMcdPoSYw5azR+76ppmYMpEtPO3AMHaKtF94U8VA6NjMGEwHQYDVR0OBBYEFInYlXLB3gQQtIeaYIu5lxQvfcHAMB8GA1UdIwQYMBaAFInYlXLB3gQQtIeaYIu5lxQvfcHAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49BAMCA0gAMEUCIQDTSHInOzuyKVO4Ioutkfeuw8u1+Hn+vsu6J3bsqw/5twIgHpe1aiAxqRUqSyEiyCEKI5zNmrMjOj47kvXScNUxIL8=";
const TEST_LEAF: &str = "MIIBxDCCAWqgAwIBAgIUQ5yQtYOV+IKNoN0hboxu/FnRt4YwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOV2FyZGVuIFRlc3QgQ0EwIBcNMjYxMTI2MDkzODE1WhgPMjEyNjExMDIwOTM4MTVaMBQxEjAQBgNVBAMMCTEyNy4wLjAuMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBTbK4+pWc0mN0XIAlucvJxEZJvepfXEamyOUu9ykmc5K9G8lnxKDTc4YOF+bL+DKbSnqlDz0LEbfrUzYlwhbymjgZIwgY8wDAYDVR0TAQH/BAIwADAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwEwYDVR0lBAwwCgYIKwYBBQUHAwEwDgYDVR0PAQH/BAQDAgeAMB0GA1UdDgQWBBS944LH1ZVrUA62t/jO42MHXqDzETAfBgNVHSMEGDAWgBSJ2JVywd4EELSHmmCLuZcUL33BwDAKBggqhkjOPQQDAgNIADBFAiAhbUCejOx9uNXdvUwgtarGto6XulQTyAxMbE6NfAtJ9gIhAPa2X+KgsYcUDTDPsybis/BDcFcau3QH6kNGXEmxV7G2";
const TEST_LEAF_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYzCqSGzJYuZPkBLFCzlCTdiW2g2zeBpjnB8ufaPWqOyhRANCAAQU2yuPqVnNJjdFyAJbnLycRGSb3qX1xGpsjlLvcpJnOSvRvJZ8Sg03OGDhfmy/gym0p6pQ89CxG361M2JcIW8p";

fn der(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// `b64` DER as a PEM `CERTIFICATE` block.
fn pem(b64: &str) -> String {
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The demo MCP server over TLS on 127.0.0.1; its `https://…/mcp` URL.
async fn tls_demo() -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der(TEST_LEAF))],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(TEST_LEAF_KEY))),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
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
