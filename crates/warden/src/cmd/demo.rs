//! `warden demo-upstream`: the demo MCP server on its own.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

/// Arguments of `warden demo-upstream`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090", conflicts_with = "stdio")]
    pub listen: SocketAddr,
    /// Speak MCP's stdio transport on stdin/stdout instead of listening (for registering
    /// the demo as a `stdio:` upstream; logs go to stderr).
    #[arg(long)]
    pub stdio: bool,
}

/// Runs the demo MCP server until SIGTERM or SIGINT (or, with `--stdio`, until stdin ends).
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let _ = warden_telemetry::init(warden_telemetry::LogFormat::Pretty, "info");
    if args.stdio {
        warden_demo::serve_stdio(
            warden_demo::DemoState::new(),
            tokio::io::stdin(),
            tokio::io::stdout(),
        )
        .await
        .context("stdio transport failed")?;
        return Ok(());
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!("demo MCP server (Streamable HTTP) at http://{addr}/mcp");
    warden_demo::serve(listener, crate::cmd::serve::shutdown_signal()).await?;
    Ok(())
}
