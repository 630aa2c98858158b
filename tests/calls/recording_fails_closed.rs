//! E1 through the binary (issue 16 §4): with the spool below
//! `spool.min_free_mb`, `huifang dial` rings nobody — neither the agent's
//! phone nor the client's — and the call ends `recording-failed`, traced
//! and audited like any other.

use crate::common;

use std::time::Duration;

use common::softphone::Phone;
use common::{audio, free_port_udp_tcp, huifang};

#[test]
fn a_full_spool_rings_nobody_and_the_call_ends_recording_failed() {
    let (agent_port, client_port) = (free_port_udp_tcp(), free_port_udp_tcp());
    let wav = audio::fixture(audio::AGENT_WAV);
    let agent = Phone::answering(agent_port, "agent1", &wav, "0.2", "5");
    let client = Phone::answering(client_port, "client1", &wav, "0.2", "5");
    // more free space than any disk has
    let d = huifang::dial(
        "",
        "[spool]\nmin_free_mb = 1000000000\n",
        &format!("sip:agent1@127.0.0.1:{agent_port}"),
        &format!("sip:13800000000@127.0.0.1:{client_port}"),
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
