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
         answered_at, ended_at, outcome, reason, kind, agent_id, claimed_at"
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
/// `$6` started_at, `$7` kind, `$8` instance, `$9` agent_id, `$10` claimed_at.
pub(super) const INSERT_CALL: &str = "INSERT INTO calls \
     (id, task_id, client_id, agent_uri, client_uri, started_at, kind, instance, agent_id, claimed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

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

/// Open calls placed by instance `$1` or by no named instance.
pub(super) const OPEN_CALLS_OF: &str = "SELECT id FROM calls WHERE outcome IS NULL \
     AND (instance IS NULL OR instance = $1) ORDER BY started_at, id";

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

// ------------------------------------------------------------ the archive

/// Final recordings not yet archived, with their call: `$1` limit; oldest
/// first. Only once the call has its outcome: the manifest carries the
/// call's end and outcome, and a manifest PUT before they were written
/// would differ from the one a retry builds — which the WORM archive then
/// refuses for ever (found by the soak: a kill between the seal and the
/// call's end). Both are written once (E2), so every retry builds the same
/// manifest.
pub(super) const PENDING_UPLOADS: &str = "SELECT r.id, r.call_id, r.path, r.state, r.sha256, r.bytes, \
     r.duration_ms, r.started_at, r.upload_attempts, c.task_id, c.client_id, c.agent_uri, c.client_uri, \
     c.kind, c.agent_id, c.started_at AS call_started_at, c.answered_at, c.ended_at, c.outcome \
     FROM recordings r JOIN calls c ON c.id = r.call_id \
     WHERE r.archived_at IS NULL AND r.state <> 'recording' AND c.outcome IS NOT NULL \
     ORDER BY r.started_at, r.id LIMIT $1";

/// `$1` id, `$2` message; only while not archived.
pub(super) const RECORD_UPLOAD_ERROR: &str = "UPDATE recordings SET \
     upload_attempts = upload_attempts + 1, last_upload_error = $2 \
     WHERE id = $1 AND archived_at IS NULL";

/// `$1` id, `$2` key, `$3` manifest key, `$4` version, `$5` manifest
/// version, `$6` retain_until, `$7` archived_at; once, and only when final.
pub(super) const MARK_ARCHIVED: &str = "UPDATE recordings SET \
     archive_key = $2, manifest_key = $3, object_version = $4, manifest_version = $5, \
     retain_until = $6, archived_at = $7, upload_attempts = upload_attempts + 1, last_upload_error = NULL \
     WHERE id = $1 AND archived_at IS NULL AND state <> 'recording'";

/// `$1` archived at or before; oldest first.
pub(super) const ARCHIVED_NOT_REMOVED: &str = "SELECT id, path FROM recordings \
     WHERE archived_at IS NOT NULL AND archived_at <= $1 AND spool_removed_at IS NULL \
     ORDER BY archived_at, id";

/// `$1` id, `$2` time; once, and only after archiving.
pub(super) const MARK_SPOOL_REMOVED: &str = "UPDATE recordings SET spool_removed_at = $2 \
     WHERE id = $1 AND archived_at IS NOT NULL AND spool_removed_at IS NULL";

/// `$1` id.
pub(super) const ARCHIVE_RECORD: &str = "SELECT id, archive_key, manifest_key, object_version, \
     manifest_version, retain_until, archived_at, upload_attempts, last_upload_error, spool_removed_at \
     FROM recordings WHERE id = $1";
