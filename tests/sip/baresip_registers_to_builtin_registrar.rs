//! A real softphone (baresip) registers to huifang's built-in registrar
//! with digest auth, over UDP and TCP; a wrong password is refused; a
//! binding whose phone vanished expires.

use crate::common;

use std::time::Duration;

use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, Transport};

const REGISTRAR: &str = "[sip.registrar]\nmin_expires = 1\n\n[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n";

fn registers(t: Transport) {
    let h = Huifang::start("", REGISTRAR);
    let mut phone = Baresip::spawn(
        BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()).transport(t).regint(60),
    );
    assert!(
        phone.wait_registered(Duration::from_secs(10)),
        "baresip did not register over {t:?}:\n{}\nhuifang:\n{}",
        phone.log(),
        h.log()
    );
    assert!(h.wait_log("softphone registered", Duration::from_secs(2)), "huifang log:\n{}", h.log());
    // Digest was used: the first REGISTER was challenged.
    assert!(h.log().contains("agent1"), "huifang log:\n{}", h.log());
}

#[test]
fn baresip_registers_over_udp() {
    registers(Transport::Udp);
}

#[test]
fn baresip_registers_over_tcp() {
    registers(Transport::Tcp);
}

#[test]
fn wrong_password_is_refused() {
    let h = Huifang::start("", REGISTRAR);
    let mut phone = Baresip::spawn(BaresipOpts::new("agent1", "wrong-password", &h.addr.to_string()));
    assert!(!phone.wait_registered(Duration::from_secs(8)), "registered with a wrong password");
    let log = phone.log();
    assert!(log.contains("403") || log.contains("401"), "baresip saw no 401/403:\n{log}");
    assert_eq!(h.count_log("softphone registered"), 0, "huifang log:\n{}", h.log());
}

#[test]
fn binding_expires_when_the_phone_vanishes() {
    let h = Huifang::start("", REGISTRAR);
    let mut phone =
        Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()).regint(3));
    assert!(phone.wait_registered(Duration::from_secs(10)), "baresip did not register:\n{}", phone.log());
    // SIGKILL: the phone cannot unregister, so only expiry removes the binding.
    let killed =
        std::process::Command::new("kill").args(["-KILL", &phone.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(
        h.wait_log("softphone registration expired", Duration::from_secs(8)),
        "binding did not expire; huifang log:\n{}",
        h.log()
    );
}
