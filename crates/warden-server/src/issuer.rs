//! Talking to trusted issuers: the organisation's identity providers and the external
//! authorization servers of registered servers.
//!
//! Fetches to an issuer are trusted configuration, so they are not held to the address
//! policy of client-chosen URLs, but they are bounded in time ([`IDP_TIMEOUT`]) and size
//! ([`MAX_IDP_DOCUMENT`]), never follow redirects, and go over `https://` (plain `http://`
//! only to a loopback host, [`check_idp_url`]), verified against the public web PKI or the
//! registration's own trust anchors. The gateway's external-token checks and federated
//! sign-in share these functions and the signing-key cache ([`keys`]).

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use serde_json::Value;

use crate::gateway::tls::TrustRoots;
use crate::App;

pub mod keys;

/// What Warden keeps about trusted issuers: their signing keys.
#[derive(Default)]
pub struct Issuers {
    /// Signing keys, per issuer.
    pub keys: keys::JwksCache,
}

/// Time allowed for one exchange with an issuer: connect, TLS, answer and body.
pub const IDP_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest document read from an issuer.
pub const MAX_IDP_DOCUMENT: usize = 256 * 1024;

/// An issuer's answer, read whole.
pub struct IdpAnswer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_IDP_DOCUMENT`].
    pub body: Bytes,
}

/// Sends `request` to the issuer and reads the answer whole, within [`IDP_TIMEOUT`] and
/// [`MAX_IDP_DOCUMENT`]. The error says why, without any request material.
pub async fn exchange(
    app: &App,
    roots: Option<&TrustRoots>,
    request: Request<Body>,
) -> Result<IdpAnswer, &'static str> {
    let work = async {
        let response = app
            .gateway
            .upstream
            .send(request, IDP_TIMEOUT, roots)
            .await
            .map_err(|_| "the issuer is unreachable")?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_IDP_DOCUMENT)
            .collect()
            .await
            .map_err(|_| "the issuer's answer is too large or broken")?
            .to_bytes();
        Ok(IdpAnswer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(IDP_TIMEOUT, work)
        .await
        .map_err(|_| "the issuer did not answer in time")?
}

/// Checks an issuer-side URL: absolute, `https://` (or `http://` to a loopback host), no
/// credentials or fragment.
pub fn check_idp_url(text: &str, what: &str) -> Result<Uri, String> {
    let url =
        url::Url::parse(text).map_err(|_| format!("{what} {text:?} is not an absolute URL"))?;
    let host = url
        .host()
        .ok_or_else(|| format!("{what} {text:?} has no host"))?;
    let ok_scheme = match url.scheme() {
        "https" => true,
        "http" => warden_core::uri::is_loopback_host(&host),
        _ => false,
    };
    if !ok_scheme {
        return Err(format!(
            "{what} must use https (http only for a loopback host)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!("{what} must not carry credentials or a fragment"));
    }
    text.parse::<Uri>()
        .map_err(|_| format!("{what} {text:?} is not a valid URI"))
}

/// `GET`s `uri` from the issuer, asking for JSON.
pub async fn get(
    app: &App,
    roots: Option<&TrustRoots>,
    uri: Uri,
) -> Result<IdpAnswer, &'static str> {
    let request = Request::get(uri)
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Body::empty())
        .map_err(|_| "invalid issuer URL")?;
    exchange(app, roots, request).await
}

/// `GET`s `uri` and parses a `200` answer as a JSON document.
pub async fn get_json(
    app: &App,
    roots: Option<&TrustRoots>,
    uri: Uri,
) -> Result<(Value, HeaderMap), &'static str> {
    let answer = get(app, roots, uri).await?;
    if answer.status != StatusCode::OK {
        return Err("the issuer answered an error");
    }
    let doc =
        serde_json::from_slice(&answer.body).map_err(|_| "the issuer's answer is not JSON")?;
    Ok((doc, answer.headers))
}

/// OpenID Connect Discovery (appended to the issuer), then RFC 8414 §3.1 (inserted
/// between host and path). The status probe tries the same documents.
pub fn discovery_urls(issuer: &str) -> Vec<String> {
    let mut urls = vec![format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )];
    if let Ok(url) = url::Url::parse(issuer) {
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_urls_are_https_or_loopback() {
        assert!(check_idp_url("https://idp.example/realms/x", "issuer").is_ok());
        assert!(check_idp_url("http://127.0.0.1:8080/x", "issuer").is_ok());
        assert!(check_idp_url("http://idp.example/x", "issuer").is_err());
        assert!(check_idp_url("https://u:p@idp.example/x", "issuer").is_err());
        assert!(check_idp_url("idp.example", "issuer").is_err());
    }

    #[test]
    fn discovery_urls_follow_both_specs() {
        assert_eq!(
            discovery_urls("https://idp.example/realms/acme"),
            [
                "https://idp.example/realms/acme/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example/realms/acme/"),
            [
                "https://idp.example/realms/acme/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example"),
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server"
            ]
        );
    }
}
