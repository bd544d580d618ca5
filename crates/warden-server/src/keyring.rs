//! Signing keys in memory: the one that signs now, and every key published in JWKS.

use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use warden_core::jwt::{self, AccessTokenRule, JwtError, VerifyingKey};
use warden_core::keys::{KeyError, Sealer, SigningAlg, SigningKey};
use warden_core::secret::random_id;
use warden_core::sync::{read_recovering, write_recovering};
use warden_store::{KeyStore, SigningKeyRecord, Store, StoreError};

/// Why the key ring could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A key could not be decrypted: the master key does not match this database.
    #[error("cannot decrypt signing key {kid}: the master key does not match this database")]
    WrongMasterKey {
        /// The key that failed.
        kid: String,
    },
    /// Key material was invalid.
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    /// A rotation is already under way (a published key is waiting to activate).
    #[error("a rotation is already in progress: a new key is published and not yet active")]
    RotationInProgress,
}

#[derive(Default)]
struct Ring {
    signing: Option<Arc<SigningKey>>,
    verifying: Vec<Arc<VerifyingKey>>,
    jwks: Arc<Value>,
}

/// The loaded keys; reloaded after a rotation.
pub struct KeyRing {
    ring: RwLock<Arc<Ring>>,
}

impl KeyRing {
    /// Loads and decrypts every key from the store, as of `now`.
    pub async fn load(store: &Store, sealer: &Sealer, now: i64) -> Result<Self, KeyRingError> {
        let ring = build(KeyStore::list(store).await?, sealer, now)?;
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    /// Reloads from the store, as of `now`.
    pub async fn reload(
        &self,
        store: &Store,
        sealer: &Sealer,
        now: i64,
    ) -> Result<(), KeyRingError> {
        let ring = Arc::new(build(KeyStore::list(store).await?, sealer, now)?);
        // The ring is one `Arc`, swapped whole: a panic elsewhere under this lock cannot
        // have left it half-built, so a poisoned lock is taken, never skipped.
        *write_recovering(&self.ring) = ring;
        Ok(())
    }

    fn current(&self) -> Arc<Ring> {
        Arc::clone(&read_recovering(&self.ring))
    }

    /// The key that signs now, if any.
    pub fn signing_key(&self) -> Option<Arc<SigningKey>> {
        self.current().signing.clone()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Arc<Value> {
        Arc::clone(&self.current().jwks)
    }

    /// Published keys matching `kid`.
    pub fn verifying_keys(&self) -> Vec<Arc<VerifyingKey>> {
        self.current().verifying.clone()
    }

    /// Verifies one of Warden's own access tokens with the published keys: every path
    /// that accepts Warden's tokens (gateway, admin API, introspection, revocation, token
    /// exchange) calls this, and it calls [`jwt::verify_access_token`], where the rules
    /// are.
    pub fn verify_access_token(
        &self,
        token: &str,
        rule: &AccessTokenRule<'_>,
        now: i64,
    ) -> Result<Map<String, Value>, JwtError> {
        jwt::verify_access_token(token, &self.current().verifying, rule, now)
    }
}

fn build(records: Vec<SigningKeyRecord>, sealer: &Sealer, now: i64) -> Result<Ring, KeyRingError> {
    let mut ring = Ring::default();
    let mut published = Vec::new();
    let mut best: Option<(i64, Arc<SigningKey>)> = None;
    for rec in records {
        let pkcs8 = sealer.open(&rec.kid, &rec.private_key_enc).map_err(|_| {
            KeyRingError::WrongMasterKey {
                kid: rec.kid.clone(),
            }
        })?;
        let alg = SigningAlg::parse(&rec.alg)?;
        let key = Arc::new(SigningKey::from_pkcs8(alg, rec.kid.clone(), &pkcs8)?);
        let is_published = rec.publish_at <= now && rec.remove_at.is_none_or(|r| r > now);
        if is_published {
            let jwk = key.public_jwk();
            ring.verifying.push(Arc::new(VerifyingKey::from_jwk(&jwk)?));
            published.push(jwk);
        }
        let signs_now = rec.activate_at <= now && rec.retire_at.is_none_or(|r| r > now);
        if signs_now && is_published && best.as_ref().is_none_or(|(at, _)| rec.activate_at > *at) {
            best = Some((rec.activate_at, key));
        }
    }
    ring.signing = best.map(|(_, k)| k);
    ring.jwks = Arc::new(serde_json::json!({ "keys": published }));
    Ok(ring)
}

/// Generates a key of `alg`, seals it and stores it, active from `activate_at`
/// and published from `publish_at`.
pub async fn create_key(
    store: &Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
    publish_at: i64,
    activate_at: i64,
) -> Result<SigningKeyRecord, KeyRingError> {
    let kid = random_id().map_err(|_| KeyError::Random)?;
    create_key_with_id(store, sealer, alg, kid, now, publish_at, activate_at).await
}

/// [`create_key`] with a chosen key id (scheduled rotations derive it from the
/// activation time, so replicas racing to create the same key collide on it).
pub async fn create_key_with_id(
    store: &Store,
    sealer: &Sealer,
    alg: SigningAlg,
    kid: String,
    now: i64,
    publish_at: i64,
    activate_at: i64,
) -> Result<SigningKeyRecord, KeyRingError> {
    let key = SigningKey::generate(alg, kid.clone())?;
    let rec = SigningKeyRecord {
        kid: kid.clone(),
        alg: alg.as_str().to_owned(),
        public_jwk: key.public_jwk().to_string(),
        private_key_enc: sealer.seal(&kid, key.pkcs8())?,
        created_at: now,
        publish_at,
        activate_at,
        retire_at: None,
        remove_at: None,
    };
    KeyStore::insert(store, &rec).await?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use warden_core::keys::MasterKey;

    use super::*;

    #[tokio::test]
    async fn a_reload_after_a_poisoned_lock_still_takes_effect() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let sealer = MasterKey::generate().unwrap().sealer();
        let ring = KeyRing::load(&store, &sealer, 100).await.unwrap();
        assert!(ring.signing_key().is_none());

        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _held = ring.ring.write().unwrap();
            panic!("a panic while the ring is locked");
        }));
        assert!(ring.ring.is_poisoned());

        let rec = create_key(&store, &sealer, SigningAlg::Es256, 100, 100, 100)
            .await
            .unwrap();
        ring.reload(&store, &sealer, 100).await.unwrap();
        assert_eq!(ring.signing_key().unwrap().kid(), rec.kid);
        assert_eq!(ring.verifying_keys().len(), 1);
    }
}
