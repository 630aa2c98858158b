//! `verify` finds what is wrong, one line each, and exits 1: a tampered
//! archived object (`--deep`), a missing object, an orphan manifest and a
//! broken audit chain.

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

fn files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) && !p.to_string_lossy().ends_with(".meta.json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn writable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn verify_reports_each_finding() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("huifang.db");
    let config = dir.path().join("huifang.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten = \"127.0.0.1:25997\"\n[database]\nurl = \"sqlite://{}\"\n[spool]\npath = \"spool\"\n\
             [archive]\nbackend = \"local\"\npath = \"archive\"\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("spool/sealed")).unwrap();
    let url = format!("sqlite://{}", db.display());
    let store = Store::open(&url).await.unwrap();
    for n in 0..2 {
        let wav = dir.path().join(format!("spool/sealed/{n}.wav"));
        std::fs::write(&wav, format!("RIFF....WAVEfmt fake audio {n}")).unwrap();
        call(&store, "C1", Some(&wav)).await;
    }
    for n in 0..3 {
        store
            .append_audit(&huifang::audit::AuditEvent::system(
                huifang::audit::AuditAction::CallPlaced,
                n,
                serde_json::json!({}),
            ))
            .await
            .unwrap();
    }
    let out = huifang(&config, &["archive", "drain"]);
    assert!(out.status.success(), "drain: {}", String::from_utf8_lossy(&out.stderr));
    let out = huifang(&config, &["verify", "--deep"]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));

    let archive = dir.path().join("archive");
    let wavs = files(&archive, "wav");
    let manifests = files(&archive, "json");
    assert_eq!((wavs.len(), manifests.len()), (2, 2));
    // tamper with the first object (same size), remove the second
    let parent = wavs[0].parent().unwrap().to_path_buf();
    writable(&parent);
    writable(&wavs[0]);
    let mut bytes = std::fs::read(&wavs[0]).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&wavs[0], &bytes).unwrap();
    writable(wavs[1].parent().unwrap());
    std::fs::remove_file(&wavs[1]).unwrap();
    // an orphan manifest
    let orphan = parent.join(format!("{}.json", uuid::Uuid::now_v7()));
    std::fs::copy(&manifests[0], &orphan).unwrap();
    // a broken audit chain
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    for s in
        ["DROP TRIGGER audit_events_never_updated", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"]
    {
        sqlx::query(s).execute(&mut conn).await.unwrap();
    }

    let out = huifang(&config, &["verify", "--deep"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("content SHA-256"), "{text}");
    assert!(text.contains("orphan-row"), "{text}");
    assert!(text.contains("orphan-manifest"), "{text}");
    assert!(text.contains("audit-chain: seq 2"), "{text}");
    assert!(text.contains("verify: 4 finding(s)"), "{text}");
    store.close().await;
}
