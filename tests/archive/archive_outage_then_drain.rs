//! The S3 endpoint is down while 20 calls are recorded: the calls go on,
//! the spool holds the sealed recordings, and when the store is back
//! `huifang archive drain` archives and verifies all 20, each exactly once
//! (one version per key: a retry never makes a second object).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::huifang::{binary, dial_with_env};
use common::{audio, free_port_tcp, s3, sipp_uas};

const SECRET_VAR: &str = "HUIFANG_TEST_S3_SECRET";
const CALLS: usize = 20;

#[test]
fn calls_go_on_while_s3_is_down_and_drain_catches_up() {
    let rgw = s3::rgw();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(rgw.new_lock_bucket("hf-outage"));
    let dead = format!("http://127.0.0.1:{}", free_port_tcp());
    let section = |endpoint: &str| {
        format!(
            "[archive]\nbackend = \"s3\"\nretry_min_secs = 1\nretry_max_secs = 2\n\n[archive.s3]\nendpoint = \"{endpoint}\"\n\
             bucket = \"{bucket}\"\naccess_key_id = \"{}\"\nsecret_access_key_env = \"{SECRET_VAR}\"\n",
            rgw.access_key
        )
    };
    let agent = sipp_uas(
        "client-answer-stream.xml",
        Some(&audio::fixture(audio::AGENT_ULAW_WAV)),
        &["-m", &CALLS.to_string(), "-timeout", "120s"],
    );
    let client = sipp_uas(
        "client-answer-stream.xml",
        Some(&audio::fixture(audio::CLIENT_ULAW_WAV)),
        &["-m", &CALLS.to_string(), "-timeout", "120s"],
    );
    let env = [(SECRET_VAR, rgw.secret_key.as_str())];
    let mut ids = Vec::new();
    for n in 0..CALLS {
        // Each dial is its own process with its own spool and database, as
        // an operator would run them; S3 is unreachable for all of them.
        let d = dial_with_env(
            "",
            &section(&dead),
            &agent.uri("agent1"),
            &client.uri(&format!("c{n}")),
            &["--max-seconds", "1"],
            Duration::from_secs(60),
            &env,
        );
        assert_eq!(d.code, Some(0), "call {n} with S3 down: {}", d.explain());
        assert!(d.stderr.contains("archive unreachable"), "the outage was noticed: {}", d.explain());
        ids.push((d, n));
    }
    // S3 is back: drain each spool.
    let mut keys = Vec::new();
    for (d, n) in &ids {
        let cfg = d.dir.path().join("huifang.toml");
        let text = std::fs::read_to_string(&cfg).unwrap().replace(&dead, &rgw.endpoint);
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(binary())
            .args(["archive", "drain", "--config"])
            .arg(&cfg)
            .envs(env)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "drain of call {n}: {}", String::from_utf8_lossy(&out.stderr));
        let call_id = d.report["call_id"].as_str().unwrap().to_string();
        keys.push(call_id);
    }
    // Every recording is in the bucket exactly once.
    let listed = rt.block_on(async {
        let c = rgw.client();
        let out = c.list_object_versions().bucket(&bucket).send().await.expect("list versions");
        out.versions().iter().filter_map(|v| v.key().map(str::to_string)).collect::<Vec<_>>()
    });
    for id in &keys {
        let wavs = listed.iter().filter(|k| k.ends_with(&format!("{id}.wav"))).count();
        let manifests = listed.iter().filter(|k| k.ends_with(&format!("{id}.json"))).count();
        assert_eq!((wavs, manifests), (1, 1), "call {id}: {wavs} WAV and {manifests} manifest versions");
    }
    assert_eq!(listed.len(), 2 * CALLS, "{listed:?}");
}
