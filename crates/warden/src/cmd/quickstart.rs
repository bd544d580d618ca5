//! `warden quickstart`: from nothing to a running, protected demo in one command.

use std::net::SocketAddr;

use anyhow::{anyhow, Context as _};
use tokio::net::TcpListener;
use warden_core::config::CONFIG_FILE;
use warden_core::secret::{generate, SecretKind};
use warden_server::admin;
use warden_store::{ClientStore, ServerStore, UserStore};

use crate::cmd::{client, serve, server};
use crate::{datadir, Common};

/// Arguments of `warden quickstart`.
#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// The public URL, if the data dir must be created.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// Where the demo MCP server listens.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub demo_listen: SocketAddr,
    /// Listen here instead of the address derived from the public URL.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

const DEMO_SERVER: &str = "demo";
const DEMO_USER: &str = "demo";
const DEMO_AGENT: &str = "demo-agent";

/// Runs the quickstart.
pub async fn run(common: &Common, args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = &common.data_dir;
    if !dir.join(CONFIG_FILE).exists() {
        let created = crate::cmd::init::init(dir, &args.public_url).await?;
        println!("Created data dir {}", dir.display());
        crate::cmd::init::print_admin_client(&created.admin_client);
    }
    let opened = datadir::open(dir).await?;
    serve::init_logging(&opened.config, None)?;
    let now = opened.clock.now();

    let demo_listener = TcpListener::bind(args.demo_listen)
        .await
        .with_context(|| format!("cannot start the demo MCP server on {}", args.demo_listen))?;
    let demo_addr = demo_listener.local_addr()?;
    tokio::spawn(warden_demo::serve(demo_listener, serve::shutdown_signal()));
    let upstream = format!("http://{demo_addr}/mcp");

    let store = &opened.store;
    match ServerStore::get(store, DEMO_SERVER).await? {
        Some(mut rec) if rec.upstream != upstream => {
            rec.upstream = upstream.clone();
            rec.updated_at = now;
            ServerStore::update(store, &rec).await?;
        }
        Some(_) => {}
        None => {
            let add = server::AddArgs {
                name: DEMO_SERVER.into(),
                upstream: upstream.clone(),
                scopes: warden_demo::TOOL_GROUPS
                    .iter()
                    .map(|(scope, tools)| format!("{scope}={}", tools.join(",")))
                    .collect(),
                canonical_uri: None,
                token_ttl: None,
                leeway: None,
                issuer: server::IssuerArgs::default(),
                connection: server::UpstreamArgs::default(),
                settings: server::SettingArgs::default(),
            };
            let rec = admin::servers::build(&add.to_new()?, &opened.config, now)
                .map_err(|e| anyhow!("{e}"))?;
            ServerStore::create(store, &rec).await?;
        }
    }
    let password = match UserStore::get_by_username(store, DEMO_USER).await? {
        Some(_) => None,
        None => {
            let pw = generate(SecretKind::Session).map_err(|e| anyhow!("{e}"))?;
            // A memorable-enough demo password: the random tail without the prefix.
            let short = warden_core::secret::SecretString::new(
                &pw.expose()[SecretKind::Session.prefix().len()..][..16],
            );
            let rec = admin::users::build(DEMO_USER, &short, vec!["demo".into()], now)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            admin::users::insert(store, &rec)
                .await
                .map_err(|e| anyhow!("{}", e.detail()))?;
            Some(short)
        }
    };
    let agent = if ClientStore::find_by_name(store, DEMO_AGENT)
        .await?
        .is_empty()
    {
        let add = client::AddArgs {
            name: DEMO_AGENT.into(),
            confidential: true,
            grants: vec!["client_credentials".into()],
            scopes: warden_demo::TOOL_GROUPS
                .iter()
                .map(|(s, _)| (*s).to_owned())
                .collect(),
            ..Default::default()
        };
        Some(
            admin::clients::insert(store, &opened.master.secret_hasher(), &add.to_new(), now)
                .await
                .map_err(|e| anyhow!("{}", e.detail()))?,
        )
    } else {
        None
    };

    let public = opened.config.public_url.clone();
    let listen = args.listen.unwrap_or(opened.config.listen);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let canonical = ServerStore::get(store, DEMO_SERVER)
        .await?
        .map(|s| s.canonical_uri)
        .unwrap_or_default();
    let dir_text = dir.display().to_string();
    serve::serve_opened(opened, listener, dir, move |addr| {
        println!();
        println!("Warden is running on http://{addr}");
        println!("  issuer / metadata   {public}/.well-known/oauth-authorization-server");
        println!("  JWKS                {public}/oauth/jwks.json");
        println!("  demo MCP upstream   {upstream}");
        println!("  demo resource       {canonical}");
        match &password {
            Some(pw) => println!(
                "  demo user           {DEMO_USER} / {}  (shown once)",
                pw.expose()
            ),
            None => println!(
                "  demo user           {DEMO_USER} (password was shown when it was created)"
            ),
        }
        if let Some(a) = &agent {
            println!("  demo agent          client_id {}", a.client.client_id);
            if let Some(s) = &a.client_secret {
                println!("                      client_secret {s}  (shown once)");
                println!();
                println!("Get a token for the demo server as the agent:");
                println!(
                    "  curl -s -u '{}:{s}' -d grant_type=client_credentials \\",
                    a.client.client_id
                );
                println!("       --data-urlencode resource={canonical} {public}/oauth/token");
            }
        }
        println!();
        println!("Manage it: warden server list --data-dir {dir_text}   (Ctrl-C stops)");
    })
    .await
}
