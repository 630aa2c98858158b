//! Callback management in the database: the imported facts (`clients`,
//! `staff`, `events`), the planned work (`task_batches`, `tasks`) and what
//! people write (`callback_records`, `follow_ups`). Schema and its rules:
//! `migrations/*/20261128000000_callbacks.sql`.
//!
//! ## When callers write what
//! - **Import** ([`Store::begin_import`], then [`Importer::write`] per
//!   batch and [`Importer::finish`] or [`Importer::abort`]; at once:
//!   [`Store::import`] of [`Client`]s, [`Staff`] or [`Event`]s): one
//!   transaction per file,
//!   rows upserted by natural key; a row whose values did not change is not
//!   touched, so re-importing a file changes nothing. `dry_run` rolls the
//!   transaction back after counting.
//! - **Planning** ([`Store::save_plan`]): one transaction; each batch is
//!   upserted by (kind, period) with its seed written once, each task
//!   inserted only when its idempotency key is new. A batch whose stored
//!   seed differs from the plan's (two planners at once) refuses the whole
//!   plan: plan again.
//! - **Records** ([`Store::submit_record`]): one transaction closes the
//!   task (`open` → `done`), inserts the record and, when it found
//!   problems, its follow-up. [`Store::review_record`] moves it to
//!   `reviewed`, never by its author.
//!
//! ## For the dialer
//! Open tasks are `state = 'open'`, served in order by the `tasks_queue`
//! index (due date, then priority; overdue ones first since their due date
//! is earliest). The columns `attempts`, `next_attempt_at`, `lease_owner`,
//! `lease_until` and `assigned_agent` are the dialer's: claim with
//! `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL and a lease.
//!
//! Both backends run the same statements; values are bound through [`V`],
//! which knows each backend's column types (ids as text on SQLite, uuid on
//! PostgreSQL; times as RFC 3339 text or timestamptz; JSON as text or jsonb).
//! Bulk writes (imported rows, planned tasks) are the exception, through
//! `insert_rows`: multi-row `VALUES` with `?` on SQLite, `UNNEST` of one
//! array per column on PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::error::query;
use super::{Backend, Store, StoreError, ms};
use crate::audit::time_text;
use crate::domain::facts::{Client, Cny, Event, EventKind, Role, Staff};
use crate::domain::kinds::TaskKind;
use crate::domain::planner::{BatchKey, Plan};
use crate::domain::records::{Form, Outcome};
use crate::domain::sample::{Seed, parse_seed, seed_hex};

/// A bound value, converted per backend.
#[derive(Debug, Clone)]
pub enum V {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Flag(bool),
    Date(Option<NaiveDate>),
    Id(Uuid),
    OptId(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Json(Value),
}

pub(super) fn t(s: &str) -> V {
    V::Text(Some(s.to_string()))
}
pub(super) fn ot(s: Option<&str>) -> V {
    V::Text(s.map(str::to_string))
}

macro_rules! bound_sqlite {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query(AssertSqlSafe($sql.to_string()));
        for v in $args {
            q = match v {
                V::Text(s) => q.bind(s),
                V::Int(i) => q.bind(i),
                V::Real(f) => q.bind(f),
                V::Flag(b) => q.bind(b),
                V::Date(d) => q.bind(d),
                V::Id(u) => q.bind(u.hyphenated().to_string()),
                V::OptId(u) => q.bind(u.map(|u| u.hyphenated().to_string())),
                V::Time(t) => q.bind(t.map(time_text)),
                V::Json(j) => q.bind(j.to_string()),
            };
        }
        q
    }};
}

macro_rules! bound_pg {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query(AssertSqlSafe($sql.to_string()));
        for v in $args {
            q = match v {
                V::Text(s) => q.bind(s),
                V::Int(i) => q.bind(i),
                V::Real(f) => q.bind(f),
                V::Flag(b) => q.bind(b),
                V::Date(d) => q.bind(d),
                V::Id(u) => q.bind(u),
                V::OptId(u) => q.bind(u),
                V::Time(t) => q.bind(t),
                V::Json(j) => q.bind(j),
            };
        }
        q
    }};
}

/// A row of either backend.
pub(super) enum DbRow {
    S(SqliteRow),
    P(PgRow),
}

pub(super) fn bad(column: &str, what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("column {column}: {what}").into())
}

impl DbRow {
    pub(super) fn text(&self, c: &str) -> Result<String, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn int(&self, c: &str) -> Result<i64, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn opt_int(&self, c: &str) -> Result<Option<i64>, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn opt_real(&self, c: &str) -> Result<Option<f64>, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn flag(&self, c: &str) -> Result<bool, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn date(&self, c: &str) -> Result<NaiveDate, sqlx::Error> {
        self.opt_date(c)?.ok_or_else(|| bad(c, "missing"))
    }
    pub(super) fn opt_date(&self, c: &str) -> Result<Option<NaiveDate>, sqlx::Error> {
        match self {
            DbRow::S(r) => r.try_get(c),
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn id(&self, c: &str) -> Result<Uuid, sqlx::Error> {
        match self {
            DbRow::S(r) => {
                let s: String = r.try_get(c)?;
                Uuid::parse_str(&s).map_err(|_| bad(c, "not a UUID"))
            }
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn opt_id(&self, c: &str) -> Result<Option<Uuid>, sqlx::Error> {
        match self {
            DbRow::S(r) => {
                let s: Option<String> = r.try_get(c)?;
                s.map(|s| Uuid::parse_str(&s).map_err(|_| bad(c, "not a UUID"))).transpose()
            }
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn time(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.opt_time(c)?.ok_or_else(|| bad(c, "missing"))
    }
    pub(super) fn opt_time(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        match self {
            DbRow::S(r) => {
                let s: Option<String> = r.try_get(c)?;
                s.map(|s| {
                    DateTime::parse_from_rfc3339(&s)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| bad(c, "not a time"))
                })
                .transpose()
            }
            DbRow::P(r) => r.try_get(c),
        }
    }
    pub(super) fn json(&self, c: &str) -> Result<Value, sqlx::Error> {
        match self {
            DbRow::S(r) => {
                let s: String = r.try_get(c)?;
                serde_json::from_str(&s).map_err(|_| bad(c, "not JSON"))
            }
            DbRow::P(r) => r.try_get(c),
        }
    }
}

/// A write transaction on either backend (SQLite: `BEGIN IMMEDIATE` on the
/// one writer connection).
pub(super) enum Tx {
    S(sqlx::Transaction<'static, sqlx::Sqlite>),
    P(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    /// Whether this is a PostgreSQL transaction (row locks with
    /// `FOR UPDATE … SKIP LOCKED`; SQLite's `BEGIN IMMEDIATE` already holds
    /// the one write lock).
    pub(super) fn is_pg(&self) -> bool {
        matches!(self, Tx::P(_))
    }
    pub(super) async fn exec(&mut self, sql: &str, args: Vec<V>) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Tx::S(tx) => bound_sqlite!(sql, args).execute(&mut **tx).await?.rows_affected(),
            Tx::P(tx) => bound_pg!(sql, args).execute(&mut **tx).await?.rows_affected(),
        })
    }
    pub(super) async fn all(&mut self, sql: &str, args: Vec<V>) -> Result<Vec<DbRow>, sqlx::Error> {
        Ok(match self {
            Tx::S(tx) => {
                bound_sqlite!(sql, args).fetch_all(&mut **tx).await?.into_iter().map(DbRow::S).collect()
            }
            Tx::P(tx) => bound_pg!(sql, args).fetch_all(&mut **tx).await?.into_iter().map(DbRow::P).collect(),
        })
    }
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::S(tx) => tx.commit().await,
            Tx::P(tx) => tx.commit().await,
        }
    }
    pub(super) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::S(tx) => tx.rollback().await,
            Tx::P(tx) => tx.rollback().await,
        }
    }
}

impl Store {
    pub(super) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match &self.backend {
            Backend::Sqlite(b) => Tx::S(b.writer.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(b) => Tx::P(b.pool.begin().await?),
        })
    }

    pub(super) async fn read(&self, sql: &str, args: Vec<V>) -> Result<Vec<DbRow>, sqlx::Error> {
        Ok(match &self.backend {
            Backend::Sqlite(b) => {
                bound_sqlite!(sql, args).fetch_all(&b.reader).await?.into_iter().map(DbRow::S).collect()
            }
            Backend::Postgres(b) => {
                bound_pg!(sql, args).fetch_all(&b.pool).await?.into_iter().map(DbRow::P).collect()
            }
        })
    }

    /// Runs a query and hands each row to `each` as it arrives: memory
    /// holds one row at a time, not the whole result (one statement, so
    /// one snapshot).
    async fn each_row(
        &self,
        sql: &str,
        mut each: impl FnMut(DbRow) -> Result<(), sqlx::Error>,
    ) -> Result<(), sqlx::Error> {
        match &self.backend {
            Backend::Sqlite(b) => {
                let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&b.reader);
                while let Some(r) = rows.try_next().await? {
                    each(DbRow::S(r))?;
                }
            }
            Backend::Postgres(b) => {
                let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&b.pool);
                while let Some(r) = rows.try_next().await? {
                    each(DbRow::P(r))?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn write(&self, sql: &str, args: Vec<V>) -> Result<u64, sqlx::Error> {
        Ok(match &self.backend {
            Backend::Sqlite(b) => bound_sqlite!(sql, args).execute(&b.writer).await?.rows_affected(),
            Backend::Postgres(b) => bound_pg!(sql, args).execute(&b.pool).await?.rows_affected(),
        })
    }
}

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `cols` values on
/// PostgreSQL; `(?, ?, …), (?, …)` on SQLite (`sqlite`), whose values are
/// then bound in order. SQLite must not get `$n` here: sqlx looks up the
/// name of every numbered parameter with `sqlite3_bind_parameter_name`,
/// which walks SQLite's list of names, so binding n numbered values costs
/// n² — most of an import's time at a few thousand values per statement.
fn placeholders(sqlite: bool, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            if sqlite {
                s.push('?');
            } else {
                s.push_str(&format!("${}", r * cols + c + 1));
            }
        }
        s.push(')');
    }
    s
}

// ---------------------------------------------------------------- import

/// What an import did (or, with `dry_run`, would have done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImportCounts {
    /// Rows in the file.
    pub rows: u64,
    /// New rows.
    pub inserted: u64,
    /// Rows whose values changed.
    pub updated: u64,
    /// Rows already stored exactly so.
    pub unchanged: u64,
}

/// An imported table: its natural key and columns (with their PostgreSQL
/// types, for [`Importer`]'s typed arrays), as the `*_values` functions
/// give them.
pub struct Table {
    pub(super) name: &'static str,
    pub(super) key: &'static str,
    pub(super) cols: &'static [&'static str],
    pg_types: &'static [&'static str],
}

pub(super) const CLIENTS: Table = Table {
    name: "clients",
    key: "client_id",
    cols: &[
        "client_id",
        "name",
        "phone",
        "branch",
        "opened_on",
        "introducer_id",
        "broker_introduced",
        "assets_fen",
        "yearly_commission_fen",
        "monthly_turnover_fen",
        "last_trade_on",
        "id_number",
        "risk_level",
    ],
    pg_types: &[
        "text", "text", "text", "text", "date", "text", "boolean", "bigint", "bigint", "bigint", "date",
        "text", "text",
    ],
};
const STAFF: Table = Table {
    name: "staff",
    key: "staff_id",
    cols: &["staff_id", "name", "role", "branch", "manager_id", "sip_uri", "active", "left_on"],
    pg_types: &["text", "text", "text", "text", "text", "text", "boolean", "date"],
};
const EVENTS: Table = Table {
    name: "events",
    key: "event_id",
    cols: &["event_id", "client_id", "kind", "occurred_on", "amount_fen", "staff_id", "note"],
    pg_types: &["text", "text", "text", "date", "bigint", "text", "text"],
};

fn client_values(c: &Client) -> Vec<V> {
    vec![
        t(&c.client_id),
        t(&c.name),
        t(&c.phone),
        t(&c.branch),
        V::Date(Some(c.opened_on)),
        ot(c.introducer_id.as_deref()),
        V::Flag(c.broker_introduced),
        V::Int(c.assets.map(|a| a.0)),
        V::Int(c.yearly_commission.map(|a| a.0)),
        V::Int(c.monthly_turnover.map(|a| a.0)),
        V::Date(c.last_trade_on),
        ot(c.id_number.as_deref()),
        ot(c.risk_level.as_deref()),
    ]
}

fn staff_values(s: &Staff) -> Vec<V> {
    vec![
        t(&s.staff_id),
        t(&s.name),
        t(s.role.as_str()),
        t(&s.branch),
        ot(s.manager_id.as_deref()),
        ot(s.sip_uri.as_deref()),
        V::Flag(s.active),
        V::Date(s.left_on),
    ]
}

fn event_values(e: &Event) -> Vec<V> {
    vec![
        t(&e.event_id),
        ot(e.client_id.as_deref()),
        t(e.kind.as_str()),
        V::Date(Some(e.occurred_on)),
        V::Int(e.amount.map(|a| a.0)),
        ot(e.staff_id.as_deref()),
        ot(e.note.as_deref()),
    ]
}

mod sealed {
    /// How a fact is stored; implemented in this module only.
    pub trait Fact {
        /// Its table.
        fn table() -> &'static super::Table;
        /// Its values, in the order of the table's columns.
        fn values(&self) -> Vec<super::V>;
    }
}

/// A fact that `huifang import` upserts by natural key: [`Client`],
/// [`Staff`] or [`Event`].
pub trait Importable: sealed::Fact {}

/// `Fact` and `Importable` for a fact type: its table and its values.
macro_rules! importable {
    ($($ty:ty => $table:ident, $values:ident;)*) => {$(
        impl sealed::Fact for $ty {
            fn table() -> &'static Table {
                &$table
            }
            fn values(&self) -> Vec<V> {
                $values(self)
            }
        }
        impl Importable for $ty {}
    )*};
}

importable! {
    Client => CLIENTS, client_values;
    Staff => STAFF, staff_values;
    Event => EVENTS, event_values;
}

/// Most values bound to one SQLite statement (`SQLITE_MAX_VARIABLE_NUMBER`
/// since 3.32).
const SQLITE_MAX_VARIABLES: usize = 32_766;
/// Rows per multi-row INSERT on SQLite (fewer if the values would pass
/// [`SQLITE_MAX_VARIABLES`]).
const SQLITE_ROWS: usize = 500;
/// SQLite's page cache while an import runs, in KiB (the connection's own
/// setting, 2 MiB by default, comes back afterwards). A million clients
/// and their three indexes outgrow the default many times over: every
/// insert then evicts pages that the next one reads back (1M clients took
/// ≈ 43 s instead of ≈ 24 s, `docs/PERFORMANCE.md`). Durability is
/// untouched: this is the in-memory cache, not journaling or syncing.
const SQLITE_IMPORT_CACHE_KIB: i64 = 64 * 1024;
/// Rows per `UNNEST` INSERT on PostgreSQL (one array per column, so the
/// 65,535 parameters are no limit; this bounds the statement's size).
const PG_ROWS: usize = 10_000;

/// One column of rows, for PostgreSQL's `UNNEST`.
enum Array {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Flag(Vec<bool>),
    Date(Vec<Option<NaiveDate>>),
    Id(Vec<Uuid>),
    /// JSON as text, cast to `jsonb[]` in the statement.
    Json(Vec<String>),
}

impl Array {
    fn of(pg_type: &str, n: usize) -> Array {
        match pg_type {
            "bigint" => Array::Int(Vec::with_capacity(n)),
            "boolean" => Array::Flag(Vec::with_capacity(n)),
            "date" => Array::Date(Vec::with_capacity(n)),
            "uuid" => Array::Id(Vec::with_capacity(n)),
            "jsonb" => Array::Json(Vec::with_capacity(n)),
            _ => Array::Text(Vec::with_capacity(n)),
        }
    }

    fn push(&mut self, v: V) -> Result<(), sqlx::Error> {
        match (self, v) {
            (Array::Text(a), V::Text(s)) => a.push(s),
            (Array::Int(a), V::Int(i)) => a.push(i),
            (Array::Flag(a), V::Flag(b)) => a.push(b),
            (Array::Date(a), V::Date(d)) => a.push(d),
            (Array::Id(a), V::Id(u)) => a.push(u),
            (Array::Json(a), V::Json(j)) => a.push(j.to_string()),
            (Array::Json(a), V::Text(Some(j))) => a.push(j),
            // a bug in the column lists; the value itself may be personal data
            _ => return Err(sqlx::Error::Encode("a value in a column of another type".into())),
        }
        Ok(())
    }
}

/// Rows per bulk statement on this transaction's backend, for rows of
/// `values` bound values each.
fn rows_per_statement(tx: &Tx, values: usize) -> usize {
    match tx {
        Tx::S(_) => SQLITE_ROWS.min(SQLITE_MAX_VARIABLES / values.max(1)),
        Tx::P(_) => PG_ROWS,
    }
}

/// Inserts `rows` in one statement: `{head} <rows> {tail}`, where `head`
/// is `INSERT INTO t (columns…)` and each row is its values (in the order
/// of `pg_types`) followed by `stamps` times `at`. At most
/// [`rows_per_statement`] rows.
///
/// SQLite gets `VALUES (?, …), …`; PostgreSQL `SELECT u.*, $k, … FROM
/// UNNEST($1::type[], …) AS u`, one array per column — the same statement,
/// prepared once, for any number of rows.
async fn insert_rows(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    pg_types: &[&str],
    stamps: usize,
    at: DateTime<Utc>,
    rows: Vec<Vec<V>>,
) -> Result<u64, sqlx::Error> {
    let n = pg_types.len();
    match tx {
        Tx::S(_) => {
            let sql = format!("{head} VALUES {} {tail}", placeholders(true, rows.len(), n + stamps));
            let mut args = Vec::with_capacity(rows.len() * (n + stamps));
            for r in rows {
                args.extend(r);
                args.extend(std::iter::repeat_n(V::Time(Some(at)), stamps));
            }
            tx.exec(&sql, args).await
        }
        Tx::P(tx) => {
            let arrays: Vec<String> =
                pg_types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}[]", i + 1)).collect();
            let stamp = format!(", ${}::timestamptz", n + 1).repeat(stamps);
            let sql = format!("{head} SELECT u.*{stamp} FROM UNNEST({}) AS u {tail}", arrays.join(", "));
            let mut cols: Vec<Array> = pg_types.iter().map(|ty| Array::of(ty, rows.len())).collect();
            for r in rows {
                for (a, v) in cols.iter_mut().zip(r) {
                    a.push(v)?;
                }
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for a in cols {
                q = match a {
                    Array::Text(v) => q.bind(v),
                    Array::Int(v) => q.bind(v),
                    Array::Flag(v) => q.bind(v),
                    Array::Date(v) => q.bind(v),
                    Array::Id(v) => q.bind(v),
                    Array::Json(v) => q.bind(v),
                };
            }
            if stamps > 0 {
                q = q.bind(at);
            }
            Ok(q.execute(&mut **tx).await?.rows_affected())
        }
    }
}

/// An import in progress: one transaction, rows upserted by natural key
/// (see the module docs). [`write`](Importer::write) the rows in batches
/// as they are read, then [`finish`](Importer::finish) — or
/// [`abort`](Importer::abort) when the file turns out bad: nothing of it
/// is kept. Dropped without either, it rolls back too.
///
/// The rows go to the database through `insert_rows`: multi-row
/// `VALUES` on SQLite, `UNNEST` of one array per column on PostgreSQL.
pub struct Importer<T> {
    tx: Tx,
    at: DateTime<Utc>,
    before: i64,
    rows: u64,
    affected: u64,
    /// To reset SQLite's page cache afterwards (on the one writer connection).
    store: Store,
    restore_cache: Option<i64>,
    fact: std::marker::PhantomData<fn(&T)>,
}

/// `INSERT …` and `ON CONFLICT (key) DO UPDATE … WHERE something changed`
/// of `table`, for [`insert_rows`].
fn upsert_sql(table: &Table) -> (String, String) {
    let set: Vec<String> =
        table.cols.iter().filter(|c| **c != table.key).map(|c| format!("{c} = excluded.{c}")).collect();
    let changed: Vec<String> = table
        .cols
        .iter()
        .filter(|c| **c != table.key)
        .map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", table.name))
        .collect();
    let head = format!("INSERT INTO {} ({}, imported_at, updated_at)", table.name, table.cols.join(", "));
    let tail = format!(
        "ON CONFLICT ({}) DO UPDATE SET {}, updated_at = excluded.updated_at WHERE {}",
        table.key,
        set.join(", "),
        changed.join(" OR ")
    );
    (head, tail)
}

impl Store {
    /// Starts importing `T`s (see [`Importer`]); `at` stamps the rows
    /// written (`imported_at` of new rows, `updated_at` of changed ones).
    pub async fn begin_import<T: Importable>(&self, at: DateTime<Utc>) -> Result<Importer<T>, StoreError> {
        let op = "import";
        let mut tx = self.begin().await.map_err(query(op))?;
        let mut restore_cache = None;
        if let Tx::S(_) = tx {
            let old = tx.all("PRAGMA cache_size", vec![]).await.map_err(query(op))?;
            restore_cache = Some(old[0].int("cache_size").map_err(query(op))?);
            tx.exec(&format!("PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}"), vec![])
                .await
                .map_err(query(op))?;
        }
        let count_sql = format!("SELECT count(*) AS n FROM {}", T::table().name);
        let before = tx.all(&count_sql, vec![]).await.map_err(query(op))?[0].int("n").map_err(query(op))?;
        Ok(Importer {
            tx,
            at: ms(at),
            before,
            rows: 0,
            affected: 0,
            store: self.clone(),
            restore_cache,
            fact: std::marker::PhantomData,
        })
    }

    /// Upserts clients (by `client_id`), staff (`staff_id`) or events
    /// (`event_id`) at once, all or nothing (see the module docs).
    /// `progress` is told how many rows are done after each chunk.
    pub async fn import<T: Importable>(
        &self,
        rows: &[T],
        dry_run: bool,
        at: DateTime<Utc>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ImportCounts, StoreError> {
        let mut imp = self.begin_import::<T>(at).await?;
        let mut done = 0u64;
        for chunk in rows.chunks(SQLITE_ROWS) {
            if let Err(e) = imp.write(chunk).await {
                imp.abort().await;
                return Err(e);
            }
            done += chunk.len() as u64;
            progress(done);
        }
        imp.finish(dry_run).await
    }
}

impl<T: Importable> Importer<T> {
    /// Upserts `rows` (any number) inside the import's transaction. After
    /// an error, [`abort`](Self::abort).
    pub async fn write(&mut self, rows: &[T]) -> Result<(), StoreError> {
        let table = T::table();
        let (head, tail) = upsert_sql(table);
        for chunk in rows.chunks(rows_per_statement(&self.tx, table.cols.len() + 2)) {
            let values = chunk.iter().map(|r| r.values()).collect();
            self.affected += insert_rows(&mut self.tx, &head, &tail, table.pg_types, 2, self.at, values)
                .await
                .map_err(query("import"))?;
            self.rows += chunk.len() as u64;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits (or, with `dry_run`, rolls back after counting) and says what
    /// the import did.
    pub async fn finish(mut self, dry_run: bool) -> Result<ImportCounts, StoreError> {
        let op = "import";
        let count_sql = format!("SELECT count(*) AS n FROM {}", T::table().name);
        let after =
            self.tx.all(&count_sql, vec![]).await.map_err(query(op))?[0].int("n").map_err(query(op))?;
        if dry_run {
            self.tx.rollback().await.map_err(query(op))?;
        } else {
            self.tx.commit().await.map_err(query(op))?;
        }
        reset_cache(&self.store, self.restore_cache).await;
        let total = self.rows;
        let inserted = (after - self.before).max(0) as u64;
        let updated = self.affected.saturating_sub(inserted);
        Ok(ImportCounts { rows: total, inserted, updated, unchanged: total - inserted - updated })
    }

    /// Rolls back: nothing of the import is kept.
    pub async fn abort(self) {
        let _ = self.tx.rollback().await;
        reset_cache(&self.store, self.restore_cache).await;
    }
}

/// Gives SQLite's writer connection its page cache size back.
async fn reset_cache(store: &Store, size: Option<i64>) {
    if let Some(size) = size {
        // only a cache limit: should this fail, the import stands, and the
        // connection keeps a larger cache
        let _ = store.write(&format!("PRAGMA cache_size = {size}"), vec![]).await;
    }
}

impl Store {
    /// Every client, by id.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {} FROM clients ORDER BY client_id", CLIENTS.cols.join(", "));
        let mut out = Vec::new();
        self.each_row(&sql, |r| {
            out.push(client_row(&r)?);
            Ok(())
        })
        .await
        .map_err(query("clients"))?;
        Ok(out)
    }

    /// Every client, by id, as the rules need them: `name` and `phone` are
    /// left empty. The rules never read them ([`crate::domain::planner`]),
    /// and without them a million clients take a third less memory and
    /// planning holds no personal data.
    pub async fn clients_for_planning(&self) -> Result<Vec<Client>, StoreError> {
        let cols: Vec<&str> =
            CLIENTS.cols.iter().copied().filter(|c| !matches!(*c, "name" | "phone" | "id_number")).collect();
        let sql = format!("SELECT {} FROM clients ORDER BY client_id", cols.join(", "));
        let mut out = Vec::new();
        self.each_row(&sql, |r| {
            out.push(client_facts(&r, String::new(), String::new(), None)?);
            Ok(())
        })
        .await
        .map_err(query("clients"))?;
        Ok(out)
    }

    /// One client, or [`StoreError::Missing`].
    pub async fn client(&self, id: &str) -> Result<Client, StoreError> {
        let sql = format!("SELECT {} FROM clients WHERE client_id = $1", CLIENTS.cols.join(", "));
        let rows = self.read(&sql, vec![t(id)]).await.map_err(query("client"))?;
        match rows.first() {
            Some(r) => client_row(r).map_err(query("client")),
            None => Err(StoreError::Missing { what: "client", key: id.to_string() }),
        }
    }

    /// Every staff member, by id.
    pub async fn staff(&self) -> Result<Vec<Staff>, StoreError> {
        let sql = format!("SELECT {} FROM staff ORDER BY staff_id", STAFF.cols.join(", "));
        let mut out = Vec::new();
        self.each_row(&sql, |r| {
            out.push(staff_row(&r)?);
            Ok(())
        })
        .await
        .map_err(query("staff"))?;
        Ok(out)
    }

    /// The staff rows of `a` and `b` and of every manager above them —
    /// their reporting lines, a cycle walked once: all the dial-time
    /// avoidance check (E7) needs to know of the staff, instead of the
    /// whole list for every call (which cost more than the rest of a
    /// call's set-up at a thousand staff).
    pub async fn staff_lines(&self, a: &str, b: Option<&str>) -> Result<Vec<Staff>, StoreError> {
        let sql = format!(
            "WITH RECURSIVE line(id) AS (\
                SELECT staff_id FROM staff WHERE staff_id = $1 OR staff_id = $2 \
                UNION SELECT s.manager_id FROM staff s JOIN line l ON s.staff_id = l.id \
                WHERE s.manager_id IS NOT NULL) \
             SELECT {} FROM staff WHERE staff_id IN (SELECT id FROM line) ORDER BY staff_id",
            STAFF.cols.join(", ")
        );
        let rows = self.read(&sql, vec![t(a), t(b.unwrap_or(a))]).await.map_err(query("staff_lines"))?;
        rows.iter().map(staff_row).collect::<Result<_, _>>().map_err(query("staff_lines"))
    }

    /// Every event, by day and id.
    pub async fn events(&self) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {} FROM events ORDER BY occurred_on, event_id", EVENTS.cols.join(", "));
        let mut out = Vec::new();
        self.each_row(&sql, |r| {
            out.push(event_row(&r)?);
            Ok(())
        })
        .await
        .map_err(query("events"))?;
        Ok(out)
    }
}

fn cny(v: Option<i64>) -> Option<Cny> {
    v.map(Cny)
}

pub(super) fn client_row(r: &DbRow) -> Result<Client, sqlx::Error> {
    client_facts(r, r.text("name")?, r.text("phone")?, r.opt_text("id_number")?)
}

/// A client from its row, with the name and phone given.
fn client_facts(
    r: &DbRow,
    name: String,
    phone: String,
    id_number: Option<String>,
) -> Result<Client, sqlx::Error> {
    Ok(Client {
        client_id: r.text("client_id")?,
        name,
        phone,
        branch: r.text("branch")?,
        opened_on: r.date("opened_on")?,
        introducer_id: r.opt_text("introducer_id")?,
        broker_introduced: r.flag("broker_introduced")?,
        assets: cny(r.opt_int("assets_fen")?),
        yearly_commission: cny(r.opt_int("yearly_commission_fen")?),
        monthly_turnover: cny(r.opt_int("monthly_turnover_fen")?),
        last_trade_on: r.opt_date("last_trade_on")?,
        id_number,
        risk_level: r.opt_text("risk_level")?,
    })
}

fn staff_row(r: &DbRow) -> Result<Staff, sqlx::Error> {
    let role = r.text("role")?;
    Ok(Staff {
        staff_id: r.text("staff_id")?,
        name: r.text("name")?,
        role: Role::parse(&role).ok_or_else(|| bad("role", "unknown role"))?,
        branch: r.text("branch")?,
        manager_id: r.opt_text("manager_id")?,
        sip_uri: r.opt_text("sip_uri")?,
        active: r.flag("active")?,
        left_on: r.opt_date("left_on")?,
    })
}

fn event_row(r: &DbRow) -> Result<Event, sqlx::Error> {
    let kind = r.text("kind")?;
    Ok(Event {
        event_id: r.text("event_id")?,
        client_id: r.opt_text("client_id")?,
        kind: EventKind::parse(&kind).ok_or_else(|| bad("kind", "unknown event kind"))?,
        occurred_on: r.date("occurred_on")?,
        amount: cny(r.opt_int("amount_fen")?),
        staff_id: r.opt_text("staff_id")?,
        note: r.opt_text("note")?,
    })
}

// ---------------------------------------------------------------- plan

/// A stored batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchRow {
    /// Its id.
    pub id: Uuid,
    /// The rule.
    pub kind: String,
    /// The period.
    pub period: String,
    /// The sampling seed, 64 hex digits (sampled rules).
    pub seed: Option<String>,
    /// The sampling ratio (sampled rules).
    pub ratio: Option<f64>,
    /// Clients the rule looked at, as of the last plan.
    pub population: u64,
    /// Tasks stored in the batch.
    pub selected: u64,
    /// First planned.
    pub created_at: DateTime<Utc>,
    /// Last planned.
    pub planned_at: DateTime<Utc>,
}

/// Per kind: tasks the plan asked for, and how many of them were new.
pub type PlanCounts = BTreeMap<TaskKind, (u64, u64)>;

const BATCH_COLUMNS: &str = "id, kind, period, seed, ratio, population, selected, created_at, planned_at";

fn batch_row(r: &DbRow) -> Result<BatchRow, sqlx::Error> {
    Ok(BatchRow {
        id: r.id("id")?,
        kind: r.text("kind")?,
        period: r.text("period")?,
        seed: r.opt_text("seed")?,
        ratio: r.opt_real("ratio")?,
        population: r.int("population")?.max(0) as u64,
        selected: r.int("selected")?.max(0) as u64,
        created_at: r.time("created_at")?,
        planned_at: r.time("planned_at")?,
    })
}

impl Store {
    /// The seeds of every sampled batch, to plan with.
    pub async fn batch_seeds(&self) -> Result<BTreeMap<BatchKey, Seed>, StoreError> {
        let mut out = BTreeMap::new();
        for b in self.batches().await? {
            if let (Some(kind), Some(seed)) =
                (TaskKind::from_name(&b.kind), b.seed.as_deref().and_then(parse_seed))
            {
                out.insert(BatchKey { kind, period: b.period }, seed);
            }
        }
        Ok(out)
    }

    /// Every batch, oldest first.
    pub async fn batches(&self) -> Result<Vec<BatchRow>, StoreError> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM task_batches ORDER BY created_at, kind, period");
        let rows = self.read(&sql, vec![]).await.map_err(query("batches"))?;
        rows.iter().map(batch_row).collect::<Result<_, _>>().map_err(query("batches"))
    }

    /// Stores a plan in one transaction (see the module docs) and returns,
    /// per kind, the tasks planned and those that were new.
    pub async fn save_plan(&self, plan: &Plan, at: DateTime<Utc>) -> Result<PlanCounts, StoreError> {
        let op = "save_plan";
        let at = ms(at);
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = save_plan_in(&mut tx, plan, at).await;
        match r {
            Ok(counts) => {
                tx.commit().await.map_err(query(op))?;
                Ok(counts)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

async fn save_plan_in(tx: &mut Tx, plan: &Plan, at: DateTime<Utc>) -> Result<PlanCounts, StoreError> {
    let op = "save_plan";
    let mut ids: BTreeMap<&BatchKey, Uuid> = BTreeMap::new();
    for b in &plan.batches {
        let sql = format!(
            "INSERT INTO task_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) \
             ON CONFLICT (kind, period) DO UPDATE SET \
             population = CASE WHEN excluded.population > task_batches.population \
                          THEN excluded.population ELSE task_batches.population END, \
             planned_at = excluded.planned_at \
             RETURNING id, seed"
        );
        let rows = tx
            .all(
                &sql,
                vec![
                    V::Id(Uuid::now_v7()),
                    t(b.key.kind.as_str()),
                    t(&b.key.period),
                    V::Text(b.seed.as_ref().map(seed_hex)),
                    V::Real(b.ratio),
                    V::Int(Some(b.population as i64)),
                    V::Time(Some(at)),
                ],
            )
            .await
            .map_err(query(op))?;
        let row = rows.first().ok_or_else(|| StoreError::Refused("batch not stored".into()))?;
        let stored_seed = row.opt_text("seed").map_err(query(op))?;
        if stored_seed != b.seed.as_ref().map(seed_hex) {
            return Err(StoreError::Refused(format!(
                "batch {} was planned meanwhile with another seed: run the plan again",
                b.key
            )));
        }
        ids.insert(&b.key, row.id("id").map_err(query(op))?);
    }
    let mut counts: PlanCounts = BTreeMap::new();
    let head = "INSERT INTO tasks (id, idempotency_key, batch_id, kind, client_id, branch, due_on, priority, \
                retention_kind, compliance, reason, created_at)";
    let tail = "ON CONFLICT (idempotency_key) DO NOTHING";
    let types =
        ["uuid", "text", "uuid", "text", "text", "text", "date", "bigint", "text", "boolean", "jsonb"];
    for chunk in plan.tasks.chunks(rows_per_statement(tx, types.len() + 1)) {
        // one kind per statement, to count the new tasks per kind
        let mut by_kind: BTreeMap<TaskKind, Vec<Vec<V>>> = BTreeMap::new();
        for task in chunk {
            let batch =
                ids.get(&task.batch).ok_or_else(|| StoreError::Refused("task without batch".into()))?;
            by_kind.entry(task.kind).or_default().push(vec![
                V::Id(Uuid::now_v7()),
                t(&task.key),
                V::Id(*batch),
                t(task.kind.as_str()),
                t(&task.client_id),
                t(&task.branch),
                V::Date(Some(task.due_on)),
                V::Int(Some(i64::from(task.priority))),
                t(&task.retention_kind),
                V::Flag(task.compliance),
                t(task.reason.as_str()),
            ]);
        }
        for (kind, rows) in by_kind {
            let planned = rows.len() as u64;
            let inserted = insert_rows(tx, head, tail, &types, 1, at, rows).await.map_err(query(op))?;
            let e = counts.entry(kind).or_default();
            e.0 += planned;
            e.1 += inserted;
        }
    }
    for id in ids.values() {
        tx.exec(
            "UPDATE task_batches SET selected = (SELECT count(*) FROM tasks WHERE batch_id = $1) WHERE id = $1",
            vec![V::Id(*id)],
        )
        .await
        .map_err(query(op))?;
    }
    Ok(counts)
}

// ---------------------------------------------------------------- tasks

/// A stored task.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskRow {
    /// Its id.
    pub id: Uuid,
    /// Its idempotency key.
    pub key: String,
    /// Its batch.
    pub batch_id: Uuid,
    /// The rule.
    pub kind: String,
    /// The client.
    pub client_id: String,
    /// The client's branch.
    pub branch: String,
    /// Due date.
    pub due_on: NaiveDate,
    /// 1 = most urgent.
    pub priority: u8,
    /// Retention kind of its recordings.
    pub retention_kind: String,
    /// A compliance callback.
    pub compliance: bool,
    /// Which rule, on which facts.
    pub reason: Value,
    /// `open`, `done` or `closed`.
    pub state: String,
    /// The record's outcome (done) or why it was given up (closed).
    pub outcome: Option<String>,
    /// Call attempts so far.
    pub attempts: u64,
    /// The agent it is assigned to.
    pub assigned_agent: Option<String>,
    /// Planned at.
    pub created_at: DateTime<Utc>,
    /// Finished at.
    pub closed_at: Option<DateTime<Utc>>,
    /// Not dialed again before this (after an unsuccessful attempt).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The instance working on it now (a call runs), until `lease_until`.
    pub lease_owner: Option<String>,
    /// End of the lease (renewed while the call runs).
    pub lease_until: Option<DateTime<Utc>>,
    /// The last call placed for it.
    pub last_call_id: Option<Uuid>,
    /// That call's outcome.
    pub last_outcome: Option<String>,
    /// When that call ended.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Its call completed at this time; the callback record is awaited.
    pub awaiting_record_since: Option<DateTime<Utc>>,
    /// Who closed it by hand (`huifang task mark`) or `dialer@INSTANCE`.
    pub closed_by: Option<String>,
}

/// Which callback records to list ([`Store::records_page`]).
#[derive(Debug, Clone)]
pub struct RecordFilter {
    /// Callbacks on or after this day.
    pub from: NaiveDate,
    /// Callbacks on or before this day.
    pub to: NaiveDate,
    /// Only this agent's records.
    pub agent_id: Option<String>,
    /// Only these branches' records (`None`: any).
    pub branches: Option<Vec<String>>,
    /// Only records nobody reviewed yet.
    pub unreviewed: bool,
    /// After this `(called_on, id)` (a cursor).
    pub after: Option<(NaiveDate, Uuid)>,
    /// At most this many.
    pub limit: i64,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// `open`, `done` or `closed`.
    pub state: Option<String>,
    /// A kind name.
    pub kind: Option<String>,
    /// A client id.
    pub client: Option<String>,
    /// Due on or after.
    pub due_from: Option<NaiveDate>,
    /// Due on or before.
    pub due_to: Option<NaiveDate>,
    /// Only tasks of these branches (a supervisor's; `None`: any).
    pub branches: Option<Vec<String>>,
    /// Only tasks assigned to this agent.
    pub assigned_agent: Option<String>,
    /// After this `(due_on, priority, key)` in the listing order (a cursor).
    pub after: Option<(NaiveDate, u8, String)>,
    /// At most this many (`None`: all).
    pub limit: Option<i64>,
}

pub(super) const TASK_COLUMNS: &str = "id, idempotency_key, batch_id, kind, client_id, branch, due_on, priority, \
     retention_kind, compliance, reason, state, outcome, attempts, assigned_agent, created_at, closed_at, \
     next_attempt_at, lease_owner, lease_until, last_call_id, last_outcome, last_attempt_at, awaiting_record_since, \
     closed_by";

pub(super) fn task_row(r: &DbRow) -> Result<TaskRow, sqlx::Error> {
    Ok(TaskRow {
        id: r.id("id")?,
        key: r.text("idempotency_key")?,
        batch_id: r.id("batch_id")?,
        kind: r.text("kind")?,
        client_id: r.text("client_id")?,
        branch: r.text("branch")?,
        due_on: r.date("due_on")?,
        priority: u8::try_from(r.int("priority")?).map_err(|_| bad("priority", "out of range"))?,
        retention_kind: r.text("retention_kind")?,
        compliance: r.flag("compliance")?,
        reason: r.json("reason")?,
        state: r.text("state")?,
        outcome: r.opt_text("outcome")?,
        attempts: r.int("attempts")?.max(0) as u64,
        assigned_agent: r.opt_text("assigned_agent")?,
        created_at: r.time("created_at")?,
        closed_at: r.opt_time("closed_at")?,
        next_attempt_at: r.opt_time("next_attempt_at")?,
        lease_owner: r.opt_text("lease_owner")?,
        lease_until: r.opt_time("lease_until")?,
        last_call_id: r.opt_id("last_call_id")?,
        last_outcome: r.opt_text("last_outcome")?,
        last_attempt_at: r.opt_time("last_attempt_at")?,
        awaiting_record_since: r.opt_time("awaiting_record_since")?,
        closed_by: r.opt_text("closed_by")?,
    })
}

impl Store {
    /// Tasks matching `f`, by due date, priority and key.
    pub async fn tasks(&self, f: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
        let mut args = Vec::new();
        let mut cond = |col: &str, op: &str, v: V, args: &mut Vec<V>| {
            args.push(v);
            sql.push_str(&format!(" AND {col} {op} ${}", args.len()));
        };
        if let Some(s) = &f.state {
            cond("state", "=", t(s), &mut args);
        }
        if let Some(k) = &f.kind {
            cond("kind", "=", t(k), &mut args);
        }
        if let Some(c) = &f.client {
            cond("client_id", "=", t(c), &mut args);
        }
        if let Some(d) = f.due_from {
            cond("due_on", ">=", V::Date(Some(d)), &mut args);
        }
        if let Some(d) = f.due_to {
            cond("due_on", "<=", V::Date(Some(d)), &mut args);
        }
        if let Some(a) = &f.assigned_agent {
            cond("assigned_agent", "=", t(a), &mut args);
        }
        if let Some(branches) = &f.branches {
            let mut marks = Vec::new();
            for b in branches {
                args.push(t(b));
                marks.push(format!("${}", args.len()));
            }
            // no branch: no task (`IN ()` is not SQL)
            let list = if marks.is_empty() { "NULL".to_string() } else { marks.join(", ") };
            sql.push_str(&format!(" AND branch IN ({list})"));
        }
        if let Some((due, priority, key)) = &f.after {
            args.extend([V::Date(Some(*due)), V::Int(Some(i64::from(*priority))), t(key)]);
            let n = args.len();
            sql.push_str(&format!(
                " AND (due_on, priority, idempotency_key) > (${}, ${}, ${n})",
                n - 2,
                n - 1
            ));
        }
        sql.push_str(" ORDER BY due_on, priority, idempotency_key");
        if let Some(limit) = f.limit {
            args.push(V::Int(Some(limit)));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        let rows = self.read(&sql, args).await.map_err(query("tasks"))?;
        rows.iter().map(task_row).collect::<Result<_, _>>().map_err(query("tasks"))
    }

    /// One task, or [`StoreError::NotFound`].
    pub async fn task(&self, id: Uuid) -> Result<TaskRow, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let rows = self.read(&sql, vec![V::Id(id)]).await.map_err(query("task"))?;
        match rows.first() {
            Some(r) => task_row(r).map_err(query("task")),
            None => Err(StoreError::NotFound { what: "task", id }),
        }
    }

    /// The task with this idempotency key, or [`StoreError::Missing`].
    pub async fn task_by_key(&self, key: &str) -> Result<TaskRow, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key = $1");
        let rows = self.read(&sql, vec![t(key)]).await.map_err(query("task_by_key"))?;
        match rows.first() {
            Some(r) => task_row(r).map_err(query("task_by_key")),
            None => Err(StoreError::Missing { what: "task", key: key.to_string() }),
        }
    }
}

// ---------------------------------------------------------------- records

/// A record to store (validated by [`crate::domain::records::RecordDraft`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Its id.
    pub id: Uuid,
    /// The task it finishes.
    pub task_id: Uuid,
    /// The form.
    pub form: Form,
    /// Who made the callback.
    pub agent_id: String,
    /// How.
    pub method: String,
    /// The recorded call, for phone callbacks made through huifang.
    pub call_id: Option<Uuid>,
    /// When.
    pub called_on: NaiveDate,
    /// How it went.
    pub outcome: Outcome,
    /// Question id → answer.
    pub answers: BTreeMap<String, String>,
    /// Problems found.
    pub problems: Option<String>,
    /// The agent's notes (备注).
    pub notes: Option<String>,
    /// Special callbacks: when the record must reach the ordering department.
    pub feedback_due_on: Option<NaiveDate>,
    /// Submitted at.
    pub submitted_at: DateTime<Utc>,
}

/// A follow-up to open with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFollowUp {
    /// Its id.
    pub id: Uuid,
    /// Opened on (the request day).
    pub opened_on: NaiveDate,
    /// The department answers by.
    pub answer_due_on: NaiveDate,
    /// The client has the final answer by.
    pub resolve_due_on: NaiveDate,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordRow {
    /// Its id.
    pub id: Uuid,
    /// Its task.
    pub task_id: Uuid,
    /// The client.
    pub client_id: String,
    /// The client's branch.
    pub branch: String,
    /// The task's kind.
    pub kind: String,
    /// The form (`new_account`, `existing`, `special`).
    pub form: String,
    /// The author.
    pub agent_id: String,
    /// How.
    pub method: String,
    /// The recorded call.
    pub call_id: Option<String>,
    /// When.
    pub called_on: NaiveDate,
    /// How it went.
    pub outcome: String,
    /// Question id → answer.
    pub answers: Value,
    /// Problems found.
    pub problems: Option<String>,
    /// Special: feedback due.
    pub feedback_due_on: Option<NaiveDate>,
    /// `submitted` or `reviewed`.
    pub state: String,
    /// Submitted at.
    pub submitted_at: DateTime<Utc>,
    /// The reviewer.
    pub reviewer_id: Option<String>,
    /// `approved` or `returned`.
    pub verdict: Option<String>,
    /// The reviewer's note.
    pub review_note: Option<String>,
    /// Reviewed at.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// The agent's notes (备注).
    pub notes: Option<String>,
}

const RECORD_COLUMNS: &str = "id, task_id, client_id, branch, kind, form, agent_id, method, call_id, called_on, \
     outcome, answers, problems, feedback_due_on, state, submitted_at, reviewer_id, verdict, review_note, reviewed_at, \
     notes";

fn record_row(r: &DbRow) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        id: r.id("id")?,
        task_id: r.id("task_id")?,
        client_id: r.text("client_id")?,
        branch: r.text("branch")?,
        kind: r.text("kind")?,
        form: r.text("form")?,
        agent_id: r.text("agent_id")?,
        method: r.text("method")?,
        call_id: r.opt_text("call_id")?,
        called_on: r.date("called_on")?,
        outcome: r.text("outcome")?,
        answers: r.json("answers")?,
        problems: r.opt_text("problems")?,
        feedback_due_on: r.opt_date("feedback_due_on")?,
        state: r.text("state")?,
        submitted_at: r.time("submitted_at")?,
        reviewer_id: r.opt_text("reviewer_id")?,
        verdict: r.opt_text("verdict")?,
        review_note: r.opt_text("review_note")?,
        reviewed_at: r.opt_time("reviewed_at")?,
        notes: r.opt_text("notes")?,
    })
}

/// A stored follow-up.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FollowUpRow {
    /// Its id.
    pub id: Uuid,
    /// The record that found the problems.
    pub record_id: Uuid,
    /// The client.
    pub client_id: String,
    /// The branch.
    pub branch: String,
    /// The task's kind.
    pub kind: String,
    /// The problems.
    pub problems: String,
    /// Opened on.
    pub opened_on: NaiveDate,
    /// The department answers by.
    pub answer_due_on: NaiveDate,
    /// The client has the final answer by.
    pub resolve_due_on: NaiveDate,
    /// `open`, `answered`, `resolved`.
    pub state: String,
    /// Answered on.
    pub answered_on: Option<NaiveDate>,
    /// Resolved on.
    pub resolved_on: Option<NaiveDate>,
    /// Notes.
    pub note: Option<String>,
}

const FOLLOW_UP_COLUMNS: &str = "id, record_id, client_id, branch, kind, problems, opened_on, answer_due_on, \
     resolve_due_on, state, answered_on, resolved_on, note";

fn follow_up_row(r: &DbRow) -> Result<FollowUpRow, sqlx::Error> {
    Ok(FollowUpRow {
        id: r.id("id")?,
        record_id: r.id("record_id")?,
        client_id: r.text("client_id")?,
        branch: r.text("branch")?,
        kind: r.text("kind")?,
        problems: r.text("problems")?,
        opened_on: r.date("opened_on")?,
        answer_due_on: r.date("answer_due_on")?,
        resolve_due_on: r.date("resolve_due_on")?,
        state: r.text("state")?,
        answered_on: r.opt_date("answered_on")?,
        resolved_on: r.opt_date("resolved_on")?,
        note: r.opt_text("note")?,
    })
}

/// How a reviewer judged a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed off.
    Approved,
    /// Sent back with a note.
    Returned,
}

impl Verdict {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Returned => "returned",
        }
    }
}

impl Store {
    /// Stores a record for an open task, closing the task (`done`, with the
    /// record's outcome) and opening `follow_up` when given, all at once. A
    /// task that is not open is [`StoreError::Refused`]; nothing changes.
    pub async fn submit_record(
        &self,
        rec: &NewRecord,
        follow_up: Option<&NewFollowUp>,
    ) -> Result<RecordRow, StoreError> {
        let op = "submit_record";
        let task = self.task(rec.task_id).await?;
        let at = ms(rec.submitted_at);
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = async {
            let n = tx
                .exec(
                    "UPDATE tasks SET state = 'done', outcome = $2, closed_at = $3, assigned_agent = $4 \
                     WHERE id = $1 AND state = 'open'",
                    vec![V::Id(rec.task_id), t(rec.outcome.as_str()), V::Time(Some(at)), t(&rec.agent_id)],
                )
                .await
                .map_err(query(op))?;
            if n == 0 {
                return Err(StoreError::Refused(format!(
                    "task {} is {}, not open: it already has its record",
                    rec.task_id, task.state
                )));
            }
            let answers = serde_json::to_value(&rec.answers).unwrap_or(Value::Null);
            tx.exec(
                &format!(
                    "INSERT INTO callback_records ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     $13, $14, 'submitted', $15, NULL, NULL, NULL, NULL, $16)",
                    RECORD_COLUMNS
                ),
                vec![
                    V::Id(rec.id),
                    V::Id(rec.task_id),
                    t(&task.client_id),
                    t(&task.branch),
                    t(&task.kind),
                    t(rec.form.as_str()),
                    t(&rec.agent_id),
                    t(&rec.method),
                    V::Text(rec.call_id.map(|c| c.to_string())),
                    V::Date(Some(rec.called_on)),
                    t(rec.outcome.as_str()),
                    V::Json(answers),
                    ot(rec.problems.as_deref()),
                    V::Date(rec.feedback_due_on),
                    V::Time(Some(at)),
                    ot(rec.notes.as_deref()),
                ],
            )
            .await
            .map_err(query(op))?;
            if let Some(f) = follow_up {
                tx.exec(
                    &format!(
                        "INSERT INTO follow_ups ({FOLLOW_UP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                         'open', NULL, NULL, NULL)"
                    ),
                    vec![
                        V::Id(f.id),
                        V::Id(rec.id),
                        t(&task.client_id),
                        t(&task.branch),
                        t(&task.kind),
                        t(rec.problems.as_deref().unwrap_or("")),
                        V::Date(Some(f.opened_on)),
                        V::Date(Some(f.answer_due_on)),
                        V::Date(Some(f.resolve_due_on)),
                    ],
                )
                .await
                .map_err(query(op))?;
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => tx.commit().await.map_err(query(op))?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
        self.record(rec.id).await
    }

    /// Reviews a submitted record. The reviewer may not be its author and
    /// a record is reviewed once: both are [`StoreError::Refused`].
    pub async fn review_record(
        &self,
        id: Uuid,
        reviewer: &str,
        verdict: Verdict,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<RecordRow, StoreError> {
        let op = "review_record";
        if reviewer.trim().is_empty() {
            return Err(StoreError::Invalid { what: "reviewer (empty)" });
        }
        let rec = self.record(id).await?;
        if rec.agent_id == reviewer {
            return Err(StoreError::Refused(
                "a reviewer may not review a record they made (相互制衡)".into(),
            ));
        }
        let n = self
            .write(
                "UPDATE callback_records SET state = 'reviewed', reviewer_id = $2, verdict = $3, review_note = $4, \
                 reviewed_at = $5 WHERE id = $1 AND state = 'submitted' AND agent_id <> $2",
                vec![V::Id(id), t(reviewer), t(verdict.as_str()), ot(note), V::Time(Some(ms(at)))],
            )
            .await
            .map_err(query(op))?;
        if n == 0 {
            return Err(StoreError::Refused(format!("record {id} is already reviewed")));
        }
        self.record(id).await
    }

    /// One record, or [`StoreError::NotFound`].
    pub async fn record(&self, id: Uuid) -> Result<RecordRow, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM callback_records WHERE id = $1");
        let rows = self.read(&sql, vec![V::Id(id)]).await.map_err(query("record"))?;
        match rows.first() {
            Some(r) => record_row(r).map_err(query("record")),
            None => Err(StoreError::NotFound { what: "callback record", id }),
        }
    }

    /// The record of task `task`, if it has one.
    pub async fn record_of_task(&self, task: Uuid) -> Result<Option<RecordRow>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM callback_records WHERE task_id = $1");
        let rows = self.read(&sql, vec![V::Id(task)]).await.map_err(query("record_of_task"))?;
        rows.first().map(record_row).transpose().map_err(query("record_of_task"))
    }

    /// Records of callbacks made in `[from, to]`, by day.
    pub async fn records(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<RecordRow>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM callback_records WHERE called_on >= $1 AND called_on <= $2 \
             ORDER BY called_on, submitted_at, id"
        );
        let rows =
            self.read(&sql, vec![V::Date(Some(from)), V::Date(Some(to))]).await.map_err(query("records"))?;
        rows.iter().map(record_row).collect::<Result<_, _>>().map_err(query("records"))
    }

    /// The records `f` selects, by day of the callback and id (keyset
    /// pages over the `callback_records_by_day` index).
    pub async fn records_page(&self, f: &RecordFilter) -> Result<Vec<RecordRow>, StoreError> {
        let mut sql = format!(
            "SELECT {RECORD_COLUMNS} FROM callback_records WHERE called_on >= $1 AND called_on <= $2"
        );
        let mut args = vec![V::Date(Some(f.from)), V::Date(Some(f.to))];
        if let Some(a) = &f.agent_id {
            args.push(t(a));
            sql.push_str(&format!(" AND agent_id = ${}", args.len()));
        }
        if let Some(branches) = &f.branches {
            let mut marks = Vec::new();
            for b in branches {
                args.push(t(b));
                marks.push(format!("${}", args.len()));
            }
            let list = if marks.is_empty() { "NULL".to_string() } else { marks.join(", ") };
            sql.push_str(&format!(" AND branch IN ({list})"));
        }
        if f.unreviewed {
            sql.push_str(" AND verdict IS NULL");
        }
        if let Some((day, id)) = f.after {
            args.extend([V::Date(Some(day)), V::Id(id)]);
            let n = args.len();
            sql.push_str(&format!(" AND (called_on, id) > (${}, ${n})", n - 1));
        }
        args.push(V::Int(Some(f.limit)));
        sql.push_str(&format!(" ORDER BY called_on, id LIMIT ${}", args.len()));
        let rows = self.read(&sql, args).await.map_err(query("records_page"))?;
        rows.iter().map(record_row).collect::<Result<_, _>>().map_err(query("records_page"))
    }

    /// The follow-up opened by record `record`, if any.
    pub async fn follow_up_of(&self, record: Uuid) -> Result<Option<FollowUpRow>, StoreError> {
        let sql = format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE record_id = $1");
        let rows = self.read(&sql, vec![V::Id(record)]).await.map_err(query("follow_up_of"))?;
        rows.first().map(follow_up_row).transpose().map_err(query("follow_up_of"))
    }

    /// Follow-up `id`, if there is one.
    pub async fn follow_up(&self, id: Uuid) -> Result<Option<FollowUpRow>, StoreError> {
        let sql = format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE id = $1");
        let rows = self.read(&sql, vec![V::Id(id)]).await.map_err(query("follow_up"))?;
        rows.first().map(follow_up_row).transpose().map_err(query("follow_up"))
    }

    /// Every follow-up, oldest first.
    pub async fn follow_ups(&self) -> Result<Vec<FollowUpRow>, StoreError> {
        let sql = format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups ORDER BY opened_on, id");
        let rows = self.read(&sql, vec![]).await.map_err(query("follow_ups"))?;
        rows.iter().map(follow_up_row).collect::<Result<_, _>>().map_err(query("follow_ups"))
    }

    /// Moves a follow-up forward: `answered` (the department's answer) or
    /// `resolved` (the client has the final answer; implies answered).
    /// Backwards, or twice, is [`StoreError::Refused`].
    pub async fn advance_follow_up(
        &self,
        id: Uuid,
        resolved: bool,
        on: NaiveDate,
        note: Option<&str>,
    ) -> Result<FollowUpRow, StoreError> {
        let op = "advance_follow_up";
        let sql = if resolved {
            "UPDATE follow_ups SET state = 'resolved', answered_on = COALESCE(answered_on, $2), resolved_on = $2, \
             note = COALESCE($3, note) WHERE id = $1 AND state <> 'resolved' AND $2 >= opened_on"
        } else {
            "UPDATE follow_ups SET state = 'answered', answered_on = $2, note = COALESCE($3, note) \
             WHERE id = $1 AND state = 'open' AND $2 >= opened_on"
        };
        let n = self.write(sql, vec![V::Id(id), V::Date(Some(on)), ot(note)]).await.map_err(query(op))?;
        let rows = self
            .read(&format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE id = $1"), vec![V::Id(id)])
            .await
            .map_err(query(op))?;
        let row = match rows.first() {
            Some(r) => follow_up_row(r).map_err(query(op))?,
            None => return Err(StoreError::NotFound { what: "follow-up", id }),
        };
        if n == 0 {
            return Err(StoreError::Refused(format!(
                "follow-up {id} is {} (or {on} is before it was opened)",
                row.state
            )));
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_kind_and_event_kind_is_in_both_schemas() {
        for dir in ["migrations/sqlite", "migrations/postgres"] {
            let path = format!("{}/{dir}/20261128000000_callbacks.sql", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let names =
                TaskKind::ALL.iter().map(|k| k.as_str()).chain(EventKind::ALL.iter().map(|k| k.as_str()));
            for name in names.chain(Role::ALL.iter().map(|r| r.as_str())) {
                assert!(text.contains(&format!("'{name}'")), "{name} missing in {path}");
            }
        }
    }

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(placeholders(false, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(false, 1, 1), "($1)");
        assert_eq!(placeholders(true, 2, 2), "(?, ?), (?, ?)");
    }
}
