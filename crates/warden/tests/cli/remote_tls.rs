//! `--server https://…`: the remote admin CLI over TLS, trusting a private CA given with
//! `--ca-file` and nothing else. A TLS-terminating proxy in the test stands in for the
//! load balancer in front of Warden.

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/test_tls.rs"
));

/// Terminates TLS on a fresh loopback port and forwards every connection to `backend`.
async fn tls_proxy(backend: u16) -> u16 {
    let acceptor = test_tls_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", backend)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    port
}

#[test]
fn the_remote_cli_speaks_https_under_a_private_ca() {
    let (f, init) = Fixture::initialized();
    let id = init["admin_client"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = init["admin_client"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let _server = f.serve(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(tls_proxy(f.port));
    let ca = f.dir.with_file_name("ca.pem");
    std::fs::write(&ca, pem(TEST_CA)).unwrap();
    let remote = |server: &str, ca_file: Option<&std::path::Path>, args: &[&str]| {
        let mut c = warden(std::path::Path::new("/nonexistent/warden-data"));
        c.env("WARDEN_ADMIN_CLIENT_ID", &id)
            .env("WARDEN_ADMIN_CLIENT_SECRET", &secret)
            .args(["--server", server]);
        if let Some(p) = ca_file {
            c.arg("--ca-file").arg(p);
        }
        c.args(args);
        c
    };
    let https = format!("https://127.0.0.1:{proxy}");

    // Under the private CA: the same answers as over loopback http.
    let listed: Value = serde_json::from_str(&ok(
        remote(&https, Some(&ca), &["--json", "server", "list"]),
        None,
    ))
    .unwrap();
    let direct: Value = serde_json::from_str(&ok(
        remote(&f.base, None, &["--json", "server", "list"]),
        None,
    ))
    .unwrap();
    assert_eq!(listed, direct);
    let added: Value = serde_json::from_str(&ok(
        remote(
            &https,
            Some(&ca),
            &[
                "--json",
                "server",
                "add",
                "tickets",
                "--upstream",
                "http://127.0.0.1:9/mcp",
                "--scope",
                "tickets:use=t",
            ],
        ),
        None,
    ))
    .unwrap();
    assert_eq!(added["name"], "tickets");
    let mut c = remote(&https, None, &["status"]);
    c.env("WARDEN_ADMIN_CA_FILE", &ca);
    ok(c, None);

    // The public roots do not know the private CA: refused before any secret is sent.
    let err = fails(remote(&https, None, &["server", "list"]));
    assert!(err.contains("TLS") && err.contains("certificate"), "{err}");
    assert!(!err.contains(&secret));
    // A CA file that is not one.
    let junk = f.dir.with_file_name("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = fails(remote(&https, Some(&junk), &["server", "list"]));
    assert!(err.contains("--ca-file"), "{err}");
    // Plain http to the TLS port, or to a host that is not loopback, is refused.
    let err = fails(remote("http://192.0.2.1:8443", None, &["server", "list"]));
    assert!(err.contains("plain HTTP"), "{err}");
    drop(rt);
}
