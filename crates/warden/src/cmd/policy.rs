//! `warden apply -f FILE` and `warden policy show`: the declarative fleet policy.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;
use serde_json::json;
use warden_core::policy::{diff, Policy, Registry};
use warden_core::scope::ScopeSet;
use warden_store::{
    AuditStore, ClientRecord, ClientStore, NewAuditEvent, PolicyStore, ServerRecord, ServerStore,
    StoreError,
};

use crate::{datadir, output, Common};

/// Arguments of `warden apply`.
#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// The policy file (TOML).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `warden policy` subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Print the policy as last applied (the file's text), or its evaluated form with --json.
    Show,
}

struct StoreRegistry {
    servers: Vec<ServerRecord>,
    clients: Vec<ClientRecord>,
}

impl Registry for StoreRegistry {
    fn server_scopes(&self, name: &str) -> Option<ScopeSet> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| ScopeSet::from_iter_valid(s.tool_groups.iter().map(|g| g.scope.clone())))
    }

    fn client_id(&self, key: &str) -> Option<String> {
        if let Some(c) = self.clients.iter().find(|c| c.client_id == key) {
            return Some(c.client_id.clone());
        }
        let mut named = self.clients.iter().filter(|c| c.name == key);
        match (named.next(), named.next()) {
            (Some(c), None) => Some(c.client_id.clone()),
            _ => None,
        }
    }
}

/// Runs `warden apply`.
pub async fn apply(common: &Common, args: ApplyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let o = datadir::open(&common.data_dir).await?;
    let registry = StoreRegistry {
        servers: ServerStore::list(&o.store).await?,
        clients: ClientStore::list(&o.store).await?,
    };
    let name = args.file.display().to_string();
    let new = match Policy::parse(&text, &registry) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("{name}:{e}");
            }
            bail!("{} error(s) in {name}; nothing was changed", errors.len());
        }
    };
    let current = PolicyStore::current(&o.store).await?;
    let old: Policy = match &current {
        Some(c) => serde_json::from_str(&c.document)
            .map_err(|e| anyhow!("the stored policy is unreadable: {e}"))?,
        None => Policy::default(),
    };
    let changes = diff(&old, &new);
    let version = current.as_ref().map_or(0, |c| c.version);
    if args.dry_run || changes.is_empty() {
        if common.json {
            output::json(
                &json!({ "dry_run": args.dry_run, "version": version, "changes": changes }),
            )?;
        } else if changes.is_empty() {
            println!("No changes (policy version {version}).");
        } else {
            for c in &changes {
                println!("{c}");
            }
            println!("(dry run: nothing was changed)");
        }
        o.store.close().await;
        return Ok(());
    }
    let document = serde_json::to_string(&new)?;
    let now = o.clock.now();
    let next = match PolicyStore::replace(&o.store, version, &document, &text, now).await {
        Ok(v) => v,
        Err(StoreError::Conflict(m)) => bail!("{m}"),
        Err(e) => return Err(e.into()),
    };
    let event = NewAuditEvent {
        ts: o.clock.now_ms(),
        kind: "policy.applied".into(),
        client_id: None,
        subject: None,
        server: None,
        detail: json!({ "version": next, "changes": changes }),
    };
    AuditStore::append(&o.store, vec![event]).await?;
    if common.json {
        output::json(&json!({ "dry_run": false, "version": next, "changes": changes }))?;
    } else {
        for c in &changes {
            println!("{c}");
        }
        println!(
            "Applied policy version {next}. Running servers pick it up within {}s.",
            crate::cmd::serve::MAINTENANCE_EVERY.as_secs()
        );
    }
    o.store.close().await;
    Ok(())
}

/// Runs `warden policy …`.
pub async fn run(common: &Common, cmd: PolicyCmd) -> anyhow::Result<()> {
    let o = datadir::open(&common.data_dir).await?;
    match cmd {
        PolicyCmd::Show => match PolicyStore::current(&o.store).await? {
            None if common.json => output::json(&json!({ "version": 0, "policy": Policy::default() }))?,
            None => println!("No policy applied: defaults (users may grant any scope a server defines; machine clients get their registered scopes)."),
            Some(p) if common.json => {
                let doc: serde_json::Value = serde_json::from_str(&p.document)?;
                output::json(&json!({ "version": p.version, "updated_at": p.updated_at, "policy": doc }))?;
            }
            Some(p) => print!("{}", p.source),
        },
    }
    o.store.close().await;
    Ok(())
}
