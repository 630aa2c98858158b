//! `huifang agent login|pause|resume|logout`: the state machine, the checks
//! at login (staff list, active, role, softphone), and the trace of every
//! change — who, when, why — which is append-only. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(agent_sessions_move_and_every_change_is_traced);

fn err(db: &TestDb, args: &[&str]) -> String {
    let out = db.huifang(args);
    assert!(!out.status.success(), "huifang {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn agent_sessions_move_and_every_change_is_traced(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);

    let out = db.ok(&["agent", "login", "A1"]);
    assert_eq!(out.trim(), "agent A1 available by A1");
    let out = db.ok(&["agent", "pause", "A1", "--reason", "lunch"]);
    assert_eq!(out.trim(), "agent A1 paused by A1 (lunch)");
    assert!(err(&db, &["agent", "pause", "A1"]).contains("already paused"));
    assert!(err(&db, &["agent", "login", "A1"]).contains("already logged in"));
    db.ok(&["agent", "resume", "A1"]);
    assert!(err(&db, &["agent", "resume", "A1"]).contains("not paused"));
    let out = db.ok(&["agent", "logout", "A1", "--by", "M1", "--reason", "end of shift"]);
    assert_eq!(out.trim(), "agent A1 logged_out by M1 (end of shift)");
    assert!(err(&db, &["agent", "pause", "A1"]).contains("not logged in"));

    // who may log in at all
    assert!(err(&db, &["agent", "login", "NOBODY"]).contains("not in the staff list"));
    assert!(err(&db, &["agent", "login", "S2"]).contains("inactive or departed"));
    assert!(err(&db, &["agent", "login", "B1"]).contains("may not make callbacks"));
    assert!(err(&db, &["agent", "login", "M1"]).contains("no softphone"));

    // the trace: every change, with who and why, in order
    let store = db.open_store().await;
    let events = store.agent_events("A1").await.unwrap();
    let seen: Vec<(Option<&str>, &str, &str, Option<&str>)> = events
        .iter()
        .map(|e| (e.from_state.as_deref(), e.to_state.as_str(), e.by.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (None, "available", "A1", None),
            (Some("available"), "paused", "A1", Some("lunch")),
            (Some("paused"), "available", "A1", None),
            (Some("available"), "logged_out", "M1", Some("end of shift")),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    let session = store.agent_session("A1").await.unwrap().unwrap();
    assert_eq!(session.state.as_str(), "logged_out");
    assert!(store.agent_session("S2").await.unwrap().is_none(), "refused logins leave no session");
    store.close().await;

    // the trace is append-only, the sessions are never deleted
    assert!(db.raw("UPDATE agent_events SET by = 'someone else'").await.is_err());
    assert!(db.raw("DELETE FROM agent_events").await.is_err());
    assert!(db.raw("DELETE FROM agent_sessions").await.is_err());
}
