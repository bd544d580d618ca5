//! `warden`: the command line. It is thin: parsing, then a call into the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the request paths allocate many small,
/// short-lived objects, and glibc's malloc showed up at about a tenth of the token
/// endpoint's CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cmd;
mod datadir;
mod output;
mod remote;

/// Options every admin command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The data directory (config, master key, SQLite database).
    #[arg(
        long,
        global = true,
        env = "WARDEN_DATA_DIR",
        default_value = "./warden-data"
    )]
    pub data_dir: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Run admin commands against this running server's admin API instead of the data
    /// dir (https://…, or http on loopback), authenticating as an admin client.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// PEM file of the CA(s) to trust for an https --server (a private CA); it replaces
    /// the public web roots for that connection.
    #[arg(long, global = true, env = "WARDEN_ADMIN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The admin client's id, for --server. (`--client-id` itself belongs to the
    /// commands that register credentials at an identity provider.)
    #[arg(
        long = "admin-client-id",
        global = true,
        env = "WARDEN_ADMIN_CLIENT_ID",
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// The admin client's secret, for --server. Prefer the environment variable: other
    /// local users can see command-line arguments.
    #[arg(
        long = "admin-client-secret",
        value_name = "SECRET",
        global = true,
        env = "WARDEN_ADMIN_CLIENT_SECRET",
        hide_env_values = true,
        value_parser = secret_arg
    )]
    pub client_secret: Option<warden_core::secret::SecretString>,
}

fn secret_arg(text: &str) -> Result<warden_core::secret::SecretString, String> {
    Ok(warden_core::secret::SecretString::new(text))
}

#[derive(Parser, Debug)]
#[command(
    name = "warden",
    version,
    about = "One OAuth 2.1 authorization server, gateway and control plane for a fleet of MCP servers"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a data dir: config, database, master key and the first signing key.
    Init(cmd::init::InitArgs),
    /// Run every role (authorization server, gateway, admin) on one listener.
    Serve(cmd::serve::ServeArgs),
    /// First run: init if needed, start the demo MCP server, register it, create a demo
    /// user and client, and serve.
    Quickstart(cmd::quickstart::QuickstartArgs),
    /// Manage registered MCP servers.
    #[command(subcommand)]
    Server(cmd::server::ServerCmd),
    /// Manage built-in users.
    #[command(subcommand)]
    User(cmd::user::UserCmd),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(cmd::client::ClientCmd),
    /// Manage identity providers: OIDC sign-in, ID-JAG and workload identity issuers.
    #[command(subcommand)]
    Idp(cmd::idp::IdpCmd),
    /// List or withdraw users' consents.
    #[command(subcommand)]
    Consent(cmd::consent::ConsentCmd),
    /// Apply a declarative policy file (scopes per client and user group).
    Apply(cmd::policy::ApplyArgs),
    /// Show the applied policy.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCmd),
    /// Signing keys: list, rotate.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCmd),
    /// The audit log: list, export as JSON lines, verify the hash chain.
    Events(Box<cmd::events::EventsArgs>),
    /// Fleet posture: every server, client secret and the signing key against policy.
    /// Exits 0 when all is in policy (warnings allowed), 2 when something is out of
    /// policy, 1 when the check itself failed.
    Status,
    /// Run the demo MCP server (Streamable HTTP) used by the quickstart, tests and benchmarks.
    DemoUpstream(cmd::demo::DemoArgs),
}

impl Command {
    /// Whether the command can run against `--server` (the admin API).
    fn works_remotely(&self) -> bool {
        match self {
            Command::Server(_)
            | Command::User(_)
            | Command::Client(_)
            | Command::Idp(_)
            | Command::Keys(_)
            | Command::Events(_)
            | Command::Consent(_)
            | Command::Apply(_)
            | Command::Policy(_)
            | Command::Status => true,
            Command::Init(_)
            | Command::Serve(_)
            | Command::Quickstart(_)
            | Command::DemoUpstream(_) => false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let common = cli.common;
    if common.server.is_some() && !cli.command.works_remotely() {
        eprintln!("error: this command works on the data dir only; drop --server");
        return ExitCode::FAILURE;
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init(a) => cmd::init::run(&common, a).await,
            Command::Serve(a) => cmd::serve::run(&common, a).await,
            Command::Quickstart(a) => cmd::quickstart::run(&common, a).await,
            Command::Server(c) => cmd::server::run(&common, c).await,
            Command::User(c) => cmd::user::run(&common, c).await,
            Command::Client(c) => cmd::client::run(&common, c).await,
            Command::Idp(c) => cmd::idp::run(&common, c).await,
            Command::Consent(c) => cmd::consent::run(&common, c).await,
            Command::Keys(c) => cmd::keys::run(&common, c).await,
            Command::Apply(a) => cmd::policy::apply(&common, a).await,
            Command::Policy(c) => cmd::policy::run(&common, c).await,
            Command::Events(a) => cmd::events::run(&common, *a).await,
            Command::Status => cmd::status::run(&common).await,
            Command::DemoUpstream(a) => cmd::demo::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<cmd::status::OutOfPolicy>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
