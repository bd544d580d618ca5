//! `warden client …`: OAuth clients.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use warden_core::scope::valid_token;
use warden_core::secret::{generate, random_id, SecretHasher, SecretKind};
use warden_core::uri::validate_redirect_uri;
use warden_proto::admin::{ClientView, CreatedClient};
use warden_store::{ClientRecord, ClientSecret, ClientStore};

use crate::{datadir, output, Common};

/// The token-exchange grant (RFC 8693), which only an administrator assigns.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Grants a client may be registered for.
pub const GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
];

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
    /// A grant type: authorization_code, refresh_token, client_credentials, or
    /// urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693; confidential clients
    /// only). Repeatable. Default: authorization_code and refresh_token.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A scope the client may request. Repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// Builds and stores a client; returns it with its secret, if confidential.
pub async fn add(
    store: &warden_store::Store,
    hasher: &SecretHasher,
    args: &AddArgs,
    now: i64,
) -> anyhow::Result<CreatedClient> {
    if args.name.trim().is_empty() || args.name.len() > 200 {
        bail!("client name must be 1-200 characters");
    }
    let grants: Vec<String> = if args.grants.is_empty() {
        vec!["authorization_code".into(), "refresh_token".into()]
    } else {
        args.grants.clone()
    };
    for g in &grants {
        match g.as_str() {
            "password" | "implicit" => bail!("--grant {g}: OAuth 2.1 removed this grant"),
            g if !GRANTS.contains(&g) => bail!("--grant {g}: unknown (use {})", GRANTS.join(", ")),
            _ => {}
        }
    }
    let confidential = args.confidential;
    for g in ["client_credentials", TOKEN_EXCHANGE] {
        if grants.iter().any(|x| x == g) && !confidential {
            bail!("--grant {g} needs --confidential");
        }
    }
    let needs_redirect = grants.iter().any(|g| g == "authorization_code");
    if needs_redirect && args.redirect_uris.is_empty() {
        bail!("the authorization_code grant needs at least one --redirect-uri");
    }
    for uri in &args.redirect_uris {
        validate_redirect_uri(uri).map_err(|e| anyhow!("--redirect-uri {uri:?}: {e}"))?;
    }
    for s in &args.scopes {
        if !valid_token(s) {
            bail!("--scope {s:?} is not a valid OAuth scope");
        }
    }
    let client_id = random_id()?;
    let (secret, secrets) = if confidential {
        let s = generate(SecretKind::ClientSecret)?;
        let rec = ClientSecret {
            id: random_id()?,
            hash: hasher.hash(s.expose()),
            created_at: now,
            expires_at: None,
        };
        (Some(s), vec![rec])
    } else {
        (None, vec![])
    };
    let rec = ClientRecord {
        client_id,
        name: args.name.clone(),
        confidential,
        redirect_uris: args.redirect_uris.clone(),
        grant_types: grants,
        scopes: args.scopes.clone(),
        token_endpoint_auth_method: if confidential {
            "client_secret_basic".into()
        } else {
            "none".into()
        },
        secrets,
        metadata: serde_json::json!({}),
        created_at: now,
        updated_at: now,
        last_used_at: None,
    };
    ClientStore::create(store, &rec)
        .await
        .map_err(|e| anyhow!("cannot create the client: {e}"))?;
    Ok(CreatedClient {
        client: view(&rec, now),
        client_secret: secret.map(|s| s.expose().to_owned()),
    })
}

/// The admin view of a client (never its secrets).
pub fn view(r: &ClientRecord, now: i64) -> ClientView {
    ClientView {
        client_id: r.client_id.clone(),
        name: r.name.clone(),
        client_type: if r.confidential {
            "confidential".into()
        } else {
            "public".into()
        },
        redirect_uris: r.redirect_uris.clone(),
        grant_types: r.grant_types.clone(),
        scopes: r.scopes.clone(),
        token_endpoint_auth_method: r.token_endpoint_auth_method.clone(),
        active_secrets: r
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .count(),
        created_at: r.created_at,
        last_used_at: r.last_used_at,
    }
}

/// Finds a client by id, or by name when the name is unique.
pub async fn find(store: &warden_store::Store, key: &str) -> anyhow::Result<ClientRecord> {
    if let Some(c) = ClientStore::get(store, key).await? {
        return Ok(c);
    }
    let mut by_name = ClientStore::find_by_name(store, key).await?;
    match by_name.len() {
        0 => bail!("no client with id or name {key:?}"),
        1 => Ok(by_name.remove(0)),
        n => bail!("{n} clients are named {key:?}; use the client id"),
    }
}

/// A fresh initial access token and the hex SHA-256 digest the config holds.
pub fn initial_token() -> anyhow::Result<(String, String)> {
    let token = generate(SecretKind::InitialAccessToken)?;
    let digest: String = warden_core::secret::token_hash(token.expose())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
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
    let o = datadir::open(&common.data_dir).await?;
    let store = &o.store;
    let now = o.clock.now();
    match cmd {
        ClientCmd::Add(args) => {
            let created = add(store, &o.master.secret_hasher(), &args, now).await?;
            if common.json {
                output::json(&created)?;
            } else {
                println!("client_id      {}", created.client.client_id);
                if let Some(s) = &created.client_secret {
                    println!("client_secret  {s}");
                    println!("(the secret is shown only now; store it in a secrets manager)");
                }
            }
        }
        ClientCmd::List => {
            let all: Vec<ClientView> = ClientStore::list(store)
                .await?
                .iter()
                .map(|c| view(c, now))
                .collect();
            if common.json {
                output::json(&all)?;
            } else {
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
            }
        }
        ClientCmd::Show { client } => {
            let c = view(&find(store, &client).await?, now);
            if common.json {
                output::json(&c)?;
            } else {
                println!("client_id      {}\nname           {}\ntype           {}\nauth method    {}\ngrants         {}\nscopes         {}\nredirect uris  {}\nsecrets        {} active\ncreated        {}",
                    c.client_id, c.name, c.client_type, c.token_endpoint_auth_method, c.grant_types.join(", "), c.scopes.join(" "), c.redirect_uris.join(" "), c.active_secrets, output::time(c.created_at));
            }
        }
        ClientCmd::InitialToken => {}
        ClientCmd::Remove { client } => {
            let c = find(store, &client).await?;
            ClientStore::delete(store, &c.client_id).await?;
            if common.json {
                output::json(&serde_json::json!({ "removed": c.client_id }))?;
            } else {
                println!("Removed client {} ({})", c.client_id, c.name);
            }
        }
    }
    o.store.close().await;
    Ok(())
}
