//! E1 through the binary (issue 16 §4): with the spool below
//! `spool.min_free_mb`, `huifang dial` rings nobody — neither the agent's
//! phone nor the client's — and the call ends `recording-failed`, traced
//! and audited like any other; a disk that fills mid-call (the test hook
//! `HUIFANG_TEST_RECORD_FAIL_AFTER`) hangs both phones up at once and the
//! call ends `recording-failed` with what was written sealed; a spool that
//! cannot be written under a running `serve` never lets the client ring;
//! and on a
//! good call the recording file exists, synced, before the client's INVITE
//! leaves.

use crate::common;

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use common::huifang::Huifang;
use common::softphone::Phone;
use common::{audio, free_port_udp_tcp, huifang};

/// The agent's and the client's phones, answering at once and talking for
/// `talk` seconds, with the URIs that reach them.
fn phones(talk: &str) -> (Phone, Phone, String, String) {
    let (agent_port, client_port) = (free_port_udp_tcp(), free_port_udp_tcp());
    let wav = audio::fixture(audio::AGENT_WAV);
    let agent = Phone::answering(agent_port, "agent1", &wav, "0.2", talk);
    let client = Phone::answering(client_port, "client1", &wav, "0.2", talk);
    (
        agent,
        client,
        format!("sip:agent1@127.0.0.1:{agent_port}"),
        format!("sip:13800000000@127.0.0.1:{client_port}"),
    )
}

#[test]
fn a_full_spool_rings_nobody_and_the_call_ends_recording_failed() {
    let (agent, client, agent_uri, client_uri) = phones("5");
    // more free space than any disk has
    let d = huifang::dial(
        "",
        "[spool]\nmin_free_mb = 1000000000\n",
        &agent_uri,
        &client_uri,
        &["--max-seconds", "5"],
        Duration::from_secs(30),
    );
    assert_ne!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.outcome(), "recording-failed", "{}", d.explain());
    assert!(d.report["reason"].as_str().unwrap_or_default().contains("spool"), "{}", d.explain());
    assert!(d.report["recording"].is_null(), "{}", d.explain());
    // neither phone ever rang
    let (agent, client) = (agent.terminate(Duration::from_secs(5)), client.terminate(Duration::from_secs(5)));
    assert!(agent.reports.is_empty() && client.reports.is_empty(), "agent: {agent:#?}\nclient: {client:#?}");
}

#[test]
fn a_disk_that_fills_mid_call_hangs_up_both_phones_at_once() {
    let (agent, client, agent_uri, client_uri) = phones("10");
    // the disk is full after the header and 2 s of stereo audio
    let budget = (44 + 2 * 8000 * 4).to_string();
    let d = huifang::dial_with_env(
        "",
        "",
        &agent_uri,
        &client_uri,
        &["--max-seconds", "20"],
        Duration::from_secs(40),
        &[("HUIFANG_TEST_RECORD_FAIL_AFTER", &budget)],
    );
    assert_ne!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.outcome(), "recording-failed", "{}", d.explain());
    // what reached the disk is sealed: evidence, cut where the disk filled
    let rec = &d.report["recording"];
    let ms = rec["duration_ms"].as_u64().unwrap_or_default();
    assert!((1_500..=2_000).contains(&ms), "sealed {ms} ms\n{}", d.explain());
    // both phones were hung up by huifang, long before their 10 s
    let (agent, client) = (agent.wait(Duration::from_secs(10)), client.wait(Duration::from_secs(10)));
    for (who, p) in [("agent", &agent), ("client", &client)] {
        let call = p.call();
        assert_eq!(call["answered"], true, "{who}: {p:#?}");
        assert_eq!(call["ended"], "remote-hangup", "{who}: {p:#?}");
        let lasted = call["duration_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(lasted < 6_000, "{who} talked {lasted} ms after the disk filled: {p:#?}");
    }
}

#[test]
fn the_recording_exists_before_the_client_is_invited() {
    let (agent, client, agent_uri, client_uri) = phones("3");
    let d = huifang::dial("", "", &agent_uri, &client_uri, &["--max-seconds", "10"], Duration::from_secs(30));
    assert_eq!(d.code, Some(0), "{}", d.explain());
    let (_agent, _client) = (agent.wait(Duration::from_secs(10)), client.wait(Duration::from_secs(10)));
    let path = d.recording();
    // the file's birth (kept by the move into sealed/) and the trace times
    let born: DateTime<Utc> =
        std::fs::metadata(&path).and_then(|m| m.created()).unwrap_or(SystemTime::UNIX_EPOCH).into();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (call, rec) = rt.block_on(async {
        let db = format!("sqlite://{}", d.dir.path().join("var/huifang.db").display());
        let store = ::huifang::store::Store::open(&db).await.unwrap();
        let id: uuid::Uuid = d.report["call_id"].as_str().unwrap().parse().unwrap();
        let call = store.get_call(id).await.unwrap();
        let rec = store.recording_for_call(id).await.unwrap().expect("a recordings row");
        (call, rec)
    });
    let invited = call.client_invited_at.expect("the client was invited");
    let agent_invited = call.agent_invited_at.expect("the agent was invited");
    // the recordings row is written once the file and its directory are
    // synced; both precede the client's INVITE, and follow the agent's
    assert!(
        rec.started_at <= invited,
        "recording row {} after the client's INVITE {invited}",
        rec.started_at
    );
    assert!(born > DateTime::<Utc>::UNIX_EPOCH, "no birth time on this filesystem");
    assert!(born <= invited, "file born {born}, client invited {invited}");
    assert!(agent_invited <= born, "the file was made before the agent was even invited");
}

#[test]
fn an_unwritable_spool_never_lets_the_client_ring() {
    let h = Huifang::start("", "[dialer]\nenabled = false\n");
    assert!(h.wait_log("control socket up", Duration::from_secs(5)), "{}", h.log());
    // the spool's recording directory is replaced by a file under serve's
    // feet (permissions would not stop root): no recording can be created
    let recording = h.dir().join("var/spool/recording");
    std::fs::rename(&recording, h.dir().join("var/spool/recording.gone")).unwrap();
    std::fs::write(&recording, b"not a directory").unwrap();
    let (agent, client, agent_uri, client_uri) = phones("5");
    let d = huifang::dial_on(
        &h.dir().join("huifang.toml"),
        &agent_uri,
        &client_uri,
        &["--max-seconds", "10"],
        Duration::from_secs(30),
    );
    assert!(d.stderr.contains("placed by the running serve"), "{}", d.explain());
    assert_eq!(d.outcome(), "recording-failed", "{}\nserve:\n{}", d.explain(), h.log());
    assert!(d.report["recording"].is_null(), "{}", d.explain());
    // the agent answered and was let go; the client was never called
    let (agent, client) = (agent.terminate(Duration::from_secs(5)), client.terminate(Duration::from_secs(5)));
    assert!(client.reports.is_empty(), "the client rang: {client:#?}");
    assert!(agent.reports.iter().all(|r| r["duration_ms"].as_u64() < Some(3_000)), "{agent:#?}");
}
