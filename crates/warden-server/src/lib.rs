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

pub mod admin;
pub mod audit;
pub mod builtin;
pub mod dpop;
pub mod federation;
pub mod gateway;
pub mod health;
pub mod issuer;
pub mod keyring;
pub mod lookup;
pub mod oauth;
pub mod policy;
pub mod revocation;
pub mod rotation;
mod router;
pub mod serve;

pub use router::{router, Dispatch};

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
    /// DPoP proofs: settings, server nonces and the replay front.
    pub dpop: dpop::Dpop,
    /// The gateway's caches, session binder and upstream connection pool.
    pub gateway: gateway::Gateway,
    /// Trusted issuers' signing keys.
    pub issuers: issuer::Issuers,
    /// Identity providers' documents and single-use values.
    pub federation: federation::Federation,
    /// Failed sign-in throttling.
    pub login_throttle: oauth::lockout::LoginThrottle,
    /// The fleet policy.
    pub policy: policy::PolicyCell,
    /// Client registrations by id, for the token endpoint.
    pub clients: lookup::TtlCache<warden_store::ClientRecord>,
    /// Servers by canonical URI, for the token endpoint.
    pub servers_by_uri: lookup::TtlCache<warden_store::ServerRecord>,
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
        // The admin API's own resource registration; a failure leaves the rest serving and
        // the admin API answering 503 until it is fixed.
        if let Err(e) = admin::ensure_resource(&store, &config, clock.now()).await {
            tracing::error!(error = %e.detail(), "the admin API is unavailable");
        }
        let sealer = master.sealer();
        let keys = keyring::KeyRing::load(&store, &sealer, clock.now()).await?;
        let metrics = Metrics::new();
        let audit = audit::AuditSink::spawn(
            Arc::new(store.clone()),
            metrics.clone(),
            config.audit.sink.clone(),
        );
        let revoked = revocation::RevocationList::load(&store, clock.now()).await?;
        let gateway = gateway::Gateway::new(master.session_binder());
        let policy = policy::PolicyCell::load(&store).await?;
        Ok(Self {
            inner: Arc::new(AppInner {
                directory: oauth::directory::Directory::new(&config),
                dpop: dpop::Dpop::new(config.dpop.clone(), master),
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
                gateway,
                issuers: issuer::Issuers::default(),
                federation: federation::Federation::new(),
                policy,
                clients: lookup::TtlCache::default(),
                servers_by_uri: lookup::TtlCache::default(),
            }),
        })
    }
}

/// How often [`App::housekeeping`] runs inside the maintenance loop.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl App {
    /// Starts the maintenance loop: every `every`, run the key-rotation schedule (which
    /// also reloads keys rotated by another replica), pick up revocations made by other
    /// replicas, and drop expired denylist entries. With several replicas this polling is
    /// how they learn of each other's changes, so `every` bounds that delay.
    pub fn spawn_maintenance(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        // Weak, so the loop never keeps an app alive that everything else has dropped.
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_housekeeping: Option<std::time::Instant> = None;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let app = App { inner };
                app.maintain().await;
                if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                    app.housekeeping().await;
                    last_housekeeping = Some(std::time::Instant::now());
                }
            }
        })
    }

    /// Slower housekeeping: reaping dynamic registrations never used, and purging
    /// expired client-directory cache entries.
    pub async fn housekeeping(&self) {
        let now = self.clock.now();
        if let Err(e) = oauth::register::reap_unused(self, now).await {
            tracing::warn!(error = %e, "reaping unused registrations failed");
        }
        self.directory.purge(now);
        self.federation.purge(now);
        let horizon = self.clock.now_ms() - self.config.audit.retention * 1000;
        match warden_store::AuditStore::prune_before(&self.store, horizon).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "audit events past retention pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
    }

    /// One maintenance pass (see [`App::spawn_maintenance`]).
    pub async fn maintain(&self) {
        if let Err(e) = rotation::tick(self).await {
            tracing::error!(error = %e, "key rotation failed");
        }
        let now = self.clock.now();
        match warden_store::RevocationStore::list_active(&self.store, now).await {
            Ok(entries) => {
                for (id, exp) in entries {
                    self.revoked.insert(id, exp);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot refresh the revocation list"),
        }
        self.revoked.purge(now);
        self.dpop.purge(&self.store, now).await;
        if let Err(e) = self.policy.refresh(&self.store).await {
            tracing::warn!(error = %e, "cannot refresh the policy");
        }
    }

    /// Flushes and stops background writers. Call after the listener has drained.
    pub async fn shutdown(&self) {
        self.gateway.journal.flush(self);
        self.audit.shutdown().await;
    }
}

impl std::ops::Deref for App {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.inner
    }
}
