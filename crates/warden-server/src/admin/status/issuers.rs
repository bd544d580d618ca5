//! Whether the external issuers that servers trust can be reached, for `status`.
//!
//! The probe does what the gateway needs to check a token, with a short deadline: for a
//! JWKS-checked issuer, fetch its metadata (OpenID Connect Discovery, then RFC 8414) and
//! the JWKS it names (or the configured `jwks_uri`); for an introspected one, reach the
//! introspection endpoint (any HTTP answer will do: no credential is sent). It goes
//! through the gateway's own client, with the server's `issuer_ca`, so it sees what the
//! gateway sees.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, Uri};
use serde_json::Value;
use warden_store::ServerRecord;

use crate::gateway::external::{Check, ExternalIssuer};
use crate::issuer::discovery_urls;
use crate::issuer::exchange;
use crate::App;

/// How long `status` waits for one issuer, all its requests together.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `Ok` when `record`'s external `issuer` answers as the gateway needs; else why not.
pub async fn probe(app: &App, issuer: &str, record: &ServerRecord) -> Result<(), String> {
    let ext = ExternalIssuer::compile(issuer, record, &app.sealer)
        .map_err(|e| format!("its registration cannot be used: {e}"))?;
    let work = async {
        match &ext.check {
            Check::Jwks(settings) => {
                let jwks_uri = match &settings.jwks_uri {
                    Some(uri) => uri.clone(),
                    None => discover(app, &ext).await?,
                };
                let body = fetch(app, &ext, Method::GET, jwks_uri, true).await?;
                let keys = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("keys").and_then(Value::as_array).map(Vec::len));
                match keys {
                    Some(n) if n > 0 => Ok(()),
                    _ => Err("its JWKS holds no keys".to_owned()),
                }
            }
            Check::Introspection(settings) => {
                fetch(app, &ext, Method::GET, settings.endpoint.clone(), false)
                    .await
                    .map(drop)
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {}s", PROBE_TIMEOUT.as_secs()))?
}

/// The `jwks_uri` of the issuer's metadata document.
async fn discover(app: &App, ext: &ExternalIssuer) -> Result<Uri, String> {
    let mut last = "it publishes no metadata document".to_owned();
    for url in discovery_urls(&ext.issuer) {
        let Ok(uri) = url.parse::<Uri>() else {
            continue;
        };
        let body = match fetch(app, ext, Method::GET, uri, true).await {
            Ok(body) => body,
            Err(why) => {
                last = why;
                continue;
            }
        };
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|_| "its metadata document is not JSON".to_owned())?;
        return doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .and_then(|u| u.parse::<Uri>().ok())
            .ok_or_else(|| "its metadata document names no usable jwks_uri".to_owned());
    }
    Err(last)
}

/// One request to the issuer; with `success`, anything but a 2xx is a failure.
async fn fetch(
    app: &App,
    ext: &ExternalIssuer,
    method: Method,
    uri: Uri,
    success: bool,
) -> Result<bytes::Bytes, String> {
    let shown = uri.to_string();
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Body::empty())
        .map_err(|_| format!("{shown} is not a usable URL"))?;
    let answer = exchange(app, ext.roots.as_ref(), request)
        .await
        .map_err(|why| format!("{shown}: {why}"))?;
    if success && !answer.status.is_success() {
        return Err(format!("{shown} answered HTTP {}", answer.status.as_u16()));
    }
    Ok(answer.body)
}
