//! `export_bench`: seeds what `scripts/bench/export.sh` exports — a
//! huifang directory (`--dir`: `huifang.toml`, a SQLite trace, a spool)
//! with client `C1`'s `--recordings` sealed recordings of `--seconds` of
//! stereo 8 kHz audio each (pseudo-random samples: nothing compresses),
//! each with its `recording.sealed` audit event, as a call would leave
//! them. The script then archives them (`huifang archive drain`) and
//! times the export against `cat`.
//!
//! ```text
//! cargo run --release --example export_bench -- --dir /tmp/x --recordings 1000 --seconds 30
//! ```

use std::io::Write;
use std::path::PathBuf;

use chrono::Utc;
use huifang::audit::{AuditAction, AuditEvent};
use huifang::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let mut dir = PathBuf::from("export-bench");
    let (mut recordings, mut seconds) = (1000usize, 30u64);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k}: a value is missing"));
        match k.as_str() {
            "--dir" => dir = PathBuf::from(v),
            "--recordings" => recordings = v.parse().expect("--recordings"),
            "--seconds" => seconds = v.parse().expect("--seconds"),
            _ => panic!("unknown argument {k}"),
        }
    }
    let holidays = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/holidays/cn-exchanges.toml");
    std::fs::create_dir_all(dir.join("spool/sealed")).expect("the spool");
    let db = dir.join("huifang.db");
    std::fs::write(
        dir.join("huifang.toml"),
        format!(
            "[sip]\nlisten = \"127.0.0.1:25999\"\n[database]\nurl = \"sqlite://{}\"\n[spool]\npath = \"spool\"\n\
             [archive]\nbackend = \"local\"\npath = \"archive\"\n[calendar]\nholidays = \"{}\"\n[log]\nlevel = \"warn\"\n",
            db.display(),
            holidays.display()
        ),
    )
    .expect("the config");
    let store = Store::open(&format!("sqlite://{}", db.display())).await.expect("the database");
    let data_bytes = seconds as usize * 8000 * 4;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..recordings {
        let id = Uuid::now_v7();
        let started = Utc::now();
        let call = NewCall {
            id,
            task_id: None,
            client_id: Some("C1".into()),
            agent_uri: "sip:agent1@127.0.0.1".into(),
            client_uri: "sip:13900000001@127.0.0.1".into(),
            started_at: started,
            kind: Some("complaint".into()),
            agent_id: Some("A1".into()),
            claimed_at: None,
        };
        store.insert_call(&call).await.expect("a call");
        let path = dir.join(format!("spool/sealed/{id}.wav"));
        let mut wav = Vec::with_capacity(44 + data_bytes);
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&((36 + data_bytes) as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&32000u32.to_le_bytes());
        wav.extend_from_slice(&4u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data_bytes as u32).to_le_bytes());
        for _ in 0..data_bytes / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            wav.extend_from_slice(&x.to_le_bytes());
        }
        let mut f = std::fs::File::create(&path).expect("a WAV");
        f.write_all(&wav).expect("a WAV");
        f.sync_all().expect("a WAV");
        let sha = hex::encode(Sha256::digest(&wav));
        store
            .insert_recording(&NewRecording {
                id,
                call_id: id,
                path: path.display().to_string(),
                started_at: started,
            })
            .await
            .expect("a recording");
        store.mark_answered(id, started).await.expect("answered");
        let sealed = SealedRecording {
            id,
            path: path.display().to_string(),
            sha256: sha.clone(),
            bytes: wav.len() as u64,
            duration_ms: seconds * 1000,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state: RecordingState::Sealed,
            sealed_at: Utc::now(),
        };
        let event = AuditEvent::system(
            AuditAction::RecordingSealed,
            id,
            serde_json::json!({"call_id": id, "sha256": sha, "bytes": wav.len(), "duration_ms": seconds * 1000,
                               "state": "sealed"}),
        );
        store.seal_recording_audited(&sealed, &event).await.expect("sealed");
        store.finish_call(id, "completed", None, Utc::now()).await.expect("ended");
        if (i + 1) % 100 == 0 {
            eprintln!("export_bench: {} recordings seeded", i + 1);
        }
    }
    store.close().await;
}
