//! `warden events …`: query, export and verify the audit log.

use std::io::Write as _;

use clap::{Args, Subcommand};
use warden_store::{AuditEvent, AuditFilter, AuditStore};

use crate::{datadir, output, Common};

/// `warden events` subcommands; without one, lists events.
#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(subcommand)]
    cmd: Option<EventsCmd>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Subcommand, Debug)]
enum EventsCmd {
    /// Write matching events as JSON lines to standard output.
    Export(FilterArgs),
    /// Recompute the hash chain and report the first broken link.
    Verify,
}

/// Which events.
#[derive(Args, Debug, Clone, Default)]
struct FilterArgs {
    /// Only events of this kind (e.g. token.issued, refresh.reuse_detected).
    #[arg(long)]
    kind: Option<String>,
    /// Only events about this client.
    #[arg(long)]
    client: Option<String>,
    /// Only events about this subject.
    #[arg(long)]
    subject: Option<String>,
    /// Only events about this server.
    #[arg(long)]
    server: Option<String>,
    /// Only events at or after this time (RFC 3339 or UNIX seconds).
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (RFC 3339 or UNIX seconds).
    #[arg(long)]
    until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
}

fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs * 1000);
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| anyhow::anyhow!("{text:?} is neither RFC 3339 nor UNIX seconds"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<AuditFilter> {
        Ok(AuditFilter {
            kind: self.kind.clone(),
            client_id: self.client.clone(),
            subject: self.subject.clone(),
            server: self.server.clone(),
            since_ms: self.since.as_deref().map(parse_time).transpose()?,
            until_ms: self.until.as_deref().map(parse_time).transpose()?,
            limit: Some(self.limit),
            ..Default::default()
        })
    }
}

/// One event as a JSON line (hashes in hex).
fn to_json(e: &AuditEvent) -> serde_json::Value {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    serde_json::json!({
        "seq": e.seq, "ts_ms": e.ts, "kind": e.kind, "client_id": e.client_id,
        "subject": e.subject, "server": e.server, "detail": e.detail,
        "prev_hash": hex(&e.prev_hash), "hash": hex(&e.hash),
    })
}

/// Runs `warden events`.
pub async fn run(common: &Common, args: EventsArgs) -> anyhow::Result<()> {
    let o = datadir::open(&common.data_dir).await?;
    let result = match args.cmd {
        None => {
            let events = AuditStore::query(&o.store, &args.filter.filter()?).await?;
            if common.json {
                output::json(&events.iter().map(to_json).collect::<Vec<_>>())
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.seq.to_string(),
                            output::time(e.ts.div_euclid(1000)),
                            e.kind.clone(),
                            e.client_id.clone().unwrap_or_default(),
                            e.subject.clone().unwrap_or_default(),
                            e.server.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::table(
                    &["SEQ", "TIME", "KIND", "CLIENT", "SUBJECT", "SERVER"],
                    &rows,
                );
                Ok(())
            }
        }
        Some(EventsCmd::Export(f)) => {
            let events = AuditStore::query(&o.store, &f.filter()?).await?;
            let mut out = std::io::stdout().lock();
            for e in &events {
                writeln!(out, "{}", to_json(e))?;
            }
            Ok(())
        }
        Some(EventsCmd::Verify) => {
            let report = AuditStore::verify(&o.store).await?;
            if common.json {
                output::json(
                    &serde_json::json!({ "checked": report.checked, "first_broken": report.first_broken }),
                )?;
            } else {
                match report.first_broken {
                    None => println!("Audit chain intact: {} events verified.", report.checked),
                    Some(seq) => println!(
                        "Audit chain BROKEN at event {seq} ({} verified before it).",
                        report.checked
                    ),
                }
            }
            match report.first_broken {
                None => Ok(()),
                Some(seq) => Err(anyhow::anyhow!("audit chain broken at event {seq}")),
            }
        }
    };
    o.store.close().await;
    result
}
