//! `huifang import clients` reads the same clients from UTF-8, UTF-8 with a
//! BOM, and GBK with Chinese headers (auto-detected, or named with
//! --encoding); a dry run counts but writes nothing. Both backends.

use crate::common;

use common::db::{TestDb, fixture};

on_both_backends!(the_three_encodings_give_the_same_clients);

async fn the_three_encodings_give_the_same_clients(db: TestDb) {
    let dry = db.ok(&["import", "clients", &fixture("clients.csv"), "--dry-run"]);
    assert!(dry.contains("12 new") && dry.contains("dry run"), "{dry}");
    let store = db.open_store().await;
    assert!(store.clients().await.unwrap().is_empty(), "a dry run writes nothing");

    let out = db.ok(&["import", "clients", &fixture("clients.csv")]);
    assert!(out.contains("12 row(s)") && out.contains("(utf-8)") && out.contains("12 new"), "{out}");
    let first = store.clients().await.unwrap();
    assert_eq!(first.len(), 12);
    assert_eq!(first[0].name, "张伟");
    assert!(first[1].broker_introduced);

    let out = db.ok(&["import", "clients", &fixture("clients_bom.csv")]);
    assert!(out.contains("utf-8 (BOM)") && out.contains("12 unchanged"), "{out}");

    let out = db.ok(&["import", "clients", &fixture("clients_gbk_zh.csv")]);
    assert!(out.contains("(gbk)") && out.contains("12 unchanged"), "GBK + Chinese headers: {out}");
    let out = db.ok(&["import", "clients", &fixture("clients_gbk_zh.csv"), "--encoding", "gbk"]);
    assert!(out.contains("12 unchanged"), "{out}");
    assert_eq!(store.clients().await.unwrap(), first);

    // GBK read as UTF-8 is refused with the line, and nothing changes
    let bad = db.huifang(&["import", "clients", &fixture("clients_gbk_zh.csv"), "--encoding", "utf-8"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("not valid UTF-8") && err.contains("line 1"), "{err}");

    // staff and events too
    assert!(db.ok(&["import", "staff", &fixture("staff.csv")]).contains("7 new"));
    assert!(db.ok(&["import", "events", &fixture("events.csv")]).contains("6 new"));
    let events = store.events().await.unwrap();
    assert!(events.iter().any(|e| e.kind == huifang::domain::facts::EventKind::Complaint));
    store.close().await;
}
