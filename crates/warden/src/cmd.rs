//! One module per top-level command.

pub mod client;
pub mod consent;
pub mod demo;
pub mod events;
pub mod init;
pub mod keys;
pub mod policy;
pub mod quickstart;
pub mod serve;
pub mod server;
pub mod status;
pub mod user;
