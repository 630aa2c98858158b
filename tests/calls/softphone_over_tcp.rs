//! `huifang softphone --transport tcp` (issue 16 §6): the agent's phone
//! registers to `serve`'s built-in registrar over TCP, and the call
//! `huifang dial` places through `serve` reaches it on that connection
//! (RFC 3261 §18: the registrar's INVITE goes back over the flow the
//! REGISTER came in on), is answered, recorded with each side in its
//! channel, and hung up; the phone unregisters over TCP when it exits.

use crate::common;

use std::time::Duration;

use common::huifang::{Huifang, dial_on};
use common::softphone::Phone;
use common::{audio, free_port_udp_tcp};

#[test]
fn an_agent_phone_over_tcp_is_called_through_serve() {
    let h = Huifang::start(
        "",
        "[sip.registrar]\ndigest_algorithms = [\"SHA-256\"]\n\n[[sip.users]]\nname = \"agent1\"\n\
         password = \"agent1-test-secret\"\n\n[dialer]\nenabled = false\n",
    );
    assert!(h.wait_log("control socket up", Duration::from_secs(5)), "{}", h.log());
    let (agent_wav, client_wav) = (audio::fixture(audio::AGENT_WAV), audio::fixture(audio::CLIENT_WAV));
    let agent = Phone::registered(
        &h.addr.to_string(),
        "agent1",
        "agent1-test-secret",
        &["--transport", "tcp", "--play", agent_wav.to_str().unwrap(), "--calls", "1", "--seconds", "40"],
    );
    assert!(h.wait_log("softphone registered", Duration::from_secs(10)), "{}", h.log());
    let client_port = free_port_udp_tcp();
    let client = Phone::answering(client_port, "client1", &client_wav, "0.5", "6");
    let d = dial_on(
        &h.dir().join("huifang.toml"),
        &format!("sip:agent1@{}", h.addr),
        &format!("sip:13800000000@127.0.0.1:{client_port}"),
        &["--client-id", "C0001", "--max-seconds", "20"],
        Duration::from_secs(60),
    );
    let (agent, client) = (agent.wait(Duration::from_secs(15)), client.wait(Duration::from_secs(15)));
    d.assert_completed(&format!("serve:\n{}\nagent: {agent:#?}\nclient: {client:#?}", h.log()));
    assert!(agent.log.contains("listening on") && agent.log.contains("(tcp)"), "{}", agent.log);
    assert_eq!(agent.call()["answered"], true, "{agent:#?}");
    assert!(audio::stereo_scores(&d.recording(), &agent_wav, &client_wav).agent_left_client_right());
    // the binding was made, and withdrawn, over TCP
    assert!(h.wait_log("softphone unregistered", Duration::from_secs(5)), "{}", h.log());
    let binding =
        h.log().lines().find(|l| l.contains("softphone registered")).unwrap_or_default().to_string();
    assert!(binding.contains("tcp"), "the binding's transport is not in the log: {binding}");
}
