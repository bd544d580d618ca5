//! The guarded fetcher: how Warden GETs a URL that a client chose (a client ID metadata
//! document, a JWKS URL) without becoming a proxy into the network it runs in.
//!
//! The host is resolved here, every address is checked against
//! [`warden_core::net::may_connect`] and the connection goes to the checked address, so a
//! DNS answer that changes between check and connect (rebinding) changes nothing. One
//! deadline covers resolve, connect, TLS and the whole response; bodies are capped;
//! redirects are refused, not followed. Successful responses report how long they may be
//! cached, from `Cache-Control` and `Expires`.
//!
//! The same guarantees hold for [`Fetcher::send`], which the gateway uses to talk to an
//! upstream's authorization server (discovery and token requests, see
//! [`crate::gateway::upstream_auth`]): a `POST` is allowed there, and an answer of any
//! status but a redirect is returned to be read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use url::{Host, Url};
use warden_core::net::{may_connect, Cidr};
use warden_core::sync::lock_recovering;
use warden_core::uri::is_loopback_host;

/// Why a fetch failed. The message is safe to show to the client that chose the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not https (http is accepted only for a loopback host).
    #[error("the URL must use https")]
    Scheme,
    /// The host name did not resolve.
    #[error("the host name does not resolve")]
    Resolve,
    /// An address of the host is private, loopback, link-local or otherwise non-public.
    #[error("the host resolves to a private, loopback or link-local address")]
    ForbiddenAddress,
    /// No address accepted the connection.
    #[error("cannot connect to the host")]
    Connect,
    /// The TLS handshake failed (certificate, name, protocol).
    #[error("the TLS handshake with the host failed")]
    Tls,
    /// The deadline passed.
    #[error("the host did not answer in time")]
    Timeout,
    /// A 3xx answer; redirects are never followed.
    #[error("the host answered with a redirect, which is not followed")]
    Redirect,
    /// Any other non-200 status.
    #[error("the host answered HTTP {0}")]
    Status(u16),
    /// The body exceeded the cap.
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// Not a well-formed HTTP/1.1 exchange.
    #[error("the host's response is not valid HTTP")]
    Protocol,
}

/// How long a fetched document may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// `no-store`, `no-cache`, `max-age=0` or an `Expires` in the past.
    DoNotCache,
    /// Seconds, from `max-age` or `Expires`.
    For(i64),
    /// The response said nothing; the caller picks a default.
    Unspecified,
}

/// A fetched body and its cache lifetime.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The body, at most the cap.
    pub body: Bytes,
    /// How long it may be cached.
    pub freshness: Freshness,
}

/// A request for [`Fetcher::send`]. `Debug` is not derived: the headers may carry a
/// client secret.
pub struct Outgoing<'a> {
    /// `GET` or `POST`.
    pub method: Method,
    /// Where to.
    pub url: &'a Url,
    /// Headers besides `Host`, `Accept: application/json`, `User-Agent` and
    /// `Connection: close` (a header given here replaces the default of that name).
    pub headers: http::HeaderMap,
    /// The body (empty for a `GET`).
    pub body: Bytes,
}

/// An answer of any status but a redirect, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body, at most the cap.
    pub body: Bytes,
}

/// Fetches client-chosen URLs under the address policy.
pub struct Fetcher {
    allow: Vec<Cidr>,
    timeout: Duration,
    tls: Option<TlsConnector>,
}

impl Fetcher {
    /// A fetcher that may reach public addresses and `allow`, within `timeout`.
    pub fn new(allow: Vec<Cidr>, timeout: Duration) -> Self {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(allow, timeout, roots)
    }

    /// A fetcher that trusts `roots` (the public web PKI in production).
    fn with_roots(allow: Vec<Cidr>, timeout: Duration, roots: RootCertStore) -> Self {
        let tls = tls_config(roots)
            .map(|c| TlsConnector::from(Arc::new(c)))
            .map_err(|e| tracing::error!(error = %e, "cannot build the TLS client; https fetches will fail"))
            .ok();
        Self {
            allow,
            timeout,
            tls,
        }
    }

    /// GETs `url`, refusing bodies over `max_bytes` and any status but 200. `now` (UNIX
    /// seconds) interprets `Expires`.
    pub async fn get(&self, url: &Url, max_bytes: usize, now: i64) -> Result<Fetched, FetchError> {
        let answer = self.send(Outgoing::get(url), max_bytes).await?;
        if answer.status != StatusCode::OK {
            return Err(FetchError::Status(answer.status.as_u16()));
        }
        Ok(Fetched {
            freshness: freshness(&answer.headers, now),
            body: answer.body,
        })
    }

    /// Sends `request` under the same guarantees as [`Self::get`] (address policy, one
    /// deadline, capped body, no redirect), and returns the answer whatever its status:
    /// a token endpoint's 400 or an upstream's 401 challenge is an answer to read.
    pub async fn send(
        &self,
        request: Outgoing<'_>,
        max_bytes: usize,
    ) -> Result<Answer, FetchError> {
        let url = request.url;
        let host = url.host().ok_or(FetchError::Scheme)?;
        let https = match url.scheme() {
            "https" => true,
            "http" if is_loopback_host(&host) => false,
            _ => return Err(FetchError::Scheme),
        };
        let port = url.port_or_known_default().ok_or(FetchError::Scheme)?;
        let work = async {
            let addrs = self.resolve(&host, port).await?;
            let stream = connect(&addrs).await?;
            let authority = match url.port() {
                Some(p) => format!("{}:{p}", host_text(&host)),
                None => host_text(&host),
            };
            let target = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if https {
                let tls = self.tls.as_ref().ok_or(FetchError::Tls)?;
                let name = server_name(&host)?;
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|_| FetchError::Tls)?;
                exchange(stream, &authority, &target, request, max_bytes).await
            } else {
                exchange(stream, &authority, &target, request, max_bytes).await
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    /// Every address `host` stands for, each one checked. One refused address refuses the
    /// host: a name that mixes public and private answers is not trustworthy.
    async fn resolve(&self, host: &Host<&str>, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
        let addrs: Vec<SocketAddr> = match host {
            Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
            Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
            Host::Domain(d) => tokio::net::lookup_host((*d, port))
                .await
                .map_err(|_| FetchError::Resolve)?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(FetchError::Resolve);
        }
        if addrs.iter().any(|a| !may_connect(a.ip(), &self.allow)) {
            return Err(FetchError::ForbiddenAddress);
        }
        Ok(addrs)
    }
}

impl<'a> Outgoing<'a> {
    /// A `GET` of `url`.
    pub fn get(url: &'a Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A `POST` of the form `fields` (`application/x-www-form-urlencoded`) to `url`.
    pub fn post_form<'f>(
        url: &'a Url,
        fields: impl IntoIterator<Item = (&'f str, &'f str)>,
    ) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        Self {
            method: Method::POST,
            url,
            headers,
            body: Bytes::from(body),
        }
    }
}

fn tls_config(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn host_text(host: &Host<&str>) -> String {
    match host {
        Host::Domain(d) => (*d).to_owned(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    }
}

fn server_name(host: &Host<&str>) -> Result<ServerName<'static>, FetchError> {
    match host {
        Host::Domain(d) => ServerName::try_from((*d).to_owned()).map_err(|_| FetchError::Tls),
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
    }
}

/// Connects to the first of `addrs` (all already checked) that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, FetchError> {
    for addr in addrs {
        if let Ok(s) = TcpStream::connect(addr).await {
            let _ = s.set_nodelay(true);
            return Ok(s);
        }
    }
    Err(FetchError::Connect)
}

/// One HTTP/1.1 exchange on an established stream.
async fn exchange<S>(
    stream: S,
    authority: &str,
    target: &str,
    request: Outgoing<'_>,
    max_bytes: usize,
) -> Result<Answer, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| FetchError::Protocol)?;
    let driver = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(request.method)
        .uri(target)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::CONNECTION, "close")
        .body(Full::new(request.body))
        .map_err(|_| FetchError::Protocol)?;
    for (name, value) in request.headers {
        if let Some(name) = name {
            req.headers_mut().insert(name, value);
        }
    }
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| FetchError::Protocol)?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect);
        }
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let (parts, mut body) = resp.into_parts();
        let mut buf = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| FetchError::Protocol)?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > max_bytes {
                    return Err(FetchError::TooLarge(max_bytes));
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(Answer {
            status,
            headers: parts.headers,
            body: Bytes::from(buf),
        })
    }
    .await;
    driver.abort();
    result
}

/// The cache lifetime a response's headers allow (RFC 9111 §4.2.1, for a private cache).
pub fn freshness(headers: &http::HeaderMap, now: i64) -> Freshness {
    let mut max_age = None;
    for v in headers.get_all(header::CACHE_CONTROL) {
        let Ok(text) = v.to_str() else {
            return Freshness::DoNotCache;
        };
        for directive in text.split(',') {
            let d = directive.trim().to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                return Freshness::DoNotCache;
            }
            if let Some(n) = d.strip_prefix("max-age=") {
                match n.trim_matches('"').parse::<i64>() {
                    Ok(n) if n > 0 => max_age = Some(n),
                    _ => return Freshness::DoNotCache,
                }
            }
        }
    }
    if let Some(n) = max_age {
        return Freshness::For(n);
    }
    if let Some(v) = headers.get(header::EXPIRES) {
        // An Expires that does not parse means "already expired" (RFC 9111 §5.3).
        return match v.to_str().ok().and_then(parse_http_date) {
            Some(at) if at > now => Freshness::For(at - now),
            _ => Freshness::DoNotCache,
        };
    }
    Freshness::Unspecified
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into UNIX seconds.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = match *month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (t.next(), t.next(), t.next(), t.next())
    else {
        return None;
    };
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3_600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A small cache of fetched results with per-entry expiry and a size bound. Only
/// successes go in; failures are never cached.
pub struct TtlCache<V> {
    entries: Mutex<HashMap<String, (V, i64)>>,
    capacity: usize,
}

impl<V: Clone> TtlCache<V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value for `key`, if present and not expired at `now`.
    pub fn get(&self, key: &str, now: i64) -> Option<V> {
        let g = lock_recovering(&self.entries);
        g.get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` until `expires_at`. When full, drops expired entries, then the
    /// entry closest to expiry.
    pub fn insert(&self, key: String, value: V, expires_at: i64, now: i64) {
        let mut g = lock_recovering(&self.entries);
        if g.len() >= self.capacity && !g.contains_key(&key) {
            g.retain(|_, (_, exp)| *exp > now);
            if g.len() >= self.capacity {
                if let Some(victim) = g
                    .iter()
                    .min_by_key(|(_, (_, exp))| *exp)
                    .map(|(k, _)| k.clone())
                {
                    g.remove(&victim);
                }
            }
        }
        g.insert(key, (value, expires_at));
    }

    /// Drops `key`.
    pub fn remove(&self, key: &str) {
        lock_recovering(&self.entries).remove(key);
    }

    /// Drops every entry expired at `now`.
    pub fn purge(&self, now: i64) {
        lock_recovering(&self.entries).retain(|_, (_, exp)| *exp > now);
    }

    /// How many entries are held (expired ones included until purged).
    pub fn len(&self) -> usize {
        lock_recovering(&self.entries).len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("0"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn freshness_from_headers() {
        let now = 784_111_777;
        assert_eq!(freshness(&headers(&[]), now), Freshness::Unspecified);
        assert_eq!(
            freshness(&headers(&[("cache-control", "public, max-age=600")]), now),
            Freshness::For(600)
        );
        for cc in ["no-store", "no-cache", "max-age=0", "max-age=x"] {
            assert_eq!(
                freshness(&headers(&[("cache-control", cc)]), now),
                Freshness::DoNotCache,
                "{cc}"
            );
        }
        assert_eq!(
            freshness(
                &headers(&[("expires", "Sun, 06 Nov 1994 09:49:37 GMT")]),
                now
            ),
            Freshness::For(3600)
        );
        assert_eq!(
            freshness(&headers(&[("expires", "0")]), now),
            Freshness::DoNotCache
        );
        // max-age wins over Expires.
        assert_eq!(
            freshness(
                &headers(&[
                    ("cache-control", "max-age=5"),
                    ("expires", "Sun, 06 Nov 1994 09:49:37 GMT")
                ]),
                now
            ),
            Freshness::For(5)
        );
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let c: TtlCache<u32> = TtlCache::new(2);
        c.insert("a".into(), 1, 100, 0);
        c.insert("b".into(), 2, 50, 0);
        assert_eq!(c.get("a", 99), Some(1));
        assert_eq!(c.get("a", 100), None);
        c.insert("c".into(), 3, 200, 0);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get("b", 0),
            None,
            "the entry closest to expiry went first"
        );
        c.purge(150);
        assert_eq!(c.len(), 1);
    }

    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/test_tls.rs"
    ));

    /// A one-shot-per-connection https server on 127.0.0.1 answering `{}`.
    async fn tls_server() -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let acceptor = test_tls_acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncache-control: max-age=7\r\nconnection: close\r\n\r\n{}")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_fetches_verify_the_certificate() {
        let port = tls_server().await;
        let url = Url::parse(&format!("https://127.0.0.1:{port}/client.json")).unwrap();
        let allow: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap()];
        let public_pki = Fetcher::new(allow.clone(), Duration::from_secs(2));
        assert_eq!(
            public_pki.get(&url, 5120, 0).await.unwrap_err(),
            FetchError::Tls,
            "a certificate from an unknown issuer is refused"
        );
        let mut roots = RootCertStore::empty();
        roots.add(der(TEST_CA).into()).unwrap();
        let trusting = Fetcher::with_roots(allow, Duration::from_secs(2), roots);
        let got = trusting.get(&url, 5120, 0).await.unwrap();
        assert_eq!(&got.body[..], b"{}");
        assert_eq!(got.freshness, Freshness::For(7));
    }

    #[tokio::test]
    async fn refused_before_any_connection() {
        let f = Fetcher::new(vec![], Duration::from_secs(1));
        for u in [
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://localhost/x",
        ] {
            let url = Url::parse(u).unwrap();
            assert_eq!(
                f.get(&url, 5120, 0).await.unwrap_err(),
                FetchError::ForbiddenAddress,
                "{u}"
            );
        }
        let url = Url::parse("http://example.com/x").unwrap();
        assert_eq!(f.get(&url, 5120, 0).await.unwrap_err(), FetchError::Scheme);
        let url = Url::parse("ftp://example.com/x").unwrap();
        assert_eq!(f.get(&url, 5120, 0).await.unwrap_err(), FetchError::Scheme);
    }
}
