//! `warden client …`: OAuth clients and their secrets.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_proto::admin::{ClientUpdate, ClientView, NewClient, RotateSecret, WorkloadView};

use super::given;
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
    /// Change some fields of a client (by id, or by name if unique): list flags replace
    /// the whole list; `--workload` adds a binding, `--remove-workload` drops one.
    Update(UpdateArgs),
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
    /// A grant type: authorization_code, refresh_token, client_credentials, jwt-bearer
    /// (for clients presenting ID-JAGs). Repeatable. Default: authorization_code and
    /// refresh_token (jwt-bearer only, with `--workload`).
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A scope the client may request. Repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Bind a workload identity, `IDP_NAME:SUBJECT`: tokens that IdP issues for that
    /// subject authenticate the client (jwt-bearer; the client has no secret).
    /// Repeatable.
    #[arg(long = "workload", value_name = "IDP_NAME:SUBJECT", value_parser = workload)]
    pub workloads: Vec<WorkloadView>,
}

/// Arguments of `warden client update`.
#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// Client id or name.
    pub client: String,
    /// A new display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the redirect URIs. Repeatable.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Replace the grants (as for `add`). Repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Replace the scopes. Repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Bind a workload identity, `IDP_NAME:SUBJECT`. Repeatable.
    #[arg(long = "workload", value_name = "IDP_NAME:SUBJECT", value_parser = workload)]
    pub workloads: Vec<WorkloadView>,
    /// Drop a workload binding, `IDP_NAME:SUBJECT`. Repeatable.
    #[arg(long = "remove-workload", value_name = "IDP_NAME:SUBJECT", value_parser = workload)]
    pub remove_workloads: Vec<WorkloadView>,
    /// Clear a list: `workloads`, `redirect-uris` or `scopes`. Repeatable.
    #[arg(long = "unset", value_name = "FIELD", value_parser = ["workloads", "redirect-uris", "scopes"])]
    pub unset: Vec<String>,
}

/// Parses `IDP_NAME:SUBJECT` (the subject may hold more colons).
fn workload(text: &str) -> Result<WorkloadView, String> {
    match text.split_once(':') {
        Some((idp, subject)) if !idp.is_empty() && !subject.is_empty() => Ok(WorkloadView {
            idp: idp.to_owned(),
            subject: subject.to_owned(),
        }),
        _ => Err("expected IDP_NAME:SUBJECT".to_owned()),
    }
}

// === impl UpdateArgs ===

impl UpdateArgs {
    /// The partial update these arguments describe, given the client's current workload
    /// bindings; an error if they change nothing or contradict each other.
    pub fn to_patch(&self, current: &[WorkloadView]) -> anyhow::Result<ClientUpdate> {
        let mut patch = ClientUpdate {
            name: self.name.clone(),
            redirect_uris: given(&self.redirect_uris),
            grant_types: given(&self.grants),
            scopes: given(&self.scopes),
            workloads: None,
        };
        let clear_workloads = self.unset.iter().any(|u| u == "workloads");
        if clear_workloads && !(self.workloads.is_empty() && self.remove_workloads.is_empty()) {
            bail!("--unset workloads and --workload/--remove-workload contradict each other");
        }
        for field in &self.unset {
            let taken = match field.as_str() {
                "workloads" => patch.workloads.replace(Vec::new()).is_some(),
                "redirect-uris" => patch.redirect_uris.replace(Vec::new()).is_some(),
                "scopes" => patch.scopes.replace(Vec::new()).is_some(),
                other => bail!("--unset {other}: one of workloads, redirect-uris, scopes"),
            };
            if taken {
                bail!("--unset {field} and a flag setting it contradict each other");
            }
        }
        if !self.workloads.is_empty() || !self.remove_workloads.is_empty() {
            if let Some(w) = self.remove_workloads.iter().find(|w| !current.contains(w)) {
                bail!(
                    "--remove-workload {}:{}: the client has no such binding",
                    w.idp,
                    w.subject
                );
            }
            let mut next: Vec<WorkloadView> = current
                .iter()
                .filter(|w| !self.remove_workloads.contains(w))
                .cloned()
                .collect();
            for w in &self.workloads {
                if !next.contains(w) {
                    next.push(w.clone());
                }
            }
            patch.workloads = Some(next);
        }
        if patch == ClientUpdate::default() {
            bail!("nothing to change: give at least one field flag or --unset");
        }
        Ok(patch)
    }
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
            workloads: self.workloads.clone(),
        }
    }
}

fn print_one(c: &ClientView) {
    println!("client_id      {}\nname           {}\ntype           {}\nauth method    {}\ngrants         {}\nscopes         {}\nredirect uris  {}\nsecrets        {} active\ncreated        {}",
        c.client_id, c.name, c.client_type, c.token_endpoint_auth_method, c.grant_types.join(", "), c.scopes.join(" "), c.redirect_uris.join(" "), c.active_secrets, output::time(c.created_at));
    let workloads: Vec<String> = c
        .workloads
        .iter()
        .map(|w| format!("{}:{}", w.idp, w.subject))
        .collect();
    if !workloads.is_empty() {
        println!("workloads      {}", workloads.join(" "));
    }
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
        ClientCmd::Update(args) => {
            let current = admin.client(&args.client).await?;
            let patch = args.to_patch(&current.workloads)?;
            let c = admin.update_client(&current.client_id, &patch).await?;
            if common.json {
                output::json(&c)
            } else {
                println!("Updated client {}", c.client_id);
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
