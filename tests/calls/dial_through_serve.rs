//! `huifang dial` while `serve` runs on the same configuration (issue 15):
//! the call goes through `serve`'s endpoint — to a softphone registered to
//! its built-in registrar (SHA-256 digest, as the shipped configuration
//! offers) — is recorded in `serve`'s spool, shows in `huifang status`
//! while it lasts, and `dial` prints its usual JSON line and exit code.
//! When `serve` stops, its control socket goes with it (and `dial` runs
//! its own endpoint again, as every other `dial` test shows).

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::huifang::{Huifang, binary, dial_on};
use common::softphone::Phone;
use common::{audio, free_port_udp_tcp};

#[test]
fn dial_reaches_a_phone_registered_to_the_running_serve() {
    let mut h = Huifang::start(
        "",
        "[sip.registrar]\ndigest_algorithms = [\"SHA-256\", \"MD5\"]\n\n[[sip.users]]\nname = \"agent1\"\n\
         password = \"agent1-test-secret\"\n\n[dialer]\nenabled = false\n",
    );
    assert!(h.wait_log("control socket up", Duration::from_secs(5)), "{}", h.log());
    let config = h.dir().join("huifang.toml");
    let (agent_wav, client_wav) = (audio::fixture(audio::AGENT_WAV), audio::fixture(audio::CLIENT_WAV));
    let agent = Phone::registered(
        &h.addr.to_string(),
        "agent1",
        "agent1-test-secret",
        &["--play", agent_wav.to_str().unwrap(), "--calls", "1", "--seconds", "40"],
    );
    assert!(h.wait_log("softphone registered", Duration::from_secs(10)), "{}", h.log());
    let client_port = free_port_udp_tcp();
    let client = Phone::answering(client_port, "client1", &client_wav, "0.5", "6");
    // dial in a thread; meanwhile `status` shows the call
    let (agent_uri, client_uri) =
        (format!("sip:agent1@{}", h.addr), format!("sip:13800000000@127.0.0.1:{client_port}"));
    let cfg = config.clone();
    let dial = std::thread::spawn(move || {
        dial_on(
            &cfg,
            &agent_uri,
            &client_uri,
            &["--client-id", "C0001", "--max-seconds", "20"],
            Duration::from_secs(60),
        )
    });
    let started = Instant::now();
    let shown = loop {
        let out = Command::new(binary())
            .args(["status", "--format", "json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the call never showed in status: {v}\n{}",
            h.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let d = dial.join().unwrap();
    let (agent, client) = (agent.wait(Duration::from_secs(15)), client.wait(Duration::from_secs(15)));
    d.assert_completed(&format!("serve:\n{}\nagent: {agent:#?}\nclient: {client:#?}", h.log()));
    assert_eq!(shown["calls"][0]["id"], d.report["call_id"], "{shown}");
    assert!(d.stderr.contains("placed by the running serve"), "{}", d.explain());
    // recorded by serve, in its spool, agent left and client right
    let rec = d.recording();
    assert!(rec.starts_with(h.dir()), "{} is not in serve's spool", rec.display());
    assert!(audio::stereo_scores(&rec, &agent_wav, &client_wav).agent_left_client_right());
    assert_eq!(agent.call()["answered"], true, "{agent:#?}");
    // the socket goes when serve does
    let socket = h.dir().join("var/spool/control.sock");
    assert!(socket.exists(), "{}", socket.display());
    h.terminate(Duration::from_secs(15));
    assert!(!socket.exists(), "the control socket outlived serve");
}
