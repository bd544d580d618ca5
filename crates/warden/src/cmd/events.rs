//! `warden events …`: query, export and verify the audit log.

use std::io::Write as _;

use clap::{Args, Subcommand};
use warden_proto::admin::EventQuery;

use crate::admin::with_admin;
use crate::{output, Common};

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
    /// Only events about this server (by name).
    #[arg(long = "server-name", value_name = "NAME")]
    server_name: Option<String>,
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
    fn query(&self) -> anyhow::Result<EventQuery> {
        Ok(EventQuery {
            kind: self.kind.clone(),
            client_id: self.client.clone(),
            subject: self.subject.clone(),
            server: self.server_name.clone(),
            since_ms: self.since.as_deref().map(parse_time).transpose()?,
            until_ms: self.until.as_deref().map(parse_time).transpose()?,
            after_seq: None,
            limit: Some(self.limit),
        })
    }
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
            let events = admin.events(&q).await?;
            if common.json {
                return output::json(&events);
            }
            let rows: Vec<Vec<String>> = events
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
            Ok(())
        }
        (Some(EventsCmd::Export(_)), Some(q)) => {
            let events = admin.events(&q).await?;
            let mut out = std::io::stdout().lock();
            for e in &events {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
            Ok(())
        }
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
