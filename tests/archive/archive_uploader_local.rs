//! The uploader against the local archive (issue 4): a SQLite store in a
//! temporary directory, a fake sealed file, one `drain`: archived, verified,
//! the spooled file removed after a grace of 0; a retry changes nothing; a
//! tampered spool file is never uploaded.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use huifang::archive::local::LocalArchive;
use huifang::archive::uploader::{Uploader, UploaderConfig};
use huifang::archive::{Archive, Manifest, manifest_key, recording_key, sha256_hex};
use huifang::config::RetentionConfig;
use huifang::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store};
use uuid::Uuid;

struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    archive: Archive,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("huifang.db").display())).await.unwrap();
    let archive = Archive::Local(LocalArchive::new(dir.path().join("archive")));
    archive.init().await.unwrap();
    Setup { dir, store, archive }
}

fn config(grace_secs: u64) -> UploaderConfig {
    UploaderConfig {
        parallel: 4,
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(4),
        keep_after_upload: Duration::from_secs(grace_secs),
        retention: RetentionConfig {
            minimum_years: 15,
            years: [("new_account".to_string(), 20)].into_iter().collect(),
        },
    }
}

/// A sealed recording of `body` for a call of `kind`; returns (call, recording, path).
async fn sealed(s: &Setup, kind: Option<&str>, body: &[u8]) -> (Uuid, Uuid, std::path::PathBuf) {
    let call = Uuid::now_v7();
    let rec = Uuid::now_v7();
    let started = Utc.with_ymd_and_hms(2028, 2, 29, 9, 30, 0).unwrap();
    s.store
        .insert_call(&NewCall {
            id: call,
            task_id: Some("task-9".into()),
            client_id: Some("C-42".into()),
            agent_uri: "sip:agent1@127.0.0.1:5060".into(),
            client_uri: "sip:13800000000@127.0.0.1".into(),
            started_at: started,
            kind: kind.map(str::to_string),
            agent_id: None,
            claimed_at: None,
        })
        .await
        .unwrap();
    let sealed_dir = s.dir.path().join("spool/sealed");
    std::fs::create_dir_all(&sealed_dir).unwrap();
    let path = sealed_dir.join(format!("{rec}.wav"));
    std::fs::write(&path, body).unwrap();
    s.store
        .insert_recording(&NewRecording {
            id: rec,
            call_id: call,
            path: s.dir.path().join(format!("spool/recording/{rec}.wav")).display().to_string(),
            started_at: started,
        })
        .await
        .unwrap();
    s.store
        .seal_recording(&SealedRecording {
            id: rec,
            path: path.display().to_string(),
            sha256: sha256_hex(body),
            bytes: body.len() as u64,
            duration_ms: 1500,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state: RecordingState::Sealed,
            sealed_at: started + chrono::Duration::seconds(2),
        })
        .await
        .unwrap();
    s.store.finish_call(call, "completed", None, started + chrono::Duration::seconds(2)).await.unwrap();
    (call, rec, path)
}

fn soon() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(20)
}

// invariant E4, E5
#[tokio::test]
async fn drain_archives_verifies_and_removes_the_spooled_file() {
    let s = setup().await;
    let body = b"RIFF\x24\x00\x00\x00WAVEfmt fake recording".to_vec();
    let (call, rec, path) = sealed(&s, Some("new_account"), &body).await;

    let mut up = Uploader::new(s.store.clone(), s.archive.clone(), config(0));
    let report = up.drain(soon()).await.unwrap();
    assert_eq!((report.archived, report.failures, report.remaining, report.removed), (1, 0, 0, 1));

    let started = Utc.with_ymd_and_hms(2028, 2, 29, 9, 30, 0).unwrap();
    let key = recording_key(started, rec);
    let info = s.archive.head(&key).await.unwrap().expect("WAV archived");
    assert_eq!(info.lock_mode.as_deref(), Some("COMPLIANCE"));
    // 20 years for new_account, from a 29 February: stays on 29 February 2048
    assert_eq!(info.retain_until, Some(Utc.with_ymd_and_hms(2048, 2, 29, 9, 30, 0).unwrap()));
    assert_eq!(info.metadata["sha256"], sha256_hex(&body));
    assert_eq!(info.metadata["call-id"], call.to_string());
    assert_eq!(info.metadata["client-id"], "C-42");
    assert_eq!(info.metadata["task-id"], "task-9");
    assert_eq!(info.metadata["agent-id"], "agent1");
    assert_eq!(info.metadata["started-at"], "2028-02-29T09:30:00Z");
    assert_eq!(info.metadata["duration-ms"], "1500");
    assert_eq!(s.archive.get(&key).await.unwrap(), body);

    let manifest = Manifest::from_json(&s.archive.get(&manifest_key(started, rec)).await.unwrap()).unwrap();
    assert_eq!(manifest.recording_id, rec);
    assert_eq!(manifest.call_id, call);
    assert_eq!(manifest.kind.as_deref(), Some("new_account"));
    assert_eq!(manifest.retention_years, 20);
    assert_eq!(manifest.sha256, sha256_hex(&body));
    assert_eq!(manifest.state, "sealed");

    let record = s.store.archive_record(rec).await.unwrap();
    let archived = record.archived.expect("marked archived");
    assert_eq!(archived.key, key);
    assert_eq!(archived.retain_until, Utc.with_ymd_and_hms(2048, 2, 29, 9, 30, 0).unwrap());
    assert!(record.spool_removed_at.is_some());
    assert!(!path.exists(), "spooled file removed after the grace period");
    assert!(s.store.pending_uploads(10).await.unwrap().is_empty());

    // /metrics counts it (its call "ends" in 2028: no latency to observe;
    // the histogram's arithmetic is huifang::metrics's unit test)
    assert!(metric("huifang_archived_total") >= 1);

    // a second drain finds nothing to do
    let again = up.drain(soon()).await.unwrap();
    assert_eq!((again.archived, again.remaining), (0, 0));
}

// invariant E4
#[tokio::test]
async fn spooled_file_stays_during_the_grace_period() {
    let s = setup().await;
    let (_, rec, path) = sealed(&s, None, b"RIFF grace").await;
    let mut up = Uploader::new(s.store.clone(), s.archive.clone(), config(3600));
    let report = up.drain(soon()).await.unwrap();
    assert_eq!((report.archived, report.removed), (1, 0));
    assert!(path.exists());
    let rec = s.store.archive_record(rec).await.unwrap();
    assert!(rec.archived.is_some() && rec.spool_removed_at.is_none());
    // 15 years by default
    assert_eq!(rec.archived.unwrap().retain_until, Utc.with_ymd_and_hms(2043, 2, 28, 9, 30, 0).unwrap());
}

// invariant E4: a crash between the PUT and the database update
#[tokio::test]
async fn retry_after_a_crash_finds_the_objects_and_writes_nothing_new() {
    let s = setup().await;
    let body = b"RIFF crash".to_vec();
    let (_, rec, _) = sealed(&s, None, &body).await;
    let job = s.store.pending_uploads(1).await.unwrap().remove(0);
    // the objects are written as the uploader would, but the row is not marked
    let started = job.call_started_at;
    let cfg = config(0);
    let first =
        huifang::archive::uploader::upload_one(&s.store, &s.archive, &cfg.retention, &job).await.unwrap();
    assert!(s.store.archive_record(rec).await.unwrap().archived.is_some());
    let before = s.archive.list("recordings/").await.unwrap();
    // another attempt of the same job: no error, nothing new
    let second =
        huifang::archive::uploader::upload_one(&s.store, &s.archive, &cfg.retention, &job).await.unwrap();
    assert_eq!(first.key, second.key);
    assert_eq!(s.archive.list("recordings/").await.unwrap(), before);
    assert_eq!(before, vec![manifest_key(started, rec), recording_key(started, rec)]);
}

// invariant E3
#[tokio::test]
async fn a_tampered_spool_file_is_never_uploaded() {
    let s = setup().await;
    let (_, rec, path) = sealed(&s, None, b"RIFF original").await;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"RIFF tampered").unwrap();

    let mut up = Uploader::new(s.store.clone(), s.archive.clone(), config(0));
    let status = up.status();
    let report = up.drain(tokio::time::Instant::now() + Duration::from_millis(300)).await.unwrap();
    assert_eq!((report.archived, report.remaining), (0, 1));
    assert!(report.failures >= 1);
    assert!(status.borrow().last_error.as_deref().unwrap_or("").contains("not uploaded"));
    assert!(s.archive.list("recordings/").await.unwrap().is_empty());
    let record = s.store.archive_record(rec).await.unwrap();
    assert!(record.archived.is_none());
    assert!(record.upload_attempts >= 1);
    assert!(record.last_upload_error.unwrap().contains("sealed as"));
    assert!(metric("huifang_archive_errors_total") >= 1, "the failure is counted for /metrics");
}

/// A counter of this process's `/metrics` registry (shared by the tests
/// of this binary, so only ever compared with `>=`).
fn metric(name: &str) -> u64 {
    let mut text = String::new();
    huifang::metrics::METRICS.render(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}
