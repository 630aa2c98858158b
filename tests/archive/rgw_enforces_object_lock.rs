//! The real S3 peer (Ceph RGW, `scripts/peers/ceph-rgw.sh`) behaves as shared
//! PEERS.md says, so the archive tests can rely on it: a COMPLIANCE version
//! cannot be deleted or have its retention shortened, a wrong Content-MD5 is
//! refused, and a bucket made without Object Lock has no lock configuration.
//! Each test uses its own bucket. Fails (never skips) when RGW is not running.

use crate::common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode};
use base64::Engine;
use chrono::{Duration as ChronoDuration, SubsecRound, Utc};
use md5::{Digest, Md5};

use common::s3::{Rgw, describe_err, rgw};

fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// Whole seconds, `years` from now (S3 dates have second precision).
fn retain_until(years: i64) -> chrono::DateTime<Utc> {
    (Utc::now() + ChronoDuration::days(365 * years)).trunc_subsecs(0)
}

fn s3_date(t: chrono::DateTime<Utc>) -> DateTime {
    DateTime::from_secs(t.timestamp())
}

/// PUT one object with COMPLIANCE until `until` and a correct Content-MD5;
/// returns its version id.
async fn put_locked(rgw: &Rgw, bucket: &str, key: &str, body: &[u8], until: chrono::DateTime<Utc>) -> String {
    let out = rgw
        .client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .content_md5(content_md5(body))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(s3_date(until))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {bucket}/{key} with COMPLIANCE: {}", describe_err(&e)));
    out.version_id().expect("a lock bucket is versioned: PutObject returns a version id").to_string()
}

#[tokio::test]
async fn compliance_put_is_visible_in_head_and_version_cannot_be_deleted() {
    let rgw = rgw();
    let bucket = rgw.new_lock_bucket("lock-head").await;
    let until = retain_until(15);
    let body = b"recording bytes: compliance put";
    let version = put_locked(&rgw, &bucket, "calls/a.wav", body, until).await;

    let head = rgw.head(&bucket, "calls/a.wav").await.expect("HeadObject");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance), "{head:?}");
    let got = head.object_lock_retain_until_date().expect("retain-until in HeadObject");
    assert_eq!(got.secs(), until.timestamp(), "retain-until {got} vs {until}");
    assert_eq!(head.version_id(), Some(version.as_str()));
    assert_eq!(head.content_length(), Some(body.len() as i64));

    let err = rgw
        .try_delete_version(&bucket, "calls/a.wav", &version)
        .await
        .expect_err("deleting a COMPLIANCE version must be refused");
    assert!(err.starts_with("403 AccessDenied"), "{err}");

    // still there, still locked
    let head = rgw.head(&bucket, "calls/a.wav").await.expect("HeadObject after refused delete");
    assert_eq!(head.version_id(), Some(version.as_str()));
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));

    // GetObjectRetention agrees
    let ret = rgw
        .client()
        .get_object_retention()
        .bucket(&bucket)
        .key("calls/a.wav")
        .version_id(&version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectRetention: {}", describe_err(&e)));
    let r = ret.retention().expect("retention");
    assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Compliance));
    assert_eq!(r.retain_until_date().map(|d| d.secs()), Some(until.timestamp()));
}

#[tokio::test]
async fn compliance_retention_cannot_be_shortened() {
    let rgw = rgw();
    let bucket = rgw.new_lock_bucket("lock-shorten").await;
    let until = retain_until(15);
    let version = put_locked(&rgw, &bucket, "b.wav", b"recording bytes: shorten", until).await;

    let shorter = until - ChronoDuration::days(365);
    let res = rgw
        .client()
        .put_object_retention()
        .bucket(&bucket)
        .key("b.wav")
        .version_id(&version)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Compliance)
                .retain_until_date(s3_date(shorter))
                .build(),
        )
        .send()
        .await;
    let err = match res {
        Ok(_) => panic!("shortening COMPLIANCE retention was accepted"),
        Err(e) => describe_err(&e),
    };
    assert!(err.starts_with("403 "), "{err}");

    let head = rgw.head(&bucket, "b.wav").await.expect("HeadObject");
    assert_eq!(
        head.object_lock_retain_until_date().map(|d| d.secs()),
        Some(until.timestamp()),
        "retain-until changed"
    );
}

#[tokio::test]
async fn wrong_content_md5_is_refused_with_bad_digest() {
    let rgw = rgw();
    let bucket = rgw.new_lock_bucket("lock-md5").await;
    let res = rgw
        .client()
        .put_object()
        .bucket(&bucket)
        .key("c.wav")
        .body(ByteStream::from_static(b"the bytes actually sent"))
        .content_md5(content_md5(b"some other bytes"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(s3_date(retain_until(15)))
        .send()
        .await;
    let err = match res {
        Ok(o) => panic!("PUT with a wrong Content-MD5 was accepted: {o:?}"),
        Err(e) => describe_err(&e),
    };
    assert!(err.starts_with("400 BadDigest"), "{err}");
    let head = rgw.head(&bucket, "c.wav").await;
    assert!(head.is_err(), "nothing must be stored: {head:?}");
}

#[tokio::test]
async fn plain_bucket_has_no_object_lock_configuration() {
    let rgw = rgw();
    let plain = rgw.new_plain_bucket("plain").await;
    let res = rgw.client().get_object_lock_configuration().bucket(&plain).send().await;
    let err = match res {
        Ok(o) => panic!("a plain bucket reports an object lock configuration: {o:?}"),
        Err(e) => describe_err(&e),
    };
    assert!(err.starts_with("404 ObjectLockConfigurationNotFoundError"), "{err}");

    // ... while a lock bucket has one
    let locked = rgw.new_lock_bucket("lock-conf").await;
    let conf = rgw
        .client()
        .get_object_lock_configuration()
        .bucket(&locked)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectLockConfiguration on a lock bucket: {}", describe_err(&e)));
    let enabled = conf.object_lock_configuration().and_then(|c| c.object_lock_enabled());
    assert_eq!(enabled.map(|e| e.as_str()), Some("Enabled"), "{conf:?}");
}
