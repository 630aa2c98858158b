//! `huifang fetch` against a real S3 with Object Lock (Ceph RGW): an
//! archived recording is fetched from the bucket, checked against its
//! SHA-256 and audited (`recording.fetched`, source archive, the version).
//! It reads the object version the database recorded, so neither a delete
//! marker (a plain DELETE is allowed on a locked object) nor a later
//! version PUT over the key changes what it returns; `verify` reports both
//! as `object-shadowed`.

use crate::common;

use common::s3;
use common::site::Site;

#[tokio::test]
async fn fetch_reads_the_recorded_version_from_rgw() {
    let rgw = s3::rgw();
    let bucket = rgw.new_lock_bucket("hf-fetch").await;
    let site = Site::s3(&rgw, &bucket);
    let store = site.store().await;
    let body = b"RIFF....WAVEfmt archived audio".to_vec();
    let id = site.sealed(&store, "C1", &body).await;
    site.ok(&["archive", "drain"]);
    let archived = store.archive_record(id).await.unwrap().archived.expect("archived");
    // the spooled file is not what fetch reads once archived
    let spooled = store.get_recording(id).await.unwrap().path;
    std::fs::remove_file(&spooled).unwrap();

    let fetch = |n: u32| {
        let out = site.dir.path().join(format!("out{n}.wav"));
        let args =
            ["fetch", "--recording", &id.to_string(), "--out", out.to_str().unwrap(), "--user", "auditor1"];
        site.ok(&args);
        std::fs::read(&out).unwrap()
    };
    assert_eq!(fetch(1), body);
    let rows = store.audit_rows(0).await.unwrap();
    let ev = rows.iter().rfind(|r| r.action == "recording.fetched").expect("recording.fetched");
    assert_eq!((ev.actor.as_str(), ev.subject.as_str()), ("auditor1", id.to_string().as_str()));
    assert_eq!(ev.detail["from"]["source"], "archive");
    assert_eq!(ev.detail["from"]["version_id"].as_str(), archived.version.as_deref());

    // a delete marker hides the key's current version; the locked one stays
    rgw.delete_current(&bucket, &archived.key).await;
    assert!(rgw.head(&bucket, &archived.key).await.is_err(), "the key shows the delete marker");
    assert_eq!(fetch(2), body);
    let out = site.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("object-shadowed") && text.contains("delete marker"), "{text}");

    // another version over the key: still the recorded one
    rgw.put_plain(&bucket, &archived.key, b"RIFF....WAVEfmt something else").await;
    assert_eq!(fetch(3), body);
    let out = site.run(&["verify", "--deep"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("object-shadowed") && text.contains("not the recorded"), "{text}");
    assert!(
        text.contains("verify: 1 finding(s)"),
        "only the shadowing, the recorded version is intact: {text}"
    );
    huifang::audit::verify_chain(&store.audit_rows(0).await.unwrap()).unwrap();
    store.close().await;
}
