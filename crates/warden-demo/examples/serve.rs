//! Runs the demo MCP server on 127.0.0.1.
//!
//! ```text
//! cargo run -p warden-demo --example serve -- 8931
//! ```
//!
//! The MCP endpoint is then `http://127.0.0.1:8931/mcp`. Ctrl-C shuts down gracefully.

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,warden_demo=debug".into()),
        )
        .init();
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "usage: serve [PORT]")
        })?,
        None => 8931,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "warden-demo listening; MCP endpoint is /mcp");
    warden_demo::serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
