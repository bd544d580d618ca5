//! DPoP (RFC 9449) at the token endpoint and the gateway alike: the proof of a request
//! checked with [`warden_core::dpop::verify_proof`] under the `[dpop]` settings, then
//! claimed once so that no proof is accepted twice, on this replica or another.
//!
//! Replay (§11.1) is refused in two places:
//! - a bounded in-memory map of the proofs this process accepted answers a replay to the
//!   same replica without a database round trip;
//! - the shared `dpop_proofs` table ([`DpopProofStore::claim_once`]) is the authority: a
//!   proof is accepted only by the one INSERT that claims it, so replicas sharing one
//!   database never both accept it. The map is only a front: a proof it does not know
//!   (evicted, or accepted elsewhere) still goes to the table.
//!
//! A record lives until [`Proof::accepted_until`]; after that the proof is refused as too
//! old by [`verify_proof`], so the record may go.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use warden_core::config::DpopSettings;
use warden_core::credentials;
use warden_core::dpop::{
    issue_nonce, verify_proof, DpopError, NonceKey, NonceRule, Proof, ProofRule,
    SUPPORTED_ALGORITHMS,
};
use warden_core::keys::MasterKey;
use warden_core::sync::lock_recovering;
use warden_store::{DpopProofStore, Store};

/// The request header that carries a proof (RFC 9449 §4.1).
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");

/// The response header that carries a server nonce (RFC 9449 §8.1).
pub const DPOP_NONCE_HEADER: HeaderName = HeaderName::from_static("dpop-nonce");

const SHARDS: usize = 16;

/// The DPoP state of one process: settings, the nonce key and the replay front.
pub struct Dpop {
    settings: DpopSettings,
    nonce_key: NonceKey,
    used: UsedProofs,
}

/// What the request a proof came with must match.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URI as Warden publishes it (never from `Host`).
    pub uri: &'a str,
    /// The access token presented with the proof, at a protected resource.
    pub access_token: Option<&'a str>,
    /// The thumbprint the proof's key must have, if the grant is bound.
    pub expected_jkt: Option<&'a str>,
}

/// Why a proof was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofFailure {
    /// The proof is refused, with the RFC 9449 reason.
    Refused(DpopError),
    /// The replay table could not be asked: no verdict on the proof, so the client is
    /// told to retry (503), never that its proof or token is bad.
    Unavailable,
}

/// The shared single-use table cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The key of a single-use value of `kind` (`"id-jag"`, `"workload"`, `"federated-state"`)
/// issued by `issuer`: a SHA-256 over the three, length-prefixed, so that no value of one
/// kind or issuer can collide with another's (nor with a DPoP proof's key, hashed under
/// a prefix of its own, [`Proof::replay_key`]).
pub fn single_use_key(kind: &str, issuer: &str, value: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in ["warden single-use", kind, issuer, value] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// Proofs this process accepted, until their expiry: a bounded, sharded map.
struct UsedProofs {
    shards: Vec<Mutex<HashMap<[u8; 32], i64>>>,
    per_shard: usize,
}

// === impl Dpop ===

impl Dpop {
    /// The DPoP state for `settings`, with the nonce key derived from `master`.
    pub fn new(settings: DpopSettings, master: &MasterKey) -> Self {
        Dpop {
            used: UsedProofs::new(settings.replay_cache_entries),
            nonce_key: master.dpop_nonce_key(),
            settings,
        }
    }

    /// The algorithms proofs may be signed with, as the metadata and challenges list them.
    pub fn algorithms(&self) -> &'static [&'static str] {
        SUPPORTED_ALGORITHMS
    }

    /// The `algs` challenge parameter (RFC 9449 §7.1): the algorithms, space-separated.
    pub fn algs_param(&self) -> String {
        SUPPORTED_ALGORITHMS.join(" ")
    }

    /// The nonce to send in `DPoP-Nonce` at `now`, when server nonces are on.
    pub fn nonce(&self, now: i64) -> Option<HeaderValue> {
        if !self.settings.nonce {
            return None;
        }
        let nonce = issue_nonce(&self.nonce_key, now, self.settings.nonce_rotation);
        HeaderValue::try_from(nonce).ok()
    }

    /// The request's one `DPoP` header: `Ok(None)` when there is none, and a malformed
    /// proof when there are several (§4.3 step 1) or it is not visible ASCII.
    pub fn header(headers: &HeaderMap) -> Result<Option<&str>, DpopError> {
        let values = headers
            .get_all(DPOP_HEADER)
            .iter()
            .map(HeaderValue::as_bytes);
        credentials::single_header(values).map_err(|_| DpopError::Malformed)
    }

    /// Verifies `proof` for `request` as of `now` and claims it, so that it is never
    /// accepted again within its lifetime, here or on another replica sharing `store`.
    pub async fn accept(
        &self,
        store: &Store,
        proof: &str,
        request: &Request<'_>,
        now: i64,
    ) -> Result<Proof, ProofFailure> {
        let rule = ProofRule {
            method: request.method,
            uri: request.uri,
            access_token: request.access_token,
            expected_jkt: request.expected_jkt,
            nonce: self.settings.nonce.then_some(NonceRule {
                key: &self.nonce_key,
                slot_secs: self.settings.nonce_rotation,
            }),
            max_age: self.settings.proof_max_age,
            leeway: self.settings.leeway,
            algorithms: SUPPORTED_ALGORITHMS,
        };
        let proof = verify_proof(proof, &rule, now).map_err(ProofFailure::Refused)?;
        self.claim(store, &proof, now).await?;
        Ok(proof)
    }

    /// Claims `proof`: refused if this process or the shared table has it already.
    async fn claim(&self, store: &Store, proof: &Proof, now: i64) -> Result<(), ProofFailure> {
        match self
            .claim_once(store, proof.replay_key(), proof.accepted_until, now)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProofFailure::Refused(DpopError::Replayed)),
            Err(Unavailable) => Err(ProofFailure::Unavailable),
        }
    }

    /// Claims a single-use value (a DPoP proof, an ID-JAG's or a workload token's `jti`,
    /// a sign-in `state`) by its key until `until`: `Ok(true)` the first time on any
    /// replica sharing `store`, `Ok(false)` for a replay. Keys of different kinds must be
    /// domain-separated hashes ([`single_use_key`]). `Err` when the shared table cannot be
    /// asked: no verdict, so the caller answers 503.
    pub async fn claim_once(
        &self,
        store: &Store,
        key: [u8; 32],
        until: i64,
        now: i64,
    ) -> Result<bool, Unavailable> {
        if self.used.contains(&key, now) {
            return Ok(false);
        }
        match store.claim_once(&key, until, now).await {
            Ok(true) => {
                self.used.insert(key, until, now);
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                tracing::warn!(error = %e, "the single-use table is unavailable");
                Err(Unavailable)
            }
        }
    }

    /// Drops expired records, in memory and in the shared table.
    pub async fn purge(&self, store: &Store, now: i64) {
        self.used.purge(now);
        if let Err(e) = store.purge_used_proofs(now).await {
            tracing::warn!(error = %e, "purging used DPoP proofs failed");
        }
    }
}

// === impl UsedProofs ===

impl UsedProofs {
    fn new(capacity: usize) -> Self {
        UsedProofs {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8; 32]) -> &Mutex<HashMap<[u8; 32], i64>> {
        // The key is a SHA-256 output: any byte spreads evenly.
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// Whether `key` was accepted and has not expired at `now`.
    fn contains(&self, key: &[u8; 32], now: i64) -> bool {
        // One map operation per lock: a poisoned map is still a consistent map.
        lock_recovering(self.shard(key))
            .get(key)
            .is_some_and(|&until| until >= now)
    }

    /// Records `key` until `until`. A full shard drops expired records, then an
    /// arbitrary one: the shared table still knows it, so forgetting costs a round trip,
    /// never a replay.
    fn insert(&self, key: [u8; 32], until: i64, now: i64) {
        let mut map = lock_recovering(self.shard(&key));
        if map.len() >= self.per_shard {
            map.retain(|_, &mut until| until >= now);
            if map.len() >= self.per_shard {
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
        }
        map.insert(key, until);
    }

    fn purge(&self, now: i64) {
        for shard in &self.shards {
            lock_recovering(shard).retain(|_, &mut until| until >= now);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock_recovering(s).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_is_bounded_and_forgets_expired_proofs() {
        let used = UsedProofs::new(32);
        for i in 0..=255u8 {
            used.insert([i; 32], 100, 0);
        }
        assert!(used.len() <= 32 + SHARDS, "{}", used.len());
        used.insert([7; 32], 100, 0);
        assert!(used.contains(&[7; 32], 100));
        assert!(!used.contains(&[7; 32], 101));
        used.purge(101);
        assert_eq!(used.len(), 0);
    }

    #[test]
    fn several_dpop_headers_are_a_malformed_proof() {
        let mut headers = HeaderMap::new();
        assert_eq!(Dpop::header(&headers), Ok(None));
        headers.append(DPOP_HEADER, HeaderValue::from_static("a.b.c"));
        assert_eq!(Dpop::header(&headers), Ok(Some("a.b.c")));
        headers.append(DPOP_HEADER, HeaderValue::from_static("d.e.f"));
        assert_eq!(Dpop::header(&headers), Err(DpopError::Malformed));
    }
}
