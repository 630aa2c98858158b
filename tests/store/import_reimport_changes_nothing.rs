//! Re-importing the same files changes nothing (upsert by natural key: no
//! new rows, no updated rows, `updated_at` untouched); a corrected row is
//! updated in place. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(reimport_is_idempotent);

async fn reimport_is_idempotent(db: TestDb) {
    for (what, file, n) in
        [("staff", "staff.csv", 7), ("clients", "clients.csv", 12), ("events", "events.csv", 6)]
    {
        let first = db.ok(&["import", what, &fixture(file)]);
        assert!(first.contains(&format!("{n} new")), "{first}");
        let stamp = db.count(&format!("SELECT count(DISTINCT updated_at) FROM {what}")).await;
        let again = db.ok(&["import", what, &fixture(file)]);
        assert!(again.contains(&format!("0 new, 0 updated, {n} unchanged")), "{again}");
        assert_eq!(db.count(&format!("SELECT count(*) FROM {what}")).await, n);
        assert_eq!(db.count(&format!("SELECT count(DISTINCT updated_at) FROM {what}")).await, stamp);
    }
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(&fixed, "client_id,name,phone,branch,opened_on\nC0005,陈静,13800000005,SH09,2026-11-25\n")
        .unwrap();
    let out = db.ok(&["import", "clients", fixed.to_str().unwrap()]);
    assert!(out.contains("0 new, 1 updated, 0 unchanged"), "{out}");
    let store = db.open_store().await;
    assert_eq!(store.client("C0005").await.unwrap().branch, "SH09");
    assert_eq!(store.clients().await.unwrap().len(), 12);
    store.close().await;
}
