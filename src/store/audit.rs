//! The audit log's table (E6): append-only, hash-chained
//! ([`crate::audit`] defines the events, the canonical form and the hash).
//!
//! ## Appends never fork the chain
//! An append reads the head (last `seq` and `hash`) and inserts the next
//! row; two appends must never read the same head. Hence:
//! - **SQLite**: the append runs in a `BEGIN IMMEDIATE` transaction on the
//!   one writer connection: appends of this process queue for that
//!   connection, and a writer in another process (a CLI command on the
//!   same file) is held off by the write lock taken up front.
//! - **PostgreSQL**: the append runs in a transaction that first takes
//!   `pg_advisory_xact_lock(AUDIT_LOCK)`: appends of every daemon queue on
//!   that lock, released at commit.
//!
//! Behind that the schema refuses an insert that does not continue the
//! chain (the next `seq`, the head's hash as `prev_hash`; `prev_hash` and
//! `hash` are UNIQUE), and every UPDATE, DELETE and TRUNCATE.
//!
//! ## For other writers
//! Anyone may append: build an [`AuditEvent`] (e.g.
//! `AuditEvent::system(AuditAction::RecordingUploaded, recording_id,
//! json!({"key": key, "version_id": v, "sha256": h}))`) and `await`
//! [`Store::append_audit`]. Keep phone numbers out of `detail`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use super::error::query;
use uuid::Uuid;

use super::callbacks::V;
use super::sql::MARK_ARCHIVED;
use super::{Archived, Backend, OUTCOMES, Seal, SealedRecording, Store, StoreError, ms};
use crate::audit::{AuditEvent, AuditRow, canonical_json, time_text};

/// The advisory lock key of audit appends on PostgreSQL ("huifang-audit").
const AUDIT_LOCK: i64 = 0x6875_6966_6175_6469;

const HEAD: &str = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";
const INSERT: &str = "INSERT INTO audit_events \
     (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const ROWS_SINCE: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash \
     FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2";
const ROW_AT: &str = "SELECT seq, hash FROM audit_events WHERE seq = $1";
/// Rows read per round trip by [`Store::audit_rows`].
const PAGE: i64 = 10_000;

impl Store {
    /// Appends `e` to the audit log, chained to the current head, and
    /// returns the stored row. Appends are serialized (see the module
    /// docs), so concurrent appends from any number of tasks, processes or
    /// daemons form one chain. `e.detail` must be a JSON object
    /// ([`StoreError::Invalid`] otherwise); `e.actor` must not be empty.
    pub async fn append_audit(&self, e: &AuditEvent) -> Result<AuditRow, StoreError> {
        check_event(e)?;
        let op = query("append_audit");
        match &self.backend {
            Backend::Sqlite(b) => {
                let mut tx = b.writer.begin_with("BEGIN IMMEDIATE").await.map_err(op)?;
                let row = append_sqlite(&mut tx, e).await.map_err(query("append_audit"))?;
                tx.commit().await.map_err(query("append_audit"))?;
                Ok(row)
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await.map_err(op)?;
                lock_pg(&mut tx).await.map_err(query("append_audit"))?;
                let row = append_pg(&mut tx, e).await.map_err(query("append_audit"))?;
                tx.commit().await.map_err(query("append_audit"))?;
                Ok(row)
            }
        }
    }

    /// [`mark_archived`](Self::mark_archived) and the audit `events`
    /// appended after it, in one transaction: the recording is marked
    /// archived exactly when its events are in the log (one commit, one
    /// fsync, instead of one per statement). The same rules and errors as
    /// `mark_archived` (nothing is appended when it is refused) and as
    /// [`append_audit`](Self::append_audit).
    pub async fn mark_archived_audited(
        &self,
        id: Uuid,
        a: &Archived,
        events: &[AuditEvent],
    ) -> Result<Vec<AuditRow>, StoreError> {
        if a.key.is_empty() || a.manifest_key.is_empty() {
            return Err(StoreError::Invalid { what: "archive key" });
        }
        for e in events {
            check_event(e)?;
        }
        let a = Archived { retain_until: ms(a.retain_until), at: ms(a.at), ..a.clone() };
        let op = "mark_archived_audited";
        let rows = match &self.backend {
            Backend::Sqlite(b) => {
                let mut tx = b.writer.begin_with("BEGIN IMMEDIATE").await.map_err(query(op))?;
                let n = sqlx::query(MARK_ARCHIVED)
                    .bind(id.hyphenated().to_string())
                    .bind(a.key.as_str())
                    .bind(a.manifest_key.as_str())
                    .bind(a.version.as_deref())
                    .bind(a.manifest_version.as_deref())
                    .bind(time_text(a.retain_until))
                    .bind(time_text(a.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(query(op))?
                    .rows_affected();
                if n == 0 {
                    None
                } else {
                    let mut rows = Vec::with_capacity(events.len());
                    for e in events {
                        rows.push(append_sqlite(&mut tx, e).await.map_err(query(op))?);
                    }
                    tx.commit().await.map_err(query(op))?;
                    Some(rows)
                }
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await.map_err(query(op))?;
                lock_pg(&mut tx).await.map_err(query(op))?;
                let n = sqlx::query(MARK_ARCHIVED)
                    .bind(id)
                    .bind(a.key.as_str())
                    .bind(a.manifest_key.as_str())
                    .bind(a.version.as_deref())
                    .bind(a.manifest_version.as_deref())
                    .bind(a.retain_until)
                    .bind(a.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(query(op))?
                    .rows_affected();
                if n == 0 {
                    None
                } else {
                    let mut rows = Vec::with_capacity(events.len());
                    for e in events {
                        rows.push(append_pg(&mut tx, e).await.map_err(query(op))?);
                    }
                    tx.commit().await.map_err(query(op))?;
                    Some(rows)
                }
            }
        };
        match rows {
            Some(rows) => Ok(rows),
            None => {
                // rolled back when dropped; say why
                self.get_recording(id).await?;
                Err(StoreError::Conflict { what: "recording already archived, or not final", id })
            }
        }
    }

    /// [`seal_recording`](Self::seal_recording) and its `recording.sealed`
    /// audit `event`, in one transaction (one commit at hang-up instead of
    /// two). The same rules and errors as `seal_recording` (nothing is
    /// appended when the seal is refused) and as
    /// [`append_audit`](Self::append_audit).
    pub async fn seal_recording_audited(
        &self,
        s: &SealedRecording,
        event: &AuditEvent,
    ) -> Result<AuditRow, StoreError> {
        let seal = Seal::of(s)?;
        check_event(event)?;
        let op = "seal_recording_audited";
        let row = match &self.backend {
            Backend::Sqlite(b) => {
                let mut tx = b.writer.begin_with("BEGIN IMMEDIATE").await.map_err(query(op))?;
                if super::sqlite::seal_recording_on(&mut *tx, &seal).await.map_err(query(op))? == 0 {
                    None
                } else {
                    let row = append_sqlite(&mut tx, event).await.map_err(query(op))?;
                    tx.commit().await.map_err(query(op))?;
                    Some(row)
                }
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await.map_err(query(op))?;
                lock_pg(&mut tx).await.map_err(query(op))?;
                if super::postgres::seal_recording_on(&mut *tx, &seal).await.map_err(query(op))? == 0 {
                    None
                } else {
                    let row = append_pg(&mut tx, event).await.map_err(query(op))?;
                    tx.commit().await.map_err(query(op))?;
                    Some(row)
                }
            }
        };
        match row {
            Some(row) => Ok(row),
            None => Err(self.seal_refused(s.id).await),
        }
    }

    /// [`finish_call`](Self::finish_call) and its `call.ended` audit
    /// `event`, in one transaction. The same rules and errors as
    /// `finish_call` (nothing is appended when the finish is refused) and as
    /// [`append_audit`](Self::append_audit).
    pub async fn finish_call_audited(
        &self,
        call: Uuid,
        outcome: &str,
        reason: Option<&str>,
        ended_at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<AuditRow, StoreError> {
        if !OUTCOMES.contains(&outcome) {
            return Err(StoreError::Invalid { what: "outcome" });
        }
        check_event(event)?;
        let ended_at = ms(ended_at);
        let op = "finish_call_audited";
        let row = match &self.backend {
            Backend::Sqlite(b) => {
                let mut tx = b.writer.begin_with("BEGIN IMMEDIATE").await.map_err(query(op))?;
                let n = super::sqlite::finish_call_on(&mut *tx, call, outcome, reason, ended_at)
                    .await
                    .map_err(query(op))?;
                if n == 0 {
                    None
                } else {
                    let row = append_sqlite(&mut tx, event).await.map_err(query(op))?;
                    tx.commit().await.map_err(query(op))?;
                    Some(row)
                }
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await.map_err(query(op))?;
                lock_pg(&mut tx).await.map_err(query(op))?;
                let n = super::postgres::finish_call_on(&mut *tx, call, outcome, reason, ended_at)
                    .await
                    .map_err(query(op))?;
                if n == 0 {
                    None
                } else {
                    let row = append_pg(&mut tx, event).await.map_err(query(op))?;
                    tx.commit().await.map_err(query(op))?;
                    Some(row)
                }
            }
        };
        match row {
            Some(row) => Ok(row),
            None => Err(self.finish_refused(call).await),
        }
    }

    /// Every audit row after `since_seq` (0: the whole log), in order.
    /// Check them with [`crate::audit::verify_chain`] (from 0) or
    /// [`crate::audit::verify_chain_from`] with
    /// [`audit_link`](Self::audit_link)`(since_seq)`.
    pub async fn audit_rows(&self, since_seq: i64) -> Result<Vec<AuditRow>, StoreError> {
        let mut out = Vec::new();
        let mut after = since_seq;
        loop {
            let page = self.audit_page(after).await?;
            let done = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// `(seq, hash)` of the row at `seq`, if there is one: where a partial
    /// check of the chain starts.
    pub async fn audit_link(&self, seq: i64) -> Result<Option<(i64, String)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(b) => sqlx::query_as(ROW_AT).bind(seq).fetch_optional(&b.reader).await,
            Backend::Postgres(b) => sqlx::query_as(ROW_AT).bind(seq).fetch_optional(&b.pool).await,
        }
        .map_err(query("audit_link"))
    }

    /// The chain's links after `after`: `(seq, prev_hash, hash)` of at most
    /// `limit` events, in order (what an evidence export lists from its
    /// first event to the head).
    pub async fn audit_links(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let sql = "SELECT seq, prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows = self
            .read(sql, vec![super::callbacks::V::Int(Some(after)), super::callbacks::V::Int(Some(limit))])
            .await
            .map_err(query("audit_links"))?;
        rows.iter()
            .map(|r| Ok((r.int("seq")?, r.text("prev_hash")?, r.text("hash")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query("audit_links"))
    }

    async fn audit_page(&self, after: i64) -> Result<Vec<AuditRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(b) => {
                let rows = sqlx::query(ROWS_SINCE)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(&b.reader)
                    .await
                    .map_err(query("audit_rows"))?;
                rows.iter()
                    .map(|r| {
                        let at: String = r.try_get("at")?;
                        audit_row(r, parse_time(&at)?)
                    })
                    .collect::<Result<_, sqlx::Error>>()
            }
            Backend::Postgres(b) => {
                let rows = sqlx::query(ROWS_SINCE)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(&b.pool)
                    .await
                    .map_err(query("audit_rows"))?;
                rows.iter().map(|r| audit_row(r, r.try_get("at")?)).collect::<Result<_, sqlx::Error>>()
            }
        }
        .map_err(query("audit_rows"))
    }
}

fn audit_row<R: Row>(r: &R, at: DateTime<Utc>) -> Result<AuditRow, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'q> sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    String: for<'q> sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    let detail: String = r.try_get("detail")?;
    let detail: Value =
        serde_json::from_str(&detail).map_err(|_| sqlx::Error::Decode("column detail: not JSON".into()))?;
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// What every appended event must be.
fn check_event(e: &AuditEvent) -> Result<(), StoreError> {
    if !e.detail.is_object() {
        return Err(StoreError::Invalid { what: "audit detail (must be a JSON object)" });
    }
    if e.actor.is_empty() {
        return Err(StoreError::Invalid { what: "audit actor (empty)" });
    }
    Ok(())
}

/// Appends `e` in a SQLite write transaction (`BEGIN IMMEDIATE`: the head
/// cannot move under it).
async fn append_sqlite(tx: &mut sqlx::SqliteConnection, e: &AuditEvent) -> Result<AuditRow, sqlx::Error> {
    let head: Option<(i64, String)> = sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
    let row = AuditRow::chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), e);
    sqlx::query(INSERT)
        .bind(row.seq)
        .bind(time_text(row.at))
        .bind(row.actor.as_str())
        .bind(row.action.as_str())
        .bind(row.subject.as_str())
        .bind(canonical_json(&row.detail))
        .bind(row.prev_hash.as_str())
        .bind(row.hash.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(row)
}

/// Takes the audit lock of a PostgreSQL transaction (held until it ends).
async fn lock_pg(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK).execute(&mut *tx).await.map(|_| ())
}

/// Appends `e` in a PostgreSQL transaction holding the audit lock.
async fn append_pg(tx: &mut sqlx::PgConnection, e: &AuditEvent) -> Result<AuditRow, sqlx::Error> {
    let head: Option<(i64, String)> = sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
    let row = AuditRow::chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), e);
    sqlx::query(INSERT)
        .bind(row.seq)
        .bind(row.at)
        .bind(row.actor.as_str())
        .bind(row.action.as_str())
        .bind(row.subject.as_str())
        .bind(canonical_json(&row.detail))
        .bind(row.prev_hash.as_str())
        .bind(row.hash.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(row)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| sqlx::Error::Decode("column at: not an RFC 3339 time".into()))
}

// ------------------------------------------------- retrieval for compliance

/// One call of a client, with its recording if it has one
/// ([`Store::client_calls`]): what compliance lists by client id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientCall {
    /// The recording's id (`null` for a call without a recording).
    pub recording_id: Option<uuid::Uuid>,
    /// The call's id.
    pub call_id: uuid::Uuid,
    /// The client's id.
    pub client_id: Option<String>,
    /// The callback task.
    pub task_id: Option<String>,
    /// The agent (a staff id) who took the call, when known.
    pub agent_id: Option<String>,
    /// The kind of callback (`new_account`, …), when the call had a task.
    pub kind: Option<String>,
    /// When the call started.
    #[serde(serialize_with = "z_time")]
    pub started_at: DateTime<Utc>,
    /// When the conversation started.
    #[serde(serialize_with = "opt_z_time")]
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    #[serde(serialize_with = "opt_z_time")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The call's outcome.
    pub outcome: Option<String>,
    /// The recording's state (`recording`, `sealed`, `interrupted`).
    pub state: Option<String>,
    /// The recording's SHA-256.
    pub sha256: Option<String>,
    /// The recording's size.
    pub bytes: Option<i64>,
    /// The recording's audio length.
    pub duration_ms: Option<i64>,
    /// The recording's object key, once archived.
    pub archive_key: Option<String>,
    /// Its Object Lock retain-until date, once archived.
    #[serde(serialize_with = "opt_z_time")]
    pub retain_until: Option<DateTime<Utc>>,
    /// Whether the recording is under an open legal hold.
    pub legal_hold: bool,
    /// The open hold's state (`active`, `release_requested`).
    pub hold_state: Option<String>,
    /// Who asked to release the open hold (the second person must be
    /// someone else).
    pub hold_requested_by: Option<String>,
    /// Whether the recording is archived (and verified).
    pub archived: bool,
    /// The sealed file in the spool (until removed after archiving).
    pub path: Option<String>,
}

pub(super) fn z_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*t))
}

fn opt_z_time<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time_text(*t)),
        None => s.serialize_none(),
    }
}

/// Which calls [`Store::calls_page`] lists.
#[derive(Debug, Clone, Default)]
pub struct CallQuery<'a> {
    /// Only this client's calls.
    pub client_id: Option<&'a str>,
    /// Only the calls this agent took.
    pub agent_id: Option<&'a str>,
    /// Only calls that have a recording.
    pub recorded_only: bool,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// After this `(started_at, call id)` in the listing order (a cursor).
    pub after: Option<(DateTime<Utc>, uuid::Uuid)>,
    /// At most this many rows (`None`: all).
    pub limit: Option<i64>,
    /// Only calls of clients of these branches (a supervisor's; `None`: any).
    pub branches: Option<&'a [String]>,
    /// Only calls of this kind of callback (`new_account`, …).
    pub kind: Option<&'a str>,
    /// Only calls with this outcome (`completed`, `no-answer`, …).
    pub outcome: Option<&'a str>,
    /// Newest first (a search) instead of oldest first (a dossier); the
    /// cursor continues in the same direction.
    pub newest_first: bool,
}

pub(super) const CALL_COLUMNS: &str = "SELECT c.id AS call_id, c.client_id, c.task_id, c.agent_id, c.kind, c.started_at, \
     c.answered_at, c.ended_at, c.outcome, r.id AS recording_id, r.state, r.sha256, r.bytes, r.duration_ms, \
     r.archive_key, r.retain_until, r.path, r.archived_at, \
     h.state AS hold_state, h.requested_by AS hold_requested_by \
     FROM calls c LEFT JOIN recordings r ON r.call_id = c.id \
     LEFT JOIN legal_holds h ON h.recording_id = r.id AND h.state <> 'released'";

/// A row of [`CALL_COLUMNS`].
pub(super) fn client_call(r: &super::callbacks::DbRow) -> Result<ClientCall, sqlx::Error> {
    Ok(ClientCall {
        recording_id: r.opt_id("recording_id")?,
        call_id: r.id("call_id")?,
        client_id: r.opt_text("client_id")?,
        task_id: r.opt_text("task_id")?,
        agent_id: r.opt_text("agent_id")?,
        kind: r.opt_text("kind")?,
        started_at: r.time("started_at")?,
        answered_at: r.opt_time("answered_at")?,
        ended_at: r.opt_time("ended_at")?,
        outcome: r.opt_text("outcome")?,
        state: r.opt_text("state")?,
        sha256: r.opt_text("sha256")?,
        bytes: r.opt_int("bytes")?,
        duration_ms: r.opt_int("duration_ms")?,
        archive_key: r.opt_text("archive_key")?,
        retain_until: r.opt_time("retain_until")?,
        legal_hold: r.opt_text("hold_state")?.is_some(),
        hold_state: r.opt_text("hold_state")?,
        hold_requested_by: r.opt_text("hold_requested_by")?,
        archived: r.opt_time("archived_at")?.is_some(),
        path: r.opt_text("path")?,
    })
}

impl Store {
    /// Every call of client `client_id` that started in `[from, to)`, oldest
    /// first, each with its recording's columns (all `None` when it has no
    /// recording). Served by the `calls_by_client` index.
    pub async fn client_calls(
        &self,
        client_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ClientCall>, StoreError> {
        let q =
            CallQuery { client_id: Some(client_id), from: Some(from), to: Some(to), ..Default::default() };
        self.calls_page(&q).await
    }

    /// Every call (of any client) that started in `[from, to)`, oldest
    /// first, with its recording's columns: what `huifang verify` walks.
    pub async fn calls_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ClientCall>, StoreError> {
        self.calls_page(&CallQuery { from: Some(from), to: Some(to), ..Default::default() }).await
    }

    /// The calls `q` selects, oldest first (by start, then id), with their
    /// recordings' columns: one page when `q.limit` is set, continued from
    /// `q.after` (keyset paging: no OFFSET, each page one index range).
    pub async fn calls_page(&self, q: &CallQuery<'_>) -> Result<Vec<ClientCall>, StoreError> {
        // each condition refers to its arguments as `?`, numbered here
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<V> = Vec::new();
        let mut push = |cond: &str, values: Vec<V>| {
            let mut cond = cond.to_string();
            for v in values {
                args.push(v);
                cond = cond.replacen('?', &format!("${}", args.len()), 1);
            }
            conds.push(cond);
        };
        if let Some(branches) = q.branches {
            // the client's branch: a call without a known client is in none
            let marks =
                if branches.is_empty() { "NULL".to_string() } else { vec!["?"; branches.len()].join(", ") };
            let cond =
                format!("c.client_id IN (SELECT cl.client_id FROM clients cl WHERE cl.branch IN ({marks}))");
            push(&cond, branches.iter().map(|b| V::Text(Some(b.clone()))).collect());
        }
        let texts = [
            (q.client_id, "c.client_id = ?"),
            (q.agent_id, "c.agent_id = ?"),
            (q.kind, "c.kind = ?"),
            (q.outcome, "c.outcome = ?"),
        ];
        for (v, cond) in texts {
            if let Some(v) = v {
                push(cond, vec![V::Text(Some(v.to_string()))]);
            }
        }
        if q.recorded_only {
            push("r.id IS NOT NULL", vec![]);
        }
        if let Some(from) = q.from {
            push("c.started_at >= ?", vec![V::Time(Some(from))]);
        }
        if let Some(to) = q.to {
            push("c.started_at < ?", vec![V::Time(Some(to))]);
        }
        let (cmp, dir) = if q.newest_first { ("<", "DESC") } else { (">", "ASC") };
        if let Some((t, id)) = q.after {
            // the time twice: `(a, b) > (x, y)` is not used by SQLite's planner
            let cond = format!("(c.started_at {cmp} ? OR (c.started_at = ? AND c.id {cmp} ?))");
            push(&cond, vec![V::Time(Some(ms(t))), V::Time(Some(ms(t))), V::Id(id)]);
        }
        let mut sql = String::from(CALL_COLUMNS);
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY c.started_at {dir}, c.id {dir}"));
        if let Some(limit) = q.limit {
            args.push(V::Int(Some(limit)));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        let rows = self.read(&sql, args).await.map_err(query("calls_page"))?;
        rows.iter().map(client_call).collect::<Result<Vec<_>, sqlx::Error>>().map_err(query("calls_page"))
    }
}

const BY_SUBJECTS: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_events \
     WHERE subject = $1 AND seq > $2 ORDER BY seq LIMIT $3";

impl Store {
    /// The audit events about `subject` (a recording, call or login) after
    /// `after_seq`, in chain order, at most `limit` (the
    /// `audit_events_by_subject` index).
    pub async fn audit_of(
        &self,
        subject: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let args = vec![V::Text(Some(subject.to_string())), V::Int(Some(after_seq)), V::Int(Some(limit))];
        let rows = self.read(BY_SUBJECTS, args).await.map_err(query("audit_of"))?;
        rows.iter()
            .map(|r| {
                let detail = r.text("detail")?;
                Ok(AuditRow {
                    seq: r.int("seq")?,
                    at: r.time("at")?,
                    actor: r.text("actor")?,
                    action: r.text("action")?,
                    subject: r.text("subject")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|_| sqlx::Error::Decode("column detail: not JSON".into()))?,
                    prev_hash: r.text("prev_hash")?,
                    hash: r.text("hash")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(query("audit_of"))
    }
}

impl Store {
    /// Recordings being written, and final ones not archived yet (the
    /// uploader's queue), for `/metrics`: two counts over partial indexes,
    /// cheap on a table of millions.
    pub async fn recordings_in_flight(&self) -> Result<(i64, i64), StoreError> {
        let rows = self
            .read(
                "SELECT (SELECT count(*) FROM recordings WHERE state = 'recording') AS recording, \
                 (SELECT count(*) FROM recordings WHERE archived_at IS NULL AND state <> 'recording') AS queued",
                vec![],
            )
            .await
            .map_err(query("recordings_in_flight"))?;
        let r = rows.first().ok_or_else(|| query("recordings_in_flight")(sqlx::Error::RowNotFound))?;
        Ok((
            r.int("recording").map_err(query("recordings_in_flight"))?,
            r.int("queued").map_err(query("recordings_in_flight"))?,
        ))
    }
}
