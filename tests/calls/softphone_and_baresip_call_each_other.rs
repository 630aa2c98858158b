//! huifang's softphone and a real one (baresip) call each other, both
//! ways, directly (no registrar): the call is answered, each side plays its
//! phrase, and each hears the other's — the softphone in its own recording,
//! baresip in its sndfile dump.

use crate::common;

use std::time::Duration;

use common::softphone::{Finished, Phone};
use common::{Baresip, BaresipOpts, audio, free_port_udp_tcp};

fn baresip(dir: &std::path::Path) -> Baresip {
    let wav = dir.join("agent-40s.wav");
    audio::write_padded(&audio::fixture(audio::AGENT_WAV), &wav, 40.0);
    // regint 0: baresip does not register; it is called at its own address.
    Baresip::spawn(BaresipOpts::new("agent1", "unused", "127.0.0.1:9").regint(0).audio_source(&wav))
}

fn check(phone: &Finished, b: &Baresip, direction: &str) {
    assert_eq!(phone.code, Some(0), "{phone:#?}\nbaresip:\n{}", b.log());
    let r = phone.call();
    assert_eq!(r["direction"], direction, "{r}");
    assert_eq!(r["answered"], true, "{r}");
    assert_eq!(r["ended"], "local-hangup", "{r}");
    assert!(r["packets_received"].as_u64().unwrap() > 300, "{r}");
    let (_, _, heard) = audio::read_wav(phone.recording());
    let score = audio::speech_score(&heard, &audio::fixture(audio::AGENT_WAV));
    assert!(score >= audio::SAME_MIN, "the softphone heard baresip's phrase poorly: {score:.2}");
    std::thread::sleep(Duration::from_millis(500));
    let dump = b.heard_wav().unwrap_or_else(|| panic!("baresip wrote no dump:\n{}", b.log()));
    let score = audio::speech_score(&audio::read_wav(dump).2, &audio::fixture(audio::CLIENT_WAV));
    assert!(score >= audio::SAME_MIN, "baresip heard the softphone's phrase poorly: {score:.2}");
}

#[test]
fn softphone_dials_baresip() {
    let tmp = tempfile::tempdir().unwrap();
    let b = baresip(tmp.path());
    let client_wav = audio::fixture(audio::CLIENT_WAV);
    let phone = Phone::spawn(
        &[
            "--dial",
            &format!("sip:agent1@127.0.0.1:{}", b.sip_port),
            "--user",
            "phone1",
            "--play",
            client_wav.to_str().unwrap(),
            "--hangup-after",
            "8",
            "--calls",
            "1",
            "--seconds",
            "30",
        ],
        &[],
    );
    let done = phone.wait(Duration::from_secs(40));
    check(&done, &b, "outgoing");
}

#[test]
fn baresip_dials_the_softphone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = baresip(tmp.path());
    let port = free_port_udp_tcp();
    let client_wav = audio::fixture(audio::CLIENT_WAV);
    let phone = Phone::spawn(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--user",
            "phone1",
            "--answer-after",
            "0.5",
            "--play",
            client_wav.to_str().unwrap(),
            "--hangup-after",
            "8",
            "--calls",
            "1",
            "--seconds",
            "30",
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(300));
    b.dial(&format!("sip:phone1@127.0.0.1:{port}")).expect("baresip dial");
    assert!(b.wait_call_established(0, Duration::from_secs(10)), "not established:\n{}", b.log());
    let done = phone.wait(Duration::from_secs(40));
    check(&done, &b, "incoming");
}
