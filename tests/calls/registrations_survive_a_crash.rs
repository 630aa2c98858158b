//! The built-in registrar's bindings outlive `serve` (issue 16, found by
//! the soak): a phone registered for an hour, `serve` killed with SIGKILL
//! and started again, and the next call reaches the phone at once — not
//! after its next REGISTER, 45 minutes later — because the bindings were
//! kept in the database and restored before the first datagram. A phone
//! that went away while `serve` was down is not called: a restored binding
//! is used only once its phone answered an OPTIONS.

use crate::common;

use std::time::Duration;

use common::huifang::{Huifang, dial_on};
use common::softphone::Phone;
use common::{audio, free_port_udp_tcp};

#[test]
fn a_phone_registered_before_a_crash_is_called_after_the_restart() {
    let mut h = Huifang::start(
        "",
        "[sip.registrar]\ndigest_algorithms = [\"SHA-256\"]\n\n[[sip.users]]\nname = \"agent1\"\n\
         password = \"agent1-test-secret\"\n\n[dialer]\nenabled = false\n",
    );
    let config = h.dir().join("huifang.toml");
    let (agent_wav, client_wav) = (audio::fixture(audio::AGENT_WAV), audio::fixture(audio::CLIENT_WAV));
    let agent = Phone::registered(
        &h.addr.to_string(),
        "agent1",
        "agent1-test-secret",
        &["--expires", "3600", "--play", agent_wav.to_str().unwrap(), "--calls", "1", "--seconds", "60"],
    );
    assert!(h.wait_log("softphone registered", Duration::from_secs(10)), "{}", h.log());
    assert!(h.wait_log("registrar bindings kept", Duration::from_secs(5)), "{}", h.log());
    h.kill9();

    let h2 = Huifang::start_with_config(&config);
    assert!(h2.wait_log("control socket up", Duration::from_secs(5)), "{}", h2.log());
    assert!(h2.log().contains("bindings from before the restart"), "{}", h2.log());
    // the restored binding is used once the phone answered an OPTIONS
    assert!(h2.wait_log("registered before the restart answered", Duration::from_secs(5)), "{}", h2.log());
    let client_port = free_port_udp_tcp();
    let client = Phone::answering(client_port, "client1", &client_wav, "0.5", "6");
    let d = dial_on(
        &config,
        &format!("sip:agent1@{}", h2.addr),
        &format!("sip:13800000000@127.0.0.1:{client_port}"),
        &["--client-id", "C0001", "--max-seconds", "20"],
        Duration::from_secs(60),
    );
    let (agent, client) = (agent.wait(Duration::from_secs(15)), client.wait(Duration::from_secs(15)));
    d.assert_completed(&format!("serve:\n{}\nagent: {agent:#?}\nclient: {client:#?}", h2.log()));
    assert_eq!(agent.call()["answered"], true, "{agent:#?}");
    // reached through the kept binding: the phone never registered again
    assert_eq!(h2.count_log("softphone registered"), 0, "{}", h2.log());
}

#[test]
fn a_phone_gone_while_serve_was_down_is_not_called() {
    let mut h = Huifang::start(
        "",
        "[sip.registrar]\ndigest_algorithms = [\"SHA-256\"]\n\n[[sip.users]]\nname = \"agent1\"\n\
         password = \"agent1-test-secret\"\n\n[dialer]\nenabled = false\n",
    );
    let config = h.dir().join("huifang.toml");
    let agent =
        Phone::registered(&h.addr.to_string(), "agent1", "agent1-test-secret", &["--expires", "3600"]);
    assert!(h.wait_log("softphone registered", Duration::from_secs(10)), "{}", h.log());
    assert!(h.wait_log("registrar bindings kept", Duration::from_secs(5)), "{}", h.log());
    h.kill9();
    let _ = agent.terminate(Duration::from_secs(10)); // its binding is withdrawn from nobody

    let h2 = Huifang::start_with_config(&config);
    assert!(h2.wait_log("control socket up", Duration::from_secs(5)), "{}", h2.log());
    assert!(h2.log().contains("bindings from before the restart"), "{}", h2.log());
    let client_port = free_port_udp_tcp();
    let d = dial_on(
        &config,
        &format!("sip:agent1@{}", h2.addr),
        &format!("sip:13800000000@127.0.0.1:{client_port}"),
        &["--client-id", "C0001", "--max-seconds", "20"],
        Duration::from_secs(30),
    );
    // refused at once as unregistered, not rung for agent_ring_secs
    assert_eq!(d.outcome(), "agent-unavailable", "{}\n{}", d.explain(), h2.log());
}
