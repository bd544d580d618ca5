//! `warden keys …`: signing keys and their rotation.

use clap::Subcommand;
use warden_proto::admin::RotateKey;

use crate::admin::with_admin;
use crate::{output, Common};

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
    with_admin(common, async |admin| match cmd {
        KeysCmd::List => {
            let keys = admin.keys().await?;
            if common.json {
                return output::json(&keys);
            }
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
            Ok(())
        }
        KeysCmd::Rotate { immediate } => {
            let v = admin.rotate_key(&RotateKey { immediate }).await?;
            if common.json {
                return output::json(&v);
            }
            println!(
                "New key {} ({}), published now, signs from {}.",
                v.kid,
                v.alg,
                output::time(v.activate_at)
            );
            if !admin.is_remote() {
                println!(
                    "Running servers pick it up within {}s.",
                    crate::cmd::serve::MAINTENANCE_EVERY.as_secs()
                );
            }
            Ok(())
        }
    })
    .await
}
