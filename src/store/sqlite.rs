//! The SQLite backend: the embedded default.
//!
//! One file in WAL mode with `synchronous = FULL` (a committed trace
//! survives a power cut, E4). Writes go through a pool of exactly one
//! connection, so writers of this process queue in the pool and never
//! meet SQLite's "database is locked"; reads go through their own small pool
//! and, thanks to WAL, never wait for the writer. Every write is a single
//! autocommit statement; a writer in another process (a CLI command on the
//! same file) is waited for by the busy timeout. Should a write ever need
//! several statements, open it with `BEGIN IMMEDIATE`
//! (`writer.begin_with("BEGIN IMMEDIATE")`) so that the write lock is
//! taken up front instead of failing at the upgrade.
//!
//! Ids are stored as hyphenated lower-case text, times as RFC 3339 UTC text
//! with milliseconds (`2026-11-27T14:44:53.123Z`), so text order is time
//! order.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, migrate::Migrator};
use uuid::Uuid;

use super::model::{
    ArchiveRecord, Archived, CallRow, Leg, NewCall, NewRecording, RecordingRow, SideCounters, UploadJob,
};
use super::{DbError, Seal, StoreError, sql};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Reader connections (WAL lets them run beside the writer).
const READERS: u32 = 4;

/// A SQLite database: one writer connection, a few readers.
#[derive(Clone)]
pub(super) struct SqliteStore {
    pub(super) writer: SqlitePool,
    pub(super) reader: SqlitePool,
}

/// The text form of a time: RFC 3339, UTC, milliseconds, `Z`.
pub(super) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database in `file`, or
    /// a private in-memory one for `None`.
    pub(super) async fn open(file: Option<&Path>, shown: &str) -> Result<SqliteStore, StoreError> {
        let open_err =
            |e: &sqlx::Error| StoreError::Open { url: shown.to_string(), source: DbError::from(e) };
        // A single connection that never closes: for `:memory:` it *is* the
        // database; for a file it is the one writer.
        let single = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        let store = match file {
            None => {
                let opts = SqliteConnectOptions::from_str("sqlite::memory:")
                    .map_err(|e| open_err(&e))?
                    .foreign_keys(true);
                let pool = single().connect_with(opts).await.map_err(|e| open_err(&e))?;
                SqliteStore { writer: pool.clone(), reader: pool }
            }
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(|e| StoreError::Open {
                        url: shown.to_string(),
                        source: DbError::msg(format!("cannot create its directory: {e}")),
                    })?;
                }
                let base =
                    SqliteConnectOptions::new().filename(path).foreign_keys(true).busy_timeout(BUSY_TIMEOUT);
                let writer = single()
                    .connect_with(
                        base.clone()
                            .create_if_missing(true)
                            .journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Full),
                    )
                    .await
                    .map_err(|e| open_err(&e))?;
                // WAL is a property of the file, set by the writer above;
                // readers leave journal_mode alone (changing it needs a lock
                // the busy timeout cannot wait for).
                let reader = SqlitePoolOptions::new().max_connections(READERS).connect_lazy_with(base);
                SqliteStore { writer, reader }
            }
        };
        MIGRATOR
            .run(&store.writer)
            .await
            .map_err(|e| StoreError::Migrate { url: shown.to_string(), source: DbError::from(&e) })?;
        Ok(store)
    }

    /// Closes both pools (checkpoints the WAL when the last connection goes).
    pub(super) async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(super) async fn insert_call(&self, c: &NewCall, instance: Option<&str>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::INSERT_CALL)
            .bind(id_text(c.id))
            .bind(c.task_id.as_deref())
            .bind(c.client_id.as_deref())
            .bind(c.agent_uri.as_str())
            .bind(c.client_uri.as_str())
            .bind(time_text(c.started_at))
            .bind(c.kind.as_deref())
            .bind(instance)
            .bind(c.agent_id.as_deref())
            .bind(c.claimed_at.map(time_text))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn leg_status(
        &self,
        call: Uuid,
        leg: Leg,
        status: u16,
        at: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        let q = match leg {
            Leg::Agent => sql::AGENT_STATUS,
            Leg::Client => sql::CLIENT_STATUS,
        };
        let r = sqlx::query(q)
            .bind(id_text(call))
            .bind(i64::from(status))
            .bind(time_text(at))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn leg_invited(
        &self,
        call: Uuid,
        leg: Leg,
        at: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        let q = match leg {
            Leg::Agent => sql::AGENT_INVITED,
            Leg::Client => sql::CLIENT_INVITED,
        };
        let r = sqlx::query(q).bind(id_text(call)).bind(time_text(at)).execute(&self.writer).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn mark_answered(&self, call: Uuid, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_ANSWERED)
            .bind(id_text(call))
            .bind(time_text(at))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn finish_call(
        &self,
        call: Uuid,
        outcome: &str,
        reason: Option<&str>,
        ended_at: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        finish_call_on(&self.writer, call, outcome, reason, ended_at).await
    }

    pub(super) async fn get_call(&self, call: Uuid) -> Result<Option<CallRow>, sqlx::Error> {
        sqlx::query(sql::GET_CALL)
            .bind(id_text(call))
            .fetch_optional(&self.reader)
            .await?
            .map(|row| call_row(&row))
            .transpose()
    }

    pub(super) async fn open_calls_of(&self, instance: &str) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query(sql::OPEN_CALLS_OF)
            .bind(instance)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| uuid(row, "id"))
            .collect()
    }

    pub(super) async fn open_calls(&self) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query(sql::OPEN_CALLS)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| uuid(row, "id"))
            .collect()
    }

    pub(super) async fn insert_recording(&self, r: &NewRecording) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(sql::INSERT_RECORDING)
            .bind(id_text(r.id))
            .bind(id_text(r.call_id))
            .bind(r.path.as_str())
            .bind(time_text(r.started_at))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn seal_recording(&self, s: &Seal<'_>) -> Result<u64, sqlx::Error> {
        seal_recording_on(&self.writer, s).await
    }

    pub(super) async fn get_recording(&self, id: Uuid) -> Result<Option<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::GET_RECORDING)
            .bind(id_text(id))
            .fetch_optional(&self.reader)
            .await?
            .map(|row| recording_row(&row))
            .transpose()
    }

    pub(super) async fn recording_for_call(&self, call: Uuid) -> Result<Option<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::RECORDING_FOR_CALL)
            .bind(id_text(call))
            .fetch_optional(&self.reader)
            .await?
            .map(|row| recording_row(&row))
            .transpose()
    }

    pub(super) async fn recordings_in_state(&self, state: &str) -> Result<Vec<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::RECORDINGS_IN_STATE)
            .bind(state)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(recording_row)
            .collect()
    }
}

/// The FINISH_CALL statement on any connection or transaction (rows changed).
pub(super) async fn finish_call_on<'e, E: sqlx::Executor<'e, Database = sqlx::Sqlite>>(
    ex: E,
    call: Uuid,
    outcome: &str,
    reason: Option<&str>,
    ended_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(sql::FINISH_CALL)
        .bind(id_text(call))
        .bind(outcome)
        .bind(reason)
        .bind(time_text(ended_at))
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}

/// The SEAL_RECORDING statement on any connection or transaction (rows changed).
pub(super) async fn seal_recording_on<'e, E: sqlx::Executor<'e, Database = sqlx::Sqlite>>(
    ex: E,
    s: &Seal<'_>,
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query(sql::SEAL_RECORDING)
        .bind(id_text(s.id))
        .bind(s.path)
        .bind(s.state)
        .bind(s.sha256)
        .bind(s.bytes)
        .bind(s.duration_ms)
        .bind(time_text(s.sealed_at));
    for n in s.counters {
        q = q.bind(n);
    }
    Ok(q.execute(ex).await?.rows_affected())
}

// ------------------------------------------------------------ the archive
impl SqliteStore {
    pub(super) async fn pending_uploads(&self, limit: i64) -> Result<Vec<UploadJob>, sqlx::Error> {
        sqlx::query(sql::PENDING_UPLOADS)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(upload_job)
            .collect()
    }

    pub(super) async fn record_upload_error(&self, id: Uuid, msg: &str) -> Result<u64, sqlx::Error> {
        let r =
            sqlx::query(sql::RECORD_UPLOAD_ERROR).bind(id_text(id)).bind(msg).execute(&self.writer).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn mark_archived(&self, id: Uuid, a: &Archived) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_ARCHIVED)
            .bind(id_text(id))
            .bind(a.key.as_str())
            .bind(a.manifest_key.as_str())
            .bind(a.version.as_deref())
            .bind(a.manifest_version.as_deref())
            .bind(time_text(a.retain_until))
            .bind(time_text(a.at))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn archived_not_removed(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
        sqlx::query(sql::ARCHIVED_NOT_REMOVED)
            .bind(time_text(older_than))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| Ok((uuid(row, "id")?, row.try_get("path")?)))
            .collect()
    }

    pub(super) async fn mark_spool_removed(&self, id: Uuid, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_SPOOL_REMOVED)
            .bind(id_text(id))
            .bind(time_text(at))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn archive_record(&self, id: Uuid) -> Result<Option<ArchiveRecord>, sqlx::Error> {
        let Some(row) =
            sqlx::query(sql::ARCHIVE_RECORD).bind(id_text(id)).fetch_optional(&self.reader).await?
        else {
            return Ok(None);
        };
        let archived = match opt_time(&row, "archived_at")? {
            None => None,
            Some(at) => Some(Archived {
                key: row.try_get::<Option<String>, _>("archive_key")?.unwrap_or_default(),
                manifest_key: row.try_get::<Option<String>, _>("manifest_key")?.unwrap_or_default(),
                version: row.try_get("object_version")?,
                manifest_version: row.try_get("manifest_version")?,
                retain_until: opt_time(&row, "retain_until")?
                    .ok_or_else(|| bad("retain_until", "missing"))?,
                at,
            }),
        };
        Ok(Some(ArchiveRecord {
            recording_id: uuid(&row, "id")?,
            archived,
            upload_attempts: count(&row, "upload_attempts")?,
            last_upload_error: row.try_get("last_upload_error")?,
            spool_removed_at: opt_time(&row, "spool_removed_at")?,
        }))
    }
}

fn upload_job(row: &SqliteRow) -> Result<UploadJob, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(UploadJob {
        recording_id: uuid(row, "id")?,
        call_id: uuid(row, "call_id")?,
        path: row.try_get("path")?,
        state: super::RecordingState::from_name(&state)
            .ok_or_else(|| bad("state", "unknown recording state"))?,
        sha256: row.try_get::<Option<String>, _>("sha256")?.ok_or_else(|| bad("sha256", "missing"))?,
        bytes: opt_count(row, "bytes")?.ok_or_else(|| bad("bytes", "missing"))?,
        duration_ms: opt_count(row, "duration_ms")?.ok_or_else(|| bad("duration_ms", "missing"))?,
        recording_started_at: time(row, "started_at")?,
        upload_attempts: count(row, "upload_attempts")?,
        task_id: row.try_get("task_id")?,
        client_id: row.try_get("client_id")?,
        agent_uri: row.try_get("agent_uri")?,
        agent_id: row.try_get("agent_id")?,
        client_uri: row.try_get("client_uri")?,
        kind: row.try_get("kind")?,
        call_started_at: time(row, "call_started_at")?,
        answered_at: opt_time(row, "answered_at")?,
        ended_at: opt_time(row, "ended_at")?,
        outcome: row.try_get("outcome")?,
    })
}

fn bad(column: &str, what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("column {column}: {what}").into())
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|_| bad(column, "not a UUID"))
}

fn parse_time(column: &str, text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(column, "not an RFC 3339 time"))
}

fn time(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    parse_time(column, &text)
}

fn opt_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse_time(column, &t)).transpose()
}

fn opt_status(row: &SqliteRow, column: &str) -> Result<Option<u16>, sqlx::Error> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u16::try_from(n).map_err(|_| bad(column, "not a SIP status"))).transpose()
}

fn count(row: &SqliteRow, column: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = row.try_get(column)?;
    u64::try_from(n).map_err(|_| bad(column, "negative"))
}

fn opt_count(row: &SqliteRow, column: &str) -> Result<Option<u64>, sqlx::Error> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u64::try_from(n).map_err(|_| bad(column, "negative"))).transpose()
}

fn call_row(row: &SqliteRow) -> Result<CallRow, sqlx::Error> {
    Ok(CallRow {
        id: uuid(row, "id")?,
        task_id: row.try_get("task_id")?,
        client_id: row.try_get("client_id")?,
        agent_uri: row.try_get("agent_uri")?,
        agent_id: row.try_get("agent_id")?,
        client_uri: row.try_get("client_uri")?,
        started_at: time(row, "started_at")?,
        agent_invited_at: opt_time(row, "agent_invited_at")?,
        agent_status: opt_status(row, "agent_status")?,
        agent_status_at: opt_time(row, "agent_status_at")?,
        agent_ringing_at: opt_time(row, "agent_ringing_at")?,
        agent_answered_at: opt_time(row, "agent_answered_at")?,
        client_invited_at: opt_time(row, "client_invited_at")?,
        client_status: opt_status(row, "client_status")?,
        client_status_at: opt_time(row, "client_status_at")?,
        client_ringing_at: opt_time(row, "client_ringing_at")?,
        client_answered_at: opt_time(row, "client_answered_at")?,
        answered_at: opt_time(row, "answered_at")?,
        ended_at: opt_time(row, "ended_at")?,
        outcome: row.try_get("outcome")?,
        reason: row.try_get("reason")?,
        kind: row.try_get("kind")?,
        claimed_at: opt_time(row, "claimed_at")?,
    })
}

fn side(row: &SqliteRow, prefix: &str) -> Result<SideCounters, sqlx::Error> {
    Ok(SideCounters {
        packets: count(row, &format!("{prefix}_packets"))?,
        lost: count(row, &format!("{prefix}_lost"))?,
        late: count(row, &format!("{prefix}_late"))?,
        gaps: count(row, &format!("{prefix}_gaps"))?,
    })
}

fn recording_row(row: &SqliteRow) -> Result<RecordingRow, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(RecordingRow {
        id: uuid(row, "id")?,
        call_id: uuid(row, "call_id")?,
        path: row.try_get("path")?,
        state: super::RecordingState::from_name(&state)
            .ok_or_else(|| bad("state", "unknown recording state"))?,
        sha256: row.try_get("sha256")?,
        bytes: opt_count(row, "bytes")?,
        duration_ms: opt_count(row, "duration_ms")?,
        started_at: time(row, "started_at")?,
        sealed_at: opt_time(row, "sealed_at")?,
        agent: side(row, "agent")?,
        client: side(row, "client")?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_rfc3339_utc_millis() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 14, 44, 53).unwrap() + chrono::Duration::milliseconds(7);
        assert_eq!(time_text(t), "2026-11-27T14:44:53.007Z");
        assert_eq!(parse_time("t", &time_text(t)).unwrap(), t);
    }
}
