//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, MCP
//! 2025-11-25): a `client_id` that is an https URL names a JSON document, served by the
//! client, that holds its metadata.
//!
//! The URL is checked before anything is fetched (https, a path, no dot segments,
//! credentials or fragment, written in normalized form so that "equals the URL exactly"
//! means something), then the host policy applies, then the guarded fetcher. A document is
//! accepted only if its `client_id` is the URL byte for byte and its metadata passes the
//! same rules as a registration, minus shared secrets. Accepted documents are cached for
//! as long as their response's cache headers say (bounded); failures never are.
//!
//! Clients identified this way are never stored: each lookup yields a `ClientRecord` built
//! from the document, public unless it declares `private_key_jwt`.

use serde_json::{json, Map, Value};
use url::Url;
use warden_core::net::host_permitted;
use warden_store::ClientRecord;

use super::fetch::{FetchError, Freshness};
use crate::App;
use warden_core::client_metadata::{normalize, MetadataError, Source};

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Cache lifetime when the response gave none.
pub const DEFAULT_TTL: i64 = 300;
/// Longest a document is cached, whatever its headers say.
pub const MAX_TTL: i64 = 86_400;
/// Most documents cached at once.
pub const MAX_CACHED: usize = 1024;

/// Why a metadata-document client was refused. The message is shown to the client (on
/// the error page or in `error_description`); it never holds document content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// Metadata documents are turned off.
    #[error("client ID metadata documents are not accepted by this server")]
    Disabled,
    /// The URL breaks a rule before any fetch.
    #[error("the client_id URL {0}")]
    Url(&'static str),
    /// The host policy refuses the host.
    #[error("the client_id host is not permitted to serve client metadata")]
    Host,
    /// The fetch failed.
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    /// The document is not acceptable.
    #[error("the client metadata document is invalid: {0}")]
    Document(String),
}

/// Whether `client_id` is meant as a metadata-document URL (registered ids never contain
/// a scheme).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a `client_id` URL before anything is fetched.
///
/// `http` is accepted only for a loopback host, for development and tests; a loopback
/// address is still refused at fetch time unless the config allowlists it.
pub fn parse_client_id_url(client_id: &str) -> Result<Url, CimdError> {
    if client_id.len() > 2048 {
        return Err(CimdError::Url("is too long"));
    }
    if client_id.contains('#') {
        return Err(CimdError::Url("must not contain a fragment"));
    }
    let rest = client_id
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or(CimdError::Url("must be an https URL"))?;
    let path_end = rest.find('?').unwrap_or(rest.len());
    let raw_path = rest[..path_end]
        .find('/')
        .map_or("", |i| &rest[i..path_end]);
    let dot = |s: &str| {
        let s = s.to_ascii_lowercase();
        matches!(s.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    };
    if raw_path.split('/').any(dot) {
        return Err(CimdError::Url("must not contain dot segments"));
    }
    let url = Url::parse(client_id).map_err(|_| CimdError::Url("is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::Url("must not contain credentials"));
    }
    let host = url.host().ok_or(CimdError::Url("must have a host"))?;
    match url.scheme() {
        "https" => {}
        "http" if warden_core::uri::is_loopback_host(&host) => {}
        _ => return Err(CimdError::Url("must be an https URL")),
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err(CimdError::Url("must contain a path"));
    }
    // The document's client_id must equal this URL exactly, so only the form a parser
    // would produce is accepted: no uppercase host, default port or stray escapes.
    if url.as_str() != client_id {
        return Err(CimdError::Url("must be written in normalized form"));
    }
    Ok(url)
}

/// The host a metadata-document client's metadata came from, for the consent page.
pub fn document_host(client: &ClientRecord) -> Option<String> {
    if !is_document_url(&client.client_id) {
        return None;
    }
    Url::parse(&client.client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

/// The client `client_id` names, from the cache or a fresh fetch.
pub async fn resolve(app: &App, client_id: &str) -> Result<ClientRecord, CimdError> {
    let settings = &app.config.registration;
    if !settings.metadata_documents {
        return Err(CimdError::Disabled);
    }
    let url = parse_client_id_url(client_id)?;
    let host = url.host_str().unwrap_or_default();
    if !host_permitted(host, &settings.allow_hosts, &settings.deny_hosts) {
        return Err(CimdError::Host);
    }
    let now = app.clock.now();
    if let Some(rec) = app.directory.documents.get(client_id, now) {
        return Ok(rec);
    }
    let fetched = app
        .directory
        .fetcher
        .get(&url, MAX_DOCUMENT_BYTES, now)
        .await?;
    let record = from_document(
        client_id,
        &fetched.body,
        settings.max_redirect_uris as usize,
        now,
    )?;
    let ttl = match fetched.freshness {
        Freshness::DoNotCache => 0,
        Freshness::For(s) => s.min(MAX_TTL),
        Freshness::Unspecified => DEFAULT_TTL,
    };
    if ttl > 0 {
        app.directory
            .documents
            .insert(client_id.to_owned(), record.clone(), now + ttl, now);
    }
    Ok(record)
}

/// Validates a fetched document and builds the client it describes.
pub fn from_document(
    client_id: &str,
    body: &[u8],
    max_redirect_uris: usize,
    now: i64,
) -> Result<ClientRecord, CimdError> {
    let doc: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| CimdError::Document("not a JSON object".into()))?;
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(CimdError::Document(
            "its client_id does not equal the URL it was fetched from".into(),
        ));
    }
    let n = normalize(&doc, Source::Document, max_redirect_uris).map_err(|e| match e {
        MetadataError::Metadata(d) | MetadataError::RedirectUri(d) => CimdError::Document(d),
    })?;
    let host = Url::parse(client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut metadata = n.to_map();
    metadata.insert(
        "warden".into(),
        json!({ "origin": "metadata_document", "host": host }),
    );
    Ok(ClientRecord {
        client_id: client_id.to_owned(),
        name: n.client_name.clone().unwrap_or_else(|| host.clone()),
        confidential: n.confidential(),
        redirect_uris: n.redirect_uris.clone(),
        grant_types: n.grant_types.clone(),
        // A document never grants itself scopes; users consent per request.
        scopes: Vec::new(),
        token_endpoint_auth_method: n.token_endpoint_auth_method.clone(),
        secrets: Vec::new(),
        metadata: Value::Object(metadata),
        created_at: now,
        updated_at: now,
        last_used_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_url_rules() {
        assert!(parse_client_id_url("https://app.example.com/client.json").is_ok());
        assert!(parse_client_id_url("https://app.example.com:8443/c?v=1").is_ok());
        assert!(parse_client_id_url("http://127.0.0.1:9/c.json").is_ok());
        let refused = [
            ("https://app.example.com", "must contain a path"),
            ("https://app.example.com/", "must contain a path"),
            ("https://app.example.com/a/../c.json", "dot segments"),
            ("https://app.example.com/./c.json", "dot segments"),
            ("https://app.example.com/a/%2E%2E/c.json", "dot segments"),
            ("https://user:pw@app.example.com/c.json", "credentials"),
            ("https://app.example.com/c.json#x", "fragment"),
            ("http://app.example.com/c.json", "https"),
            ("ftp://app.example.com/c.json", "https"),
            ("https://APP.example.com/c.json", "normalized"),
            ("https://app.example.com:443/c.json", "normalized"),
        ];
        for (u, why) in refused {
            let e = parse_client_id_url(u).unwrap_err().to_string();
            assert!(e.contains(why), "{u}: {e}");
        }
    }

    #[test]
    fn documents_must_name_themselves_and_hold_no_secret() {
        let id = "https://app.example.com/c.json";
        let ok = format!(
            r#"{{"client_id":"{id}","client_name":"App","redirect_uris":["http://127.0.0.1:3000/cb"]}}"#
        );
        let rec = from_document(id, ok.as_bytes(), 10, 0).unwrap();
        assert!(!rec.confidential);
        assert_eq!(rec.token_endpoint_auth_method, "none");
        assert_eq!(rec.name, "App");
        assert!(rec.scopes.is_empty());
        let other = r#"{"client_id":"https://evil.example.com/c.json","redirect_uris":["http://127.0.0.1/cb"]}"#;
        assert!(from_document(id, other.as_bytes(), 10, 0).is_err());
        let secret = format!(
            r#"{{"client_id":"{id}","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic"}}"#
        );
        assert!(from_document(id, secret.as_bytes(), 10, 0).is_err());
        assert!(from_document(id, b"[1,2]", 10, 0).is_err());
        assert!(from_document(id, b"not json", 10, 0).is_err());
    }
}
