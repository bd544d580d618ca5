//! The admin API: JSON over HTTP under `/admin/v1`, described by the OpenAPI document
//! at `/admin/v1/openapi.json`, protected by Warden's own access tokens.
//!
//! The admin API is itself a protected resource: a built-in server named `admin` whose
//! canonical URI is `{public_url}/admin`, with the scopes `admin:read` (GET) and
//! `admin:write` (every change). [`ensure_resource`] keeps that registration in step with
//! the config. Only client-credentials tokens of clients still registered with the scope
//! are accepted (see [`auth`]).
//!
//! Each operation is a function on `&App` that validates, changes the store and awaits
//! its audit record. The HTTP handlers are thin wrappers around them, and the local CLI
//! calls the very same functions, so both modes validate, refuse and audit alike.

use std::borrow::Cow;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tower_http::set_header::SetResponseHeaderLayer;
use warden_core::config::Config;
use warden_store::{ServerRecord, ServerStore, Store, StoreError, ToolGroup};

use crate::audit::Event;
use crate::App;

pub mod auth;
pub mod clients;
pub mod consents;
pub mod error;
pub mod events;
pub mod idps;
pub mod keys;
pub mod openapi;
pub mod policy;
pub mod servers;
pub mod status;
pub mod users;

pub use error::AdminError;

pub use crate::builtin::{is_builtin, ADMIN_SERVER};
/// Lets a client read: every `GET`.
pub const SCOPE_READ: &str = "admin:read";
/// Lets a client change anything (and read: a writer could grant itself read anyway).
pub const SCOPE_WRITE: &str = "admin:write";
/// The built-in server's upstream: not a URL, since nothing is proxied to it.
pub const BUILTIN_UPSTREAM: &str = "builtin:admin";
/// The path prefix of every admin route.
pub const PREFIX: &str = "/admin/v1";

/// Who made a change, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A client holding an admin access token (the admin API).
    Client(String),
    /// Someone with the data dir and master key (the local CLI).
    Local,
}

// === impl Actor ===

impl Actor {
    fn label(&self) -> String {
        match self {
            Actor::Client(id) => format!("client:{id}"),
            Actor::Local => "local".to_owned(),
        }
    }
}

/// The admin resource's canonical URI: `{public_url}/admin`.
pub fn resource_uri(config: &Config) -> String {
    format!("{}/admin", config.public_url)
}

/// Where the admin resource's RFC 9728 metadata lives: the well-known prefix inserted
/// before the resource's path.
pub fn resource_metadata_url(config: &Config) -> String {
    let path = warden_core::uri::issuer_path(&config.public_url);
    let origin = config
        .public_url
        .strip_suffix(path.as_str())
        .unwrap_or(&config.public_url);
    format!("{origin}/.well-known/oauth-protected-resource{path}/admin")
}

fn builtin_record(config: &Config, now: i64) -> ServerRecord {
    let group = |scope: &str| ToolGroup {
        scope: scope.to_owned(),
        tools: Vec::new(),
    };
    ServerRecord {
        name: ADMIN_SERVER.to_owned(),
        canonical_uri: resource_uri(config),
        upstream: BUILTIN_UPSTREAM.to_owned(),
        tool_groups: vec![group(SCOPE_READ), group(SCOPE_WRITE)],
        token_format: "jwt".to_owned(),
        access_token_ttl_secs: config.tokens.access_token_ttl,
        leeway_secs: config.gateway.leeway,
        issuer: None,
        settings: json!({ "builtin": crate::builtin::BUILTIN_MARK }),
        created_at: now,
        updated_at: now,
    }
}

/// Registers the admin resource, or brings its canonical URI, token lifetime and leeway
/// in step with the config. Refuses (and changes nothing) when another server holds the
/// name `admin` or the admin canonical URI.
pub async fn ensure_resource(
    store: &Store,
    config: &Config,
    now: i64,
) -> Result<ServerRecord, AdminError> {
    let want = builtin_record(config, now);
    if let Some(mut have) = ServerStore::get(store, ADMIN_SERVER).await? {
        if !is_builtin(&have) {
            return Err(AdminError::Conflict(
                "a server named `admin` is registered, but the name is reserved for the admin API: remove it and register it under another name".into(),
            ));
        }
        let stale = have.canonical_uri != want.canonical_uri
            || have.access_token_ttl_secs != want.access_token_ttl_secs
            || have.leeway_secs != want.leeway_secs
            || have.tool_groups != want.tool_groups;
        if stale {
            have.canonical_uri = want.canonical_uri;
            have.access_token_ttl_secs = want.access_token_ttl_secs;
            have.leeway_secs = want.leeway_secs;
            have.tool_groups = want.tool_groups;
            have.updated_at = now;
            ServerStore::update(store, &have)
                .await
                .map_err(|e| reserved_uri_conflict(e, &have.canonical_uri))?;
        }
        return Ok(have);
    }
    match ServerStore::create(store, &want).await {
        Ok(()) => Ok(want),
        // Another replica registered it first.
        Err(StoreError::Conflict(what)) if what == "server name" => {
            match ServerStore::get(store, ADMIN_SERVER).await? {
                Some(rec) if is_builtin(&rec) => Ok(rec),
                _ => Err(AdminError::Conflict("the name `admin` is taken".into())),
            }
        }
        Err(e) => Err(reserved_uri_conflict(e, &want.canonical_uri)),
    }
}

fn reserved_uri_conflict(e: StoreError, uri: &str) -> AdminError {
    match e {
        StoreError::Conflict(_) => AdminError::Conflict(
            format!("another server is registered with {uri}, which is reserved for the admin API: remove it").into(),
        ),
        other => AdminError::Store(other),
    }
}

/// The admin routes: the protected API and its two public documents.
pub fn routes(app: &App) -> Router<App> {
    let api = Router::new()
        .merge(servers::routes())
        .merge(clients::routes())
        .merge(users::routes())
        .merge(idps::routes())
        .merge(consents::routes())
        .merge(policy::routes())
        .merge(keys::routes())
        .merge(events::routes())
        .merge(status::routes())
        // Only matched routes require a token: an unknown path stays a plain 404.
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ));
    let path = warden_core::uri::issuer_path(&app.config.public_url);
    let mut public = Router::new()
        .route(&format!("{PREFIX}/openapi.json"), get(openapi::document))
        .route(
            "/.well-known/oauth-protected-resource/admin",
            get(auth::resource_metadata),
        );
    if !path.is_empty() {
        // RFC 9728 §3.1: the well-known prefix goes before the resource's whole path.
        public = public.route(
            &format!("/.well-known/oauth-protected-resource{path}/admin"),
            get(auth::resource_metadata),
        );
    }
    // Admin answers may carry a secret shown once: never cache them.
    api.merge(public).layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// Parses a JSON request body into `T`. The error names the field at fault but never
/// echoes a value (a body may carry a password).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            "the body is not valid JSON".to_owned()
        } else if let Some(field) = unknown_field(&inner.to_string()) {
            format!("unknown field `{field}`")
        } else if let Some(field) = missing_field(&inner.to_string()) {
            format!("missing field `{field}`")
        } else if path == "." {
            "the body does not have the expected shape".to_owned()
        } else {
            format!("invalid value at `{path}`")
        };
        AdminError::InvalidRequest(Cow::Owned(what))
    })
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Appends an audit event for a change by `actor` and waits for the commit.
async fn audit(
    app: &App,
    actor: &Actor,
    kind: &'static str,
    subjects: Subjects,
    mut detail: Value,
) -> Result<(), AdminError> {
    if let Value::Object(map) = &mut detail {
        map.insert("actor".to_owned(), Value::String(actor.label()));
    }
    let event = Event {
        kind,
        client_id: subjects.client_id,
        subject: subjects.subject,
        server: subjects.server,
        detail,
    };
    app.audit
        .record(app.clock.now_ms(), event)
        .await
        .map(|_| ())
        .map_err(|_| {
            AdminError::Internal(
                "the change was made, but its audit record could not be written".into(),
            )
        })
}

/// The indexed fields of an audit event.
#[derive(Default)]
struct Subjects {
    client_id: Option<String>,
    subject: Option<String>,
    server: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        ttl: Option<i64>,
    }

    #[test]
    fn body_errors_name_the_field_never_the_value() {
        let e = parse_body::<Body>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.to_string(), "invalid value at `name`");
        let e = parse_body::<Body>(br#"{"name": "a", "ttl": "hunter2"}"#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse_body::<Body>(br#"{"name": "a", "nmae": 1}"#).unwrap_err();
        assert_eq!(e.to_string(), "unknown field `nmae`");
        let e = parse_body::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(e.to_string(), "missing field `name`");
        let e = parse_body::<Body>(b"{").unwrap_err();
        assert_eq!(e.to_string(), "the body is not valid JSON");
    }

    #[test]
    fn metadata_url_inserts_the_well_known_prefix_before_the_path() {
        let c = |url: &str| {
            Config::load(
                &Config::template(url),
                Vec::new(),
                std::path::Path::new("/d"),
            )
            .unwrap()
        };
        let plain = c("https://auth.example.com");
        assert_eq!(resource_uri(&plain), "https://auth.example.com/admin");
        assert_eq!(
            resource_metadata_url(&plain),
            "https://auth.example.com/.well-known/oauth-protected-resource/admin"
        );
        let tenant = c("https://auth.example.com/tenant");
        assert_eq!(
            resource_metadata_url(&tenant),
            "https://auth.example.com/.well-known/oauth-protected-resource/tenant/admin"
        );
    }
}
