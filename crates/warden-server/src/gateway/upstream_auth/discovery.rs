//! Finding an upstream's authorization server, the way an MCP client does (RFC 9728, then
//! RFC 8414 or OpenID Connect Discovery), through the guarded fetcher.
//!
//! 1. The upstream's protected-resource metadata: the `resource_metadata` of the
//!    `WWW-Authenticate` challenge a request without credentials gets, else
//!    `/.well-known/oauth-protected-resource{path}` at the upstream's origin. Its
//!    `resource` must be the upstream URL's canonical form: metadata that names another
//!    resource is refused (RFC 9728 §3.3), so a token is never asked for what the
//!    upstream is not.
//! 2. The metadata of its first `authorization_servers` entry (or of the configured
//!    `upstream_issuer`, which skips step 1): `issuer` must be exactly the one asked
//!    about (RFC 8414 §3.3), and the `token_endpoint` is used as it is.
//!
//! The result is cached per server for at most [`MAX_DISCOVERY_TTL`].

use std::sync::Arc;

use axum::http::header;
use serde_json::Value;
use url::Url;
use warden_core::server_settings::UpstreamClient;
use warden_core::uri::CanonicalUri;

use super::CredentialError;
use crate::oauth::fetch::{FetchError, Freshness, Outgoing};
use crate::App;

/// Longest a discovered authorization server is trusted without asking again, seconds.
pub const MAX_DISCOVERY_TTL: i64 = 3600;
/// How long it is trusted when the documents say nothing, seconds.
const DEFAULT_DISCOVERY_TTL: i64 = 300;
/// Shortest, even when a document asks not to be cached: discovery is not repeated per
/// request.
const MIN_DISCOVERY_TTL: i64 = 30;
/// Largest metadata document read.
const MAX_DOCUMENT: usize = 64 * 1024;

/// What discovery found.
#[derive(Debug)]
pub struct Discovered {
    /// The authorization server's issuer, checked against its metadata.
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: Url,
    /// The upstream's canonical URI: the RFC 8707 `resource` of token requests.
    pub resource: String,
}

/// The authorization server of `server`'s upstream (`upstream` its URL, `resource` its
/// canonical form), from the cache or discovered.
pub async fn authorization_server(
    app: &App,
    server: &str,
    upstream: &Url,
    resource: &str,
    client: &UpstreamClient,
    now: i64,
) -> Result<Arc<Discovered>, CredentialError> {
    let cache = &app.gateway.upstream_auth.discovered;
    let key = format!(
        "{server}\n{upstream}\n{}",
        client.issuer.as_deref().unwrap_or_default()
    );
    if let Some(found) = cache.get(&key, now) {
        return Ok(found);
    }
    let (issuer, prm_ttl) = match &client.issuer {
        Some(issuer) => (issuer.clone(), None),
        None => {
            let (issuer, ttl) = from_resource_metadata(app, upstream, resource, now).await?;
            (issuer, Some(ttl))
        }
    };
    let (token_endpoint, as_ttl) = as_metadata(app, &issuer, now).await?;
    let ttl = prm_ttl.map_or(as_ttl, |t: i64| t.min(as_ttl));
    let found = Arc::new(Discovered {
        issuer,
        token_endpoint,
        resource: resource.to_owned(),
    });
    cache.insert(key, Arc::clone(&found), now + ttl, now);
    Ok(found)
}

/// Step 1: the upstream's protected-resource metadata, its `resource` checked; the first
/// authorization server it names, and how long the document may be cached.
async fn from_resource_metadata(
    app: &App,
    upstream: &Url,
    resource: &str,
    now: i64,
) -> Result<(String, i64), CredentialError> {
    let url = match challenged_metadata_url(app, upstream).await {
        Some(url) => url,
        None => well_known_metadata_url(upstream)?,
    };
    let (doc, ttl) = json_document(app, &url, "the upstream's resource metadata", now).await?;
    let named = doc
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let same = CanonicalUri::parse(named).is_ok_and(|c| c.as_str() == resource);
    if !same {
        return Err(CredentialError::Refused(format!(
            "the upstream's resource metadata names resource {:?}, not {resource}",
            cut(named)
        )));
    }
    let issuer = doc
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CredentialError::Refused(
                "the upstream's resource metadata names no authorization server".into(),
            )
        })?;
    Ok((issuer.to_owned(), ttl))
}

/// The `resource_metadata` of the challenge the upstream sends a request without
/// credentials, if it sends one (RFC 9728 §5.1).
async fn challenged_metadata_url(app: &App, upstream: &Url) -> Option<Url> {
    let answer = app
        .directory
        .fetcher
        .send(Outgoing::get(upstream), MAX_DOCUMENT)
        .await
        .ok()?;
    if answer.status != axum::http::StatusCode::UNAUTHORIZED {
        return None;
    }
    answer
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| challenge_param(v, "resource_metadata"))
        .and_then(|u| Url::parse(&u).ok())
}

/// `{origin}/.well-known/oauth-protected-resource{path}` (RFC 9728 §3.1).
fn well_known_metadata_url(upstream: &Url) -> Result<Url, CredentialError> {
    let origin = upstream.origin().ascii_serialization();
    let path = upstream.path().trim_end_matches('/');
    Url::parse(&format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    ))
    .map_err(|_| CredentialError::Refused("the upstream URL has no metadata URL".into()))
}

/// Step 2: the authorization server's metadata, `issuer` checked exactly; its token
/// endpoint and how long the document may be cached.
async fn as_metadata(app: &App, issuer: &str, now: i64) -> Result<(Url, i64), CredentialError> {
    let mut last = CredentialError::Refused("the authorization server has no metadata".into());
    for candidate in crate::issuer::discovery_urls(issuer) {
        let Ok(url) = Url::parse(&candidate) else {
            continue;
        };
        let (doc, ttl) =
            match json_document(app, &url, "the authorization server's metadata", now).await {
                Ok(found) => found,
                // A missing document may be found at the other well-known URL.
                Err(e @ CredentialError::Refused(_)) => {
                    last = e;
                    continue;
                }
                Err(e @ (CredentialError::Unavailable(_) | CredentialError::Internal(_))) => {
                    return Err(e)
                }
            };
        let named = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if named != issuer {
            return Err(CredentialError::Refused(format!(
                "the authorization server's metadata names issuer {:?}, not {issuer}",
                cut(named)
            )));
        }
        let token_endpoint = doc
            .get("token_endpoint")
            .and_then(Value::as_str)
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| {
                CredentialError::Refused(
                    "the authorization server's metadata has no valid token_endpoint".into(),
                )
            })?;
        return Ok((token_endpoint, ttl));
    }
    Err(last)
}

/// GETs `url` as a JSON object; how long it may be cached, within the bounds.
async fn json_document(
    app: &App,
    url: &Url,
    what: &str,
    now: i64,
) -> Result<(Value, i64), CredentialError> {
    let fetched = app
        .directory
        .fetcher
        .get(url, MAX_DOCUMENT, now)
        .await
        .map_err(|e| fetch_failure(&e, what))?;
    let doc: Value = serde_json::from_slice(&fetched.body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| CredentialError::Refused(format!("{what} is not a JSON object")))?;
    let ttl = match fetched.freshness {
        Freshness::For(n) => n.clamp(MIN_DISCOVERY_TTL, MAX_DISCOVERY_TTL),
        Freshness::DoNotCache => MIN_DISCOVERY_TTL,
        Freshness::Unspecified => DEFAULT_DISCOVERY_TTL,
    };
    Ok((doc, ttl))
}

/// A failed fetch: a host that cannot be reached (or fails) now may answer later; a
/// refused address, a redirect or a 4xx is configuration, which waiting does not fix.
pub fn fetch_failure(e: &FetchError, what: &str) -> CredentialError {
    let detail = format!("{what}: {e}");
    match e {
        FetchError::Resolve | FetchError::Connect | FetchError::Timeout | FetchError::Protocol => {
            CredentialError::Unavailable(detail)
        }
        FetchError::Status(s) if *s >= 500 || *s == 429 => CredentialError::Unavailable(detail),
        FetchError::Scheme
        | FetchError::ForbiddenAddress
        | FetchError::Tls
        | FetchError::Redirect
        | FetchError::Status(_)
        | FetchError::TooLarge(_) => CredentialError::Refused(detail),
    }
}

/// The value of auth-param `name` in a `WWW-Authenticate` value (RFC 9110 §11.2), as a
/// token or a quoted string; `None` if absent or malformed.
pub fn challenge_param(value: &str, name: &str) -> Option<String> {
    let mut rest = value;
    while let Some(at) = find_ascii_ci(rest, name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if before.is_some_and(|c| !matches!(c, ' ' | ',' | '\t')) {
            continue;
        }
        let Some(after) = after.strip_prefix('=') else {
            continue;
        };
        let after = after.trim_start();
        if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => return Some(out),
                    '\\' => out.push(chars.next()?),
                    c => out.push(c),
                }
            }
            return None;
        }
        let token: String = after
            .chars()
            .take_while(|c| !matches!(c, ',' | ' ' | '\t'))
            .collect();
        return (!token.is_empty()).then_some(token);
    }
    None
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// At most 200 characters of a value a remote document chose, for a log line.
fn cut(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_params_are_read_as_tokens_or_quoted_strings() {
        let v = r#"Bearer error="invalid_token", resource_metadata="https://u.example/.well-known/oauth-protected-resource/mcp", scope="a b""#;
        assert_eq!(
            challenge_param(v, "resource_metadata").as_deref(),
            Some("https://u.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenge_param(v, "scope").as_deref(), Some("a b"));
        assert_eq!(
            challenge_param(
                "Bearer Resource_Metadata=https://x/y, a=b",
                "resource_metadata"
            )
            .as_deref(),
            Some("https://x/y")
        );
        // Not a parameter of that name: a longer name that ends with it.
        assert_eq!(
            challenge_param(
                r#"Bearer x_resource_metadata="https://evil""#,
                "resource_metadata"
            ),
            None
        );
        assert_eq!(
            challenge_param(r#"Bearer resource_metadata="open"#, "resource_metadata"),
            None
        );
        assert_eq!(challenge_param("Bearer", "resource_metadata"), None);
        assert_eq!(
            challenge_param(r#"Bearer resource_metadata="a\"b""#, "resource_metadata").as_deref(),
            Some("a\"b")
        );
    }

    #[test]
    fn the_well_known_url_keeps_the_upstream_path() {
        let u = Url::parse("https://u.example/mcp/demo/").unwrap();
        assert_eq!(
            well_known_metadata_url(&u).unwrap().as_str(),
            "https://u.example/.well-known/oauth-protected-resource/mcp/demo"
        );
        let u = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            well_known_metadata_url(&u).unwrap().as_str(),
            "http://127.0.0.1:9/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn fetch_failures_are_told_apart() {
        let unavailable = |e| matches!(fetch_failure(&e, "x"), CredentialError::Unavailable(_));
        assert!(unavailable(FetchError::Connect));
        assert!(unavailable(FetchError::Timeout));
        assert!(unavailable(FetchError::Status(503)));
        assert!(!unavailable(FetchError::ForbiddenAddress));
        assert!(!unavailable(FetchError::Status(404)));
        assert!(!unavailable(FetchError::Redirect));
    }
}
