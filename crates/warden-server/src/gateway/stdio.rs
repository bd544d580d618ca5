//! Stdio upstreams (`upstream = "stdio:<command line>"`), served over Streamable HTTP.
//!
//! A stdio MCP server talks to exactly one client, so the gateway starts one process per
//! session: `initialize` (without a session) spawns it, its id becomes the "upstream"
//! session id inside the gateway's bound session id ([`super::session`]), and `DELETE`
//! ends it. Everything before the bridge (token, scopes, session binding, list filtering)
//! is the same as for HTTP upstreams; OAuth is mandatory like everywhere else.
//!
//! Messages are newline-delimited JSON on stdin/stdout. A client request is answered as
//! an SSE stream that carries whatever the process sends until the response with the
//! request's id (or as plain JSON when the client does not accept SSE); server messages
//! outside any request go to the session's `GET` stream if one is open, else to an open
//! request stream, else they are dropped. Notifications and replies get 202.
//!
//! The process gets a clean environment: `PATH`, `HOME`, `LANG`, the server's
//! `settings.env` object, and the caller's identity as `WARDEN_SUBJECT`,
//! `WARDEN_CLIENT_ID` and `WARDEN_SCOPE` (never a token; the master key and the rest of
//! the gateway's environment are not inherited). A process that exits ends its session
//! (the client's next request gets 404 and re-initializes, which starts a new process);
//! idle processes are stopped after [`IDLE_TIMEOUT`], and at most
//! `settings.max_processes` (default 32) run per server, the least recently used going
//! first.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use futures_util::stream;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use warden_core::secret::random_id;

use super::challenge::GatewayError;
use super::registry::Protected;
use super::session::SESSION_HEADER;
use super::validate::Principal;
use super::SharedStr;

/// A process unused this long is stopped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Processes per server unless `settings.max_processes` says otherwise.
const DEFAULT_MAX_PROCESSES: usize = 32;

/// Longest line read from a process; a longer one ends it.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Messages queued per open stream before the process's reader waits.
const STREAM_BUFFER: usize = 64;

/// The command a stdio upstream runs, and its settings. `Debug` shows the environment's
/// names only: its values may be credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct StdioCommand {
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Extra environment from `settings.env`, opened.
    pub env: Vec<(String, String)>,
    /// Most processes at once for this server.
    pub max_processes: usize,
}

/// The live processes of every stdio server.
#[derive(Default)]
pub struct StdioPool {
    processes: Mutex<HashMap<String, Arc<Process>>>,
}

struct Process {
    server: SharedStr,
    stdin: tokio::sync::Mutex<ChildStdin>,
    child: Mutex<Option<Child>>,
    /// Open request streams, by the request id's JSON text.
    pending: Mutex<HashMap<String, mpsc::Sender<Value>>>,
    /// The session's `GET` stream, if open.
    listener: Mutex<Option<mpsc::Sender<Value>>>,
    last_used: Mutex<Instant>,
    /// Set when the process's output ends: the session is over.
    dead: AtomicBool,
}

/// What the client posted, as the bridge needs it.
pub struct Posted<'a> {
    /// The JSON-RPC id's text, if the message is a request.
    pub id: Option<String>,
    /// The message, re-serialized on one line.
    pub line: String,
    /// Whether the client accepts `text/event-stream`.
    pub sse: bool,
    /// Whether this is an `initialize` without a session.
    pub initialize: bool,
    /// The server's timeout for a JSON answer.
    pub timeout: Duration,
    /// For the process environment of a new session.
    pub principal: &'a Principal,
    /// The JSON-RPC id, echoed in errors.
    pub rpc_id: Value,
}

// === impl StdioCommand ===

impl StdioCommand {
    /// Parses the command line after `stdio:` (whitespace-separated, with `'…'` and
    /// `"…"` quoting and `\` escapes; no shell), with the server's opened `env` and its
    /// `max_processes` setting (already range-checked).
    pub fn parse(
        line: &str,
        env: Vec<(String, String)>,
        max_processes: Option<u64>,
    ) -> Result<Self, String> {
        let argv = split_command_line(line)?;
        if argv.is_empty() {
            return Err("stdio upstream has no command".into());
        }
        if let Some((k, _)) = env.iter().find(|(_, v)| v.contains('\0')) {
            return Err(format!("settings.env.{k}: a value cannot hold a NUL byte"));
        }
        let max_processes = max_processes
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_PROCESSES);
        Ok(Self {
            argv,
            env,
            max_processes,
        })
    }
}

impl std::fmt::Debug for StdioCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("StdioCommand")
            .field("argv", &self.argv)
            .field("env", &env)
            .field("max_processes", &self.max_processes)
            .finish()
    }
}

fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(arg) = current.take() {
                    args.push(arg);
                }
            }
            '\'' | '"' => {
                let arg = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => arg.push(chars.next().ok_or("dangling \\")?),
                        Some(other) => arg.push(other),
                        None => return Err("unterminated quote in the stdio command".into()),
                    }
                }
            }
            '\\' => current
                .get_or_insert_with(String::new)
                .push(chars.next().ok_or("dangling \\")?),
            other => current.get_or_insert_with(String::new).push(other),
        }
    }
    args.extend(current);
    Ok(args)
}

// === impl StdioPool ===

impl StdioPool {
    /// Sends a POSTed message to the session's process (spawning it for `initialize`).
    pub async fn post(
        &self,
        server: &Protected,
        command: &StdioCommand,
        session: Option<&str>,
        posted: Posted<'_>,
    ) -> Result<Response<Body>, GatewayError> {
        let (process, new_session) = match (session, posted.initialize) {
            (Some(id), _) => {
                let process = self.get(id).ok_or_else(|| GatewayError::SessionNotFound {
                    id: posted.rpc_id.clone(),
                })?;
                (process, None)
            }
            (None, true) => {
                let (id, process) = self.spawn(server, command, posted.principal)?;
                (process, Some(id))
            }
            (None, false) => {
                return Err(GatewayError::InvalidMessage {
                    id: Value::Null,
                    message: "Bad Request: Mcp-Session-Id header is required",
                })
            }
        };
        let Some(id) = posted.id else {
            process.write(&posted.line).await?;
            let mut accepted = Response::new(Body::empty());
            *accepted.status_mut() = StatusCode::ACCEPTED;
            return Ok(accepted);
        };
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        lock(&process.pending).insert(id.clone(), tx);
        if let Err(e) = process.write(&posted.line).await {
            lock(&process.pending).remove(&id);
            return Err(e);
        }
        let mut response = if posted.sse {
            let events = stream::unfold(rx, |mut rx| async move {
                let message = rx.recv().await?;
                let event = Bytes::from(format!("data: {message}\n\n"));
                Some((Ok::<_, std::convert::Infallible>(event), rx))
            });
            let mut r = Response::new(Body::from_stream(events));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        } else {
            let wait = async {
                while let Some(message) = rx.recv().await {
                    if message.get("method").is_none() {
                        return Some(message);
                    }
                }
                None
            };
            let message = match tokio::time::timeout(posted.timeout, wait).await {
                Ok(Some(message)) => message,
                Ok(None) => return Err(GatewayError::UpstreamUnavailable { id: posted.rpc_id }),
                Err(_) => {
                    lock(&process.pending).remove(&id);
                    return Err(GatewayError::UpstreamTimeout { id: posted.rpc_id });
                }
            };
            let mut r = Response::new(Body::from(message.to_string()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        if let Some(session) = new_session {
            if let Ok(value) = HeaderValue::try_from(session) {
                response.headers_mut().insert(SESSION_HEADER, value);
            }
        }
        Ok(response)
    }

    /// Opens the session's stream of server messages.
    pub fn listen(&self, session: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let id = session.ok_or(GatewayError::InvalidMessage {
            id: Value::Null,
            message: "Bad Request: Mcp-Session-Id header is required",
        })?;
        let process = self
            .get(id)
            .ok_or(GatewayError::SessionNotFound { id: Value::Null })?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        *lock(&process.listener) = Some(tx);
        let events = stream::unfold(rx, |mut rx| async move {
            let message = rx.recv().await?;
            let event = Bytes::from(format!("data: {message}\n\n"));
            Some((Ok::<_, std::convert::Infallible>(event), rx))
        });
        let mut r = Response::new(Body::from_stream(events));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        Ok(r)
    }

    /// Ends the session's process.
    pub fn end(&self, session: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let id = session.ok_or(GatewayError::InvalidMessage {
            id: Value::Null,
            message: "Bad Request: Mcp-Session-Id header is required",
        })?;
        let process = lock(&self.processes)
            .remove(id)
            .ok_or(GatewayError::SessionNotFound { id: Value::Null })?;
        process.kill();
        let mut done = Response::new(Body::empty());
        *done.status_mut() = StatusCode::NO_CONTENT;
        Ok(done)
    }

    /// How many processes are running.
    pub fn len(&self) -> usize {
        lock(&self.processes).len()
    }

    /// Whether no process is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, id: &str) -> Option<Arc<Process>> {
        let mut processes = lock(&self.processes);
        let process = processes.get(id).cloned()?;
        if process.dead.load(Ordering::Acquire) {
            processes.remove(id);
            return None;
        }
        *lock(&process.last_used) = Instant::now();
        Some(process)
    }

    fn spawn(
        &self,
        server: &Protected,
        command: &StdioCommand,
        principal: &Principal,
    ) -> Result<(String, Arc<Process>), GatewayError> {
        self.make_room(&server.name, command.max_processes);
        let (program, args) = command
            .argv
            .split_first()
            .ok_or(GatewayError::UpstreamUnavailable { id: Value::Null })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in ["PATH", "HOME", "LANG"] {
            if let Ok(value) = std::env::var(name) {
                cmd.env(name, value);
            }
        }
        cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
        cmd.env("WARDEN_SUBJECT", principal.subject())
            .env("WARDEN_CLIENT_ID", principal.client_id())
            .env("WARDEN_SCOPE", principal.scope().to_string());
        let mut child = cmd.spawn().map_err(|e| {
            tracing::error!(server = %server.name, error = %e, "cannot start the stdio upstream");
            GatewayError::UpstreamUnavailable { id: Value::Null }
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(GatewayError::Internal("stdio pipes"));
        };
        let id = random_id().map_err(|_| GatewayError::Internal("random generator failed"))?;
        let process = Arc::new(Process {
            server: Arc::clone(&server.name),
            stdin: tokio::sync::Mutex::new(stdin),
            child: Mutex::new(Some(child)),
            pending: Mutex::default(),
            listener: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
            dead: AtomicBool::new(false),
        });
        lock(&self.processes).insert(id.clone(), Arc::clone(&process));
        let name = Arc::clone(&server.name);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %name, %line, "stdio upstream stderr");
            }
        });
        tokio::spawn(read_loop(Arc::clone(&process), stdout));
        Ok((id, process))
    }

    /// Stops idle processes, and the least recently used ones of `server` beyond `max`.
    fn make_room(&self, server: &str, max: usize) {
        let mut processes = lock(&self.processes);
        processes.retain(|_, p| {
            let idle = lock(&p.last_used).elapsed() >= IDLE_TIMEOUT;
            if idle {
                p.kill();
            }
            !idle
        });
        loop {
            let mine: Vec<(&String, Instant)> = processes
                .iter()
                .filter(|(_, p)| &*p.server == server)
                .map(|(id, p)| (id, *lock(&p.last_used)))
                .collect();
            if mine.len() < max {
                return;
            }
            let Some(oldest) = mine
                .iter()
                .min_by_key(|(_, at)| *at)
                .map(|(id, _)| (*id).clone())
            else {
                return;
            };
            if let Some(p) = processes.remove(&oldest) {
                p.kill();
            }
        }
    }
}

// === impl Process ===

impl Process {
    async fn write(&self, line: &str) -> Result<(), GatewayError> {
        let mut stdin = self.stdin.lock().await;
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        written.await.map_err(|e| {
            tracing::warn!(server = %self.server, error = %e, "stdio upstream is gone");
            GatewayError::UpstreamUnavailable { id: Value::Null }
        })
    }

    fn kill(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.start_kill();
            // Reap it so no zombie is left.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
    }

    /// Routes one message from the process.
    async fn deliver(&self, message: Value) {
        let is_response = message.get("method").is_none();
        let target = if is_response {
            let key = message.get("id").map(Value::to_string).unwrap_or_default();
            lock(&self.pending).remove(&key)
        } else {
            let listener = lock(&self.listener).clone().filter(|l| !l.is_closed());
            listener.or_else(|| {
                lock(&self.pending)
                    .values()
                    .find(|tx| !tx.is_closed())
                    .cloned()
            })
        };
        match target {
            Some(tx) => {
                let _ = tx.send(message).await;
            }
            None => {
                tracing::debug!(server = %self.server, "stdio message with no open stream dropped")
            }
        }
    }
}

async fn read_loop(process: Arc<Process>, stdout: tokio::process::ChildStdout) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_LINE => break,
            Ok(_) => match serde_json::from_slice::<Value>(&line) {
                Ok(message) => process.deliver(message).await,
                Err(_) => {
                    tracing::debug!(server = %process.server, "stdio upstream wrote a non-JSON line")
                }
            },
        }
    }
    tracing::info!(server = %process.server, "stdio upstream exited; its session ended");
    process.dead.store(true, Ordering::Release);
    process.kill();
    // Dropping the senders ends every open stream of the session.
    lock(&process.pending).clear();
    *lock(&process.listener) = None;
}

/// Whether a request's `Accept` allows SSE.
pub fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            let media = m.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/event-stream")
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    warden_core::sync::lock_recovering(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_without_a_shell() {
        let c = StdioCommand::parse(
            r#"python3 "my server.py" --name 'a b' x\ y $HOME;rm"#,
            Vec::new(),
            None,
        )
        .unwrap();
        assert_eq!(
            c.argv,
            [
                "python3",
                "my server.py",
                "--name",
                "a b",
                "x y",
                "$HOME;rm"
            ]
        );
        assert!(StdioCommand::parse("  ", Vec::new(), None).is_err());
        assert!(StdioCommand::parse("a 'b", Vec::new(), None).is_err());
        let env = vec![("K".to_owned(), "v-s3cret".to_owned())];
        let c = StdioCommand::parse("srv", env.clone(), Some(2)).unwrap();
        assert_eq!(c.env, env);
        assert_eq!(c.max_processes, 2);
        assert!(!format!("{c:?}").contains("s3cret"));
        let nul = vec![("K".to_owned(), "a\0b".to_owned())];
        assert!(StdioCommand::parse("srv", nul, None).is_err());
    }
}
