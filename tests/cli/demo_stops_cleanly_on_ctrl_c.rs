//! Ctrl-C in the middle of `huifang demo`'s calls: it stops within seconds
//! with exit code 1, says so, and leaves a consistent trace — the call in
//! progress ended (interrupted) with its recording sealed, no call left
//! open, no recording left half-written.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::huifang::binary;

#[test]
fn ctrl_c_mid_call_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let log = tmp.path().join("demo.log");
    let mut child = Command::new(binary())
        .args(["demo", "--dir"])
        .arg(&dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawning huifang demo");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read().contains("call 1: the dialer took task") {
        assert!(Instant::now() < deadline, "the demo never reached its calls:\n{}", read());
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early:\n{}", read());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Into the first call (the agent answers, the client rings and answers).
    std::thread::sleep(Duration::from_secs(2));
    let stopped = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(stopped.elapsed() < Duration::from_secs(20), "no exit after Ctrl-C:\n{}", read());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", read());
    assert!(read().contains("stopping") && read().contains(&dir.display().to_string()), "{}", read());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = format!("sqlite://{}", dir.join("var/huifang.db").display());
        let store = huifang::store::Store::open(&db).await.unwrap();
        assert!(store.open_calls().await.unwrap().is_empty(), "a call was left open (E2)");
        assert!(
            store.recordings_in_state("recording").await.unwrap().is_empty(),
            "a recording was left open"
        );
        let interrupted = store.recordings_in_state("sealed").await.unwrap();
        assert!(!interrupted.is_empty(), "the call in progress has its sealed recording (E1, E3)");
        let mut outcomes = Vec::new();
        for r in &interrupted {
            outcomes.push(store.get_call(r.call_id).await.unwrap().outcome.unwrap_or_default());
        }
        assert!(outcomes.iter().any(|o| o == "interrupted"), "{outcomes:?}");
        store.close().await;
    });
}
