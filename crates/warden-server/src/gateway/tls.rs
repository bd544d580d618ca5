//! TLS for the gateway's own outbound connections: `https://` upstreams and external
//! issuers (discovery, JWKS, introspection).
//!
//! The connector plugs into hyper-util's pooled client. `http://` URIs connect in the
//! clear; `https://` URIs complete a rustls handshake (ring provider, TLS 1.2 and 1.3,
//! ALPN `http/1.1`) verified against a set of trust anchors and the URI's host (an IP
//! address is matched against the certificate's IP SANs).
//!
//! The anchors are the public web PKI (`webpki-roots`) unless a server names its own CA
//! bundle (`upstream_ca` for its upstream, `issuer_ca` for its external issuer, both PEM):
//! that bundle then *replaces* the public roots for that server, so a private upstream is
//! trusted only under the CA that issued it. Each distinct bundle gets its own pooled
//! client ([`TrustRoots::key`] tells them apart), so a server's connections are never
//! reused for another server with different anchors.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::uri::Scheme;
use axum::http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A set of trust anchors, compiled into a client configuration.
#[derive(Clone)]
pub struct TrustRoots {
    key: [u8; 32],
    config: Arc<ClientConfig>,
}

/// Connects `http://` in the clear and `https://` over TLS.
#[derive(Clone)]
pub struct HttpsConnector {
    http: HttpConnector,
    /// `None`: no TLS configuration could be built; every `https://` request fails.
    tls: Option<TlsConnector>,
}

/// A connection made by [`HttpsConnector`].
pub enum MaybeTls {
    /// `http://`.
    Plain(TokioIo<TcpStream>),
    /// `https://`.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

// === impl TrustRoots ===

impl TrustRoots {
    /// The public web PKI.
    pub fn public() -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::build([0u8; 32], roots)
    }

    /// Only the certificates of `pem` (one or more `CERTIFICATE` blocks). `setting` names
    /// the setting in errors.
    pub fn from_pem(pem: &str, setting: &str) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|_| format!("settings.{setting}: not valid PEM"))?;
            roots
                .add(cert)
                .map_err(|_| format!("settings.{setting}: a certificate does not parse"))?;
        }
        if roots.is_empty() {
            return Err(format!("settings.{setting}: no CERTIFICATE in the PEM"));
        }
        let mut key = [0u8; 32];
        let hash = warden_core::secret::token_hash(pem);
        let n = hash.len().min(32);
        key[..n].copy_from_slice(&hash[..n]);
        // The all-zero key is the public roots'; a hash never collides with it in practice,
        // but make sure.
        key[0] |= 1;
        Self::build(key, roots)
    }

    fn build(key: [u8; 32], roots: RootCertStore) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            key,
            config: Arc::new(config),
        })
    }

    /// Identifies the anchor set: equal keys, equal anchors.
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// A connector trusting these anchors, on top of `http`.
    pub fn connector(&self, http: HttpConnector) -> HttpsConnector {
        HttpsConnector {
            http,
            tls: Some(TlsConnector::from(Arc::clone(&self.config))),
        }
    }
}

// === impl HttpsConnector ===

impl HttpsConnector {
    /// A connector for `http://` only, the last resort when no TLS configuration can be
    /// built at all.
    pub fn without_tls(http: HttpConnector) -> Self {
        Self { http, tls: None }
    }
}

impl tower::Service<Uri> for HttpsConnector {
    type Response = MaybeTls;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MaybeTls, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        // `Uri::host` keeps the brackets of an IPv6 literal; `ServerName` wants the address.
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?;
            if !https {
                return Ok(MaybeTls::Plain(tcp));
            }
            let tls = tls.ok_or("no TLS configuration")?;
            let host = host.ok_or("https URI without a host")?;
            let name = ServerName::try_from(host)?;
            let stream = tls.connect(name, tcp.into_inner()).await?;
            Ok(MaybeTls::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

// === impl MaybeTls ===

impl Connection for MaybeTls {
    fn connected(&self) -> Connected {
        match self {
            MaybeTls::Plain(io) => io.connected(),
            MaybeTls::Tls(io) => io.inner().get_ref().0.connected(),
        }
    }
}

impl Read for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MaybeTls::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl Write for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MaybeTls::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_flush(cx),
            MaybeTls::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MaybeTls::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(io) => io.is_write_vectored(),
            MaybeTls::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_are_checked() {
        assert!(TrustRoots::from_pem("", "upstream_ca").is_err());
        assert!(TrustRoots::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "upstream_ca"
        )
        .is_err());
        let public = TrustRoots::public().unwrap();
        assert_eq!(public.key(), [0u8; 32]);
    }
}
