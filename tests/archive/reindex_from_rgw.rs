//! `huifang reindex` against a real S3 with Object Lock (Ceph RGW): three
//! recordings archived into the bucket; the database is lost; `reindex`
//! rebuilds from the bucket's manifests alone an index equal to the one
//! before (every field of `recordings --json` but the spool path, and the
//! object keys, versions and retain-until dates), `verify --deep` passes on
//! it, and a second `reindex` inserts nothing.

use crate::common;

use common::s3;
use common::site::Site;
use huifang::store::Archived;
use uuid::Uuid;

fn listing(site: &Site) -> Vec<serde_json::Value> {
    let out = site.ok(&["recordings", "--client", "C1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            // the spooled file's path, or the object key once the spool is gone
            r.as_object_mut().unwrap().remove("path");
            r
        })
        .collect()
}

async fn archived(site: &Site, ids: &[Uuid]) -> Vec<Archived> {
    let store = site.store().await;
    let mut out = Vec::new();
    for id in ids {
        let mut a = store.archive_record(*id).await.unwrap().archived.expect("archived");
        a.at = chrono::DateTime::UNIX_EPOCH; // when: the reindex's own time
        out.push(a);
    }
    store.close().await;
    out
}

#[tokio::test]
async fn reindex_from_the_bucket_gives_the_same_index() {
    let rgw = s3::rgw();
    let bucket = rgw.new_lock_bucket("hf-reindex").await;
    let site = Site::s3(&rgw, &bucket);
    let store = site.store().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(site.sealed(&store, "C1", format!("RIFF....WAVEfmt audio {n}").as_bytes()).await);
    }
    store.close().await;
    let out = site.ok(&["archive", "drain"]);
    assert!(out.contains("3 archived and verified"), "{out}");
    let before = listing(&site);
    assert_eq!(before.len(), 3);
    let objects_before = archived(&site, &ids).await;
    assert!(objects_before.iter().all(|a| a.version.is_some() && a.manifest_version.is_some()));

    // the database is lost
    for f in ["huifang.db", "huifang.db-wal", "huifang.db-shm"] {
        let _ = std::fs::remove_file(site.dir.path().join(f));
    }
    let out = site.ok(&["reindex"]);
    assert!(out.contains("3 manifest(s); inserted 3 call(s) and 3 recording(s)"), "{out}");
    assert_eq!(listing(&site), before, "the rebuilt index differs");
    assert_eq!(archived(&site, &ids).await, objects_before, "keys, versions or retain-until differ");
    let out = site.ok(&["verify", "--deep"]);
    assert!(out.contains("no findings"), "{out}");
    let out = site.ok(&["reindex"]);
    assert!(out.contains("inserted 0 call(s) and 0 recording(s); 3 already indexed"), "{out}");
}
