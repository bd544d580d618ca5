//! `warden consent …`: what users have approved, and withdrawing it, on the data dir or
//! through the admin API (`/admin/v1/users/{username}/consents`).

use clap::Subcommand;
use warden_proto::admin::ConsentFilter;

use crate::admin::with_admin;
use crate::{output, Common};

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
    with_admin(common, async |admin| match cmd {
        ConsentCmd::List { user } => {
            let all = admin.consents(&user).await?;
            if common.json {
                return output::json(&all);
            }
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
            Ok(())
        }
        ConsentCmd::Revoke {
            user,
            client,
            resource,
        } => {
            let filter = ConsentFilter { client, resource };
            let r = admin.revoke_consents(&user, &filter).await?;
            if common.json {
                output::json(&r)
            } else {
                println!(
                    "Withdrew {} consent(s); revoked {} session(s).",
                    r.consents_removed, r.sessions_revoked
                );
                Ok(())
            }
        }
    })
    .await
}
