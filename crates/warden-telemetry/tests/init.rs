//! `init` installs a process-global subscriber, so it gets its own test binary.

use warden_telemetry::{init, Error, LogFormat};

#[test]
fn init_validates_the_filter_and_installs_once() {
    let from_env = std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty());
    if !from_env {
        let err = init(LogFormat::Json, "warden=notalevel").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Filter {
                    source_name: "configuration",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("invalid log filter"));
    }
    init(LogFormat::Pretty, "info").unwrap();
    tracing::info!(password = "never-printed", "init test");
    let err = init(LogFormat::Json, "info").unwrap_err();
    assert!(matches!(err, Error::AlreadyInitialized(_)), "{err}");
}
