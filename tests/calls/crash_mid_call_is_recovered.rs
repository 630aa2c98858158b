//! Invariant E4: `kill -9` of huifang in the middle of a recorded call,
//! then a restart: the half-written WAV is repaired (header sizes from the
//! file length), sealed as `interrupted` with its SHA-256, holds the audio
//! up to at most about one second before the kill, and the call is closed
//! as `interrupted`.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::huifang::{Huifang, binary, write_config};
use common::{audio, sipp_uas};
use sha2::{Digest, Sha256};

#[test]
fn kill_9_mid_call_then_restart() {
    let agent = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::AGENT_ULAW_WAV)), &[]);
    let client = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::CLIENT_ULAW_WAV)), &[]);
    let (dir, config) = write_config("", "");
    let mut child = Command::new(binary())
        .args([
            "dial",
            "--agent",
            &agent.uri("agent1"),
            "--client",
            &client.uri("c"),
            "--max-seconds",
            "60",
            "--config",
        ])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "recording started", note the time, let it record ~4 s.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("recording started") {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(20)).expect("recording never started");
    std::thread::sleep(Duration::from_millis(4_300));
    let killed = Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let recorded_for = started.elapsed();
    let _ = child.wait();
    let _ = agent.kill();
    let _ = client.kill();

    let spool = dir.path().join("var/spool");
    let left: Vec<_> = std::fs::read_dir(spool.join("recording")).unwrap().collect();
    assert_eq!(left.len(), 1, "the half-written WAV is in recording/");

    // Restart: `serve` repairs at start-up.
    let mut h = Huifang::start_with_config(&config);
    assert!(
        h.wait_log("recovered from an unclean stop", Duration::from_secs(10)),
        "no recovery logged:\n{}",
        h.log()
    );
    h.terminate(Duration::from_secs(10));

    assert_eq!(std::fs::read_dir(spool.join("recording")).unwrap().count(), 0, "nothing left half-written");
    let sealed: Vec<_> =
        std::fs::read_dir(spool.join("sealed")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(sealed.len(), 1);
    let (rate, ch, samples) = audio::read_wav(&sealed[0]);
    assert_eq!((rate, ch), (8000, 2));
    let secs = samples.len() as f64 / 2.0 / 8000.0;
    let expected = recorded_for.as_secs_f64();
    assert!(
        secs >= expected - 1.3 && secs <= expected + 0.3,
        "repaired file holds {secs:.2} s; recording ran {expected:.2} s before the kill (E4: at most ~1 s lost)"
    );
    // The agent's phrase made it into the repaired file.
    let left = audio::channel(&samples, 2, 0);
    assert!(audio::rms_dbfs(&left) > -50.0, "agent channel is silent");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = format!("sqlite://{}", dir.path().join("var/huifang.db").display());
        let store = ::huifang::store::Store::open(&db).await.unwrap();
        let recs = store.recordings_in_state("interrupted").await.unwrap();
        assert_eq!(recs.len(), 1, "the recording is traced as interrupted");
        let bytes = std::fs::read(&sealed[0]).unwrap();
        assert_eq!(recs[0].sha256.as_deref(), Some(hex::encode(Sha256::digest(&bytes)).as_str()));
        let call = store.get_call(recs[0].call_id).await.unwrap();
        assert_eq!(call.outcome.as_deref(), Some("interrupted"));
        assert!(store.open_calls().await.unwrap().is_empty());
    });
}
