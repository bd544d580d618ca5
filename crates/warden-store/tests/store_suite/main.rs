//! The storage test suite. Every case is written once and runs against SQLite and
//! PostgreSQL; see `harness.rs` for how each backend gets a fresh database.

// The whole binary is test code, helpers included; a failed setup should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod harness;
mod fixtures;

mod audit;
mod clients;
mod codes;
mod dpop;
mod idps;
mod lifecycle;
mod misc;
mod refresh;
mod servers;
mod users;
