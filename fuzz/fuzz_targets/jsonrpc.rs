//! A POSTed JSON-RPC body and its mirrored headers, as the gateway reads them before
//! authorizing: `Message::parse`, `call`, `check_mirrored_headers`, and the scope the
//! named item needs under a fixed policy.
//!
//! Input: up to three header lines (`Mcp-Protocol-Version`, `Mcp-Method`, `Mcp-Name`),
//! then a NUL, then the body. Without a NUL the whole input is the body.
//!
//! Properties beyond not panicking:
//! - what is authorized is what a generic JSON parser (the upstream's) reads: the method,
//!   and the tool, prompt or resource named, are the same in a `serde_json::Value` of the
//!   body (serde refuses duplicate keys, so no "authorize one, execute another");
//! - a message that passes the header check has an `Mcp-Method` equal to its method.

#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use warden_server::gateway::jsonrpc::{Call, Message};
use warden_core::server_settings::ServerSettings;
use warden_core::tool_policy::Policy;

static POLICY: LazyLock<Option<Policy>> = LazyLock::new(|| {
    let group = |scope: &str, tools: &[&str]| -> (String, Vec<String>) {
        (scope.into(), tools.iter().map(|t| (*t).to_owned()).collect())
    };
    let groups = [
        group(
            "notes:read",
            &[
                "notes_read",
                "notes_*",
                "resource:note://",
                "prompt:summary",
            ],
        ),
        group(
            "notes:admin",
            &["notes_admin*", "resource:note://secret/", "tool:reset"],
        ),
    ];
    let settings = ServerSettings::parse(&json!({ "unmapped_prompts": "allow" })).ok()?;
    Some(Policy::compile(
        groups.iter().map(|(s, t)| (s.as_str(), t.as_slice())),
        &settings,
    ))
});

const HEADERS: [&str; 3] = ["mcp-protocol-version", "mcp-method", "mcp-name"];

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in HEADERS.iter().zip(head.split(|&b| b == b'\n')) {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }

    let Ok(message) = Message::parse(body) else {
        return;
    };
    let _ = message.id();
    let Ok(call) = message.call() else {
        return;
    };
    let generic: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(generic) = &generic {
        assert_eq!(
            generic.get("method").and_then(Value::as_str),
            message.method(),
            "the method authorized is not the one forwarded"
        );
        let params = generic.get("params");
        let field = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_str);
        match &call {
            Call::Tool { name, .. } | Call::Prompt { name } => {
                assert_eq!(field("name"), Some(name.as_ref()), "name differs");
            }
            Call::Resource { uri } => assert_eq!(field("uri"), Some(uri.as_ref()), "uri differs"),
            _ => {}
        }
    }

    if message.check_mirrored_headers(&call, &headers).is_ok() {
        if let (Some(h), Some(m)) = (headers.get("mcp-method"), message.method()) {
            assert_eq!(
                h.as_bytes(),
                m.as_bytes(),
                "Mcp-Method accepted but differs"
            );
        }
    }

    if let Some(policy) = POLICY.as_ref() {
        let _ = match &call {
            Call::Tool { name, intended } => {
                for t in intended.iter().flatten() {
                    let _ = policy.tool(t);
                }
                policy.tool(name)
            }
            Call::Resource { uri } => policy.resource(uri),
            Call::Prompt { name } => policy.prompt(name),
            Call::CompletePrompt { name } => policy.prompt(name),
            Call::CompleteResource { uri } => policy.resource_template(uri),
            _ => return,
        };
    }
});
