//! The stdio transport: newline-delimited JSON-RPC on stdin and stdout, one client per
//! process (how Warden's gateway runs a `stdio:` upstream, one process per session),
//! served by rmcp's async read/write transport.
//!
//! rmcp runs requests concurrently (a progress-reporting `tools/call` does not hold up a
//! `ping`). A line that is not JSON is skipped without a reply (rmcp's choice: a reply to
//! unparsable input has no id to go to and can start an error storm between two peers); a
//! JSON message that is not a valid request gets an invalid request error. The process
//! ends at the end of its input.

use rmcp::ServiceExt as _;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::server::DemoServer;
use crate::tools::Identity;
use crate::DemoState;

/// Serves one client on `input`/`output` until `input` ends. The caller's identity is
/// read from the `WARDEN_*` environment variables the gateway sets.
pub async fn serve_stdio(
    state: DemoState,
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> std::io::Result<()> {
    let identity = Identity::from_env(|name| std::env::var(name).ok());
    let server = DemoServer::stdio(state, identity);
    let running = match server.serve((input, output)).await {
        Ok(running) => running,
        // Input that ends before `initialize` is a client that left, not a failure.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(error) => return Err(std::io::Error::other(error)),
    };
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

    /// Runs the server on an in-memory pipe, sends `input`, and reads `expect` lines.
    async fn exchange(input: &str, expect: usize) -> Vec<Value> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server);
        let state = DemoState::new().with_progress_delay(Duration::from_millis(1));
        let task = tokio::spawn(serve_stdio(state, server_read, server_write));
        let (client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(input.as_bytes()).await.unwrap();
        let mut lines = tokio::io::BufReader::new(client_read).lines();
        let mut out = Vec::new();
        for _ in 0..expect {
            let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            out.push(serde_json::from_str(&line).unwrap());
        }
        // The duplex ends only when both halves of the client's end are gone.
        drop(client_write);
        drop(lines);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out
    }

    #[tokio::test]
    async fn answers_initialize_list_and_a_progress_call() {
        let input = concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_list","arguments":{},"_meta":{"progressToken":"p"}}}"#,
            "\n",
        );
        let out = exchange(input, 5).await;
        assert_eq!(out[0]["id"], 1);
        assert_eq!(out[0]["result"]["protocolVersion"], "2025-11-25");
        // rmcp carries progress as a JSON float.
        let progress: Vec<Option<f64>> = out[1..4]
            .iter()
            .map(|m| m["params"]["progress"].as_f64())
            .collect();
        assert_eq!(progress, [Some(1.0), Some(2.0), Some(3.0)]);
        assert!(out[1..4]
            .iter()
            .all(|m| m["params"]["progressToken"] == "p"));
        assert_eq!(out[4]["id"], 2);
        assert_eq!(out[4]["result"]["isError"], false);
    }

    #[tokio::test]
    async fn bad_lines_are_skipped_or_refused_and_the_session_goes_on() {
        let input = concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            "not json\n",
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":[]}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":8,"method":"nope"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
            "\n",
        );
        let out = exchange(input, 4).await;
        assert_eq!(out[0]["result"]["protocolVersion"], "2025-06-18");
        // "not json" gets no reply. A known method whose params do not parse is taken by
        // rmcp for an unknown (custom) request: method not found, naming the method.
        assert_eq!(out[1]["id"], 7, "{out:?}");
        assert_eq!(out[1]["error"]["code"], -32601);
        assert_eq!(out[2]["id"], 8);
        assert_eq!(out[2]["error"]["code"], -32601);
        assert_eq!(out[3], json!({"jsonrpc": "2.0", "id": 9, "result": {}}));
    }

    #[test]
    fn identity_comes_from_the_gateway_environment_only() {
        let identity = Identity::from_env(|name| match name {
            "WARDEN_SUBJECT" => Some("alice".into()),
            "WARDEN_SCOPE" => Some("notes:read".into()),
            _ => None,
        });
        let shown = format!("{identity:?}");
        assert!(shown.contains("x-warden-subject") && shown.contains("x-warden-scope"));
        assert!(!shown.contains("x-warden-client-id") && !shown.contains("authorization"));
    }
}
