//! `recordings --client`, `fetch` and `verify` from the command line, on
//! SQLite with the local archive (nothing archived yet, so `fetch` reads
//! the spool's sealed file): the listing has every call of the client,
//! recorded or not; `fetch` writes the file and a `recording.fetched`
//! audit event only when the SHA-256 matches the database (E3, E6); a
//! tampered file gives an error and no output; `verify` reports the
//! unarchived recording and a broken audit chain.

use crate::common;

use common::site::{Site, record_call};
use huifang::audit::verify_chain;

/// A site with one recorded call of C1: the site, the sealed file, the
/// store and the recording.
async fn one_recording() -> (Site, std::path::PathBuf, huifang::store::Store, uuid::Uuid) {
    let site = Site::local();
    let wav = site.sealed_dir().join("a.wav");
    std::fs::write(&wav, b"RIFF....WAVEfmt fake audio").unwrap();
    let store = site.store().await;
    let recorded = record_call(&store, "C1", Some(&wav)).await;
    (site, wav, store, recorded)
}

#[tokio::test]
async fn fetch_checks_sha256_and_audits() {
    let (site, wav, store, recorded) = one_recording().await;
    let dir = &site.dir;
    let unrecorded = record_call(&store, "C1", None).await;
    record_call(&store, "C2", None).await;

    // the listing: both calls of C1, the unrecorded one with nulls
    let out = site.run(&["recordings", "--client", "C1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["recording_id"], recorded.to_string());
    assert_eq!(list[0]["call_id"], recorded.to_string());
    assert_eq!(list[0]["state"], "sealed");
    assert!(list[0]["sha256"].as_str().unwrap().len() == 64);
    for k in ["client_id", "started_at", "duration_ms", "archive_key", "retain_until"] {
        assert!(list[0].get(k).is_some(), "{k}");
    }
    assert_eq!(list[1]["call_id"], unrecorded.to_string());
    assert!(list[1]["recording_id"].is_null() && list[1]["sha256"].is_null());

    // fetch: the file, and the audit event
    let got = dir.path().join("out.wav");
    let out = site.run(&[
        "fetch",
        "--recording",
        &recorded.to_string(),
        "--out",
        got.to_str().unwrap(),
        "--user",
        "auditor1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&wav).unwrap());
    let rows = store.audit_rows(0).await.unwrap();
    let fetched = rows.iter().find(|r| r.action == "recording.fetched").expect("recording.fetched");
    assert_eq!(fetched.actor, "auditor1");
    assert_eq!(fetched.subject, recorded.to_string());
    assert!(fetched.detail["host"].is_string());
    verify_chain(&rows).unwrap();

    // a tampered spool file: error, nothing written, no new event
    std::fs::remove_file(&wav).unwrap();
    std::fs::write(&wav, b"RIFF....WAVEfmt other audio").unwrap();
    let got2 = dir.path().join("out2.wav");
    let out = site.run(&[
        "fetch",
        "--recording",
        &recorded.to_string(),
        "--out",
        got2.to_str().unwrap(),
        "--user",
        "auditor1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHA-256 mismatch"));
    assert!(!got2.exists());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| { e.as_ref().unwrap().file_name().to_string_lossy().contains(".part-") })
            .count(),
        0
    );
    assert_eq!(store.audit_rows(0).await.unwrap().len(), rows.len());

    // verify: the sealed recording is not archived → a finding, exit 1
    let out = site.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not-archived"), "{text}");
    assert!(!text.contains("audit-chain"), "{text}");
    store.close().await;
}

/// E6 counted: every fetch is one `recording.fetched` event; when the event
/// cannot be written, the fetch gives no file (and leaves no part file).
#[tokio::test]
async fn every_fetch_is_audited_and_an_unaudited_fetch_gives_no_file() {
    let (site, _wav, store, recorded) = one_recording().await;
    let dir = &site.dir;
    let fetch = |n: usize| {
        let got = dir.path().join(format!("out{n}.wav"));
        let out = site.run(&[
            "fetch",
            "--recording",
            &recorded.to_string(),
            "--out",
            got.to_str().unwrap(),
            "--user",
            "auditor1",
        ]);
        (out, got)
    };
    for n in 0..3 {
        let (out, got) = fetch(n);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(got.exists());
    }
    let count =
        |rows: &[huifang::audit::AuditRow]| rows.iter().filter(|r| r.action == "recording.fetched").count();
    assert_eq!(count(&store.audit_rows(0).await.unwrap()), 3, "one event per fetch");
    // the audit log refuses the event: no file
    sqlx::query(
        "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events WHEN NEW.action = 'recording.fetched' \
         BEGIN SELECT RAISE(ABORT, 'the audit log is down (test)'); END",
    )
    .execute(&mut <sqlx::SqliteConnection as sqlx::Connection>::connect(&site.db_url).await.unwrap())
    .await
    .unwrap();
    let (out, got) = fetch(3);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("recording.fetched not written"), "{out:?}");
    assert!(!got.exists(), "a file without its audit event");
    let parts = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".part-"))
        .count();
    assert_eq!(parts, 0);
    assert_eq!(count(&store.audit_rows(0).await.unwrap()), 3);
    store.close().await;
}
