//! Every way a callback call can end maps to exactly one outcome (E2), and
//! the legs are taken down properly: busy, reject, no answer (CANCEL),
//! agent unavailable, client hangs up first, agent hangs up first, the agent
//! hangs up while the client rings (CANCEL), and early media.
//! SIPp plays the phones (scenarios in tests/peers/).

use crate::common;

use std::time::Duration;

use common::{audio, huifang, sipp_uas};

const SHORT_RING: &str = "[call]\nclient_ring_secs = 3\nagent_ring_secs = 5\n";

fn agent_answering() -> common::SippProcess {
    sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::AGENT_ULAW_WAV)), &[])
}

fn dial(agent: &str, client: &str, max: &str) -> huifang::Dial {
    huifang::dial("", SHORT_RING, agent, client, &["--max-seconds", max], Duration::from_secs(60))
}

#[test]
fn client_busy() {
    let agent = agent_answering();
    let client = sipp_uas("client-busy.xml", None, &[]);
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "20");
    assert_eq!(d.outcome(), "busy", "{}", d.explain());
    assert_eq!(d.report["client"]["status"], 486);
    assert_eq!(d.code, Some(1));
    assert!(d.report["recording"].is_object(), "the agent side was recorded while the client was called");
    assert!(agent.wait().success, "the agent got its BYE");
    assert!(client.wait().success, "the 486 was ACKed");
}

#[test]
fn client_rejects() {
    let agent = agent_answering();
    let client = sipp_uas("client-reject.xml", None, &[]);
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "20");
    assert_eq!(d.outcome(), "rejected", "{}", d.explain());
    assert_eq!(d.report["client"]["status"], 603);
    assert!(agent.wait().success);
    assert!(client.wait().success);
}

#[test]
fn client_does_not_answer() {
    let agent = agent_answering();
    let client = sipp_uas("client-no-answer.xml", None, &[]);
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "20");
    assert_eq!(d.outcome(), "no-answer", "{}", d.explain());
    assert_eq!(d.report["client"]["status"], 487, "CANCELled after client_ring_secs");
    assert!(agent.wait().success);
    assert!(client.wait().success, "the client saw CANCEL and its 487 was ACKed");
}

#[test]
fn agent_unavailable() {
    let agent = sipp_uas("client-busy.xml", None, &[]);
    // The client is never called: nothing listens there.
    let d = dial(&agent.uri("agent1"), "sip:c@127.0.0.1:9", "20");
    assert_eq!(d.outcome(), "agent-unavailable", "{}", d.explain());
    assert_eq!(d.report["agent"]["status"], 486);
    assert!(d.report["client"]["status"].is_null());
    assert!(d.report["recording"].is_null(), "no recording without an answered agent");
    assert!(agent.wait().success);
}

#[test]
fn client_hangs_up_first() {
    let agent = agent_answering();
    let client = sipp_uas(
        "client-answer-hangup.xml",
        Some(&audio::fixture(audio::CLIENT_ULAW_WAV)),
        &["-set", "talk_ms", "3000"],
    );
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "30");
    assert_eq!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.outcome(), "completed");
    assert_eq!(d.report["reason"], "client hung up");
    let ms = d.report["recording"]["duration_ms"].as_u64().unwrap();
    assert!((2_500..=4_500).contains(&ms), "recorded {ms} ms");
    assert!(agent.wait().success, "the agent got a BYE");
    assert!(client.wait().success);
}

#[test]
fn agent_hangs_up_first() {
    let agent = sipp_uas(
        "client-answer-hangup.xml",
        Some(&audio::fixture(audio::AGENT_ULAW_WAV)),
        &["-set", "talk_ms", "4000"],
    );
    let client = sipp_uas("client-answer-stream.xml", Some(&audio::fixture(audio::CLIENT_ULAW_WAV)), &[]);
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "30");
    assert_eq!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.report["reason"], "agent hung up");
    assert!(agent.wait().success);
    assert!(client.wait().success, "the client got a BYE");
}

#[test]
fn agent_hangs_up_while_the_client_rings() {
    let agent = sipp_uas(
        "client-answer-hangup.xml",
        Some(&audio::fixture(audio::AGENT_ULAW_WAV)),
        &["-set", "talk_ms", "1500"],
    );
    let client = sipp_uas("client-no-answer.xml", None, &[]);
    let d = huifang::dial(
        "",
        "",
        &agent.uri("agent1"),
        &client.uri("c"),
        &["--max-seconds", "30"],
        Duration::from_secs(60),
    );
    assert_eq!(d.outcome(), "cancelled", "{}", d.explain());
    assert_eq!(d.report["client"]["status"], 487);
    assert!(client.wait().success, "the ringing client got a CANCEL");
    assert!(agent.wait().success);
}

#[test]
fn early_media_then_answer() {
    let agent = agent_answering();
    let client = sipp_uas(
        "client-early-media.xml",
        Some(&audio::fixture(audio::CLIENT_ULAW_WAV)),
        &["-set", "ring_ms", "2000"],
    );
    let d = dial(&agent.uri("agent1"), &client.uri("c"), "6");
    assert_eq!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.report["client"]["status"], 200);
    // The early media (ringback/announcement) is part of the recording.
    let client_packets = d.report["recording"]["client"]["packets"].as_u64().unwrap();
    assert!(client_packets > 6 * 50 + 50, "{client_packets} client packets: early media missing");
    assert!(agent.wait().success);
    assert!(client.wait().success);
}
