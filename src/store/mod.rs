//! The store: the database half of the trace (强制留痕).
//!
//! ## What it holds
//! - **`calls`** — one row per call attempt: who was dialled (agent and
//!   client URIs, task, client id), every leg's INVITE, ringing, answer and
//!   last SIP status with its time, when the conversation started, and the
//!   one terminal outcome with its reason.
//! - **`recordings`** — one row per recorded call: the file, its state
//!   (`recording` → `sealed` | `interrupted`), and once final its SHA-256,
//!   size, duration and per-side RTP counters.
//! - **People** (`users.rs`) — `users`, `web_sessions`, `api_tokens`,
//!   `login_throttle`: who may use the web door, and how.
//! - **Callback management** (`callbacks.rs`) — `clients`, `staff`,
//!   `events` (imported), `task_batches` and `tasks` (planned),
//!   `callback_records` and `follow_ups` (written by agents and reviewers).
//! - **`sip_bindings`** (`bindings.rs`) — the built-in registrar's bindings,
//!   so that a restarted `serve` still reaches the agents' softphones.
//!
//! The schema is in `migrations/sqlite/` and `migrations/postgres/`
//! (embedded in the binary, run by [`Store::open`]).
//!
//! ## The rules it enforces
//! - **E2 — every attempt leaves a trace and ends exactly once.**
//!   [`Store::finish_call`] sets the outcome only on a call that has none; a
//!   second finish is [`StoreError::Conflict`] and changes nothing. Outcomes
//!   outside [`OUTCOMES`] are refused. A call's identity and every "first"
//!   time are written once.
//! - **E3 — a sealed recording never changes.** [`Store::seal_recording`]
//!   moves a recording out of `recording` once; afterwards every change is
//!   [`StoreError::Conflict`].
//! - **E5 — nothing is deleted.** The store has no delete path.
//!
//! Each rule holds three times over: the store checks arguments, every
//! UPDATE carries its precondition in its WHERE clause, and the schema
//! repeats the rules as CHECK constraints and triggers, so that raw SQL
//! cannot break them either.
//!
//! ## When callers write what
//! 1. [`insert_call`](Store::insert_call) — before the first INVITE leaves,
//!    and awaited: no row, no call (E2).
//! 2. [`update_leg`](Store::update_leg) — with `None` when a leg's INVITE is
//!    sent, with `Some(status)` for each response that leg receives.
//! 3. [`insert_recording`](Store::insert_recording) — once the recorder has
//!    its file open, before the client is bridged (E1).
//! 4. [`mark_answered`](Store::mark_answered) — when the client is bridged:
//!    the conversation starts.
//! 5. [`seal_recording`](Store::seal_recording) — after the file is flushed,
//!    fsynced, hashed and renamed (E3); at start-up, for repaired files,
//!    with state `interrupted` (E4).
//! 6. [`finish_call`](Store::finish_call) — once, when both legs are down.
//!    At start-up, [`open_calls`](Store::open_calls) lists the calls a
//!    crash left open, to be finished as `interrupted`.
//!
//! ## Backends
//! SQLite (the embedded default; see `sqlite.rs` for its single-writer
//! discipline) and PostgreSQL (several daemons). Both run the same
//! statements (`sql.rs`) with runtime queries; sqlx's `Any` driver is not
//! used because it has no time or UUID types. Times are kept in UTC with
//! millisecond precision on both backends: the store truncates what it is
//! given, so a value reads back exactly as it will be stored.
//!
//! Phone URIs are personal data: they are stored, but never appear in a
//! [`StoreError`] or in the `Debug` output of [`NewCall`] and [`CallRow`].

mod archive;
mod audit;
mod bindings;
mod callbacks;
mod dburl;
mod dialer;
mod error;
mod feed;
mod holds;
mod model;
mod postgres;
mod spotcheck;
mod sql;
mod sqlite;
mod users;

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

pub use audit::{CallQuery, ClientCall};
pub use bindings::StoredBinding;
pub use callbacks::{
    BatchRow, FollowUpRow, ImportCounts, Importable, Importer, NewFollowUp, NewRecord, PlanCounts,
    RecordFilter, RecordRow, TaskFilter, TaskRow, Verdict,
};
pub use dburl::redact as redact_url;
pub use dialer::{
    AgentEvent, AgentSession, AttemptEnd, AttemptWritten, CallInProgress, ClaimResult, ClaimSpec, Claimed,
    DialerBeat, QueueDepth,
};
pub use error::{DbError, StoreError};
pub use feed::{FEED_CHANNEL, FeedListener, FeedNote, FeedRow};
pub use holds::{HoldRow, HoldState, ReleaseStep};
pub use model::{
    ArchiveRecord, Archived, CallRow, Leg, NewCall, NewRecording, OUTCOMES, RecordingRow, RecordingState,
    SealedRecording, SideCounters, UploadJob,
};
pub use spotcheck::{SpotCheckRow, SpotDraw};
pub use users::{SessionRow, Throttle, TokenRow, UserRow};

use dburl::Target;
use error::{Violation, query, violation};

/// The database: cheap to clone (clones share the connection pools).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The URL without its password, for `Debug`.
    shown: String,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Calls the same method on whichever backend the store has.
macro_rules! on_backend {
    ($store:expr, $method:ident ( $($arg:expr),* )) => {
        match &$store.backend {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

/// A validated [`SealedRecording`], as the backends bind it.
pub(crate) struct Seal<'a> {
    id: Uuid,
    path: &'a str,
    state: &'static str,
    sha256: &'a str,
    bytes: i64,
    duration_ms: i64,
    sealed_at: DateTime<Utc>,
    /// Agent packets, lost, late, gaps, then the same for the client.
    counters: [i64; 8],
}

impl<'a> Seal<'a> {
    /// Validates `s` (final state, SHA-256 form, counts) and converts it for
    /// binding.
    fn of(s: &'a SealedRecording) -> Result<Seal<'a>, StoreError> {
        if !s.state.is_final() {
            return Err(StoreError::Invalid {
                what: "recording state (a seal must be sealed or interrupted)",
            });
        }
        if !is_sha256_hex(&s.sha256) {
            return Err(StoreError::Invalid { what: "sha256 (64 lower-case hex digits)" });
        }
        let [a, c] = [s.agent, s.client];
        Ok(Seal {
            id: s.id,
            path: &s.path,
            state: s.state.as_str(),
            sha256: &s.sha256,
            bytes: to_i64(s.bytes)?,
            duration_ms: to_i64(s.duration_ms)?,
            sealed_at: ms(s.sealed_at),
            counters: [
                to_i64(a.packets)?,
                to_i64(a.lost)?,
                to_i64(a.late)?,
                to_i64(a.gaps)?,
                to_i64(c.packets)?,
                to_i64(c.lost)?,
                to_i64(c.late)?,
                to_i64(c.gaps)?,
            ],
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).field("url", &self.shown).finish()
    }
}

impl Store {
    /// Opens the database and runs the migrations.
    ///
    /// `url` is `sqlite://path/to/file.db` (the file and its parent
    /// directories are created if missing; a relative path is taken
    /// relative to the working directory, so resolve it first),
    /// `sqlite::memory:` (a private database that lives as long as the
    /// store), or `postgres://user@host:port/database`.
    ///
    /// Call once at start-up and share the store by cloning it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let target = dburl::parse(url).map_err(|reason| StoreError::Url { url: shown.clone(), reason })?;
        let backend = match target {
            Target::Postgres => Backend::Postgres(postgres::PgStore::open(url, &shown).await?),
            Target::SqliteFile(path) => {
                Backend::Sqlite(sqlite::SqliteStore::open(Some(&path), &shown).await?)
            }
            Target::SqliteMemory => Backend::Sqlite(sqlite::SqliteStore::open(None, &shown).await?),
        };
        Ok(Store { backend, shown })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the connections, waiting for statements in flight. Every
    /// clone of the store is closed; call at the very end of shutdown.
    pub async fn close(&self) {
        on_backend!(self, close())
    }

    /// Records a new call attempt, without an outcome. Await it before the
    /// first INVITE leaves (E2). An id already stored is
    /// [`StoreError::Conflict`].
    pub async fn insert_call(&self, c: &NewCall) -> Result<(), StoreError> {
        self.insert_call_by(c, None).await
    }

    /// [`insert_call`](Self::insert_call), naming the huifang instance that
    /// places the call (written once): start-up recovery closes only the
    /// open calls of its own instance ([`open_calls_of`](Self::open_calls_of)).
    pub async fn insert_call_by(&self, c: &NewCall, instance: Option<&str>) -> Result<(), StoreError> {
        let c = NewCall { started_at: ms(c.started_at), claimed_at: c.claimed_at.map(ms), ..c.clone() };
        match on_backend!(self, insert_call(&c, instance)) {
            Ok(_) => Ok(()),
            Err(e) if violation(&e) == Violation::Unique => {
                Err(StoreError::Conflict { what: "call already exists", id: c.id })
            }
            Err(e) => Err(query("insert_call")(e)),
        }
    }

    /// Records what a leg just did, at `at`:
    /// - `Some(status)` — the leg received a response. It becomes the leg's
    ///   last status; the first provisional above 100 (180/183) also sets the
    ///   leg's ringing time, the first 2xx its answer time. Statuses outside
    ///   100–699 are [`StoreError::Invalid`].
    /// - `None` — the leg's INVITE was sent (the first time is kept).
    ///
    /// Allowed after [`finish_call`](Self::finish_call) too, so that a late
    /// response (a 200 crossing a CANCEL) is still traced.
    pub async fn update_leg(
        &self,
        call: Uuid,
        leg: Leg,
        status: Option<u16>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = ms(at);
        let n = match status {
            Some(s) if !(100..=699).contains(&s) => {
                return Err(StoreError::Invalid { what: "SIP status" });
            }
            Some(s) => on_backend!(self, leg_status(call, leg, s, at)),
            None => on_backend!(self, leg_invited(call, leg, at)),
        }
        .map_err(query("update_leg"))?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "call", id: call });
        }
        Ok(())
    }

    /// Records that the conversation started at `at`: the client answered
    /// and was bridged to the agent with the recorder running. Once only,
    /// and only while the call has no outcome; otherwise
    /// [`StoreError::Conflict`] and nothing changes.
    pub async fn mark_answered(&self, call: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let n = on_backend!(self, mark_answered(call, ms(at))).map_err(query("mark_answered"))?;
        if n == 0 {
            let row = self.get_call(call).await?;
            let what =
                if row.outcome.is_some() { "call already has an outcome" } else { "call already answered" };
            return Err(StoreError::Conflict { what, id: call });
        }
        Ok(())
    }

    /// Sets the call's terminal outcome (one of [`OUTCOMES`]), its reason
    /// (final SIP status or local cause) and its end time — exactly once
    /// (E2): a second finish of the same call returns
    /// [`StoreError::Conflict`] and changes nothing. An unknown outcome is
    /// [`StoreError::Invalid`].
    pub async fn finish_call(
        &self,
        call: Uuid,
        outcome: &str,
        reason: Option<&str>,
        ended_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !OUTCOMES.contains(&outcome) {
            return Err(StoreError::Invalid { what: "outcome" });
        }
        let n = on_backend!(self, finish_call(call, outcome, reason, ms(ended_at)))
            .map_err(query("finish_call"))?;
        if n == 0 {
            return Err(self.finish_refused(call).await);
        }
        Ok(())
    }

    /// The call's row, or [`StoreError::NotFound`].
    pub async fn get_call(&self, call: Uuid) -> Result<CallRow, StoreError> {
        on_backend!(self, get_call(call))
            .map_err(query("get_call"))?
            .ok_or(StoreError::NotFound { what: "call", id: call })
    }

    /// Calls without an outcome, oldest first. At start-up, before any call
    /// is placed, these are the calls a crash interrupted: finish each as
    /// `interrupted`.
    pub async fn open_calls(&self) -> Result<Vec<Uuid>, StoreError> {
        on_backend!(self, open_calls()).map_err(query("open_calls"))
    }

    /// Calls without an outcome placed by `instance` (or by no named
    /// instance), oldest first: what start-up recovery closes when several
    /// instances share the database.
    pub async fn open_calls_of(&self, instance: &str) -> Result<Vec<Uuid>, StoreError> {
        on_backend!(self, open_calls_of(instance)).map_err(query("open_calls_of"))
    }

    /// Records a recording in state `recording`, its file in the spool's
    /// `recording/` directory. Await it before the client is bridged (E1).
    /// A call has at most one recording: a second one, or an id already
    /// stored, is [`StoreError::Conflict`]; an unknown call is
    /// [`StoreError::NotFound`].
    pub async fn insert_recording(&self, r: &NewRecording) -> Result<(), StoreError> {
        let r = NewRecording { started_at: ms(r.started_at), ..r.clone() };
        match on_backend!(self, insert_recording(&r)) {
            Ok(_) => Ok(()),
            Err(e) => match violation(&e) {
                Violation::ForeignKey => Err(StoreError::NotFound { what: "call", id: r.call_id }),
                Violation::Unique => match self.get_recording(r.id).await {
                    Ok(_) => Err(StoreError::Conflict { what: "recording already exists", id: r.id }),
                    Err(_) => {
                        Err(StoreError::Conflict { what: "call already has a recording", id: r.call_id })
                    }
                },
                Violation::Other => Err(query("insert_recording")(e)),
            },
        }
    }

    /// Writes what sealing found — path, SHA-256 (64 lower-case hex
    /// digits), size, duration, per-side counters — and moves the recording
    /// to `s.state` (`Sealed` or `Interrupted`; `Recording` is
    /// [`StoreError::Invalid`]). Only from state `recording`: a sealed or
    /// interrupted recording never changes again (E3), so a second seal is
    /// [`StoreError::Conflict`] and changes nothing.
    pub async fn seal_recording(&self, s: &SealedRecording) -> Result<(), StoreError> {
        let seal = Seal::of(s)?;
        let n = on_backend!(self, seal_recording(&seal)).map_err(query("seal_recording"))?;
        if n == 0 {
            return Err(self.seal_refused(s.id).await);
        }
        Ok(())
    }

    /// Why a seal of recording `id` changed no row: [`StoreError::NotFound`]
    /// or [`StoreError::Conflict`].
    pub(crate) async fn seal_refused(&self, id: Uuid) -> StoreError {
        match self.get_recording(id).await {
            Ok(_) => StoreError::Conflict { what: "recording is already sealed or interrupted", id },
            Err(e) => e,
        }
    }

    /// Why finishing call `call` changed no row: [`StoreError::NotFound`] or
    /// [`StoreError::Conflict`].
    pub(crate) async fn finish_refused(&self, call: Uuid) -> StoreError {
        match self.get_call(call).await {
            Ok(_) => StoreError::Conflict { what: "call already has an outcome", id: call },
            Err(e) => e,
        }
    }

    /// The recording's row, or [`StoreError::NotFound`].
    pub async fn get_recording(&self, id: Uuid) -> Result<RecordingRow, StoreError> {
        on_backend!(self, get_recording(id))
            .map_err(query("get_recording"))?
            .ok_or(StoreError::NotFound { what: "recording", id })
    }

    /// The call's recording, if it has one.
    pub async fn recording_for_call(&self, call: Uuid) -> Result<Option<RecordingRow>, StoreError> {
        on_backend!(self, recording_for_call(call)).map_err(query("recording_for_call"))
    }

    /// Recordings in `state` (`recording`, `sealed` or `interrupted`),
    /// oldest first; another name is [`StoreError::Invalid`]. Meant for the
    /// short lists (`recording` at start-up); every row is loaded.
    pub async fn recordings_in_state(&self, state: &str) -> Result<Vec<RecordingRow>, StoreError> {
        let state =
            RecordingState::from_name(state).ok_or(StoreError::Invalid { what: "recording state" })?;
        on_backend!(self, recordings_in_state(state.as_str())).map_err(query("recordings_in_state"))
    }
}

/// `t` truncated to whole milliseconds: the precision both backends keep.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// A count as the databases store it (signed 64 bits).
fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Invalid { what: "count (above 2^63 - 1)" })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_truncate_to_milliseconds() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 14, 44, 53).unwrap()
            + chrono::Duration::nanoseconds(123_999_999);
        assert_eq!(ms(t).timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(ms(ms(t)), ms(t));
    }

    #[test]
    fn sha256_must_be_lower_case_hex() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(31)));
        assert!(!is_sha256_hex(&"zz".repeat(32)));
    }

    #[test]
    fn counts_above_i64_are_invalid() {
        assert_eq!(to_i64(5).unwrap(), 5);
        assert!(matches!(to_i64(u64::MAX), Err(StoreError::Invalid { .. })));
    }

    #[test]
    fn outcome_list_matches_the_schema() {
        for dir in ["migrations/sqlite", "migrations/postgres"] {
            let path =
                format!("{}/{dir}/20261127000000_calls_and_recordings.sql", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            for o in OUTCOMES {
                assert!(text.contains(&format!("'{o}'")), "{o} missing in {path}");
            }
        }
    }

    #[tokio::test]
    async fn memory_store_opens_and_debug_hides_nothing_secret() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        assert!(store.open_calls().await.unwrap().is_empty());
        assert_eq!(format!("{store:?}"), r#"Store { backend: "sqlite", url: "sqlite::memory:" }"#);
        store.close().await;
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_their_password() {
        let e = Store::open("mysql://u:hunter2@h/db").await.unwrap_err();
        assert!(matches!(e, StoreError::Url { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
