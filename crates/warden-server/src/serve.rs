//! Running the router on a listener, with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::{App, Dispatch};

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish before returning.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dispatch = Dispatch::new(app);
    let service = tower::service_fn(move |incoming: IncomingStream<'_, TcpListener>| {
        let peer: SocketAddr = *incoming.remote_addr();
        std::future::ready(Ok::<_, Infallible>(dispatch.for_peer(peer)))
    });
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
