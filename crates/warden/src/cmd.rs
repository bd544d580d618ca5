//! One module per top-level command.

pub mod client;
pub mod consent;
pub mod demo;
pub mod events;
pub mod idp;
pub mod init;
pub mod keys;
pub mod policy;
pub mod quickstart;
pub mod serve;
pub mod server;
pub mod status;
pub mod user;

/// A repeatable flag of an update: `None` when not given (the field keeps its value),
/// else the list that replaces it.
pub fn given<T: Clone>(list: &[T]) -> Option<Vec<T>> {
    (!list.is_empty()).then(|| list.to_vec())
}
