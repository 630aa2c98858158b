//! SIPp against huifang: OPTIONS is answered 200 over UDP and TCP; an
//! INVITE to an unknown user gets 404, our ACK is absorbed by the server
//! transaction and the 404 is not retransmitted after it (no storm), while
//! without an ACK the 404 is retransmitted on UDP (Timer G).

use crate::common;

use common::huifang::Huifang;
use common::{scenario, sipp};

fn run(h: &Huifang, file: &str, extra: &[&str]) -> common::SippResult {
    let target = h.addr.to_string();
    let sf = scenario(file);
    let mut args = vec![target.as_str(), "-sf", sf.to_str().unwrap(), "-m", "1", "-timeout", "15s"];
    args.extend_from_slice(extra);
    sipp(&args)
}

#[test]
fn options_answered_over_udp_and_tcp() {
    let h = Huifang::start("", "");
    run(&h, "options.xml", &[]).assert_success();
    run(&h, "options.xml", &["-t", "t1"]).assert_success();
}

#[test]
fn invite_to_unknown_user_gets_404_and_ack_is_absorbed() {
    let h = Huifang::start("", "");
    let r = run(&h, "invite-unknown.xml", &[]);
    r.assert_success();
    assert!(r.logs.contains("PASS"), "{r}");
    let r = run(&h, "invite-unknown.xml", &["-t", "t1"]);
    r.assert_success();
}

#[test]
fn unacknowledged_404_is_retransmitted_on_udp() {
    let h = Huifang::start("", "");
    let r = run(&h, "invite-unknown-noack.xml", &[]);
    r.assert_success();
}
