//! The `htu` comparison (RFC 9449 §4.3 step 9): a proof's URI against the request's.
//!
//! Both sides lose their query and fragment and are normalised as RFC 3986 §6.2.2
//! (syntax: case of scheme and host, percent-encoding, dot segments) and §6.2.3 (scheme:
//! default port, empty path) say, then compared exactly. Nothing else is forgiven: the
//! path's case and a trailing slash still count.

use url::Url;

/// Longest URI accepted on either side, to bound work on hostile input.
const MAX_URI_LEN: usize = 4096;

/// Whether `htu` names the same HTTP target as `request_uri`, query and fragment aside.
/// Either side that is not an absolute `http` or `https` URI of RFC 3986 characters
/// matches nothing.
pub(super) fn same_target(htu: &str, request_uri: &str) -> bool {
    match (normalise(htu), normalise(request_uri)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The normal form of an HTTP(S) URI without its query and fragment, or `None`.
fn normalise(uri: &str) -> Option<String> {
    // The WHATWG parser underneath forgives more than RFC 3986 (`\` for `/`, spaces,
    // tabs, non-ASCII): such a URI is refused here rather than read the parser's way.
    if uri.len() > MAX_URI_LEN || !uri.bytes().all(is_uri_char) {
        return None;
    }
    let mut url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    // The parser has lowercased the scheme and host, dropped a default port, made an
    // empty path `/`, and removed dot segments (`%2e` spellings included); what is left
    // of §6.2.2.2 is the percent-encoding of the path.
    let path = normalise_percent_encoding(url.path());
    url.set_path(&path);
    Some(url.into())
}

/// RFC 3986 §6.2.2.2: a percent-encoded unreserved character is decoded, and the hex
/// digits of every other percent-encoding are uppercase.
fn normalise_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex_value(*hi).zip(hex_value(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match decoded {
            Some(b) if is_unreserved(b) => {
                out.push(char::from(b));
                i += 3;
            }
            Some(_) => {
                out.push('%');
                out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                i += 3;
            }
            None => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 §2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A character that may appear in a URI (RFC 3986 §2): unreserved, reserved, or `%`.
fn is_uri_char(b: u8) -> bool {
    is_unreserved(b) || b"%:/?#[]@!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        let cases = [
            (
                "HTTPS://Server.Example.COM:443/token",
                "https://server.example.com/token",
            ),
            ("http://server.example.com:80", "http://server.example.com/"),
            (
                "https://server.example.com:8443/a",
                "https://server.example.com:8443/a",
            ),
            ("https://x.example/a/./b/../c", "https://x.example/a/c"),
            (
                "https://x.example/%7euser/%2fx%3A",
                "https://x.example/~user/%2Fx%3A",
            ),
            ("https://x.example/a?b=1#c", "https://x.example/a"),
            ("https://x.example/A/", "https://x.example/A/"),
        ];
        for (input, normal) in cases {
            assert_eq!(normalise(input).as_deref(), Some(normal), "{input}");
        }
    }

    #[test]
    fn refusals() {
        for input in [
            "/token",
            "ftp://x.example/a",
            "mailto:a@x.example",
            r"https://x.example\token",
            "https://x.example/a b",
            "https://x.example/\u{e9}",
            "https://x.example/\ttoken",
        ] {
            assert_eq!(normalise(input), None, "{input}");
        }
    }
}
