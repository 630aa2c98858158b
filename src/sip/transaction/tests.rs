//! The transaction layer on a virtual clock: each test names the behaviour
//! it pins. Times are seconds since the start of the test.

use super::testkit::*;
use super::*;
use crate::sip::msg::Method;
use crate::sip::transport::Transport::{Tcp, Udp};

const UDP_INVITE_SENDS: [f64; 7] = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5];

fn terminated(tx: TxId) -> impl Fn(&TxEvent) -> bool {
    move |e| *e == TxEvent::Terminated { tx }
}

fn timeout(tx: TxId) -> impl Fn(&TxEvent) -> bool {
    move |e| *e == TxEvent::Timeout { tx }
}

// ---------------------------------------------------------------- client INVITE

#[test]
fn client_invite_over_udp_without_answer_retransmits_doubling_and_times_out_at_64_t1() {
    let mut h = Harness::new();
    let tx = h.send_request(0.0, request("INVITE", "z9hG4bKa", Udp), to_uas(Udp));
    h.run_until(100.0);
    // Timer A: intervals 0.5, 1, 2, 4, 8, 16 s (no cap for INVITE).
    assert_eq!(h.log.sent_times("INVITE"), UDP_INVITE_SENDS);
    assert!(h.log.sent.iter().all(|(_, t)| t.target == to_uas(Udp)));
    // Timer B = 64·T1.
    assert_eq!(h.log.event_times(timeout(tx)), [32.0]);
    assert_eq!(h.log.event_times(terminated(tx)), [32.0]);
    assert_eq!(h.log.events.len(), 2);
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn client_invite_over_tcp_is_never_retransmitted_and_times_out_at_64_t1() {
    let mut h = Harness::new();
    let tx = h.send_request(0.0, request("INVITE", "z9hG4bKa", Tcp), to_uas(Tcp));
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("INVITE"), [0.0]);
    assert_eq!(h.log.event_times(timeout(tx)), [32.0]);
    assert!(h.layer.is_empty());
}

#[test]
fn client_invite_100_then_486_is_acked_per_17_1_1_3_and_retransmitted_486_reacked() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    assert_eq!(h.layer.request(tx), Some(&invite));
    assert_eq!(h.on_response(0.1, response(&invite, 100, None)), Incoming::Absorbed);
    let busy = response(&invite, 486, Some("b486"));
    assert_eq!(h.on_response(1.0, busy.clone()), Incoming::Absorbed);

    // Timer A stopped at the 100: the INVITE went out once.
    assert_eq!(h.log.sent_times("INVITE"), [0.0]);
    assert_eq!(h.log.sent_times("ACK"), [1.0]);
    let ack = h.last_sent("ACK");
    assert_eq!(h.log.sent_msgs("ACK")[0].target, to_uas(Udp));
    assert!(is_method(&ack, Method::Ack));
    // Same Request-URI, Call-ID, From as the INVITE.
    assert_eq!(ack.request_uri(), invite.request_uri());
    assert_eq!(ack.call_id(), invite.call_id());
    assert_eq!(ack.header("From"), invite.header("From"));
    // To from the response, with its tag.
    assert_eq!(ack.header("To"), busy.header("To"));
    assert_eq!(ack.to_tag().as_deref(), Some("b486"));
    // CSeq number of the INVITE, method ACK.
    assert_eq!(ack.header("CSeq"), Some("1 ACK"));
    // The single top Via of the INVITE (same branch).
    let vias: Vec<_> = ack.header_values("Via").collect();
    assert_eq!(vias, [invite.header("Via").unwrap()]);
    // The INVITE's Route headers.
    let routes: Vec<_> = ack.header_values("Route").collect();
    let invite_routes: Vec<_> = invite.header_values("Route").collect();
    assert_eq!(routes, invite_routes);
    assert_eq!(routes.len(), 2);
    assert!(ack.body.is_empty());
    assert_eq!(ack.header("Content-Type"), None);
    assert!(ack.validate().is_ok());

    // The 486 again: ACKed again, absorbed.
    assert_eq!(h.on_response(1.2, busy.clone()), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("ACK"), [1.0, 1.2]);
    assert_eq!(h.log.sent_msgs("ACK")[1].msg, ack);
    assert_eq!(h.log.response_statuses(tx), [100, 486]);

    // Timer D: 32 s after the 486.
    h.run_until(100.0);
    assert_eq!(h.log.event_times(terminated(tx)), [33.0]);
    assert!(h.layer.is_empty());
    // Afterwards the 486 is a stray.
    assert!(matches!(h.on_response(101.0, busy), Incoming::StrayResponse { .. }));
}

#[test]
fn client_invite_non_2xx_over_tcp_terminates_at_once_after_the_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Tcp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Tcp));
    h.on_response(0.3, response(&invite, 603, Some("t")));
    assert_eq!(h.log.sent_times("ACK"), [0.3]);
    assert_eq!(h.log.event_times(terminated(tx)), [0.3]);
    assert!(h.layer.is_empty());
}

#[test]
fn client_invite_2xx_twice_passes_both_up_and_terminates_after_timer_m() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    let ok = response(&invite, 200, Some("b200"));
    assert_eq!(h.on_response(1.0, ok.clone()), Incoming::Absorbed);
    assert_eq!(h.on_response(2.0, ok.clone()), Incoming::Absorbed);
    assert_eq!(h.log.response_statuses(tx), [200, 200]);
    // The ACK for a 2xx is the dialog's: the layer sends none.
    assert!(h.log.sent_times("ACK").is_empty());
    // Timer A stopped at the 200.
    assert_eq!(h.log.sent_times("INVITE"), [0.0, 0.5]);
    h.run_until(100.0);
    // Timer M = 64·T1 after the first 2xx.
    assert_eq!(h.log.event_times(terminated(tx)), [33.0]);
    // A late 2xx retransmission is a stray for the dialog to re-ACK.
    assert_eq!(h.on_response(101.0, ok.clone()), Incoming::StrayResponse { msg: ok });
}

#[test]
fn client_invite_ignores_provisionals_after_its_final_response() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    h.on_response(0.2, response(&invite, 180, Some("b")));
    h.on_response(0.3, response(&invite, 200, Some("b")));
    h.on_response(0.4, response(&invite, 180, Some("b")));
    assert_eq!(h.log.response_statuses(tx), [180, 200]);
}

// ------------------------------------------------------------ client non-INVITE

#[test]
fn client_non_invite_timer_e_doubles_up_to_t2_and_timer_f_times_out() {
    let mut h = Harness::new();
    let tx = h.send_request(0.0, request("OPTIONS", "z9hG4bKo", Udp), to_uas(Udp));
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("OPTIONS"), [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]);
    assert_eq!(h.log.event_times(timeout(tx)), [32.0]);
    assert_eq!(h.log.event_times(terminated(tx)), [32.0]);
    assert!(h.layer.is_empty());
}

#[test]
fn client_non_invite_in_proceeding_retransmits_every_t2_until_timer_f() {
    let mut h = Harness::new();
    let req = request("OPTIONS", "z9hG4bKo", Udp);
    let tx = h.send_request(0.0, req.clone(), to_uas(Udp));
    h.on_response(0.2, response(&req, 100, None));
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("OPTIONS"), [0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]);
    assert_eq!(h.log.response_statuses(tx), [100]);
    assert_eq!(h.log.event_times(timeout(tx)), [32.0]);
}

#[test]
fn client_non_invite_final_absorbs_retransmissions_until_timer_k() {
    let mut h = Harness::new();
    let req = request("OPTIONS", "z9hG4bKo", Udp);
    let tx = h.send_request(0.0, req.clone(), to_uas(Udp));
    let ok = response(&req, 200, Some("x"));
    h.on_response(0.7, ok.clone());
    assert_eq!(h.on_response(0.9, ok.clone()), Incoming::Absorbed);
    h.run_until(100.0);
    assert_eq!(h.log.response_statuses(tx), [200]);
    assert_eq!(h.log.sent_times("OPTIONS"), [0.0, 0.5]);
    // Timer K = T4.
    assert_eq!(h.log.event_times(terminated(tx)), [5.7]);
    assert!(h.layer.is_empty());
}

#[test]
fn client_non_invite_over_tcp_terminates_at_once_on_its_final_response() {
    let mut h = Harness::new();
    let req = request("REGISTER", "z9hG4bKr", Tcp);
    let tx = h.send_request(0.0, req.clone(), to_uas(Tcp));
    h.run_until(10.0);
    assert_eq!(h.log.sent_times("REGISTER"), [0.0]);
    h.on_response(10.0, response(&req, 401, Some("x")));
    assert_eq!(h.log.response_statuses(tx), [401]);
    assert_eq!(h.log.event_times(terminated(tx)), [10.0]);
    assert!(h.layer.is_empty());
}

#[test]
fn a_response_that_matches_nothing_is_stray() {
    let mut h = Harness::new();
    let req = request("OPTIONS", "z9hG4bKo", Udp);
    h.send_request(0.0, req.clone(), to_uas(Udp));
    let other = request("OPTIONS", "z9hG4bKother", Udp);
    let stray = response(&other, 200, Some("x"));
    assert_eq!(h.on_response(0.1, stray.clone()), Incoming::StrayResponse { msg: stray });
    // Same branch, other method (CSeq): no match either.
    let mut wrong_method = response(&req, 200, Some("x"));
    wrong_method.set("CSeq", "1 INVITE");
    assert!(matches!(h.on_response(0.2, wrong_method), Incoming::StrayResponse { .. }));
    assert!(h.log.events.is_empty());
}

#[test]
fn an_ack_for_a_2xx_passed_to_send_request_is_sent_once_without_a_transaction() {
    let mut h = Harness::new();
    h.send_request(0.0, request("ACK", "z9hG4bKack", Udp), to_uas(Udp));
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("ACK"), [0.0]);
    assert!(h.layer.is_empty());
    assert!(h.log.events.is_empty());
}

#[test]
fn transport_failure_times_out_the_client_transactions_to_that_target() {
    let mut h = Harness::new();
    let tx = h.send_request(0.0, request("INVITE", "z9hG4bKa", Tcp), to_uas(Tcp));
    let other = h.send_request(
        0.0,
        request("OPTIONS", "z9hG4bKo", Tcp),
        Target { transport: Tcp, addr: "10.0.0.3:5060".parse().unwrap() },
    );
    h.run_until(1.0);
    h.layer.transport_failed(to_uas(Tcp), h.now);
    h.drain();
    assert_eq!(h.log.events(), [&TxEvent::Timeout { tx }, &TxEvent::Terminated { tx }]);
    assert_eq!(h.layer.len(), 1);
    assert!(h.layer.request(other).is_some());
}

// ---------------------------------------------------------------- server INVITE

/// Hands `invite` to the layer at `s` and returns the new transaction.
fn new_server_tx(h: &mut Harness, s: f64, req: &Message, transport: Transport) -> TxId {
    match h.on_request(s, req.clone(), transport) {
        Incoming::Request { tx, msg } => {
            assert_eq!(&msg, req);
            tx
        }
        other => panic!("expected a new request, got {other:?}"),
    }
}

fn ack_for(invite: &Message, resp: &Message) -> Message {
    client::build_ack(invite, resp).unwrap()
}

#[test]
fn server_invite_404_over_udp_is_retransmitted_per_timer_g_until_the_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    let not_found = response(&invite, 404, Some("s404"));
    h.respond(0.0, tx, not_found.clone());
    h.run_until(10.0);
    // Timer G: 0.5, 1, 2, then capped at T2 = 4.
    assert_eq!(h.log.sent_times("404"), [0.0, 0.5, 1.5, 3.5, 7.5]);
    assert!(h.log.sent.iter().all(|(_, t)| t.target == to_uac(Udp)));
    // The TU answered at once: no 100 Trying.
    assert!(h.log.sent_times("100").is_empty());

    let ack = ack_for(&invite, &not_found);
    assert_eq!(h.on_request(10.0, ack.clone(), Udp), Incoming::Absorbed);
    // An ACK retransmission is absorbed too.
    assert_eq!(h.on_request(10.1, ack, Udp), Incoming::Absorbed);
    h.run_until(100.0);
    // Nothing after the ACK, no AckTimeout; Timer I = T4.
    assert_eq!(h.log.sent_times("404"), [0.0, 0.5, 1.5, 3.5, 7.5]);
    assert_eq!(h.log.events(), [&TxEvent::Terminated { tx }]);
    assert_eq!(h.log.event_times(terminated(tx)), [15.0]);
    assert!(h.layer.is_empty());
}

#[test]
fn server_invite_404_without_ack_reports_ack_timeout_after_timer_h() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.respond(0.0, tx, response(&invite, 404, Some("s404")));
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("404"), [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]);
    assert_eq!(h.log.events(), [&TxEvent::AckTimeout { tx }, &TxEvent::Terminated { tx }]);
    assert_eq!(h.log.events[0].0, 32.0);
    assert!(h.layer.is_empty());
}

#[test]
fn server_invite_404_over_tcp_is_not_retransmitted_and_ends_at_the_ack() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Tcp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Tcp);
    let busy = response(&invite, 486, Some("t"));
    h.respond(0.0, tx, busy.clone());
    h.run_until(5.0);
    assert_eq!(h.log.sent_times("486"), [0.0]);
    assert_eq!(h.log.sent_msgs("486")[0].target.transport, Tcp);
    h.on_request(5.0, ack_for(&invite, &busy), Tcp);
    // Timer I is zero on TCP.
    assert_eq!(h.log.event_times(terminated(tx)), [5.0]);
    assert!(h.layer.is_empty());
}

#[test]
fn server_invite_sends_100_trying_when_the_tu_is_silent_for_200ms() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.run_until(1.0);
    assert_eq!(h.log.sent_times("100"), [0.2]);
    let trying = h.last_sent("100");
    assert_eq!(trying.header("CSeq"), Some("1 INVITE"));
    assert_eq!(trying.header("Via"), invite.header("Via"));
    assert_eq!(trying.to_tag(), None);
    // A 100 is not retransmitted on a timer.
    h.respond(5.0, tx, response(&invite, 180, Some("s")));
    h.run_until(9.0);
    assert_eq!(h.log.sent_times("100"), [0.2]);
    assert_eq!(h.log.sent_times("180"), [5.0]);
}

#[test]
fn server_invite_answered_within_200ms_sends_no_100() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.respond(0.15, tx, response(&invite, 180, Some("s")));
    h.run_until(3.0);
    assert!(h.log.sent_times("100").is_empty());
    assert_eq!(h.log.sent_times("180"), [0.15]);
}

#[test]
fn server_invite_retransmissions_get_the_last_response_again() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    // Before the 200 ms: a 100 at once, and the timer sends no second one.
    assert_eq!(h.on_request(0.1, invite.clone(), Udp), Incoming::Absorbed);
    h.run_until(0.4);
    assert_eq!(h.log.sent_times("100"), [0.1]);
    assert_eq!(h.on_request(0.5, invite.clone(), Udp), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("100"), [0.1, 0.5]);
    h.respond(1.0, tx, response(&invite, 180, Some("s")));
    h.on_request(1.5, invite.clone(), Udp);
    assert_eq!(h.log.sent_times("180"), [1.0, 1.5]);
    h.respond(2.0, tx, response(&invite, 404, Some("s")));
    h.on_request(2.1, invite.clone(), Udp);
    assert_eq!(h.log.sent_times("404"), [2.0, 2.1]);
    // The TU saw one request, and nothing else happened to it.
    assert!(h.log.events.is_empty());
}

#[test]
fn server_invite_ack_that_overtakes_an_invite_retransmission_still_matches() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    let nf = response(&invite, 404, Some("s"));
    h.respond(0.0, tx, nf.clone());
    // The ACK arrives, then a late copy of the INVITE.
    assert_eq!(h.on_request(0.6, ack_for(&invite, &nf), Udp), Incoming::Absorbed);
    assert_eq!(h.on_request(0.7, invite.clone(), Udp), Incoming::Absorbed);
    h.run_until(100.0);
    assert_eq!(h.log.sent_times("404"), [0.0, 0.5]);
    assert_eq!(h.log.event_times(terminated(tx)), [5.6]);
}

#[test]
fn server_invite_2xx_enters_accepted_absorbs_invites_and_passes_acks_up() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    let ok = response(&invite, 200, Some("s"));
    h.respond(0.1, tx, ok.clone());
    // INVITE retransmissions are absorbed without an answer (RFC 6026).
    assert_eq!(h.on_request(0.5, invite.clone(), Udp), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("200"), [0.1]);
    // The TU's own 2xx retransmissions pass through; a non-2xx does not.
    h.respond(0.6, tx, ok.clone());
    h.respond(0.65, tx, response(&invite, 500, Some("s")));
    assert_eq!(h.log.sent_times("200"), [0.1, 0.6]);
    assert!(h.log.sent_times("500").is_empty());
    // The ACK for the 2xx, with its own branch: no transaction, the dialog's.
    let mut ack = ack_for(&invite, &ok);
    let mut via = ack.top_via().unwrap();
    via.params.set("branch", Some("z9hG4bKack2xx"));
    ack.set_top_via(&via);
    assert_eq!(h.on_request(0.7, ack.clone(), Udp), Incoming::Ack2xx { msg: ack });
    // An ACK that reuses the INVITE's branch matches Accepted: up as well.
    let same_branch = ack_for(&invite, &ok);
    assert_eq!(h.on_request(0.8, same_branch.clone(), Udp), Incoming::Ack2xx { msg: same_branch });
    h.run_until(100.0);
    // Timer L = 64·T1.
    assert_eq!(h.log.event_times(terminated(tx)), [32.1]);
    assert_eq!(h.log.sent_times("200"), [0.1, 0.6]);
}

#[test]
fn responses_to_unknown_transactions_are_dropped() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    h.respond(0.0, TxId(99), response(&invite, 200, Some("s")));
    assert!(h.log.sent.is_empty());
    // A client transaction cannot be responded on either.
    let c = h.send_request(0.0, invite.clone(), to_uas(Udp));
    h.respond(0.1, c, response(&invite, 200, Some("s")));
    assert!(h.log.sent_times("200").is_empty());
}

// ------------------------------------------------------------ server non-INVITE

#[test]
fn server_non_invite_duplicate_after_final_gets_the_same_final_until_timer_j() {
    let mut h = Harness::new();
    let options = request("OPTIONS", "z9hG4bKo", Udp);
    let tx = new_server_tx(&mut h, 0.0, &options, Udp);
    // In Trying a retransmission has nothing to get back.
    assert_eq!(h.on_request(0.5, options.clone(), Udp), Incoming::Absorbed);
    assert!(h.log.sent.is_empty());
    let ok = response(&options, 200, Some("s"));
    h.respond(1.0, tx, ok.clone());
    assert_eq!(h.on_request(2.0, options.clone(), Udp), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("200"), [1.0, 2.0]);
    assert_eq!(h.log.sent_msgs("200")[1].msg, ok);
    h.run_until(100.0);
    // Timer J = 64·T1; no retransmission on a timer.
    assert_eq!(h.log.sent_times("200"), [1.0, 2.0]);
    assert_eq!(h.log.event_times(terminated(tx)), [33.0]);
    assert!(h.layer.is_empty());
    // After J the same request is new again.
    assert!(matches!(h.on_request(100.0, options, Udp), Incoming::Request { .. }));
}

#[test]
fn server_non_invite_retransmission_in_proceeding_gets_the_provisional() {
    let mut h = Harness::new();
    let req = request("REGISTER", "z9hG4bKr", Udp);
    let tx = new_server_tx(&mut h, 0.0, &req, Udp);
    h.respond(0.1, tx, response(&req, 100, None));
    h.on_request(0.5, req.clone(), Udp);
    assert_eq!(h.log.sent_times("100"), [0.1, 0.5]);
}

#[test]
fn server_non_invite_over_tcp_ends_with_its_final_response() {
    let mut h = Harness::new();
    let req = request("OPTIONS", "z9hG4bKo", Tcp);
    let tx = new_server_tx(&mut h, 0.0, &req, Tcp);
    h.respond(0.1, tx, response(&req, 200, Some("s")));
    assert_eq!(h.log.event_times(terminated(tx)), [0.1]);
    assert!(h.layer.is_empty());
}

#[test]
fn server_transactions_answer_where_the_via_says() {
    let mut h = Harness::new();
    let mut req = request("OPTIONS", "z9hG4bKo", Udp);
    // Arrived from a NAT: received/rport stamped by the transport.
    let source: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    transport::stamp_received(&mut req, source);
    let Incoming::Request { tx, .. } = h.layer.on_request(req.clone(), Udp, source, h.now) else {
        panic!("expected a request")
    };
    h.respond(0.0, tx, response(&req, 200, Some("s")));
    assert_eq!(h.log.sent[0].1.target, Target { transport: Udp, addr: source });
}

// ----------------------------------------------------------------------- CANCEL

fn cancel_for(invite: &Message) -> Message {
    client::build_cancel(invite).unwrap()
}

#[test]
fn cancel_matching_a_ringing_invite_gets_200_with_the_tu_tag_and_reports_cancelled() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.respond(0.1, tx, response(&invite, 180, Some("t9")));
    let cancel = cancel_for(&invite);
    assert_eq!(h.on_request(1.0, cancel.clone(), Udp), Incoming::Absorbed);
    assert_eq!(h.log.events(), [&TxEvent::Cancelled { tx }]);
    assert_eq!(h.log.sent_times("200"), [1.0]);
    let ok = h.last_sent("200");
    assert_eq!(ok.header("CSeq"), Some("1 CANCEL"));
    assert_eq!(ok.to_tag().as_deref(), Some("t9"));
    assert_eq!(ok.header("Via"), cancel.header("Via"));
    assert_eq!(h.log.sent_msgs("200")[0].target, to_uac(Udp));
    // The TU answers the INVITE 487; the CANCEL's retransmission gets the
    // same 200 and no second Cancelled.
    let terminated_487 = response(&invite, 487, Some("t9"));
    h.respond(1.1, tx, terminated_487.clone());
    assert_eq!(h.on_request(1.5, cancel, Udp), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("200"), [1.0, 1.5]);
    assert_eq!(h.log.sent_msgs("200")[1].msg, ok);
    assert_eq!(h.log.events().len(), 1);
    h.on_request(1.6, ack_for(&invite, &terminated_487), Udp);
    h.run_until(100.0);
    // The layer's CANCEL transaction ends silently; the INVITE after Timer I.
    assert_eq!(h.log.events(), [&TxEvent::Cancelled { tx }, &TxEvent::Terminated { tx }]);
    assert!(h.layer.is_empty());
}

#[test]
fn cancel_before_any_tagged_response_gets_a_200_with_a_fresh_tag() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.on_request(0.05, cancel_for(&invite), Udp);
    assert_eq!(h.log.events(), [&TxEvent::Cancelled { tx }]);
    assert!(h.last_sent("200").to_tag().is_some());
}

#[test]
fn cancel_after_the_final_response_gets_200_but_no_cancelled() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    let tx = new_server_tx(&mut h, 0.0, &invite, Udp);
    h.respond(0.1, tx, response(&invite, 404, Some("s4")));
    h.on_request(0.2, cancel_for(&invite), Udp);
    assert_eq!(h.log.sent_times("200"), [0.2]);
    assert_eq!(h.last_sent("200").to_tag().as_deref(), Some("s4"));
    assert!(h.log.events.is_empty());
}

#[test]
fn cancel_matching_nothing_gets_481_and_is_absorbed() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKs", Udp);
    new_server_tx(&mut h, 0.0, &invite, Udp);
    // Another branch, and the same branch from another sent-by: no match.
    let other = cancel_for(&request("INVITE", "z9hG4bKother", Udp));
    assert_eq!(h.on_request(0.1, other.clone(), Udp), Incoming::Absorbed);
    let mut elsewhere = cancel_for(&invite);
    let mut via = elsewhere.top_via().unwrap();
    via.host = "10.0.0.77".into();
    elsewhere.set_top_via(&via);
    assert_eq!(h.on_request(0.2, elsewhere, Udp), Incoming::Absorbed);
    assert_eq!(h.log.sent_times("481"), [0.1, 0.2]);
    let nope = h.log.sent_msgs("481")[0].msg.clone();
    assert_eq!(nope.header("CSeq"), Some("1 CANCEL"));
    assert!(nope.to_tag().is_some());
    // Its retransmission gets the same 481.
    h.on_request(0.3, other, Udp);
    assert_eq!(h.log.sent_times("481"), [0.1, 0.2, 0.3]);
    assert_eq!(h.log.sent_msgs("481")[2].msg, nope);
    assert!(h.log.events.is_empty());
}

#[test]
fn client_cancel_before_a_provisional_waits_for_the_180() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    let cancel_tx = h.cancel(0.1, tx).unwrap();
    assert_ne!(cancel_tx, tx);
    assert_eq!(h.cancel(0.2, tx), Some(cancel_tx));
    h.run_until(0.6);
    assert!(h.log.sent_times("CANCEL").is_empty());
    // Timer A still runs in Calling.
    assert_eq!(h.log.sent_times("INVITE"), [0.0, 0.5]);

    h.on_response(0.7, response(&invite, 180, Some("b")));
    assert_eq!(h.log.sent_times("CANCEL"), [0.7]);
    assert_eq!(h.cancel(0.7, tx), Some(cancel_tx));
    let cancel = h.last_sent("CANCEL");
    assert_eq!(h.log.sent_msgs("CANCEL")[0].target, to_uas(Udp));
    // §9.1: Request-URI, Call-ID, To, From, CSeq number, top Via, Route.
    assert_eq!(cancel.request_uri(), invite.request_uri());
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(cancel.header("To"), invite.header("To"));
    assert_eq!(cancel.header("From"), invite.header("From"));
    assert_eq!(cancel.header("CSeq"), Some("1 CANCEL"));
    let vias: Vec<_> = cancel.header_values("Via").collect();
    assert_eq!(vias, [invite.header("Via").unwrap()]);
    let routes: Vec<_> = cancel.header_values("Route").collect();
    assert_eq!(routes, invite.header_values("Route").collect::<Vec<_>>());
    assert!(cancel.body.is_empty());
    assert!(cancel.validate().is_ok());
    assert_eq!(h.layer.request(cancel_tx), Some(&cancel));

    // The CANCEL's 200 goes to the CANCEL transaction, the 487 to the INVITE.
    h.on_response(0.8, response(&cancel, 200, Some("b")));
    h.on_response(0.9, response(&invite, 487, Some("b")));
    assert_eq!(h.log.response_statuses(cancel_tx), [200]);
    assert_eq!(h.log.response_statuses(tx), [180, 487]);
    assert_eq!(h.log.sent_times("ACK"), [0.9]);
    assert_eq!(h.cancel(1.0, tx), None);
    h.run_until(100.0);
    assert_eq!(h.log.event_times(terminated(cancel_tx)), [5.8]);
    assert_eq!(h.log.event_times(terminated(tx)), [32.9]);
    assert!(h.layer.is_empty());
}

#[test]
fn a_deferred_cancel_is_dropped_when_the_invite_ends_first() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    let cancel_tx = h.cancel(0.1, tx).unwrap();
    h.on_response(0.3, response(&invite, 486, Some("b")));
    assert!(h.log.sent_times("CANCEL").is_empty());
    assert_eq!(h.log.event_times(terminated(cancel_tx)), [0.3]);
    assert_eq!(h.cancel(0.4, tx), None);
    h.run_until(100.0);
    assert!(h.log.sent_times("CANCEL").is_empty());
    assert_eq!(h.log.event_times(terminated(cancel_tx)), [0.3]);
}

#[test]
fn a_deferred_cancel_dies_with_an_invite_that_times_out() {
    let mut h = Harness::new();
    let tx = h.send_request(0.0, request("INVITE", "z9hG4bKa", Udp), to_uas(Udp));
    let cancel_tx = h.cancel(0.1, tx).unwrap();
    h.run_until(100.0);
    assert_eq!(h.log.event_times(terminated(cancel_tx)), [32.0]);
    assert_eq!(h.log.event_times(timeout(tx)), [32.0]);
    assert!(h.log.sent_times("CANCEL").is_empty());
}

#[test]
fn a_cancelled_invite_without_final_response_gives_up_64_t1_after_the_cancel() {
    let mut h = Harness::new();
    let invite = request("INVITE", "z9hG4bKa", Udp);
    let tx = h.send_request(0.0, invite.clone(), to_uas(Udp));
    h.on_response(0.1, response(&invite, 180, Some("b")));
    // Proceeding has no timer: ringing can last.
    h.run_until(50.0);
    assert!(h.log.event_times(timeout(tx)).is_empty());
    let cancel_tx = h.cancel(50.0, tx).unwrap();
    let cancel = h.last_sent("CANCEL");
    h.on_response(50.1, response(&cancel, 200, Some("b")));
    h.run_until(200.0);
    assert_eq!(h.log.event_times(timeout(tx)), [82.0]);
    assert_eq!(h.log.event_times(terminated(cancel_tx)), [55.1]);
    assert!(h.layer.is_empty());
}

#[test]
fn cancel_of_what_is_not_a_live_client_invite_is_none() {
    let mut h = Harness::new();
    let options = h.send_request(0.0, request("OPTIONS", "z9hG4bKo", Udp), to_uas(Udp));
    assert_eq!(h.cancel(0.1, options), None);
    assert_eq!(h.cancel(0.1, TxId(1234)), None);
    let req = request("INVITE", "z9hG4bKs", Udp);
    let server = new_server_tx(&mut h, 0.2, &req, Udp);
    assert_eq!(h.cancel(0.3, server), None);
}

// ------------------------------------------------------- two layers, one network

/// Delivers transmit number `index` of `from` to `to`, at `to`'s time.
fn deliver(from: &Harness, index: usize, to: &mut Harness) -> Incoming {
    let t = from.log.sent[index].1.clone();
    let r = if t.msg.is_request() {
        to.layer.on_request(t.msg, t.target.transport, uac_addr(), to.now)
    } else {
        to.layer.on_response(t.msg, to.now)
    };
    to.drain();
    r
}

#[test]
fn lost_invite_and_lost_404_are_recovered_by_retransmission() {
    let mut uac = Harness::new();
    let mut uas = Harness::starting_at(uac.base);
    let invite = request("INVITE", "z9hG4bKl", Udp);
    let tx = uac.send_request(0.0, invite.clone(), to_uas(Udp));
    // uac.sent[0], the INVITE, is lost; Timer A sends it again at 0.5 s.
    uac.run_until(0.5);
    uas.run_until(0.5);
    assert_eq!(uac.log.sent_times("INVITE"), [0.0, 0.5]);
    let Incoming::Request { tx: stx, .. } = deliver(&uac, 1, &mut uas) else {
        panic!("expected the INVITE at the UAS")
    };
    // uas.sent[0], the 404, is lost; Timer G sends it again at 1.0 s.
    uas.respond(0.5, stx, response(&invite, 404, Some("s")));
    uas.run_until(1.0);
    uac.run_until(1.0);
    assert_eq!(uas.log.sent_times("404"), [0.5, 1.0]);
    assert_eq!(deliver(&uas, 1, &mut uac), Incoming::Absorbed);
    assert_eq!(uac.log.response_statuses(tx), [404]);
    // The ACK reaches the UAS: no more 404s.
    assert_eq!(label(&uac.log.sent[2].1.msg), "ACK");
    assert_eq!(deliver(&uac, 2, &mut uas), Incoming::Absorbed);
    uas.run_until(100.0);
    uac.run_until(100.0);
    assert_eq!(uas.log.sent_times("404"), [0.5, 1.0]);
    assert_eq!(uac.log.sent_times("INVITE"), [0.0, 0.5]);
    assert!(uas.layer.is_empty() && uac.layer.is_empty());
    assert_eq!(uas.log.events(), [&TxEvent::Terminated { tx: stx }]);
}

/// A small deterministic PRNG (xorshift64*), so the lossy runs repeat.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// True with probability `per_mille`/1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
    /// Uniform in `lo..hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// A datagram network that drops, duplicates and reorders (by random
/// delays), carrying bytes so every message is printed and parsed again.
struct Network {
    rng: Rng,
    drop: u64,
    dup: u64,
    seq: u64,
    /// (arrival, order, towards the UAS?, bytes)
    in_flight: Vec<(Instant, u64, bool, Vec<u8>)>,
}

impl Network {
    fn send(&mut self, now: Instant, to_uas: bool, msg: &Message) {
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.chance(self.drop) {
                continue;
            }
            let at = now + self.rng.millis(5, 250);
            self.seq += 1;
            self.in_flight.push((at, self.seq, to_uas, msg.to_bytes()));
        }
    }
    fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.iter().map(|(at, ..)| *at).min()
    }
    fn take_due(&mut self, now: Instant) -> Vec<(bool, Message)> {
        let mut due: Vec<_> = self.in_flight.iter().filter(|f| f.0 <= now).cloned().collect();
        self.in_flight.retain(|f| f.0 > now);
        due.sort_by_key(|f| (f.0, f.1));
        due.into_iter().map(|(_, _, to_uas, bytes)| (to_uas, Message::parse(&bytes).unwrap())).collect()
    }
}

/// What one lossy run ended with.
#[derive(Debug, Default)]
struct Outcome {
    uac_events: Vec<TxEvent>,
    uas_events: Vec<TxEvent>,
    requests_at_uas: usize,
    ack2xx_at_uas: usize,
    uac_left: usize,
    uas_left: usize,
}

/// Runs one UAC transaction (`method`) against a UAS whose TU answers
/// `final_status` (INVITE: after a 180 for odd seeds), over a network
/// dropping `drop`‰ and duplicating `dup`‰ of the datagrams.
fn lossy_run(seed: u64, method: &str, final_status: u16, drop: u64, dup: u64) -> Outcome {
    let base = Instant::now();
    let mut now = base;
    let mut uac = Transactions::new(TimerConfig::default());
    let mut uas = Transactions::new(TimerConfig::default());
    let mut net = Network { rng: Rng::new(seed), drop, dup, seq: 0, in_flight: Vec::new() };
    let mut out = Outcome::default();
    // The UAS's TU: responses it will give, (when, tx, response).
    let mut tu: Vec<(Instant, TxId, Message)> = Vec::new();
    let req = request(method, &format!("z9hG4bKsim{seed}"), Udp);
    uac.send_request(req, to_uas(Udp), now);
    let limit = base + Duration::from_secs(600);
    loop {
        while let Some(t) = uac.poll_transmit() {
            assert_eq!(t.target, to_uas(Udp));
            net.send(now, true, &t.msg);
        }
        while let Some(e) = uac.poll_event() {
            out.uac_events.push(e);
        }
        while let Some(t) = uas.poll_transmit() {
            assert_eq!(t.target, to_uac(Udp));
            net.send(now, false, &t.msg);
        }
        while let Some(e) = uas.poll_event() {
            out.uas_events.push(e);
        }
        let next =
            [uac.poll_timeout(), uas.poll_timeout(), net.next_arrival(), tu.iter().map(|(at, ..)| *at).min()]
                .into_iter()
                .flatten()
                .min();
        match next {
            Some(t) if t <= limit => now = now.max(t),
            _ => break,
        }
        for (to_uas, mut msg) in net.take_due(now) {
            if !to_uas {
                if let Incoming::StrayResponse { msg } = uac.on_response(msg, now) {
                    // Only possible for a copy that outlived the transaction.
                    assert!(msg.status().unwrap() >= 200);
                }
                continue;
            }
            transport::stamp_received(&mut msg, uac_addr());
            match uas.on_request(msg, Udp, uac_addr(), now) {
                Incoming::Request { tx, msg } => {
                    out.requests_at_uas += 1;
                    let tag = Some("uas");
                    if msg.method() == Some(Method::Invite) && seed % 2 == 1 {
                        uas.respond(tx, response(&msg, 180, tag), now);
                    }
                    let delay = net.rng.millis(0, 3000);
                    tu.push((now + delay, tx, response(&msg, final_status, tag)));
                }
                Incoming::Ack2xx { .. } => out.ack2xx_at_uas += 1,
                Incoming::Absorbed => {}
                Incoming::StrayResponse { .. } => unreachable!("a request is never a response"),
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = tu.into_iter().partition(|(at, ..)| *at <= now);
        tu = later;
        for (_, tx, resp) in due {
            uas.respond(tx, resp, now);
        }
        uac.handle_timeout(now);
        uas.handle_timeout(now);
    }
    out.uac_left = uac.len();
    out.uas_left = uas.len();
    out
}

fn final_statuses(events: &[TxEvent]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            TxEvent::Response { msg, .. } => msg.status().filter(|s| *s >= 200),
            _ => None,
        })
        .collect()
}

fn count(events: &[TxEvent], f: impl Fn(&TxEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Checks one lossy run; returns whether the UAC got its final response.
fn check_run(seed: u64, method: &str, status: u16, o: &Outcome) -> bool {
    let ctx = format!("{method} seed {seed}: {o:?}");
    assert_eq!((o.uac_left, o.uas_left), (0, 0), "{ctx}");
    let finals = final_statuses(&o.uac_events);
    let timeouts = count(&o.uac_events, |e| matches!(e, TxEvent::Timeout { .. }));
    let terminated = count(&o.uac_events, |e| matches!(e, TxEvent::Terminated { .. }));
    // Exactly one outcome: the final response once, or a timeout.
    assert!((finals == [status] && timeouts == 0) || (finals.is_empty() && timeouts == 1), "{ctx}");
    assert_eq!(terminated, 1, "{ctx}");
    // Retransmissions never reach the TU as new requests.
    assert!(o.requests_at_uas <= 1, "{ctx}");
    assert_eq!(o.ack2xx_at_uas, 0, "{ctx}");
    assert_eq!(count(&o.uas_events, |e| matches!(e, TxEvent::Terminated { .. })), o.requests_at_uas, "{ctx}");
    finals.len() == 1
}

#[test]
fn invite_486_ack_survives_loss_duplication_and_reordering() {
    let mut answered = 0;
    for seed in 0..300 {
        let o = lossy_run(seed, "INVITE", 486, 300, 150);
        answered += usize::from(check_run(seed, "INVITE", 486, &o));
    }
    // 30 % loss: almost every call still gets its answer.
    assert!(answered >= 295, "answered {answered}/300");
}

#[test]
fn options_200_survives_loss_duplication_and_reordering() {
    let mut answered = 0;
    for seed in 0..300 {
        let o = lossy_run(seed, "OPTIONS", 200, 300, 150);
        answered += usize::from(check_run(seed, "OPTIONS", 200, &o));
    }
    assert!(answered >= 295, "answered {answered}/300");
}

#[test]
fn on_a_clean_network_every_invite_is_answered_and_acked() {
    for seed in 0..20 {
        let o = lossy_run(seed, "INVITE", 486, 0, 0);
        assert!(check_run(seed, "INVITE", 486, &o));
        assert_eq!(o.requests_at_uas, 1);
        assert!(!o.uas_events.iter().any(|e| matches!(e, TxEvent::AckTimeout { .. })));
    }
}

#[test]
fn with_everything_lost_the_uac_times_out_and_nothing_panics() {
    for seed in 0..5 {
        let o = lossy_run(seed, "INVITE", 486, 1000, 0);
        assert!(!check_run(seed, "INVITE", 486, &o));
        assert_eq!(o.requests_at_uas, 0);
    }
}
