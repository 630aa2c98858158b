//! Invariant E4 against a real S3 with Object Lock (Ceph RGW): `kill -9` of
//! `huifang archive drain` in the middle of an upload — after the WAV's PUT
//! and before the manifest's, or after both objects are written and
//! verified but before the recording is marked archived — then a restart
//! (`archive drain` again): the upload completes, each key holds exactly
//! one object version (the retry found the objects by HEAD and did not PUT
//! them again), the recording is `archived` with that version, and
//! `verify --deep` finds nothing.
//!
//! The kill point is made deterministic by the uploader's test-only hook
//! `HUIFANG_TEST_UPLOAD_PAUSE` (see `src/archive/uploader.rs`): the upload
//! stops there for good after saying so on stderr.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::s3;
use common::site::Site;
use huifang::archive::uploader::TEST_PAUSE_VAR;

/// Bytes that stand for a sealed WAV (the uploader does not parse them).
fn wav_bytes() -> Vec<u8> {
    let mut v = b"RIFF\x00\x00\x00\x00WAVEfmt ".to_vec();
    v.extend((0..256 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    v
}

fn kill_at(point: &str, before_restart: (usize, usize)) {
    let rgw = s3::rgw();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(rgw.new_lock_bucket("hf-kill"));
    let site = Site::s3(&rgw, &bucket);
    let store = rt.block_on(site.store());
    let id = rt.block_on(site.sealed(&store, "C7", &wav_bytes()));

    let mut child = site
        .command(&["archive", "drain", "--timeout", "60"])
        .env(TEST_PAUSE_VAR, point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("huifang test hook: upload of") {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let paused = rx.recv_timeout(Duration::from_secs(60));
    child.kill().unwrap(); // SIGKILL, to the PID we spawned
    child.wait().unwrap();
    let log = reader.join().unwrap();
    let paused = paused.unwrap_or_else(|_| panic!("the upload never reached {point}; log:\n{log}"));
    assert!(paused.contains(&id.to_string()) && paused.ends_with(point), "{paused}");

    // What the kill left: objects in the bucket, the recording not archived.
    let (versions, markers) = rt.block_on(rgw.versions(&bucket));
    let count = |versions: &[(String, String)], ext: &str| {
        versions.iter().filter(|(k, _)| k.ends_with(&format!("{id}.{ext}"))).count()
    };
    assert_eq!(
        (count(&versions, "wav"), count(&versions, "json")),
        before_restart,
        "after the kill at {point}: {versions:?}"
    );
    assert!(markers.is_empty());
    let record = rt.block_on(store.archive_record(id)).unwrap();
    assert!(record.archived.is_none(), "killed before marking, yet archived: {record:?}");

    // Restart: the upload completes.
    let out = site.ok(&["archive", "drain", "--timeout", "60"]);
    assert!(out.contains("1 archived and verified"), "{out}");

    // One version per key: the retry did not PUT a second one.
    let (versions, markers) = rt.block_on(rgw.versions(&bucket));
    assert_eq!(versions.len(), 2, "exactly the WAV and its manifest, once each: {versions:?}");
    assert_eq!((count(&versions, "wav"), count(&versions, "json")), (1, 1), "{versions:?}");
    assert!(markers.is_empty());
    let record = rt.block_on(store.archive_record(id)).unwrap();
    let archived = record.archived.expect("archived after the restart");
    let wav_version = versions.iter().find(|(k, _)| k == &archived.key).map(|(_, v)| v.clone());
    assert_eq!(archived.version, wav_version, "the database records the one version");
    let manifest_version = versions.iter().find(|(k, _)| k == &archived.manifest_key).map(|(_, v)| v.clone());
    assert_eq!(archived.manifest_version, manifest_version);

    // The audit log says which objects the retry found already there.
    let rows = rt.block_on(store.audit_rows(0)).unwrap();
    huifang::audit::verify_chain(&rows).unwrap();
    let uploaded: Vec<_> = rows.iter().filter(|r| r.action == "recording.uploaded").collect();
    let last = uploaded.last().expect("recording.uploaded");
    let (wav_put, manifest_put) = (before_restart.0 == 0, before_restart.1 == 0);
    assert_eq!(last.detail["put"], serde_json::json!({"wav": wav_put, "manifest": manifest_put}));
    assert_eq!(rows.iter().filter(|r| r.action == "recording.verified").count(), 1);
    rt.block_on(store.close());

    let out = site.ok(&["verify", "--deep"]);
    assert!(out.contains("no findings"), "{out}");
}

// invariant E4
#[test]
fn kill_after_the_wav_put_then_restart_completes_without_a_second_version() {
    kill_at("after-wav", (1, 0));
}

// invariant E4
#[test]
fn kill_before_marking_archived_then_restart_completes_without_a_second_version() {
    kill_at("before-mark", (1, 1));
}
