//! The PostgreSQL backend: for several daemons sharing one trace.
//!
//! Ids are `uuid`, times `timestamptz`, counters `bigint`. Every write is a
//! single statement whose WHERE clause holds its precondition, so
//! concurrent daemons need no explicit locking here; the migrator takes an
//! advisory lock, so daemons starting together migrate once.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, migrate::Migrator};
use uuid::Uuid;

use super::model::{
    ArchiveRecord, Archived, CallRow, Leg, NewCall, NewRecording, RecordingRow, SideCounters, UploadJob,
};
use super::{DbError, Seal, StoreError, sql};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per daemon.
const CONNECTIONS: u32 = 8;
/// How long a statement waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database behind a connection pool.
#[derive(Clone)]
pub(super) struct PgStore {
    pub(super) pool: PgPool,
}

impl PgStore {
    /// Connects (one connection at once, so a wrong URL fails here) and
    /// migrates.
    pub(super) async fn open(url: &str, shown: &str) -> Result<PgStore, StoreError> {
        let open_err =
            |e: sqlx::Error| StoreError::Open { url: shown.to_string(), source: DbError::from(&e) };
        let opts = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate { url: shown.to_string(), source: DbError::from(&e) })?;
        Ok(PgStore { pool })
    }

    /// Closes the pool.
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn insert_call(&self, c: &NewCall, instance: Option<&str>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::INSERT_CALL)
            .bind(c.id)
            .bind(c.task_id.as_deref())
            .bind(c.client_id.as_deref())
            .bind(c.agent_uri.as_str())
            .bind(c.client_uri.as_str())
            .bind(c.started_at)
            .bind(c.kind.as_deref())
            .bind(instance)
            .bind(c.agent_id.as_deref())
            .bind(c.claimed_at)
            .execute(&self.pool)
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
        let r = sqlx::query(q).bind(call).bind(i32::from(status)).bind(at).execute(&self.pool).await?;
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
        let r = sqlx::query(q).bind(call).bind(at).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn mark_answered(&self, call: Uuid, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_ANSWERED).bind(call).bind(at).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn finish_call(
        &self,
        call: Uuid,
        outcome: &str,
        reason: Option<&str>,
        ended_at: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        finish_call_on(&self.pool, call, outcome, reason, ended_at).await
    }

    pub(super) async fn get_call(&self, call: Uuid) -> Result<Option<CallRow>, sqlx::Error> {
        sqlx::query(sql::GET_CALL)
            .bind(call)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| call_row(&row))
            .transpose()
    }

    pub(super) async fn open_calls_of(&self, instance: &str) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query(sql::OPEN_CALLS_OF)
            .bind(instance)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect()
    }

    pub(super) async fn open_calls(&self) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query(sql::OPEN_CALLS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect()
    }

    pub(super) async fn insert_recording(&self, r: &NewRecording) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(sql::INSERT_RECORDING)
            .bind(r.id)
            .bind(r.call_id)
            .bind(r.path.as_str())
            .bind(r.started_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn seal_recording(&self, s: &Seal<'_>) -> Result<u64, sqlx::Error> {
        seal_recording_on(&self.pool, s).await
    }

    pub(super) async fn get_recording(&self, id: Uuid) -> Result<Option<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::GET_RECORDING)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| recording_row(&row))
            .transpose()
    }

    pub(super) async fn recording_for_call(&self, call: Uuid) -> Result<Option<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::RECORDING_FOR_CALL)
            .bind(call)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| recording_row(&row))
            .transpose()
    }

    pub(super) async fn recordings_in_state(&self, state: &str) -> Result<Vec<RecordingRow>, sqlx::Error> {
        sqlx::query(sql::RECORDINGS_IN_STATE)
            .bind(state)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(recording_row)
            .collect()
    }
}

/// The FINISH_CALL statement on any connection or transaction (rows changed).
pub(super) async fn finish_call_on<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
    ex: E,
    call: Uuid,
    outcome: &str,
    reason: Option<&str>,
    ended_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(sql::FINISH_CALL)
        .bind(call)
        .bind(outcome)
        .bind(reason)
        .bind(ended_at)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}

/// The SEAL_RECORDING statement on any connection or transaction (rows changed).
pub(super) async fn seal_recording_on<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
    ex: E,
    s: &Seal<'_>,
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query(sql::SEAL_RECORDING)
        .bind(s.id)
        .bind(s.path)
        .bind(s.state)
        .bind(s.sha256)
        .bind(s.bytes)
        .bind(s.duration_ms)
        .bind(s.sealed_at);
    for n in s.counters {
        q = q.bind(n);
    }
    Ok(q.execute(ex).await?.rows_affected())
}

// ------------------------------------------------------------ the archive
impl PgStore {
    pub(super) async fn pending_uploads(&self, limit: i64) -> Result<Vec<UploadJob>, sqlx::Error> {
        sqlx::query(sql::PENDING_UPLOADS)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(upload_job)
            .collect()
    }

    pub(super) async fn record_upload_error(&self, id: Uuid, msg: &str) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::RECORD_UPLOAD_ERROR).bind(id).bind(msg).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn mark_archived(&self, id: Uuid, a: &Archived) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_ARCHIVED)
            .bind(id)
            .bind(a.key.as_str())
            .bind(a.manifest_key.as_str())
            .bind(a.version.as_deref())
            .bind(a.manifest_version.as_deref())
            .bind(a.retain_until)
            .bind(a.at)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn archived_not_removed(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
        sqlx::query(sql::ARCHIVED_NOT_REMOVED)
            .bind(older_than)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("path")?)))
            .collect()
    }

    pub(super) async fn mark_spool_removed(&self, id: Uuid, at: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let r = sqlx::query(sql::MARK_SPOOL_REMOVED).bind(id).bind(at).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn archive_record(&self, id: Uuid) -> Result<Option<ArchiveRecord>, sqlx::Error> {
        let Some(row) = sqlx::query(sql::ARCHIVE_RECORD).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let archived_at: Option<DateTime<Utc>> = row.try_get("archived_at")?;
        let archived = match archived_at {
            None => None,
            Some(at) => Some(Archived {
                key: row.try_get::<Option<String>, _>("archive_key")?.unwrap_or_default(),
                manifest_key: row.try_get::<Option<String>, _>("manifest_key")?.unwrap_or_default(),
                version: row.try_get("object_version")?,
                manifest_version: row.try_get("manifest_version")?,
                retain_until: row
                    .try_get::<Option<DateTime<Utc>>, _>("retain_until")?
                    .ok_or_else(|| bad("retain_until", "missing"))?,
                at,
            }),
        };
        Ok(Some(ArchiveRecord {
            recording_id: row.try_get("id")?,
            archived,
            upload_attempts: count(&row, "upload_attempts")?,
            last_upload_error: row.try_get("last_upload_error")?,
            spool_removed_at: row.try_get("spool_removed_at")?,
        }))
    }
}

fn upload_job(row: &PgRow) -> Result<UploadJob, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(UploadJob {
        recording_id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        path: row.try_get("path")?,
        state: super::RecordingState::from_name(&state)
            .ok_or_else(|| bad("state", "unknown recording state"))?,
        sha256: row.try_get::<Option<String>, _>("sha256")?.ok_or_else(|| bad("sha256", "missing"))?,
        bytes: opt_count(row, "bytes")?.ok_or_else(|| bad("bytes", "missing"))?,
        duration_ms: opt_count(row, "duration_ms")?.ok_or_else(|| bad("duration_ms", "missing"))?,
        recording_started_at: row.try_get("started_at")?,
        upload_attempts: count(row, "upload_attempts")?,
        task_id: row.try_get("task_id")?,
        client_id: row.try_get("client_id")?,
        agent_uri: row.try_get("agent_uri")?,
        agent_id: row.try_get("agent_id")?,
        client_uri: row.try_get("client_uri")?,
        kind: row.try_get("kind")?,
        call_started_at: row.try_get("call_started_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: row.try_get("outcome")?,
    })
}

fn bad(column: &str, what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("column {column}: {what}").into())
}

fn opt_status(row: &PgRow, column: &str) -> Result<Option<u16>, sqlx::Error> {
    let n: Option<i32> = row.try_get(column)?;
    n.map(|n| u16::try_from(n).map_err(|_| bad(column, "not a SIP status"))).transpose()
}

fn count(row: &PgRow, column: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = row.try_get(column)?;
    u64::try_from(n).map_err(|_| bad(column, "negative"))
}

fn opt_count(row: &PgRow, column: &str) -> Result<Option<u64>, sqlx::Error> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u64::try_from(n).map_err(|_| bad(column, "negative"))).transpose()
}

fn call_row(row: &PgRow) -> Result<CallRow, sqlx::Error> {
    Ok(CallRow {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        client_id: row.try_get("client_id")?,
        agent_uri: row.try_get("agent_uri")?,
        agent_id: row.try_get("agent_id")?,
        client_uri: row.try_get("client_uri")?,
        started_at: row.try_get("started_at")?,
        agent_invited_at: row.try_get("agent_invited_at")?,
        agent_status: opt_status(row, "agent_status")?,
        agent_status_at: row.try_get("agent_status_at")?,
        agent_ringing_at: row.try_get("agent_ringing_at")?,
        agent_answered_at: row.try_get("agent_answered_at")?,
        client_invited_at: row.try_get("client_invited_at")?,
        client_status: opt_status(row, "client_status")?,
        client_status_at: row.try_get("client_status_at")?,
        client_ringing_at: row.try_get("client_ringing_at")?,
        client_answered_at: row.try_get("client_answered_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: row.try_get("outcome")?,
        reason: row.try_get("reason")?,
        kind: row.try_get("kind")?,
        claimed_at: row.try_get("claimed_at")?,
    })
}

fn side(row: &PgRow, prefix: &str) -> Result<SideCounters, sqlx::Error> {
    Ok(SideCounters {
        packets: count(row, &format!("{prefix}_packets"))?,
        lost: count(row, &format!("{prefix}_lost"))?,
        late: count(row, &format!("{prefix}_late"))?,
        gaps: count(row, &format!("{prefix}_gaps"))?,
    })
}

fn recording_row(row: &PgRow) -> Result<RecordingRow, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(RecordingRow {
        id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        path: row.try_get("path")?,
        state: super::RecordingState::from_name(&state)
            .ok_or_else(|| bad("state", "unknown recording state"))?,
        sha256: row.try_get("sha256")?,
        bytes: opt_count(row, "bytes")?,
        duration_ms: opt_count(row, "duration_ms")?,
        started_at: row.try_get("started_at")?,
        sealed_at: row.try_get("sealed_at")?,
        agent: side(row, "agent")?,
        client: side(row, "client")?,
    })
}
