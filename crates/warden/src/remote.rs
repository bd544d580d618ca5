//! The admin API client behind `--server URL`: one client-credentials token per run,
//! then JSON calls that decode into the same wire types the local mode prints.
//!
//! It speaks https (rustls with ring; the public web roots, or only the CAs of
//! `--ca-file`), and plain http to loopback only: the admin secret and token cross this
//! connection.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use warden_core::secret::SecretString;
use warden_proto::admin::{PolicyApplied, PolicyProblem};
use warden_proto::oauth::{ErrorBody, TokenResponse};

/// How long one admin call may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to a running Warden's admin API, holding an admin access token.
pub struct Remote {
    http: reqwest::Client,
    api: url::Url,
    token: SecretString,
}

// === impl Remote ===

impl Remote {
    /// Gets an admin token from `server` with client credentials.
    ///
    /// The token is requested for the resource that the server's RFC 9728 metadata names
    /// (so a server reached through a tunnel or another address still gets the right
    /// `resource`), falling back to `{server}/admin`.
    pub async fn connect(
        server: &str,
        ca_file: Option<&Path>,
        client_id: &str,
        client_secret: &SecretString,
    ) -> anyhow::Result<Remote> {
        let base = check_server_url(server)?;
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("warden-cli/", env!("CARGO_PKG_VERSION")))
            // The admin API never redirects; following one could carry the token away.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(base.starts_with("https://"));
        if let Some(path) = ca_file {
            builder = builder.tls_built_in_root_certs(false);
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        let resource = discover_resource(&http, &base)
            .await
            .unwrap_or_else(|| format!("{base}/admin"));
        // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let resp = http
            .post(format!("{base}/oauth/token"))
            .basic_auth(enc(client_id), Some(enc(client_secret.expose())))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource.as_str()),
            ])
            .send()
            .await
            .map_err(|e| unreachable(&base, &e))?;
        if !resp.status().is_success() {
            let why = error_text(resp).await;
            bail!("cannot get an admin token from {base}: {why}");
        }
        let token: TokenResponse = resp
            .json()
            .await
            .context("the token endpoint's answer is not a token response")?;
        let api = url::Url::parse(&format!("{base}/admin/v1"))
            .map_err(|_| anyhow!("{base} is not a usable URL"))?;
        Ok(Remote {
            http,
            api,
            token: SecretString::new(token.access_token),
        })
    }

    /// The URL of the API path made of `segments`, each percent-encoded.
    fn url(&self, segments: &[&str]) -> anyhow::Result<url::Url> {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot take a path", self.api))?
            .extend(segments);
        Ok(url)
    }

    /// `GET` the path, decoding the answer as `T`.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(segments)?)).await
    }

    /// `GET` the path with query parameters.
    pub async fn get_query<T: DeserializeOwned, Q: Serialize>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(segments)?).query(query))
            .await
    }

    /// `POST` a JSON body to the path.
    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(segments)?).json(body))
            .await
    }

    /// `PATCH` a JSON body to the path.
    pub async fn patch<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.patch(self.url(segments)?).json(body))
            .await
    }

    /// `DELETE` the path.
    pub async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> anyhow::Result<T> {
        self.send(self.http.delete(self.url(segments)?)).await
    }

    /// `DELETE` the path with query parameters.
    pub async fn delete_query<T: DeserializeOwned, Q: Serialize>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> anyhow::Result<T> {
        self.send(self.http.delete(self.url(segments)?).query(query))
            .await
    }

    /// `PUT /policy`: applies (or, on a dry run, checks) a policy document. A refused
    /// document gives its problems, each with its line.
    pub async fn apply_policy(
        &self,
        source: &str,
        dry_run: bool,
    ) -> anyhow::Result<Result<PolicyApplied, Vec<PolicyProblem>>> {
        let req = self
            .http
            .put(self.url(&["policy"])?)
            .query(&[("dry_run", dry_run)])
            .header(reqwest::header::CONTENT_TYPE, "application/toml")
            .body(source.to_owned());
        let resp = self.call(req).await?;
        if resp.status() == reqwest::StatusCode::BAD_REQUEST {
            let body: serde_json::Value = resp
                .json()
                .await
                .context("the admin API's refusal is not JSON")?;
            if let Some(errors) = body.get("errors") {
                let problems: Vec<PolicyProblem> = serde_json::from_value(errors.clone())
                    .context("the admin API's policy errors do not have the expected shape")?;
                return Ok(Err(problems));
            }
            let text = body
                .get("error_description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("invalid request");
            bail!("{text} (invalid_request, HTTP 400)");
        }
        Self::decode(resp).await.map(Ok)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        req.bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| unreachable(self.api.as_str(), &e))
    }

    async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
        if !resp.status().is_success() {
            bail!("{}", error_text(resp).await);
        }
        resp.json()
            .await
            .context("the admin API's answer does not have the expected shape (is the server the same Warden version?)")
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        Self::decode(self.call(req).await?).await
    }
}

/// The certificates of a `--ca-file` PEM bundle.
fn read_ca_file(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("--ca-file {}: cannot read", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| anyhow!("--ca-file {}: not a PEM certificate bundle", path.display()))?;
    if certs.is_empty() {
        bail!(
            "--ca-file {}: no PEM certificate in the file",
            path.display()
        );
    }
    Ok(certs)
}

/// Checks `--server`: the secret goes over this connection, so it must be https, or
/// plain http on loopback only (a tunnel, a port-forward, a sidecar).
pub fn check_server_url(text: &str) -> anyhow::Result<String> {
    let url =
        url::Url::parse(text).map_err(|_| anyhow!("--server {text:?} is not an absolute URL"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        bail!("--server must be a base URL without credentials, query or fragment");
    }
    let loopback = url
        .host()
        .is_some_and(|h| warden_core::uri::is_loopback_host(&h));
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        "http" => bail!(
            "--server {text}: refusing to send admin credentials over plain HTTP to a host that is not loopback; use https, or an SSH tunnel or port-forward on 127.0.0.1"
        ),
        _ => bail!("--server must be an https URL (or http on loopback)"),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The admin resource named by the server's RFC 9728 metadata, if it serves one.
async fn discover_resource(http: &reqwest::Client, base: &str) -> Option<String> {
    let resp = http
        .get(format!("{base}/.well-known/oauth-protected-resource/admin"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let doc: serde_json::Value = resp.json().await.ok()?;
    doc.get("resource")?.as_str().map(str::to_owned)
}

fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        // A TLS failure (an unknown CA, a name mismatch) shows up as a connect error:
        // say which, without the library's whole chain.
        match tls_reason(e) {
            Some(r) => format!("cannot connect: TLS: {r}"),
            None => "cannot connect".to_owned(),
        }
    } else {
        "request failed".to_owned()
    };
    anyhow!("{base}: {why}")
}

/// The TLS reason behind a connect error, if rustls gave one (`invalid peer certificate:
/// UnknownIssuer`, …). Certificate errors carry no secret.
fn tls_reason(e: &reqwest::Error) -> Option<String> {
    std::error::Error::source(e).and_then(find_tls)
}

fn find_tls(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    // An io::Error's source() skips the error it wraps: look inside it first.
    let wrapped = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .and_then(|inner| find_tls(inner));
    wrapped.or_else(|| e.source().and_then(find_tls))
}

/// A refusal as text: the error description, then the code and status.
async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(b) => match b.error_description {
            Some(d) => format!("{d} ({}, HTTP {})", b.error, status.as_u16()),
            None => format!("{} (HTTP {})", b.error, status.as_u16()),
        },
        Err(_) => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_loopback_http() {
        assert_eq!(
            check_server_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_server_url("http://localhost:8080/tenant").unwrap(),
            "http://localhost:8080/tenant"
        );
        assert!(check_server_url("http://10.0.0.5:8080")
            .unwrap_err()
            .to_string()
            .contains("plain HTTP"));
        assert_eq!(
            check_server_url("https://auth.example.com/").unwrap(),
            "https://auth.example.com"
        );
        assert!(check_server_url("ftp://auth.example.com").is_err());
        assert!(check_server_url("https://u:p@auth.example.com").is_err());
        assert!(check_server_url("http://u:p@127.0.0.1").is_err());
        assert!(check_server_url("not a url").is_err());
    }
}
