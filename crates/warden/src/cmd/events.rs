//! `warden events …`: query, export and verify the audit log.

use std::io::{IsTerminal as _, Write as _};

use clap::{Args, Subcommand};
use warden_proto::admin::EventQuery;

use crate::admin::{with_admin, Admin};
use crate::{output, Common};

/// Events fetched per request while exporting: the most held in memory at once.
const EXPORT_PAGE: i64 = 1_000;

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
    /// Write every matching event (or the first --limit) as JSON lines to standard
    /// output, page by page.
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
    /// Only events about this server (by name).
    #[arg(long = "server-name", value_name = "NAME")]
    server_name: Option<String>,
    /// Only events at or after this time (RFC 3339 or UNIX seconds).
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (RFC 3339 or UNIX seconds).
    #[arg(long)]
    until: Option<String>,
    /// Only events after this sequence number (where a cut listing continues).
    #[arg(long = "after-seq", value_name = "SEQ")]
    after_seq: Option<i64>,
    /// At most this many events [default: 1000 for a listing, every one for export].
    #[arg(long)]
    limit: Option<i64>,
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
    fn query(&self) -> anyhow::Result<EventQuery> {
        Ok(EventQuery {
            kind: self.kind.clone(),
            client_id: self.client.clone(),
            subject: self.subject.clone(),
            server: self.server_name.clone(),
            since_ms: self.since.as_deref().map(parse_time).transpose()?,
            until_ms: self.until.as_deref().map(parse_time).transpose()?,
            after_seq: self.after_seq,
            limit: self.limit,
        })
    }
}

/// Writes the events matching `q` to standard output as JSON lines, one page at a time
/// (each written out before the next is asked for), up to `q.limit` if set. Progress
/// goes to standard error when that is a terminal.
async fn export(admin: &Admin, mut q: EventQuery) -> anyhow::Result<()> {
    let mut remaining = q.limit;
    if remaining.is_some_and(|l| l < 1) {
        anyhow::bail!("--limit must be at least 1");
    }
    let progress = std::io::stderr().is_terminal();
    let mut written = 0u64;
    loop {
        q.limit = Some(remaining.map_or(EXPORT_PAGE, |r| r.min(EXPORT_PAGE)));
        let page = admin.events(&q).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for e in &page.events {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        written += page.events.len() as u64;
        if let Some(r) = &mut remaining {
            *r -= page.events.len() as i64;
        }
        if progress {
            eprint!("\rexported {written} events");
        }
        match page.next_after_seq {
            Some(next) if remaining != Some(0) => q.after_seq = Some(next),
            _ => break,
        }
    }
    if progress {
        eprintln!("\rexported {written} events.");
    }
    Ok(())
}

/// Runs `warden events`.
pub async fn run(common: &Common, args: EventsArgs) -> anyhow::Result<()> {
    let query = match &args.cmd {
        None => Some(args.filter.query()?),
        Some(EventsCmd::Export(f)) => Some(f.query()?),
        Some(EventsCmd::Verify) => None,
    };
    with_admin(common, async |admin| match (args.cmd, query) {
        (None, Some(q)) => {
            let page = admin.events(&q).await?;
            if common.json {
                return output::json(&page);
            }
            let rows: Vec<Vec<String>> = page
                .events
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        output::time(e.ts_ms.div_euclid(1000)),
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
            if let Some(next) = page.next_after_seq {
                eprintln!(
                    "More events match than these {}: --after-seq {next} lists the next ones; \
                     `warden events export` writes them all.",
                    page.events.len()
                );
            }
            Ok(())
        }
        (Some(EventsCmd::Export(_)), Some(q)) => export(admin, q).await,
        (_, _) => {
            let report = admin.verify_events().await?;
            if common.json {
                output::json(&report)?;
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
    })
    .await
}
