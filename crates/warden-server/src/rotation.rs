//! Signing-key rotation on a schedule.
//!
//! A key's life: created and *published* in JWKS (`publish_at`) a publish-ahead period
//! before it *activates* (`activate_at`) and starts signing; when its successor
//! activates it is *retired* (stops signing) but stays published until `remove_at`,
//! by which time every token it signed has expired. [`plan`] decides what is due from the
//! key records and `now` alone, so the schedule is tested with an injected clock.
//!
//! Several replicas may run the schedule at once. A scheduled key's id is derived from
//! its activation time, so two replicas planning the same rotation insert the same `kid`
//! and the store's uniqueness lets exactly one win; the others see a conflict and reload.

use serde_json::json;
use warden_core::config::KeySettings;
use warden_core::keys::SigningAlg;
use warden_proto::admin::KeyView;
use warden_store::{KeyStore, SigningKeyRecord, StoreError};

use crate::audit::Event;
use crate::keyring::{create_key_with_id, KeyRingError};
use crate::App;

/// A retired key stays published this long after it stops signing: the longest
/// access-token lifetime Warden issues plus the largest clock-skew leeway.
pub const RETIRED_KEY_GRACE: i64 = 86_400 + 300;

/// What the schedule says to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a key, published now, that activates at this time.
    Create {
        /// When it starts signing.
        activate_at: i64,
    },
    /// Stop key `kid` signing at `retire_at`; unpublish it at `remove_at`.
    Retire {
        /// The key.
        kid: String,
        /// When it stops signing.
        retire_at: i64,
        /// When it leaves JWKS.
        remove_at: i64,
    },
}

/// The state of a key at `now`.
pub fn state(k: &SigningKeyRecord, now: i64) -> &'static str {
    if k.remove_at.is_some_and(|r| r <= now) {
        "removed"
    } else if k.retire_at.is_some_and(|r| r <= now) {
        "retired"
    } else if k.activate_at <= now {
        "active"
    } else if k.publish_at <= now {
        "pending"
    } else {
        "scheduled"
    }
}

/// The admin view of a key.
pub fn view(k: &SigningKeyRecord, now: i64) -> KeyView {
    KeyView {
        kid: k.kid.clone(),
        alg: k.alg.clone(),
        state: state(k, now).to_owned(),
        publish_at: k.publish_at,
        activate_at: k.activate_at,
        retire_at: k.retire_at,
        remove_at: k.remove_at,
    }
}

/// Decides the rotation actions due at `now`.
pub fn plan(keys: &[SigningKeyRecord], now: i64, s: &KeySettings) -> Vec<Action> {
    let mut actions = Vec::new();
    let live: Vec<&SigningKeyRecord> = keys.iter().filter(|k| k.retire_at.is_none()).collect();
    // The newest key that has activated signs; older activated ones retire at its start.
    let newest_active = live
        .iter()
        .filter(|k| k.activate_at <= now)
        .max_by_key(|k| k.activate_at);
    if let Some(current) = newest_active {
        for k in live
            .iter()
            .filter(|k| k.activate_at <= now && k.kid != current.kid)
        {
            actions.push(Action::Retire {
                kid: k.kid.clone(),
                retire_at: current.activate_at,
                remove_at: current.activate_at + RETIRED_KEY_GRACE,
            });
        }
    }
    let pending = live.iter().any(|k| k.activate_at > now);
    let due = match newest_active {
        None => true,
        Some(c) => c.activate_at + s.rotation_interval - s.publish_ahead <= now,
    };
    if !pending && due {
        let activate_at = match newest_active {
            None => now,
            Some(c) => (c.activate_at + s.rotation_interval).max(now + s.publish_ahead),
        };
        actions.push(Action::Create { activate_at });
    }
    actions
}

/// Runs the schedule once at the app's clock: creates and retires keys as due, audits
/// each change, and reloads the key ring if anything changed (here or on another replica).
pub async fn tick(app: &App) -> Result<usize, KeyRingError> {
    let now = app.clock.now();
    let keys = KeyStore::list(&app.store).await?;
    let actions = plan(&keys, now, &app.config.keys);
    let mut done = 0;
    for action in &actions {
        match action {
            Action::Create { activate_at } => {
                let kid = format!("k{activate_at:x}");
                match create_key_with_id(
                    &app.store,
                    &app.sealer,
                    app.config.tokens.signing_alg,
                    kid.clone(),
                    now,
                    now,
                    *activate_at,
                )
                .await
                {
                    Ok(_) => {
                        done += 1;
                        audit(
                            app,
                            "key.created",
                            json!({ "kid": kid, "activate_at": activate_at, "scheduled": true }),
                        )
                        .await;
                    }
                    // Another replica created this very key first.
                    Err(KeyRingError::Store(StoreError::Conflict(_))) => {}
                    Err(e) => return Err(e),
                }
            }
            Action::Retire {
                kid,
                retire_at,
                remove_at,
            } => {
                KeyStore::update_schedule(&app.store, kid, Some(*retire_at), Some(*remove_at))
                    .await?;
                done += 1;
                audit(
                    app,
                    "key.retired",
                    json!({ "kid": kid, "retire_at": retire_at, "remove_at": remove_at }),
                )
                .await;
            }
        }
    }
    app.keys.reload(&app.store, &app.sealer, now).await?;
    Ok(done)
}

/// Rotates now (`warden keys rotate`): a new key published at once that activates after
/// the publish-ahead period, or at once with `immediate` (for a compromised key; relying
/// parties that cached JWKS may then briefly refuse new tokens).
pub async fn rotate_now(
    store: &warden_store::Store,
    sealer: &warden_core::keys::Sealer,
    alg: SigningAlg,
    settings: &KeySettings,
    now: i64,
    immediate: bool,
) -> Result<SigningKeyRecord, KeyRingError> {
    let keys = KeyStore::list(store).await?;
    if keys
        .iter()
        .any(|k| k.retire_at.is_none() && k.activate_at > now)
    {
        return Err(KeyRingError::RotationInProgress);
    }
    let activate_at = if immediate {
        now
    } else {
        now + settings.publish_ahead
    };
    let kid = warden_core::secret::random_id().map_err(|_| warden_core::keys::KeyError::Random)?;
    create_key_with_id(store, sealer, alg, kid, now, now, activate_at).await
}

async fn audit(app: &App, kind: &'static str, detail: serde_json::Value) {
    let event = Event {
        kind,
        client_id: None,
        subject: None,
        server: None,
        detail,
    };
    if let Err(e) = app.audit.record(app.clock.now_ms(), event).await {
        tracing::error!(error = %e, "key rotation audit event not recorded");
    }
}

#[cfg(test)]
mod tests;
