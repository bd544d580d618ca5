//! Warden's HTTP layer: the authorization server, the health and metrics endpoints, and
//! (as they land) the gateway and the admin API, on one axum router.
//!
//! Each router has one error boundary that maps errors to HTTP: [`oauth::OAuthError`] for
//! the authorization server. Handlers never format a library error into a response body.

use std::sync::Arc;

use warden_core::clock::SharedClock;
use warden_core::config::Config;
use warden_core::keys::{MasterKey, Sealer};
use warden_core::secret::SecretHasher;
use warden_store::Store;
use warden_telemetry::Metrics;

pub mod audit;
pub mod gateway;
pub mod health;
pub mod keyring;
pub mod oauth;
pub mod revocation;
mod router;
pub mod serve;

pub use router::router;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

/// The shared state behind [`App`].
pub struct AppInner {
    /// The validated configuration.
    pub config: Config,
    /// The store, shared by every role.
    pub store: Store,
    /// The clock every token decision reads.
    pub clock: SharedClock,
    /// Signing and verification keys.
    pub keys: keyring::KeyRing,
    /// Keyed hashing of client secrets.
    pub secrets: SecretHasher,
    /// Encryption at rest.
    pub sealer: Sealer,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The audit writer.
    pub audit: audit::AuditSink,
    /// Revoked access-token ids, in memory.
    pub revoked: revocation::RevocationList,
    /// Failed sign-in throttling.
    pub login_throttle: oauth::lockout::LoginThrottle,
    /// Client lookup state: metadata-document and JWKS caches, the guarded fetcher,
    /// used client-assertion ids, registration rate limits.
    pub directory: oauth::directory::Directory,
}

impl App {
    /// Builds the application state: loads and decrypts the signing keys and starts the
    /// audit writer. Fails if the master key cannot decrypt the stored keys.
    pub async fn new(
        config: Config,
        store: Store,
        master: &MasterKey,
        clock: SharedClock,
    ) -> Result<Self, keyring::KeyRingError> {
        let sealer = master.sealer();
        let keys = keyring::KeyRing::load(&store, &sealer, clock.now()).await?;
        let metrics = Metrics::new();
        let audit = audit::AuditSink::spawn(Arc::new(store.clone()), metrics.clone());
        let revoked = revocation::RevocationList::load(&store, clock.now()).await?;
        let app = Self {
            inner: Arc::new(AppInner {
                directory: oauth::directory::Directory::new(&config),
                login_throttle: oauth::lockout::LoginThrottle::new(
                    config.login.max_failures,
                    config.login.lockout,
                ),
                config,
                store,
                clock,
                keys,
                secrets: master.secret_hasher(),
                sealer,
                metrics,
                audit,
                revoked,
            }),
        };
        spawn_maintenance(&app);
        Ok(app)
    }
}

/// How often the maintenance task runs.
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Starts the periodic housekeeping of one app: reaping unused dynamic registrations and
/// purging expired cache entries. It holds the app weakly and stops once the app is gone.
fn spawn_maintenance(app: &App) {
    let weak = Arc::downgrade(&app.inner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; housekeeping waits one interval.
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            let app = App { inner };
            let now = app.clock.now();
            if let Err(e) = oauth::register::reap_unused(&app, now).await {
                tracing::warn!(error = %e, "reaping unused registrations failed");
            }
            app.directory.purge(now);
        }
    });
}

impl App {
    /// Flushes and stops background writers. Call after the listener has drained.
    pub async fn shutdown(&self) {
        self.audit.shutdown().await;
    }
}

impl std::ops::Deref for App {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.inner
    }
}
