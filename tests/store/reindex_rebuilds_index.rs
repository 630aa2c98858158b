//! `reindex` rebuilds the index from the local archive's manifests alone:
//! after `archive drain`, `verify --deep` passes; with the database lost,
//! `reindex` inserts the calls and recordings and `verify` passes again;
//! a second `reindex` inserts nothing.

use crate::common;

use common::site::Site;

#[tokio::test]
async fn reindex_rebuilds_what_verify_accepts() {
    let site = Site::local();
    let store = site.store().await;
    for n in 0..3 {
        site.sealed(&store, "C1", format!("RIFF....WAVEfmt fake audio {n}").as_bytes()).await;
    }
    store.close().await;
    let out = site.run(&["archive", "drain"]);
    assert!(out.status.success(), "drain: {}", String::from_utf8_lossy(&out.stderr));
    let out = site.run(&["verify", "--deep"]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));

    // the database is lost
    for f in ["huifang.db", "huifang.db-wal", "huifang.db-shm"] {
        let _ = std::fs::remove_file(site.dir.path().join(f));
    }
    let out = site.run(&["reindex"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "reindex: {text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("inserted 3 call(s) and 3 recording(s)"), "{text}");
    let out = site.run(&["verify", "--deep"]);
    assert!(out.status.success(), "verify after reindex: {}", String::from_utf8_lossy(&out.stdout));
    let out = site.run(&["recordings", "--client", "C1", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(list[0]["archive_key"].is_string() && list[0]["retain_until"].is_string());
    let out = site.run(&["reindex"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 already indexed"));
}
