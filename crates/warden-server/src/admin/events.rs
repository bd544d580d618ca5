//! The audit log through the admin API: `/admin/v1/events` and its verification.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use warden_core::secret::hex;
use warden_proto::admin::{ChainReport, EventPage, EventQuery, EventView};
use warden_store::{AuditEvent, AuditFilter, AuditStore};

use super::{AdminError, PREFIX};
use crate::App;

/// Events returned when the query sets no limit.
pub const DEFAULT_LIMIT: i64 = 1_000;
/// Most events one query returns; page with `after_seq` for more.
pub const MAX_LIMIT: i64 = 10_000;

/// The wire view of a stored event.
pub fn view(e: &AuditEvent) -> EventView {
    EventView {
        seq: e.seq,
        ts_ms: e.ts,
        kind: e.kind.clone(),
        client_id: e.client_id.clone(),
        subject: e.subject.clone(),
        server: e.server.clone(),
        detail: e.detail.clone(),
        prev_hash: hex(&e.prev_hash),
        hash: hex(&e.hash),
    }
}

/// One page of the events matching `q`, by sequence number; its `next_after_seq`
/// continues from where it was cut.
pub async fn query(app: &App, q: &EventQuery) -> Result<EventPage, AdminError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::InvalidRequest(
            format!("limit must be between 1 and {MAX_LIMIT}").into(),
        ));
    }
    let filter = AuditFilter {
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        kind: q.kind.clone(),
        client_id: q.client_id.clone(),
        subject: q.subject.clone(),
        server: q.server.clone(),
        after_seq: q.after_seq,
        limit: Some(limit),
    };
    let page = AuditStore::page(&app.store, &filter).await?;
    Ok(EventPage {
        events: page.events.iter().map(view).collect(),
        truncated: page.next_after_seq.is_some(),
        next_after_seq: page.next_after_seq,
    })
}

/// Recomputes the hash chain and reports the first broken link.
pub async fn verify(app: &App) -> Result<ChainReport, AdminError> {
    let r = AuditStore::verify(&app.store).await?;
    Ok(ChainReport {
        checked: r.checked,
        first_broken: r.first_broken,
    })
}

// === handlers ===

async fn query_h(
    State(app): State<App>,
    q: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventPage>, AdminError> {
    let Query(q) = q.map_err(|e| AdminError::InvalidRequest(e.body_text().into()))?;
    query(&app, &q).await.map(Json)
}

async fn verify_h(State(app): State<App>) -> Result<Json<ChainReport>, AdminError> {
    verify(&app).await.map(Json)
}

/// `/admin/v1/events` and `/admin/v1/events/verify`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(&format!("{PREFIX}/events"), get(query_h))
        .route(&format!("{PREFIX}/events/verify"), get(verify_h))
}
