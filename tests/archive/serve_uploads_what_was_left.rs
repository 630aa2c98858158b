//! Invariant E4 at start-up: what the last run left in the spool reaches
//! the archive when `huifang serve` starts again — recordings sealed during
//! the shutdown after the uploader had stopped (final, not archived), and a
//! recording a `kill -9` left half-written in `recording/`, which start-up
//! repairs, seals as `interrupted` and audits (`recording.sealed`, and
//! `call.ended` for its call). Afterwards `verify --deep` finds nothing.

use crate::common;

use std::time::{Duration, Instant};

use common::huifang::Huifang;
use common::site::Site;
use huifang::audit::{AuditAction, AuditEvent};
use huifang::store::{NewCall, NewRecording};
use uuid::Uuid;

/// What a `kill -9` leaves: the recorder's header with sizes never updated
/// (0) and half a second of stereo audio behind it.
fn half_written() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(b"RIFF");
    b.extend(0u32.to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(8000u32.to_le_bytes());
    b.extend(32_000u32.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend(0u32.to_le_bytes());
    b.extend((0..4000 * 4).map(|i| (i % 241) as u8));
    b
}

#[tokio::test]
async fn serve_archives_what_the_last_run_left() {
    let site = Site::local();
    let store = site.store().await;
    // sealed during the last shutdown, after the uploader stopped
    let sealed = [
        site.sealed(&store, "C1", b"RIFF....WAVEfmt sealed at shutdown 1").await,
        site.sealed(&store, "C1", b"RIFF....WAVEfmt sealed at shutdown 2").await,
    ];
    // killed mid-call: the call open, its recording half-written
    let killed = Uuid::now_v7();
    let now = chrono::Utc::now();
    store
        .insert_call(&NewCall {
            id: killed,
            task_id: Some("t1".into()),
            client_id: Some("C1".into()),
            agent_uri: "sip:agent@x".into(),
            client_uri: "sip:+8613800000000@x".into(),
            started_at: now,
            kind: None,
            agent_id: None,
            claimed_at: None,
        })
        .await
        .unwrap();
    let recording = site.dir.path().join("spool/recording");
    std::fs::create_dir_all(&recording).unwrap();
    let path = recording.join(format!("{killed}.wav"));
    std::fs::write(&path, half_written()).unwrap();
    store
        .insert_recording(&NewRecording {
            id: killed,
            call_id: killed,
            path: path.display().to_string(),
            started_at: now,
        })
        .await
        .unwrap();
    store.mark_answered(killed, now).await.unwrap();
    // what the call had written before the kill
    for action in [AuditAction::CallPlaced, AuditAction::CallAnswered] {
        store.append_audit(&AuditEvent::system(action, killed, serde_json::json!({}))).await.unwrap();
    }
    assert_eq!(store.pending_uploads(10).await.unwrap().len(), 2);

    let mut h = Huifang::start_with_config(&site.config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.count_log("recording archived and verified") < 3 {
        assert!(Instant::now() < deadline, "not all three archived within 30 s; log:\n{}", h.log());
        assert!(h.is_running(), "huifang exited; log:\n{}", h.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = h.terminate(Duration::from_secs(10));
    assert!(status.success(), "serve exited with {status}; log:\n{}", h.log());

    for id in sealed.iter().chain([&killed]) {
        let record = store.archive_record(*id).await.unwrap();
        assert!(record.archived.is_some(), "{id} not archived: {record:?}");
    }
    assert_eq!(store.get_recording(killed).await.unwrap().state.as_str(), "interrupted");
    assert_eq!(store.get_call(killed).await.unwrap().outcome.as_deref(), Some("interrupted"));
    let rows = store.audit_rows(0).await.unwrap();
    huifang::audit::verify_chain(&rows).unwrap();
    let of = |action: &str, id: &Uuid| {
        rows.iter().filter(|r| r.action == action && r.subject == id.to_string()).count()
    };
    assert_eq!(of("recording.sealed", &killed), 1);
    assert_eq!(of("call.ended", &killed), 1);
    for id in sealed.iter().chain([&killed]) {
        assert_eq!(of("recording.verified", id), 1, "{id}");
    }
    store.close().await;
    let out = site.ok(&["verify", "--deep"]);
    assert!(out.contains("no findings"), "{out}");
}
