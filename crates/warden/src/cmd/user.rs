//! `warden user …`: built-in users who sign in on the login page.

use std::io::Read as _;

use anyhow::bail;
use clap::Subcommand;
use warden_core::secret::SecretString;
use warden_proto::admin::NewUser;

use crate::admin::with_admin;
use crate::{output, Common};

/// `warden user` subcommands.
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user; the password is read from standard input.
    Add {
        /// Sign-in name.
        name: String,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A group, for policy. Repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// Sign-in name.
        name: String,
    },
    /// Remove a user.
    Remove {
        /// Sign-in name.
        name: String,
    },
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut buf = String::new();
    std::io::stdin().take(4096).read_to_string(&mut buf)?;
    let pw = buf
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&buf);
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(SecretString::new(pw))
}

/// Runs a `warden user` subcommand.
pub async fn run(common: &Common, cmd: UserCmd) -> anyhow::Result<()> {
    let password = match &cmd {
        UserCmd::Add { .. } => Some(read_password()?),
        _ => None,
    };
    with_admin(common, async |admin| match cmd {
        UserCmd::Add { name, groups, .. } => {
            let new = NewUser {
                username: name,
                password: password.map(|p| p.expose().to_owned()).unwrap_or_default(),
                groups,
            };
            let u = admin.add_user(new).await?;
            if common.json {
                output::json(&u)
            } else {
                println!("Created user {} ({})", u.username, u.id);
                Ok(())
            }
        }
        UserCmd::List => {
            let all = admin.users().await?;
            if common.json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.id.clone(),
                        u.groups.join(","),
                        if u.disabled { "disabled" } else { "active" }.to_owned(),
                    ]
                })
                .collect();
            output::table(&["USERNAME", "ID", "GROUPS", "STATE"], &rows);
            Ok(())
        }
        UserCmd::Show { name } => {
            let u = admin.user(&name).await?;
            if common.json {
                return output::json(&u);
            }
            println!(
                "username  {}\nid        {}\ngroups    {}\nstate     {}\ncreated   {}",
                u.username,
                u.id,
                u.groups.join(", "),
                if u.disabled { "disabled" } else { "active" },
                output::time(u.created_at)
            );
            Ok(())
        }
        UserCmd::Remove { name } => {
            let removed = admin.remove_user(&name).await?;
            if common.json {
                output::json(&removed)
            } else {
                println!("Removed user {}", removed.removed);
                Ok(())
            }
        }
    })
    .await
}
