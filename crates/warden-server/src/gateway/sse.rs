//! Rewriting JSON-RPC messages inside a Server-Sent Events stream, without buffering it.
//!
//! A list result can arrive as one event of an SSE stream, among progress notifications
//! and server requests. The stream is split into events as bytes arrive; each complete
//! event is sent on at once, unchanged unless its `data` is a JSON-RPC response the
//! rewriter changes. Once the rewriter says it is finished (a POST stream carries one
//! response), the rest of the stream is passed through chunk by chunk without parsing.

use std::collections::VecDeque;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream, StreamExt};
use http_body_util::BodyDataStream;
use serde_json::Value;

/// Largest single event parsed; a larger one ends the stream (a filter must not be
/// skipped by making an event big).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// What the rewriter did with one JSON-RPC response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// The message was changed and must be re-serialized.
    pub changed: bool,
    /// No later event needs looking at.
    pub finished: bool,
}

/// The stream ended inside an event larger than [`MAX_EVENT_BYTES`], or the upstream
/// failed mid-stream.
#[derive(Debug, thiserror::Error)]
#[error("upstream event stream failed")]
pub struct StreamError;

/// Splits SSE bytes into complete events (each with its terminating blank line).
///
/// A UTF-8 byte order mark at the very start of the stream is dropped, as a client's
/// decoder drops it (WHATWG HTML, "Parsing an event stream"): kept, it would make the
/// first line's field name `\u{FEFF}data`, which no rewriter reads as `data`, and a list
/// result in that event would reach the client unfiltered.
#[derive(Default)]
pub struct Splitter {
    buf: BytesMut,
    pos: usize,
    line_start: usize,
    /// Whether the stream's first bytes have been checked for a byte order mark.
    past_bom: bool,
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

// === impl Splitter ===

impl Splitter {
    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if one has arrived. Lines end in `\n`, `\r\n` or `\r`.
    pub fn next_event(&mut self) -> Option<Bytes> {
        if !self.past_bom {
            let n = self.buf.len().min(BOM.len());
            if self.buf[..n] != BOM[..n] {
                self.past_bom = true;
            } else if n < BOM.len() {
                return None; // Maybe the start of a mark: wait for the next bytes.
            } else {
                let _ = self.buf.split_to(BOM.len());
                self.past_bom = true;
            }
        }
        while self.pos < self.buf.len() {
            let (end, next) = match self.buf[self.pos] {
                b'\n' => (self.pos, self.pos + 1),
                b'\r' => match self.buf.get(self.pos + 1) {
                    Some(b'\n') => (self.pos, self.pos + 2),
                    Some(_) => (self.pos, self.pos + 1),
                    // A lone `\r` may be half of `\r\n`: wait for the next byte.
                    None => return None,
                },
                _ => {
                    self.pos += 1;
                    continue;
                }
            };
            let blank = end == self.line_start;
            self.pos = next;
            self.line_start = next;
            if blank {
                self.pos = 0;
                self.line_start = 0;
                return Some(self.buf.split_to(next).freeze());
            }
        }
        None
    }

    /// Bytes held that do not yet form a complete event.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Takes whatever is held.
    pub fn take_rest(&mut self) -> Bytes {
        self.pos = 0;
        self.line_start = 0;
        self.buf.split().freeze()
    }
}

/// Applies `rewrite` to the JSON-RPC response in `event`, if it carries one. `None` if the
/// event is to be sent unchanged.
pub fn rewrite_event(
    event: &[u8],
    rewrite: &mut impl FnMut(&mut Value) -> Rewrite,
) -> (Option<Bytes>, bool) {
    // A client decodes the stream as UTF-8 with replacement (WHATWG HTML, "event stream
    // interpretation"): the rewriter reads the event the same way, so that an invalid
    // byte cannot exempt it from filtering.
    let text = String::from_utf8_lossy(event);
    let lines: Vec<&str> = text.split_inclusive(['\n', '\r']).collect();
    let mut data = String::new();
    let mut has_data = false;
    for line in &lines {
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(value) = field(line, "data") {
            if has_data {
                data.push('\n');
            }
            data.push_str(value);
            has_data = true;
        }
    }
    if !has_data {
        return (None, false);
    }
    let Ok(mut message) = serde_json::from_str::<Value>(&data) else {
        return (None, false);
    };
    let is_response = message.get("method").is_none()
        && message.get("id").is_some()
        && (message.get("result").is_some() || message.get("error").is_some());
    if !is_response {
        return (None, false);
    }
    let outcome = rewrite(&mut message);
    if !outcome.changed {
        return (None, outcome.finished);
    }
    let mut out = String::with_capacity(event.len());
    let mut data_written = false;
    for line in &lines {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.is_empty() {
            continue;
        }
        if field(bare, "data").is_some() {
            if !data_written {
                out.push_str("data: ");
                out.push_str(&message.to_string());
                out.push('\n');
                data_written = true;
            }
        } else {
            out.push_str(bare);
            out.push('\n');
        }
    }
    out.push('\n');
    (Some(Bytes::from(out)), outcome.finished)
}

/// The value of SSE field `name` on `line` (one optional space after the colon).
fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some("");
    }
    let value = rest.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

struct State<S, F> {
    upstream: S,
    splitter: Splitter,
    rewrite: F,
    finished: bool,
    ready: VecDeque<Bytes>,
    ended: bool,
}

/// Wraps an upstream SSE `body`, rewriting responses with `rewrite` as events complete.
pub fn rewrite_stream<F>(body: Body, rewrite: F) -> Body
where
    F: FnMut(&mut Value) -> Rewrite + Send + 'static,
{
    let state = State {
        upstream: BodyDataStream::new(body),
        splitter: Splitter::default(),
        rewrite,
        finished: false,
        ready: VecDeque::new(),
        ended: false,
    };
    Body::from_stream(events(state))
}

fn events<S, F>(state: State<S, F>) -> impl Stream<Item = Result<Bytes, StreamError>> + Send
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin + Send,
    F: FnMut(&mut Value) -> Rewrite + Send,
{
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(out) = st.ready.pop_front() {
                return Some((Ok(out), st));
            }
            if st.ended {
                return None;
            }
            match st.upstream.next().await {
                None => {
                    st.ended = true;
                    let rest = st.splitter.take_rest();
                    if !rest.is_empty() {
                        st.ready.push_back(rest);
                    }
                }
                Some(Err(_)) => {
                    st.ended = true;
                    return Some((Err(StreamError), st));
                }
                Some(Ok(chunk)) if st.finished && st.splitter.pending() == 0 => {
                    return Some((Ok(chunk), st));
                }
                Some(Ok(chunk)) => {
                    st.splitter.push(&chunk);
                    while !st.finished {
                        let Some(event) = st.splitter.next_event() else {
                            break;
                        };
                        let (rewritten, finished) = rewrite_event(&event, &mut st.rewrite);
                        st.ready.push_back(rewritten.unwrap_or(event));
                        st.finished = finished;
                    }
                    if st.finished {
                        let rest = st.splitter.take_rest();
                        if !rest.is_empty() {
                            st.ready.push_back(rest);
                        }
                    } else if st.splitter.pending() > MAX_EVENT_BYTES {
                        st.ended = true;
                        return Some((Err(StreamError), st));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn splits_on_blank_lines_with_any_line_ending() {
        let mut s = Splitter::default();
        s.push(b"id: 1\ndata: a\n\n: keepalive\r\n\r\nda");
        assert_eq!(s.next_event().unwrap(), &b"id: 1\ndata: a\n\n"[..]);
        assert_eq!(s.next_event().unwrap(), &b": keepalive\r\n\r\n"[..]);
        assert!(s.next_event().is_none());
        s.push(b"ta: b\r");
        assert!(s.next_event().is_none(), "a lone CR waits");
        s.push(b"\r");
        assert!(s.next_event().is_none(), "still maybe \\r\\n");
        s.push(b"\n");
        assert_eq!(s.next_event().unwrap(), &b"data: b\r\r\n"[..]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped_even_split() {
        let mut s = Splitter::default();
        s.push(b"\xEF\xBB");
        assert!(s.next_event().is_none(), "maybe a mark: wait");
        s.push(b"\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(s.next_event().unwrap(), &b"data: a\n\n"[..]);
        // Only the stream's first bytes: a later one is the event's own business.
        assert_eq!(s.next_event().unwrap(), &b"\xEF\xBB\xBFdata: b\n\n"[..]);
        let mut s = Splitter::default();
        s.push(b"\xEFdata: c\n\n");
        assert_eq!(s.next_event().unwrap(), &b"\xEFdata: c\n\n"[..]);
    }

    /// The stream's list result is filtered even behind a byte order mark (a client drops
    /// the mark and reads the event).
    #[tokio::test]
    async fn a_list_behind_a_byte_order_mark_is_still_filtered() {
        let event = format!(
            "\u{FEFF}data: {}\n\n",
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"secret"}]}})
        );
        let body = rewrite_stream(Body::from(event), |m: &mut Value| {
            let tools = m["result"]["tools"].as_array_mut().unwrap();
            tools.retain(|t| t["name"] != "secret");
            Rewrite {
                changed: true,
                finished: true,
            }
        });
        let out = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("\"a\""), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn rewrites_only_responses() {
        let mut drop_b = |m: &mut Value| {
            let tools = m["result"]["tools"].as_array_mut().unwrap();
            tools.retain(|t| t["name"] != "b");
            Rewrite {
                changed: true,
                finished: true,
            }
        };
        let event = format!(
            "id: 7\nevent: message\ndata: {}\n\n",
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}})
        );
        let (out, finished) = rewrite_event(event.as_bytes(), &mut drop_b);
        assert!(finished);
        let out = String::from_utf8(out.unwrap().to_vec()).unwrap();
        assert!(out.starts_with("id: 7\nevent: message\ndata: {"), "{out}");
        assert!(out.ends_with("}\n\n"));
        assert!(out.contains("\"a\"") && !out.contains("\"b\""));

        let progress = format!(
            "data: {}\n\n",
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}})
        );
        assert_eq!(
            rewrite_event(progress.as_bytes(), &mut drop_b),
            (None, false)
        );
        assert_eq!(rewrite_event(b": comment\n\n", &mut drop_b), (None, false));
    }

    #[test]
    fn an_invalid_byte_does_not_exempt_an_event() {
        let list = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}});
        let mut drop_b = |m: &mut Value| {
            let tools = m["result"]["tools"].as_array_mut().unwrap();
            tools.retain(|t| t["name"] != "b");
            Rewrite {
                changed: true,
                finished: false,
            }
        };
        let invalid = [
            &b"id: 7\xff\ndata: "[..],
            list.to_string().as_bytes(),
            b"\n\n",
        ]
        .concat();
        let (out, _) = rewrite_event(&invalid, &mut drop_b);
        let out = String::from_utf8(out.expect("rewritten").to_vec()).unwrap();
        assert!(out.contains("\"a\"") && !out.contains("\"b\""), "{out}");
    }

    #[tokio::test]
    async fn stream_passes_events_through_and_rewrites_the_response() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(
                b"data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\nda",
            )),
            Ok(Bytes::from_static(
                b"ta: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"n\":1}}\n\n",
            )),
            Ok(Bytes::from_static(b"tail")),
        ];
        let body = Body::from_stream(stream::iter(chunks));
        let out = rewrite_stream(body, |m: &mut Value| {
            m["result"]["n"] = json!(2);
            Rewrite {
                changed: true,
                finished: true,
            }
        });
        let bytes = axum::body::to_bytes(out, usize::MAX).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(
            text,
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n\
             data: {\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"n\":2}}\n\ntail"
        );
    }
}
