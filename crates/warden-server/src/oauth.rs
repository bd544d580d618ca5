//! The OAuth 2.1 authorization server.

pub mod client_auth;
pub mod error;
pub mod metadata;
pub mod params;
pub mod token;

pub use error::{ErrorCode, OAuthError};
