//! `warden keys …`: signing keys and their rotation.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;
use warden_server::rotation;
use warden_store::{AuditStore, KeyStore, NewAuditEvent};

use crate::{datadir, output, Common};

/// `warden keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// List signing keys with their state and dates.
    List,
    /// Rotate now: publish a new key that signs after the publish-ahead period.
    Rotate {
        /// Sign with the new key at once (after a compromise). Relying parties that
        /// cached the JWKS may refuse new tokens until they refetch it.
        #[arg(long)]
        immediate: bool,
    },
}

/// Runs a `warden keys` subcommand.
pub async fn run(common: &Common, cmd: KeysCmd) -> anyhow::Result<()> {
    let o = datadir::open(&common.data_dir).await?;
    let now = o.clock.now();
    match cmd {
        KeysCmd::List => {
            let keys: Vec<_> = KeyStore::list(&o.store)
                .await?
                .iter()
                .map(|k| rotation::view(k, now))
                .collect();
            if common.json {
                output::json(&keys)?;
            } else {
                let opt = |t: Option<i64>| t.map(output::time).unwrap_or_else(|| "-".into());
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.kid.clone(),
                            k.alg.clone(),
                            k.state.clone(),
                            output::time(k.publish_at),
                            output::time(k.activate_at),
                            opt(k.retire_at),
                            opt(k.remove_at),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "KID",
                        "ALG",
                        "STATE",
                        "PUBLISHED",
                        "ACTIVATES",
                        "RETIRES",
                        "REMOVED",
                    ],
                    &rows,
                );
            }
        }
        KeysCmd::Rotate { immediate } => {
            let rec = rotation::rotate_now(
                &o.store,
                &o.master.sealer(),
                o.config.tokens.signing_alg,
                &o.config.keys,
                now,
                immediate,
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            let event = NewAuditEvent {
                ts: o.clock.now_ms(),
                kind: "key.created".into(),
                client_id: None,
                subject: None,
                server: None,
                detail: json!({ "kid": rec.kid, "activate_at": rec.activate_at, "scheduled": false, "immediate": immediate }),
            };
            AuditStore::append(&o.store, vec![event]).await?;
            let v = rotation::view(&rec, now);
            if common.json {
                output::json(&v)?;
            } else {
                println!(
                    "New key {} ({}), published now, signs from {}.",
                    v.kid,
                    v.alg,
                    output::time(v.activate_at)
                );
                println!(
                    "Running servers pick it up within {}s.",
                    crate::cmd::serve::MAINTENANCE_EVERY.as_secs()
                );
            }
        }
    }
    o.store.close().await;
    Ok(())
}
