//! The demo's tools: `tools/list` definitions and `tools/call` execution.
//!
//! Two kinds of failure are kept apart, as the MCP tools spec asks: a request the server
//! cannot route (unknown tool, `arguments` not an object) is a JSON-RPC `-32602` error,
//! while arguments that do not fit the tool's input schema produce a normal result with
//! `isError: true`, which a model can read and correct.

use std::collections::BTreeMap;
use std::fmt;

use http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::jsonrpc::RpcError;
use crate::notes::{Note, NoteStore, MAX_BODY_CHARS, MAX_TITLE_CHARS};

/// The identity headers a request carried, as `whoami` reports them.
///
/// The values include the `authorization` header, which is a credential, so `Debug`
/// prints header names only.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Identity {
    headers: BTreeMap<String, String>,
}

/// A tool's arguments did not match its input schema. The message goes back to the
/// caller inside an `isError` result.
#[derive(Debug)]
struct BadArguments(String);

/// Static description of one tool.
struct ToolSpec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    read_only: bool,
    destructive: bool,
    input_schema: fn() -> Value,
}

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "notes_list",
        title: "List notes",
        description: "List every note in the shared notebook as {id, title} pairs.",
        read_only: true,
        destructive: false,
        input_schema: no_arguments,
    },
    ToolSpec {
        name: "notes_read",
        title: "Read a note",
        description: "Read one note (id, title and body) by its id.",
        read_only: true,
        destructive: false,
        input_schema: notes_read_schema,
    },
    ToolSpec {
        name: "notes_write",
        title: "Write a note",
        description: "Add a note to the shared notebook and return its new id.",
        read_only: false,
        destructive: false,
        input_schema: notes_write_schema,
    },
    ToolSpec {
        name: "admin_reset",
        title: "Reset the notebook",
        description: "Delete every note in the shared notebook. Needs the notes:admin scope.",
        read_only: false,
        destructive: true,
        input_schema: no_arguments,
    },
    ToolSpec {
        name: "whoami",
        title: "Who am I",
        description: "Show the identity headers this server received: every x-warden-* \
                      header, authorization (the gateway's assertion, never the client's \
                      token), x-user and x-forwarded-user.",
        read_only: true,
        destructive: false,
        input_schema: no_arguments,
    },
];

// === impl Identity ===

impl Identity {
    /// Collects `x-warden-*`, `authorization`, `x-user` and `x-forwarded-user`. Repeated
    /// headers are joined with `", "`; bytes that are not UTF-8 are replaced.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let mut collected: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_str();
            let wanted = name.starts_with("x-warden-")
                || matches!(name, "authorization" | "x-user" | "x-forwarded-user");
            if !wanted {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes());
            collected
                .entry(name.to_owned())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        Self { headers: collected }
    }

    /// The identity a stdio process is started with: the gateway passes the caller as
    /// `WARDEN_SUBJECT`, `WARDEN_CLIENT_ID` and `WARDEN_SCOPE` (never a token), reported
    /// under the header names an HTTP upstream would have seen.
    pub(crate) fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let headers = [
            ("WARDEN_SUBJECT", "x-warden-subject"),
            ("WARDEN_CLIENT_ID", "x-warden-client-id"),
            ("WARDEN_SCOPE", "x-warden-scope"),
        ]
        .into_iter()
        .filter_map(|(var, header)| get(var).map(|value| (header.to_owned(), value)))
        .collect();
        Self { headers }
    }

    fn to_json(&self) -> Value {
        Value::Object(
            self.headers
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect(),
        )
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

// === tools/list ===

/// The `tools/list` result. The list is short, so there is never a `nextCursor`.
pub(crate) fn list() -> Value {
    let tools: Vec<Value> = TOOLS
        .iter()
        .map(|tool| {
            json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
                "inputSchema": (tool.input_schema)(),
                "annotations": {
                    "title": tool.title,
                    "readOnlyHint": tool.read_only,
                    "destructiveHint": tool.destructive,
                    "idempotentHint": tool.read_only,
                    "openWorldHint": false,
                },
            })
        })
        .collect();
    json!({ "tools": tools })
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {}, "additionalProperties": false })
}

fn notes_read_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string", "description": "The note's id, as notes_list shows it." }
        },
        "required": ["id"],
        "additionalProperties": false,
    })
}

fn notes_write_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TITLE_CHARS,
                "description": "A short title."
            },
            "body": {
                "type": "string",
                "maxLength": MAX_BODY_CHARS,
                "description": "The note's text."
            }
        },
        "required": ["title", "body"],
        "additionalProperties": false,
    })
}

// === tools/call ===

/// Runs `tools/call` with the request's `params`.
pub(crate) fn call(
    notes: &NoteStore,
    identity: &Identity,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs a string `name`"))?;
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err(RpcError::invalid_params("`arguments` must be an object")),
    };
    let outcome = match name {
        "notes_list" => no_args(arguments).map(|()| notes_list(notes)),
        "notes_read" => notes_read(notes, arguments),
        "notes_write" => notes_write(notes, arguments),
        "admin_reset" => no_args(arguments).map(|()| json!({ "deleted": notes.clear() })),
        "whoami" => no_args(arguments).map(|()| identity.to_json()),
        unknown => return Err(RpcError::invalid_params(format!("Unknown tool: {unknown}"))),
    };
    Ok(match outcome {
        Ok(structured) => success(structured),
        Err(BadArguments(message)) => failure(&message),
    })
}

fn notes_list(notes: &NoteStore) -> Value {
    let listed: Vec<Value> = notes
        .list()
        .iter()
        .map(|note| json!({ "id": note.id.to_string(), "title": note.title }))
        .collect();
    json!({ "notes": listed })
}

fn notes_read(notes: &NoteStore, arguments: &Map<String, Value>) -> Result<Value, BadArguments> {
    only(arguments, &["id"])?;
    let id = note_id(arguments.get("id"))?;
    let note = notes
        .get(id)
        .ok_or_else(|| BadArguments(format!("note {id} not found")))?;
    Ok(note_json(&note))
}

fn notes_write(notes: &NoteStore, arguments: &Map<String, Value>) -> Result<Value, BadArguments> {
    only(arguments, &["title", "body"])?;
    let title = string_arg(arguments, "title")?;
    let body = string_arg(arguments, "body")?;
    if title.trim().is_empty() {
        return Err(BadArguments("`title` must not be empty".to_owned()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(BadArguments(format!(
            "`title` is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(BadArguments(format!(
            "`body` is longer than {MAX_BODY_CHARS} characters"
        )));
    }
    let note = notes.write(title, body);
    Ok(json!({ "id": note.id.to_string(), "title": note.title }))
}

/// A note as tools and resources show it.
pub(crate) fn note_json(note: &Note) -> Value {
    json!({ "id": note.id.to_string(), "title": note.title, "body": note.body })
}

fn no_args(arguments: &Map<String, Value>) -> Result<(), BadArguments> {
    only(arguments, &[])
}

/// Enforces the schemas' `additionalProperties: false`.
fn only(arguments: &Map<String, Value>, allowed: &[&str]) -> Result<(), BadArguments> {
    match arguments
        .keys()
        .find(|key| !allowed.contains(&key.as_str()))
    {
        Some(key) => Err(BadArguments(format!("unexpected argument `{key}`"))),
        None => Ok(()),
    }
}

fn string_arg<'a>(arguments: &'a Map<String, Value>, name: &str) -> Result<&'a str, BadArguments> {
    match arguments.get(name) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(BadArguments(format!("`{name}` must be a string"))),
        None => Err(BadArguments(format!("missing required argument `{name}`"))),
    }
}

/// Note ids are decimal strings; a bare integer is accepted too, since models send both.
fn note_id(value: Option<&Value>) -> Result<u64, BadArguments> {
    let parsed = match value {
        Some(Value::String(id)) => id.trim().parse().ok(),
        Some(Value::Number(id)) => id.as_u64(),
        Some(_) => None,
        None => return Err(BadArguments("missing required argument `id`".to_owned())),
    };
    parsed.ok_or_else(|| BadArguments("`id` must be a note id such as \"1\"".to_owned()))
}

/// A successful tool result: the JSON as text (for older clients) and as
/// `structuredContent`.
fn success(structured: Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": structured.to_string() }],
        "structuredContent": structured,
        "isError": false,
    })
}

fn failure(message: &str) -> Value {
    json!({
        "content": [{ "type": "text", "text": message }],
        "isError": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn identity_collects_only_identity_headers_and_hides_values_in_debug() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.append("x-warden-scope", HeaderValue::from_static("notes:read"));
        headers.append("x-warden-scope", HeaderValue::from_static("notes:write"));
        headers.insert("x-user", HeaderValue::from_static("alice"));
        headers.insert("cookie", HeaderValue::from_static("c=1"));
        let identity = Identity::from_headers(&headers);
        assert_eq!(
            identity.to_json(),
            json!({
                "authorization": "Bearer secret",
                "x-warden-scope": "notes:read, notes:write",
                "x-user": "alice",
            })
        );
        let debug = format!("{identity:?}");
        assert!(debug.contains("authorization"));
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn bad_arguments_are_tool_errors_and_unknown_tools_are_protocol_errors() {
        let notes = NoteStore::seeded();
        let identity = Identity::default();
        let call = |value| call(&notes, &identity, &params(value));

        let result = call(json!({"name": "notes_write", "arguments": {"title": 1}})).unwrap();
        assert_eq!(result["isError"], true);
        let result = call(json!({"name": "notes_list", "arguments": {"x": 1}})).unwrap();
        assert_eq!(result["isError"], true);
        let result = call(json!({"name": "notes_read", "arguments": {"id": "99"}})).unwrap();
        assert_eq!(result["isError"], true);

        let error = call(json!({"name": "nope"})).unwrap_err();
        assert_eq!(error.code, crate::jsonrpc::INVALID_PARAMS);
        let error = call(json!({"name": "whoami", "arguments": []})).unwrap_err();
        assert_eq!(error.code, crate::jsonrpc::INVALID_PARAMS);
    }

    #[test]
    fn note_ids_accept_strings_and_integers() {
        assert_eq!(note_id(Some(&json!("2"))).unwrap(), 2);
        assert_eq!(note_id(Some(&json!(2))).unwrap(), 2);
        assert!(note_id(Some(&json!("two"))).is_err());
        assert!(note_id(None).is_err());
    }
}
