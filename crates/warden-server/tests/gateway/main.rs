//! The gateway, in-process, in front of a real `warden-demo` upstream: every rule, both
//! ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod challenges;
mod dpop;
mod external;
mod legacy_sse;
mod metadata;
mod opaque;
#[path = "../shared/dpop.rs"]
pub mod proofs;
mod scopes;
mod sealed_settings;
mod sessions;
mod stdio;
mod support;
mod tls;
mod tokens;
mod transport;
