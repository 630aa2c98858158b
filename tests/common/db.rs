//! Fresh databases for tests that run on both backends: a SQLite file in a
//! temporary directory, or a throwaway PostgreSQL database
//! (`huifang_test_<random>`, dropped at the end even if the test fails).
//! PostgreSQL must listen on 127.0.0.1:5432 with trust auth
//! (`scripts/test.sh` starts it; `HUIFANG_TEST_PG_URL` overrides the admin
//! URL). Without a server the PostgreSQL tests fail, they do not skip.

use std::time::Duration;

use huifang::store::Store;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;
use uuid::Uuid;

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh, migrated database and its URL.
pub struct TestDb {
    /// The backend.
    pub kind: Kind,
    /// Its URL (what `[database] url` would say).
    pub url: String,
    /// A temporary directory that lives as long as the database (SQLite's
    /// file is in it; tests may put config files there).
    pub dir: TempDir,
    _pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await?;
                sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
    }
}

/// A fresh database of `kind` (migrated by opening a store once).
pub async fn fresh(kind: Kind) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, pg) = match kind {
        Kind::Sqlite => (format!("sqlite://{}", dir.path().join("huifang.db").display()), None),
        Kind::Postgres => {
            let admin_url = std::env::var("HUIFANG_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
            let mut admin = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url))
                .await
                .expect("PostgreSQL answers within 10 s (run scripts/test.sh)")
                .expect("PostgreSQL reachable at 127.0.0.1:5432 (run scripts/test.sh)");
            let name = format!("huifang_test_{}", Uuid::new_v4().simple());
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
            admin.close().await.ok();
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
            (format!("{base}/{name}"), Some(PgDatabase { admin_url: admin_url.clone(), name }))
        }
    };
    Store::open(&url).await.expect("open store").close().await;
    TestDb { kind, url, dir, _pg: pg }
}

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

    /// A store on the database.
    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// Runs one statement around the store, as an operator with a SQL shell.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.kind {
            Kind::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                let r = sqlx::query(AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
                conn.close().await?;
                Ok(r?.rows_affected())
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                let r = sqlx::query(AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
                conn.close().await?;
                Ok(r?.rows_affected())
            }
        }
    }

    /// A single integer, read around the store.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.kind {
            Kind::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap()
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

/// Each named async behaviour `fn NAME(db: TestDb)` as two tests,
/// `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::db::fresh($crate::common::db::Kind::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::db::fresh($crate::common::db::Kind::Postgres).await).await;
            }
        }
    )*};
}

/// A fixture of `tests/fixtures/import/`.
pub fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name);
    assert!(p.exists(), "no fixture {}", p.display());
    p.display().to_string()
}
