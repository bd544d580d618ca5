//! One fixed request ([`Target`]) and the HTTP/1.1 connections that send it.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: the address to connect to, the `Host` header and the path.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    /// Path and query.
    pub path: String,
}

/// One fixed request, sent over and over.
pub struct Target {
    pub endpoint: Endpoint,
    /// Every header but `Host`.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// A byte string every successful answer contains.
    pub expect: &'static [u8],
}

/// An open keep-alive connection.
pub type Conn = SendRequest<Full<Bytes>>;

/// An answer: status, headers, whole body.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

// === impl Endpoint ===

impl Endpoint {
    /// Parses an `http://` URL (loopback benchmarks: no TLS).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let u = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
        if u.scheme() != "http" {
            bail!("{url}: only http:// targets are supported (loopback benchmarks)");
        }
        let addr = u
            .socket_addrs(|| Some(80))
            .with_context(|| format!("cannot resolve {url}"))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{url} resolves to no address"))?;
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => bail!("{url} has no host"),
        };
        let mut path = u.path().to_owned();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&host)?,
            path,
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn exchange(
        &self,
        conn: &mut Conn,
        headers: &HeaderMap,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        conn.ready().await?;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.parse()?;
        *req.headers_mut() = headers.clone();
        req.headers_mut().insert(HOST, self.host.clone());
        let resp = conn.send_request(req).await?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers: parts.headers,
            body,
        })
    }
}

// === impl Target ===

impl Target {
    /// A form `POST` with HTTP Basic client authentication (the OAuth endpoints).
    pub fn form(
        url: &str,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
        expect: &'static [u8],
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(url)?;
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = STANDARD.encode(format!("{}:{}", enc(client_id), enc(client_secret)));
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            ser.append_pair(k, v);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}"))?,
        );
        Ok(Self {
            endpoint,
            headers,
            body: Bytes::from(ser.finish()),
            expect,
        })
    }

    /// Sends the request once; returns the status and body.
    pub async fn send(&self, conn: &mut Conn) -> anyhow::Result<(u16, Bytes)> {
        let a = self
            .endpoint
            .exchange(conn, &self.headers, self.body.clone())
            .await?;
        Ok((a.status, a.body))
    }

    /// Whether an answer is a success.
    pub fn succeeded(&self, status: u16, body: &[u8]) -> bool {
        (200..300).contains(&status) && contains(body, self.expect)
    }

    /// Sends one request on a fresh connection and checks it, so a misconfiguration is
    /// reported clearly before any load.
    pub async fn preflight(&self) -> anyhow::Result<Bytes> {
        let mut c = connect(self.endpoint.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.endpoint.addr))?;
        let (status, body) = self.send(&mut c).await?;
        if !self.succeeded(status, &body) {
            bail!("preflight request failed: {}", describe(status, &body));
        }
        Ok(body)
    }
}

/// Opens a keep-alive connection (`TCP_NODELAY`).
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// An answer, shortened for an error message.
pub fn describe(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(300).collect();
    format!("HTTP {status}: {cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_target_encodes_basic_and_form() {
        let t = Target::form(
            "http://127.0.0.1:8080/oauth/token",
            "id:x",
            "s e",
            &[
                ("grant_type", "client_credentials"),
                ("resource", "http://a/b"),
            ],
            b"x",
        )
        .unwrap();
        assert_eq!(t.endpoint.host, "127.0.0.1:8080");
        assert_eq!(t.endpoint.path, "/oauth/token");
        let b64 = t.headers[AUTHORIZATION]
            .to_str()
            .unwrap()
            .strip_prefix("Basic ")
            .unwrap();
        assert_eq!(STANDARD.decode(b64).unwrap(), b"id%3Ax:s+e");
        assert_eq!(
            &t.body[..],
            b"grant_type=client_credentials&resource=http%3A%2F%2Fa%2Fb"
        );
        assert!(Target::form("https://x/", "a", "b", &[], b"").is_err());
    }

    #[test]
    fn finds_markers() {
        assert!(contains(b"{\"active\":true}", b"\"active\":true"));
        assert!(!contains(b"{\"active\":false}", b"\"active\":true"));
    }
}
