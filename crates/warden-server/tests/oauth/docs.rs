//! A local HTTP server playing a client's web host: it serves client metadata documents
//! and JWKS from 127.0.0.1, and counts how often each path is fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One canned response.
#[derive(Clone)]
pub struct Served {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Served {
    pub fn json(body: impl Into<String>) -> Self {
        Served {
            status: 200,
            body: body.into(),
            headers: vec![("content-type", "application/json".into())],
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct Docs {
    served: Mutex<HashMap<String, Served>>,
    hits: Mutex<HashMap<String, usize>>,
}

pub struct DocServer {
    pub base: String,
    docs: Arc<Docs>,
}

async fn answer(State(docs): State<Arc<Docs>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *docs.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let served = docs.served.lock().unwrap().get(&path).cloned();
    let Some(s) = served else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(s.delay).await;
    let mut resp = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
    for (k, v) in s.headers {
        resp.headers_mut().insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

impl DocServer {
    pub async fn start() -> DocServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let docs = Arc::new(Docs::default());
        let app = Router::new().fallback(answer).with_state(Arc::clone(&docs));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        DocServer { base, docs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn serve(&self, path: &str, s: Served) {
        self.docs.served.lock().unwrap().insert(path.into(), s);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.docs
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// A valid public-client metadata document for `path` on this server.
    pub fn client_document(&self, path: &str, redirect: &str) -> String {
        serde_json::json!({
            "client_id": self.url(path),
            "client_name": "Document Client",
            "client_uri": "https://client.example.com",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        .to_string()
    }
}

/// Config that lets the fetcher reach the local document server.
pub const ALLOW_LOOPBACK: (&str, &str) =
    ("WARDEN_REGISTRATION__FETCH_ALLOW_ADDRESSES", "127.0.0.1");
/// A one-second fetch deadline, so that the slow-host test is quick.
pub const FAST_TIMEOUT: (&str, &str) = ("WARDEN_REGISTRATION__FETCH_TIMEOUT", "1");
