//! Opening, migrations, and connection errors.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};
use warden_store::{ClientStore, Store, StoreError, StoreOptions};

use crate::fixtures::client;
use crate::harness::raw_execute;

backend_tests_with_url!(migrations_are_idempotent, newer_schema_is_refused);

async fn migrations_are_idempotent(store: Store, url: String) {
    store.ping().await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        store.supported_schema_version()
    );
    assert_eq!(store.schema_version().await.unwrap(), 3);
    store.create(&client("c1", "One")).await.unwrap();

    // Reopening (twice, concurrently, as replicas starting together would) applies
    // nothing and keeps the data.
    let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.backend_name(), store.backend_name());
    assert_eq!(a.schema_version().await.unwrap(), 3);
    assert_eq!(b.schema_version().await.unwrap(), 3);
    assert!(a.get("c1").await.unwrap().is_some());
    a.close().await;
    b.close().await;
}

async fn newer_schema_is_refused(store: Store, url: String) {
    raw_execute(
        &url,
        "INSERT INTO warden_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
    )
    .await;
    assert_eq!(store.schema_version().await.unwrap(), 999);
    let err = Store::open(&url).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("999") && m.contains("newer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert!(format!("{store:?}").contains("sqlite"));
    store.close().await;
    // The file was switched to WAL, which persists in the file.
    sqlx::any::install_default_drivers();
    let mut raw = AnyConnection::connect(&url).await.unwrap();
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(row.try_get::<String, _>(0).unwrap(), "wal");
    raw.close().await.unwrap();
    // The file survives and reopens.
    assert!(dir.path().join("w.db").exists());
    Store::open(&url).await.unwrap().close().await;
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.create(&client("c1", "One")).await.unwrap();
    assert!(store.get("c1").await.unwrap().is_some());
}

#[tokio::test]
async fn unreachable_postgres_names_host_but_not_password() {
    let options = StoreOptions {
        acquire_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let err = Store::open_with(
        "postgres://warden:hunter2-secret@127.0.0.1:1/warden",
        &options,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(msg.contains("127.0.0.1:1/warden"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn unopenable_sqlite_names_file() {
    let err = Store::open("sqlite:///nonexistent-dir-for-warden/x/w.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent-dir-for-warden/x/w.db"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_scheme_is_refused() {
    assert!(matches!(
        Store::open("mysql://x/y").await,
        Err(StoreError::Unavailable(_))
    ));
}
