//! The built-in admin resource's identity: a registry record that the gateway, the
//! authorization server and the admin API each must tell apart from a real server. It
//! sits below all three so that none of them imports another for it.

use warden_core::server_settings::ServerSettings;
use warden_store::ServerRecord;

/// The built-in server that stands for the admin API.
pub const ADMIN_SERVER: &str = "admin";

/// The `builtin` setting that marks the admin resource's record.
pub const BUILTIN_MARK: &str = "admin";

/// Whether `rec` is the built-in admin resource (and not a server that merely took the
/// name before it was reserved).
pub fn is_builtin(rec: &ServerRecord) -> bool {
    rec.name == ADMIN_SERVER
        && ServerSettings::parse(&rec.settings)
            .is_ok_and(|s| s.builtin.as_deref() == Some(BUILTIN_MARK))
}
