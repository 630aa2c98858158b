//! Two of huifang's softphones registered to Kamailio call each other
//! through it: the caller answers Kamailio's 407 proxy challenge, both
//! sides follow the Record-Route (ACK and BYE go through the proxy), and
//! each hears the other's phrase.

use crate::common;

use std::time::Duration;

use common::softphone::Phone;
use common::{audio, kamailio};

#[test]
fn phone1_calls_phone2_through_the_switch() {
    let k = kamailio();
    let registrar = format!("sip:{}", k.hostport());
    let (agent_wav, client_wav) = (audio::fixture(audio::AGENT_WAV), audio::fixture(audio::CLIENT_WAV));
    let callee = Phone::spawn(
        &[
            "--registrar",
            &registrar,
            "--user",
            "phone2",
            "--password-env",
            "PHONE_PW",
            "--answer-after",
            "0.5",
            "--play",
            agent_wav.to_str().unwrap(),
            "--calls",
            "1",
            "--seconds",
            "30",
        ],
        &[("PHONE_PW", "phone2-test-secret")],
    );
    let b = k.wait_bindings("phone2", Duration::from_secs(5), |b| !b.is_empty());
    assert!(!b.is_empty(), "phone2 did not register:\n{}", k.log());
    let caller = Phone::spawn(
        &[
            "--registrar",
            &registrar,
            "--user",
            "phone1",
            "--password-env",
            "PHONE_PW",
            "--dial",
            &format!("sip:phone2@{}", k.hostport()),
            "--play",
            client_wav.to_str().unwrap(),
            "--hangup-after",
            "8",
            "--calls",
            "1",
            "--seconds",
            "30",
        ],
        &[("PHONE_PW", "phone1-test-secret")],
    );
    let caller = caller.wait(Duration::from_secs(40));
    let callee = callee.wait(Duration::from_secs(15));
    assert_eq!(caller.code, Some(0), "caller: {caller:#?}\ncallee: {callee:#?}");
    assert_eq!(callee.code, Some(0), "callee: {callee:#?}");
    // Kamailio relays an INVITE from its domain only with proxy credentials
    // (tests/peers/README.md): that the call went through proves the 407
    // was answered.
    let (out, inc) = (caller.call(), callee.call());
    assert_eq!((out["direction"].as_str(), inc["direction"].as_str()), (Some("outgoing"), Some("incoming")));
    assert_eq!(out["ended"], "local-hangup", "{out}");
    assert_eq!(inc["ended"], "remote-hangup", "the BYE reached the callee through the proxy: {inc}");
    for (name, done, heard) in [("caller", &caller, &agent_wav), ("callee", &callee, &client_wav)] {
        let (_, _, samples) = audio::read_wav(done.recording());
        let score = audio::speech_score(&samples, heard);
        assert!(score >= audio::SAME_MIN, "{name} heard the other phrase poorly: {score:.2}");
    }
}
