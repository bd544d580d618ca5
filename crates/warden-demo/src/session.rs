//! MCP sessions: created by `initialize`, named by the `Mcp-Session-Id` header, ended by
//! `DELETE` or by eviction.
//!
//! A session owns a `watch` sender that nobody ever sends on: its only job is to be dropped.
//! Every `GET` stream of the session holds a receiver and ends when `changed()` reports the
//! sender gone, so removing a session from the map is all it takes to close its streams.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;
use uuid::Uuid;

/// How many live sessions the store keeps before evicting the oldest.
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The live sessions of one server.
pub(crate) struct SessionStore {
    inner: Mutex<Sessions>,
    max_sessions: usize,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Session>,
    /// Creation order, so that eviction removes the oldest session in O(log n).
    by_age: BTreeMap<u64, String>,
    next_seq: u64,
}

struct Session {
    seq: u64,
    /// Dropped when the session ends; see the module docs.
    closed: watch::Sender<()>,
}

impl SessionStore {
    /// A store that keeps at most `max_sessions` (at least one) live sessions.
    pub(crate) fn new(max_sessions: usize) -> Self {
        Self {
            inner: Mutex::new(Sessions::default()),
            max_sessions: max_sessions.max(1),
        }
    }

    /// Starts a session and returns its id, a random UUID v4 (visible ASCII, as the
    /// transport requires). When the store is full the oldest session is evicted: its
    /// client then gets 404 and, as the spec tells it to, initializes again.
    pub(crate) fn create(&self) -> String {
        let id = Uuid::new_v4().to_string();
        let (closed, _) = watch::channel(());
        let mut sessions = self.lock();
        while sessions.by_id.len() >= self.max_sessions {
            let Some((_, oldest)) = sessions.by_age.pop_first() else {
                break;
            };
            sessions.by_id.remove(&oldest);
        }
        let seq = sessions.next_seq;
        sessions.next_seq += 1;
        sessions.by_age.insert(seq, id.clone());
        sessions.by_id.insert(id.clone(), Session { seq, closed });
        id
    }

    /// Whether `id` names a live session.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lock().by_id.contains_key(id)
    }

    /// A receiver that reports an error from `changed()` once the session ends, or `None`
    /// when `id` names no live session.
    pub(crate) fn subscribe(&self, id: &str) -> Option<watch::Receiver<()>> {
        self.lock()
            .by_id
            .get(id)
            .map(|session| session.closed.subscribe())
    }

    /// Ends a session. Returns whether it existed.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let mut sessions = self.lock();
        match sessions.by_id.remove(id) {
            Some(session) => {
                sessions.by_age.remove(&session.seq);
                true
            }
            None => false,
        }
    }

    /// The number of live sessions.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // The map stays consistent even if a holder panicked: every critical section
        // above leaves it valid between statements.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_contains_remove() {
        let store = SessionStore::new(10);
        let id = store.create();
        assert!(store.contains(&id));
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert!(store.remove(&id));
        assert!(!store.contains(&id));
        assert!(!store.remove(&id));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn evicts_the_oldest_when_full() {
        let store = SessionStore::new(2);
        let first = store.create();
        let second = store.create();
        let third = store.create();
        assert!(!store.contains(&first));
        assert!(store.contains(&second));
        assert!(store.contains(&third));
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn removing_a_session_wakes_its_subscribers() {
        let store = SessionStore::new(10);
        let id = store.create();
        let mut closed = store.subscribe(&id).unwrap();
        assert!(store.subscribe("nope").is_none());
        store.remove(&id);
        assert!(closed.changed().await.is_err());
    }
}
