//! `warden init`: create a data dir in one step or not at all.
//!
//! The dir is assembled under a temporary sibling name and renamed into place only when
//! everything (config, master key, database, first signing key, the admin resource and
//! the bootstrap admin client) exists, so a failure never leaves a half-made data dir
//! behind.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use warden_core::clock::{Clock as _, SystemClock};
use warden_core::config::{validate_public_url, Config, CONFIG_FILE};
use warden_core::keys::MasterKey;
use warden_proto::admin::CreatedClient;
use warden_server::admin;
use warden_server::keyring::create_key;
use warden_store::{AuditStore, NewAuditEvent};

use crate::datadir::{self, MASTER_KEY_ENV, MASTER_KEY_FILE};
use crate::{output, Common};

/// Arguments of `warden init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The externally visible base URL; it becomes the issuer identifier.
    #[arg(long)]
    pub public_url: String,
}

/// What `init` created.
pub struct Created {
    /// The issuer.
    pub issuer: String,
    /// The first signing key's id.
    pub kid: String,
    /// Whether the master key was written to a file (or came from the environment).
    pub master_key_file: bool,
    /// The bootstrap admin client, with its secret (shown once).
    pub admin_client: CreatedClient,
}

/// Runs `warden init`.
pub async fn run(common: &Common, args: InitArgs) -> anyhow::Result<()> {
    let created = init(&common.data_dir, &args.public_url).await?;
    let dir = common.data_dir.display().to_string();
    if common.json {
        return output::json(&json!({
            "data_dir": dir, "issuer": created.issuer, "signing_key": created.kid,
            "master_key": if created.master_key_file { "file" } else { "environment" },
            "admin_client": created.admin_client,
        }));
    }
    println!("Created Warden data dir {dir}");
    println!("  issuer       {}", created.issuer);
    println!("  signing key  {}", created.kid);
    if created.master_key_file {
        println!("  master key   {dir}/{MASTER_KEY_FILE} (mode 0600; back it up, keep it secret)");
    } else {
        println!("  master key   from {MASTER_KEY_ENV}");
    }
    print_admin_client(&created.admin_client);
    println!("Next: warden serve --data-dir {dir}");
    Ok(())
}

/// Prints the bootstrap admin credential (which is never shown again).
pub fn print_admin_client(c: &CreatedClient) {
    println!("  admin client {}", c.client.client_id);
    if let Some(secret) = &c.client_secret {
        println!("  admin secret {secret}");
    }
    println!("  (the admin secret is shown only now: store it in a secrets manager; use it as");
    println!(
        "   WARDEN_ADMIN_CLIENT_ID / WARDEN_ADMIN_CLIENT_SECRET with `warden --server URL …`)"
    );
}

/// Creates the data dir `dir` for `public_url`.
pub async fn init(dir: &Path, public_url: &str) -> anyhow::Result<Created> {
    let public_url = validate_public_url(public_url).map_err(|m| anyhow!("--public-url {m}"))?;
    if dir.join(CONFIG_FILE).exists() || datadir::is_non_empty(dir) {
        bail!(
            "{} already exists and is not empty; refusing to overwrite it",
            dir.display()
        );
    }
    let staging = datadir::staging_path(dir)?;
    let result = build(&staging, dir, &public_url).await;
    match result {
        Ok(created) => {
            std::fs::rename(&staging, dir).map_err(|e| {
                let _ = std::fs::remove_dir_all(&staging);
                anyhow!(
                    "cannot move the new data dir into place at {}: {e}",
                    dir.display()
                )
            })?;
            Ok(created)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

async fn build(staging: &Path, final_dir: &Path, public_url: &str) -> anyhow::Result<Created> {
    // The dir holds the master key and the database: owner-only.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(staging)
        .map_err(|e| anyhow!("cannot create {}: {e}", staging.display()))?;
    let text = Config::template(public_url);
    std::fs::write(staging.join(CONFIG_FILE), &text)?;
    // Validate with the environment too: a broken override should fail init, not serve.
    let config = Config::load(&text, std::env::vars(), staging).map_err(|e| anyhow!("{e}"))?;
    let (master, master_key_file) = match std::env::var(MASTER_KEY_ENV) {
        Ok(t) => (
            MasterKey::parse(&t).map_err(|e| anyhow!("{MASTER_KEY_ENV}: {e}"))?,
            false,
        ),
        Err(_) => {
            let k = MasterKey::generate()?;
            datadir::write_private(&staging.join(MASTER_KEY_FILE), k.encode().as_bytes())?;
            (k, true)
        }
    };
    let store = datadir::open_store(&config).await?;
    if !warden_store::KeyStore::list(&store).await?.is_empty() {
        bail!(
            "the configured database already holds signing keys; refusing to initialise over it (data dir {})",
            final_dir.display()
        );
    }
    let now = SystemClock.now();
    let key = create_key(
        &store,
        &master.sealer(),
        config.tokens.signing_alg,
        now,
        now,
        now,
    )
    .await?;
    // The admin API's resource and the one credential that can use it at first.
    let resource = admin::ensure_resource(&store, &config, now)
        .await
        .map_err(|e| anyhow!("cannot register the admin resource: {}", e.detail()))?;
    let admin_client = admin::clients::insert(
        &store,
        &master.secret_hasher(),
        &admin::clients::bootstrap(),
        now,
    )
    .await
    .map_err(|e| anyhow!("cannot create the admin client: {}", e.detail()))?;
    let event = |kind: &str, client_id: Option<String>, server: Option<String>, detail: Value| {
        NewAuditEvent {
            ts: now * 1000,
            kind: kind.to_owned(),
            client_id,
            subject: None,
            server,
            detail: detail.into(),
        }
    };
    AuditStore::append(
        &store,
        vec![
            event(
                "server.registered",
                None,
                Some(resource.name.clone()),
                json!({ "canonical_uri": resource.canonical_uri, "builtin": true, "actor": "init" }),
            ),
            event(
                "client.created",
                Some(admin_client.client.client_id.clone()),
                None,
                json!({ "name": admin_client.client.name, "scopes": admin_client.client.scopes, "actor": "init" }),
            ),
        ],
    )
    .await?;
    store.close().await;
    Ok(Created {
        issuer: config.issuer,
        kid: key.kid,
        master_key_file,
        admin_client,
    })
}
