//! The JSON-RPC message of a POST, parsed once for authorization, and error bodies.
//!
//! Parsing borrows from the body and reads only what authorization needs (`method`,
//! `id`, and per method `params.name`/`params.uri`/capabilities); the body itself is
//! forwarded byte for byte. serde refuses duplicate keys in the fields read here, so a
//! body like `{"params": {"name": "ok", "name": "admin_reset"}}` cannot be authorized as
//! one tool and executed as another.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::challenge::GatewayError;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC message (or a batch).
pub const INVALID_REQUEST: i64 = -32600;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server error: transport and upstream failures, authentication.
pub const SERVER_ERROR: i64 = -32000;
/// The session named by `Mcp-Session-Id` does not exist (for this identity).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// The token does not allow this call.
pub const FORBIDDEN: i64 = -32003;
/// MCP 2026-07-28 `HeaderMismatch`: mirrored headers disagree with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// The capability key under which a client declares the tools it intends to call.
pub const INTENDED_TOOLS: &str = "warden/intendedTools";

/// The first revision that requires `Mcp-Method`/`Mcp-Name`.
const HEADERS_REQUIRED_FROM: &str = "2026-07-28";

/// Most tools a client may declare; the declaration travels inside the session id.
pub const MAX_INTENDED_TOOLS: usize = 64;

/// One JSON-RPC message as posted.
#[derive(Deserialize)]
pub struct Message<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// What a message asks for, as far as authorization is concerned.
#[derive(Debug, PartialEq, Eq)]
pub enum Call<'a> {
    /// `tools/call`.
    Tool {
        /// The tool.
        name: Cow<'a, str>,
        /// Tools declared for this request (2026-07-28 `_meta` capabilities).
        intended: Option<Vec<String>>,
    },
    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
    Resource {
        /// The resource URI.
        uri: Cow<'a, str>,
    },
    /// `prompts/get`.
    Prompt {
        /// The prompt.
        name: Cow<'a, str>,
    },
    /// `completion/complete` for a prompt argument.
    CompletePrompt {
        /// The prompt.
        name: String,
    },
    /// `completion/complete` for a resource template argument.
    CompleteResource {
        /// The template URI.
        uri: String,
    },
    /// `initialize`, with the tools the client declared, if it did.
    Initialize {
        /// `capabilities.experimental["warden/intendedTools"]`.
        intended: Option<Vec<String>>,
    },
    /// A list whose result is filtered.
    List(ListKind),
    /// Any other method: needs only a valid token.
    Other,
    /// No method: the client's reply to a server request.
    Reply,
}

/// The list methods whose results are filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list` → `tools[].name`.
    Tools,
    /// `resources/list` → `resources[].uri`.
    Resources,
    /// `resources/templates/list` → `resourceTemplates[].uriTemplate`.
    ResourceTemplates,
    /// `prompts/list` → `prompts[].name`.
    Prompts,
}

#[derive(Deserialize)]
struct NameParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, rename = "_meta")]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct UriParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

#[derive(Deserialize)]
struct CompleteParams {
    #[serde(rename = "ref")]
    reference: CompleteRef,
}

#[derive(Deserialize)]
struct CompleteRef {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize)]
struct InitializeParams {
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default, rename = "io.modelcontextprotocol/clientCapabilities")]
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    experimental: Option<Experimental>,
}

#[derive(Deserialize)]
struct Experimental {
    #[serde(default, rename = "warden/intendedTools")]
    intended: Option<Vec<String>>,
}

/// The message as the upstream gets it: without the `warden/intendedTools` declaration,
/// which is addressed to the gateway (and is an array, where MCP's schema wants
/// `experimental` values to be objects, so strict upstream SDKs refuse the message).
/// `None` when the message declares nothing and goes as it came.
pub fn without_declaration(call: &Call<'_>, body: &[u8]) -> Result<Option<Bytes>, GatewayError> {
    let declares = matches!(
        call,
        Call::Initialize { intended: Some(_) }
            | Call::Tool {
                intended: Some(_),
                ..
            }
    );
    if !declares {
        return Ok(None);
    }
    let mut message: Value = serde_json::from_slice(body).map_err(|_| GatewayError::Parse)?;
    let params = message.get_mut("params");
    if let Some(params) = params {
        if let Some(e) = params.pointer_mut("/capabilities/experimental") {
            strip(e);
        }
        let meta = params
            .get_mut("_meta")
            .and_then(|m| m.get_mut("io.modelcontextprotocol/clientCapabilities"))
            .and_then(|c| c.get_mut("experimental"));
        if let Some(e) = meta {
            strip(e);
        }
    }
    let bytes = serde_json::to_vec(&message).map_err(|_| GatewayError::Parse)?;
    Ok(Some(Bytes::from(bytes)))
}

fn strip(experimental: &mut Value) {
    if let Some(map) = experimental.as_object_mut() {
        map.remove(INTENDED_TOOLS);
    }
}

// === impl Message ===

impl<'a> Message<'a> {
    /// Parses one message. A batch, invalid JSON or a non-object is an error.
    pub fn parse(body: &'a [u8]) -> Result<Self, GatewayError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'[') => return Err(GatewayError::Batch),
            Some(b'{') => {}
            _ => return Err(GatewayError::Parse),
        }
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                GatewayError::InvalidMessage {
                    id: Value::Null,
                    message: "Invalid Request: not a JSON-RPC message",
                }
            } else {
                GatewayError::Parse
            }
        })
    }

    /// The `id`, or `null` for a notification; for error replies.
    pub fn id(&self) -> Value {
        self.id
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    }

    /// Whether the message is a request (has an `id`) rather than a notification.
    pub fn is_request(&self) -> bool {
        self.id.is_some()
    }

    /// The method, if any.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Classifies the message, reading the parameters authorization needs.
    pub fn call(&self) -> Result<Call<'_>, GatewayError> {
        let Some(method) = self.method.as_deref() else {
            return Ok(Call::Reply);
        };
        let call = match method {
            "tools/call" => {
                let p: NameParams<'_> = self.params("tools/call needs params.name")?;
                Call::Tool {
                    name: p.name,
                    intended: p.meta.and_then(|m| intended(m.capabilities)),
                }
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let p: UriParams<'_> = self.params("this method needs params.uri")?;
                Call::Resource { uri: p.uri }
            }
            "prompts/get" => {
                let p: NameParams<'_> = self.params("prompts/get needs params.name")?;
                Call::Prompt { name: p.name }
            }
            "completion/complete" => {
                let p: CompleteParams = self.params("completion/complete needs params.ref")?;
                let missing = || self.invalid("completion/complete has an incomplete ref");
                match p.reference.kind.as_str() {
                    "ref/prompt" => Call::CompletePrompt {
                        name: p.reference.name.ok_or_else(missing)?,
                    },
                    "ref/resource" => Call::CompleteResource {
                        uri: p.reference.uri.ok_or_else(missing)?,
                    },
                    _ => return Err(missing()),
                }
            }
            "initialize" => {
                let intended = match self.params {
                    None => None,
                    Some(_) => {
                        let p: InitializeParams =
                            self.params("initialize has invalid capabilities")?;
                        p.capabilities.and_then(|c| intended(Some(c)))
                    }
                };
                Call::Initialize { intended }
            }
            "tools/list" => Call::List(ListKind::Tools),
            "resources/list" => Call::List(ListKind::Resources),
            "resources/templates/list" => Call::List(ListKind::ResourceTemplates),
            "prompts/list" => Call::List(ListKind::Prompts),
            _ => Call::Other,
        };
        if let Call::Tool {
            intended: Some(t), ..
        }
        | Call::Initialize { intended: Some(t) } = &call
        {
            if t.len() > MAX_INTENDED_TOOLS {
                return Err(self.invalid("too many intended tools declared"));
            }
        }
        Ok(call)
    }

    fn params<T: Deserialize<'a>>(&self, what: &'static str) -> Result<T, GatewayError> {
        let raw = self.params.ok_or_else(|| self.invalid(what))?;
        serde_json::from_str(raw.get()).map_err(|_| self.invalid(what))
    }

    fn invalid(&self, message: &'static str) -> GatewayError {
        GatewayError::InvalidParams {
            id: self.id(),
            message,
        }
    }

    /// Checks `Mcp-Method` and `Mcp-Name` against the body (400 `HeaderMismatch`).
    /// From revision 2026-07-28 on they are required; before, checked when present.
    pub fn check_mirrored_headers(
        &self,
        call: &Call<'_>,
        headers: &HeaderMap,
    ) -> Result<(), GatewayError> {
        let required = headers
            .get(&MCP_PROTOCOL_VERSION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() >= HEADERS_REQUIRED_FROM);
        let mismatch = |message: &'static str| GatewayError::HeaderMismatch {
            id: self.id(),
            message,
        };
        match (headers.get(&MCP_METHOD), self.method()) {
            (Some(h), Some(m)) if h.as_bytes() == m.as_bytes() => {}
            (Some(_), _) => return Err(mismatch("Mcp-Method header does not match the body")),
            (None, Some(_)) if required && self.is_request() => {
                return Err(mismatch("Mcp-Method header is required"))
            }
            (None, _) => {}
        }
        let name = match call {
            Call::Tool { name, .. } | Call::Prompt { name } => Some(name.as_ref()),
            Call::Resource { uri } if self.method() == Some("resources/read") => Some(uri.as_ref()),
            _ => None,
        };
        match (headers.get(&MCP_NAME), name) {
            (Some(h), Some(n)) if header_value_is(h.as_bytes(), n) => Ok(()),
            (Some(_), _) => Err(mismatch("Mcp-Name header does not match the body")),
            (None, Some(_)) if required => Err(mismatch("Mcp-Name header is required")),
            (None, _) => Ok(()),
        }
    }
}

// Header names as constants: looked up by `&str`, a name is parsed and hashed anew on
// every request.
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

fn intended(capabilities: Option<Capabilities>) -> Option<Vec<String>> {
    capabilities?.experimental?.intended
}

/// Whether a mirrored header value equals `expected`, decoding the
/// `=?base64?…?=` sentinel form.
fn header_value_is(value: &[u8], expected: &str) -> bool {
    let encoded = value
        .strip_prefix(b"=?base64?")
        .and_then(|v| v.strip_suffix(b"?="));
    match encoded {
        Some(b64) => STANDARD
            .decode(b64)
            .is_ok_and(|decoded| decoded == expected.as_bytes()),
        None => value == expected.as_bytes(),
    }
}

/// A JSON-RPC error response body.
pub fn error_body(id: &Value, code: i64, message: &str, data: Option<Value>) -> Bytes {
    let mut error = json!({ "code": code, "message": message });
    if let (Some(data), Some(obj)) = (data, error.as_object_mut()) {
        obj.insert("data".into(), data);
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn call_of(body: &str) -> Result<String, GatewayError> {
        let m = Message::parse(body.as_bytes())?;
        Ok(format!("{:?}", m.call()?))
    }

    #[test]
    fn the_declaration_is_not_forwarded() {
        let forward = |body: &str| -> Option<Value> {
            let m = Message::parse(body.as_bytes()).unwrap();
            let call = m.call().unwrap();
            without_declaration(&call, body.as_bytes())
                .unwrap()
                .map(|b| serde_json::from_slice(&b).unwrap())
        };
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"experimental":{"warden/intendedTools":["a"],"other/x":{"k":1}},"sampling":{}}}}"#;
        let out = forward(init).expect("rewritten");
        assert_eq!(
            out["params"]["capabilities"],
            json!({"experimental": {"other/x": {"k": 1}}, "sampling": {}})
        );
        assert_eq!(out["id"], 1);
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","_meta":{"io.modelcontextprotocol/clientCapabilities":{"experimental":{"warden/intendedTools":["a"]}}}}}"#;
        let out = forward(call).expect("rewritten");
        assert_eq!(
            out["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]["experimental"],
            json!({})
        );
        // Nothing declared: the body goes as it came.
        assert!(forward(
            r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"capabilities":{}}}"#
        )
        .is_none());
        assert!(forward(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#).is_none());
    }

    #[test]
    fn classifies_methods() {
        let c = call_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#);
        assert_eq!(c.unwrap(), r#"Tool { name: "a", intended: None }"#);
        let c = call_of(r#"{"id":1,"method":"resources/read","params":{"uri":"note://1"}}"#);
        assert_eq!(c.unwrap(), r#"Resource { uri: "note://1" }"#);
        let c = call_of(r#"{"method":"notifications/initialized"}"#).unwrap();
        assert_eq!(c, "Other");
        assert_eq!(call_of(r#"{"id":1,"result":{}}"#).unwrap(), "Reply");
        let c = call_of(
            r#"{"id":1,"method":"initialize","params":{"capabilities":{"experimental":{"warden/intendedTools":["a"]}}}}"#,
        );
        assert_eq!(c.unwrap(), r#"Initialize { intended: Some(["a"]) }"#);
        let c = call_of(
            r#"{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#,
        );
        assert_eq!(c.unwrap(), r#"CompletePrompt { name: "p" }"#);
    }

    #[test]
    fn refuses_ambiguous_or_malformed_bodies() {
        assert!(matches!(call_of("[]"), Err(GatewayError::Batch)));
        assert!(matches!(call_of("{"), Err(GatewayError::Parse)));
        assert!(matches!(call_of("3"), Err(GatewayError::Parse)));
        // Duplicate keys: authorized as one tool, executed as another.
        let dup = r#"{"id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#;
        assert!(matches!(
            call_of(dup),
            Err(GatewayError::InvalidParams { .. })
        ));
        let dup = r#"{"id":1,"method":"tools/list","method":"tools/call"}"#;
        assert!(call_of(dup).is_err());
        let no_name = r#"{"id":1,"method":"tools/call","params":{}}"#;
        assert!(matches!(
            call_of(no_name),
            Err(GatewayError::InvalidParams { .. })
        ));
    }

    #[test]
    fn mirrored_headers_must_match() {
        let body = br#"{"id":1,"method":"tools/call","params":{"name":"w\u00e9"}}"#;
        let m = Message::parse(body).unwrap();
        let call = m.call().unwrap();
        let mut h = HeaderMap::new();
        assert!(m.check_mirrored_headers(&call, &h).is_ok());
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        assert!(m.check_mirrored_headers(&call, &h).is_err(), "required");
        h.insert("mcp-method", HeaderValue::from_static("tools/call"));
        h.insert("mcp-name", HeaderValue::from_static("=?base64?d8Op?="));
        assert!(m.check_mirrored_headers(&call, &h).is_ok());
        h.insert("mcp-name", HeaderValue::from_static("other"));
        assert!(m.check_mirrored_headers(&call, &h).is_err());
        h.insert("mcp-method", HeaderValue::from_static("tools/list"));
        assert!(m.check_mirrored_headers(&call, &h).is_err());
    }
}
