//! The audit log's events and their hash chain (E6). Pure: no IO.
//!
//! Every event is appended to the `audit_events` table by
//! [`Store::append_audit`](crate::store::Store::append_audit), which gives it
//! the next sequence number and chains it to the previous event:
//!
//! ```text
//! hash(n) = hex(SHA-256(hash(n-1) || canonical(n)))      hash(0) = 64 × "0"
//! ```
//!
//! where `hash(n-1)` is the previous event's hash as 64 lower-case hex
//! digits and `canonical(n)` is the event's [canonical form](canonical): a
//! JSON object with the keys `action`, `actor`, `at`, `detail`, `seq`,
//! `subject` in that (sorted) order, every nested object's keys sorted too,
//! no insignificant whitespace, `at` as RFC 3339 UTC with milliseconds and
//! `Z`. Changing, removing, inserting or reordering any event breaks the
//! chain at that event, which [`verify_chain`] reports by sequence number.
//!
//! ## Who appends what
//! | action | actor | subject | detail |
//! | --- | --- | --- | --- |
//! | `call.placed` | `huifang` | call id | `task_id`, `client_id` (never phone numbers) |
//! | `call.answered` | `huifang` | call id | `{}` |
//! | `call.ended` | `huifang` | call id | `outcome`, `reason` |
//! | `recording.sealed` | `huifang` | recording id | `call_id`, `sha256`, `bytes`, `duration_ms`, `state` |
//! | `recording.uploaded` | `huifang` | recording id | `key`, `manifest_key`, `sha256`, `archive`, `put` (whether each object was PUT now or found already there) (the uploader) |
//! | `recording.verified` | `huifang` | recording id | `key`, `version`, `retain_until`, `mode` (the uploader) |
//! | `hold.set` | the user | recording id | `reason` |
//! | `hold.release_requested` | the user | recording id | `reason` |
//! | `hold.released` | the confirming user | recording id | `reason`, `requested_by` |
//! | `recording.fetched` | the user | recording id | `from` (archive or spool), `host`, `out` |
//! | `recording.played` | the login | recording id | `role`, `address`, `ranges` (byte ranges served, one event per play), `source` |
//! | `recording.downloaded` | the login | recording id | `role`, `address`, `source`, `bytes` |
//! | `recording.access_denied` | the login | recording id | `role`, `address`, `reason` |
//! | `session.login` | the login | the login | `address`, `session` (first 12 hex digits of its hash) |
//! | `session.login_failed` | the typed login | the typed login | `address`, `why` (`unknown-login`, `wrong-password`, `disabled`, `locked`) |
//! | `session.locked` | `huifang` | the typed login | `address`, `failures`, `until` |
//! | `session.logout` | the login | the login | `address`, `session` |
//! | `user.added`, `user.password_changed`, `user.disabled` | who did it | the login | `roles`, `branches`, `staff_id` (added) |
//! | `token.created`, `token.revoked` | who did it | the token's login | `token_id`, `roles`, `expires_at` |
//! | `recording.exported` | the login | recording id | `export` (its name), `role`, `address`, `sha256` |
//! | `client.revealed` | the login | client id | `field` (`phone`, `id_number`), `role`, `address` |
//! | `evidence.exported` | the login | client id (or call id) | `export`, `scope`, `from`, `to`, `recordings`, `calls`, `role`, `address` |
//!
//! Details carry ids, hashes and reasons, never a client's phone number.

use std::fmt;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actor of events the daemon writes by itself.
pub const SYSTEM_ACTOR: &str = "huifang";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A call's first INVITE is about to leave.
    CallPlaced,
    /// The client answered and was bridged, recorder running.
    CallAnswered,
    /// The call ended with its one outcome.
    CallEnded,
    /// A recording was sealed (hashed, renamed into `sealed/`).
    RecordingSealed,
    /// A recording's objects were written to the archive.
    RecordingUploaded,
    /// A recording's objects were verified in the archive.
    RecordingVerified,
    /// A legal hold was set.
    HoldSet,
    /// A first user asked to release a legal hold.
    HoldReleaseRequested,
    /// A second, different user confirmed the release.
    HoldReleased,
    /// Someone downloaded a recording.
    RecordingFetched,
    /// Someone played a recording in a browser (one event per play, with
    /// the byte ranges served).
    RecordingPlayed,
    /// Someone downloaded a recording over the web API.
    RecordingDownloaded,
    /// Someone was refused a recording (the reason in the detail).
    RecordingAccessDenied,
    /// A person logged in.
    SessionLogin,
    /// A login failed (unknown login or wrong password: the detail says
    /// which, the answer did not).
    SessionLoginFailed,
    /// Too many failed logins: the login is locked for a while.
    SessionLocked,
    /// A person logged out.
    SessionLogout,
    /// A user was added.
    UserAdded,
    /// A user's password was changed.
    UserPasswordChanged,
    /// A user was disabled (their sessions and tokens end).
    UserDisabled,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked.
    TokenRevoked,
    /// A recording went into an evidence export.
    RecordingExported,
    /// An evidence export was made (of a client or a call).
    EvidenceExported,
    /// A client's full phone or ID number was shown to someone.
    ClientRevealed,
    /// A call was placed by hand outside the calling window (a
    /// supervisor's override, with the reason).
    CallWindowOverridden,
    /// A task's next attempt was set by hand (the client asked to be
    /// called back at a time).
    TaskRescheduled,
    /// A recording's rows were rebuilt from its manifest (`huifang
    /// reindex`): its call's earlier events were lost with the database.
    RecordingReindexed,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 28] = [
        AuditAction::CallPlaced,
        AuditAction::CallAnswered,
        AuditAction::CallEnded,
        AuditAction::RecordingSealed,
        AuditAction::RecordingUploaded,
        AuditAction::RecordingVerified,
        AuditAction::HoldSet,
        AuditAction::HoldReleaseRequested,
        AuditAction::HoldReleased,
        AuditAction::RecordingFetched,
        AuditAction::RecordingPlayed,
        AuditAction::RecordingDownloaded,
        AuditAction::RecordingAccessDenied,
        AuditAction::SessionLogin,
        AuditAction::SessionLoginFailed,
        AuditAction::SessionLocked,
        AuditAction::SessionLogout,
        AuditAction::UserAdded,
        AuditAction::UserPasswordChanged,
        AuditAction::UserDisabled,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::RecordingExported,
        AuditAction::EvidenceExported,
        AuditAction::ClientRevealed,
        AuditAction::CallWindowOverridden,
        AuditAction::TaskRescheduled,
        AuditAction::RecordingReindexed,
    ];

    /// The stored name, e.g. `call.placed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::CallPlaced => "call.placed",
            AuditAction::CallAnswered => "call.answered",
            AuditAction::CallEnded => "call.ended",
            AuditAction::RecordingSealed => "recording.sealed",
            AuditAction::RecordingUploaded => "recording.uploaded",
            AuditAction::RecordingVerified => "recording.verified",
            AuditAction::HoldSet => "hold.set",
            AuditAction::HoldReleaseRequested => "hold.release_requested",
            AuditAction::HoldReleased => "hold.released",
            AuditAction::RecordingFetched => "recording.fetched",
            AuditAction::RecordingPlayed => "recording.played",
            AuditAction::RecordingDownloaded => "recording.downloaded",
            AuditAction::RecordingAccessDenied => "recording.access_denied",
            AuditAction::SessionLogin => "session.login",
            AuditAction::SessionLoginFailed => "session.login_failed",
            AuditAction::SessionLocked => "session.locked",
            AuditAction::SessionLogout => "session.logout",
            AuditAction::UserAdded => "user.added",
            AuditAction::UserPasswordChanged => "user.password_changed",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::TokenCreated => "token.created",
            AuditAction::TokenRevoked => "token.revoked",
            AuditAction::RecordingExported => "recording.exported",
            AuditAction::EvidenceExported => "evidence.exported",
            AuditAction::ClientRevealed => "client.revealed",
            AuditAction::CallWindowOverridden => "call.window_overridden",
            AuditAction::TaskRescheduled => "task.rescheduled",
            AuditAction::RecordingReindexed => "recording.reindexed",
        }
    }

    /// The action of a stored name.
    pub fn from_name(name: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Who: a user name, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// On what: a call or recording id.
    pub subject: String,
    /// More about it (a JSON object; no phone numbers).
    pub detail: Value,
    /// When (kept to the millisecond).
    pub at: DateTime<Utc>,
}

impl AuditEvent {
    /// An event by `actor`, now.
    pub fn new(
        actor: impl Into<String>,
        action: AuditAction,
        subject: impl fmt::Display,
        detail: Value,
    ) -> Self {
        AuditEvent { actor: actor.into(), action, subject: subject.to_string(), detail, at: Utc::now() }
    }

    /// An event the daemon writes by itself ([`SYSTEM_ACTOR`]), now.
    pub fn system(action: AuditAction, subject: impl fmt::Display, detail: Value) -> Self {
        AuditEvent::new(SYSTEM_ACTOR, action, subject, detail)
    }
}

/// An event as stored, chained.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When (milliseconds).
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What (the stored name; see [`AuditAction`]).
    pub action: String,
    /// On what.
    pub subject: String,
    /// More about it.
    pub detail: Value,
    /// The previous event's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl AuditRow {
    /// Builds the row that follows `prev` (`None`: the first event), hash
    /// included. The event's time is truncated to milliseconds.
    pub fn chain(prev: Option<(i64, &str)>, e: &AuditEvent) -> AuditRow {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq + 1, hash.to_string()),
            None => (1, GENESIS.to_string()),
        };
        let mut row = AuditRow {
            seq,
            at: e.at.trunc_subsecs(3),
            actor: e.actor.clone(),
            action: e.action.as_str().to_string(),
            subject: e.subject.clone(),
            detail: e.detail.clone(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        row
    }

    /// The canonical form this row's hash covers (everything but the two
    /// hashes).
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"action\":");
        write_json_string(&mut out, &self.action);
        out.push_str(",\"actor\":");
        write_json_string(&mut out, &self.actor);
        out.push_str(",\"at\":");
        write_json_string(&mut out, &time_text(self.at));
        out.push_str(",\"detail\":");
        write_canonical(&mut out, &self.detail);
        out.push_str(",\"seq\":");
        out.push_str(&self.seq.to_string());
        out.push_str(",\"subject\":");
        write_json_string(&mut out, &self.subject);
        out.push('}');
        out
    }

    /// SHA-256 over `prev_hash` (hex text) and the canonical form, hex.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {why}")]
pub struct ChainBreak {
    /// The first event that does not fit.
    pub seq: i64,
    /// What is wrong with it.
    pub why: String,
}

/// Checks a whole log, from the first event: sequence numbers 1, 2, 3, …
/// without gaps, each `prev_hash` equal to the previous event's hash
/// ([`GENESIS`] for the first), each hash equal to its recomputation.
/// An empty log is a valid chain.
pub fn verify_chain(rows: &[AuditRow]) -> Result<(), ChainBreak> {
    verify_chain_from(None, rows)
}

/// Checks a stretch of the log that follows `prev` (`(seq, hash)` of the
/// event just before it; `None` when the stretch starts the log).
pub fn verify_chain_from(prev: Option<(i64, &str)>, rows: &[AuditRow]) -> Result<(), ChainBreak> {
    let (mut seq, mut hash) = match prev {
        Some((s, h)) => (s, h.to_string()),
        None => (0, GENESIS.to_string()),
    };
    for row in rows {
        let brk = |why: String| ChainBreak { seq: row.seq, why };
        if row.seq != seq + 1 {
            return Err(brk(format!(
                "expected seq {}, found {} (an event is missing or moved)",
                seq + 1,
                row.seq
            )));
        }
        if row.prev_hash != hash {
            return Err(brk("prev_hash differs from the previous event's hash".into()));
        }
        if row.compute_hash() != row.hash {
            return Err(brk("hash does not match the event (the event was changed)".into()));
        }
        seq = row.seq;
        hash = row.hash.clone();
    }
    Ok(())
}

/// RFC 3339 UTC with milliseconds and `Z`.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The canonical JSON text of `v`: keys sorted at every level, no
/// whitespace. Independent of serde_json's map order feature.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, v);
    out
}

fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_canonical(out, &map[k]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        // Scalars: serde_json's own compact form (strings escaped, numbers
        // in their shortest round-tripping form).
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_string()).to_string());
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn event(n: u32) -> AuditEvent {
        AuditEvent {
            actor: "huifang".into(),
            action: AuditAction::CallPlaced,
            subject: format!("call-{n}"),
            detail: json!({"z": 1, "a": {"y": [2, {"k": "v", "b": null}], "x": "é\"\n"}}),
            at: Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap()
                + chrono::Duration::nanoseconds(1_234_567),
        }
    }

    fn chain(n: u32) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for i in 0..n {
            let prev = rows.last().map(|r| (r.seq, r.hash.clone()));
            rows.push(AuditRow::chain(prev.as_ref().map(|(s, h)| (*s, h.as_str())), &event(i)));
        }
        rows
    }

    #[test]
    fn canonical_form_is_fixed() {
        let row = AuditRow::chain(None, &event(7));
        assert_eq!(
            row.canonical(),
            r#"{"action":"call.placed","actor":"huifang","at":"2026-11-27T06:00:00.001Z","detail":{"a":{"x":"é\"\n","y":[2,{"b":null,"k":"v"}]},"z":1},"seq":1,"subject":"call-7"}"#
        );
        assert_eq!(row.prev_hash, GENESIS);
        let mut h = Sha256::new();
        h.update(GENESIS.as_bytes());
        h.update(row.canonical().as_bytes());
        assert_eq!(row.hash, hex::encode(h.finalize()));
    }

    #[test]
    fn actions_round_trip_their_names() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_name(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::from_name("call.deleted"), None);
    }

    #[test]
    fn a_clean_chain_verifies() {
        assert_eq!(verify_chain(&[]), Ok(()));
        assert_eq!(verify_chain(&chain(20)), Ok(()));
        let rows = chain(20);
        assert_eq!(verify_chain_from(Some((rows[9].seq, &rows[9].hash)), &rows[10..]), Ok(()));
    }

    #[test]
    fn every_kind_of_tampering_names_its_seq() {
        let mut rows = chain(10);
        rows[4].actor = "mallory".into();
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 5);

        let mut rows = chain(10);
        rows[6].detail = json!({"z": 2});
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 7);

        // recomputing the changed row's hash breaks the next link
        let mut rows = chain(10);
        rows[2].subject = "other".into();
        rows[2].hash = rows[2].compute_hash();
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 4);

        let mut rows = chain(10);
        rows.remove(3);
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 5);

        let mut rows = chain(10);
        rows.swap(1, 2);
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 3);

        let mut rows = chain(3);
        rows[0].at += chrono::Duration::milliseconds(1);
        assert_eq!(verify_chain(&rows).unwrap_err().seq, 1);
    }
}
