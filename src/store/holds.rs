//! Legal holds on recordings, with the two-person rule for releases.
//!
//! A hold is one `legal_holds` row: `active` when set, `release_requested`
//! when a first user asks to release it, `released` when a second,
//! different user confirms. A recording has at most one open (not
//! released) hold; after a release a new hold may be set. Nothing is ever
//! deleted, and a hold only moves forward (the schema refuses anything
//! else, and refuses a release confirmed by the user who requested it).
//!
//! The store keeps the database side only: the caller sets or lifts the
//! archive object's legal hold and appends the audit events
//! (`hold.set`, `hold.release_requested`, `hold.released`).

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::error::{Violation, query, violation};
use super::{Backend, Store, StoreError, ms};
use crate::audit::time_text;

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldState {
    /// Set; the recording is held.
    Active,
    /// A first user asked to release it; still held.
    ReleaseRequested,
    /// A second user confirmed; no longer held.
    Released,
}

impl HoldState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Active => "active",
            HoldState::ReleaseRequested => "release_requested",
            HoldState::Released => "released",
        }
    }

    /// The state of a stored name.
    pub fn from_name(s: &str) -> Option<HoldState> {
        match s {
            "active" => Some(HoldState::Active),
            "release_requested" => Some(HoldState::ReleaseRequested),
            "released" => Some(HoldState::Released),
            _ => None,
        }
    }
}

impl fmt::Display for HoldState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for HoldState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A legal hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRow {
    /// The hold's id.
    pub id: Uuid,
    /// The recording held.
    pub recording_id: Uuid,
    /// Where it stands.
    pub state: HoldState,
    /// Who set it.
    pub set_by: String,
    /// Why.
    pub set_reason: String,
    /// When.
    pub set_at: DateTime<Utc>,
    /// Who asked to release it.
    pub requested_by: Option<String>,
    /// Why.
    pub request_reason: Option<String>,
    /// When.
    pub requested_at: Option<DateTime<Utc>>,
    /// Who confirmed the release (never the requester).
    pub released_by: Option<String>,
    /// When.
    pub released_at: Option<DateTime<Utc>>,
}

/// What [`Store::release_hold`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStep {
    /// The first user's request: the hold still holds, waiting for a
    /// second user.
    Requested(HoldRow),
    /// A second, different user confirmed: the hold is released.
    Released(HoldRow),
}

const COLUMNS: &str = "id, recording_id, state, set_by, set_reason, set_at, requested_by, request_reason, \
     requested_at, released_by, released_at";
const INSERT: &str = "INSERT INTO legal_holds (id, recording_id, state, set_by, set_reason, set_at) \
     VALUES ($1, $2, 'active', $3, $4, $5)";
const REQUEST: &str = "UPDATE legal_holds SET state = 'release_requested', requested_by = $2, \
     request_reason = $3, requested_at = $4 WHERE id = $1 AND state = 'active'";
const CONFIRM: &str = "UPDATE legal_holds SET state = 'released', released_by = $2, released_at = $3 \
     WHERE id = $1 AND state = 'release_requested' AND requested_by <> $2";

fn open_hold_sql() -> String {
    format!("SELECT {COLUMNS} FROM legal_holds WHERE recording_id = $1 AND state <> 'released'")
}
fn holds_sql() -> String {
    format!("SELECT {COLUMNS} FROM legal_holds WHERE recording_id = $1 ORDER BY set_at, id")
}

impl Store {
    /// Puts recording `recording` under a new legal hold set by `user` for
    /// `reason`. A recording already under an open hold is
    /// [`StoreError::Conflict`]; an unknown recording
    /// [`StoreError::NotFound`].
    pub async fn set_hold(
        &self,
        recording: Uuid,
        user: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<HoldRow, StoreError> {
        if user.is_empty() {
            return Err(StoreError::Invalid { what: "user (empty)" });
        }
        // NotFound for an unknown recording (no foreign key: see the migration)
        self.get_recording(recording).await?;
        let id = Uuid::now_v7();
        let at = ms(at);
        let r = match &self.backend {
            Backend::Sqlite(b) => sqlx::query(INSERT)
                .bind(id.hyphenated().to_string())
                .bind(recording.hyphenated().to_string())
                .bind(user)
                .bind(reason)
                .bind(time_text(at))
                .execute(&b.writer)
                .await
                .map(|r| r.rows_affected()),
            Backend::Postgres(b) => sqlx::query(INSERT)
                .bind(id)
                .bind(recording)
                .bind(user)
                .bind(reason)
                .bind(at)
                .execute(&b.pool)
                .await
                .map(|r| r.rows_affected()),
        };
        match r {
            Ok(_) => {}
            Err(e) => {
                return Err(match violation(&e) {
                    Violation::ForeignKey => StoreError::NotFound { what: "recording", id: recording },
                    Violation::Unique => {
                        StoreError::Conflict { what: "recording already under legal hold", id: recording }
                    }
                    Violation::Other => query("set_hold")(e),
                });
            }
        }
        self.open_hold(recording).await?.ok_or(StoreError::NotFound { what: "legal hold", id: recording })
    }

    /// The recording's open hold (`active` or `release_requested`), if any.
    pub async fn open_hold(&self, recording: Uuid) -> Result<Option<HoldRow>, StoreError> {
        Ok(self.fetch_holds(&open_hold_sql(), recording, "open_hold").await?.into_iter().next())
    }

    /// Every hold the recording ever had, oldest first.
    pub async fn holds(&self, recording: Uuid) -> Result<Vec<HoldRow>, StoreError> {
        self.fetch_holds(&holds_sql(), recording, "holds").await
    }

    /// One step of releasing the recording's open hold, by `user`:
    /// - the hold is `active`: `user` requests the release
    ///   ([`ReleaseStep::Requested`]; the hold still holds);
    /// - the release was requested by someone else: `user` confirms it
    ///   ([`ReleaseStep::Released`]);
    /// - the release was requested by `user`: [`StoreError::Conflict`] —
    ///   the two-person rule; nothing changes.
    ///
    /// No open hold is [`StoreError::NotFound`].
    pub async fn release_hold(
        &self,
        recording: Uuid,
        user: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<ReleaseStep, StoreError> {
        if user.is_empty() {
            return Err(StoreError::Invalid { what: "user (empty)" });
        }
        let at = ms(at);
        let hold = self
            .open_hold(recording)
            .await?
            .ok_or(StoreError::NotFound { what: "legal hold on recording", id: recording })?;
        let requested = match hold.state {
            HoldState::Active => true,
            HoldState::ReleaseRequested if hold.requested_by.as_deref() == Some(user) => {
                return Err(StoreError::Conflict {
                    what: "two-person rule: the release must be confirmed by a different user",
                    id: recording,
                });
            }
            HoldState::ReleaseRequested => false,
            HoldState::Released => unreachable!("open_hold returns no released hold"),
        };
        let n = match (&self.backend, requested) {
            (Backend::Sqlite(b), true) => sqlx::query(REQUEST)
                .bind(hold.id.hyphenated().to_string())
                .bind(user)
                .bind(reason)
                .bind(time_text(at))
                .execute(&b.writer)
                .await
                .map(|r| r.rows_affected()),
            (Backend::Sqlite(b), false) => sqlx::query(CONFIRM)
                .bind(hold.id.hyphenated().to_string())
                .bind(user)
                .bind(time_text(at))
                .execute(&b.writer)
                .await
                .map(|r| r.rows_affected()),
            (Backend::Postgres(b), true) => sqlx::query(REQUEST)
                .bind(hold.id)
                .bind(user)
                .bind(reason)
                .bind(at)
                .execute(&b.pool)
                .await
                .map(|r| r.rows_affected()),
            (Backend::Postgres(b), false) => sqlx::query(CONFIRM)
                .bind(hold.id)
                .bind(user)
                .bind(at)
                .execute(&b.pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(query("release_hold"))?;
        if n == 0 {
            return Err(StoreError::Conflict {
                what: "legal hold changed meanwhile; try again",
                id: recording,
            });
        }
        let row = self
            .holds(recording)
            .await?
            .into_iter()
            .find(|h| h.id == hold.id)
            .ok_or(StoreError::NotFound { what: "legal hold", id: recording })?;
        Ok(if requested { ReleaseStep::Requested(row) } else { ReleaseStep::Released(row) })
    }

    async fn fetch_holds(
        &self,
        sql: &str,
        recording: Uuid,
        op: &'static str,
    ) -> Result<Vec<HoldRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match &self.backend {
            Backend::Sqlite(b) => {
                let rows = sqlx::query(sql)
                    .bind(recording.hyphenated().to_string())
                    .fetch_all(&b.reader)
                    .await
                    .map_err(query(op))?;
                rows.iter().map(sqlite_hold).collect::<Result<Vec<_>, _>>()
            }
            Backend::Postgres(b) => {
                let rows = sqlx::query(sql).bind(recording).fetch_all(&b.pool).await.map_err(query(op))?;
                rows.iter().map(pg_hold).collect::<Result<Vec<_>, _>>()
            }
        }
        .map_err(query(op))
    }
}

fn bad(column: &str, what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("column {column}: {what}").into())
}

fn state(s: &str) -> Result<HoldState, sqlx::Error> {
    HoldState::from_name(s).ok_or_else(|| bad("state", "unknown hold state"))
}

fn sqlite_hold(r: &sqlx::sqlite::SqliteRow) -> Result<HoldRow, sqlx::Error> {
    let id = |c: &str| -> Result<Uuid, sqlx::Error> {
        let t: String = r.try_get(c)?;
        Uuid::parse_str(&t).map_err(|_| bad(c, "not a UUID"))
    };
    let time = |c: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let t: Option<String> = r.try_get(c)?;
        t.map(|t| {
            DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)).map_err(|_| bad(c, "not a time"))
        })
        .transpose()
    };
    let st: String = r.try_get("state")?;
    Ok(HoldRow {
        id: id("id")?,
        recording_id: id("recording_id")?,
        state: state(&st)?,
        set_by: r.try_get("set_by")?,
        set_reason: r.try_get("set_reason")?,
        set_at: time("set_at")?.ok_or_else(|| bad("set_at", "missing"))?,
        requested_by: r.try_get("requested_by")?,
        request_reason: r.try_get("request_reason")?,
        requested_at: time("requested_at")?,
        released_by: r.try_get("released_by")?,
        released_at: time("released_at")?,
    })
}

fn pg_hold(r: &sqlx::postgres::PgRow) -> Result<HoldRow, sqlx::Error> {
    let st: String = r.try_get("state")?;
    Ok(HoldRow {
        id: r.try_get("id")?,
        recording_id: r.try_get("recording_id")?,
        state: state(&st)?,
        set_by: r.try_get("set_by")?,
        set_reason: r.try_get("set_reason")?,
        set_at: r.try_get("set_at")?,
        requested_by: r.try_get("requested_by")?,
        request_reason: r.try_get("request_reason")?,
        requested_at: r.try_get("requested_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
    })
}
