//! A quick run of the S3 backend against a lenient S3 endpoint (moto), not
//! part of the suite: moto does not enforce WORM (see `../shared/PEERS.md`);
//! the WORM tests run against Ceph RGW. Run with
//!
//! ```text
//! /tmp/moto/bin/moto_server -H 127.0.0.1 -p 5599 &
//! HUIFANG_TEST_S3=http://127.0.0.1:5599 cargo test --test archive archive_s3_moto -- --ignored
//! ```

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use huifang::archive::s3::S3Archive;
use huifang::archive::{Archive, ArchiveError, PutObject, sha256_hex};
use huifang::config::S3Config;

fn archive(bucket: &str) -> Archive {
    let endpoint = std::env::var("HUIFANG_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5599".into());
    let cfg = S3Config {
        endpoint,
        bucket: bucket.into(),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: Some("testing".into()),
        secret_access_key_env: Some("PATH".into()), // any set variable: moto accepts any secret
    };
    Archive::S3(S3Archive::from_config(&cfg).unwrap())
}

#[tokio::test]
#[ignore = "needs an S3 endpoint (moto) at HUIFANG_TEST_S3"]
async fn s3_backend_round_trip() {
    let bucket = format!("huifang-{}", uuid::Uuid::new_v4().simple());
    let a = archive(&bucket);
    assert!(a.describe().ends_with(&bucket), "{}", a.describe());
    let e = a.check().await.unwrap_err();
    eprintln!("check before init: {e}");
    a.init().await.unwrap();
    a.init().await.unwrap(); // again: fine

    let body = b"RIFF fake wav".to_vec();
    let sha = sha256_hex(&body);
    let meta =
        BTreeMap::from([("sha256".to_string(), sha.clone()), ("call-id".to_string(), "c-1".to_string())]);
    let until = Utc.with_ymd_and_hms(2041, 11, 27, 14, 44, 53).unwrap();
    let key = "recordings/2026/11/27/x.wav";
    let obj = PutObject {
        key,
        body: huifang::archive::Body::Bytes(&body),
        content_type: "audio/wav",
        sha256_hex: &sha,
        metadata: &meta,
        retain_until: until,
    };
    let put = a.put(&obj).await.unwrap();
    eprintln!("put: {put:?}");
    let info = a.head(key).await.unwrap().unwrap();
    eprintln!("head: {info:?}");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.lock_mode.as_deref(), Some("COMPLIANCE"));
    assert_eq!(info.retain_until, Some(until));
    assert_eq!(info.metadata, meta);
    assert_eq!(info.version_id, put.version_id);
    assert_eq!(a.get(key).await.unwrap(), body);
    assert!(a.head("recordings/none.wav").await.unwrap().is_none());
    assert!(matches!(a.get("recordings/none.wav").await, Err(ArchiveError::NotFound(_))));
    assert_eq!(a.list("recordings/").await.unwrap(), vec![key.to_string()]);
    a.set_legal_hold(key, None, true).await.unwrap();
    assert!(a.head(key).await.unwrap().unwrap().legal_hold);
    a.set_legal_hold(key, None, false).await.unwrap();
    assert!(!a.head(key).await.unwrap().unwrap().legal_hold);
    // a second PUT of the same key makes a new version (versioned bucket)
    let again = a.put(&obj).await.unwrap();
    eprintln!("second put: {again:?}");
    assert_ne!(again.version_id, put.version_id);
}

#[tokio::test]
#[ignore = "needs an S3 endpoint (moto) at HUIFANG_TEST_S3"]
async fn bucket_without_object_lock_is_refused() {
    let bucket = format!("huifang-plain-{}", uuid::Uuid::new_v4().simple());
    // create a plain bucket with the SDK directly
    let a = archive(&bucket);
    let Archive::S3(_) = &a else { unreachable!() };
    let endpoint = std::env::var("HUIFANG_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5599".into());
    let status = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .output()
        .unwrap();
    eprintln!("plain bucket created: HTTP {}", String::from_utf8_lossy(&status.stdout));
    let e = a.check().await.unwrap_err();
    eprintln!("check: {e}");
    assert!(matches!(e, ArchiveError::NotLocked(_)), "{e:?}");
    assert!(e.to_string().contains("huifang archive init"));
}
