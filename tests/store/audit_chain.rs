//! The audit log (E6) on both backends: appends form one hash chain even
//! when 100 of them race, rows refuse UPDATE/DELETE (and TRUNCATE on
//! PostgreSQL), and a row changed behind the triggers' back is caught at
//! its sequence number.
//!
//! PostgreSQL must be listening on 127.0.0.1:5432 with trust auth
//! (`scripts/test.sh` starts it; `HUIFANG_TEST_PG_URL` overrides the admin
//! URL). Without a server the PostgreSQL tests fail, they do not skip.

use crate::common;

use chrono::Utc;
use huifang::audit::{AuditAction, AuditEvent, GENESIS, verify_chain, verify_chain_from};
use huifang::store::{
    Archived, NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store, StoreError,
};
use serde_json::json;
use uuid::Uuid;

use common::db::{Kind, TestDb};

on_both_backends!(
    hundred_concurrent_appends_form_one_chain,
    rows_refuse_update_and_delete,
    tampered_row_is_caught_at_its_seq,
    only_a_continuing_insert_is_accepted,
    a_change_and_its_event_commit_together,
);

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(
        format!("user{}", n % 3),
        AuditAction::ALL[n % AuditAction::ALL.len()],
        Uuid::new_v4(),
        json!({"n": n, "sha256": "ab".repeat(32), "nested": {"b": 1, "a": [1, 2]}}),
    )
}

async fn hundred_concurrent_appends_form_one_chain(db: TestDb) {
    let mut tasks = Vec::new();
    for n in 0..100 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move { store.append_audit(&event(n)).await }));
    }
    for t in tasks {
        t.await.unwrap().expect("append");
    }
    // a second store on the same database (another process, another daemon)
    let other = Store::open(&db.url).await.unwrap();
    let mut tasks = Vec::new();
    for n in 100..120 {
        let (a, b) = (db.store.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 { a.append_audit(&event(n)).await } else { b.append_audit(&event(n)).await }
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("append");
    }
    let rows = db.store.audit_rows(0).await.unwrap();
    assert_eq!(rows.len(), 120);
    assert_eq!(rows[0].prev_hash, GENESIS);
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=120).collect::<Vec<_>>());
    verify_chain(&rows).expect("the chain verifies");
    // a partial check from a known link
    let tail = db.store.audit_rows(50).await.unwrap();
    let link = db.store.audit_link(50).await.unwrap().unwrap();
    verify_chain_from(Some((link.0, &link.1)), &tail).unwrap();
    other.close().await;
}

async fn rows_refuse_update_and_delete(db: TestDb) {
    for n in 0..3 {
        db.store.append_audit(&event(n)).await.unwrap();
    }
    let e = db.raw_all(&["UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"]).await.unwrap_err();
    assert!(e.to_string().contains("E6"), "{e}");
    let e = db.raw_all(&["DELETE FROM audit_events WHERE seq = 3"]).await.unwrap_err();
    assert!(e.to_string().contains("E6"), "{e}");
    if db.kind == Kind::Postgres {
        let e = db.raw_all(&["TRUNCATE audit_events"]).await.unwrap_err();
        assert!(e.to_string().contains("never truncated"), "{e}");
    }
    verify_chain(&db.store.audit_rows(0).await.unwrap()).unwrap();
    assert_eq!(db.store.audit_rows(0).await.unwrap().len(), 3);
}

async fn tampered_row_is_caught_at_its_seq(db: TestDb) {
    for n in 0..10 {
        db.store.append_audit(&event(n)).await.unwrap();
    }
    // an operator with the database's owner rights drops the guard
    let drop = match db.kind {
        Kind::Sqlite => "DROP TRIGGER audit_events_never_updated",
        Kind::Postgres => "DROP TRIGGER audit_events_guard ON audit_events",
    };
    db.raw_all(&[drop, "UPDATE audit_events SET detail = '{\"n\":999}' WHERE seq = 7"]).await.unwrap();
    let rows = db.store.audit_rows(0).await.unwrap();
    let brk = verify_chain(&rows).unwrap_err();
    assert_eq!(brk.seq, 7, "{brk}");
}

async fn only_a_continuing_insert_is_accepted(db: TestDb) {
    let first = db.store.append_audit(&event(0)).await.unwrap();
    let zeros = GENESIS;
    let at = match db.kind {
        Kind::Sqlite => "'2026-11-27T06:00:00.000Z'",
        Kind::Postgres => "'2026-11-27T06:00:00.000Z'::timestamptz",
    };
    let h = "ab".repeat(32);
    // a fork: seq 2 chained to genesis
    let fork = format!(
        "INSERT INTO audit_events VALUES (2, {at}, 'x', 'call.placed', 's', '{{}}', '{zeros}', '{h}')"
    );
    assert!(db.raw_all(&[&fork]).await.is_err());
    // a gap
    let gap = format!(
        "INSERT INTO audit_events VALUES (5, {at}, 'x', 'call.placed', 's', '{{}}', '{}', '{h}')",
        first.hash
    );
    assert!(db.raw_all(&[&gap]).await.is_err());
    assert_eq!(db.store.audit_rows(0).await.unwrap().len(), 1);
}

/// The `*_audited` writes: the state change and its audit event in one
/// commit; when the change is refused, no event is appended either.
async fn a_change_and_its_event_commit_together(db: TestDb) {
    let s = &db.store;
    let id = Uuid::now_v7();
    s.insert_call(&NewCall {
        id,
        task_id: None,
        client_id: Some("C1".into()),
        agent_uri: "sip:agent@x".into(),
        client_uri: "sip:+8613800000000@x".into(),
        started_at: Utc::now(),
        kind: None,
        agent_id: None,
        claimed_at: None,
    })
    .await
    .unwrap();
    s.insert_recording(&NewRecording {
        id,
        call_id: id,
        path: "/spool/r.wav".into(),
        started_at: Utc::now(),
    })
    .await
    .unwrap();
    let seal = SealedRecording {
        id,
        path: "/spool/sealed/r.wav".into(),
        sha256: "ab".repeat(32),
        bytes: 44,
        duration_ms: 0,
        agent: SideCounters::default(),
        client: SideCounters::default(),
        state: RecordingState::Sealed,
        sealed_at: Utc::now(),
    };
    let ev = |a: AuditAction| AuditEvent::system(a, id, json!({"n": 1}));
    let count = || async { s.audit_rows(0).await.unwrap().len() };

    let row = s.seal_recording_audited(&seal, &ev(AuditAction::RecordingSealed)).await.unwrap();
    assert_eq!((row.seq, row.action.as_str()), (1, "recording.sealed"));
    assert_eq!(s.get_recording(id).await.unwrap().state, RecordingState::Sealed);
    let again = s.seal_recording_audited(&seal, &ev(AuditAction::RecordingSealed)).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    assert_eq!(count().await, 1, "a refused seal appends nothing");

    let ended = ev(AuditAction::CallEnded);
    s.finish_call_audited(id, "completed", None, Utc::now(), &ended).await.unwrap();
    assert_eq!(s.get_call(id).await.unwrap().outcome.as_deref(), Some("completed"));
    let again = s.finish_call_audited(id, "busy", None, Utc::now(), &ended).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    let unknown = s.finish_call_audited(Uuid::now_v7(), "busy", None, Utc::now(), &ended).await;
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })), "{unknown:?}");
    assert_eq!(count().await, 2);

    let archived = Archived {
        key: "recordings/k.wav".into(),
        manifest_key: "recordings/k.json".into(),
        version: Some("v1".into()),
        manifest_version: Some("v2".into()),
        retain_until: Utc::now(),
        at: Utc::now(),
    };
    let events = [ev(AuditAction::RecordingUploaded), ev(AuditAction::RecordingVerified)];
    let rows = s.mark_archived_audited(id, &archived, &events).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(s.archive_record(id).await.unwrap().archived.is_some());
    let again = s.mark_archived_audited(id, &archived, &events).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    assert_eq!(count().await, 4, "a refused mark appends nothing");
    verify_chain(&s.audit_rows(0).await.unwrap()).unwrap();
}
