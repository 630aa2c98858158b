//! `huifang verify` against a real S3 with Object Lock (Ceph RGW) finds,
//! one line each, and exits 1: a tampered spooled file (a recording not
//! archived yet), a missing object (the database says archived, the bucket
//! has no such object: it went to another bucket), an orphan manifest (PUT
//! straight into the bucket, no row) and a broken audit chain. A clean
//! state before: no finding, exit 0.

use crate::common;

use common::s3;
use common::site::Site;

#[tokio::test]
async fn verify_catches_each_finding_on_rgw() {
    let rgw = s3::rgw();
    let bucket = rgw.new_lock_bucket("hf-verify").await;
    let other = rgw.new_lock_bucket("hf-verify-other").await;
    let site = Site::s3(&rgw, &bucket);
    let store = site.store().await;
    let fine = site.sealed(&store, "C1", b"RIFF....WAVEfmt fine").await;
    let out = site.ok(&["archive", "drain"]);
    assert!(out.contains("1 archived"), "{out}");
    let out = site.ok(&["verify", "--deep"]);
    assert!(out.contains("no findings"), "{out}");
    assert!(!out.contains("notice:"), "S3 with Object Lock is write-once: {out}");

    // archived, but into another bucket: missing from this one
    let elsewhere = site.sealed(&store, "C1", b"RIFF....WAVEfmt elsewhere").await;
    site.edit_config(&format!("bucket = \"{bucket}\""), &format!("bucket = \"{other}\""));
    site.ok(&["archive", "drain"]);
    site.edit_config(&format!("bucket = \"{other}\""), &format!("bucket = \"{bucket}\""));

    // not archived yet, and its spooled file tampered with
    let tampered = site.sealed(&store, "C1", b"RIFF....WAVEfmt original").await;
    let path = store.get_recording(tampered).await.unwrap().path;
    std::fs::write(&path, b"RIFF....WAVEfmt modified").unwrap();

    // a manifest nobody indexed
    let orphan = format!("recordings/2026/01/01/{}.json", uuid::Uuid::now_v7());
    rgw.put_plain(&bucket, &orphan, b"{}").await;

    // the audit log rewritten behind the store's back
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&site.db_url).await.unwrap();
    for s in
        ["DROP TRIGGER audit_events_never_updated", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"]
    {
        sqlx::query(s).execute(&mut conn).await.unwrap();
    }

    let out = site.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let has = |kind: &str, what: &str| lines.iter().any(|l| l.starts_with(kind) && l.contains(what));
    assert!(has("spool-mismatch:", &tampered.to_string()), "{text}");
    assert!(has("not-archived:", &tampered.to_string()), "{text}");
    assert!(has("orphan-row:", &elsewhere.to_string()), "{text}");
    assert!(has("orphan-manifest:", &orphan), "{text}");
    assert!(has("audit-chain: seq 2", ""), "{text}");
    assert!(!text.contains(&fine.to_string()), "the intact recording is not reported: {text}");
    assert!(text.contains("verify: 5 finding(s)"), "{text}");
    store.close().await;
}
