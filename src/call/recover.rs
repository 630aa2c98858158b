//! Start-up recovery after a crash (E4).
//!
//! Before huifang places any call it repairs what a `kill -9` or a power
//! cut left behind: every WAV still in the spool's `recording/` directory
//! gets its header sizes rewritten from its length and is sealed (fsync,
//! SHA-256, rename) with state `interrupted`, and gets its
//! `recording.sealed` audit event (state `interrupted`); a recording row
//! still `recording` whose file is already in `sealed/` (the crash came
//! between the file's seal and the row's — found by the soak, the row
//! would otherwise never be sealed nor archived) is sealed `interrupted`
//! from that file, hashed again; every call without
//! an outcome of this instance is closed as `interrupted`, with its
//! `call.ended` event. Then the instance takes back the leases it held
//! (its tasks and its agents' "in a call"): the calls they were for are
//! closed, so the tasks go back to the queue at once instead of when their
//! leases run out (found by the soak: a `kill -9` held every task that was
//! in a call for `lease_secs`). Nothing is deleted. The repaired recordings, like
//! those sealed during the last shutdown after the uploader stopped, are
//! final and not archived: the uploader takes every such recording from the
//! queue when it starts (E4).

use chrono::Utc;
use serde_json::json;
use tracing::{info, warn};

use super::Outcome;
use crate::audit::{AuditAction, AuditEvent};
use crate::media::recorder::{Sealed, describe_sealed, repair_spool, sealed_path};
use crate::store::{NewRecording, RecordingState, SideCounters, Store, StoreError};

/// What recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Recordings repaired and sealed as interrupted.
    pub recordings: usize,
    /// Calls closed as interrupted.
    pub calls: usize,
    /// Task leases of this instance given back.
    pub leases: u64,
}

/// Repairs the spool and closes open calls. Call once at start-up, before
/// the first call. With `instance`, only the open calls that instance
/// placed (and calls of no named instance) are closed: other instances
/// sharing the database may be in the middle of theirs.
pub async fn recover(
    store: &Store,
    spool: &std::path::Path,
    instance: Option<&str>,
) -> Result<Recovered, StoreError> {
    let spool_dir = spool.to_path_buf();
    let spool = spool_dir.clone();
    let repaired = match tokio::task::spawn_blocking(move || repair_spool(&spool)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            warn!(error = %e, "spool repair failed");
            Vec::new()
        }
        Err(e) => {
            warn!(error = %e, "spool repair panicked");
            Vec::new()
        }
    };
    let mut done = Recovered::default();
    for sealed in &repaired {
        if seal_row(store, sealed).await {
            done.recordings += 1;
        }
        info!(recording = %sealed.id, duration_ms = sealed.duration_ms, "repaired an interrupted recording");
    }
    // rows whose file was sealed and the row not: the file is whole
    for r in store.recordings_in_state(RecordingState::Recording.as_str()).await? {
        let dir = spool_dir.clone();
        if !sealed_path(&dir, r.id).exists() {
            continue; // not ours, or still being written by another instance
        }
        let sealed = match tokio::task::spawn_blocking(move || describe_sealed(&dir, r.id)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!(recording = %r.id, error = %e, "a sealed file without its row's seal cannot be read");
                continue;
            }
            Err(e) => {
                warn!(recording = %r.id, error = %e, "reading a sealed file panicked");
                continue;
            }
        };
        if seal_row(store, &sealed).await {
            done.recordings += 1;
            info!(recording = %r.id, duration_ms = sealed.duration_ms, "sealed the row of a recording whose file was sealed before the crash");
        }
    }
    let open = match instance {
        Some(me) => store.open_calls_of(me).await?,
        None => store.open_calls().await?,
    };
    for call in open {
        let reason = "huifang stopped during the call";
        complete_events(store, call).await;
        let ended = last_sign_of_life(store, call).await;
        store.finish_call(call, Outcome::Interrupted.as_str(), Some(reason), ended).await?;
        let event = AuditEvent {
            at: ended,
            ..AuditEvent::system(
                AuditAction::CallEnded,
                call,
                json!({"outcome": Outcome::Interrupted.as_str(), "reason": reason}),
            )
        };
        if let Err(e) = store.append_audit(&event).await {
            warn!(%call, error = %e, "audit: call.ended not written");
        }
        done.calls += 1;
        info!(%call, "closed an interrupted call");
    }
    if let Some(me) = instance {
        // This instance has just started: no call of its own is up, so no
        // lease of its own stands for one.
        done.leases = store.release_instance(me).await?;
    }
    Ok(done)
}

/// The events a call cut by the crash should have and does not: the
/// crash came between a write of its row and the audit event that goes
/// with it (`call.placed` after the row's insert, `call.answered` after its
/// answer; found by the soak: a `kill -9` 34 ms after an answer left the
/// call without `call.answered`, which `verify` reports). Written now, at
/// the times the row holds, marked `"recovered": true`. Best effort: what
/// fails is what `verify` reports.
async fn complete_events(store: &Store, call: uuid::Uuid) {
    let Ok(c) = store.get_call(call).await else { return };
    let have: Vec<String> = match store.audit_of(&call.to_string(), 0, 100).await {
        Ok(rows) => rows.into_iter().map(|r| r.action).collect(),
        Err(e) => {
            warn!(%call, error = %e, "audit: the call's events cannot be read; not completed");
            return;
        }
    };
    let mut missing = Vec::new();
    if !have.iter().any(|a| a == AuditAction::CallPlaced.as_str()) {
        let detail =
            json!({"task_id": c.task_id, "client_id": c.client_id, "kind": c.kind, "recovered": true});
        missing.push((c.started_at, AuditAction::CallPlaced, detail));
    }
    if let Some(at) = c.answered_at
        && !have.iter().any(|a| a == AuditAction::CallAnswered.as_str())
    {
        missing.push((at, AuditAction::CallAnswered, json!({"recovered": true})));
    }
    for (at, action, detail) in missing {
        let event = AuditEvent { at, ..AuditEvent::system(action, call, detail) };
        match store.append_audit(&event).await {
            Ok(_) => {
                info!(%call, action = %event.action, "audit: an event the crash cut off written at recovery")
            }
            Err(e) => {
                warn!(%call, error = %e, action = %event.action, "audit: event not written at recovery")
            }
        }
    }
}

/// When an interrupted call was last known alive: the end of its
/// recording's audio (written at most ~300 ms before the stop), or its
/// latest trace time — never later than now (found by the soak: the end
/// was the recovery time, minutes later for a slow restart).
async fn last_sign_of_life(store: &Store, call: uuid::Uuid) -> chrono::DateTime<Utc> {
    let now = Utc::now();
    let Ok(c) = store.get_call(call).await else { return now };
    let traced = [
        Some(c.started_at),
        c.agent_invited_at,
        c.agent_status_at,
        c.agent_ringing_at,
        c.agent_answered_at,
        c.client_invited_at,
        c.client_status_at,
        c.client_ringing_at,
        c.client_answered_at,
        c.answered_at,
    ];
    let audio = match store.recording_for_call(call).await {
        Ok(Some(r)) => r.duration_ms.map(|ms| r.started_at + chrono::Duration::milliseconds(ms as i64)),
        _ => None,
    };
    traced.into_iter().chain([audio]).flatten().max().unwrap_or(now).min(now)
}

/// Seals the row of a recording sealed by recovery as `interrupted` (made
/// first when the crash came before it was written), with its
/// `recording.sealed` audit event; `false` when it could not be traced.
async fn seal_row(store: &Store, sealed: &Sealed) -> bool {
    let row = super::sealed_row(
        sealed,
        RecordingState::Interrupted,
        SideCounters::default(),
        SideCounters::default(),
    );
    let mut result = store.seal_recording(&row).await;
    if let Err(StoreError::NotFound { .. }) = result {
        // The crash came between opening the file and writing its row:
        // the file is named after its call, so the row can be made now.
        let new = NewRecording {
            id: sealed.id,
            call_id: sealed.id,
            path: sealed.path.display().to_string(),
            started_at: Utc::now(),
        };
        result = match store.insert_recording(&new).await {
            Ok(()) => store.seal_recording(&row).await,
            Err(e) => Err(e),
        };
    }
    if let Err(e) = result {
        warn!(recording = %sealed.id, error = %e, "repaired recording not traced");
        return false;
    }
    // E6: like every seal, in the audit log (ids and hashes only)
    let call_id = store.get_recording(sealed.id).await.map_or(sealed.id, |r| r.call_id);
    let event = super::sealed_event(&row, call_id);
    if let Err(e) = store.append_audit(&event).await {
        warn!(recording = %sealed.id, error = %e, "audit: recording.sealed not written");
    }
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use uuid::Uuid;

    use super::*;
    use crate::store::NewCall;

    /// What a `kill -9` leaves in `recording/`: our header with zero sizes
    /// (never updated) and one second of audio behind it.
    fn half_written(spool: &Path, id: Uuid) {
        let mut b = Vec::new();
        b.extend(b"RIFF");
        b.extend(0u32.to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes()); // PCM
        b.extend(2u16.to_le_bytes()); // stereo
        b.extend(8000u32.to_le_bytes());
        b.extend(32_000u32.to_le_bytes());
        b.extend(4u16.to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend(0u32.to_le_bytes());
        b.extend((0..8000 * 4).map(|i| (i % 251) as u8));
        std::fs::create_dir_all(spool.join("recording")).unwrap();
        std::fs::write(spool.join("recording").join(format!("{id}.wav")), b).unwrap();
    }

    async fn open_call(store: &Store, id: Uuid, with_row: Option<&Path>) {
        // placed ten seconds before the crash
        let at = Utc::now() - chrono::Duration::seconds(10);
        store
            .insert_call(&NewCall {
                id,
                task_id: Some("t1".into()),
                client_id: Some("C1".into()),
                agent_uri: "sip:agent1@x".into(),
                client_uri: "sip:13800000000@x".into(),
                started_at: at,
                kind: None,
                agent_id: None,
                claimed_at: None,
            })
            .await
            .unwrap();
        if let Some(spool) = with_row {
            let path = spool.join("recording").join(format!("{id}.wav")).display().to_string();
            store.insert_recording(&NewRecording { id, call_id: id, path, started_at: at }).await.unwrap();
            store.mark_answered(id, at).await.unwrap();
        }
    }

    // invariant E4, E6
    #[tokio::test]
    async fn repaired_recordings_and_closed_calls_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let store = Store::open("sqlite::memory:").await.unwrap();
        // a call killed mid-recording, one killed between opening the file
        // and writing its row, and one killed before anything was recorded
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        open_call(&store, a, Some(&spool)).await;
        half_written(&spool, a);
        open_call(&store, b, None).await;
        half_written(&spool, b);
        open_call(&store, c, None).await;

        let done = recover(&store, &spool, None).await.unwrap();
        assert_eq!(done, Recovered { recordings: 2, calls: 3, leases: 0 });

        let rows = store.audit_rows(0).await.unwrap();
        crate::audit::verify_chain(&rows).unwrap();
        for id in [a, b] {
            let rec = store.get_recording(id).await.unwrap();
            assert_eq!(rec.state, RecordingState::Interrupted);
            let sealed: Vec<_> = rows
                .iter()
                .filter(|r| r.action == "recording.sealed" && r.subject == id.to_string())
                .collect();
            assert_eq!(sealed.len(), 1, "one recording.sealed for {id}");
            let d = &sealed[0].detail;
            assert_eq!(d["state"], "interrupted");
            assert_eq!(d["call_id"], id.to_string());
            assert_eq!(d["sha256"].as_str(), rec.sha256.as_deref());
            assert_eq!(d["bytes"].as_u64(), rec.bytes);
            assert_eq!(d["duration_ms"], 1000);
        }
        for id in [a, b, c] {
            let ended: Vec<_> =
                rows.iter().filter(|r| r.action == "call.ended" && r.subject == id.to_string()).collect();
            assert_eq!(ended.len(), 1, "one call.ended for {id}");
            assert_eq!(ended[0].detail["outcome"], "interrupted");
            let call = store.get_call(id).await.unwrap();
            assert_eq!(call.outcome.as_deref(), Some("interrupted"));
            // ended when last known alive, never after the recovery
            assert!(call.ended_at.unwrap() <= ended[0].at, "{id}");
        }
        // the events the crash cut off: every call's call.placed, a's
        // call.answered, at the times the rows hold
        for id in [a, b, c] {
            let placed: Vec<_> =
                rows.iter().filter(|r| r.action == "call.placed" && r.subject == id.to_string()).collect();
            assert_eq!(placed.len(), 1, "one call.placed for {id}");
            assert_eq!(placed[0].at, store.get_call(id).await.unwrap().started_at);
            assert_eq!(placed[0].detail["recovered"], true);
        }
        let answered: Vec<_> = rows.iter().filter(|r| r.action == "call.answered").collect();
        assert_eq!(answered.len(), 1, "{answered:?}");
        assert_eq!(answered[0].subject, a.to_string());
        assert_eq!(Some(answered[0].at), store.get_call(a).await.unwrap().answered_at);
        // a's recording began 10 s before the restart: its call ended where
        // its one second of audio did, not at the recovery; c (nothing
        // recorded, nothing traced but its start) at its start
        let (call, rec) = (store.get_call(a).await.unwrap(), store.get_recording(a).await.unwrap());
        assert_eq!(call.ended_at, Some(rec.started_at + chrono::Duration::milliseconds(1000)));
        let call = store.get_call(c).await.unwrap();
        assert_eq!(call.ended_at, Some(call.started_at));
        // both are queued for the archive
        let queued: Vec<Uuid> =
            store.pending_uploads(10).await.unwrap().iter().map(|j| j.recording_id).collect();
        assert_eq!(queued, [a, b]);
        // a second start-up finds nothing more to do, and audits nothing more
        assert_eq!(recover(&store, &spool, None).await.unwrap(), Recovered::default());
        assert_eq!(store.audit_rows(0).await.unwrap().len(), rows.len());
    }

    /// Found by the soak: a `kill -9` between the recorder's seal of the
    /// file (renamed into `sealed/`) and the seal of its row left the row
    /// `recording` for ever — never archived, the call closed
    /// `interrupted` beside it.
    #[tokio::test]
    async fn a_file_sealed_before_the_crash_gets_its_row_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let store = Store::open("sqlite::memory:").await.unwrap();
        let id = Uuid::now_v7();
        open_call(&store, id, Some(&spool)).await;
        // the recorder sealed the file; the crash came before the row's seal
        let pool = crate::media::recorder::RecorderPool::new(spool.clone(), 1).unwrap();
        let mut rec = pool.open(id).await.unwrap();
        rec.write(&vec![7i16; 2 * 8000 * 2]).unwrap();
        let file = rec.seal().await.unwrap();
        assert_eq!(store.get_recording(id).await.unwrap().state, RecordingState::Recording);
        // a row of another instance still being recorded elsewhere: left alone
        let other = Uuid::now_v7();
        open_call(&store, other, Some(&dir.path().join("elsewhere"))).await;

        let done = recover(&store, &spool, Some("i1")).await.unwrap();
        assert_eq!(done.recordings, 1);
        let row = store.get_recording(id).await.unwrap();
        assert_eq!(row.state, RecordingState::Interrupted);
        assert_eq!(row.sha256.as_deref(), Some(file.sha256.as_str()));
        assert_eq!((row.bytes, row.duration_ms), (Some(file.bytes), Some(2000)));
        assert_eq!(row.path, file.path.display().to_string());
        assert_eq!(store.get_recording(other).await.unwrap().state, RecordingState::Recording);
        let rows = store.audit_rows(0).await.unwrap();
        crate::audit::verify_chain(&rows).unwrap();
        assert_eq!(
            rows.iter().filter(|r| r.action == "recording.sealed" && r.subject == id.to_string()).count(),
            1
        );
        // its call is closed and it goes to the archive
        assert_eq!(store.get_call(id).await.unwrap().outcome.as_deref(), Some("interrupted"));
        let queued: Vec<Uuid> =
            store.pending_uploads(10).await.unwrap().iter().map(|j| j.recording_id).collect();
        assert_eq!(queued, [id]);
    }
}
