//! `huifang demo` from a clean temporary directory, as a newcomer runs it:
//! it exits 0 and its report says the tasks are done, each recording is
//! sealed, archived and verified, with the agent's speech on the left
//! channel and the client's on the right. The test checks all of that
//! again on its own — the files, their SHA-256, the channels (with the
//! test suite's audio checks), the tasks, that `serve`'s dialer placed the
//! calls (`huifang status`), and `verify --deep` — and that no phone number
//! or client name reached the log.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{audio, huifang::binary, repo_root};
use sha2::{Digest, Sha256};

fn huifang(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(binary()).args(args).arg("--config").arg(config).env_remove("RUST_LOG").output().unwrap()
}

#[test]
fn the_demo_does_the_whole_job() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(["demo", "--json", "--verbose", "--dir"])
        .arg(&dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning huifang demo");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.is_some_and(|s| s.success()), "demo: {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(90), "the demo took {:?}", started.elapsed());
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    let explain = || format!("report:\n{stdout}\nlog:\n{stderr}");

    assert_eq!(r["ok"], true, "{}", explain());
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{}", explain());
    assert_eq!(r["agent"]["registered"], true);
    assert_eq!(r["imported"]["clients"], 8);
    assert_eq!(r["archive"]["remaining"], 0);
    assert!(r["verify"].as_array().unwrap().is_empty(), "{}", explain());
    let config = PathBuf::from(r["config"].as_str().unwrap());
    assert!(config.starts_with(&dir));

    let agent_wav = repo_root().join("config/demo/audio/agent.wav");
    let client_wav = repo_root().join("config/demo/audio/client.wav");
    let tasks = r["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "{}", explain());
    let mut kinds = Vec::new();
    for t in tasks {
        kinds.push(t["kind"].as_str().unwrap().to_string());
        assert_eq!(t["state"], "done", "{t}");
        assert!(t["record_id"].is_string(), "{t}");
        let call = &t["call"];
        assert_eq!(call["outcome"], "completed", "{t}");
        let rec = &call["recording"];
        assert_eq!(rec["state"], "sealed", "{t}");
        assert_eq!(rec["speech_ok"], true, "{t}");
        // The archived copy: where the report says, hashed as it says.
        let archived = PathBuf::from(rec["archive_path"].as_str().expect("an archived copy"));
        assert!(archived.starts_with(&dir), "{}", archived.display());
        let bytes = std::fs::read(&archived).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), rec["sha256"].as_str().unwrap(), "{t}");
        assert!(rec["archive_key"].as_str().unwrap().starts_with("recordings/"), "{t}");
        // The speech on the right channels, by the test suite's own measure.
        let scores = audio::stereo_scores(&archived, &agent_wav, &client_wav);
        assert!(scores.agent_left_client_right(), "{t}: {scores:?}");
        // The recording is listed for its client, with its archive key.
        let listed =
            huifang(&["recordings", "--json", "--client", t["client_id"].as_str().unwrap()], &config);
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["recording_id"] == rec["id"] && c["task_id"] == t["task_id"]),
            "{listed}"
        );
    }
    // The queue's first three, the same every time (fixed sampling seed).
    assert_eq!(kinds, ["complaint", "new_account", "departed_staff"], "{}", explain());

    // The dialer placed the calls (not the demo): one dialer instance, three
    // calls, stopped cleanly; the agent logged out after the shift.
    let st = huifang(&["status", "--format", "json"], &config);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let dialers = st["dialers"].as_array().unwrap();
    assert_eq!(dialers.len(), 1, "{st}");
    assert_eq!(dialers[0]["calls_placed"], 3, "{st}");
    assert_eq!(dialers[0]["state"], "stopped", "{st}");
    let agents = st["agents"].as_array().unwrap();
    assert!(agents.iter().any(|a| a["staff_id"] == "A01" && a["state"] == "logged_out"), "{st}");
    assert!(st["calls"].as_array().unwrap().is_empty(), "{st}");

    // The database agrees, and verify --deep finds nothing.
    let done = huifang(&["tasks", "--status", "done", "--format", "json"], &config);
    let done: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done.as_array().unwrap().len(), 3, "{done}");
    let v = huifang(&["verify", "--deep"], &config);
    assert!(v.status.success(), "verify:\n{}", String::from_utf8_lossy(&v.stdout));
    // The commands the report suggests work.
    for c in r["commands"].as_array().unwrap() {
        let c = c
            .as_str()
            .unwrap()
            .replace("--out call.wav", &format!("--out {}", tmp.path().join("c.wav").display()));
        let args: Vec<&str> = c.split_whitespace().skip(1).collect();
        let out = Command::new(binary()).args(&args).env_remove("RUST_LOG").output().unwrap();
        assert!(out.status.success(), "{c}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // No personal data in the log (at info level: `--verbose`) — no client's
    // phone or name, no staff name; the password stays in a private file.
    assert!(stderr.contains("INFO"), "the demo ran with --verbose:\n{stderr}");
    let clients = std::fs::read_to_string(repo_root().join("config/demo/clients.csv")).unwrap();
    let mut secrets: Vec<String> = clients
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').skip(1).take(2).map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert_eq!(secrets.len(), 16, "names and phones of the 8 sample clients");
    secrets.push("李娜".into());
    for secret in &secrets {
        assert!(!stderr.contains(secret.as_str()), "{secret} in the log:\n{stderr}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o077, 0);
}
