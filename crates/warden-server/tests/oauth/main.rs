//! In-process tests of the authorization server: every rule, allowed and broken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_support;
mod docs;
#[path = "../shared/dpop.rs"]
pub mod proofs;
mod support;

mod admin_api;
mod admin_auth;
mod admin_changes;
mod admin_idps;
mod admin_settings;
mod authorize;
mod browser;
mod cimd;
mod client_auth;
mod dpop;
mod exchange;
mod federation;
mod metadata;
mod policy;
mod private_key_jwt;
mod refresh;
mod register;
mod revoke_introspect;
mod rotation;
mod secret_rotation;
mod token;
