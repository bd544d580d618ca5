//! Opening, migrations, and connection errors.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};
use warden_store::{ClientStore, Store, StoreError, StoreOptions};

use crate::fixtures::client;
use crate::harness::raw_execute;

backend_tests_with_url!(
    migrations_are_idempotent,
    newer_schema_is_refused,
    a_database_outage_is_answered_at_once_and_ends_by_itself
);

async fn migrations_are_idempotent(store: Store, url: String) {
    store.ping().await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        store.supported_schema_version()
    );
    assert_eq!(store.schema_version().await.unwrap(), 7);
    store.create(&client("c1", "One")).await.unwrap();

    // Reopening (twice, concurrently, as replicas starting together would) applies
    // nothing and keeps the data.
    let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.backend_name(), store.backend_name());
    assert_eq!(a.schema_version().await.unwrap(), 7);
    assert_eq!(b.schema_version().await.unwrap(), 7);
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

/// A TCP relay in front of PostgreSQL that can be cut (every connection dropped, the
/// port closed) and restored on the same port: an outage the store cannot tell from a
/// real one.
struct Relay {
    port: u16,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let mut relay = Relay {
            port: 0,
            target,
            task: None,
        };
        relay.restore().await;
        relay
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.port = listener.local_addr().unwrap().port();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) drops every relayed connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// During a PostgreSQL outage, once the store knows the database is down, every operation
/// fails at once (`Unavailable`, which the server answers 503 with `Retry-After`) instead
/// of waiting out the connect timeout; when the database is back the store recovers by
/// itself.
async fn a_database_outage_is_answered_at_once_and_ends_by_itself(store: Store, url: String) {
    if store.backend_name() != "postgres" {
        return; // A SQLite file has no outages, only errors.
    }
    store.create(&client("c1", "One")).await.unwrap();
    let mut parsed = url::Url::parse(&url).unwrap();
    let target = (parsed.host_str().unwrap(), parsed.port().unwrap_or(5432));
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut relay = Relay::start(target).await;
    parsed.set_port(Some(relay.port)).unwrap();
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(10),
        ..StoreOptions::default()
    };
    let relayed = Store::open_with(parsed.as_str(), &options).await.unwrap();
    assert!(relayed.get("c1").await.unwrap().is_some());

    relay.cut().await;
    let timed = |store: Store| async move {
        let start = std::time::Instant::now();
        let result = store.get("c1").await;
        (result, start.elapsed())
    };
    // The outage is noticed within a few seconds (an operation already waiting may still
    // wait out its timeout); from then on every operation is refused at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    loop {
        let (result, took) = timed(relayed.clone()).await;
        if result.is_err() && took < Duration::from_secs(1) {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "operations still wait during the outage ({took:?})"
        );
    }
    for _ in 0..5 {
        let (result, took) = timed(relayed.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    assert!(relayed.ping().await.is_err());

    relay.restore().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(c)) = relayed.get("c1").await {
            assert_eq!(c.client_id, "c1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relayed.ping().await.unwrap();
    relayed.close().await;
    relay.cut().await;
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
