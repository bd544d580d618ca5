//! Warden's rules, with no I/O.
//!
//! Everything here is deterministic given its inputs: time comes from a [`clock::Clock`]
//! passed in by the caller, and randomness from a [`ring::rand::SecureRandom`]. The HTTP
//! layer (`warden-server`) and the store (`warden-store`) build on these types.

pub mod client_metadata;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dpop;
pub mod federation;
pub mod grant;
pub mod idp;
pub mod jwt;
pub mod keys;
pub mod net;
pub mod password;
pub mod pkce;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod server_settings;
pub mod sync;
pub mod tool_policy;
pub mod uri;
