//! Admin API helpers: admin clients, their tokens, and JSON calls.

use axum::body::Body;
use axum::http::{header, Method, Request};
use serde_json::Value;
use warden_proto::admin::NewClient;

use crate::support::*;

pub const ADMIN: &str = "http://127.0.0.1:8080/admin";
pub const METADATA: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/admin";

/// A client-credentials client registered with `scopes`; returns (id, secret).
pub async fn admin_client(h: &H, scopes: &[&str]) -> (String, String) {
    let new = NewClient {
        name: format!("admin {}", scopes.join(" ")),
        confidential: true,
        grant_types: vec!["client_credentials".into()],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let created =
        warden_server::admin::clients::insert(&h.store, &h.app.secrets, &new, h.clock_now())
            .await
            .unwrap();
    (created.client.client_id, created.client_secret.unwrap())
}

/// A client-credentials token for `resource`.
pub async fn token_for(h: &H, (id, secret): (&str, &str), resource: &str) -> String {
    let r = h
        .token(
            &[("grant_type", "client_credentials"), ("resource", resource)],
            Some((id, secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// An admin token of a fresh client registered with `scopes`.
pub async fn admin_token(h: &H, scopes: &[&str]) -> String {
    let (id, secret) = admin_client(h, scopes).await;
    token_for(h, (&id, &secret), ADMIN).await
}

/// Calls the admin API.
pub async fn call(
    h: &H,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    h.send(req.body(body).unwrap()).await
}

pub async fn get(h: &H, path: &str, token: &str) -> Resp {
    call(h, Method::GET, path, Some(token), None).await
}

pub async fn post(h: &H, path: &str, token: &str, body: Value) -> Resp {
    call(h, Method::POST, path, Some(token), Some(body)).await
}

pub async fn patch(h: &H, path: &str, token: &str, body: Value) -> Resp {
    call(h, Method::PATCH, path, Some(token), Some(body)).await
}

pub async fn delete(h: &H, path: &str, token: &str) -> Resp {
    call(h, Method::DELETE, path, Some(token), None).await
}

/// The `WWW-Authenticate` header.
pub fn challenge(r: &Resp) -> String {
    r.headers
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

impl H {
    pub fn clock_now(&self) -> i64 {
        warden_core::clock::Clock::now(&self.clock)
    }
}
