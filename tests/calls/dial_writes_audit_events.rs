//! Invariant E6: `huifang dial` leaves its call in the audit log —
//! `call.placed` (before the first INVITE), `call.answered`,
//! `recording.sealed` (with the recording's SHA-256) and `call.ended` (with
//! the outcome), in that order, on an unbroken hash chain, and never the
//! client's phone number.

use crate::common;

use std::time::Duration;

use common::huifang::dial;
use common::{audio, sipp_uas};

const PHONE: &str = "13800000077";

#[test]
fn dial_audits_placed_answered_sealed_ended() {
    let agent = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::AGENT_ULAW_WAV)), &[]);
    let client = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::CLIENT_ULAW_WAV)), &[]);
    let d = dial(
        "",
        "",
        &agent.uri("agent1"),
        &client.uri(PHONE),
        &["--max-seconds", "2", "--client-id", "C9", "--task-id", "T-1", "--kind", "new_account"],
        Duration::from_secs(60),
    );
    assert_eq!(d.code, Some(0), "{}", d.explain());
    let call = d.report["call_id"].as_str().unwrap().to_string();
    let recording = d.report["recording"]["id"].as_str().expect("a recording id in the report").to_string();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = rt.block_on(async {
        let db = format!("sqlite://{}", d.dir.path().join("var/huifang.db").display());
        let store = huifang::store::Store::open(&db).await.unwrap();
        let rows = store.audit_rows(0).await.unwrap();
        store.close().await;
        rows
    });
    huifang::audit::verify_chain(&rows).unwrap();
    let mine: Vec<_> = rows.iter().filter(|r| r.subject == call || r.subject == recording).collect();
    let actions: Vec<&str> = mine.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["call.placed", "call.answered", "recording.sealed", "call.ended"], "{mine:#?}");
    assert!(mine.iter().all(|r| r.actor == "huifang"));

    let placed = &mine[0].detail;
    assert_eq!((placed["client_id"].as_str(), placed["task_id"].as_str()), (Some("C9"), Some("T-1")));
    assert_eq!(placed["kind"], "new_account");
    let sealed = &mine[2];
    assert_eq!(sealed.subject, recording);
    assert_eq!(sealed.detail["call_id"], call.as_str());
    assert_eq!(sealed.detail["sha256"], d.report["recording"]["sha256"]);
    assert_eq!(sealed.detail["state"], "sealed");
    assert_eq!(mine[3].detail["outcome"], "completed");
    for r in &rows {
        assert!(!r.detail.to_string().contains(PHONE), "a phone number in the audit log: {r:?}");
    }
    let _ = agent.kill();
    let _ = client.kill();
}
