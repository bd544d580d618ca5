//! The OAuth 2.1 authorization server.

pub mod authorize;
pub mod browser;
pub mod client_auth;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod lockout;
pub mod metadata;
pub mod pages;
pub mod params;
pub mod revoke;
pub mod token;

pub use error::{ErrorCode, OAuthError};
