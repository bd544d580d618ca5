//! MCP sessions over Streamable HTTP: rmcp's in-memory [`LocalSessionManager`], with a
//! cap on how many live at once.
//!
//! rmcp's manager keeps every session until it is deleted or idles out (five minutes), so
//! a client that initializes in a loop could grow the process without bound. This wrapper
//! remembers creation order and, when the cap is reached, closes the oldest session: its
//! client then gets 404 and, as the spec tells it to, initializes again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};

/// How many live sessions are kept before the oldest is evicted.
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The live sessions of one server.
pub(crate) struct DemoSessions {
    inner: LocalSessionManager,
    order: Mutex<Order>,
    max_sessions: usize,
}

/// Creation order, so that eviction removes the oldest session in O(log n).
#[derive(Default)]
struct Order {
    by_age: BTreeMap<u64, SessionId>,
    age_of: HashMap<SessionId, u64>,
    next_seq: u64,
}

// === impl DemoSessions ===

impl DemoSessions {
    /// A manager that keeps at most `max_sessions` (at least one) live sessions.
    pub(crate) fn new(max_sessions: usize) -> Self {
        let mut inner = LocalSessionManager::default();
        // This server keeps no replay store, so it sends no "priming" event (an id with
        // empty data) ahead of a reply: a client that saw one would treat the stream as
        // resumable and, after a disconnect, wait for a reply that is never replayed.
        inner.session_config.sse_retry = None;
        Self {
            inner,
            order: Mutex::new(Order::default()),
            max_sessions: max_sessions.max(1),
        }
    }

    /// The number of live sessions (those started and not yet deleted or evicted).
    pub(crate) fn len(&self) -> usize {
        self.lock().age_of.len()
    }

    /// Records a new session; returns the sessions to evict to stay under the cap.
    fn admit(&self, id: &SessionId) -> Vec<SessionId> {
        let mut order = self.lock();
        let seq = order.next_seq;
        order.next_seq += 1;
        order.by_age.insert(seq, id.clone());
        order.age_of.insert(id.clone(), seq);
        let mut evicted = Vec::new();
        while order.age_of.len() > self.max_sessions {
            let Some((_, oldest)) = order.by_age.pop_first() else {
                break;
            };
            order.age_of.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }

    fn forget(&self, id: &SessionId) {
        let mut order = self.lock();
        if let Some(seq) = order.age_of.remove(id) {
            order.by_age.remove(&seq);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Order> {
        // Every critical section leaves the maps consistent, so a poisoned lock is safe.
        self.order.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionManager for DemoSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        for oldest in self.admit(&id) {
            tracing::debug!("session cap reached; evicting the oldest session");
            self.inner.close_session(&oldest).await?;
        }
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.forget(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn evicts_the_oldest_when_full() {
        let sessions = DemoSessions::new(2);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (id, _transport) = sessions.create_session().await.unwrap();
            ids.push(id);
        }
        assert!(!sessions.has_session(&ids[0]).await.unwrap());
        assert!(sessions.has_session(&ids[1]).await.unwrap());
        assert!(sessions.has_session(&ids[2]).await.unwrap());
        assert_eq!(sessions.len(), 2);

        sessions.close_session(&ids[1]).await.unwrap();
        assert!(!sessions.has_session(&ids[1]).await.unwrap());
        assert_eq!(sessions.len(), 1);
    }
}
