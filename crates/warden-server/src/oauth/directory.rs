//! Where clients are found, and the state that finding them needs.
//!
//! Registered clients (by CLI, admin API or dynamic registration) live in the store; a
//! `client_id` that is a URL is a client ID metadata document and is resolved through
//! [`cimd`]. Every endpoint that looks a client up goes through [`find_client`], so the
//! two kinds behave the same everywhere.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use warden_core::config::Config;
use warden_store::{ClientRecord, ClientStore, StoreError};

use super::assertion::JtiCache;
use super::cimd::{self, CimdError};
use super::fetch::{Fetcher, TtlCache};
use super::register::Limiter;
use crate::App;

/// Most JWKS documents (from `jwks_uri`) cached at once.
const MAX_CACHED_JWKS: usize = 1024;

/// Caches and guards shared by client lookup, registration and client authentication.
pub struct Directory {
    /// The guarded fetcher for metadata documents and JWKS URLs.
    pub fetcher: Fetcher,
    /// Accepted metadata documents, as clients, by URL.
    pub documents: TtlCache<ClientRecord>,
    /// Key sets fetched from `jwks_uri`, by URL.
    pub jwks: TtlCache<Value>,
    /// `jti`s of client assertions already used.
    pub assertions: JtiCache,
    /// Registration rate limits and the count of dynamic clients.
    pub registrations: Limiter,
}

/// Why a client could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A metadata-document client was refused.
    #[error(transparent)]
    Document(#[from] CimdError),
}

impl Directory {
    /// Builds the directory from the registration settings.
    pub fn new(config: &Config) -> Self {
        let r = &config.registration;
        Self {
            fetcher: Fetcher::new(
                r.fetch_allow_addresses.clone(),
                Duration::from_secs(r.fetch_timeout.unsigned_abs()),
            ),
            documents: TtlCache::new(cimd::MAX_CACHED),
            jwks: TtlCache::new(MAX_CACHED_JWKS),
            assertions: JtiCache::default(),
            registrations: Limiter::new(r),
        }
    }

    /// Drops expired cache entries, used assertion ids and idle rate-limit buckets.
    pub fn purge(&self, now: i64) {
        self.documents.purge(now);
        self.jwks.purge(now);
        self.assertions.purge(now);
        self.registrations.purge(now.saturating_mul(1000));
    }
}

/// The client `client_id` names: a stored registration, or a metadata document.
/// Shared with the cache: the token endpoint looks a client up on every request.
pub async fn find_client(
    app: &App,
    client_id: &str,
) -> Result<Option<Arc<ClientRecord>>, LookupError> {
    if cimd::is_document_url(client_id) {
        return Ok(Some(Arc::new(cimd::resolve(app, client_id).await?)));
    }
    let now_ms = app.clock.now_ms();
    if let Some(hit) = app.clients.get(client_id, now_ms) {
        return Ok(Some(hit));
    }
    let found = ClientStore::get(&app.store, client_id).await?.map(Arc::new);
    if let Some(rec) = &found {
        app.clients.put(client_id, Arc::clone(rec), now_ms);
    }
    Ok(found)
}

/// A registered server by canonical URI, through the short-lived cache.
pub async fn server_by_uri(
    app: &App,
    uri: &str,
) -> Result<Option<Arc<warden_store::ServerRecord>>, warden_store::StoreError> {
    let now_ms = app.clock.now_ms();
    if let Some(hit) = app.servers_by_uri.get(uri, now_ms) {
        return Ok(Some(hit));
    }
    let found = warden_store::ServerStore::get_by_uri(&app.store, uri)
        .await?
        .map(Arc::new);
    if let Some(rec) = &found {
        app.servers_by_uri.put(uri, Arc::clone(rec), now_ms);
    }
    Ok(found)
}

/// Whether `client` came from dynamic registration (and so may be reaped).
pub fn is_dynamic(client: &ClientRecord) -> bool {
    client
        .metadata
        .get("warden")
        .and_then(|w| w.get("origin"))
        .and_then(Value::as_str)
        == Some("dynamic_registration")
}

/// Notes a dynamic client's first successful authentication, which exempts it from
/// reaping. Later uses write nothing, so the token endpoint's hot path stays read-only.
pub async fn note_first_use(app: &App, client: &ClientRecord, now: i64) {
    if client.last_used_at.is_none() && is_dynamic(client) {
        if let Err(e) = ClientStore::touch_last_used(&app.store, &client.client_id, now).await {
            tracing::warn!(error = %e, "cannot record a client's first use");
        }
    }
}
