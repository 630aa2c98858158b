//! The archive's columns on both backends (issue 4): `calls.kind`, the
//! uploader's queue, `mark_archived` once, spool removal after it, and the
//! schema's rules around them (E2, E3, E4). The harness is
//! `tests/common/db.rs`: a fresh SQLite file and a throwaway PostgreSQL
//! database per test.

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use huifang::store::{
    Archived, NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store, StoreError,
};
use uuid::Uuid;

use common::db::{Kind, TestDb};

// ---------------------------------------------------------------- behaviours

on_both_backends!(
    kind_is_stored_with_the_call_and_written_once,
    queue_lists_final_unarchived_recordings_with_their_call,
    upload_errors_are_counted,
    archived_is_written_once_and_only_for_final_recordings,
    spool_removal_comes_after_archiving_once,
    trigger_refuses_rewriting_the_archive_record,
);

fn t(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
}

const SHA: &str = "abababababababababababababababababababababababababababababababab";

async fn call(s: &Store, kind: Option<&str>, at: i64) -> Uuid {
    let id = Uuid::now_v7();
    s.insert_call(&NewCall {
        id,
        task_id: Some("task-1".into()),
        client_id: Some("C1".into()),
        agent_uri: "sip:agent1@127.0.0.1".into(),
        client_uri: "sip:13800000000@127.0.0.1".into(),
        started_at: t(at),
        kind: kind.map(str::to_string),
        agent_id: None,
        claimed_at: None,
    })
    .await
    .unwrap();
    id
}

async fn recording(s: &Store, call: Uuid, at: i64, seal: Option<RecordingState>) -> Uuid {
    let id = Uuid::now_v7();
    s.insert_recording(&NewRecording {
        id,
        call_id: call,
        path: format!("/spool/recording/{id}.wav"),
        started_at: t(at),
    })
    .await
    .unwrap();
    if let Some(state) = seal {
        s.seal_recording(&SealedRecording {
            id,
            path: format!("/spool/sealed/{id}.wav"),
            sha256: SHA.into(),
            bytes: 44,
            duration_ms: 1000,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state,
            sealed_at: t(at + 5000),
        })
        .await
        .unwrap();
    }
    id
}

fn archived(id: Uuid) -> Archived {
    Archived {
        key: format!("recordings/2026/11/27/{id}.wav"),
        manifest_key: format!("recordings/2026/11/27/{id}.json"),
        version: Some("v1".into()),
        manifest_version: Some("v2".into()),
        retain_until: Utc.with_ymd_and_hms(2041, 11, 27, 6, 0, 1).unwrap(),
        at: t(60_000),
    }
}

// invariant E2
async fn kind_is_stored_with_the_call_and_written_once(db: TestDb) {
    let s = &db.store;
    let c = call(s, Some("new_account"), 0).await;
    assert_eq!(s.get_call(c).await.unwrap().kind.as_deref(), Some("new_account"));
    let none = call(s, None, 1).await;
    assert_eq!(s.get_call(none).await.unwrap().kind, None);
    let id = if db.kind == Kind::Sqlite { format!("'{c}'") } else { format!("'{c}'::uuid") };
    let e = db.raw(format!("UPDATE calls SET kind = 'other' WHERE id = {id}")).await.unwrap_err();
    assert!(e.to_string().contains("E2"), "{e}");
}

// invariant E4
async fn queue_lists_final_unarchived_recordings_with_their_call(db: TestDb) {
    let s = &db.store;
    let c1 = call(s, Some("new_account"), 0).await;
    let c2 = call(s, None, 10).await;
    let c3 = call(s, None, 20).await;
    let r1 = recording(s, c1, 100, Some(RecordingState::Sealed)).await;
    let r2 = recording(s, c2, 200, Some(RecordingState::Interrupted)).await;
    let _running = recording(s, c3, 300, None).await;
    // a sealed recording of a call without its outcome yet waits (the
    // manifest carries the outcome)
    assert!(s.pending_uploads(100).await.unwrap().is_empty());
    s.finish_call(c1, "completed", None, t(9000)).await.unwrap();
    s.finish_call(c2, "interrupted", Some("huifang stopped during the call"), t(9000)).await.unwrap();

    let q = s.pending_uploads(100).await.unwrap();
    assert_eq!(q.iter().map(|j| j.recording_id).collect::<Vec<_>>(), vec![r1, r2]);
    let j = &q[0];
    assert_eq!(j.call_id, c1);
    assert_eq!(j.kind.as_deref(), Some("new_account"));
    assert_eq!(j.state, RecordingState::Sealed);
    assert_eq!(j.sha256, SHA);
    assert_eq!((j.bytes, j.duration_ms), (44, 1000));
    assert_eq!(j.call_started_at, t(0));
    assert_eq!(j.recording_started_at, t(100));
    assert_eq!(j.outcome.as_deref(), Some("completed"));
    assert_eq!(j.ended_at, Some(t(9000)));
    assert_eq!(j.path, format!("/spool/sealed/{r1}.wav"));
    assert_eq!(j.task_id.as_deref(), Some("task-1"));
    assert_eq!(j.client_id.as_deref(), Some("C1"));
    assert_eq!(q[1].state, RecordingState::Interrupted);
    assert_eq!(s.pending_uploads(1).await.unwrap().len(), 1);

    s.mark_archived(r1, &archived(r1)).await.unwrap();
    assert_eq!(
        s.pending_uploads(100).await.unwrap().iter().map(|j| j.recording_id).collect::<Vec<_>>(),
        vec![r2]
    );
}

async fn upload_errors_are_counted(db: TestDb) {
    let s = &db.store;
    let c = call(s, None, 0).await;
    let r = recording(s, c, 100, Some(RecordingState::Sealed)).await;
    s.finish_call(c, "completed", None, t(9000)).await.unwrap();
    s.record_upload_error(r, "S3 PutObject: connection refused").await.unwrap();
    s.record_upload_error(r, "S3 PutObject: 503").await.unwrap();
    let rec = s.archive_record(r).await.unwrap();
    assert_eq!(rec.upload_attempts, 2);
    assert_eq!(rec.last_upload_error.as_deref(), Some("S3 PutObject: 503"));
    assert_eq!(s.pending_uploads(10).await.unwrap()[0].upload_attempts, 2);
    s.mark_archived(r, &archived(r)).await.unwrap();
    let rec = s.archive_record(r).await.unwrap();
    assert_eq!(rec.upload_attempts, 3);
    assert_eq!(rec.last_upload_error, None);
    // after archiving, errors no longer count
    s.record_upload_error(r, "late").await.unwrap();
    assert_eq!(s.archive_record(r).await.unwrap().last_upload_error, None);
}

// invariant E3, E4
async fn archived_is_written_once_and_only_for_final_recordings(db: TestDb) {
    let s = &db.store;
    let c = call(s, None, 0).await;
    let running = recording(s, c, 100, None).await;
    assert!(matches!(s.mark_archived(running, &archived(running)).await, Err(StoreError::Conflict { .. })));
    assert!(matches!(
        s.mark_archived(Uuid::now_v7(), &archived(running)).await,
        Err(StoreError::NotFound { .. })
    ));

    let c2 = call(s, None, 1).await;
    let r = recording(s, c2, 200, Some(RecordingState::Sealed)).await;
    assert_eq!(s.archive_record(r).await.unwrap().archived, None);
    let a = archived(r);
    s.mark_archived(r, &a).await.unwrap();
    assert_eq!(s.archive_record(r).await.unwrap().archived, Some(a.clone()));
    let other = Archived { version: Some("v9".into()), ..a.clone() };
    assert!(matches!(s.mark_archived(r, &other).await, Err(StoreError::Conflict { .. })));
    assert_eq!(s.archive_record(r).await.unwrap().archived, Some(a));
    // the seal is untouched
    let row = s.get_recording(r).await.unwrap();
    assert_eq!(row.sha256.as_deref(), Some(SHA));
}

// invariant E4
async fn spool_removal_comes_after_archiving_once(db: TestDb) {
    let s = &db.store;
    let c = call(s, None, 0).await;
    let r = recording(s, c, 100, Some(RecordingState::Sealed)).await;
    assert!(matches!(s.mark_spool_removed(r, t(1)).await, Err(StoreError::Conflict { .. })));
    assert!(s.archived_not_removed(t(10_000_000)).await.unwrap().is_empty());
    s.mark_archived(r, &archived(r)).await.unwrap(); // at t(60_000)
    assert!(s.archived_not_removed(t(59_999)).await.unwrap().is_empty());
    assert_eq!(s.archived_not_removed(t(60_000)).await.unwrap(), vec![(r, format!("/spool/sealed/{r}.wav"))]);
    s.mark_spool_removed(r, t(70_000)).await.unwrap();
    assert_eq!(s.archive_record(r).await.unwrap().spool_removed_at, Some(t(70_000)));
    assert!(s.archived_not_removed(t(10_000_000)).await.unwrap().is_empty());
    assert!(matches!(s.mark_spool_removed(r, t(80_000)).await, Err(StoreError::Conflict { .. })));
}

// invariant E3, E4
async fn trigger_refuses_rewriting_the_archive_record(db: TestDb) {
    let s = &db.store;
    let c = call(s, None, 0).await;
    let r = recording(s, c, 100, Some(RecordingState::Sealed)).await;
    s.mark_archived(r, &archived(r)).await.unwrap();
    let id = if db.kind == Kind::Sqlite { format!("'{r}'") } else { format!("'{r}'::uuid") };
    for set in ["archive_key = 'x'", "object_version = 'v0'", "archived_at = NULL", "manifest_key = 'y'"] {
        let e = db.raw(format!("UPDATE recordings SET {set} WHERE id = {id}")).await.unwrap_err();
        assert!(e.to_string().contains("E4"), "{set}: {e}");
    }
    // the evidence columns stay protected as before
    let e = db
        .raw(format!("UPDATE recordings SET sha256 = '{}' WHERE id = {id}", "cd".repeat(32)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("E3"), "{e}");
    // the bookkeeping columns may change
    db.raw(format!("UPDATE recordings SET last_upload_error = 'note' WHERE id = {id}")).await.unwrap();
    assert!(db.raw(format!("DELETE FROM recordings WHERE id = {id}")).await.is_err());
}
