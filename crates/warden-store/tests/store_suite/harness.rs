//! Runs one test body against a fresh database of either backend.
//!
//! SQLite: a new file in a temporary directory. PostgreSQL: a new schema in the database
//! at `WARDEN_TEST_DATABASE_URL`, selected through `search_path`, dropped afterwards.

use std::future::Future;
use std::io::Write;

use sqlx::{AnyConnection, Connection, Executor};
use tempfile::TempDir;
use warden_store::Store;

/// Which backend a generated test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database and what it takes to remove it.
struct Db {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Dropping the directory removes the database file.
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres {
        admin_url: String,
        schema: String,
    },
}

/// Generates `mod <case> { sqlite, postgres }` tests for each `async fn <case>(Store)`.
macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::harness::run($crate::harness::Backend::Sqlite, stringify!($case), |store, _url| super::$case(store)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::harness::run($crate::harness::Backend::Postgres, stringify!($case), |store, _url| super::$case(store)).await
            }
        }
    )*};
}

/// Like [`backend_tests!`] for cases that also need the database URL, to reopen the
/// store or to tamper with rows directly: `async fn <case>(Store, String)`.
macro_rules! backend_tests_with_url {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::harness::run($crate::harness::Backend::Sqlite, stringify!($case), super::$case).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::harness::run($crate::harness::Backend::Postgres, stringify!($case), super::$case).await
            }
        }
    )*};
}

/// Opens a fresh database, runs `test` on it in its own task, then removes the
/// database whether or not the test panicked, and re-raises the panic.
pub async fn run<F, Fut>(backend: Backend, name: &str, test: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = open(backend, name).await else {
        return;
    };
    // Spawning also proves every store future is `Send`.
    let outcome = tokio::spawn(test(db.store.clone(), db.url.clone())).await;
    db.store.close().await;
    if let Cleanup::Postgres { admin_url, schema } = &db.cleanup {
        let mut admin = AnyConnection::connect(admin_url).await.unwrap();
        admin
            .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
    }
    drop(db);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn open(backend: Backend, name: &str) -> Option<Db> {
    sqlx::any::install_default_drivers();
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("warden.db").display());
            let store = Store::open(&url).await.unwrap();
            Some(Db {
                store,
                url,
                cleanup: Cleanup::Sqlite(dir),
            })
        }
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("WARDEN_TEST_DATABASE_URL") else {
                assert!(
                    std::env::var("WARDEN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "WARDEN_REQUIRE_POSTGRES=1 but WARDEN_TEST_DATABASE_URL is unset ({name})"
                );
                // Written to the stderr handle directly: libtest captures `eprintln!`
                // of passing tests, and a skip must not pass silently.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (WARDEN_TEST_DATABASE_URL unset): postgres test {name}"
                );
                return None;
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = AnyConnection::connect(&admin_url).await.unwrap();
            admin
                .execute(format!("CREATE SCHEMA {schema}").as_str())
                .await
                .unwrap();
            admin.close().await.unwrap();
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
            let store = Store::open(&url).await.unwrap();
            Some(Db {
                store,
                url,
                cleanup: Cleanup::Postgres { admin_url, schema },
            })
        }
    }
}

/// Runs statements directly on the test database, bypassing the store (to tamper).
pub async fn raw_execute(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.unwrap();
}
