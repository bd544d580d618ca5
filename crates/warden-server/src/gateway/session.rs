//! Session ids bound to the identity that opened the session.
//!
//! The gateway never hands the upstream's `Mcp-Session-Id` to the client. It hands out
//! its own id, which carries the upstream's id, the tools the session is pinned to (see
//! dynamic scoping in the [module docs](super)) and a MAC over both plus the server name
//! and the token's `sub` and `client_id`:
//!
//! ```text
//! w1.<base64url(upstream id)>.<base64url(pinned tools JSON)>.<base64url(HMAC-SHA256)>
//! ```
//!
//! A request's session id is accepted only if the MAC verifies for *this* request's
//! server and identity; anything else is "Session not found" (404), which tells a client
//! to start a new session and tells a thief nothing. Because the binding is in the id,
//! there is no table to lose on restart or to share between replicas. The MAC key is
//! derived from the master key. Ids that verified are remembered with what they verified
//! for (a bounded memo, lost on restart at no cost): every request of a session carries
//! the same id, and a lookup costs a fraction of decoding and MACing it again.
//!
//! An upstream that does not use sessions gets none forwarded; if such a session is
//! pinned, the gateway still issues an id (with an empty upstream part) to carry the pin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderName, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use warden_core::secret::SecretHasher;

use super::validate::Principal;

const VERSION: &str = "w1";

/// Longest session id accepted, to bound work on hostile input.
const MAX_LEN: usize = 8 * 1024;

/// The header carrying a session id, on both hops.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// Verified ids remembered at most; the memo starts over when it is full.
const MEMO_CAPACITY: usize = 16_384;

/// Signs and checks gateway session ids.
pub struct SessionBinder {
    mac: SecretHasher,
    /// Ids that verified, keyed by their bytes.
    memo: Mutex<HashMap<Box<[u8]>, Verified>>,
}

/// What an id verified for, and what it carries.
struct Verified {
    server: Box<str>,
    subject: Box<str>,
    client_id: Box<str>,
    session: Arc<Session>,
}

/// A session id that verified for the current identity.
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    /// The upstream's own session id; `None` for a gateway-only session.
    pub upstream: Option<String>,
    /// The tools the session is pinned to, if it declared any.
    pub pinned: Option<Vec<String>>,
}

// === impl SessionBinder ===

impl SessionBinder {
    /// A binder with MAC key `mac`.
    pub fn new(mac: SecretHasher) -> Self {
        Self {
            mac,
            memo: Mutex::default(),
        }
    }

    /// The client-facing id for the upstream session `upstream`, bound to `principal`.
    pub fn wrap(
        &self,
        server: &str,
        principal: &Principal,
        upstream: Option<&str>,
        pinned: Option<&[String]>,
    ) -> Option<HeaderValue> {
        let upstream = upstream.unwrap_or("");
        let pinned = match pinned {
            Some(tools) => serde_json::to_string(tools).ok()?,
            None => String::new(),
        };
        let tag = self
            .mac
            .hash(&mac_input(server, principal, upstream, &pinned));
        let id = format!(
            "{VERSION}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(upstream),
            URL_SAFE_NO_PAD.encode(&pinned),
            URL_SAFE_NO_PAD.encode(tag)
        );
        HeaderValue::try_from(id).ok()
    }

    /// Checks a client-presented id against this request's server and identity.
    pub fn unwrap(
        &self,
        server: &str,
        principal: &Principal,
        value: &HeaderValue,
    ) -> Option<Arc<Session>> {
        let bytes = value.as_bytes();
        if bytes.len() > MAX_LEN {
            return None;
        }
        if let Some(known) = self.recall(bytes, server, principal) {
            return Some(known);
        }
        let session = Arc::new(self.verify(server, principal, bytes)?);
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(
            bytes.into(),
            Verified {
                server: server.into(),
                subject: principal.subject().into(),
                client_id: principal.client_id().into(),
                session: Arc::clone(&session),
            },
        );
        Some(session)
    }

    /// The session of `id` if it verified before for this server and identity.
    fn recall(&self, id: &[u8], server: &str, principal: &Principal) -> Option<Arc<Session>> {
        let memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        let known = memo.get(id)?;
        let same = *known.server == *server
            && *known.subject == *principal.subject()
            && *known.client_id == *principal.client_id();
        same.then(|| Arc::clone(&known.session))
    }

    /// Decodes `id` and checks its MAC for this server and identity.
    fn verify(&self, server: &str, principal: &Principal, id: &[u8]) -> Option<Session> {
        let text = std::str::from_utf8(id).ok()?;
        let mut parts = text.split('.');
        let (Some(VERSION), Some(upstream), Some(pinned), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let decode = |p: &str| {
            URL_SAFE_NO_PAD
                .decode(p)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let upstream = decode(upstream)?;
        let pinned = decode(pinned)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !self
            .mac
            .verify(&mac_input(server, principal, &upstream, &pinned), &tag)
        {
            return None;
        }
        let pinned = if pinned.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&pinned).ok()?)
        };
        Some(Session {
            upstream: (!upstream.is_empty()).then_some(upstream),
            pinned,
        })
    }
}

/// Length-prefixed fields, so no two different tuples share an input.
fn mac_input(server: &str, principal: &Principal, upstream: &str, pinned: &str) -> String {
    let fields = [
        VERSION,
        server,
        principal.subject(),
        principal.client_id(),
        upstream,
        pinned,
    ];
    let mut out = String::with_capacity(fields.iter().map(|f| f.len() + 8).sum());
    for f in fields {
        out.push_str(&f.len().to_string());
        out.push(':');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::validate::tests::{principal, principal_of};

    #[test]
    fn bound_to_identity_server_and_content() {
        let binder = SessionBinder::new(SecretHasher::new(b"k"));
        let alice = principal("alice", 0);
        let bob = principal("bob", 0);
        let pinned = vec!["a".to_owned()];
        let id = binder
            .wrap("s", &alice, Some("up-1"), Some(&pinned))
            .unwrap();
        assert_eq!(
            binder.unwrap("s", &alice, &id).as_deref(),
            Some(&Session {
                upstream: Some("up-1".into()),
                pinned: Some(pinned),
            })
        );
        assert_eq!(binder.unwrap("s", &bob, &id), None, "another identity");
        assert_eq!(binder.unwrap("t", &alice, &id), None, "another server");
        let other_key = SessionBinder::new(SecretHasher::new(b"other"));
        assert_eq!(other_key.unwrap("s", &alice, &id), None);
        // Dropping the pin is tampering.
        let text = id.to_str().unwrap();
        let parts: Vec<&str> = text.split('.').collect();
        let forged = format!("{}.{}..{}", parts[0], parts[1], parts[3]);
        assert_eq!(
            binder.unwrap("s", &alice, &HeaderValue::try_from(forged).unwrap()),
            None
        );
        assert_eq!(
            binder.unwrap("s", &alice, &HeaderValue::from_static("up-1")),
            None
        );

        let plain = binder.wrap("s", &alice, None, None).unwrap();
        assert_eq!(
            binder.unwrap("s", &alice, &plain).as_deref(),
            Some(&Session {
                upstream: None,
                pinned: None
            })
        );
    }

    /// An id that verified is remembered only for what it verified for.
    #[test]
    fn the_memo_answers_only_for_the_same_server_and_identity() {
        let binder = SessionBinder::new(SecretHasher::new(b"k"));
        let alice = principal_of("alice", "c");
        let id = binder.wrap("s", &alice, Some("up-1"), None).unwrap();
        let first = binder.unwrap("s", &alice, &id).unwrap();
        let again = binder.unwrap("s", &alice, &id).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second lookup is the memo's"
        );
        for (server, who, why) in [
            ("t", principal_of("alice", "c"), "another server"),
            ("s", principal_of("bob", "c"), "another subject"),
            ("s", principal_of("alice", "d"), "another client"),
        ] {
            assert_eq!(binder.unwrap(server, &who, &id), None, "{why}");
        }
        assert!(binder.unwrap("s", &alice, &id).is_some());

        // Full, it starts over; ids still verify.
        for n in 0..MEMO_CAPACITY {
            let other = binder
                .wrap("s", &alice, Some(&n.to_string()), None)
                .unwrap();
            assert!(binder.unwrap("s", &alice, &other).is_some());
        }
        assert!(binder.memo.lock().unwrap().len() <= MEMO_CAPACITY);
        let after = binder.unwrap("s", &alice, &id).unwrap();
        assert_eq!(after.upstream.as_deref(), Some("up-1"));
    }
}
