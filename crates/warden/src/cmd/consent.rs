//! `warden consent …`: what users have approved, and withdrawing it.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_store::{ConsentStore, RefreshStore, RevocationStore, UserStore};

use crate::{datadir, output, Common};

/// `warden consent` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConsentCmd {
    /// List a user's consents.
    List {
        /// The user's sign-in name.
        #[arg(long)]
        user: String,
    },
    /// Withdraw consent (all of a user's, or one client's, or one resource's) and revoke
    /// the refresh tokens the withdrawn consent produced.
    Revoke {
        /// The user's sign-in name.
        #[arg(long)]
        user: String,
        /// Only this client.
        #[arg(long)]
        client: Option<String>,
        /// Only this resource (canonical URI); needs --client.
        #[arg(long, requires = "client")]
        resource: Option<String>,
    },
}

/// Runs a `warden consent` subcommand.
pub async fn run(common: &Common, cmd: ConsentCmd) -> anyhow::Result<()> {
    let o = datadir::open(&common.data_dir).await?;
    let store = &o.store;
    let now = o.clock.now();
    let user_of = |name: String| async move {
        UserStore::get_by_username(store, &name)
            .await?
            .ok_or_else(|| anyhow!("no user named {name:?}"))
    };
    match cmd {
        ConsentCmd::List { user } => {
            let u = user_of(user).await?;
            let all = ConsentStore::list_for_user(store, &u.id).await?;
            if common.json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|c| serde_json::json!({ "client_id": c.client_id, "resource": c.resource, "scopes": c.scopes, "granted_at": c.granted_at }))
                    .collect();
                output::json(&v)?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|c| {
                        vec![
                            c.client_id.clone(),
                            c.resource.clone(),
                            c.scopes.join(" "),
                            output::time(c.granted_at),
                        ]
                    })
                    .collect();
                output::table(&["CLIENT", "RESOURCE", "SCOPES", "GRANTED"], &rows);
            }
        }
        ConsentCmd::Revoke {
            user,
            client,
            resource,
        } => {
            let u = user_of(user).await?;
            let targets: Vec<String> = match &client {
                Some(c) => vec![c.clone()],
                None => {
                    let mut ids: Vec<String> = ConsentStore::list_for_user(store, &u.id)
                        .await?
                        .into_iter()
                        .map(|c| c.client_id)
                        .collect();
                    ids.sort();
                    ids.dedup();
                    ids
                }
            };
            let mut removed = 0;
            let mut families = 0;
            for client_id in &targets {
                removed +=
                    ConsentStore::delete(store, &u.id, client_id, resource.as_deref()).await?;
                for f in RefreshStore::list_for_subject(store, &u.id).await? {
                    let matches_resource =
                        resource.as_ref().is_none_or(|r| f.resources.contains(r));
                    if &f.client_id == client_id && f.revoked_at.is_none() && matches_resource {
                        RefreshStore::revoke_family(store, &f.id, now, "consent withdrawn").await?;
                        RevocationStore::revoke(
                            store,
                            &f.id,
                            now + warden_server::oauth::revoke::SID_DENY_SECS,
                            now,
                        )
                        .await?;
                        families += 1;
                    }
                }
            }
            if removed == 0 && client.is_some() {
                bail!("no matching consent");
            }
            if common.json {
                output::json(
                    &serde_json::json!({ "consents_removed": removed, "sessions_revoked": families }),
                )?;
            } else {
                println!("Withdrew {removed} consent(s); revoked {families} session(s).");
            }
        }
    }
    o.store.close().await;
    Ok(())
}
