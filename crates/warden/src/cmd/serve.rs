//! `warden serve`: every role on one listener, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use warden_core::config::LogFormat;
use warden_server::App;

use crate::datadir;
use crate::Common;

/// How often the maintenance loop runs: the bound on how long one replica takes to honour
/// a revocation or key rotation made on another.
pub const MAINTENANCE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Arguments of `warden serve`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Listen here instead of the address derived from the config.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Log format, overriding the config.
    #[arg(long, value_parser = ["json", "pretty"])]
    pub log_format: Option<String>,
}

/// Runs `warden serve`.
pub async fn run(common: &Common, args: ServeArgs) -> anyhow::Result<()> {
    let opened = datadir::open(&common.data_dir).await?;
    init_logging(&opened.config, args.log_format.as_deref())?;
    let listen = args.listen.unwrap_or(opened.config.listen);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    serve_opened(opened, listener, &common.data_dir, |_| {}).await
}

/// Installs the global logger in the configured (or overridden) format.
pub fn init_logging(
    config: &warden_core::config::Config,
    format: Option<&str>,
) -> anyhow::Result<()> {
    let format = match format {
        Some("json") => warden_telemetry::LogFormat::Json,
        Some(_) => warden_telemetry::LogFormat::Pretty,
        None => match config.log.format {
            LogFormat::Json => warden_telemetry::LogFormat::Json,
            LogFormat::Pretty => warden_telemetry::LogFormat::Pretty,
        },
    };
    warden_telemetry::init(format, &config.log.level).map_err(|e| anyhow!("logging: {e}"))
}

/// Serves an opened data dir on `listener`; `ready` runs once the listener accepts.
pub async fn serve_opened(
    opened: datadir::Opened,
    listener: TcpListener,
    dir: &Path,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let datadir::Opened {
        config,
        master,
        store,
        clock,
    } = opened;
    let addr = listener.local_addr()?;
    let issuer = config.issuer.clone();
    let backend = store.backend_name();
    let app = App::new(config, store.clone(), &master, Arc::clone(&clock))
        .await
        .map_err(|e| anyhow!("{e} (data dir {})", dir.display()))?;
    // Rotation schedule, and how replicas learn of each other's revocations and keys.
    let maintenance = app.spawn_maintenance(MAINTENANCE_EVERY);
    tracing::info!(%addr, issuer = %issuer, backend, "warden serving");
    ready(addr);
    warden_server::serve::serve(listener, app.clone(), shutdown_signal()).await?;
    maintenance.abort();
    app.shutdown().await;
    tracing::info!("shut down: in-flight requests finished, audit log flushed");
    store.close().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
