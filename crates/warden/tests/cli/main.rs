//! The one integration-test binary: it runs the real `warden` executable.

// Test helpers outside #[test] fns may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
mod user_agent;

mod admin_openapi;
mod admin_remote;
mod bad_input;
mod browser;
mod conformance;
mod conformance_server;
mod consent;
mod crash;
mod delegation;
mod dpop_client;
mod events;
mod federation;
mod idp;
mod policy;
mod quickstart;
mod redaction;
mod remote_tls;
mod replicas;
mod scrubbing;
mod sdk_clients;
mod serve;
mod server_settings;
mod subagent;
mod upstream_auth;
