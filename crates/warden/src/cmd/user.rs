//! `warden user …`: built-in users who sign in on the login page.

use std::io::Read as _;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_core::secret::SecretString;
use warden_proto::admin::UserView;
use warden_store::{StoreError, UserRecord, UserStore};

use crate::{datadir, output, Common};

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

/// Checks a username.
pub fn validate_username(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        bail!("username {name:?} must be 1-64 of A-Z a-z 0-9 . _ - @");
    }
    Ok(())
}

/// Creates a user with `password`.
pub async fn add(
    store: &warden_store::Store,
    name: &str,
    password: &SecretString,
    groups: Vec<String>,
    now: i64,
) -> anyhow::Result<UserRecord> {
    validate_username(name)?;
    for g in &groups {
        if g.is_empty()
            || g.len() > 64
            || !g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        {
            bail!("group {g:?} must be 1-64 of A-Z a-z 0-9 . _ - :");
        }
    }
    let hash = warden_core::password::hash(password.expose()).map_err(|e| anyhow!("{e}"))?;
    let rec = UserRecord {
        id: uuid_like()?,
        username: name.to_owned(),
        password_hash: hash,
        groups,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match UserStore::create(store, &rec).await {
        Ok(()) => Ok(rec),
        Err(StoreError::Conflict(_)) => bail!("a user named {name:?} already exists"),
        Err(e) => Err(anyhow!("cannot create the user: {e}")),
    }
}

fn uuid_like() -> anyhow::Result<String> {
    Ok(format!(
        "u_{}",
        warden_core::secret::random_id().map_err(|e| anyhow!("{e}"))?
    ))
}

/// The admin view of a user.
pub fn view(r: &UserRecord) -> UserView {
    UserView {
        id: r.id.clone(),
        username: r.username.clone(),
        groups: r.groups.clone(),
        disabled: r.disabled,
        created_at: r.created_at,
    }
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
    let o = datadir::open(&common.data_dir).await?;
    let store = &o.store;
    match cmd {
        UserCmd::Add {
            name,
            password_stdin: _,
            groups,
        } => {
            let pw = read_password()?;
            let rec = add(store, &name, &pw, groups, o.clock.now()).await?;
            if common.json {
                output::json(&view(&rec))?;
            } else {
                println!("Created user {} ({})", rec.username, rec.id);
            }
        }
        UserCmd::List => {
            let all: Vec<UserView> = UserStore::list(store).await?.iter().map(view).collect();
            if common.json {
                output::json(&all)?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|u| {
                        vec![
                            u.username.clone(),
                            u.id.clone(),
                            u.groups.join(","),
                            if u.disabled {
                                "disabled".into()
                            } else {
                                "active".into()
                            },
                        ]
                    })
                    .collect();
                output::table(&["USERNAME", "ID", "GROUPS", "STATE"], &rows);
            }
        }
        UserCmd::Show { name } => {
            let u = UserStore::get_by_username(store, &name)
                .await?
                .ok_or_else(|| anyhow!("no user named {name:?}"))?;
            if common.json {
                output::json(&view(&u))?;
            } else {
                println!(
                    "username  {}\nid        {}\ngroups    {}\nstate     {}\ncreated   {}",
                    u.username,
                    u.id,
                    u.groups.join(", "),
                    if u.disabled { "disabled" } else { "active" },
                    output::time(u.created_at)
                );
            }
        }
        UserCmd::Remove { name } => {
            let u = UserStore::get_by_username(store, &name)
                .await?
                .ok_or_else(|| anyhow!("no user named {name:?}"))?;
            UserStore::delete(store, &u.id).await?;
            if common.json {
                output::json(&serde_json::json!({ "removed": name }))?;
            } else {
                println!("Removed user {name}");
            }
        }
    }
    o.store.close().await;
    Ok(())
}
