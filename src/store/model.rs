//! The values the store takes and returns: calls, recordings and their
//! states. Plain data; the rules live in [`super::Store`] and in the schema.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Every terminal outcome a call may end with (E2), as stored in
/// `calls.outcome`. The schema's CHECK constraint holds the same list.
pub const OUTCOMES: &[&str] = &[
    "completed",
    "no-answer",
    "busy",
    "rejected",
    "unreachable",
    "agent-unavailable",
    "cancelled",
    "recording-failed",
    "failed",
    "interrupted",
];

/// One of the two SIP legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The leg to the agent's softphone (dialled first).
    Agent,
    /// The leg to the client (dialled once the agent answered).
    Client,
}

/// A call attempt about to be placed. Insert it with
/// [`Store::insert_call`](super::Store::insert_call) before the first
/// INVITE leaves (E2).
///
/// `Debug` leaves out the two URIs: they are personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCall {
    /// The call's id (also the recording's file name, by convention).
    pub id: Uuid,
    /// The callback task this attempt serves, if any.
    pub task_id: Option<String>,
    /// The brokerage's client id, if known (what compliance searches by).
    pub client_id: Option<String>,
    /// The agent's SIP URI.
    pub agent_uri: String,
    /// The client's SIP URI (a phone number: personal data).
    pub client_uri: String,
    /// When the attempt started (just before the first INVITE).
    pub started_at: DateTime<Utc>,
    /// The callback kind (e.g. `new_account`): decides the retention.
    pub kind: Option<String>,
    /// The agent (a staff id) who takes the call, when the dialer knows it.
    pub agent_id: Option<String>,
    /// When the dialer claimed the task for this attempt (`None` for a
    /// call placed without a claim, `huifang dial`).
    pub claimed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
impl NewCall {
    /// The call the unit tests place: client C1, made-up URIs, no task.
    pub(crate) fn sample(id: Uuid, started_at: DateTime<Utc>) -> NewCall {
        NewCall {
            id,
            task_id: None,
            client_id: Some("C1".into()),
            agent_uri: "sip:agent1@x".into(),
            client_uri: "sip:13800000000@x".into(),
            started_at,
            kind: None,
            agent_id: None,
            claimed_at: None,
        }
    }
}

impl fmt::Debug for NewCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCall")
            .field("id", &self.id)
            .field("task_id", &self.task_id)
            .field("client_id", &self.client_id)
            .field("agent_uri", &"<redacted>")
            .field("client_uri", &"<redacted>")
            .field("started_at", &self.started_at)
            .field("kind", &self.kind)
            .field("agent_id", &self.agent_id)
            .field("claimed_at", &self.claimed_at)
            .finish()
    }
}

/// A call as stored: the trace of one attempt. Times are UTC with
/// millisecond precision (the store truncates what it is given).
///
/// `Debug` leaves out the two URIs: they are personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The call's id.
    pub id: Uuid,
    /// The callback task, if any.
    pub task_id: Option<String>,
    /// The client id, if known.
    pub client_id: Option<String>,
    /// The agent's SIP URI.
    pub agent_uri: String,
    /// The agent (a staff id) who took the call, when known.
    pub agent_id: Option<String>,
    /// The client's SIP URI.
    pub client_uri: String,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// When the agent leg's INVITE was first sent, if recorded
    /// (`update_leg(.., None, at)`).
    pub agent_invited_at: Option<DateTime<Utc>>,
    /// The last SIP status the agent leg received.
    pub agent_status: Option<u16>,
    /// When [`agent_status`](Self::agent_status) arrived.
    pub agent_status_at: Option<DateTime<Utc>>,
    /// When the agent leg's first provisional response above 100 arrived
    /// (180/183: the softphone rings).
    pub agent_ringing_at: Option<DateTime<Utc>>,
    /// When the agent leg's first 2xx arrived.
    pub agent_answered_at: Option<DateTime<Utc>>,
    /// When the client leg's INVITE was first sent, if recorded.
    pub client_invited_at: Option<DateTime<Utc>>,
    /// The last SIP status the client leg received.
    pub client_status: Option<u16>,
    /// When [`client_status`](Self::client_status) arrived.
    pub client_status_at: Option<DateTime<Utc>>,
    /// When the client leg's first provisional response above 100 arrived.
    pub client_ringing_at: Option<DateTime<Utc>>,
    /// When the client leg's first 2xx arrived.
    pub client_answered_at: Option<DateTime<Utc>>,
    /// When the conversation started: the client answered and was bridged
    /// to the agent with the recorder running
    /// ([`Store::mark_answered`](super::Store::mark_answered)).
    pub answered_at: Option<DateTime<Utc>>,
    /// When the attempt ended; set together with `outcome`.
    pub ended_at: Option<DateTime<Utc>>,
    /// The terminal outcome, one of [`OUTCOMES`]; `None` while the call runs.
    pub outcome: Option<String>,
    /// The final SIP status or local reason, as text.
    pub reason: Option<String>,
    /// The callback kind, if given (decides the retention).
    pub kind: Option<String>,
    /// When the dialer claimed the task for this attempt.
    pub claimed_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for CallRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRow")
            .field("id", &self.id)
            .field("task_id", &self.task_id)
            .field("client_id", &self.client_id)
            .field("agent_uri", &"<redacted>")
            .field("client_uri", &"<redacted>")
            .field("started_at", &self.started_at)
            .field("agent_invited_at", &self.agent_invited_at)
            .field("agent_status", &self.agent_status)
            .field("agent_status_at", &self.agent_status_at)
            .field("agent_ringing_at", &self.agent_ringing_at)
            .field("agent_answered_at", &self.agent_answered_at)
            .field("client_invited_at", &self.client_invited_at)
            .field("client_status", &self.client_status)
            .field("client_status_at", &self.client_status_at)
            .field("client_ringing_at", &self.client_ringing_at)
            .field("client_answered_at", &self.client_answered_at)
            .field("answered_at", &self.answered_at)
            .field("ended_at", &self.ended_at)
            .field("outcome", &self.outcome)
            .field("reason", &self.reason)
            .field("kind", &self.kind)
            .field("claimed_at", &self.claimed_at)
            .finish()
    }
}

/// The state of a recording. `Recording` is the only state a row leaves;
/// `Sealed` and `Interrupted` are final (E3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingState {
    /// The recorder is writing the file in the spool's `recording/`.
    Recording,
    /// Closed normally at hang-up: flushed, fsynced, hashed, renamed.
    Sealed,
    /// Repaired and sealed at start-up after a crash (E4).
    Interrupted,
}

impl RecordingState {
    /// The name stored in `recordings.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Sealed => "sealed",
            RecordingState::Interrupted => "interrupted",
        }
    }

    /// The state of a stored name, `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<RecordingState> {
        match name {
            "recording" => Some(RecordingState::Recording),
            "sealed" => Some(RecordingState::Sealed),
            "interrupted" => Some(RecordingState::Interrupted),
            _ => None,
        }
    }

    /// Whether the state is final: the row never changes again (E3).
    pub fn is_final(self) -> bool {
        self != RecordingState::Recording
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recording whose file the recorder has just opened. Insert it with
/// [`Store::insert_recording`](super::Store::insert_recording) before the
/// client is bridged (E1); it starts in state `recording`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    /// The recording's id.
    pub id: Uuid,
    /// The call it records (one recording per call).
    pub call_id: Uuid,
    /// The file being written, in the spool's `recording/` directory.
    pub path: String,
    /// When recording started.
    pub started_at: DateTime<Utc>,
}

/// Per-side RTP counters of a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideCounters {
    /// RTP packets written to the file.
    pub packets: u64,
    /// Packets never received (sequence gaps).
    pub lost: u64,
    /// Packets that arrived too late to be played and were dropped.
    pub late: u64,
    /// Stretches filled with silence to keep both sides in step.
    pub gaps: u64,
}

/// What sealing a recording found, written once by
/// [`Store::seal_recording`](super::Store::seal_recording) (E3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecording {
    /// The recording's id.
    pub id: Uuid,
    /// The sealed file (now in the spool's `sealed/`).
    pub path: String,
    /// SHA-256 of the file, 64 lower-case hex digits.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Audio duration in milliseconds.
    pub duration_ms: u64,
    /// The agent side's counters (left channel).
    pub agent: SideCounters,
    /// The client side's counters (right channel).
    pub client: SideCounters,
    /// [`RecordingState::Sealed`] or [`RecordingState::Interrupted`];
    /// `Recording` is refused.
    pub state: RecordingState,
    /// When the file was sealed.
    pub sealed_at: DateTime<Utc>,
}

/// A recording as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    /// The recording's id.
    pub id: Uuid,
    /// The call it records.
    pub call_id: Uuid,
    /// The file: in `recording/` while recording, in `sealed/` once sealed.
    pub path: String,
    /// The state.
    pub state: RecordingState,
    /// SHA-256 of the sealed file (lower-case hex); `None` while recording.
    pub sha256: Option<String>,
    /// File size in bytes; `None` while recording.
    pub bytes: Option<u64>,
    /// Audio duration in milliseconds; `None` while recording.
    pub duration_ms: Option<u64>,
    /// When recording started.
    pub started_at: DateTime<Utc>,
    /// When the file was sealed; `None` while recording.
    pub sealed_at: Option<DateTime<Utc>>,
    /// The agent side's counters (zero while recording).
    pub agent: SideCounters,
    /// The client side's counters (zero while recording).
    pub client: SideCounters,
}

/// A final recording waiting for the archive, with what its manifest needs
/// from the call ([`Store::pending_uploads`](super::Store::pending_uploads)).
///
/// `Debug` leaves out the two URIs: they are personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadJob {
    /// The recording's id.
    pub recording_id: Uuid,
    /// The call it records.
    pub call_id: Uuid,
    /// The sealed file in the spool.
    pub path: String,
    /// `Sealed` or `Interrupted`.
    pub state: RecordingState,
    /// SHA-256 of the sealed file (lower-case hex), as sealed (E3).
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Audio duration in milliseconds.
    pub duration_ms: u64,
    /// When recording started.
    pub recording_started_at: DateTime<Utc>,
    /// Uploads tried so far.
    pub upload_attempts: u64,
    /// The callback task, if any.
    pub task_id: Option<String>,
    /// The client id, if known.
    pub client_id: Option<String>,
    /// The agent's SIP URI.
    pub agent_uri: String,
    /// The agent (a staff id) who took the call, when known.
    pub agent_id: Option<String>,
    /// The client's SIP URI.
    pub client_uri: String,
    /// The callback kind.
    pub kind: Option<String>,
    /// When the call started: retention counts from here.
    pub call_started_at: DateTime<Utc>,
    /// When the conversation started.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The call's outcome (None while the call still runs).
    pub outcome: Option<String>,
}

impl fmt::Debug for UploadJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadJob")
            .field("recording_id", &self.recording_id)
            .field("call_id", &self.call_id)
            .field("path", &self.path)
            .field("state", &self.state)
            .field("sha256", &self.sha256)
            .field("bytes", &self.bytes)
            .field("kind", &self.kind)
            .field("call_started_at", &self.call_started_at)
            .field("upload_attempts", &self.upload_attempts)
            .finish_non_exhaustive()
    }
}

/// Where the archive holds a recording, written once by
/// [`Store::mark_archived`](super::Store::mark_archived) after both objects
/// were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// Object key of the WAV.
    pub key: String,
    /// Object key of the manifest.
    pub manifest_key: String,
    /// Version id of the WAV object (`None` on the local backend).
    pub version: Option<String>,
    /// Version id of the manifest object.
    pub manifest_version: Option<String>,
    /// Object Lock retain-until date (COMPLIANCE).
    pub retain_until: DateTime<Utc>,
    /// When the upload was verified.
    pub at: DateTime<Utc>,
}

/// A recording's archive columns, as stored
/// ([`Store::archive_record`](super::Store::archive_record)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// The recording's id.
    pub recording_id: Uuid,
    /// Set once the upload was verified.
    pub archived: Option<Archived>,
    /// Uploads tried (successful or not).
    pub upload_attempts: u64,
    /// The last upload error, cleared when archived.
    pub last_upload_error: Option<String>,
    /// When the spooled file was removed (after archiving and the grace period).
    pub spool_removed_at: Option<DateTime<Utc>>,
}
