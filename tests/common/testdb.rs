//! The store on both backends: a fresh SQLite file in a temporary directory,
//! or a fresh PostgreSQL database (`huifang_test_<random>`, dropped at the
//! end even if the test fails), and [`on_both_test_dbs!`] to run one
//! behaviour on each.
//!
//! PostgreSQL must be listening on 127.0.0.1:5432 with trust auth
//! (`scripts/test.sh` starts it); the admin URL can be changed with
//! `HUIFANG_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Without a server the PostgreSQL tests fail, they do not skip.
//!
//! Raw-SQL checks (the triggers and CHECK constraints) go around the store
//! through a separate sqlx connection ([`TestDb::raw`]), as an operator with
//! `psql` would.

use std::time::Duration;

use huifang::store::Store;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;
use uuid::Uuid;

const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh database and a store opened on it.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub store: Store,
    _dir: Option<TempDir>,
    _pg: Option<PgDatabase>,
}

/// A throwaway PostgreSQL database, dropped (connections and all) on drop.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime: do the async work on a thread
        // of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await?;
                sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("HUIFANG_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_string())
}

/// A store on a new SQLite file, in a directory that does not exist yet
/// (`Store::open` creates it).
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data/trace/huifang.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.expect("open SQLite store");
    TestDb { kind: Kind::Sqlite, url, store, _dir: Some(dir), _pg: None }
}

/// A store on a new PostgreSQL database; fails the test naming
/// `scripts/test.sh` when PostgreSQL does not answer.
pub async fn postgres() -> TestDb {
    let admin_url = pg_admin_url();
    let mut admin =
        match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!(
                "PostgreSQL is not reachable at {admin_url} ({e}); run the tests with \
                 scripts/test.sh, which starts PostgreSQL"
            ),
            Err(_) => panic!(
                "PostgreSQL at {admin_url} did not answer within 10 s; run the tests with \
                 scripts/test.sh, which starts PostgreSQL"
            ),
        };
    let name = format!("huifang_test_{}", Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    admin.close().await.ok();
    let guard = PgDatabase { admin_url: admin_url.clone(), name: name.clone() };
    let base = admin_url.rsplit_once('/').map(|(base, _)| base).expect("admin URL ends in /DATABASE");
    let url = format!("{base}/{name}");
    let store = Store::open(&url).await.expect("open PostgreSQL store");
    TestDb { kind: Kind::Postgres, url, store, _dir: None, _pg: Some(guard) }
}

impl TestDb {
    /// Runs one statement on a connection of its own, around the store;
    /// the rows it touched.
    pub async fn raw(&self, sql: impl AsRef<str>) -> Result<u64, sqlx::Error> {
        let sql = sql.as_ref().to_string();
        match self.kind {
            Kind::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                let r = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                conn.close().await?;
                Ok(r?.rows_affected())
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                let r = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                conn.close().await?;
                Ok(r?.rows_affected())
            }
        }
    }

    /// Runs statements in order on one connection of their own; stops at
    /// the first error.
    pub async fn raw_all(&self, sql: &[&str]) -> Result<(), sqlx::Error> {
        match self.kind {
            Kind::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                for s in sql {
                    sqlx::query(AssertSqlSafe(s.to_string())).execute(&mut conn).await?;
                }
                conn.close().await
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                for s in sql {
                    sqlx::query(AssertSqlSafe(s.to_string())).execute(&mut conn).await?;
                }
                conn.close().await
            }
        }
    }

    /// A single text value, read around the store.
    pub async fn raw_text(&self, sql: impl AsRef<str>) -> String {
        let sql = sql.as_ref().to_string();
        match self.kind {
            Kind::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut conn).await.unwrap()
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

/// Each named behaviour — an `async fn NAME(db: TestDb)` of the test file —
/// as two tests, `NAME::sqlite` and `NAME::postgres`.
#[allow(unused_macros)]
macro_rules! on_both_test_dbs {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::testdb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::testdb::postgres().await).await;
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both_test_dbs;
