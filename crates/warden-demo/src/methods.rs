//! MCP request methods: lifecycle, tools, resources and prompts.
//!
//! Everything here is plain computation on the shared state; the HTTP layer decides how
//! the answer travels (JSON body or SSE).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::jsonrpc::{self, Request, RpcError};
use crate::notes::Note;
use crate::tools::{self, Identity};
use crate::DemoState;

/// Protocol revisions this server speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

const INSTRUCTIONS: &str = "Warden demo notes server. Use notes_list and notes_read to browse \
    the shared notebook (also exposed as note://{id} resources), notes_write to add a note, \
    and whoami to see the identity headers Warden's gateway forwarded. admin_reset deletes \
    every note. The summarize_notes prompt summarises the notebook.";

const PROMPT_NAME: &str = "summarize_notes";

/// Whether `version` is one of [`PROTOCOL_VERSIONS`].
pub(crate) fn is_supported_version(version: &str) -> bool {
    PROTOCOL_VERSIONS.contains(&version)
}

/// The `initialize` result. The requested version is echoed when supported; otherwise
/// the latest one is offered and the client decides whether to carry on.
pub(crate) fn initialize(params: &Map<String, Value>) -> Result<Value, RpcError> {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("initialize needs a string `protocolVersion`"))?;
    let version = if is_supported_version(requested) {
        requested
    } else {
        LATEST_PROTOCOL_VERSION
    };
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": { "listChanged": false },
            "resources": {},
            "prompts": {},
        },
        "serverInfo": {
            "name": "warden-demo",
            "title": "Warden demo notes server",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": INSTRUCTIONS,
    }))
}

/// Answers one request (other than `initialize`) with a complete JSON-RPC response.
pub(crate) fn answer(state: &DemoState, identity: &Identity, request: &Request) -> Value {
    match dispatch(state, identity, request) {
        Ok(result) => jsonrpc::success(&request.id, result),
        Err(error) => jsonrpc::failure(&request.id, &error),
    }
}

fn dispatch(state: &DemoState, identity: &Identity, request: &Request) -> Result<Value, RpcError> {
    let params = &request.params;
    match request.method.as_str() {
        // A second initialize on a live session is answered like the first; only the
        // HTTP layer's first one creates a session.
        "initialize" => initialize(params),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools::list()),
        "tools/call" => tools::call(&state.notes, identity, params),
        "resources/list" => Ok(resources_list(&state.notes.list())),
        "resources/templates/list" => Ok(json!({ "resourceTemplates": [] })),
        "resources/read" => resources_read(state, params),
        "prompts/list" => Ok(prompts_list()),
        "prompts/get" => prompts_get(state, params),
        other => Err(RpcError::method_not_found(other)),
    }
}

/// How many `notifications/progress` a progress-reporting call sends before its result.
pub(crate) const PROGRESS_STEPS: u64 = 3;

/// Runs a progress-reporting call: sends [`PROGRESS_STEPS`] `notifications/progress`
/// (paced by the state's progress delay), then the response, to `tx`. Shared by the HTTP (SSE)
/// and stdio transports.
pub(crate) async fn call_with_progress(
    state: DemoState,
    identity: Identity,
    request: Request,
    token: Value,
    tx: mpsc::Sender<Value>,
) {
    for step in 1..=PROGRESS_STEPS {
        let progress = jsonrpc::notification(
            "notifications/progress",
            json!({
                "progressToken": token,
                "progress": step,
                "total": PROGRESS_STEPS,
                "message": format!("step {step} of {PROGRESS_STEPS}"),
            }),
        );
        // A send fails only when the client went away; the call still completes.
        let _ = tx.send(progress).await;
        tokio::time::sleep(state.progress_delay).await;
    }
    let response = answer(&state, &identity, &request);
    let _ = tx.send(response).await;
}

// === resources ===

fn note_uri(note: &Note) -> String {
    format!("note://{}", note.id)
}

fn resources_list(notes: &[Note]) -> Value {
    let resources: Vec<Value> = notes
        .iter()
        .map(|note| {
            json!({
                "uri": note_uri(note),
                "name": note.title,
                "title": note.title,
                "description": format!("Note {}", note.id),
                "mimeType": "text/plain",
            })
        })
        .collect();
    json!({ "resources": resources })
}

fn resources_read(state: &DemoState, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("resources/read needs a string `uri`"))?;
    let note = uri
        .strip_prefix("note://")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| state.notes.get(id))
        .ok_or_else(|| RpcError::resource_not_found(uri))?;
    Ok(json!({
        "contents": [{ "uri": note_uri(&note), "mimeType": "text/plain", "text": note.body }]
    }))
}

// === prompts ===

fn prompts_list() -> Value {
    json!({
        "prompts": [{
            "name": PROMPT_NAME,
            "title": "Summarise the notebook",
            "description": "Ask the model to summarise every note in the shared notebook.",
            "arguments": [{
                "name": "style",
                "description": "How to summarise: \"brief\" (the default) or \"detailed\".",
                "required": false,
            }],
        }]
    })
}

fn prompts_get(state: &DemoState, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompts/get needs a string `name`"))?;
    if name != PROMPT_NAME {
        return Err(RpcError::invalid_params(format!("Unknown prompt: {name}")));
    }
    let style = match params.get("arguments") {
        None | Some(Value::Null) => "brief",
        Some(Value::Object(arguments)) => match arguments.get("style") {
            None | Some(Value::Null) => "brief",
            Some(Value::String(style)) if !style.trim().is_empty() => style.trim(),
            Some(Value::String(_)) => "brief",
            Some(_) => return Err(RpcError::invalid_params("`style` must be a string")),
        },
        Some(_) => return Err(RpcError::invalid_params("`arguments` must be an object")),
    };
    let mut text = format!("Summarise the following notes in a {style} style.\n");
    let notes = state.notes.list();
    if notes.is_empty() {
        text.push_str("\n(The notebook is empty.)\n");
    }
    for note in &notes {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "\n## {} (note {})\n{}\n",
            note.title, note.id, note.body
        );
    }
    Ok(json!({
        "description": format!("Summarise {} notes ({style})", notes.len()),
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn negotiates_protocol_versions() {
        for version in PROTOCOL_VERSIONS {
            let result = initialize(&params(json!({ "protocolVersion": version }))).unwrap();
            assert_eq!(result["protocolVersion"], *version);
        }
        let result = initialize(&params(json!({ "protocolVersion": "1999-01-01" }))).unwrap();
        assert_eq!(result["protocolVersion"], LATEST_PROTOCOL_VERSION);
        assert!(initialize(&Map::new()).is_err());
    }
}
