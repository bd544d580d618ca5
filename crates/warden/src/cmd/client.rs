//! `warden client …`: OAuth clients and their secrets.

use anyhow::anyhow;
use clap::Subcommand;
use warden_proto::admin::{ClientView, NewClient, RotateSecret};

use crate::admin::with_admin;
use crate::{output, Common};

/// `warden client` subcommands.
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Register a client. Prints its id, and a confidential client's secret once.
    Add(AddArgs),
    /// List clients.
    List,
    /// Show one client (by id, or by name if unique).
    Show {
        /// Client id or name.
        client: String,
    },
    /// Remove a client (by id, or by name if unique).
    Remove {
        /// Client id or name.
        client: String,
    },
    /// Issue a new secret (shown once); the current secrets keep working for the overlap
    /// window, then stop.
    RotateSecret {
        /// Client id or name.
        client: String,
        /// How long the current secrets keep working, e.g. `24h`; `0s` ends them at
        /// once (after a leak).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// Mint an initial access token for dynamic registration. Prints the token (give it to
    /// whoever may register) and its SHA-256 digest (put it in
    /// `registration.initial_access_tokens`); Warden keeps neither.
    InitialToken,
}

/// Arguments of `warden client add`.
#[derive(clap::Args, Debug, Default)]
pub struct AddArgs {
    /// Display name.
    pub name: String,
    /// A public client (no secret; PKCE only). The default.
    #[arg(long, conflicts_with = "confidential")]
    pub public: bool,
    /// A confidential client with a secret.
    #[arg(long)]
    pub confidential: bool,
    /// An exact redirect URI. Repeatable.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A grant type: authorization_code, refresh_token, client_credentials. Repeatable.
    /// Default: authorization_code and refresh_token.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A scope the client may request. Repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

// === impl AddArgs ===

impl AddArgs {
    /// The registration request these arguments describe.
    pub fn to_new(&self) -> NewClient {
        NewClient {
            name: self.name.clone(),
            confidential: self.confidential,
            redirect_uris: self.redirect_uris.clone(),
            grant_types: self.grants.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

fn print_one(c: &ClientView) {
    println!("client_id      {}\nname           {}\ntype           {}\nauth method    {}\ngrants         {}\nscopes         {}\nredirect uris  {}\nsecrets        {} active\ncreated        {}",
        c.client_id, c.name, c.client_type, c.token_endpoint_auth_method, c.grant_types.join(", "), c.scopes.join(" "), c.redirect_uris.join(" "), c.active_secrets, output::time(c.created_at));
}

/// A fresh initial access token and the hex SHA-256 digest the config holds.
pub fn initial_token() -> anyhow::Result<(String, String)> {
    let token = warden_core::secret::generate(warden_core::secret::SecretKind::InitialAccessToken)?;
    let digest = warden_core::secret::hex(&warden_core::secret::token_hash(token.expose()));
    Ok((token.expose().to_owned(), digest))
}

/// Runs a `warden client` subcommand.
pub async fn run(common: &Common, cmd: ClientCmd) -> anyhow::Result<()> {
    if let ClientCmd::InitialToken = cmd {
        // Needs no data dir: the token lives only with its holder and in the config.
        let (token, digest) = initial_token()?;
        if common.json {
            output::json(&serde_json::json!({ "initial_access_token": token, "sha256": digest }))?;
        } else {
            println!("initial_access_token  {token}");
            println!("sha256                {digest}");
            println!("(add the sha256 to registration.initial_access_tokens in warden.toml; the token is shown only now)");
        }
        return Ok(());
    }
    let overlap = match &cmd {
        ClientCmd::RotateSecret { overlap, .. } => Some(
            warden_core::config::parse_duration(overlap).map_err(|m| anyhow!("--overlap: {m}"))?,
        ),
        _ => None,
    };
    with_admin(common, async |admin| match cmd {
        ClientCmd::Add(args) => {
            let created = admin.add_client(&args.to_new()).await?;
            if common.json {
                return output::json(&created);
            }
            println!("client_id      {}", created.client.client_id);
            if let Some(s) = &created.client_secret {
                println!("client_secret  {s}");
                println!("(the secret is shown only now; store it in a secrets manager)");
            }
            Ok(())
        }
        ClientCmd::List => {
            let all = admin.clients().await?;
            if common.json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.clone(),
                        c.name.clone(),
                        c.client_type.clone(),
                        c.grant_types.join(","),
                        c.scopes.join(" "),
                    ]
                })
                .collect();
            output::table(&["CLIENT ID", "NAME", "TYPE", "GRANTS", "SCOPES"], &rows);
            Ok(())
        }
        ClientCmd::Show { client } => {
            let c = admin.client(&client).await?;
            if common.json {
                output::json(&c)
            } else {
                print_one(&c);
                Ok(())
            }
        }
        ClientCmd::Remove { client } => {
            let removed = admin.remove_client(&client).await?;
            if common.json {
                output::json(&removed)
            } else {
                println!("Removed client {}", removed.removed);
                Ok(())
            }
        }
        // Answered above, without a data dir.
        ClientCmd::InitialToken => Ok(()),
        ClientCmd::RotateSecret { client, .. } => {
            let req = RotateSecret {
                overlap_secs: overlap,
            };
            let r = admin.rotate_secret(&client, &req).await?;
            if common.json {
                return output::json(&r);
            }
            println!("client_id      {}", r.client.client_id);
            println!("client_secret  {}", r.client_secret);
            println!("secret id      {}", r.secret_id);
            match r.previous_secrets_expire_at {
                Some(t) => println!("The previous secret works until {}.", output::time(t)),
                None => println!("There was no previous secret."),
            }
            println!("(the secret is shown only now; store it in a secrets manager)");
            Ok(())
        }
    })
    .await
}
