//! A recording is streamed to S3 from its file, and the request is signed
//! with the SHA-256 huifang has for it (not `UNSIGNED-PAYLOAD`): Ceph RGW
//! refuses a streamed PUT whose bytes do not hash to the signed SHA-256,
//! even when its Content-MD5 is right, and stores nothing. Needs the test
//! RGW (`scripts/peers/ceph-rgw.sh start`, which `scripts/test.sh` runs).

use crate::common;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use common::s3::rgw;
use huifang::archive::s3::S3Archive;
use huifang::archive::{Archive, Body, PutObject, file_digests, sha256_hex};
use huifang::config::S3Config;

#[test]
fn streamed_put_is_signed_with_the_recordings_sha256() {
    let rgw = rgw();
    // The archive reads its secret from the environment. `scripts/test.sh`
    // exports it as HUIFANG_S3_SECRET_KEY; setting a variable here instead
    // would race with the other tests of this binary, so a run outside
    // test.sh must export it too.
    let secret_var = "HUIFANG_S3_SECRET_KEY";
    assert_eq!(
        std::env::var(secret_var).ok().as_deref(),
        Some(rgw.secret_key.as_str()),
        "export {secret_var} (tests/peers/rgw-user.env) to run this test"
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let bucket = rgw.new_lock_bucket("signed").await;
        let cfg = S3Config {
            endpoint: rgw.endpoint.clone(),
            bucket: bucket.clone(),
            region: "us-east-1".into(),
            path_style: true,
            access_key_id: Some(rgw.access_key.clone()),
            secret_access_key_env: Some(secret_var.into()),
        };
        let archive = Archive::S3(S3Archive::from_config(&cfg).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("call.wav");
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&file, &body).unwrap();
        let d = file_digests(&file).unwrap();
        let meta = BTreeMap::new();
        let until = Utc.with_ymd_and_hms(2041, 11, 27, 0, 0, 0).unwrap();
        let put = |key: &'static str, sha: &'static str| PutObject {
            key,
            body: Body::File { path: &file, len: d.len, md5: d.md5 },
            content_type: "audio/wav",
            sha256_hex: sha,
            metadata: &meta,
            retain_until: until,
        };
        let good: &'static str = Box::leak(d.sha256_hex.clone().into_boxed_str());
        archive.put(&put("recordings/good.wav", good)).await.expect("a PUT with the file's SHA-256");
        assert_eq!(archive.get("recordings/good.wav").await.unwrap(), body);

        // the right MD5, but the signature names other bytes' SHA-256
        let wrong: &'static str = Box::leak(sha256_hex(b"other bytes").into_boxed_str());
        let r = archive.put(&put("recordings/bad.wav", wrong)).await;
        assert!(r.is_err(), "RGW stored a body that does not match its signed SHA-256");
        assert!(archive.head("recordings/bad.wav").await.unwrap().is_none());
    });
}
