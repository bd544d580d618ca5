//! Canonical resource URIs (RFC 8707, MCP authorization §"Canonical Server URI").
//!
//! A server's canonical URI is what its tokens' `aud` must equal byte for byte, so every
//! comparison goes through [`CanonicalUri::parse`]: absolute, `https` (or `http` on a
//! loopback host), lowercase scheme and host, no fragment, no query, no userinfo, no
//! trailing slash, no dot segments.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// Why a URI is not an acceptable canonical resource URI.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    /// Not an absolute URI.
    #[error("not an absolute URI")]
    NotAbsolute,
    /// Scheme other than https, or http off loopback.
    #[error("must use https (http is allowed only on a loopback host)")]
    Scheme,
    /// Has a fragment.
    #[error("must not contain a fragment")]
    Fragment,
    /// Has a query.
    #[error("must not contain a query")]
    Query,
    /// Has a user name or password.
    #[error("must not contain credentials")]
    Credentials,
    /// Has `.` or `..` segments or an empty segment.
    #[error("must not contain dot or empty path segments")]
    Segments,
    /// Too long.
    #[error("longer than 2048 characters")]
    TooLong,
}

/// A validated canonical resource URI.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalUri(String);

/// Whether `host` is a loopback name or address.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

impl CanonicalUri {
    /// Parses and canonicalises `input`.
    ///
    /// Canonicalisation only lowercases the scheme and host and drops a trailing slash
    /// and a default port; anything that would change meaning (dot segments, query,
    /// fragment) is refused rather than rewritten.
    pub fn parse(input: &str) -> Result<Self, UriError> {
        if input.len() > 2048 {
            return Err(UriError::TooLong);
        }
        if input.contains('#') {
            return Err(UriError::Fragment);
        }
        let raw_path = raw_path(input).ok_or(UriError::NotAbsolute)?;
        if raw_path.split(['/', '\\']).skip(1).any(is_dot_segment) {
            return Err(UriError::Segments);
        }
        let url = Url::parse(input).map_err(|_| UriError::NotAbsolute)?;
        if url.cannot_be_a_base() {
            return Err(UriError::NotAbsolute);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UriError::Credentials);
        }
        if url.query().is_some() {
            return Err(UriError::Query);
        }
        let host = url.host().ok_or(UriError::NotAbsolute)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            _ => return Err(UriError::Scheme),
        }
        let path = url.path().trim_end_matches('/');
        if path.split('/').skip(1).any(str::is_empty) {
            return Err(UriError::Segments);
        }
        let mut out = format!("{}://{}", url.scheme(), host);
        if let Some(port) = url.port() {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(path);
        Ok(Self(out))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI's host, for display on consent pages.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map(|(_, r)| r).unwrap_or(&self.0);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// Validates a client redirect URI (RFC 9700 §2.1, OAuth 2.1 §2.3.1): absolute, no
/// fragment, and https unless the host is loopback (native apps) or the scheme is a
/// private-use one (`com.example.app:/cb`). Matching later is exact string comparison.
pub fn validate_redirect_uri(input: &str) -> Result<(), UriError> {
    if input.len() > 2048 {
        return Err(UriError::TooLong);
    }
    if input.contains('#') {
        return Err(UriError::Fragment);
    }
    let url = Url::parse(input).map_err(|_| UriError::NotAbsolute)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::Credentials);
    }
    match url.scheme() {
        "https" => url.host().map(|_| ()).ok_or(UriError::NotAbsolute),
        "http" => match url.host() {
            Some(h) if is_loopback_host(&h) => Ok(()),
            _ => Err(UriError::Scheme),
        },
        // Private-use URI schemes (RFC 8252 §7.1) must contain a period.
        s if s.contains('.') => Ok(()),
        _ => Err(UriError::Scheme),
    }
}

/// The path of an absolute URI as written, before any normalisation by a parser. A URL
/// parser reads `\` as `/` in an `http(s)` URI, so either starts the path.
fn raw_path(input: &str) -> Option<&str> {
    let (_, rest) = input.split_once("://")?;
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    Some(rest.find(['/', '\\']).map(|i| &rest[i..]).unwrap_or(""))
}

/// Whether a path segment is `.` or `..` in any spelling a URL parser resolves as one:
/// each dot may be written `%2e` or `%2E` (`.%2e`, `%2E.` and `%2e%2e` are all `..`).
fn is_dot_segment(segment: &str) -> bool {
    let dots = segment.to_ascii_lowercase().replace("%2e", ".");
    dots == "." || dots == ".."
}

impl fmt::Display for CanonicalUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CanonicalUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalUri({:?})", self.0)
    }
}

/// The path component of an issuer URL, without a trailing slash (`""` for none).
pub fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        CanonicalUri::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            ok("https://MCP.Example.COM/mcp/Notes"),
            "https://mcp.example.com/mcp/Notes"
        );
        assert_eq!(ok("HTTPS://mcp.example.com/"), "https://mcp.example.com");
        assert_eq!(
            ok("https://mcp.example.com:443/x/"),
            "https://mcp.example.com/x"
        );
        assert_eq!(
            ok("https://mcp.example.com:8443/x"),
            "https://mcp.example.com:8443/x"
        );
        assert_eq!(
            ok("http://127.0.0.1:8080/mcp/a"),
            "http://127.0.0.1:8080/mcp/a"
        );
        assert_eq!(
            ok("http://localhost:8080/mcp/a"),
            "http://localhost:8080/mcp/a"
        );
        assert_eq!(ok("http://[::1]:8080/mcp/a"), "http://[::1]:8080/mcp/a");
    }

    #[test]
    fn refusals() {
        use UriError::*;
        let cases = [
            ("mcp/notes", NotAbsolute),
            ("https://x.example/a#frag", Fragment),
            ("https://x.example/a?x=1", Query),
            ("http://x.example/a", Scheme),
            ("ftp://x.example/a", Scheme),
            ("https://u:p@x.example/a", Credentials),
            ("https://x.example/a/../b", Segments),
            ("https://x.example/a/./b", Segments),
            ("https://x.example/a/%2e%2e/b", Segments),
            ("https://x.example//a", Segments),
            ("mailto:a@b.example", NotAbsolute),
        ];
        for (input, err) in cases {
            assert_eq!(CanonicalUri::parse(input), Err(err.clone()), "{input}");
        }
        assert_eq!(
            CanonicalUri::parse(&format!("https://x.example/{}", "a".repeat(2100))),
            Err(TooLong)
        );
    }

    #[test]
    fn dot_segments_in_every_spelling_are_refused() {
        // A URL parser resolves each of these, so accepting them would rewrite the path.
        for input in [
            "https://x.example/a/.%2e/b",
            "https://x.example/a/%2E./b",
            "https://x.example/a/%2E",
            r"https://x.example/a\..\b",
            r"https://x.example\..",
            r"http://localhost/mcp\.%2e",
        ] {
            assert_eq!(
                CanonicalUri::parse(input),
                Err(UriError::Segments),
                "{input}"
            );
        }
    }

    #[test]
    fn redirect_uris() {
        assert_eq!(validate_redirect_uri("https://app.example/cb?x=1"), Ok(()));
        assert_eq!(validate_redirect_uri("http://127.0.0.1:3000/cb"), Ok(()));
        assert_eq!(validate_redirect_uri("http://localhost/cb"), Ok(()));
        assert_eq!(validate_redirect_uri("com.example.app:/cb"), Ok(()));
        assert_eq!(
            validate_redirect_uri("http://app.example/cb"),
            Err(UriError::Scheme)
        );
        assert_eq!(
            validate_redirect_uri("https://app.example/cb#x"),
            Err(UriError::Fragment)
        );
        assert_eq!(
            validate_redirect_uri("javascript:alert(1)"),
            Err(UriError::Scheme)
        );
        assert_eq!(validate_redirect_uri("/cb"), Err(UriError::NotAbsolute));
        assert_eq!(
            validate_redirect_uri("https://u:p@app.example/cb"),
            Err(UriError::Credentials)
        );
    }

    #[test]
    fn equal_after_canonicalisation() {
        let a = CanonicalUri::parse("https://MCP.example.com/mcp/x/").unwrap();
        let b = CanonicalUri::parse("https://mcp.example.com/mcp/x").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.host(), "mcp.example.com");
    }
}
