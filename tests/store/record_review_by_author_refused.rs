//! Callback records through the CLI: avoidance (E7) refuses a record by the
//! client's introducer, by the introducer's manager and by a broker; the
//! record's author may not review it (相互制衡), nor may a service agent;
//! a reviewer can, once. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(records_follow_avoidance_and_review_rules);

fn yes_answers() -> Vec<&'static str> {
    vec![
        "--answer",
        "own_account=yes",
        "--answer",
        "certificate_and_risks=yes",
        "--answer",
        "risk_disclosure_signed=yes",
        "--answer",
        "no_discretionary_trading=yes",
        "--answer",
        "satisfied=yes",
    ]
}

async fn records_follow_avoidance_and_review_rules(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    db.ok(&["import", "events", &fixture("events.csv")]);
    db.ok(&["plan", "--as-of", "2026-11-27"]);
    let submit = |agent: &str| {
        let mut args =
            vec!["record", "submit", "--task", "new_account:C0002", "--agent", agent, "--on", "2026-11-27"];
        args.extend(yes_answers());
        db.huifang(&args)
    };
    // C0002 was introduced by broker B1
    for (agent, why) in
        [("B1", "introduced this client"), ("S2", "left on 2026-11-20"), ("NOBODY", "not in the staff list")]
    {
        let out = submit(agent);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{agent}: {err}");
        assert!(err.contains("E7") && err.contains(why), "{agent}: {err}");
    }
    assert_eq!(db.count("SELECT count(*) FROM callback_records").await, 0);

    // C0001 (complaint E1) was introduced by S1, whose manager is M1: neither may call
    let out = db.huifang(&[
        "record",
        "submit",
        "--task",
        "complaint:E1",
        "--agent",
        "M1",
        "--on",
        "2026-11-27",
        "--answer",
        "event_confirmed=yes",
        "--answer",
        "no_discretionary_trading=yes",
        "--answer",
        "satisfied=yes",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("manager"), "{err}");

    // a missing answer is refused before anything is written
    let out = db.huifang(&[
        "record",
        "submit",
        "--task",
        "new_account:C0002",
        "--agent",
        "A1",
        "--on",
        "2026-11-27",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("own_account is not answered"));

    let out = submit("A1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let record = text.split_whitespace().nth(1).unwrap().to_string();
    assert!(text.contains("附表1"), "{text}");
    // the task is done; a second record is refused
    let again = submit("A2");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not open"));

    // the author may not review; a service agent may not either
    let out = db.huifang(&["record", "review", "--record", &record, "--reviewer", "A1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("may not review a record they made"), "{err}");
    let out = db.huifang(&["record", "review", "--record", &record, "--reviewer", "A2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("service may not review"), "{err}");
    // an author who is a reviewer is refused by the store's rule
    let store = db.open_store().await;
    let e = store
        .review_record(
            record.parse().unwrap(),
            "A1",
            huifang::store::Verdict::Approved,
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("may not review a record they made"), "{e}");
    let ok = db.ok(&["record", "review", "--record", &record, "--reviewer", "R1", "--note", "fine"]);
    assert!(ok.contains("approved"), "{ok}");
    let twice = db.huifang(&["record", "review", "--record", &record, "--reviewer", "M1"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already reviewed"));
    let r = store.record(record.parse().unwrap()).await.unwrap();
    assert_eq!((r.state.as_str(), r.reviewer_id.as_deref()), ("reviewed", Some("R1")));
    store.close().await;

    // the checklist names the question ids `--answer` takes
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huifang"))
        .args(["record", "checklist", "--kind", "complaint"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("附表3") && text.contains("event_confirmed") && text.contains("yes|no"), "{text}");
}
