//! Writers that sit under the fmt layer: one that scrubs every event before it reaches its
//! sink, and an in-memory sink for tests.

use std::io::{self, Write};
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

use crate::redact::redact;

/// A [`MakeWriter`] that passes every formatted event through [`redact`] before handing it
/// to the wrapped writer.
///
/// The fmt layer formats an event into one buffer and writes it with a single
/// `write_all`, so each write normally carries a whole event and is scrubbed in place,
/// without copying. Partial writes are held back until the line is complete, so a secret
/// split across two writes is still seen whole.
#[derive(Clone, Debug, Default)]
pub struct RedactingWriter<M> {
    inner: M,
}

/// The writer handed out by [`RedactingWriter`] for one event.
///
/// Bytes after the last newline are held until the next newline or until the writer is
/// dropped; `flush` does not release them, since that could cut a secret in two.
pub struct RedactingGuard<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

/// An in-memory log sink for tests: a cloneable handle on a shared byte buffer.
///
/// Use it as the writer of a subscriber (see [`crate::capture`]) and read what was
/// written with [`SharedBuffer::contents`].
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer {
    bytes: Arc<Mutex<Vec<u8>>>,
}

// === impl RedactingWriter ===

impl<M> RedactingWriter<M> {
    /// Wraps `inner`, which receives only scrubbed output.
    pub fn new(inner: M) -> Self {
        Self { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingWriter<M> {
    type Writer = RedactingGuard<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingGuard::new(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        RedactingGuard::new(self.inner.make_writer_for(meta))
    }
}

// === impl RedactingGuard ===

impl<W: Write> RedactingGuard<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.inner.write_all(redact(text).as_bytes()),
            // The fmt layer only writes UTF-8; anything else is made text rather than let
            // through unscrubbed.
            Err(_) => {
                let text = String::from_utf8_lossy(bytes);
                self.inner.write_all(redact(&text).as_bytes())
            }
        }
    }
}

impl<W: Write> Write for RedactingGuard<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() && buf.ends_with(b"\n") {
            self.emit(buf)?;
            return Ok(buf.len());
        }
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(last_newline + 1);
            let complete = mem::replace(&mut self.pending, rest);
            self.emit(&complete)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingGuard<W> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let pending = mem::take(&mut self.pending);
            // Nowhere to report a failure from a destructor; the fmt layer has already
            // seen the write succeed.
            let _ = self.emit(&pending);
            let _ = self.inner.flush();
        }
    }
}

// === impl SharedBuffer ===

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// Everything written so far, as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Discards everything written so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock cannot leave a Vec<u8> half-updated in a way
        // that matters for a test buffer.
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SharedBuffer {
    type Writer = SharedBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_line_is_scrubbed() {
        let sink = SharedBuffer::new();
        let writer = RedactingWriter::new(sink.clone());
        writer
            .make_writer()
            .write_all(b"password=hunter2 user=bob\n")
            .unwrap();
        assert_eq!(sink.contents(), "password=[REDACTED] user=bob\n");
    }

    #[test]
    fn secret_split_across_writes_is_scrubbed() {
        let sink = SharedBuffer::new();
        let writer = RedactingWriter::new(sink.clone());
        let mut guard = writer.make_writer();
        guard.write_all(b"client_sec").unwrap();
        guard.write_all(b"ret=cs-1").unwrap();
        guard.flush().unwrap();
        assert_eq!(
            sink.contents(),
            "",
            "a partial line must not be released by flush"
        );
        guard.write_all(b"23 ok\ncode=ab").unwrap();
        assert_eq!(sink.contents(), "client_secret=[REDACTED] ok\n");
        drop(guard);
        assert_eq!(
            sink.contents(),
            "client_secret=[REDACTED] ok\ncode=[REDACTED]"
        );
    }

    #[test]
    fn invalid_utf8_is_still_scrubbed() {
        let sink = SharedBuffer::new();
        let writer = RedactingWriter::new(sink.clone());
        writer.make_writer().write_all(b"\xff token=t0k\n").unwrap();
        let out = sink.contents();
        assert!(!out.contains("t0k"), "{out}");
    }

    #[test]
    fn shared_buffer_clear() {
        let mut sink = SharedBuffer::new();
        sink.write_all(b"abc").unwrap();
        assert_eq!(sink.bytes(), b"abc");
        sink.clear();
        assert_eq!(sink.contents(), "");
    }
}
