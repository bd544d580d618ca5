//! The `mcp` scenario: one MCP `tools/call` (Streamable HTTP), in a session opened once.

use anyhow::{bail, Context as _};
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::http::{connect, describe, Endpoint, Target};

const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// Every successful `tools/call` answer carries this (a tool error says `true`).
const SUCCESS_MARKER: &[u8] = b"\"isError\":false";

/// Arguments of the `mcp` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct McpArgs {
    /// The MCP endpoint (Streamable HTTP, http only), e.g. `http://127.0.0.1:8090/mcp`.
    #[arg(long)]
    url: String,
    /// A bearer token sent with every request (the gateway needs one).
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The tool to call.
    #[arg(long, default_value = "notes_list")]
    tool: String,
    /// The call's `arguments`, a JSON object.
    #[arg(long, default_value = "{}")]
    arguments: String,
    /// The `MCP-Protocol-Version` to negotiate and send.
    #[arg(long, default_value = "2025-11-25")]
    protocol_version: String,
}

/// Opens a session (`initialize`, then `notifications/initialized`) and returns the
/// `tools/call` request every worker then sends in it.
pub async fn target(args: &McpArgs) -> anyhow::Result<Target> {
    let endpoint = Endpoint::parse(&args.url)?;
    let arguments: Value =
        serde_json::from_str(&args.arguments).context("--arguments is not JSON")?;
    if !arguments.is_object() {
        bail!("--arguments must be a JSON object");
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        PROTOCOL_HEADER,
        HeaderValue::from_str(&args.protocol_version)?,
    );
    if let Some(token) = &args.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a header value")?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }

    let mut conn = connect(endpoint.addr)
        .await
        .with_context(|| format!("cannot connect to {}", endpoint.addr))?;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": args.protocol_version,
            "capabilities": {},
            "clientInfo": { "name": "warden-bench", "version": env!("CARGO_PKG_VERSION") },
        },
    });
    let a = endpoint
        .exchange(&mut conn, &headers, Bytes::from(initialize.to_string()))
        .await?;
    if !(200..300).contains(&a.status) || !crate::http::contains(&a.body, b"\"result\"") {
        bail!("initialize failed: {}", describe(a.status, &a.body));
    }
    if let Some(session) = a.headers.get(&SESSION_HEADER) {
        headers.insert(SESSION_HEADER, session.clone());
    }
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let a = endpoint
        .exchange(&mut conn, &headers, Bytes::from(initialized.to_string()))
        .await?;
    if !(200..300).contains(&a.status) {
        bail!(
            "notifications/initialized failed: {}",
            describe(a.status, &a.body)
        );
    }

    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": args.tool, "arguments": arguments },
    });
    let target = Target {
        endpoint,
        headers,
        body: Bytes::from(call.to_string()),
        expect: SUCCESS_MARKER,
    };
    target.preflight().await?;
    Ok(target)
}
