//! A recorded callback call end to end (SIPp plays both phones, each
//! streaming its own phrase): the agent's speech lands on the left channel
//! and the client's on the right, each clearly and not the other's; the
//! report, the file and the trace agree (invariants E1–E3).

use crate::common;

use std::time::Duration;

use common::{audio, huifang, sipp_uas};
use sha2::{Digest, Sha256};

#[test]
fn each_speaker_on_its_own_channel() {
    let agent = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::AGENT_ULAW_WAV)), &[]);
    let client = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::CLIENT_ULAW_WAV)), &[]);
    let d = huifang::dial(
        "",
        "",
        &agent.uri("agent1"),
        &client.uri("13800000000"),
        &["--max-seconds", "9", "--client-id", "C0001", "--task-id", "T-1"],
        Duration::from_secs(60),
    );
    assert_eq!(d.code, Some(0), "{}", d.explain());
    let r = &d.report;
    assert_eq!(d.outcome(), "completed", "{}", d.explain());
    assert_eq!(r["agent"]["status"], 200);
    assert_eq!(r["client"]["status"], 200);
    assert!(r["answered_at"].as_str().unwrap().ends_with('Z'));

    // The file: sealed, read-only, hashed as reported, ~9 s of stereo.
    let path = d.recording();
    assert!(path.parent().unwrap().ends_with("sealed"), "{}", path.display());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), r["recording"]["sha256"].as_str().unwrap());
    assert!(
        std::fs::metadata(&path).unwrap().permissions().readonly(),
        "invariant E3: sealed file is read-only"
    );
    let duration = r["recording"]["duration_ms"].as_u64().unwrap();
    assert!((8_500..=10_000).contains(&duration), "duration {duration} ms");
    for side in ["agent", "client"] {
        let s = &r["recording"][side];
        assert!(s["packets"].as_u64().unwrap() > 350, "{side}: {s}");
        assert_eq!(s["lost"], 0, "{side}: {s}");
    }
    // The file name carries the call id, never personal data.
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(name, format!("{}.wav", r["call_id"].as_str().unwrap()));
    assert!(!d.stderr.contains("13800000000"), "a phone number reached the log");

    // Each speaker on its own channel.
    let scores =
        audio::stereo_scores(&path, &audio::fixture(audio::AGENT_WAV), &audio::fixture(audio::CLIENT_WAV));
    assert!(scores.agent_left_client_right(), "{scores:?}");

    // The trace agrees (E2: one outcome; E3: the hash).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = format!("sqlite://{}", d.dir.path().join("var/huifang.db").display());
        let store = ::huifang::store::Store::open(&db).await.unwrap();
        let id: uuid::Uuid = r["call_id"].as_str().unwrap().parse().unwrap();
        let call = store.get_call(id).await.unwrap();
        assert_eq!(call.outcome.as_deref(), Some("completed"));
        assert_eq!(call.client_id.as_deref(), Some("C0001"));
        assert_eq!(call.task_id.as_deref(), Some("T-1"));
        assert!(call.answered_at.is_some());
        let rec = store.recording_for_call(id).await.unwrap().expect("a recordings row");
        assert_eq!(rec.sha256.as_deref(), r["recording"]["sha256"].as_str());
        assert_eq!(rec.state, ::huifang::store::RecordingState::Sealed);
    });
    assert!(agent.wait().success, "agent SIPp");
    assert!(client.wait().success, "client SIPp");
}
