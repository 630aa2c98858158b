//! The recordings of a client, and a recording's audio.
//!
//! - [`client_calls`] lists a client's calls (or only those with a
//!   recording) in start order, a page at a time: the cursor is the last
//!   row's `(started_at, call id)`, opaque to callers (keyset paging, no
//!   OFFSET). What a person sees is their [`ClientScope`]: compliance and
//!   the supervisors of the client's branch every call, an agent their own.
//! - [`open_audio`] checks that the person may hear a recording, resolves
//!   one byte range of it, and opens it as a stream: from the archive's
//!   recorded version once archived (S3: a ranged GetObject), else from the
//!   spool's sealed file. A refusal is audited (`recording.access_denied`)
//!   before it is answered; plays and downloads are audited by the caller
//!   ([`crate::ops::audit::PlayLog`], [`audit_download`]).

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::OpsError;
use super::access::{ClientScope, Person, Role};
use crate::archive::{Archive, RangeReader};
use crate::audit::{AuditAction, AuditEvent};
use crate::store::{CallQuery, ClientCall, RecordingState, Store};

/// Largest page a list returns.
pub const MAX_PAGE: i64 = 500;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: i64 = 100;

/// One page of a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The cursor of the next page; `null` on the last one.
    pub next: Option<String>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListCalls {
    /// Only calls that have a recording (the API's recordings list).
    pub recorded_only: bool,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// A cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1..=[`MAX_PAGE`]); `None`: every row (the CLI).
    pub limit: Option<i64>,
}

/// Midnight UTC of a `YYYY-MM-DD` date; `field` names it in the error.
pub fn day_start(s: &str, field: &'static str) -> Result<DateTime<Utc>, OpsError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| OpsError::invalid(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

/// The cursor after the call `(started_at, id)`.
pub fn encode_cursor(t: DateTime<Utc>, id: Uuid) -> String {
    let text = format!("{}|{}", crate::audit::time_text(t), id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// A cursor given out by [`encode_cursor`].
pub fn decode_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), OpsError> {
    let bad = || OpsError::invalid("cursor", "not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (t, id) = text.split_once('|').ok_or_else(bad)?;
    let t = DateTime::parse_from_rfc3339(t).map_err(|_| bad())?.with_timezone(&Utc);
    Ok((t, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// The branch of a client, or [`OpsError::NotFound`].
async fn client_branch(store: &Store, client_id: &str) -> Result<String, OpsError> {
    Ok(store.client(client_id).await?.branch)
}

/// The scope of `p` over `client_id`. A client the database does not know
/// (calls placed by `huifang dial` with a free-form id) is visible to
/// compliance only.
async fn scope(store: &Store, p: &Person, client_id: &str) -> Result<ClientScope, OpsError> {
    if p.sees_every_client() {
        return Ok(ClientScope::All);
    }
    let branch = match client_branch(store, client_id).await {
        Ok(b) => Some(b),
        Err(OpsError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    ClientScope::of(p, branch.as_deref())
}

/// The calls of `client_id` that `p` may see, a page at a time.
pub async fn client_calls(
    store: &Store,
    p: &Person,
    client_id: &str,
    q: &ListCalls,
) -> Result<Page<ClientCall>, OpsError> {
    if client_id.is_empty() || client_id.len() > 64 {
        return Err(OpsError::invalid("client_id", "1 to 64 characters"));
    }
    let scope = scope(store, p, client_id).await?;
    let limit = match q.limit {
        Some(n) if !(1..=MAX_PAGE).contains(&n) => {
            return Err(OpsError::invalid("limit", format!("must be in 1..={MAX_PAGE}")));
        }
        other => other,
    };
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = CallQuery {
        client_id: Some(client_id),
        agent_id: scope.agent(),
        recorded_only: q.recorded_only,
        from: q.from,
        to: q.to,
        after,
        // one more than asked: whether a next page exists
        limit: limit.map(|n| n + 1),
        ..CallQuery::default()
    };
    let mut items = store.calls_page(&query).await?;
    let next = match limit {
        Some(n) if items.len() as i64 > n => {
            items.truncate(n as usize);
            items.last().map(|c| encode_cursor(c.started_at, c.call_id))
        }
        _ => None,
    };
    Ok(Page { items, next })
}

/// A call's trace as a person may see it: every time and status of both
/// legs and the outcome, with its recording's state and hash — never the
/// phone URIs (personal data; the client's number is in the client's row).
pub async fn call_trace(store: &Store, p: &Person, id: Uuid) -> Result<serde_json::Value, OpsError> {
    let c = store.get_call(id).await?;
    let visible = match &c.client_id {
        Some(client) => match scope(store, p, client).await? {
            ClientScope::All => true,
            ClientScope::OwnCalls(staff) => c.agent_id.as_deref() == Some(staff.as_str()),
        },
        None => p.sees_every_client(),
    };
    if !visible {
        return Err(OpsError::Forbidden("not a call you may see".into()));
    }
    let rec = store.recording_for_call(id).await?;
    let t = |t: Option<DateTime<Utc>>| t.map(crate::audit::time_text);
    Ok(json!({
        "call_id": c.id,
        "task_id": c.task_id,
        "client_id": c.client_id,
        "agent_id": c.agent_id,
        "kind": c.kind,
        "started_at": crate::audit::time_text(c.started_at),
        "agent": {
            "invited_at": t(c.agent_invited_at), "ringing_at": t(c.agent_ringing_at),
            "answered_at": t(c.agent_answered_at), "status": c.agent_status, "status_at": t(c.agent_status_at),
        },
        "client": {
            "invited_at": t(c.client_invited_at), "ringing_at": t(c.client_ringing_at),
            "answered_at": t(c.client_answered_at), "status": c.client_status, "status_at": t(c.client_status_at),
        },
        "answered_at": t(c.answered_at),
        "ended_at": t(c.ended_at),
        "outcome": c.outcome,
        "reason": c.reason,
        "recording": rec.map(|r| json!({
            "recording_id": r.id, "state": r.state.as_str(), "sha256": r.sha256, "bytes": r.bytes,
            "duration_ms": r.duration_ms, "sealed_at": t(r.sealed_at),
        })),
    }))
}

/// A byte range asked for (`Range: bytes=…`), before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` or `bytes=a-`.
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// Not a single `bytes=` range we understand: serve the whole body.
    Ignore,
    /// Outside the body: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value: one `bytes=` range. Several ranges
/// (multipart answers) are not served: the whole body is sent instead,
/// which RFC 9110 allows.
pub fn parse_range(h: &str) -> Result<ByteRange, RangeError> {
    let spec = h.trim().strip_prefix("bytes=").ok_or(RangeError::Ignore)?;
    if spec.contains(',') {
        return Err(RangeError::Ignore);
    }
    let (a, b) = spec.trim().split_once('-').ok_or(RangeError::Ignore)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| RangeError::Ignore);
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Ok(ByteRange::Suffix(num(b)?)),
        (false, true) => Ok(ByteRange::From(num(a)?, None)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a { Err(RangeError::Ignore) } else { Ok(ByteRange::From(a, Some(b))) }
        }
        (true, true) => Err(RangeError::Ignore),
    }
}

impl ByteRange {
    /// `(start, length)` inside a body of `size` bytes, or
    /// [`RangeError::Unsatisfiable`].
    pub fn resolve(self, size: u64) -> Result<(u64, u64), RangeError> {
        match self {
            ByteRange::From(a, _) if a >= size => Err(RangeError::Unsatisfiable),
            ByteRange::From(a, b) => {
                let end = b.map_or(size - 1, |b| b.min(size - 1));
                Ok((a, end - a + 1))
            }
            ByteRange::Suffix(0) => Err(RangeError::Unsatisfiable),
            ByteRange::Suffix(n) => {
                let n = n.min(size);
                Ok((size - n, n))
            }
        }
    }
}

/// An opened recording: what to send.
pub struct Audio {
    /// The whole file's size.
    pub size: u64,
    /// First byte sent.
    pub start: u64,
    /// Bytes sent.
    pub len: u64,
    /// Whether a range was asked for and is served (206).
    pub partial: bool,
    /// `archive` or `spool`.
    pub source: &'static str,
    /// The bytes.
    pub body: RangeReader,
}

/// What the person wants of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioUse {
    /// Listening in a player.
    Play,
    /// Saving the file.
    Download,
    /// Its waveform ([`super::waveform`]).
    Waveform,
}

/// Checks that `p` may hear recording `id` and opens `range` of it (the
/// whole file when `None`); [`OpsError::RangeNotSatisfiable`] for a range
/// outside it.
pub async fn open_audio(
    store: &Store,
    archive: &Archive,
    p: &Person,
    agents_may_play: bool,
    id: Uuid,
    range: Option<ByteRange>,
    usage: AudioUse,
) -> Result<Audio, OpsError> {
    let rec = store.get_recording(id).await?;
    let call = store.get_call(rec.call_id).await?;
    let denied = |why: String| async move {
        let e = AuditEvent::new(
            &p.login,
            AuditAction::RecordingAccessDenied,
            id,
            json!({"role": p.role_text(), "address": p.address, "reason": why, "use": use_name(usage)}),
        );
        store.append_audit(&e).await?;
        Err::<Audio, OpsError>(OpsError::Forbidden(why))
    };
    let scope = match &call.client_id {
        Some(c) => scope(store, p, c).await,
        None if p.sees_every_client() => Ok(ClientScope::All),
        None => Err(OpsError::Forbidden("a call without a client id: compliance only".into())),
    };
    match scope {
        Ok(ClientScope::All) => {}
        Ok(ClientScope::OwnCalls(staff)) => {
            if call.agent_id.as_deref() != Some(staff.as_str()) {
                return denied("not the agent's own call".into()).await;
            }
            if !agents_may_play || !p.has(Role::Agent) {
                return denied("agents may not play recordings (http.agents_may_play)".into()).await;
            }
        }
        Err(OpsError::Forbidden(why)) => return denied(why).await,
        Err(e) => return Err(e),
    }
    if rec.state == RecordingState::Recording {
        return Err(OpsError::Conflict(format!("recording {id} is still being recorded")));
    }
    let size = rec.bytes.unwrap_or(0);
    let (start, len, partial) = match range {
        None => (0, size, false),
        Some(r) => match r.resolve(size) {
            Ok((s, l)) => (s, l, true),
            Err(_) => return Err(OpsError::RangeNotSatisfiable { size }),
        },
    };
    let record = store.archive_record(id).await?;
    let (source, body) = match record.archived {
        Some(a) => ("archive", archive.read_range(&a.key, a.version.as_deref(), start, len).await?),
        None => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let io =
                |e: std::io::Error| OpsError::Internal(format!("reading the spooled recording {id}: {e}"));
            let mut f = tokio::fs::File::open(&rec.path).await.map_err(io)?;
            f.seek(std::io::SeekFrom::Start(start)).await.map_err(io)?;
            ("spool", Box::pin(f.take(len)) as RangeReader)
        }
    };
    Ok(Audio { size, start, len, partial, source, body })
}

fn use_name(u: AudioUse) -> &'static str {
    match u {
        AudioUse::Play => "play",
        AudioUse::Download => "download",
        AudioUse::Waveform => "waveform",
    }
}

/// The waveform of recording `id` in `points` slices, if `p` may hear it
/// (a refusal is audited as for a play).
pub async fn waveform(
    store: &Store,
    archive: &Archive,
    p: &Person,
    agents_may_play: bool,
    id: Uuid,
    points: usize,
) -> Result<super::waveform::Waveform, OpsError> {
    if !(1..=super::waveform::MAX_POINTS).contains(&points) {
        return Err(OpsError::invalid("points", format!("must be in 1..={}", super::waveform::MAX_POINTS)));
    }
    let audio = open_audio(store, archive, p, agents_may_play, id, None, AudioUse::Waveform).await?;
    let reader = tokio_util::io::SyncIoBridge::new(audio.body);
    tokio::task::spawn_blocking(move || super::waveform::peaks(reader, points))
        .await
        .map_err(|e| OpsError::Internal(format!("computing the waveform: {e}")))?
}

/// Writes `recording.downloaded` for a whole-file download, before the
/// first byte leaves: no event, no file.
pub async fn audit_download(
    store: &Store,
    p: &Person,
    id: Uuid,
    source: &'static str,
    bytes: u64,
) -> Result<(), OpsError> {
    let e = AuditEvent::new(
        &p.login,
        AuditAction::RecordingDownloaded,
        id,
        json!({"role": p.role_text(), "address": p.address, "source": source, "bytes": bytes}),
    );
    store.append_audit(&e).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve_as_rfc_9110_says() {
        let r = |h: &str, size: u64| parse_range(h).and_then(|r| r.resolve(size));
        assert_eq!(r("bytes=0-99", 1000), Ok((0, 100)));
        assert_eq!(r("bytes=100-", 1000), Ok((100, 900)));
        assert_eq!(r("bytes=-100", 1000), Ok((900, 100)));
        assert_eq!(r("bytes=-2000", 1000), Ok((0, 1000)));
        assert_eq!(r("bytes=990-5000", 1000), Ok((990, 10)));
        assert_eq!(r("bytes=1000-", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(r("bytes=-0", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(r("bytes=5-1", 1000), Err(RangeError::Ignore));
        assert_eq!(r("bytes=0-1,5-6", 1000), Err(RangeError::Ignore));
        assert_eq!(r("items=0-1", 1000), Err(RangeError::Ignore));
        assert_eq!(r("bytes=x-", 1000), Err(RangeError::Ignore));
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let t = DateTime::parse_from_rfc3339("2026-12-07T10:00:00.123Z").unwrap().with_timezone(&Utc);
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(t, id)).unwrap(), (t, id));
        for bad in ["", "!!!", "bm90IGEgY3Vyc29y"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
