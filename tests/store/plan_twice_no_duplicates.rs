//! `huifang plan` twice for the same day creates no duplicates, and the
//! new-account sample can be re-derived by an inspector from the seed
//! stored on its batch, with nothing but SHA-256 (the algorithm documented
//! in `src/domain/sample.rs`, re-implemented here independently). Both
//! backends.

use crate::common;

use std::collections::BTreeSet;

use common::db::{TestDb, fixture};
use huifang::store::TaskFilter;
use sha2::{Digest, Sha256};

on_both_backends!(planning_twice_creates_nothing_new_and_the_sample_is_reproducible);

/// The inspector's own implementation: score = first 8 bytes (big-endian)
/// of SHA-256(seed ‖ 0x00 ‖ id); selected when score < ratio·2^64, topped
/// up with the lowest scores to ⌈ratio·n⌉.
fn rederive(seed_hex: &str, ids: &[&str], ratio: f64) -> BTreeSet<String> {
    let seed = hex::decode(seed_hex).unwrap();
    let mut scored: Vec<(u64, &str)> = ids
        .iter()
        .map(|id| {
            let mut h = Sha256::new();
            h.update(&seed);
            h.update([0u8]);
            h.update(id.as_bytes());
            let d = h.finalize();
            (u64::from_be_bytes(d[..8].try_into().unwrap()), *id)
        })
        .collect();
    scored.sort();
    let needed = (ids.len() as f64 * ratio - 1e-9).ceil() as usize;
    let threshold = ratio * 2f64.powi(64);
    scored
        .iter()
        .enumerate()
        .filter(|(i, (s, _))| (*s as f64) < threshold || *i < needed)
        .map(|(_, (_, id))| id.to_string())
        .collect()
}

async fn planning_twice_creates_nothing_new_and_the_sample_is_reproducible(db: TestDb) {
    db.ok(&["import", "staff", &fixture("staff.csv")]);
    db.ok(&["import", "clients", &fixture("clients.csv")]);
    db.ok(&["import", "events", &fixture("events.csv")]);
    let first = db.ok(&["plan", "--as-of", "2026-11-27", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let planned = |v: &serde_json::Value, kind: &str, col: &str| {
        v["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == kind).unwrap()[col].as_u64().unwrap()
    };
    for (kind, n) in [
        ("complaint", 1),
        ("abnormal_trading", 1),
        ("special", 1),
        ("potential_risk", 3),
        ("departed_staff", 2),
        ("important", 2),
    ] {
        assert_eq!(planned(&first, kind, "planned"), n, "{kind}: {first}");
        assert_eq!(planned(&first, kind, "new"), n, "{kind}");
    }
    let store = db.open_store().await;
    let total = store.tasks(&TaskFilter::default()).await.unwrap().len();

    let second = db.ok(&["plan", "--as-of", "2026-11-27", "--format", "json"]);
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    for k in second["kinds"].as_array().unwrap() {
        assert_eq!(k["new"], 0, "{k}");
        assert_eq!(k["planned"], planned(&first, k["kind"].as_str().unwrap(), "planned"), "{k}");
    }
    assert_eq!(store.tasks(&TaskFilter::default()).await.unwrap().len(), total);
    assert_eq!(db.count("SELECT count(*) FROM task_batches WHERE kind = 'new_account'").await, 1);

    // the inspector: the ordinary new accounts of week 2026-W48, the seed
    let batch = store.batches().await.unwrap().into_iter().find(|b| b.kind == "new_account").unwrap();
    assert_eq!(batch.period, "2026-W48");
    let seed = batch.seed.expect("a sampled batch keeps its seed");
    let ordinary: Vec<&str> = vec!["C0001", "C0003", "C0004", "C0005", "C0006", "C0008"];
    let expected = rederive(&seed, &ordinary, batch.ratio.unwrap());
    assert!(expected.len() >= 2, "30% of 6 rounds up to 2");
    let tasks =
        store.tasks(&TaskFilter { kind: Some("new_account".into()), ..Default::default() }).await.unwrap();
    let sampled: BTreeSet<String> = tasks
        .iter()
        .filter(|t| t.reason["broker_introduced"] == false)
        .map(|t| t.client_id.clone())
        .collect();
    assert_eq!(sampled, expected);
    let brokers: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| t.reason["broker_introduced"] == true)
        .map(|t| t.client_id.as_str())
        .collect();
    assert_eq!(brokers, BTreeSet::from(["C0002", "C0007"]), "broker clients 100%");
    // due dates: 5 business days after opening
    let c2 = tasks.iter().find(|t| t.client_id == "C0002").unwrap();
    assert_eq!(c2.due_on.to_string(), "2026-11-30");
    store.close().await;

    // the table form names every kind
    let table = db.ok(&["plan", "--as-of", "2026-11-27"]);
    assert!(table.contains("new_account") && table.contains("新开户回访"), "{table}");
}
