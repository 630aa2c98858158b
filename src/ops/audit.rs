//! The audit log seen by compliance, and the record of plays.
//!
//! - [`events`]: the events about a recording, a call or a client's calls,
//!   in chain order, with their chain links (`prev_hash`, `hash`) so that
//!   a reader can check them against `huifang verify`.
//! - [`PlayLog`]: a browser player asks for a recording in many range
//!   requests (the first from byte 0, one more per seek). One play is one
//!   `recording.played` event listing every byte range served: the log
//!   gathers a person's ranges of a recording and writes the event when
//!   the play has been idle for [`PLAY_IDLE`], or at shutdown
//!   ([`PlayLog::flush_all`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tracing::warn;
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role, Via};
use crate::audit::{AuditAction, AuditEvent, time_text};
use crate::store::Store;

/// A play ends after this long without a range request.
pub const PLAY_IDLE: Duration = Duration::from_secs(10);

/// One audit event as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventItem {
    /// Position in the chain.
    pub seq: i64,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// e.g. `recording.played`.
    pub action: String,
    /// The login (or `huifang`).
    pub actor: String,
    /// The recording, call or login it is about.
    pub subject: String,
    /// More about it.
    pub detail: serde_json::Value,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// Which events.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// About this recording (or its call: recordings share their call's id).
    pub recording_id: Option<Uuid>,
    /// About any call or recording of this client.
    pub client_id: Option<String>,
}

/// Most events one answer holds.
pub const MAX_EVENTS: i64 = 10_000;

/// The events `f` selects, in chain order (compliance only).
pub async fn events(store: &Store, p: &Person, f: &EventFilter) -> Result<Vec<EventItem>, OpsError> {
    p.require_any(&[Role::Compliance])?;
    let mut subjects: Vec<String> = Vec::new();
    match (&f.recording_id, &f.client_id) {
        (Some(r), None) => {
            let rec = store.get_recording(*r).await?;
            subjects.push(r.to_string());
            if rec.call_id != *r {
                subjects.push(rec.call_id.to_string());
            }
        }
        (None, Some(c)) => {
            let calls = store
                .client_calls(
                    c,
                    chrono::DateTime::<chrono::Utc>::MIN_UTC,
                    chrono::DateTime::<chrono::Utc>::MAX_UTC,
                )
                .await?;
            for call in calls {
                subjects.push(call.call_id.to_string());
                if let Some(r) = call.recording_id.filter(|r| *r != call.call_id) {
                    subjects.push(r.to_string());
                }
            }
        }
        _ => return Err(OpsError::invalid("recording_id", "give recording_id or client_id (one of them)")),
    }
    let mut rows = Vec::new();
    for s in &subjects {
        rows.extend(store.audit_of(s, 0, MAX_EVENTS).await?);
    }
    rows.sort_by_key(|r| r.seq);
    rows.dedup_by_key(|r| r.seq);
    rows.truncate(MAX_EVENTS as usize);
    Ok(rows
        .into_iter()
        .map(|r| EventItem {
            seq: r.seq,
            at: time_text(r.at),
            action: r.action,
            actor: r.actor,
            subject: r.subject,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect())
}

#[derive(Debug)]
struct Play {
    person: Person,
    source: &'static str,
    ranges: Vec<(u64, u64)>,
    last: Instant,
}

/// A play: who (login and how they came in) and which recording.
type PlayKey = (String, Via, Uuid);

/// Plays in progress, written as one `recording.played` each when idle.
#[derive(Clone, Default)]
pub struct PlayLog {
    plays: Arc<Mutex<HashMap<PlayKey, Play>>>,
}

impl PlayLog {
    /// A range `[start, start + len)` of recording `id` served to `p`.
    pub fn served(&self, p: &Person, id: Uuid, source: &'static str, start: u64, len: u64) {
        let key = (p.login.clone(), p.via.clone(), id);
        let mut plays = self.plays.lock().expect("play log lock");
        let play = plays.entry(key).or_insert_with(|| Play {
            person: p.clone(),
            source,
            ranges: Vec::new(),
            last: Instant::now(),
        });
        play.last = Instant::now();
        if len > 0 {
            play.ranges.push((start, start + len - 1));
        }
    }

    /// Writes the plays idle since [`PLAY_IDLE`] (all of them when
    /// `everything`); a play whose event cannot be written is kept and
    /// tried again.
    pub async fn flush(&self, store: &Store, everything: bool) {
        let done: Vec<(PlayKey, Play)> = {
            let mut plays = self.plays.lock().expect("play log lock");
            let keys: Vec<_> = plays
                .iter()
                .filter(|(_, p)| everything || p.last.elapsed() >= PLAY_IDLE)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter().filter_map(|k| plays.remove(&k).map(|p| (k, p))).collect()
        };
        for (key, play) in done {
            let id = key.2;
            let e = AuditEvent::new(
                &play.person.login,
                AuditAction::RecordingPlayed,
                id,
                json!({
                    "role": play.person.role_text(),
                    "address": play.person.address,
                    "source": play.source,
                    "ranges": merged(&play.ranges).iter().map(|(a, b)| format!("{a}-{b}")).collect::<Vec<_>>(),
                    "requests": play.ranges.len(),
                }),
            );
            if let Err(err) = store.append_audit(&e).await {
                warn!(recording = %id, error = %err, "audit: recording.played not written yet; retrying");
                self.plays.lock().expect("play log lock").insert(key, play);
            }
        }
    }

    /// Writes every play now (at shutdown).
    pub async fn flush_all(&self, store: &Store) {
        self.flush(store, true).await
    }

    /// Plays not written yet.
    pub fn pending(&self) -> usize {
        self.plays.lock().expect("play log lock").len()
    }
}

/// Sorted ranges, overlapping and adjacent ones joined.
fn merged(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut r = ranges.to_vec();
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        assert_eq!(merged(&[(100, 199), (0, 99), (150, 300), (500, 600)]), vec![(0, 300), (500, 600)]);
        assert_eq!(merged(&[]), vec![]);
    }
}
