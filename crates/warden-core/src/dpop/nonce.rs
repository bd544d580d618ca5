//! Server nonces (RFC 9449 §8, §9) that need no state shared between replicas.
//!
//! A nonce is `slot || MAC(key, slot)`, base64url, where `slot` is the number of the
//! time slot (`now / slot_secs`) it was issued in: any replica holding the key can tell
//! one it issued, and when. A nonce is accepted in the slot it was issued in and the
//! next, so it lives between one and two slots, and a client that keeps the last nonce
//! it was sent is refused at most once a slot (§8: it then retries with the new one).
//!
//! Every client is given the same nonce within a slot: it bounds how long a proof can be
//! used (§11.2, pre-generated proofs), it is not a per-client secret. Replicas' clocks
//! must agree to well within a slot; a replica behind the issuer refuses a nonce from a
//! slot it has not reached yet, and the client retries with that replica's nonce.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

use super::DpopError;
use crate::secret::ct_eq;

/// Bytes of the MAC kept in a nonce: 128 bits cannot be guessed.
const TAG_LEN: usize = 16;

/// Domain separation: this key's MACs mean nothing anywhere else.
const CONTEXT: &[u8] = b"warden dpop nonce v1\0";

/// The key that makes and checks server nonces; every replica must hold the same one.
/// Derive it from the master key; it never prints itself.
#[derive(Clone)]
pub struct NonceKey(hmac::Key);

/// The nonce policy of an endpoint, when server nonces are on.
#[derive(Clone, Copy, Debug)]
pub struct NonceRule<'a> {
    /// The nonce key.
    pub key: &'a NonceKey,
    /// The length of a slot, seconds (a nonce lives one to two slots). A value below 1
    /// is taken as 1.
    pub slot_secs: i64,
}

// === impl NonceKey ===

impl NonceKey {
    /// A nonce key from `key_material` (at least 32 random bytes).
    pub fn new(key_material: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key_material))
    }

    /// The MAC of `slot`, truncated to [`TAG_LEN`] bytes.
    fn tag(&self, slot: i64) -> [u8; TAG_LEN] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(CONTEXT);
        ctx.update(&slot.to_be_bytes());
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&ctx.sign().as_ref()[..TAG_LEN]);
        tag
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey([REDACTED])")
    }
}

// === impl NonceRule ===

impl NonceRule<'_> {
    /// A proof's `nonce` against this rule: present, issued with this key, and in the
    /// current or the previous slot.
    pub(super) fn check(&self, nonce: Option<&str>, now: i64) -> Result<(), DpopError> {
        let nonce = nonce.ok_or(DpopError::MissingNonce)?;
        let slot = decode(self.key, nonce).ok_or(DpopError::InvalidNonce)?;
        let current = slot_of(now, self.slot_secs);
        if slot == current || slot == current.saturating_sub(1) {
            Ok(())
        } else {
            Err(DpopError::StaleNonce)
        }
    }
}

/// A nonce for the slot `now` falls in: what the server sends in `DPoP-Nonce` (§8.1:
/// base64url, so `1*NQCHAR`). The same for every call within a slot.
pub fn issue_nonce(key: &NonceKey, now: i64, slot_secs: i64) -> String {
    let slot = slot_of(now, slot_secs);
    let mut raw = [0u8; 8 + TAG_LEN];
    raw[..8].copy_from_slice(&slot.to_be_bytes());
    raw[8..].copy_from_slice(&key.tag(slot));
    URL_SAFE_NO_PAD.encode(raw)
}

/// Whether `nonce` was issued with `key` in the slot `now` falls in or the one before.
pub fn nonce_is_fresh(key: &NonceKey, nonce: &str, now: i64, slot_secs: i64) -> bool {
    let rule = NonceRule { key, slot_secs };
    rule.check(Some(nonce), now).is_ok()
}

/// The slot of a nonce issued with `key`, or `None` for anything else. The MAC is
/// compared in constant time.
fn decode(key: &NonceKey, nonce: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
    let (slot, tag) = raw.split_first_chunk::<8>()?;
    let slot = i64::from_be_bytes(*slot);
    ct_eq(tag, &key.tag(slot)).then_some(slot)
}

fn slot_of(now: i64, slot_secs: i64) -> i64 {
    now.div_euclid(slot_secs.max(1))
}
