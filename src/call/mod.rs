//! Call control: the recorded callback call.
//!
//! A callback call has two legs, both placed by huifang (a back-to-back
//! user agent): the **agent** leg rings the agent's softphone first; once
//! the agent answers and the recorder has its file open, the **client** leg
//! calls the client; when the client answers, the relay bridges the two.
//!
//! - [`machine`] is the sans-IO state machine: SIP in, SIP and media
//!   commands out, on a clock it is given.
//! - [`recover`] repairs what a crash left (E4) before the first call.
//! - [`task`] drives one call on one tokio task that owns the call's relay,
//!   recorder and legs (one owner per call), and writes the trace.
//!
//! Every attempt ends in exactly one [`Outcome`] (invariant E2).

pub mod machine;
pub mod recover;
pub mod task;

/// The row that seals a recording (E3): the file's proof from the
/// recorder, the sides' RTP counters, the final state, now.
pub(crate) fn sealed_row(
    sealed: &crate::media::recorder::Sealed,
    state: crate::store::RecordingState,
    agent: crate::store::SideCounters,
    client: crate::store::SideCounters,
) -> crate::store::SealedRecording {
    crate::store::SealedRecording {
        id: sealed.id,
        path: sealed.path.display().to_string(),
        sha256: sealed.sha256.clone(),
        bytes: sealed.bytes,
        duration_ms: sealed.duration_ms,
        agent,
        client,
        state,
        sealed_at: chrono::Utc::now(),
    }
}

/// Its `recording.sealed` audit event (E6: ids and hashes only), at the
/// seal's time.
pub(crate) fn sealed_event(
    row: &crate::store::SealedRecording,
    call_id: uuid::Uuid,
) -> crate::audit::AuditEvent {
    crate::audit::AuditEvent {
        at: row.sealed_at,
        ..crate::audit::AuditEvent::system(
            crate::audit::AuditAction::RecordingSealed,
            row.id,
            serde_json::json!({
                "call_id": call_id,
                "sha256": row.sha256,
                "bytes": row.bytes,
                "duration_ms": row.duration_ms,
                "state": row.state.as_str(),
            }),
        )
    }
}

use std::fmt;

use serde::Serialize;

/// One side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    /// The agent's softphone (rung first; left channel).
    Agent,
    /// The client's phone (right channel).
    Client,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::Agent => Leg::Client,
            Leg::Client => Leg::Agent,
        }
    }
    /// The recording side of this leg.
    pub fn side(self) -> crate::media::timeline::Side {
        match self {
            Leg::Agent => crate::media::timeline::Side::Agent,
            Leg::Client => crate::media::timeline::Side::Client,
        }
    }
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Leg::Agent => "agent",
            Leg::Client => "client",
        })
    }
}

/// How a call attempt ended. Exactly one per attempt (E2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Agent and client talked; the recording is sealed.
    Completed,
    /// The client's phone rang and nobody answered.
    NoAnswer,
    /// The client was busy (486, 600).
    Busy,
    /// The client declined (603, 403, 6xx).
    Rejected,
    /// The client could not be reached (404, 480, 410, 484, 604, no response).
    Unreachable,
    /// The agent did not answer or could not be reached.
    AgentUnavailable,
    /// The agent hung up while the client's phone rang, or the call was
    /// cancelled before the client answered.
    Cancelled,
    /// The recording could not start or failed mid-call (E1: fail closed).
    RecordingFailed,
    /// Any other failure (a 5xx, an SDP without a common codec, …).
    Failed,
    /// huifang stopped (or crashed) during the call.
    Interrupted,
}

impl Outcome {
    /// The name stored in the trace (`completed`, `no-answer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::NoAnswer => "no-answer",
            Outcome::Busy => "busy",
            Outcome::Rejected => "rejected",
            Outcome::Unreachable => "unreachable",
            Outcome::AgentUnavailable => "agent-unavailable",
            Outcome::Cancelled => "cancelled",
            Outcome::RecordingFailed => "recording-failed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The outcome of the client leg's final non-2xx status.
    pub fn of_client_status(status: u16) -> Outcome {
        match status {
            486 | 600 => Outcome::Busy,
            403 | 603 | 606 | 607 => Outcome::Rejected,
            404 | 410 | 480 | 484 | 604 => Outcome::Unreachable,
            408 => Outcome::NoAnswer,
            _ => Outcome::Failed,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
