//! The `Authorization` request header: the one parser for every credential a request
//! presents in it (RFC 7235 §2.1, RFC 6750 §2.1, RFC 7617).
//!
//! The scheme is a `token` compared case-insensitively (RFC 7235 §2.1: `Bearer`,
//! `bearer` and `BEARER` are the same scheme), followed by one or more spaces and the
//! credentials. What follows the scheme is checked only for the scheme the caller asks
//! for: the gateway, which wants a bearer token, does not decode a `Basic` header it
//! will ignore anyway.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

/// Largest credential accepted, to bound work on hostile input (a JWT access token is
/// well under this; see also [`crate::jwt::MAX_TOKEN_LEN`]).
pub const MAX_CREDENTIAL_LEN: usize = crate::jwt::MAX_TOKEN_LEN;

/// The authentication schemes Warden reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 7617.
    Basic,
    /// RFC 9449.
    DPoP,
    /// Any other syntactically valid scheme.
    Other,
}

/// Why an `Authorization` header could not be read. Callers answer it with their own
/// standard error (RFC 6750 `invalid_request`, OAuth `invalid_client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not `scheme 1*SP credentials`, a scheme with characters a `token` may not hold,
    /// or credentials that are not valid for the scheme.
    #[error("malformed Authorization header")]
    Malformed,
}

/// An `Authorization` header split into its scheme and its (unchecked) credentials.
#[derive(Clone, Copy, Debug)]
pub struct Authorization<'a> {
    /// The scheme, case-folded.
    pub scheme: Scheme,
    /// Everything after the spaces that follow the scheme.
    pub credentials: &'a str,
}

/// HTTP Basic credentials (RFC 7617): the user-id and the password as sent.
pub struct BasicCredentials {
    /// The user-id (for OAuth client authentication, the form-encoded client id).
    pub user: String,
    /// The password (for OAuth, the form-encoded client secret).
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

// === impl BasicCredentials ===

impl BasicCredentials {
    /// The client id and secret of OAuth client authentication: RFC 6749 §2.3.1 has both
    /// parts `application/x-www-form-urlencoded` before the Basic encoding.
    pub fn oauth_client(&self) -> (String, Zeroizing<String>) {
        (
            form_decode(&self.user),
            Zeroizing::new(form_decode(&self.password)),
        )
    }
}

fn form_decode(s: &str) -> String {
    // Prefixed with a name so that a `=` inside the value stays part of it.
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The one `Authorization` header of a request, from all its values (`HeaderMap::get_all`
/// as bytes): `Ok(None)` when there is none, `Err` when there are several (which one
/// would count is ambiguous) or its value is not visible ASCII.
pub fn single_header<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'a str>, CredentialError> {
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialError::Malformed);
    }
    if !value.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(CredentialError::Malformed);
    }
    std::str::from_utf8(value)
        .map(Some)
        .map_err(|_| CredentialError::Malformed)
}

/// Splits `value` into scheme and credentials.
pub fn parse(value: &str) -> Result<Authorization<'_>, CredentialError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
        return Err(CredentialError::Malformed);
    }
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("basic") {
        Scheme::Basic
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        Scheme::Other
    };
    Ok(Authorization {
        scheme,
        credentials: rest.trim_start_matches(' '),
    })
}

/// An access token presented to a protected resource, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessToken<'a> {
    /// The token, a `token68`.
    pub token: &'a str,
    /// Whether it came with the `DPoP` scheme (RFC 9449 §7.1) rather than `Bearer`
    /// (RFC 6750 §2.1): the request then claims the token is bound to the key of its
    /// `DPoP` proof.
    pub dpop: bool,
}

/// The access token in `value`, with the `Bearer` or the `DPoP` scheme: `Ok(None)` for
/// another scheme (RFC 6750 §3.1 treats it as no credentials), `Err` for a malformed
/// header or a token that is not a `token68` (both schemes use that syntax).
pub fn access_token(value: &str) -> Result<Option<AccessToken<'_>>, CredentialError> {
    let auth = parse(value)?;
    let dpop = match auth.scheme {
        Scheme::Bearer => false,
        Scheme::DPoP => true,
        Scheme::Basic | Scheme::Other => return Ok(None),
    };
    if is_token68(auth.credentials) {
        Ok(Some(AccessToken {
            token: auth.credentials,
            dpop,
        }))
    } else {
        Err(CredentialError::Malformed)
    }
}

/// The bearer token in `value`: `Ok(None)` for another scheme, `DPoP` included (an
/// endpoint that reads only bearer tokens never takes a sender-constrained one), `Err`
/// as [`access_token`] says.
pub fn bearer(value: &str) -> Result<Option<&str>, CredentialError> {
    Ok(access_token(value)?
        .filter(|presented| !presented.dpop)
        .map(|presented| presented.token))
}

/// The Basic credentials in `value`: `Ok(None)` for another scheme, `Err` for a header
/// that is malformed, not base64, not UTF-8, or without the `:` separator.
pub fn basic(value: &str) -> Result<Option<BasicCredentials>, CredentialError> {
    let auth = parse(value)?;
    if auth.scheme != Scheme::Basic {
        return Ok(None);
    }
    if !is_token68(auth.credentials) {
        return Err(CredentialError::Malformed);
    }
    let raw = Zeroizing::new(
        STANDARD
            .decode(auth.credentials)
            .map_err(|_| CredentialError::Malformed)?,
    );
    let text = std::str::from_utf8(&raw).map_err(|_| CredentialError::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(CredentialError::Malformed)?;
    Ok(Some(BasicCredentials {
        user: user.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    }))
}

/// RFC 7235 `token68`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`,
/// at most [`MAX_CREDENTIAL_LEN`] bytes.
pub fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && token.len() <= MAX_CREDENTIAL_LEN
        && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

/// RFC 7230 `tchar`, the characters of a scheme name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The bytes of a `token68` before its padding, as a table: every gateway request's token
/// is checked byte by byte, and a table lookup is the cheapest test.
const TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(bearer(&format!("{scheme} abc.def")), Ok(Some("abc.def")));
        }
        let encoded = STANDARD.encode("id:secret");
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let creds = basic(&format!("{scheme} {encoded}")).unwrap().unwrap();
            assert_eq!(creds.user, "id");
            assert_eq!(creds.password.as_str(), "secret");
        }
    }

    #[test]
    fn another_scheme_is_no_credentials_of_this_kind() {
        assert_eq!(bearer("Basic dXNlcjpw"), Ok(None));
        assert_eq!(bearer("DPoP abc"), Ok(None));
        assert!(basic("Bearer abc").unwrap().is_none());
        assert_eq!(parse("DPoP abc").unwrap().scheme, Scheme::DPoP);
        // Another scheme's credentials are not read: garbage after `Basic` is not the
        // bearer parser's business.
        assert_eq!(bearer("Basic !!!"), Ok(None));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            " abc",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer =abc",
            "Be@rer abc",
            "Bearer abc\u{e9}",
        ] {
            assert_eq!(bearer(bad), Err(CredentialError::Malformed), "{bad:?}");
        }
        let too_long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(bearer(&too_long), Err(CredentialError::Malformed));
        for bad in [
            "Basic",
            "Basic !!!!",
            "Basic a b",
            &format!("Basic {}", STANDARD.encode("no-colon")),
            &format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe])),
        ] {
            assert!(basic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exactly_one_visible_ascii_header_is_read() {
        let none: [&[u8]; 0] = [];
        assert_eq!(single_header(none.into_iter()), Ok(None));
        assert_eq!(
            single_header([b"Bearer a".as_slice()].into_iter()),
            Ok(Some("Bearer a"))
        );
        assert!(single_header([b"Bearer a".as_slice(), b"Bearer b"].into_iter()).is_err());
        assert!(single_header([b"Bearer \xc3\xa9".as_slice()].into_iter()).is_err());
        assert!(single_header([b"Bearer a\tb".as_slice()].into_iter()).is_err());
    }

    #[test]
    fn an_access_token_comes_with_either_scheme() {
        for (header, dpop) in [
            ("Bearer abc.def", false),
            ("DPoP abc.def", true),
            ("dpop  abc.def", true),
        ] {
            assert_eq!(
                access_token(header),
                Ok(Some(AccessToken {
                    token: "abc.def",
                    dpop
                })),
                "{header}"
            );
        }
        assert_eq!(access_token("Basic dXNlcjpw"), Ok(None));
        assert_eq!(access_token("Other abc"), Ok(None));
        for bad in ["DPoP", "DPoP ", "DPoP a b", "DPoP a,b", "DPoP =abc"] {
            assert_eq!(
                access_token(bad),
                Err(CredentialError::Malformed),
                "{bad:?}"
            );
        }
        // The bearer reader never takes a token sent with the DPoP scheme.
        assert_eq!(bearer("DPoP abc.def"), Ok(None));
        assert_eq!(bearer("DPoP a b"), Err(CredentialError::Malformed));
    }

    #[test]
    fn spaces_after_the_scheme_are_one_separator() {
        assert_eq!(bearer("Bearer   abc=="), Ok(Some("abc==")));
    }

    #[test]
    fn oauth_client_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20client:p%3Ass+w%2Bd=x");
        let creds = basic(&format!("Basic {encoded}")).unwrap().unwrap();
        let (id, secret) = creds.oauth_client();
        assert_eq!(id, "my client");
        assert_eq!(secret.as_str(), "p:ss w+d=x");
        assert!(!format!("{creds:?}").contains("p%3Ass"));
    }
}
