//! Fresh databases for tests that run on both backends: a SQLite file in a
//! temporary directory, or a throwaway PostgreSQL database
//! (`huifang_test_<random>`, dropped at the end even if the test fails),
//! and [`on_both_backends!`] to run one behaviour on each.
//!
//! PostgreSQL must listen on 127.0.0.1:5432 with trust auth
//! (`scripts/test.sh` starts it; `HUIFANG_TEST_PG_URL` overrides the admin
//! URL, default `postgres://postgres@127.0.0.1:5432/test`). Without a server
//! the PostgreSQL tests fail naming `scripts/test.sh`; they do not skip.
//!
//! Raw-SQL checks (triggers, CHECK constraints, what an operator with a SQL
//! shell could do) go around the store through a connection of their own
//! ([`TestDb::raw`], [`TestDb::count`], …).

use std::time::Duration;

use huifang::store::Store;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;
use uuid::Uuid;

const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh, migrated database, its URL and a store open on it.
pub struct TestDb {
    /// The backend.
    pub kind: Kind,
    /// Its URL (what `[database] url` would say).
    pub url: String,
    /// A store opened on it when it was made (migrated).
    pub store: Store,
    /// A temporary directory that lives as long as the database (SQLite's
    /// file is in it, under `data/trace/`; tests may put config files there).
    pub dir: TempDir,
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

/// The PostgreSQL URL tests create their databases through.
#[allow(dead_code)]
pub fn pg_admin_url() -> String {
    std::env::var("HUIFANG_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_string())
}

/// A fresh database of `kind`, migrated by opening [`TestDb::store`]. The
/// SQLite file goes in a directory that does not exist yet (`Store::open`
/// creates it).
pub async fn fresh(kind: Kind) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, pg) = match kind {
        Kind::Sqlite => (format!("sqlite://{}", dir.path().join("data/trace/huifang.db").display()), None),
        Kind::Postgres => {
            let admin_url = pg_admin_url();
            let mut admin = match tokio::time::timeout(
                Duration::from_secs(10),
                PgConnection::connect(&admin_url),
            )
            .await
            {
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
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).expect("admin URL ends in /DATABASE");
            (format!("{base}/{name}"), Some(PgDatabase { admin_url: admin_url.clone(), name }))
        }
    };
    let store = Store::open(&url).await.expect("open store");
    TestDb { kind, url, store, dir, _pg: pg }
}

/// A fresh SQLite database.
#[allow(dead_code)]
pub async fn sqlite() -> TestDb {
    fresh(Kind::Sqlite).await
}

/// A fresh PostgreSQL database.
#[allow(dead_code)]
pub async fn postgres() -> TestDb {
    fresh(Kind::Postgres).await
}

#[allow(dead_code)]
impl TestDb {
    /// A configuration file for the CLI on this database (written once,
    /// in the temporary directory; the shipped holiday calendar).
    pub fn config(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("huifang.toml");
        if !path.exists() {
            let holidays =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays/cn-exchanges.toml");
            let text = format!(
                "[sip]\nlisten = \"127.0.0.1:5070\"\n[database]\nurl = \"{}\"\n[calendar]\nholidays = \"{}\"\n",
                self.url,
                holidays.display()
            );
            std::fs::write(&path, text).unwrap();
        }
        path
    }

    /// Runs `huifang ARGS --config <this database's config>`.
    pub fn huifang(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_huifang"))
            .args(args)
            .arg("--config")
            .arg(self.config())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .expect("running huifang")
    }

    /// Like [`huifang`](Self::huifang), asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.huifang(args);
        assert!(
            out.status.success(),
            "huifang {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Another store on the database (a pool of its own, e.g. to close).
    pub async fn open_store(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

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

    /// A single value, read around the store.
    async fn scalar<T>(&self, sql: &str) -> T
    where
        T: Send + Unpin,
        for<'r> T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        for<'r> T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let sql = sql.to_string();
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

    /// A single integer, read around the store.
    pub async fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }

    /// A single text value, read around the store.
    pub async fn raw_text(&self, sql: impl AsRef<str>) -> String {
        self.scalar(sql.as_ref()).await
    }
}

/// Each named behaviour — an `async fn NAME(db: TestDb)` of the test file —
/// as two tests, `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::db::fresh($crate::common::db::Kind::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::db::fresh($crate::common::db::Kind::Postgres).await).await;
            }
        }
    )*};
}

/// A fixture of `tests/fixtures/import/`.
#[allow(dead_code)]
pub fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name);
    assert!(p.exists(), "no fixture {}", p.display());
    p.display().to_string()
}
