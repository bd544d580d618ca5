//! The upstream's own credentials: tokens the upstream's authorization server issues,
//! for the two machine modes of `upstream_auth`
//! ([`warden_core::server_settings::upstream_auth`]).
//!
//! - **`client-credentials`**: Warden's own token there (RFC 6749 §4.4), one per server,
//!   never shared between servers.
//! - **`token-exchange`**: a token for the user, exchanged (RFC 8693) for a subject token
//!   Warden signs ([`grant`]), one per server, user, client and delegation chain.
//!
//! The authorization server is found from the upstream ([`discovery`]); every fetch, the
//! token requests included, goes through the guarded fetcher
//! ([`crate::oauth::fetch::Fetcher`]), so a private or loopback address is reached only
//! when `registration.fetch_allow_addresses` allows it, redirects are never followed and
//! answers are bounded in size and time.
//!
//! A token is cached in a slot per key until 80% of its `expires_in` has passed, then
//! replaced by the first request that finds it due; requests that arrive meanwhile wait
//! for that one token request instead of making their own (single flight). If the
//! replacement fails while the old token is still valid, the old one is used. A failure
//! is remembered for [`FAILURE_HOLD_SECS`], so an authorization server that is down is
//! not asked once per request. The slots are bounded ([`MAX_SLOTS`]), and a change to the
//! server's settings changes every key (the key includes the server's validation id).
//!
//! The upstream gets the token in `Authorization: Bearer`; the assertion, which says who
//! called through which client, then moves to `X-Warden-Assertion`, as it does when a
//! static header sets `Authorization`. An authorization server that cannot be reached is
//! a 503 with `Retry-After` for the MCP client; one that refuses Warden (a wrong secret,
//! metadata that does not match) is a 502. Neither is ever a 401: the client's token was
//! fine. Every token obtained or refused is audited (`upstream.credential.obtained`,
//! `upstream.credential.failed`, never with token material), and failures are counted in
//! `warden_upstream_credential_failures_total{server,reason}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::http::HeaderValue;
use serde_json::{json, Value};
use warden_core::server_settings::{UpstreamAuth, UpstreamClient};
use warden_core::sync::{lock_recovering, read_recovering, write_recovering};

use super::challenge::GatewayError;
use super::registry::Protected;
use super::validate::Principal;
use crate::audit::Event;
use crate::oauth::fetch::TtlCache;
use crate::App;

pub mod discovery;
pub mod grant;

/// Most token slots kept; past this, expired ones go first, then the one closest to
/// expiry.
pub const MAX_SLOTS: usize = 10_000;
/// Most discovered authorization servers kept.
const MAX_DISCOVERED: usize = 1024;
/// How long a failure is answered from memory, seconds.
pub const FAILURE_HOLD_SECS: i64 = 5;
/// A token is not sent when it has fewer seconds left than this.
const EXPIRY_MARGIN: i64 = 5;

/// Why no token could be had from the upstream's authorization server. The text is for
/// the audit log and the operator: it never holds token material or a secret.
#[derive(Clone, Debug)]
pub enum CredentialError {
    /// It could not be reached, or failed (5xx, 429, timeout): try again later.
    Unavailable(String),
    /// It refused Warden, or its metadata cannot be trusted: configuration.
    Refused(String),
    /// Warden itself failed (no signing key).
    Internal(String),
}

/// The gateway's upstream tokens and discovered authorization servers.
pub struct UpstreamCredentials {
    /// Discovered authorization servers, per server.
    pub discovered: TtlCache<Arc<discovery::Discovered>>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One key's token, and the lock that makes its replacement single-flight.
#[derive(Default)]
struct Slot {
    state: RwLock<SlotState>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    token: Option<Held>,
    /// The last failure, answered until the second it names.
    failed: Option<(i64, CredentialError)>,
}

#[derive(Clone)]
struct Held {
    header: HeaderValue,
    /// When it is due for replacement (80% of its life).
    refresh_at: i64,
    expires_at: i64,
}

// === impl UpstreamCredentials ===

impl Default for UpstreamCredentials {
    fn default() -> Self {
        Self {
            discovered: TtlCache::new(MAX_DISCOVERED),
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl UpstreamCredentials {
    /// How many token slots are held.
    pub fn len(&self) -> usize {
        lock_recovering(&self.slots).len()
    }

    /// Whether no token slot is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot for `key`, made if needed, within [`MAX_SLOTS`].
    fn slot(&self, key: &str, now: i64) -> Arc<Slot> {
        let mut slots = lock_recovering(&self.slots);
        if let Some(slot) = slots.get(key) {
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_SLOTS {
            slots.retain(|_, s| s.expires_at() > now);
            if slots.len() >= MAX_SLOTS {
                let victim = slots
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at())
                    .map(|(k, _)| k.clone());
                if let Some(victim) = victim {
                    slots.remove(&victim);
                }
            }
        }
        Arc::clone(slots.entry(key.to_owned()).or_default())
    }

    /// Forgets the token of `server` for `principal` (the upstream refused it).
    pub fn forget(&self, server: &Protected, principal: &Principal) {
        if let Some(key) = slot_key(server, principal) {
            lock_recovering(&self.slots).remove(&key);
        }
    }
}

// === impl Slot ===

impl Slot {
    fn expires_at(&self) -> i64 {
        read_recovering(&self.state)
            .token
            .as_ref()
            .map_or(i64::MIN, |t| t.expires_at)
    }

    /// The token, if not yet due; else a recent failure, if one is held.
    fn answer(&self, now: i64) -> Option<Result<HeaderValue, CredentialError>> {
        let state = read_recovering(&self.state);
        if let Some(t) = state.token.as_ref().filter(|t| now < t.refresh_at) {
            return Some(Ok(t.header.clone()));
        }
        match &state.failed {
            Some((until, e)) if now < *until => Some(Err(e.clone())),
            _ => None,
        }
    }

    /// The token, if it may still be sent though it is due.
    fn still_valid(&self, now: i64) -> Option<HeaderValue> {
        read_recovering(&self.state)
            .token
            .as_ref()
            .filter(|t| now < t.expires_at - EXPIRY_MARGIN)
            .map(|t| t.header.clone())
    }
}

// === impl CredentialError ===

impl CredentialError {
    /// The label of `warden_upstream_credential_failures_total`'s `reason`.
    pub fn label(&self) -> &'static str {
        match self {
            CredentialError::Unavailable(_) => "unavailable",
            CredentialError::Refused(_) => "refused",
            CredentialError::Internal(_) => "internal",
        }
    }

    /// The detail, for the audit log.
    pub fn detail(&self) -> &str {
        match self {
            CredentialError::Unavailable(d)
            | CredentialError::Refused(d)
            | CredentialError::Internal(d) => d,
        }
    }
}

/// The `Authorization` value for `server`'s upstream in a token mode, `None` in the
/// others. `id` is the JSON-RPC id, for the error.
pub async fn authorization(
    app: &App,
    server: &Protected,
    principal: &Principal,
    now: i64,
    id: impl FnOnce() -> Value,
) -> Result<Option<HeaderValue>, GatewayError> {
    let Some(key) = slot_key(server, principal) else {
        return Ok(None);
    };
    let slot = app.gateway.upstream_auth.slot(&key, now);
    let answer = match slot.answer(now) {
        Some(answer) => answer,
        None => {
            let _one = slot.refresh.lock().await;
            // Whoever held the lock may have done the work.
            match slot.answer(now) {
                Some(answer) => answer,
                None => refresh(app, server, principal, &slot, now).await,
            }
        }
    };
    answer
        .map(Some)
        .map_err(|failure| GatewayError::UpstreamCredential { id: id(), failure })
}

/// Asks for a token, stores it (or the failure) in `slot`, and audits the outcome.
async fn refresh(
    app: &App,
    server: &Protected,
    principal: &Principal,
    slot: &Slot,
    now: i64,
) -> Result<HeaderValue, CredentialError> {
    let (client, grant) = match &server.upstream_auth {
        UpstreamAuth::ClientCredentials(c) => (c, grant::Grant::ClientCredentials),
        UpstreamAuth::TokenExchange(c) => (c, grant::Grant::TokenExchange(principal)),
        UpstreamAuth::Assertion | UpstreamAuth::Static => {
            return Err(CredentialError::Internal("not a token mode".into()))
        }
    };
    let per_user = matches!(grant, grant::Grant::TokenExchange(_));
    let outcome = obtain(app, server, client, grant, now).await;
    let audit = |kind: &'static str, detail: Value| {
        app.audit.submit(
            app.clock.now_ms(),
            Event {
                kind,
                client_id: per_user.then(|| principal.client_id().to_owned()),
                subject: per_user.then(|| principal.subject().to_owned()),
                server: Some(server.name.to_string()),
                detail,
            },
            &app.metrics,
        );
    };
    let mode = server.upstream_auth.mode().as_str();
    match outcome {
        Ok((issued, issuer)) => {
            let held = Held {
                header: issued.header.clone(),
                refresh_at: now + (issued.expires_in * 4 / 5).max(1),
                expires_at: now + issued.expires_in,
            };
            *write_recovering(&slot.state) = SlotState {
                token: Some(held),
                failed: None,
            };
            tracing::info!(server = %server.name, mode, %issuer, expires_in = issued.expires_in, "upstream credential obtained");
            audit(
                "upstream.credential.obtained",
                json!({ "mode": mode, "issuer": issuer, "expires_in": issued.expires_in,
                        "scope": client.scopes.join(" ") }),
            );
            Ok(issued.header)
        }
        Err(e) => {
            tracing::warn!(server = %server.name, mode, reason = e.detail(), "cannot obtain the upstream credential");
            app.metrics
                .record_upstream_credential_failure(&server.name, e.label());
            audit(
                "upstream.credential.failed",
                json!({ "mode": mode, "reason": e.label(), "detail": e.detail() }),
            );
            write_recovering(&slot.state).failed = Some((now + FAILURE_HOLD_SECS, e.clone()));
            match slot.still_valid(now) {
                Some(old) => Ok(old),
                None => Err(e),
            }
        }
    }
}

/// Discovery, then the token request: the token and the issuer that issued it.
async fn obtain(
    app: &App,
    server: &Protected,
    client: &UpstreamClient,
    grant: grant::Grant<'_>,
    now: i64,
) -> Result<(grant::Issued, String), CredentialError> {
    let (upstream, resource) = server
        .upstream_resource
        .as_ref()
        .ok_or_else(|| CredentialError::Internal("no upstream resource".into()))?;
    let at =
        discovery::authorization_server(app, &server.name, upstream, resource, client, now).await?;
    let issued = grant::request(app, &at, client, grant, now).await?;
    Ok((issued, at.issuer.clone()))
}

/// The slot key of `server`'s token for `principal`; `None` outside the token modes. It
/// holds the server's validation id, so a change to its settings starts afresh, and, for
/// token exchange, the identity the token is for.
fn slot_key(server: &Protected, principal: &Principal) -> Option<String> {
    let upstream = server.upstream_resource.as_ref().map(|(u, _)| u.as_str())?;
    let base = format!("{}\n{}\n{upstream}", server.name, server.validation_id);
    match &server.upstream_auth {
        UpstreamAuth::ClientCredentials(_) => Some(format!("cc\n{base}")),
        UpstreamAuth::TokenExchange(_) => {
            let act = principal.act().map(Value::to_string).unwrap_or_default();
            let who = format!(
                "{base}\n{}\n{}\n{act}",
                principal.subject(),
                principal.client_id()
            );
            // Hashed: the key's size stays fixed whatever the identity's.
            let digest = warden_core::secret::token_hash(&who);
            Some(format!("te\n{}", warden_core::secret::hex(&digest)))
        }
        UpstreamAuth::Assertion | UpstreamAuth::Static => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_with(token: Option<Held>, failed: Option<(i64, CredentialError)>) -> Slot {
        let slot = Slot::default();
        *write_recovering(&slot.state) = SlotState { token, failed };
        slot
    }

    #[test]
    fn a_token_is_due_at_80_percent_and_sent_until_near_expiry() {
        let held = Held {
            header: HeaderValue::from_static("Bearer t"),
            refresh_at: 1_080,
            expires_at: 1_100,
        };
        let slot = slot_with(Some(held), None);
        assert!(matches!(slot.answer(1_079), Some(Ok(_))));
        assert!(slot.answer(1_080).is_none(), "due: the caller refreshes");
        assert!(
            slot.still_valid(1_094).is_some(),
            "a failed refresh keeps it"
        );
        assert!(
            slot.still_valid(1_095).is_none(),
            "not sent about to expire"
        );
    }

    #[test]
    fn a_failure_is_answered_from_memory_for_a_few_seconds() {
        let e = CredentialError::Unavailable("down".into());
        let slot = slot_with(None, Some((1_000 + FAILURE_HOLD_SECS, e)));
        assert!(matches!(
            slot.answer(1_000),
            Some(Err(CredentialError::Unavailable(_)))
        ));
        assert!(slot.answer(1_000 + FAILURE_HOLD_SECS).is_none());
    }

    #[test]
    fn the_slots_stay_bounded() {
        let creds = UpstreamCredentials::default();
        let live = creds.slot("live", 0);
        *write_recovering(&live.state) = SlotState {
            token: Some(Held {
                header: HeaderValue::from_static("Bearer t"),
                refresh_at: 80,
                expires_at: 100,
            }),
            failed: None,
        };
        for i in 0..2 * MAX_SLOTS {
            creds.slot(&format!("k{i}"), 0);
            assert!(creds.len() <= MAX_SLOTS);
        }
        // Slots without a live token went first.
        assert!(Arc::ptr_eq(&creds.slot("live", 0), &live));
    }
}
