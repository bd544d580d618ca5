//! The stdio transport: newline-delimited JSON-RPC on stdin and stdout, one client per
//! process (how Warden's gateway runs a `stdio:` upstream, one process per session).
//!
//! Requests run concurrently (a progress-reporting `tools/call` does not hold up a
//! `ping`), and one writer task serialises everything written to stdout. A line that is
//! not JSON gets a parse error with a `null` id, a batch or malformed message an invalid
//! request error; notifications and responses are read and ignored. The process ends at
//! the end of its input, once every call in flight has answered.

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::jsonrpc::{self, Incoming, Malformed, RpcError};
use crate::tools::Identity;
use crate::{methods, DemoState};

/// Messages waiting for the writer before readers wait.
const OUTBOX: usize = 64;

/// Serves one client on `input`/`output` until `input` ends. The caller's identity is
/// read from the `WARDEN_*` environment variables the gateway sets.
pub async fn serve_stdio(
    state: DemoState,
    input: impl AsyncRead + Unpin,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> std::io::Result<()> {
    let identity = Identity::from_env(|name| std::env::var(name).ok());
    let (tx, mut rx) = mpsc::channel::<Value>(OUTBOX);
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(message) = rx.recv().await {
            let mut line = message.to_string();
            line.push('\n');
            output.write_all(line.as_bytes()).await?;
            output.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut calls = JoinSet::new();
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Err(_) => Some(error(Value::Null, jsonrpc::PARSE_ERROR, "Parse error")),
            Ok(value) => match jsonrpc::classify(value) {
                Err(Malformed::Batch) => Some(error(
                    Value::Null,
                    jsonrpc::INVALID_REQUEST,
                    "batches are not supported",
                )),
                Err(Malformed::Invalid { id }) => {
                    Some(error(id, jsonrpc::INVALID_REQUEST, "Invalid Request"))
                }
                Ok(Incoming::Notification { method }) => {
                    tracing::debug!(%method, "notification");
                    None
                }
                Ok(Incoming::Response) => None,
                Ok(Incoming::Request(request)) => {
                    let (state, identity, tx) = (state.clone(), identity.clone(), tx.clone());
                    calls.spawn(async move {
                        if request.method == "tools/call" {
                            if let Some(token) = jsonrpc::progress_token(&request.params) {
                                methods::call_with_progress(state, identity, request, token, tx)
                                    .await;
                                return;
                            }
                        }
                        let reply = if request.method == "initialize" {
                            match methods::initialize(&request.params) {
                                Ok(result) => jsonrpc::success(&request.id, result),
                                Err(e) => jsonrpc::failure(&request.id, &e),
                            }
                        } else {
                            methods::answer(&state, &identity, &request)
                        };
                        let _ = tx.send(reply).await;
                    });
                    None
                }
            },
        };
        if let Some(reply) = reply {
            if tx.send(reply).await.is_err() {
                break;
            }
        }
        // Reap finished calls so the set does not grow with the session.
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}

fn error(id: Value, code: i64, message: &str) -> Value {
    jsonrpc::failure(
        &id,
        &RpcError {
            code,
            message: message.to_owned(),
            data: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

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
        let progress: Vec<&Value> = out[1..4].iter().map(|m| &m["params"]["progress"]).collect();
        assert_eq!(progress, [&json!(1), &json!(2), &json!(3)]);
        assert!(out[1..4]
            .iter()
            .all(|m| m["params"]["progressToken"] == "p"));
        assert_eq!(out[4]["id"], 2);
        assert_eq!(out[4]["result"]["isError"], false);
    }

    #[tokio::test]
    async fn bad_lines_get_json_rpc_errors_and_the_session_goes_on() {
        let input = concat!(
            "not json\n",
            "[1,2]\n",
            r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":8,"method":"nope"}"#,
            "\n",
        );
        let out = exchange(input, 4).await;
        assert_eq!(out[0]["error"]["code"], jsonrpc::PARSE_ERROR);
        assert_eq!(out[0]["id"], Value::Null);
        assert_eq!(out[1]["error"]["code"], jsonrpc::INVALID_REQUEST);
        assert_eq!(out[2]["error"]["code"], jsonrpc::INVALID_REQUEST);
        assert_eq!(out[2]["id"], 7);
        // Requests run concurrently, but these answer at once and in order.
        assert_eq!(out[3]["error"]["code"], jsonrpc::METHOD_NOT_FOUND);
        assert_eq!(out[3]["id"], 8);
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
