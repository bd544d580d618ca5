//! The one integration-test binary: it runs the real `warden` executable.

// Test helpers outside #[test] fns may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
mod user_agent;

mod admin_remote;
mod bad_input;
mod conformance;
mod consent;
mod crash;
mod events;
mod quickstart;
mod redaction;
mod serve;
