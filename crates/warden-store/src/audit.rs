//! The audit log: append-only, with a SHA-256 hash chain that makes edits, deletions
//! and reordering detectable.
//!
//! Each event's hash covers the previous event's hash and the event's own fields, in a
//! length-prefixed encoding (see [`audit_hash`]). A one-row `audit_head` table holds
//! the chain's tip; every appender writes to it first, which serialises appenders on
//! both backends and across processes. Pruning records an anchor (the seq and hash of
//! the last pruned event) so what remains still verifies.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use ring::digest;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::sql::{col, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// `prev_hash` of the first event ever appended.
pub const AUDIT_GENESIS_HASH: [u8; 32] = [0; 32];

/// Events verified per query, so verification of a long log runs in bounded memory.
const VERIFY_PAGE: i64 = 500;
/// Events returned by [`AuditStore::query`] when the filter sets no limit.
const DEFAULT_QUERY_LIMIT: i64 = 1000;

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    /// UNIX milliseconds.
    pub ts: i64,
    /// Event kind, e.g. `token.issued`, `refresh.reuse_detected`.
    pub kind: String,
    /// Client involved, if any.
    pub client_id: Option<String>,
    /// User involved, if any.
    pub subject: Option<String>,
    /// MCP server involved, if any.
    pub server: Option<String>,
    /// Further detail. Never put secrets here.
    pub detail: AuditDetail,
}

/// The detail of an event to append.
#[derive(Clone, Debug)]
pub enum AuditDetail {
    /// A JSON value, serialised when the event is appended.
    Value(serde_json::Value),
    /// JSON text already serialised, for hot paths that write it straight from a struct
    /// (no map built and dropped per event). It must be exactly what serde_json writes
    /// for the value it denotes (compact, object keys in sorted order), as
    /// [`audit_event_hash`] re-serialises the stored value; a struct whose fields are
    /// declared in sorted order, written with `serde_json::value::to_raw_value`, is.
    Text(Box<serde_json::value::RawValue>),
}

impl From<serde_json::Value> for AuditDetail {
    fn from(value: serde_json::Value) -> Self {
        AuditDetail::Value(value)
    }
}

impl PartialEq for AuditDetail {
    /// Equal when they denote the same JSON value.
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

impl serde::Serialize for AuditDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AuditDetail::Value(value) => value.serialize(serializer),
            AuditDetail::Text(text) => text.serialize(serializer),
        }
    }
}

impl AuditDetail {
    /// The detail as a JSON value (`null` for text that is not JSON).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            AuditDetail::Value(value) => value.clone(),
            AuditDetail::Text(text) => {
                serde_json::from_str(text.get()).unwrap_or(serde_json::Value::Null)
            }
        }
    }

    /// The JSON text stored and hashed.
    fn text(&self) -> Result<Cow<'_, str>, StoreError> {
        match self {
            AuditDetail::Value(value) => to_json(value, "audit detail").map(Cow::Owned),
            AuditDetail::Text(text) => {
                debug_assert_eq!(
                    self.to_value().to_string(),
                    text.get(),
                    "audit detail text is not in serde_json's form"
                );
                Ok(Cow::Borrowed(text.get()))
            }
        }
    }
}

/// A stored event with its place in the chain.
#[derive(Clone, PartialEq)]
pub struct AuditEvent {
    /// Position in the log, contiguous from 1.
    pub seq: i64,
    /// UNIX milliseconds.
    pub ts: i64,
    /// Event kind.
    pub kind: String,
    /// Client involved, if any.
    pub client_id: Option<String>,
    /// User involved, if any.
    pub subject: Option<String>,
    /// MCP server involved, if any.
    pub server: Option<String>,
    /// Further detail.
    pub detail: serde_json::Value,
    /// Hash of the previous event ([`AUDIT_GENESIS_HASH`] for the first).
    pub prev_hash: Vec<u8>,
    /// This event's hash, see [`audit_hash`].
    pub hash: Vec<u8>,
}

/// Which events [`AuditStore::query`] returns. Unset fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events with `ts >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only events with `ts < until_ms`.
    pub until_ms: Option<i64>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Only events about this client.
    pub client_id: Option<String>,
    /// Only events about this user.
    pub subject: Option<String>,
    /// Only events about this server.
    pub server: Option<String>,
    /// Only events with `seq > after_seq` (for paging).
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000).
    pub limit: Option<i64>,
}

/// One page of [`AuditStore::page`].
#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    /// The page's events, ordered by seq.
    pub events: Vec<AuditEvent>,
    /// When more events match: the seq of the page's last event, to pass as the next
    /// page's `after_seq`. `None` when this page holds the last matching event.
    pub next_after_seq: Option<i64>,
}

/// Result of [`AuditStore::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events whose hash was recomputed and matched.
    pub checked: u64,
    /// The seq of the first event that is missing, edited or out of place.
    pub first_broken: Option<i64>,
}

/// Storage for the audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends the batch atomically and returns the assigned seqs, in order. Safe under
    /// any number of concurrent appenders, in one process or several.
    async fn append(&self, events: Vec<NewAuditEvent>) -> Result<Vec<i64>, StoreError>;
    /// Events matching `filter`, ordered by seq.
    async fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
    /// Like [`AuditStore::query`], and says whether more events match: `filter.after_seq`
    /// is the cursor and `filter.limit` the page size. Following `next_after_seq` until
    /// it is `None` visits every matching event once, in seq order, a page in memory at
    /// a time.
    async fn page(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError>;
    /// Recomputes the chain from the prune anchor to the head, page by page.
    /// Run it while no prune is in progress; appends may continue.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;
    /// Deletes the oldest events, up to (not including) the first with `ts >= ts_ms`,
    /// and moves the anchor so the remaining chain still verifies. Returns the count.
    async fn prune_before(&self, ts_ms: i64) -> Result<u64, StoreError>;
}

pub(crate) const EVENT_COLUMNS: &str =
    "seq, ts, kind, client_id, subject, server, detail, prev_hash, hash";

/// The chain's tip, as an appender advances it through a batch.
pub(crate) struct Tip {
    pub(crate) seq: i64,
    pub(crate) hash: Vec<u8>,
}

/// An event given its place in the chain: the row both append paths insert.
pub(crate) struct Linked<'a> {
    pub(crate) seq: i64,
    pub(crate) event: &'a NewAuditEvent,
    /// The detail's JSON text, exactly as hashed.
    pub(crate) detail: Cow<'a, str>,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: [u8; 32],
}

impl Tip {
    /// Places `event` right after the tip and moves the tip to it.
    pub(crate) fn link<'a>(&mut self, event: &'a NewAuditEvent) -> Result<Linked<'a>, StoreError> {
        self.seq += 1;
        let detail = event.detail.text()?;
        let hash = audit_hash(
            &self.hash,
            self.seq,
            event.ts,
            &event.kind,
            event.client_id.as_deref(),
            event.subject.as_deref(),
            event.server.as_deref(),
            &detail,
        );
        Ok(Linked {
            seq: self.seq,
            event,
            detail,
            prev_hash: std::mem::replace(&mut self.hash, hash.to_vec()),
            hash,
        })
    }
}

/// The chain tip and prune anchor from `audit_head`.
struct Head {
    seq: i64,
    hash: Vec<u8>,
    anchor_seq: i64,
    anchor_hash: Vec<u8>,
}

/// A bound value of a dynamically built filter.
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

// === hashing ===

/// The hash of one event: SHA-256 over `prev_hash` followed by the event's fields,
/// each length-prefixed so no two field lists encode alike.
///
/// Integers are 8 bytes big-endian; strings are an 8-byte big-endian length then UTF-8;
/// optional strings are a `0` byte when absent, else `1` then the string. `detail_json`
/// is the JSON text exactly as stored.
#[allow(clippy::too_many_arguments)]
pub fn audit_hash(
    prev_hash: &[u8],
    seq: i64,
    ts: i64,
    kind: &str,
    client_id: Option<&str>,
    subject: Option<&str>,
    server: Option<&str>,
    detail_json: &str,
) -> [u8; 32] {
    fn text(ctx: &mut digest::Context, s: &str) {
        ctx.update(&(s.len() as u64).to_be_bytes());
        ctx.update(s.as_bytes());
    }
    fn opt_text(ctx: &mut digest::Context, s: Option<&str>) {
        match s {
            None => ctx.update(&[0]),
            Some(s) => {
                ctx.update(&[1]);
                text(ctx, s);
            }
        }
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&ts.to_be_bytes());
    text(&mut ctx, kind);
    opt_text(&mut ctx, client_id);
    opt_text(&mut ctx, subject);
    opt_text(&mut ctx, server);
    text(&mut ctx, detail_json);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// [`audit_hash`] of an event as returned by [`AuditStore::query`], for an external
/// verifier. The detail is re-serialised, which reproduces the stored text because the
/// store wrote it with the same serializer.
pub fn audit_event_hash(event: &AuditEvent) -> [u8; 32] {
    let detail = serde_json::to_string(&event.detail).unwrap_or_default();
    audit_hash(
        &event.prev_hash,
        event.seq,
        event.ts,
        &event.kind,
        event.client_id.as_deref(),
        event.subject.as_deref(),
        event.server.as_deref(),
        &detail,
    )
}

// === impl AuditEvent ===

impl AuditEvent {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            seq: col(row, "seq")?,
            ts: col(row, "ts")?,
            kind: col(row, "kind")?,
            client_id: col(row, "client_id")?,
            subject: col(row, "subject")?,
            server: col(row, "server")?,
            detail: col_json(row, "detail")?,
            prev_hash: col(row, "prev_hash")?,
            hash: col(row, "hash")?,
        })
    }
}

impl fmt::Debug for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("seq", &self.seq)
            .field("ts", &self.ts)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("server", &self.server)
            .field("detail", &self.detail)
            .field("prev_hash", &Redacted)
            .field("hash", &Redacted)
            .finish()
    }
}

// === impl VerifyReport ===

impl VerifyReport {
    fn broken(checked: u64, seq: i64) -> Self {
        VerifyReport {
            checked,
            first_broken: Some(seq),
        }
    }
}

// === impl Store ===

impl Store {
    /// Takes the appenders' lock and reads the head: a no-op write to the head row,
    /// which SQLite turns into the database write lock and PostgreSQL into a row lock,
    /// returning the row (one round trip). Must be the first statement of the
    /// transaction.
    async fn lock_audit_head(&self, tx: &mut Transaction<'_, Any>) -> Result<Head, StoreError> {
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq WHERE id = 1 \
             RETURNING seq, hash, anchor_seq, anchor_hash",
        )
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".to_owned()))?;
        head_of(&row)
    }

    /// At most `limit` events matching `filter` (whose own `limit` is ignored), by seq.
    async fn select_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Arg<'_>> = Vec::new();
        let ints = [
            ("ts >= ?", filter.since_ms),
            ("ts < ?", filter.until_ms),
            ("seq > ?", filter.after_seq),
        ];
        for (clause, value) in ints {
            if let Some(v) = value {
                clauses.push(clause);
                args.push(Arg::Int(v));
            }
        }
        let texts = [
            ("kind = ?", &filter.kind),
            ("client_id = ?", &filter.client_id),
            ("subject = ?", &filter.subject),
            ("server = ?", &filter.server),
        ];
        for (clause, value) in texts {
            if let Some(v) = value {
                clauses.push(clause);
                args.push(Arg::Text(v));
            }
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM audit_events {filter_sql} ORDER BY seq LIMIT ?");
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        let rows = query.bind(limit.max(0)).fetch_all(self.db()?).await?;
        rows.iter().map(AuditEvent::from_row).collect()
    }

    async fn read_audit_head<'e, E>(&self, executor: E) -> Result<Head, StoreError>
    where
        E: sqlx::Executor<'e, Database = Any>,
    {
        let row =
            sqlx::query("SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1")
                .fetch_optional(executor)
                .await?
                .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".to_owned()))?;
        head_of(&row)
    }
}

fn head_of(row: &AnyRow) -> Result<Head, StoreError> {
    Ok(Head {
        seq: col(row, "seq")?,
        hash: col(row, "hash")?,
        anchor_seq: col(row, "anchor_seq")?,
        anchor_hash: col(row, "anchor_hash")?,
    })
}

#[async_trait]
impl AuditStore for Store {
    async fn append(&self, events: Vec<NewAuditEvent>) -> Result<Vec<i64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(appender) = &self.audit_appender {
            return appender.append(events).await;
        }
        let mut tx = self.db()?.begin().await?;
        let head = self.lock_audit_head(&mut tx).await?;
        // One multi-row INSERT per chunk: a statement per event would cost a round trip
        // each to the database (a thread hop for SQLite), which dominated the token path.
        const CHUNK: usize = 256;
        let mut tip = Tip {
            seq: head.seq,
            hash: head.hash,
        };
        let mut seqs = Vec::with_capacity(events.len());
        for chunk in events.chunks(CHUNK) {
            let rows = chunk
                .iter()
                .map(|event| tip.link(event))
                .collect::<Result<Vec<_>, _>>()?;
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
            let sql = self
                .q(&format!(
                    "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES {values}"
                ))
                .into_owned();
            let mut query = sqlx::query(&sql);
            for row in rows {
                seqs.push(row.seq);
                let event = row.event;
                query = query
                    .bind(row.seq)
                    .bind(event.ts)
                    .bind(event.kind.as_str())
                    .bind(event.client_id.as_deref())
                    .bind(event.subject.as_deref())
                    .bind(event.server.as_deref())
                    .bind(row.detail.into_owned())
                    .bind(row.prev_hash)
                    .bind(row.hash.to_vec());
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query(&self.q("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"))
            .bind(tip.seq)
            .bind(tip.hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(seqs)
    }

    async fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.select_events(filter, filter.limit.unwrap_or(DEFAULT_QUERY_LIMIT))
            .await
    }

    async fn page(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let limit = filter.limit.unwrap_or(DEFAULT_QUERY_LIMIT).max(0);
        // One row past the page tells whether another page exists, without a count.
        let mut events = self.select_events(filter, limit.saturating_add(1)).await?;
        let more = usize::try_from(limit).is_ok_and(|l| events.len() > l);
        if more {
            events.pop();
        }
        let next_after_seq = if more {
            events.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            events,
            next_after_seq,
        })
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // Everything up to this head was committed together with it; later appends
        // are left for the next run.
        let head = self.read_audit_head(self.db()?).await?;
        let mut prev_seq = head.anchor_seq;
        let mut prev_hash = head.anchor_hash;
        let mut checked = 0u64;
        let page_sql = self
            .q(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ? \
                 ORDER BY seq LIMIT ?"
            ))
            .into_owned();
        while prev_seq < head.seq {
            let rows = sqlx::query(&page_sql)
                .bind(prev_seq)
                .bind(head.seq)
                .bind(VERIFY_PAGE)
                .fetch_all(self.db()?)
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq: i64 = col(row, "seq")?;
                if seq != prev_seq + 1 {
                    // A gap: the missing event is the first break.
                    return Ok(VerifyReport::broken(checked, prev_seq + 1));
                }
                let stored_prev: Vec<u8> = col(row, "prev_hash")?;
                let stored_hash: Vec<u8> = col(row, "hash")?;
                // Hash the detail text as stored, not a re-serialisation of it.
                let detail: String = col(row, "detail")?;
                let client_id: Option<String> = col(row, "client_id")?;
                let subject: Option<String> = col(row, "subject")?;
                let server: Option<String> = col(row, "server")?;
                let kind: String = col(row, "kind")?;
                let expected = audit_hash(
                    &prev_hash,
                    seq,
                    col(row, "ts")?,
                    &kind,
                    client_id.as_deref(),
                    subject.as_deref(),
                    server.as_deref(),
                    &detail,
                );
                if stored_prev != prev_hash || stored_hash.as_slice() != expected.as_slice() {
                    return Ok(VerifyReport::broken(checked, seq));
                }
                checked += 1;
                prev_seq = seq;
                prev_hash = stored_hash;
            }
        }
        if prev_seq != head.seq || prev_hash != head.hash {
            // Events missing at the tail, or the head itself was rewritten.
            return Ok(VerifyReport::broken(checked, prev_seq + 1));
        }
        Ok(VerifyReport {
            checked,
            first_broken: None,
        })
    }

    async fn prune_before(&self, ts_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.db()?.begin().await?;
        let head = self.lock_audit_head(&mut tx).await?;
        // Prune a prefix by seq, so the chain stays contiguous even if timestamps
        // from several writers interleave slightly.
        let first_kept =
            sqlx::query(&self.q("SELECT seq FROM audit_events WHERE ts >= ? ORDER BY seq LIMIT 1"))
                .bind(ts_ms)
                .fetch_optional(&mut *tx)
                .await?;
        let cut = match first_kept {
            Some(row) => col::<i64>(&row, "seq")? - 1,
            None => head.seq,
        };
        if cut <= head.anchor_seq {
            tx.rollback().await?;
            return Ok(0);
        }
        let anchor = sqlx::query(&self.q("SELECT hash FROM audit_events WHERE seq = ?"))
            .bind(cut)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("audit event {cut} is missing")))?;
        let anchor_hash: Vec<u8> = col(&anchor, "hash")?;
        let deleted = sqlx::query(&self.q("DELETE FROM audit_events WHERE seq <= ?"))
            .bind(cut)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.q("UPDATE audit_head SET anchor_seq = ?, anchor_hash = ? WHERE id = 1"))
            .bind(cut)
            .bind(anchor_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}
