//! `huifang dial` between two of huifang's own softphones: each phone plays
//! its phrase; the recording has the agent's speech on the left channel
//! and the client's on the right, and each phone heard the other's phrase
//! (its own recording, made by the softphone).

use crate::common;

use std::time::Duration;

use common::softphone::Phone;
use common::{audio, free_port_udp_tcp, huifang};

#[test]
fn each_side_on_its_channel_and_each_phone_hears_the_other() {
    let (agent_port, client_port) = (free_port_udp_tcp(), free_port_udp_tcp());
    let agent_wav = audio::fixture(audio::AGENT_WAV);
    let client_wav = audio::fixture(audio::CLIENT_WAV);
    let agent = Phone::spawn(
        &[
            "--listen",
            &format!("127.0.0.1:{agent_port}"),
            "--user",
            "agent1",
            "--play",
            agent_wav.to_str().unwrap(),
            "--play-after",
            "1",
            "--calls",
            "1",
            "--seconds",
            "40",
        ],
        &[],
    );
    let client = Phone::answering(client_port, "client1", &client_wav, "0.5", "8");
    let d = huifang::dial(
        "",
        "",
        &format!("sip:agent1@127.0.0.1:{agent_port}"),
        &format!("sip:13800000000@127.0.0.1:{client_port}"),
        &["--max-seconds", "20", "--client-id", "C0001", "--task-id", "T-1"],
        Duration::from_secs(60),
    );
    let agent = agent.wait(Duration::from_secs(15));
    let client = client.wait(Duration::from_secs(15));
    assert_eq!(d.code, Some(0), "{}\nagent: {agent:#?}\nclient: {client:#?}", d.explain());
    assert_eq!(d.outcome(), "completed");
    assert_eq!(d.report["reason"], "client hung up", "{}", d.explain());

    // The recording: agent left, client right.
    let scores = audio::stereo_scores(&d.recording(), &agent_wav, &client_wav);
    assert!(scores.agent_left_client_right(), "{scores:?}");

    // The phones: both answered, exchanged ~8 s of packets, none lost, and
    // each heard the other's phrase.
    for (name, phone, heard, own) in
        [("agent", &agent, &client_wav, &agent_wav), ("client", &client, &agent_wav, &client_wav)]
    {
        assert_eq!(phone.code, Some(0), "{name}: {phone:#?}");
        let r = phone.call();
        assert_eq!(r["direction"], "incoming", "{name}: {r}");
        assert_eq!(r["answered"], true, "{name}: {r}");
        assert_eq!(r["codec"], "PCMU", "{name}: {r}");
        assert!(r["packets_sent"].as_u64().unwrap() > 350, "{name}: {r}");
        assert!(r["packets_received"].as_u64().unwrap() > 350, "{name}: {r}");
        assert_eq!(r["packets_lost"], 0, "{name}: {r}");
        let (rate, channels, samples) = audio::read_wav(phone.recording());
        assert_eq!((rate, channels), (8000, 1));
        let same = audio::speech_score(&samples, heard);
        let other = audio::speech_score(&samples, own);
        assert!(
            same >= audio::SAME_MIN && other <= audio::OTHER_MAX,
            "{name} heard {same:.2} / own {other:.2}"
        );
    }
    assert_eq!(agent.call()["ended"], "remote-hangup");
    assert_eq!(client.call()["ended"], "local-hangup");
}
