//! The `Authorization` header parsers: the gateway's `gateway::validate::access_token`
//! (on `warden_core::credentials`; `Bearer` and RFC 9449 `DPoP`), and
//! `credentials::basic`, the one HTTP Basic parser of client authentication.
//!
//! Input: the request's query string, a NUL, then `Authorization` values one per line
//! (none, one, or several: several is refused). Without a NUL there is no query.
//!
//! Properties: a token is returned only from exactly one `Bearer` or `DPoP` header (any
//! case; `dpop` says which), as its non-empty RFC 7235 `token68` tail of at most
//! `jwt::MAX_TOKEN_LEN` bytes; a query naming `access_token` is always refused. Basic credentials are returned only from a
//! `Basic` header (any case) whose base64 decodes to exactly `user:password`.

#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use base64::Engine as _;
use warden_core::credentials;
use warden_core::jwt::MAX_TOKEN_LEN;
use warden_server::gateway::validate::access_token;

fn token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let (query, head) = match data.iter().position(|&b| b == 0) {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let mut headers = HeaderMap::new();
    if !head.is_empty() {
        for line in head.split(|&b| b == b'\n') {
            if let Ok(v) = HeaderValue::from_bytes(line) {
                headers.append(AUTHORIZATION, v);
            }
        }
    }
    let result = access_token(&headers, query);
    let in_query = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    });
    if in_query {
        assert!(
            result.is_err(),
            "a token in the query string was not refused"
        );
    }
    if let Ok(Some(presented)) = result {
        let token = presented.token;
        let values: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(values.len(), 1, "a token taken from one of several headers");
        let value = values[0].as_bytes();
        let scheme: &[u8] = if presented.dpop { b"dpop " } else { b"bearer " };
        assert!(value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme));
        assert!(value.ends_with(token.as_bytes()));
        let body = token.trim_end_matches('=');
        assert!(!body.is_empty() && token.len() <= MAX_TOKEN_LEN);
        assert!(body.bytes().all(token68_byte), "not a token68: {token:?}");
    }
    for value in headers.get_all(AUTHORIZATION) {
        let Ok(text) = value.to_str() else { continue };
        if let Ok(Some(creds)) = credentials::basic(text) {
            assert!(text.len() > 6 && text[..6].eq_ignore_ascii_case("basic "));
            let encoded = text[6..].trim_start_matches(' ');
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("returned credentials that are not base64");
            let joined = format!("{}:{}", creds.user, creds.password.as_str());
            assert_eq!(decoded, joined.as_bytes());
            let _ = creds.oauth_client();
        }
    }
});
