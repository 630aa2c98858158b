//! Against a real S3 that enforces Object Lock (Ceph RGW, one node): after
//! `huifang dial` and `huifang archive drain` the recording and its manifest
//! are locked in COMPLIANCE mode until call start + the kind's retention
//! (≥ 15 years), carry huifang's SHA-256 in their metadata, cannot be
//! deleted, and `huifang verify --deep` finds nothing (E3, E5). A bucket
//! without Object Lock makes huifang refuse to start.

use crate::common;

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use common::huifang::{binary, dial_with_env, write_config};
use common::{audio, s3, sipp_uas};

const SECRET_VAR: &str = "HUIFANG_TEST_S3_SECRET";

fn archive_section(rgw: &s3::Rgw, bucket: &str) -> String {
    format!(
        "[archive]\nbackend = \"s3\"\n\n[archive.s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\n\
         access_key_id = \"{}\"\nsecret_access_key_env = \"{SECRET_VAR}\"\n\n[retention.years]\nnew_account = 20\n",
        rgw.endpoint, rgw.access_key
    )
}

#[test]
fn dial_then_drain_locks_the_recording() {
    let rgw = s3::rgw();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(rgw.new_lock_bucket("hf-worm"));
    let agent = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::AGENT_ULAW_WAV)), &[]);
    let client = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::CLIENT_ULAW_WAV)), &[]);
    let env = [(SECRET_VAR, rgw.secret_key.as_str())];
    let d = dial_with_env(
        "",
        &archive_section(&rgw, &bucket),
        &agent.uri("agent1"),
        &client.uri("c"),
        &["--max-seconds", "3", "--kind", "new_account", "--client-id", "C9"],
        Duration::from_secs(60),
        &env,
    );
    assert_eq!(d.code, Some(0), "{}", d.explain());
    let config = d.dir.path().join("huifang.toml");
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&config)
            .envs(env)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let drain = run(&["archive", "drain"]);
    assert!(drain.status.success(), "drain: {}", String::from_utf8_lossy(&drain.stderr));

    let call_id = d.report["call_id"].as_str().unwrap();
    let started: DateTime<Utc> = d.report["started_at"].as_str().unwrap().parse().unwrap();
    let key =
        format!("recordings/{:04}/{:02}/{:02}/{call_id}.wav", started.year(), started.month(), started.day());
    let head = rt.block_on(rgw.head(&bucket, &key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(head.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));
    let until = head.object_lock_retain_until_date().expect("retain-until").secs();
    let twenty_years = started.with_year(started.year() + 20).unwrap().timestamp();
    assert!(until >= twenty_years, "retain-until {until} is before call start + 20 years ({twenty_years})");
    let meta = head.metadata().expect("metadata");
    assert_eq!(meta.get("sha256").map(String::as_str), d.report["recording"]["sha256"].as_str());
    assert_eq!(meta.get("call-id").map(String::as_str), Some(call_id));
    let manifest_key = key.replace(".wav", ".json");
    let manifest = rt.block_on(rgw.head(&bucket, &manifest_key)).expect("the manifest");
    assert_eq!(manifest.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));

    // E5: the locked version cannot be deleted.
    let version = head.version_id().expect("a version id").to_string();
    let refused = rt.block_on(rgw.try_delete_version(&bucket, &key, &version));
    assert!(refused.as_ref().is_err_and(|e| e.contains("403")), "delete of a locked version: {refused:?}");

    let verify = run(&["verify", "--deep"]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn bucket_without_object_lock_refuses_to_start() {
    let rgw = s3::rgw();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(rgw.new_plain_bucket("hf-plain"));
    let (_dir, config) = write_config("", &archive_section(&rgw, &bucket));
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env(SECRET_VAR, &rgw.secret_key)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started on a bucket without Object Lock");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("archive init"), "the refusal says how to fix it: {err}");
}
