//! Real softphones through a real switch: huifang registers to Kamailio,
//! places the call through it (answering its 407 proxy challenge), rings
//! the agent's baresip, then the client's; both hear each other through
//! huifang's relay; each is recorded on its own channel; a hold/unhold
//! re-INVITE from the agent reaches the client and the recording goes on.

use crate::common;

use std::time::Duration;

use common::{Baresip, BaresipOpts, audio, huifang, kamailio};

fn switch(port: u16) -> String {
    format!(
        "[sip.switch]\nregistrar = \"sip:127.0.0.1:{port}\"\nuser = \"huifang\"\npassword = \"huifang-test-secret\"\n"
    )
}

fn phone(user: &str, phrase: &str, dir: &std::path::Path, k: &common::Kamailio) -> Baresip {
    let wav = dir.join(format!("{user}.wav"));
    audio::write_repeated(&audio::fixture(phrase), &wav, 60.0);
    let mut p = Baresip::spawn(
        BaresipOpts::new(user, &format!("{user}-test-secret"), &k.hostport()).audio_source(&wav),
    );
    assert!(p.wait_registered(Duration::from_secs(10)), "{user} did not register:\n{}", p.log());
    p
}

#[test]
fn both_hear_each_other_and_each_is_on_its_channel() {
    let k = kamailio();
    let tmp = tempfile::tempdir().unwrap();
    let agent = phone("agent1", audio::AGENT_WAV, tmp.path(), &k);
    let client = phone("client1", audio::CLIENT_WAV, tmp.path(), &k);
    let d = huifang::dial(
        "",
        &switch(k.port),
        &format!("sip:agent1@{}", k.hostport()),
        &format!("sip:client1@{}", k.hostport()),
        &["--max-seconds", "10"],
        Duration::from_secs(60),
    );
    assert_eq!(d.code, Some(0), "{}\nagent:\n{}\nclient:\n{}", d.explain(), agent.log(), client.log());
    let scores = audio::stereo_scores(
        &d.recording(),
        &audio::fixture(audio::AGENT_WAV),
        &audio::fixture(audio::CLIENT_WAV),
    );
    assert!(scores.agent_left_client_right(), "{scores:?}");
    // Both phones heard the other side through huifang.
    std::thread::sleep(Duration::from_millis(500));
    let heard = |p: &Baresip| audio::read_wav(p.heard_wav().expect("no dump of what the phone heard")).2;
    let agent_heard = audio::speech_score(&heard(&agent), &audio::fixture(audio::CLIENT_WAV));
    let client_heard = audio::speech_score(&heard(&client), &audio::fixture(audio::AGENT_WAV));
    assert!(agent_heard >= audio::SAME_MIN, "the agent heard the client poorly: {agent_heard:.2}");
    assert!(client_heard >= audio::SAME_MIN, "the client heard the agent poorly: {client_heard:.2}");
}

#[test]
fn hold_and_unhold_keep_the_recording_going() {
    let k = kamailio();
    let tmp = tempfile::tempdir().unwrap();
    let agent = phone("agent2", audio::AGENT_WAV, tmp.path(), &k);
    let mut client = phone("client2", audio::CLIENT_WAV, tmp.path(), &k);
    let agent_uri = format!("sip:agent2@{}", k.hostport());
    let client_uri = format!("sip:client2@{}", k.hostport());
    let sw = switch(k.port);
    let call = std::thread::spawn(move || {
        huifang::dial("", &sw, &agent_uri, &client_uri, &["--max-seconds", "14"], Duration::from_secs(60))
    });
    let mark = client.log_mark();
    assert!(
        client.wait_call_established(mark, Duration::from_secs(15)),
        "client never answered:\n{}",
        client.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    agent.hold().expect("hold");
    std::thread::sleep(Duration::from_secs(3));
    agent.resume().expect("resume");
    let d = call.join().unwrap();
    assert_eq!(d.code, Some(0), "{}", d.explain());
    assert_eq!(d.outcome(), "completed");
    // The client saw the hold and the resume as re-INVITEs from huifang.
    let reinvites = client.log().matches("got re-INVITE").count();
    assert!(reinvites >= 2, "client saw {reinvites} re-INVITEs:\n{}", client.log());
    // The recording runs the whole call, and the client is heard again after the resume.
    let (_, _, samples) = audio::read_wav(d.recording());
    let secs = samples.len() as f64 / 16000.0;
    assert!(secs >= 13.0, "recording holds {secs:.1} s of a 14 s call");
    // the client's phrase loops with pauses: the loudest half second of the
    // last four (a whole window of RMS would depend on where a pause falls)
    let right = audio::channel(&samples, 2, 1);
    let tail = &right[right.len() - 4 * 8000..];
    let loudest = tail.chunks(4000).map(audio::rms_dbfs).fold(f64::NEG_INFINITY, f64::max);
    assert!(loudest > -40.0, "client silent after the resume (loudest 0.5 s: {loudest:.1} dBFS)");
}
