//! Legal holds reach the archive on a real S3 with Object Lock (Ceph RGW):
//! `hold set` puts the S3 legal hold on the recording's WAV and manifest
//! (the versions the database recorded); a first `hold release` only
//! requests it (still held), the same user again is refused, a second user
//! releases it and the S3 legal hold is lifted from both objects. A hold
//! set before the recording is archived is put on the objects by the
//! uploader when it archives them.

use crate::common;

use common::s3;
use common::site::Site;
use huifang::store::Archived;

async fn held(rgw: &s3::Rgw, bucket: &str, a: &Archived) -> (bool, bool) {
    let on = |h: Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, String>| {
        let h = h.unwrap();
        h.object_lock_legal_hold_status().map(|s| s.as_str()) == Some("ON")
    };
    (
        on(rgw.head_version(bucket, &a.key, a.version.as_deref()).await),
        on(rgw.head_version(bucket, &a.manifest_key, a.manifest_version.as_deref()).await),
    )
}

#[tokio::test]
async fn hold_set_and_release_reach_the_s3_objects() {
    let rgw = s3::rgw();
    let bucket = rgw.new_lock_bucket("hf-hold").await;
    let site = Site::s3(&rgw, &bucket);
    let store = site.store().await;
    let rec = site.sealed(&store, "C1", b"RIFF....WAVEfmt held audio").await;
    let early = site.sealed(&store, "C1", b"RIFF....WAVEfmt held early").await;
    let hold = |id: &uuid::Uuid, action: &str, user: &str| {
        site.run(&["hold", action, "--recording", &id.to_string(), "--reason", "inquiry 12", "--user", user])
    };
    // held before it is archived: the row only, for now
    let out = hold(&early, "set", "alice");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not archived yet"));

    site.ok(&["archive", "drain"]);
    let a = store.archive_record(rec).await.unwrap().archived.expect("archived");
    let e = store.archive_record(early).await.unwrap().archived.expect("archived");
    assert_eq!(held(&rgw, &bucket, &a).await, (false, false));
    assert_eq!(held(&rgw, &bucket, &e).await, (true, true), "the uploader held the early one");

    assert!(hold(&rec, "set", "alice").status.success());
    assert_eq!(held(&rgw, &bucket, &a).await, (true, true));
    assert!(!hold(&rec, "set", "carol").status.success(), "already held");

    assert!(hold(&rec, "release", "alice").status.success());
    assert_eq!(held(&rgw, &bucket, &a).await, (true, true), "a request only");
    let again = hold(&rec, "release", "alice");
    assert!(!again.status.success(), "the same user cannot confirm");
    assert!(String::from_utf8_lossy(&again.stderr).contains("two-person"));
    assert_eq!(held(&rgw, &bucket, &a).await, (true, true));
    assert!(hold(&rec, "release", "bob").status.success());
    assert_eq!(held(&rgw, &bucket, &a).await, (false, false), "released by two people");
    assert_eq!(held(&rgw, &bucket, &e).await, (true, true), "the other hold is untouched");

    let rows = store.audit_rows(0).await.unwrap();
    huifang::audit::verify_chain(&rows).unwrap();
    let actions: Vec<&str> = rows
        .iter()
        .filter(|r| r.subject == rec.to_string() && r.action.starts_with("hold."))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(actions, ["hold.set", "hold.release_requested", "hold.released"]);
    let out = site.ok(&["verify"]);
    assert!(out.contains("no findings"), "{out}");
    store.close().await;
}
