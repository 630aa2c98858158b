//! A bad value in row 500 of 1,000 imports nothing: the error names line
//! 501, the column and the reason; a missing column and a duplicate key are
//! refused too; personal data is masked in the messages. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(a_bad_row_in_the_middle_imports_nothing);

async fn a_bad_row_in_the_middle_imports_nothing(db: TestDb) {
    let out = db.huifang(&["import", "clients", &fixture("clients_1000_bad_row.csv")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 501, column opened_on"), "{err}");
    assert!(err.contains("2026-02-30") && err.contains("not a date"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM clients").await, 0);

    // a good file first, then a bad one: the good rows stay as they were
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    std::fs::write(&missing, "client_id,name,phone,branch\nC0001,张伟,13800000001,SH01\n").unwrap();
    let out = db.huifang(&["import", "clients", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("missing column") && err.contains("opened_on"), "{err}");

    let dup = dir.path().join("dup.csv");
    std::fs::write(
        &dup,
        "client_id,name,phone,branch,opened_on\nC0001,张伟改,13800000099,SH09,2026-11-23\n\
         C0001,张伟,1380000000x,SH01,2026-11-23\n",
    )
    .unwrap();
    let out = db.huifang(&["import", "clients", dup.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, column client_id") && err.contains("first on line 2"), "{err}");
    assert!(err.contains("line 3, column phone") && err.contains("138****000x"), "{err}");
    assert!(!err.contains("1380000000x") && !err.contains("13800000099"), "phones are masked: {err}");
    let store = db.open_store().await;
    let c = store.client("C0001").await.unwrap();
    assert_eq!(
        (c.branch.as_str(), c.phone.as_str()),
        ("SH01", "13800000001"),
        "nothing of the bad file was written"
    );
    store.close().await;
}
