//! `warden-bench proxy`: a bare pooled reverse proxy, the baseline for the gateway.
//!
//! It does what any proxy must and nothing more: accept HTTP/1.1, send each request to
//! one upstream URL on a keep-alive connection pool (hyper-util's legacy client, as the
//! gateway uses), and stream the answer back. No authentication, no parsing of the body,
//! no header rules beyond `Host` and `Connection`. Its throughput is what a proxy written
//! this way can reach on the machine, so the gateway is measured against it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HOST};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Upstream = Client<HttpConnector, Incoming>;
type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Arguments of `warden-bench proxy`.
#[derive(clap::Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18242")]
    listen: SocketAddr,
    /// The upstream URL every request is sent to (http only), e.g.
    /// `http://127.0.0.1:18241/mcp`.
    #[arg(long)]
    upstream: String,
    /// Runtime worker threads (default: one per CPU, as `warden serve`).
    #[arg(long)]
    workers: Option<usize>,
}

/// Serves until the process is killed.
pub fn run(args: &ProxyArgs) -> anyhow::Result<()> {
    let uri: Uri = args.upstream.parse().context("--upstream is not a URI")?;
    if uri.scheme_str() != Some("http") {
        bail!("--upstream must be an http:// URL");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n.max(1));
    }
    let rt = builder.enable_all().build()?;
    rt.block_on(serve(args.listen, Arc::new(uri)))
}

async fn serve(listen: SocketAddr, upstream: Arc<Uri>) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("bare proxy on http://{listen} -> {upstream}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            let service =
                service_fn(move |req| forward(client.clone(), Arc::clone(&upstream), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: Upstream,
    upstream: Arc<Uri>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    *req.uri_mut() = (*upstream).clone();
    let headers = req.headers_mut();
    headers.remove(HOST);
    headers.remove(CONNECTION);
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(|body| body.boxed())),
        Err(e) => {
            eprintln!("upstream: {e}");
            let mut resp = Response::new(Empty::new().map_err(|never| match never {}).boxed());
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(resp)
        }
    }
}
