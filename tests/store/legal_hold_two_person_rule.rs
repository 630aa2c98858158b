//! Legal holds on both backends: a release takes two different people.
//! Set → a first user's release is only a request (still held) → the same
//! user again is refused and changes nothing → a second user releases;
//! a released recording can be held again; the schema refuses a release
//! confirmed by its requester even through raw SQL.
//!
//! PostgreSQL must be listening on 127.0.0.1:5432 (see tests/common/db.rs).

use crate::common;

use chrono::Utc;
use huifang::store::{
    HoldState, NewCall, NewRecording, RecordingState, ReleaseStep, SealedRecording, SideCounters, Store,
    StoreError,
};
use uuid::Uuid;

use common::db::{Kind, TestDb};

on_both_backends!(release_takes_two_different_people);

async fn sealed_recording(store: &Store) -> Uuid {
    let id = Uuid::now_v7();
    store
        .insert_call(&NewCall {
            id,
            task_id: Some("task-1".into()),
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
    store
        .insert_recording(&NewRecording {
            id,
            call_id: id,
            path: "/spool/recording/x.wav".into(),
            started_at: Utc::now(),
        })
        .await
        .unwrap();
    store
        .seal_recording(&SealedRecording {
            id,
            path: "/spool/sealed/x.wav".into(),
            sha256: "ab".repeat(32),
            bytes: 44,
            duration_ms: 0,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state: RecordingState::Sealed,
            sealed_at: Utc::now(),
        })
        .await
        .unwrap();
    id
}

async fn release_takes_two_different_people(db: TestDb) {
    let s = &db.store;
    let rec = sealed_recording(s).await;
    assert!(matches!(
        s.release_hold(rec, "alice", "none", Utc::now()).await,
        Err(StoreError::NotFound { .. })
    ));
    let hold = s.set_hold(rec, "alice", "case 17", Utc::now()).await.unwrap();
    assert_eq!(hold.state, HoldState::Active);
    assert!(matches!(s.set_hold(rec, "bob", "again", Utc::now()).await, Err(StoreError::Conflict { .. })));
    assert!(matches!(
        s.set_hold(Uuid::now_v7(), "bob", "unknown", Utc::now()).await,
        Err(StoreError::NotFound { .. })
    ));

    // the first user's release is a request: still held
    let step = s.release_hold(rec, "alice", "case closed", Utc::now()).await.unwrap();
    let ReleaseStep::Requested(h) = step else { panic!("expected a request, got {step:?}") };
    assert_eq!(h.state, HoldState::ReleaseRequested);
    assert_eq!(h.requested_by.as_deref(), Some("alice"));

    // the same user again: refused, nothing changes
    let e = s.release_hold(rec, "alice", "really", Utc::now()).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("two-person"), "{e}");
    assert_eq!(s.open_hold(rec).await.unwrap().unwrap().state, HoldState::ReleaseRequested);

    // the schema refuses it too
    let confirm_self = match db.kind {
        Kind::Sqlite => format!(
            "UPDATE legal_holds SET state = 'released', released_by = 'alice', \
             released_at = '2026-11-27T06:00:00.000Z' WHERE id = '{}'",
            h.id
        ),
        Kind::Postgres => format!(
            "UPDATE legal_holds SET state = 'released', released_by = 'alice', released_at = now() \
             WHERE id = '{}'",
            h.id
        ),
    };
    assert!(db.raw_all(&[&confirm_self]).await.is_err());
    assert!(db.raw_all(&[&format!("DELETE FROM legal_holds WHERE id = '{}'", h.id)]).await.is_err());

    // a second, different user releases
    let step = s.release_hold(rec, "bob", "confirmed", Utc::now()).await.unwrap();
    let ReleaseStep::Released(h) = step else { panic!("expected a release, got {step:?}") };
    assert_eq!(h.state, HoldState::Released);
    assert_eq!(h.released_by.as_deref(), Some("bob"));
    assert!(s.open_hold(rec).await.unwrap().is_none());

    // a released hold never comes back; a new hold may be set
    let back = match db.kind {
        Kind::Sqlite => format!("UPDATE legal_holds SET state = 'active' WHERE id = '{}'", h.id),
        Kind::Postgres => format!("UPDATE legal_holds SET state = 'active' WHERE id = '{}'", h.id),
    };
    assert!(db.raw_all(&[&back]).await.is_err());
    s.set_hold(rec, "carol", "case 18", Utc::now()).await.unwrap();
    assert_eq!(s.holds(rec).await.unwrap().len(), 2);
}
