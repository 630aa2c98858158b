//! `huifang report coverage|overdue|followups|monthly` in table, CSV and
//! JSON, after an import, a plan and a record with a problem. Both
//! backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(reports_show_coverage_overdue_followups_and_the_monthly_report);

async fn reports_show_coverage_overdue_followups_and_the_monthly_report(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    db.ok(&["import", "events", &fixture("events.csv")]);
    db.ok(&["plan", "--as-of", "2026-11-27"]);
    db.ok(&[
        "record",
        "submit",
        "--task",
        "complaint:E1",
        "--agent",
        "A1",
        "--on",
        "2026-11-27",
        "--answer",
        "event_confirmed=yes",
        "--answer",
        "no_discretionary_trading=no",
        "--answer",
        "satisfied=yes",
        "--problems",
        "a broker trades for the client",
    ]);

    // coverage: the complaint task (due 2026-11-30) is done; departed-staff tasks (due 11-27) are not
    let csv =
        db.ok(&["report", "coverage", "--month", "2026-11", "--as-of", "2026-12-02", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("KIND,BRANCH,PLANNED,DONE,CLOSED,OPEN,OVERDUE,COVERAGE,REQUIRED"));
    assert!(csv.lines().any(|l| l == "complaint,SH01,1,1,0,0,0,100.0%,100%"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&db.ok(&[
        "report",
        "coverage",
        "--month",
        "2026-11",
        "--as-of",
        "2026-12-02",
        "--format",
        "json",
    ]))
    .unwrap();
    let departed = json["rows"].as_array().unwrap().iter().find(|r| r["kind"] == "departed_staff").unwrap();
    assert_eq!((departed["planned"].as_u64(), departed["overdue"].as_u64()), (Some(2), Some(2)));
    assert_eq!(departed["coverage"], 0.0);

    // overdue: the departed-staff tasks, 3 business days late on 2026-12-02
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(&["report", "overdue", "--as-of", "2026-12-02", "--format", "json"]))
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    let d = rows.iter().find(|r| r["key"] == "departed_staff:S2:C0009").unwrap();
    assert_eq!(d["late_business_days"], 3);
    assert!(!rows.iter().any(|r| r["kind"] == "complaint"), "done tasks are not overdue");

    // follow-ups: opened 11-27, the department's answer was due 12-01
    let table = db.ok(&["report", "followups", "--as-of", "2026-12-01"]);
    assert_eq!(table.lines().count(), 1, "nothing late yet: {table}");
    let table = db.ok(&["report", "followups", "--as-of", "2026-12-02"]);
    assert!(
        table.contains("C0001") && table.contains("not answered") && table.contains("2026-12-18"),
        "{table}"
    );

    // monthly report for November: the upload deadline is the 10th business day of December
    let out = db.huifang(&["report", "monthly", "--month", "2026-11", "--format", "json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["upload_due_on"], "2026-12-14");
    let row = json["rows"].as_array().unwrap().iter().find(|r| r["kind"] == "complaint").unwrap();
    assert_eq!(
        (row["callbacks"].as_u64(), row["problems"].as_u64(), row["follow_ups"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("upload to head office by 2026-12-14"));

    // tasks listing
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(&["tasks", "--client", "C0001", "--format", "json"])).unwrap();
    assert!(json.as_array().unwrap().iter().any(|t| t["key"] == "complaint:E1" && t["state"] == "done"));
    let bad = db.huifang(&["report", "coverage", "--month", "2026-13"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--month"));
}
