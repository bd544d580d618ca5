//! An upstream's Server-Sent Events stream, split into events as bytes arrive
//! (`sse::Splitter`) and rewritten where an event carries a JSON-RPC response
//! (`sse::rewrite_event`), as the gateway does to filter list results.
//!
//! Input: the first byte seeds the chunk sizes; the rest is the stream.
//!
//! Properties:
//! - splitting loses and adds nothing, and does not depend on how the stream was
//!   chunked;
//! - a rewritten event is still one complete event, and a client reading its `data`
//!   sees the rewritten message and nothing the rewriter removed.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_server::gateway::sse::{rewrite_event, Rewrite, Splitter};

/// The hidden item: the rewriter removes every tool by this name.
const HIDDEN: &str = "admin_reset";

fn split(stream: &[u8], sizes: u8) -> (Vec<Bytes>, Bytes) {
    let mut s = Splitter::default();
    let mut events = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(sizes % 7) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        s.push(chunk);
        while let Some(e) = s.next_event() {
            events.push(e);
        }
        rest = tail;
        step = step % 13 + 1;
    }
    (events, s.take_rest())
}

/// Removes tools named [`HIDDEN`] from a list result. Never finished: a GET stream is
/// watched to its end, the strictest case.
fn hide(message: &mut Value) -> Rewrite {
    let changed = match message.pointer_mut("/result/tools") {
        Some(Value::Array(tools)) => {
            let before = tools.len();
            tools.retain(|t| !is_hidden(t));
            tools.len() != before
        }
        _ => false,
    };
    Rewrite {
        changed,
        finished: false,
    }
}

fn is_hidden(tool: &Value) -> bool {
    tool.get("name").and_then(Value::as_str) == Some(HIDDEN)
}

/// Whether a client would take `data` for a response listing the hidden tool.
fn shows_hidden(data: &str) -> bool {
    let Ok(message) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    let is_response = message.get("method").is_none()
        && message.get("id").is_some()
        && (message.get("result").is_some() || message.get("error").is_some());
    is_response
        && message
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .is_some_and(|tools| tools.iter().any(is_hidden))
}

/// The `data` of one event as a browser's `EventSource` reads it (WHATWG HTML, "event
/// stream interpretation"), from the bytes decoded as UTF-8 with replacement; a byte
/// order mark is dropped at the start of the stream.
fn client_data(event: &[u8], first: bool) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) if first => rest,
        _ => &text,
    };
    let mut data = String::new();
    let mut any = false;
    for line in text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        let (name, value) = match line.find(':') {
            Some(0) => continue,
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        if name == "data" {
            data.push_str(value);
            data.push('\n');
            any = true;
        }
    }
    any.then(|| {
        data.pop();
        data
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sizes, stream)) = data.split_first() else {
        return;
    };
    // Not yet handled: a client drops a byte order mark at the start of the stream, but
    // `rewrite_event` sees one event at a time and cannot tell the first from the others.
    if stream.starts_with("\u{feff}".as_bytes()) {
        return;
    }
    let (events, rest) = split(stream, sizes);
    let (whole, whole_rest) = split(stream, 255);
    assert_eq!(events, whole, "events depend on chunking");
    assert_eq!(rest, whole_rest);
    let mut joined: Vec<u8> = events.iter().flat_map(|e| e.to_vec()).collect();
    joined.extend_from_slice(&rest);
    assert_eq!(joined, stream, "splitting lost or added bytes");

    for (i, event) in events.iter().enumerate() {
        let (rewritten, _) = rewrite_event(event, &mut hide);
        let Some(out) = rewritten else {
            let data = client_data(event, i == 0).unwrap_or_default();
            assert!(!shows_hidden(&data), "a hidden tool passed unfiltered");
            continue;
        };
        let (again, tail) = split(&out, 0);
        assert_eq!(again.len(), 1, "a rewritten event is not one event");
        assert!(tail.is_empty());
        let data = client_data(&out, i == 0).expect("a rewritten event keeps its data");
        let message: Value = serde_json::from_str(&data).expect("rewritten data is JSON");
        assert!(!shows_hidden(&data), "a hidden tool reached the client");
        assert!(message.get("result").is_some() || message.get("error").is_some());
    }
});
