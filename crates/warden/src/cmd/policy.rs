//! `warden apply -f FILE` and `warden policy show`: the declarative fleet policy, on the
//! data dir or through the admin API (`PUT`/`GET /admin/v1/policy`), checked by the same
//! parser either way.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use serde_json::json;

use crate::admin::with_admin;
use crate::{output, Common};

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

/// Runs `warden apply`.
pub async fn apply(common: &Common, args: ApplyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let name = args.file.display().to_string();
    let outcome = with_admin(common, async |admin| {
        admin.apply_policy(&text, args.dry_run).await
    })
    .await?;
    let applied = match outcome {
        Ok(applied) => applied,
        Err(problems) => {
            for p in &problems {
                match p.line {
                    Some(l) => eprintln!("{name}:line {l}: {}", p.message),
                    None => eprintln!("{name}: {}", p.message),
                }
            }
            bail!("{} error(s) in {name}; nothing was changed", problems.len());
        }
    };
    if common.json {
        return output::json(&json!({
            "dry_run": applied.dry_run,
            "version": applied.version,
            "changes": applied.changes,
        }));
    }
    if applied.changes.is_empty() {
        println!("No changes (policy version {}).", applied.version);
        return Ok(());
    }
    for c in &applied.changes {
        println!("{c}");
    }
    if applied.dry_run {
        println!("(dry run: nothing was changed)");
    } else {
        println!(
            "Applied policy version {}. Running servers pick it up within {}s.",
            applied.version,
            crate::cmd::serve::MAINTENANCE_EVERY.as_secs()
        );
    }
    Ok(())
}

/// Runs `warden policy …`.
pub async fn run(common: &Common, cmd: PolicyCmd) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::Show => {
            let p = with_admin(common, async |admin| admin.policy().await).await?;
            if common.json {
                let mut v = json!({ "version": p.version, "policy": p.policy });
                if let Some(at) = p.updated_at {
                    v["updated_at"] = json!(at);
                }
                output::json(&v)?;
            } else if p.version == 0 {
                println!("No policy applied: defaults (users may grant any scope a server defines; machine clients get their registered scopes).");
            } else {
                print!("{}", p.source);
            }
        }
    }
    Ok(())
}
