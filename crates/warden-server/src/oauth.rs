//! The OAuth 2.1 authorization server.

pub mod assertion;
pub mod authorize;
pub mod browser;
pub mod cimd;
pub mod client_auth;
pub mod directory;
pub mod error;
pub mod exchange;
pub mod federated;
pub mod fetch;
pub mod grants;
pub mod introspect;
pub mod issue;
pub mod jwt_bearer;
pub mod lockout;
pub mod metadata;
pub mod pages;
pub mod params;
pub mod register;
pub mod revoke;
pub mod token;

pub use error::{ErrorCode, OAuthError};
