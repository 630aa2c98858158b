//! `recordings --client`, `fetch` and `verify` from the command line, on
//! SQLite with the local archive (nothing archived yet, so `fetch` reads
//! the spool's sealed file): the listing has every call of the client,
//! recorded or not; `fetch` writes the file and a `recording.fetched`
//! audit event only when the SHA-256 matches the database (E3, E6); a
//! tampered file gives an error and no output; `verify` reports the
//! unarchived recording and a broken audit chain.

use std::process::Command;

use chrono::Utc;
use huifang::audit::verify_chain;
use huifang::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn huifang(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_huifang"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

async fn call(store: &Store, client: &str, recorded: Option<&std::path::Path>) -> Uuid {
    let id = Uuid::now_v7();
    store
        .insert_call(&NewCall {
            id,
            task_id: Some("t1".into()),
            client_id: Some(client.into()),
            agent_uri: "sip:agent@x".into(),
            client_uri: "sip:+8613800000000@x".into(),
            started_at: Utc::now(),
            kind: None,
        })
        .await
        .unwrap();
    if let Some(path) = recorded {
        let bytes = std::fs::read(path).unwrap();
        store
            .insert_recording(&NewRecording {
                id,
                call_id: id,
                path: path.display().to_string(),
                started_at: Utc::now(),
            })
            .await
            .unwrap();
        store.mark_answered(id, Utc::now()).await.unwrap();
        store
            .seal_recording(&SealedRecording {
                id,
                path: path.display().to_string(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                bytes: bytes.len() as u64,
                duration_ms: 1000,
                agent: SideCounters::default(),
                client: SideCounters::default(),
                state: RecordingState::Sealed,
                sealed_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    store.finish_call(id, "completed", None, Utc::now()).await.unwrap();
    id
}

#[tokio::test]
async fn fetch_checks_sha256_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("huifang.db");
    let config = dir.path().join("huifang.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = \"127.0.0.1:25999\"\n[database]\nurl = \"sqlite://{}\"\n[spool]\npath = \"spool\"\n[archive]\nbackend = \"local\"\npath = \"archive\"\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("spool/sealed")).unwrap();
    std::fs::create_dir_all(dir.path().join("archive")).unwrap();
    let wav = dir.path().join("spool/sealed/a.wav");
    std::fs::write(&wav, b"RIFF....WAVEfmt fake audio").unwrap();

    let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let recorded = call(&store, "C1", Some(&wav)).await;
    let unrecorded = call(&store, "C1", None).await;
    call(&store, "C2", None).await;

    // the listing: both calls of C1, the unrecorded one with nulls
    let out = huifang(&config, &["recordings", "--client", "C1", "--json"]);
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
    let out = huifang(
        &config,
        &[
            "fetch",
            "--recording",
            &recorded.to_string(),
            "--out",
            got.to_str().unwrap(),
            "--user",
            "auditor1",
        ],
    );
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
    let out = huifang(
        &config,
        &[
            "fetch",
            "--recording",
            &recorded.to_string(),
            "--out",
            got2.to_str().unwrap(),
            "--user",
            "auditor1",
        ],
    );
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
    let out = huifang(&config, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not-archived"), "{text}");
    assert!(!text.contains("audit-chain"), "{text}");
    store.close().await;
}
