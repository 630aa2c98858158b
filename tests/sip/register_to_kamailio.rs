//! huifang registers to a real switch (Kamailio with digest auth,
//! `qop=auth`) over UDP and over TCP, refreshes before expiry, and
//! unregisters on shutdown: Kamailio's location table shows the binding
//! come and go. With a wrong password it backs off instead of hammering.

use crate::common;

use std::time::Duration;

use common::huifang::Huifang;
use common::{Kamailio, kamailio};

fn switch(k: &Kamailio, transport: &str, password: &str, expires: u32) -> String {
    format!(
        "[sip.switch]\nregistrar = \"sip:127.0.0.1:{}\"\nuser = \"huifang\"\npassword = \"{password}\"\n\
         transport = \"{transport}\"\nexpires = {expires}\nretry_min_secs = 1\nretry_max_secs = 4\n",
        k.port
    )
}

fn ours(bindings: &[String], port: u16) -> Vec<String> {
    bindings.iter().filter(|b| b.contains(&format!(":{port}"))).cloned().collect()
}

fn register_refresh_unregister(transport: &str) {
    let k = kamailio();
    let mut h = Huifang::start("", &switch(&k, transport, "huifang-test-secret", 10));
    let port = h.addr.port();

    // The binding appears…
    let b = k.wait_bindings("huifang", Duration::from_secs(10), |b| !ours(b, port).is_empty());
    assert!(!ours(&b, port).is_empty(), "no binding for huifang in Kamailio; huifang log:\n{}", h.log());
    if transport == "tcp" {
        assert!(
            ours(&b, port)[0].contains("transport=tcp"),
            "contact {:?} must say transport=tcp",
            ours(&b, port)
        );
    }
    // …is refreshed before its 10 s run out (at 5 s), and survives past them.
    assert!(
        h.wait_log("registered to the switch", Duration::from_secs(5)),
        "no registration logged:\n{}",
        h.log()
    );
    std::thread::sleep(Duration::from_secs(12));
    assert!(h.count_log("registered to the switch") >= 2, "no refresh within 12 s:\n{}", h.log());
    assert!(!ours(&k.bindings("huifang"), port).is_empty(), "binding expired despite refresh");

    // Shutdown withdraws it, within the grace period.
    let (status, took) = h.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}; log:\n{}", h.log());
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    assert!(h.log().contains("unregistered from the switch"), "log:\n{}", h.log());
    assert!(ours(&k.bindings("huifang"), port).is_empty(), "binding left behind after shutdown");
}

#[test]
fn registers_over_udp_refreshes_and_unregisters() {
    register_refresh_unregister("udp");
}

#[test]
fn registers_over_tcp_refreshes_and_unregisters() {
    register_refresh_unregister("tcp");
}

#[test]
fn wrong_password_backs_off() {
    let k = kamailio();
    let h = Huifang::start("", &switch(&k, "udp", "not-the-password", 60));
    assert!(h.wait_log("credentials refused", Duration::from_secs(5)), "no refusal logged:\n{}", h.log());
    // Retries follow the back-off (1 s, 2 s, 4 s, …): a handful in 6 s, not a storm.
    std::thread::sleep(Duration::from_secs(6));
    let failures = h.count_log("registration failed");
    assert!((2..=5).contains(&failures), "{failures} failures in ~6 s:\n{}", h.log());
    assert!(ours(&k.bindings("huifang"), h.addr.port()).is_empty());
}
