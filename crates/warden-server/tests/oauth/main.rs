//! In-process tests of the authorization server: every rule, allowed and broken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod authorize;
mod browser;
mod client_auth;
mod metadata;
mod refresh;
mod revoke_introspect;
mod rotation;
mod token;
