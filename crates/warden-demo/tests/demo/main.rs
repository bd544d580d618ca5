//! The demo MCP server's tests: the router in-process, and `serve` on a real socket.

// clippy.toml's allow-*-in-tests covers `#[test]` functions only; the shared helpers in
// this test binary fail loudly on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve;
mod streams;
mod support;
mod tools;
mod transport;
