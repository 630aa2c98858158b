//! The store on both backends: every behaviour runs once on a fresh SQLite
//! file in a temporary directory and once on a fresh PostgreSQL database
//! (`huifang_test_<random>`, dropped at the end even if the test fails).
//!
//! PostgreSQL must be listening on 127.0.0.1:5432 with trust auth
//! (`scripts/test.sh` starts it); the admin URL can be changed with
//! `HUIFANG_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Without a server the PostgreSQL tests fail, they do not skip.
//!
//! Raw-SQL checks (the triggers and CHECK constraints) go around the store
//! through a separate sqlx connection, as an operator with `psql` would.
//! The harness is `tests/common/db.rs`.

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use huifang::store::{
    CallRow, DbError, Leg, NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store,
    StoreError,
};
use uuid::Uuid;

use common::db::{Kind, TestDb, pg_admin_url};

// ---------------------------------------------------------------- behaviours

const CLIENT_URI: &str = "sip:+8613800138000@switch.example";
const AGENT_URI: &str = "sip:agent7@huifang.example";

on_both_backends!(
    migrations_run_twice_are_idempotent,
    call_lifecycle_round_trips_to_the_millisecond,
    leg_status_outside_sip_range_is_refused,
    second_finish_conflicts_and_changes_nothing,
    answer_is_marked_once_and_only_while_running,
    unknown_outcome_is_refused,
    trigger_refuses_a_second_outcome,
    recording_is_sealed_once,
    recording_needs_its_call_and_is_one_per_call,
    trigger_refuses_changing_a_sealed_recording,
    rows_are_never_deleted,
    open_calls_lists_only_unfinished_calls,
    recordings_in_state_lists_by_state,
    concurrent_writers_never_lock,
    errors_never_show_phone_uris,
);

/// 2026-11-27 06:00:00 UTC plus `ms` milliseconds and `ns` more nanoseconds.
fn t(ms: i64, ns: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap()
        + chrono::Duration::milliseconds(ms)
        + chrono::Duration::nanoseconds(ns)
}

fn new_call(id: Uuid, started_at: DateTime<Utc>) -> NewCall {
    NewCall {
        id,
        task_id: Some("task-42".into()),
        client_id: Some("C000123".into()),
        agent_uri: AGENT_URI.into(),
        agent_id: None,
        client_uri: CLIENT_URI.into(),
        started_at,
        kind: None,
        claimed_at: None,
    }
}

fn sealed(id: Uuid, state: RecordingState, hash_byte: &str) -> SealedRecording {
    SealedRecording {
        id,
        path: format!("/spool/sealed/{id}.wav"),
        sha256: hash_byte.repeat(32),
        bytes: 1_280_044,
        duration_ms: 80_000,
        agent: SideCounters { packets: 4000, lost: 3, late: 1, gaps: 2 },
        client: SideCounters { packets: 3990, lost: 10, late: 0, gaps: 5 },
        state,
        sealed_at: t(90_000, 0),
    }
}

/// A call with a running recording (same id for both, as `call::task` does).
async fn call_with_recording(db: &TestDb, start_ms: i64) -> Uuid {
    let id = Uuid::now_v7();
    db.store.insert_call(&new_call(id, t(start_ms, 0))).await.unwrap();
    db.store
        .insert_recording(&NewRecording {
            id,
            call_id: id,
            path: format!("/spool/recording/{id}.wav"),
            started_at: t(start_ms + 10, 0),
        })
        .await
        .unwrap();
    id
}

// ---------------------------------------------------------------- behaviours

async fn migrations_run_twice_are_idempotent(db: TestDb) {
    let applied = || db.raw_text("SELECT CAST(COUNT(*) AS TEXT) FROM _sqlx_migrations");
    let first = applied().await;
    assert_ne!(first, "0");
    let id = Uuid::now_v7();
    db.store.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    db.store.close().await;

    // the same database opened again, twice: nothing is applied again and
    // the data stays
    for _ in 0..2 {
        let again = Store::open(&db.url).await.expect("reopen");
        assert_eq!(again.open_calls().await.unwrap(), vec![id]);
        again.close().await;
        assert_eq!(applied().await, first);
    }
}

async fn call_lifecycle_round_trips_to_the_millisecond(db: TestDb) {
    let s = &db.store;
    let id = Uuid::now_v7();
    // sub-millisecond parts are dropped: both backends keep milliseconds
    let claimed = NewCall { claimed_at: Some(t(-25, 400_000)), ..new_call(id, t(0, 999_999)) };
    s.insert_call(&claimed).await.unwrap();
    s.update_leg(id, Leg::Agent, None, t(1, 1)).await.unwrap();
    s.update_leg(id, Leg::Agent, Some(100), t(20, 0)).await.unwrap();
    s.update_leg(id, Leg::Agent, Some(180), t(300, 500)).await.unwrap();
    s.update_leg(id, Leg::Agent, Some(200), t(4_000, 0)).await.unwrap();
    s.update_leg(id, Leg::Client, None, t(4_100, 0)).await.unwrap();
    s.update_leg(id, Leg::Client, Some(183), t(5_000, 0)).await.unwrap();
    s.update_leg(id, Leg::Client, Some(180), t(5_500, 0)).await.unwrap();
    s.update_leg(id, Leg::Client, Some(200), t(9_000, 0)).await.unwrap();
    s.mark_answered(id, t(9_050, 0)).await.unwrap();
    assert_eq!(s.open_calls().await.unwrap(), vec![id]);
    s.finish_call(id, "completed", Some("BYE from client"), t(99_999, 123)).await.unwrap();

    let row = s.get_call(id).await.unwrap();
    let want = CallRow {
        id,
        task_id: Some("task-42".into()),
        client_id: Some("C000123".into()),
        agent_uri: AGENT_URI.into(),
        agent_id: None,
        client_uri: CLIENT_URI.into(),
        started_at: t(0, 0),
        agent_invited_at: Some(t(1, 0)),
        agent_status: Some(200),
        agent_status_at: Some(t(4_000, 0)),
        agent_ringing_at: Some(t(300, 0)), // 100 Trying is not ringing
        agent_answered_at: Some(t(4_000, 0)),
        client_invited_at: Some(t(4_100, 0)),
        client_status: Some(200),
        client_status_at: Some(t(9_000, 0)),
        client_ringing_at: Some(t(5_000, 0)), // the first provisional wins
        client_answered_at: Some(t(9_000, 0)),
        answered_at: Some(t(9_050, 0)),
        ended_at: Some(t(99_999, 0)),
        outcome: Some("completed".into()),
        reason: Some("BYE from client".into()),
        kind: None,
        claimed_at: Some(t(-25, 0)),
    };
    assert_eq!(row, want);
    assert_eq!(row.started_at.timezone(), Utc);
    assert!(s.open_calls().await.unwrap().is_empty());
    if db.kind == Kind::Sqlite {
        // stored as RFC 3339 UTC text with milliseconds and `Z`
        let text = db.raw_text(format!("SELECT ended_at FROM calls WHERE id = '{id}'")).await;
        assert_eq!(text, "2026-11-27T06:01:39.999Z");
    }
}

async fn leg_status_outside_sip_range_is_refused(db: TestDb) {
    let id = Uuid::now_v7();
    db.store.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    for bad in [0, 99, 700, 65535] {
        let e = db.store.update_leg(id, Leg::Client, Some(bad), t(1, 0)).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid { .. }), "{bad}: {e:?}");
    }
    assert_eq!(db.store.get_call(id).await.unwrap().client_status, None);
    let e = db.store.update_leg(Uuid::now_v7(), Leg::Agent, Some(180), t(1, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "call", .. }), "{e:?}");
}

// invariant E2
async fn second_finish_conflicts_and_changes_nothing(db: TestDb) {
    let s = &db.store;
    let id = Uuid::now_v7();
    s.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    s.finish_call(id, "no-answer", Some("408 Request Timeout"), t(30_000, 0)).await.unwrap();
    let before = s.get_call(id).await.unwrap();

    let e = s.finish_call(id, "completed", Some("BYE"), t(60_000, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { id: c, .. } if c == id), "{e:?}");
    let e = s.finish_call(id, "interrupted", None, t(70_000, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");

    let after = s.get_call(id).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.outcome.as_deref(), Some("no-answer"));
    assert_eq!(after.reason.as_deref(), Some("408 Request Timeout"));
    assert_eq!(after.ended_at, Some(t(30_000, 0)));

    let e = s.finish_call(Uuid::now_v7(), "failed", None, t(1, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "call", .. }), "{e:?}");
}

// invariant E2
async fn answer_is_marked_once_and_only_while_running(db: TestDb) {
    let s = &db.store;
    let id = Uuid::now_v7();
    s.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    s.mark_answered(id, t(5_000, 0)).await.unwrap();
    let e = s.mark_answered(id, t(6_000, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.get_call(id).await.unwrap().answered_at, Some(t(5_000, 0)));

    let never_answered = Uuid::now_v7();
    s.insert_call(&new_call(never_answered, t(0, 0))).await.unwrap();
    s.finish_call(never_answered, "busy", Some("486 Busy Here"), t(1_000, 0)).await.unwrap();
    let e = s.mark_answered(never_answered, t(2_000, 0)).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.get_call(never_answered).await.unwrap().answered_at, None);
}

// invariant E2
async fn unknown_outcome_is_refused(db: TestDb) {
    let id = Uuid::now_v7();
    db.store.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    for bad in ["", "Completed", "answered", "no_answer"] {
        let e = db.store.finish_call(id, bad, None, t(1, 0)).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid { what: "outcome" }), "{bad}: {e:?}");
    }
    assert_eq!(db.store.open_calls().await.unwrap(), vec![id]);

    // the schema refuses it too
    let e = db
        .raw(format!("UPDATE calls SET outcome = 'answered', ended_at = started_at WHERE id = '{id}'"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("calls_outcome_known"), "{e}");
    assert_eq!(db.store.get_call(id).await.unwrap().outcome, None);
}

// invariant E2
async fn trigger_refuses_a_second_outcome(db: TestDb) {
    let id = Uuid::now_v7();
    db.store.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    // control: on a running call raw SQL can set the outcome
    db.raw(format!("UPDATE calls SET outcome = 'busy', ended_at = started_at WHERE id = '{id}'"))
        .await
        .expect("first outcome through raw SQL");
    // …but not change it afterwards
    let e = db.raw(format!("UPDATE calls SET outcome = 'completed' WHERE id = '{id}'")).await.unwrap_err();
    assert!(e.to_string().contains("E2"), "{e}");
    let e =
        db.raw(format!("UPDATE calls SET client_uri = 'sip:other@x' WHERE id = '{id}'")).await.unwrap_err();
    assert!(e.to_string().contains("E2"), "{e}");
    let e = db.raw(format!("UPDATE calls SET claimed_at = started_at WHERE id = '{id}'")).await.unwrap_err();
    assert!(e.to_string().contains("E2"), "the claim's time is written once: {e}");
    let row = db.store.get_call(id).await.unwrap();
    assert_eq!(row.outcome.as_deref(), Some("busy"));
    assert_eq!(row.client_uri, CLIENT_URI);
}

// invariant E3
async fn recording_is_sealed_once(db: TestDb) {
    let s = &db.store;
    let id = call_with_recording(&db, 0).await;
    let running = s.get_recording(id).await.unwrap();
    assert_eq!(running.state, RecordingState::Recording);
    assert_eq!(running.path, format!("/spool/recording/{id}.wav"));
    assert_eq!(running.started_at, t(10, 0));
    assert_eq!(
        (running.sha256, running.bytes, running.duration_ms, running.sealed_at),
        (None, None, None, None)
    );
    assert_eq!(running.agent, SideCounters::default());

    let seal = sealed(id, RecordingState::Sealed, "ab");
    s.seal_recording(&seal).await.unwrap();
    let row = s.get_recording(id).await.unwrap();
    assert_eq!(row.state, RecordingState::Sealed);
    assert_eq!(row.call_id, id);
    assert_eq!(row.path, seal.path);
    assert_eq!(row.sha256.as_deref(), Some(seal.sha256.as_str()));
    assert_eq!(row.bytes, Some(seal.bytes));
    assert_eq!(row.duration_ms, Some(seal.duration_ms));
    assert_eq!(row.sealed_at, Some(seal.sealed_at));
    assert_eq!(row.started_at, t(10, 0));
    assert_eq!((row.agent, row.client), (seal.agent, seal.client));
    assert_eq!(s.recording_for_call(id).await.unwrap(), Some(row.clone()));

    // a second seal — even as interrupted, by start-up repair — is refused
    for again in [sealed(id, RecordingState::Sealed, "cd"), sealed(id, RecordingState::Interrupted, "ab")] {
        let e = s.seal_recording(&again).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { id: r, .. } if r == id), "{e:?}");
    }
    assert_eq!(s.get_recording(id).await.unwrap(), row);

    let e = s.seal_recording(&sealed(Uuid::now_v7(), RecordingState::Sealed, "ab")).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "recording", .. }), "{e:?}");
    let other = call_with_recording(&db, 1_000).await;
    for bad in [
        sealed(other, RecordingState::Recording, "ab"),
        sealed(other, RecordingState::Sealed, "AB"),
        SealedRecording { bytes: u64::MAX, ..sealed(other, RecordingState::Sealed, "ab") },
    ] {
        let e = s.seal_recording(&bad).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid { .. }), "{e:?}");
    }
    assert_eq!(s.get_recording(other).await.unwrap().state, RecordingState::Recording);
}

async fn recording_needs_its_call_and_is_one_per_call(db: TestDb) {
    let s = &db.store;
    let orphan = Uuid::now_v7();
    let e = s
        .insert_recording(&NewRecording {
            id: orphan,
            call_id: orphan,
            path: "/spool/recording/x.wav".into(),
            started_at: t(0, 0),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "call", .. }), "{e:?}");

    let call = call_with_recording(&db, 0).await;
    let e = s
        .insert_recording(&NewRecording {
            id: Uuid::now_v7(),
            call_id: call,
            path: "/spool/recording/y.wav".into(),
            started_at: t(0, 0),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.recording_for_call(call).await.unwrap().unwrap().id, call);
    assert_eq!(s.recording_for_call(orphan).await.unwrap(), None);
}

// invariant E3
async fn trigger_refuses_changing_a_sealed_recording(db: TestDb) {
    let running = call_with_recording(&db, 0).await;
    let id = call_with_recording(&db, 1_000).await;
    db.store.seal_recording(&sealed(id, RecordingState::Sealed, "ab")).await.unwrap();

    // control: raw SQL reaches the table (a running recording's path may change)
    let n = db
        .raw(format!("UPDATE recordings SET path = '/spool/recording/moved.wav' WHERE id = '{running}'"))
        .await
        .expect("raw update of a running recording");
    assert_eq!(n, 1);

    let other_hash = "ef".repeat(32);
    for change in [
        format!("sha256 = '{other_hash}'"),
        "path = '/tmp/forged.wav'".to_string(),
        "bytes = bytes + 1".to_string(),
        "state = 'interrupted'".to_string(),
    ] {
        let e = db.raw(format!("UPDATE recordings SET {change} WHERE id = '{id}'")).await.expect_err(&change);
        assert!(e.to_string().contains("E3"), "{change}: {e}");
    }
    let row = db.store.get_recording(id).await.unwrap();
    assert_eq!(row.sha256, Some("ab".repeat(32)));
    assert_eq!(row.path, format!("/spool/sealed/{id}.wav"));
    assert_eq!(row.state, RecordingState::Sealed);
}

// invariant E5
async fn rows_are_never_deleted(db: TestDb) {
    let id = call_with_recording(&db, 0).await;
    db.store.seal_recording(&sealed(id, RecordingState::Sealed, "ab")).await.unwrap();
    db.store.finish_call(id, "completed", None, t(100_000, 0)).await.unwrap();
    let e = db.raw(format!("DELETE FROM recordings WHERE id = '{id}'")).await.unwrap_err();
    assert!(e.to_string().contains("E5"), "{e}");
    let e = db.raw(format!("DELETE FROM calls WHERE id = '{id}'")).await.unwrap_err();
    assert!(e.to_string().contains("E5"), "{e}");
    let unrecorded = Uuid::now_v7();
    db.store.insert_call(&new_call(unrecorded, t(0, 0))).await.unwrap();
    let e = db.raw(format!("DELETE FROM calls WHERE id = '{unrecorded}'")).await.unwrap_err();
    assert!(e.to_string().contains("E5"), "{e}");
    if db.kind == Kind::Postgres {
        let e = db.raw("TRUNCATE recordings, calls").await.unwrap_err();
        assert!(e.to_string().contains("E5"), "{e}");
    }
    assert!(db.store.get_call(id).await.is_ok());
    assert!(db.store.get_call(unrecorded).await.is_ok());
    assert!(db.store.get_recording(id).await.is_ok());
}

async fn open_calls_lists_only_unfinished_calls(db: TestDb) {
    let s = &db.store;
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    // inserted out of order: the list is oldest first
    for (i, id) in ids.iter().enumerate().rev() {
        s.insert_call(&new_call(*id, t(i as i64 * 1_000, 0))).await.unwrap();
    }
    s.finish_call(ids[1], "rejected", Some("603 Decline"), t(5_000, 0)).await.unwrap();
    s.mark_answered(ids[2], t(6_000, 0)).await.unwrap(); // answered, still open
    s.finish_call(ids[3], "cancelled", None, t(7_000, 0)).await.unwrap();
    assert_eq!(s.open_calls().await.unwrap(), vec![ids[0], ids[2]]);
}

async fn recordings_in_state_lists_by_state(db: TestDb) {
    let s = &db.store;
    let running = call_with_recording(&db, 3_000).await;
    let sealed_late = call_with_recording(&db, 2_000).await;
    let sealed_early = call_with_recording(&db, 1_000).await;
    let interrupted = call_with_recording(&db, 0).await;
    for id in [sealed_late, sealed_early] {
        s.seal_recording(&sealed(id, RecordingState::Sealed, "ab")).await.unwrap();
    }
    s.seal_recording(&sealed(interrupted, RecordingState::Interrupted, "cd")).await.unwrap();

    let ids =
        |rows: Vec<huifang::store::RecordingRow>| -> Vec<Uuid> { rows.into_iter().map(|r| r.id).collect() };
    assert_eq!(ids(s.recordings_in_state("recording").await.unwrap()), vec![running]);
    assert_eq!(ids(s.recordings_in_state("sealed").await.unwrap()), vec![sealed_early, sealed_late]);
    let rows = s.recordings_in_state("interrupted").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, interrupted);
    assert_eq!(rows[0].state, RecordingState::Interrupted);
    let e = s.recordings_in_state("uploaded").await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e:?}");
}

/// 20 calls at once, through two stores on the same database (a second
/// daemon, or a CLI command beside `serve`): nobody sees "database is
/// locked".
async fn concurrent_writers_never_lock(db: TestDb) {
    const CALLS: usize = 20;
    let second = Store::open(&db.url).await.expect("second store");
    let stores = [db.store.clone(), second.clone()];
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CALLS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let store = stores[i % 2].clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let id = Uuid::now_v7();
            barrier.wait().await;
            store.insert_call(&new_call(id, Utc::now())).await?;
            store.update_leg(id, Leg::Agent, Some(180), Utc::now()).await?;
            store.update_leg(id, Leg::Agent, Some(200), Utc::now()).await?;
            store
                .insert_recording(&NewRecording {
                    id,
                    call_id: id,
                    path: format!("/spool/recording/{id}.wav"),
                    started_at: Utc::now(),
                })
                .await?;
            store.mark_answered(id, Utc::now()).await?;
            store.seal_recording(&sealed(id, RecordingState::Sealed, "ab")).await?;
            store.finish_call(id, "completed", None, Utc::now()).await?;
            Ok::<Uuid, StoreError>(id)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task panicked") {
            Ok(id) => done.push(id),
            Err(e) => panic!("a concurrent writer failed: {e}"),
        }
    }
    assert_eq!(done.len(), CALLS);
    for id in done {
        let row = db.store.get_call(id).await.unwrap();
        assert_eq!(row.outcome.as_deref(), Some("completed"));
    }
    assert!(db.store.open_calls().await.unwrap().is_empty());
    assert_eq!(db.store.recordings_in_state("sealed").await.unwrap().len(), CALLS);
    second.close().await;
}

async fn errors_never_show_phone_uris(db: TestDb) {
    let s = &db.store;
    let id = Uuid::now_v7();
    let call = new_call(id, t(0, 0));
    s.insert_call(&call).await.unwrap();
    s.finish_call(id, "failed", Some("503"), t(1, 0)).await.unwrap();
    let errors = [
        s.insert_call(&call).await.unwrap_err(),
        s.finish_call(id, "completed", None, t(2, 0)).await.unwrap_err(),
        s.finish_call(id, "bogus", None, t(2, 0)).await.unwrap_err(),
        s.get_call(Uuid::now_v7()).await.unwrap_err(),
    ];
    for e in &errors {
        let text = format!("{e} / {e:?}");
        assert!(!text.contains("8613800138000"), "{text}");
    }
    assert!(!format!("{call:?} {:?}", s.get_call(id).await.unwrap()).contains("8613800138000"));

    // A database error quoting the row (PostgreSQL's DETAIL does) loses it
    // on the way into a DbError.
    let other = Uuid::now_v7();
    let raw = db
        .raw(format!(
            "INSERT INTO calls (id, agent_uri, client_uri, started_at, outcome) \
             VALUES ('{other}', 'sip:a@x', '{CLIENT_URI}', '2026-11-27T06:00:00.000Z', 'bogus')"
        ))
        .await
        .unwrap_err();
    if db.kind == Kind::Postgres {
        // the test means something: sqlx's own Debug shows the number
        assert!(format!("{raw:?}").contains("8613800138000"));
    }
    let clean = DbError::from(&raw);
    let text = format!("{clean} / {clean:?}");
    assert!(!text.contains("8613800138000"), "{text}");
    assert!(text.contains("calls_"), "{text}");
}

// ---------------------------------------------------------------- one backend

#[tokio::test]
async fn postgres_open_error_hides_the_password() {
    let admin = pg_admin_url();
    let base = admin.rsplit_once('/').unwrap().0;
    // trust auth ignores the password; the database does not exist
    let url = format!(
        "{}/huifang_test_missing_{}",
        base.replacen("postgres@", "postgres:hunter2@", 1),
        Uuid::new_v4().simple()
    );
    let e = Store::open(&url).await.unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    let text = format!("{e} / {e:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("huifang_test_missing_"), "{text}");
}

#[tokio::test]
async fn sqlite_memory_store_works_without_a_file() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let id = Uuid::now_v7();
    store.insert_call(&new_call(id, t(0, 0))).await.unwrap();
    store.finish_call(id, "unreachable", Some("503 Service Unavailable"), t(1, 0)).await.unwrap();
    assert_eq!(store.get_call(id).await.unwrap().outcome.as_deref(), Some("unreachable"));
    store.close().await;
}
