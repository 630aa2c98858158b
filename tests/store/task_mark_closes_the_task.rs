//! `huifang task mark TASK wrong-number|refused --by STAFF`: the task is
//! closed with that outcome and who marked it; a finished task, or an
//! unknown staff member, is refused. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(marking_a_wrong_number_or_a_refusal_closes_the_task);

async fn marking_a_wrong_number_or_a_refusal_closes_the_task(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    db.ok(&["import", "events", &fixture("events.csv")]);
    db.ok(&["plan", "--as-of", "2026-11-27"]);

    let out = db.ok(&["task", "mark", "complaint:E1", "wrong-number", "--by", "A1"]);
    assert_eq!(out.trim(), "task complaint:E1 closed: wrong_number (by A1)");
    let tasks: serde_json::Value =
        serde_json::from_str(&db.ok(&["tasks", "--client", "C0001", "--format", "json"])).unwrap();
    let t = tasks.as_array().unwrap().iter().find(|t| t["key"] == "complaint:E1").unwrap();
    assert_eq!(
        (t["state"].as_str(), t["outcome"].as_str(), t["closed_by"].as_str()),
        (Some("closed"), Some("wrong_number"), Some("A1"))
    );

    let again = db.huifang(&["task", "mark", "complaint:E1", "refused", "--by", "A1"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not open"), "{again:?}");
    let nobody = db.huifang(&["task", "mark", "abnormal_trading:E2", "refused", "--by", "NOBODY"]);
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("not in the staff list"), "{nobody:?}");
    db.ok(&["task", "mark", "abnormal_trading:E2", "refused", "--by", "A2"]);
    // a closed task is not done: coverage counts it as closed
    let csv =
        db.ok(&["report", "coverage", "--month", "2026-12", "--as-of", "2026-12-01", "--format", "csv"]);
    assert!(csv.lines().any(|l| l.starts_with("abnormal_trading,") && l.contains(",1,0,1,0,")), "{csv}");
}
