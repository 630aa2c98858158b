//! A record that found problems opens a follow-up whose deadlines are 2 and
//! 15 business days later on the exchanges' calendar: from Tuesday
//! 2026-09-29 over the National Day closure to 2026-10-08 and 2026-10-27.
//! A compliance answer "no" without a described problem is refused. Both
//! backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(follow_up_deadlines_skip_the_national_day_closure);

async fn follow_up_deadlines_skip_the_national_day_closure(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    db.ok(&["import", "events", &fixture("events.csv")]);
    db.ok(&["plan", "--as-of", "2026-11-27"]);
    let base = [
        "record",
        "submit",
        "--task",
        "complaint:E1",
        "--agent",
        "A1",
        "--on",
        "2026-09-29",
        "--answer",
        "event_confirmed=no",
        "--answer",
        "no_discretionary_trading=yes",
        "--answer",
        "satisfied=no",
    ];
    let out = db.huifang(&base);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("describe the problem"),
        "refused without --problems"
    );
    let mut args = base.to_vec();
    args.extend(["--problems", "the client did not make this complaint"]);
    let out = db.ok(&args);
    assert!(out.contains("附表3"), "{out}");
    assert!(out.contains("answers by 2026-10-08") && out.contains("final answer by 2026-10-27"), "{out}");
    assert!(out.contains("ordering department by 2026-10-13"), "special feedback in 5 business days: {out}");
    let store = db.open_store().await;
    let f = &store.follow_ups().await.unwrap()[0];
    assert_eq!(f.answer_due_on.to_string(), "2026-10-08");
    assert_eq!(f.resolve_due_on.to_string(), "2026-10-27");
    let fid = f.id.to_string();
    store.close().await;
    assert!(db.ok(&["record", "followup", "--id", &fid, "--on", "2026-10-08"]).contains("answered"));
    assert!(
        db.ok(&["record", "followup", "--id", &fid, "--resolved", "--on", "2026-10-20"]).contains("resolved")
    );
    let back = db.huifang(&["record", "followup", "--id", &fid, "--on", "2026-10-21"]);
    assert_eq!(back.status.code(), Some(1), "a resolved follow-up does not move back");
}
