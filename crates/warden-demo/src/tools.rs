//! The demo's tools, as plain functions on the notebook: argument checks, schemas and the
//! identity `whoami` reports. [`crate::server`] registers them with rmcp's tool router.
//!
//! Two kinds of failure are kept apart, as the MCP tools spec asks: a request the server
//! cannot route (unknown tool, `arguments` not an object) is a JSON-RPC `-32602` error,
//! raised by rmcp or [`crate::server`], while arguments that do not fit the tool's input
//! schema produce a normal result with `isError: true` ([`ToolOutcome`]), which a model
//! can read and correct. That is why the tools take their arguments as a raw JSON object
//! rather than as a typed `Parameters<T>`: rmcp turns a failed deserialisation into a
//! protocol error.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::{json, Map, Value};

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
pub(crate) struct BadArguments(String);

/// What a tool returns: its structured result, or why its arguments were refused.
pub(crate) type ToolOutcome = Result<Value, BadArguments>;

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

    pub(crate) fn to_json(&self) -> Value {
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

// === input schemas ===

pub(crate) fn no_arguments() -> Arc<JsonObject> {
    schema(json!({ "type": "object", "properties": {}, "additionalProperties": false }))
}

pub(crate) fn notes_read_schema() -> Arc<JsonObject> {
    schema(json!({
        "type": "object",
        "properties": {
            "id": { "type": "string", "description": "The note's id, as notes_list shows it." }
        },
        "required": ["id"],
        "additionalProperties": false,
    }))
}

pub(crate) fn notes_write_schema() -> Arc<JsonObject> {
    schema(json!({
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
    }))
}

/// An input schema: always a JSON object, as `json!({...})` above builds.
fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(JsonObject::new()),
    }
}

// === tools ===

/// `notes_list`: every note as `{id, title}`.
pub(crate) fn notes_list(notes: &NoteStore, arguments: &JsonObject) -> ToolOutcome {
    no_args(arguments)?;
    let listed: Vec<Value> = notes
        .list()
        .iter()
        .map(|note| json!({ "id": note.id.to_string(), "title": note.title }))
        .collect();
    Ok(json!({ "notes": listed }))
}

/// `notes_read`: one note by id.
pub(crate) fn notes_read(notes: &NoteStore, arguments: &JsonObject) -> ToolOutcome {
    only(arguments, &["id"])?;
    let id = note_id(arguments.get("id"))?;
    let note = notes
        .get(id)
        .ok_or_else(|| BadArguments(format!("note {id} not found")))?;
    Ok(note_json(&note))
}

/// `notes_write`: adds a note.
pub(crate) fn notes_write(notes: &NoteStore, arguments: &JsonObject) -> ToolOutcome {
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

/// `admin_reset`: deletes every note.
pub(crate) fn admin_reset(notes: &NoteStore, arguments: &JsonObject) -> ToolOutcome {
    no_args(arguments)?;
    Ok(json!({ "deleted": notes.clear() }))
}

/// `whoami`: the identity headers the request carried.
pub(crate) fn whoami(identity: &Identity, arguments: &JsonObject) -> ToolOutcome {
    no_args(arguments)?;
    Ok(identity.to_json())
}

/// The tool result for an outcome: the JSON as text (for older clients) and as
/// `structuredContent`, or the refusal as an `isError` text.
pub(crate) fn result(outcome: ToolOutcome) -> CallToolResult {
    match outcome {
        Ok(structured) => CallToolResult::structured(structured),
        Err(BadArguments(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
}

/// A note as tools and resources show it.
fn note_json(note: &Note) -> Value {
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
    fn bad_arguments_become_is_error_results() {
        let notes = NoteStore::seeded();
        let refused = |outcome: ToolOutcome| result(outcome).is_error == Some(true);
        assert!(refused(notes_write(&notes, &params(json!({"title": 1})))));
        assert!(refused(notes_list(&notes, &params(json!({"x": 1})))));
        assert!(refused(notes_read(&notes, &params(json!({"id": "99"})))));
        assert!(refused(whoami(
            &Identity::default(),
            &params(json!({"x": 1}))
        )));

        let written = result(notes_write(
            &notes,
            &params(json!({"title": "t", "body": "b"})),
        ));
        assert_eq!(written.is_error, Some(false));
        assert_eq!(
            written.structured_content,
            Some(json!({"id": "3", "title": "t"}))
        );
        assert_eq!(notes.list().len(), 3);
    }

    #[test]
    fn note_ids_accept_strings_and_integers() {
        assert_eq!(note_id(Some(&json!("2"))).unwrap(), 2);
        assert_eq!(note_id(Some(&json!(2))).unwrap(), 2);
        assert!(note_id(Some(&json!("two"))).is_err());
        assert!(note_id(None).is_err());
    }
}
