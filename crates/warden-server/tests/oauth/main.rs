//! In-process tests of the authorization server: every rule, allowed and broken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod support;

mod admin_api;
mod admin_auth;
mod authorize;
mod browser;
mod client_auth;
mod metadata;
mod refresh;
mod revoke_introspect;
mod rotation;
mod secret_rotation;
mod token;
