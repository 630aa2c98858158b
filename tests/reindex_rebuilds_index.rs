//! `reindex` rebuilds the index from the local archive's manifests alone:
//! after `archive drain`, `verify --deep` passes; with the database lost,
//! `reindex` inserts the calls and recordings and `verify` passes again;
//! a second `reindex` inserts nothing.

use std::process::Command;

use chrono::Utc;
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
async fn reindex_rebuilds_what_verify_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("huifang.db");
    let config = dir.path().join("huifang.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = \"127.0.0.1:25998\"\n[database]\nurl = \"sqlite://{}\"\n[spool]\npath = \"spool\"\n\
             [archive]\nbackend = \"local\"\npath = \"archive\"\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("spool/sealed")).unwrap();
    let mut ids = Vec::new();
    {
        let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
        for n in 0..3 {
            let wav = dir.path().join(format!("spool/sealed/{n}.wav"));
            std::fs::write(&wav, format!("RIFF....WAVEfmt fake audio {n}")).unwrap();
            ids.push(call(&store, "C1", Some(&wav)).await);
        }
        store.close().await;
    }
    let out = huifang(&config, &["archive", "drain"]);
    assert!(out.status.success(), "drain: {}", String::from_utf8_lossy(&out.stderr));
    let out = huifang(&config, &["verify", "--deep"]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));

    // the database is lost
    for f in ["huifang.db", "huifang.db-wal", "huifang.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let out = huifang(&config, &["reindex"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "reindex: {text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("inserted 3 call(s) and 3 recording(s)"), "{text}");
    let out = huifang(&config, &["verify", "--deep"]);
    assert!(out.status.success(), "verify after reindex: {}", String::from_utf8_lossy(&out.stdout));
    let out = huifang(&config, &["recordings", "--client", "C1", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(list[0]["archive_key"].is_string() && list[0]["retain_until"].is_string());
    let out = huifang(&config, &["reindex"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 already indexed"));
}
