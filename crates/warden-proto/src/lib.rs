//! Wire types shared by the Warden server, CLI and console.
//!
//! These are the JSON shapes on the wire: OAuth metadata documents, token responses,
//! OAuth error bodies, and admin DTOs. They hold no logic.

pub mod admin;
pub mod oauth;
