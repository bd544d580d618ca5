//! JSON-RPC 2.0 framing: classifying what a client posted and building replies.
//!
//! MCP messages are JSON-RPC 2.0 objects. Since protocol revision 2025-06-18 a POST body
//! carries exactly one message, so arrays (batches) are refused here rather than executed.

use serde_json::{json, Map, Value};

/// Invalid JSON was received.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC message (or is a batch).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters, including unknown tool and prompt names.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// MCP's code for `resources/read` on a URI that does not exist.
pub(crate) const RESOURCE_NOT_FOUND: i64 = -32002;
/// Implementation-defined transport error (bad headers, missing session, ...).
pub(crate) const TRANSPORT_ERROR: i64 = -32000;
/// Implementation-defined: the session named by `Mcp-Session-Id` does not exist.
pub(crate) const SESSION_NOT_FOUND: i64 = -32001;

/// A JSON-RPC request: it has an `id` and expects exactly one response.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// A string or a number; MCP forbids `null` ids.
    pub(crate) id: Value,
    pub(crate) method: String,
    /// The `params` object, or an empty object when the client sent none.
    pub(crate) params: Map<String, Value>,
}

/// One message posted by a client.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request(Request),
    /// A notification (no `id`). Only its method is kept, for tracing.
    Notification {
        method: String,
    },
    /// A response to a server-initiated request.
    Response,
}

/// Why a posted JSON value is not a message we accept.
#[derive(Debug, PartialEq)]
pub(crate) enum Malformed {
    /// A JSON array: batches were removed from MCP in 2025-06-18.
    Batch,
    /// Not a JSON-RPC 2.0 message. `id` is echoed when it could be read.
    Invalid { id: Value },
}

/// A JSON-RPC error object, as returned inside a response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn method_not_found(method: &str) -> Self {
        Self {
            code: METHOD_NOT_FOUND,
            message: format!("Method not found: {method}"),
            data: None,
        }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self {
            code: INVALID_PARAMS,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn resource_not_found(uri: &str) -> Self {
        Self {
            code: RESOURCE_NOT_FOUND,
            message: "Resource not found".to_owned(),
            data: Some(json!({ "uri": uri })),
        }
    }

    fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(data), Value::Object(fields)) = (&self.data, &mut error) {
            fields.insert("data".to_owned(), data.clone());
        }
        error
    }
}

/// Classifies one parsed JSON value as a request, notification or response.
pub(crate) fn classify(value: Value) -> Result<Incoming, Malformed> {
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(Malformed::Batch),
        _ => return Err(Malformed::Invalid { id: Value::Null }),
    };
    let id = object.remove("id");
    let echo_id = match &id {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    let invalid = || Malformed::Invalid {
        id: echo_id.clone(),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid());
    }
    if let Some(method) = object.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid());
        };
        let params = match object.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            // MCP only ever uses by-name parameters.
            Some(_) => return Err(invalid()),
        };
        return match id {
            None => Ok(Incoming::Notification { method }),
            Some(Value::String(_) | Value::Number(_)) => Ok(Incoming::Request(Request {
                id: echo_id,
                method,
                params,
            })),
            Some(_) => Err(invalid()),
        };
    }
    let is_response = object.contains_key("result") || object.contains_key("error");
    if is_response && id.is_some() {
        Ok(Incoming::Response)
    } else {
        Err(invalid())
    }
}

/// A successful response to the request with `id`.
pub(crate) fn success(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response to the request with `id` (`null` when the id is unknown).
pub(crate) fn failure(id: &Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() })
}

/// A server-to-client notification.
pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// Reads `params._meta.progressToken`, which MCP allows to be a string or an integer.
pub(crate) fn progress_token(params: &Map<String, Value>) -> Option<Value> {
    let token = params.get("_meta")?.get("progressToken")?;
    match token {
        Value::String(_) => Some(token.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(token.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let request = classify(json!({"jsonrpc":"2.0","id":7,"method":"ping"}));
        assert!(
            matches!(request, Ok(Incoming::Request(Request { ref method, .. })) if method == "ping")
        );

        let note = classify(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert!(matches!(note, Ok(Incoming::Notification { .. })));

        let response = classify(json!({"jsonrpc":"2.0","id":"s-1","result":{}}));
        assert!(matches!(response, Ok(Incoming::Response)));
    }

    #[test]
    fn rejects_batches_and_non_jsonrpc() {
        assert_eq!(classify(json!([])).err(), Some(Malformed::Batch));
        assert_eq!(
            classify(json!({"id": 3, "method": "ping"})).err(),
            Some(Malformed::Invalid { id: json!(3) })
        );
        assert_eq!(
            classify(json!({"jsonrpc":"2.0","id":null,"method":"ping"})).err(),
            Some(Malformed::Invalid { id: Value::Null })
        );
        assert_eq!(
            classify(json!({"jsonrpc":"2.0","id":1,"method":"ping","params":[1]})).err(),
            Some(Malformed::Invalid { id: json!(1) })
        );
        assert_eq!(
            classify(json!("hello")).err(),
            Some(Malformed::Invalid { id: Value::Null })
        );
    }

    #[test]
    fn reads_progress_tokens() {
        let params = |meta: Value| match json!({ "_meta": meta }) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        assert_eq!(
            progress_token(&params(json!({"progressToken": "t"}))),
            Some(json!("t"))
        );
        assert_eq!(
            progress_token(&params(json!({"progressToken": 4}))),
            Some(json!(4))
        );
        assert_eq!(progress_token(&params(json!({"progressToken": 1.5}))), None);
        assert_eq!(progress_token(&Map::new()), None);
    }
}
