//! The statements, shared by both backends. They use `$n` placeholders,
//! which SQLite reads as numbered parameters too; only the bound types
//! differ (SQLite binds ids and times as text, PostgreSQL as uuid and
//! timestamptz). Every UPDATE carries its own precondition in the WHERE
//! clause, so a refused change touches no row and needs no transaction.

/// Columns of a [`CallRow`](super::CallRow), in the order both decoders read.
macro_rules! call_columns {
    () => {
        "id, task_id, client_id, agent_uri, client_uri, started_at, \
         agent_invited_at, agent_status, agent_status_at, agent_ringing_at, agent_answered_at, \
         client_invited_at, client_status, client_status_at, client_ringing_at, client_answered_at, \
         answered_at, ended_at, outcome, reason"
    };
}

/// Columns of a [`RecordingRow`](super::RecordingRow).
macro_rules! recording_columns {
    () => {
        "id, call_id, path, state, sha256, bytes, duration_ms, started_at, sealed_at, \
         agent_packets, agent_lost, agent_late, agent_gaps, \
         client_packets, client_lost, client_late, client_gaps"
    };
}

/// `$1` id, `$2` task_id, `$3` client_id, `$4` agent_uri, `$5` client_uri,
/// `$6` started_at.
pub(super) const INSERT_CALL: &str = "INSERT INTO calls \
     (id, task_id, client_id, agent_uri, client_uri, started_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// A leg's status: `$1` id, `$2` status, `$3` time. The last status always
/// wins; the ringing and answer times keep their first value.
macro_rules! leg_status {
    ($leg:literal) => {
        concat!(
            "UPDATE calls SET ",
            $leg,
            "_status = $2, ",
            $leg,
            "_status_at = $3, ",
            $leg,
            "_ringing_at = CASE WHEN $2 > 100 AND $2 < 200 THEN COALESCE(",
            $leg,
            "_ringing_at, $3) ELSE ",
            $leg,
            "_ringing_at END, ",
            $leg,
            "_answered_at = CASE WHEN $2 >= 200 AND $2 < 300 THEN COALESCE(",
            $leg,
            "_answered_at, $3) ELSE ",
            $leg,
            "_answered_at END ",
            "WHERE id = $1"
        )
    };
}

/// The agent leg's status (see `leg_status!`).
pub(super) const AGENT_STATUS: &str = leg_status!("agent");
/// The client leg's status (see `leg_status!`).
pub(super) const CLIENT_STATUS: &str = leg_status!("client");

/// The agent leg's INVITE went out: `$1` id, `$2` time; the first wins.
pub(super) const AGENT_INVITED: &str =
    "UPDATE calls SET agent_invited_at = COALESCE(agent_invited_at, $2) WHERE id = $1";
/// The client leg's INVITE went out: `$1` id, `$2` time; the first wins.
pub(super) const CLIENT_INVITED: &str =
    "UPDATE calls SET client_invited_at = COALESCE(client_invited_at, $2) WHERE id = $1";

/// `$1` id, `$2` time; only once, and only while the call runs.
pub(super) const MARK_ANSWERED: &str = "UPDATE calls SET answered_at = $2 \
     WHERE id = $1 AND answered_at IS NULL AND outcome IS NULL";

/// `$1` id, `$2` outcome, `$3` reason, `$4` ended_at; only once (E2).
pub(super) const FINISH_CALL: &str = "UPDATE calls SET outcome = $2, reason = $3, ended_at = $4 \
     WHERE id = $1 AND outcome IS NULL";

/// `$1` id.
pub(super) const GET_CALL: &str = concat!("SELECT ", call_columns!(), " FROM calls WHERE id = $1");

/// Calls without an outcome, oldest first (served by the `calls_open` index).
pub(super) const OPEN_CALLS: &str = "SELECT id FROM calls WHERE outcome IS NULL ORDER BY started_at, id";

/// `$1` id, `$2` call_id, `$3` path, `$4` started_at.
pub(super) const INSERT_RECORDING: &str = "INSERT INTO recordings \
     (id, call_id, path, state, started_at) VALUES ($1, $2, $3, 'recording', $4)";

/// `$1` id, `$2` path, `$3` state, `$4` sha256, `$5` bytes, `$6`
/// duration_ms, `$7` sealed_at, `$8`–`$11` agent packets/lost/late/gaps,
/// `$12`–`$15` client packets/lost/late/gaps. Only from `recording` (E3).
pub(super) const SEAL_RECORDING: &str = "UPDATE recordings SET \
     path = $2, state = $3, sha256 = $4, bytes = $5, duration_ms = $6, sealed_at = $7, \
     agent_packets = $8, agent_lost = $9, agent_late = $10, agent_gaps = $11, \
     client_packets = $12, client_lost = $13, client_late = $14, client_gaps = $15 \
     WHERE id = $1 AND state = 'recording'";

/// `$1` id.
pub(super) const GET_RECORDING: &str =
    concat!("SELECT ", recording_columns!(), " FROM recordings WHERE id = $1");

/// `$1` call_id.
pub(super) const RECORDING_FOR_CALL: &str =
    concat!("SELECT ", recording_columns!(), " FROM recordings WHERE call_id = $1");

/// `$1` state; oldest first.
pub(super) const RECORDINGS_IN_STATE: &str =
    concat!("SELECT ", recording_columns!(), " FROM recordings WHERE state = $1 ORDER BY started_at, id");
