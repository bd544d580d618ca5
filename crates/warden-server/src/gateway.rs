//! The MCP gateway: `/mcp/{server}` and its protected-resource metadata.

use axum::Router;

use crate::App;

/// The gateway's routes, merged into the main router.
pub fn routes() -> Router<App> {
    Router::new()
}
