//! The softphone's user agent on a virtual clock: no sockets, no sleeping.
//! The other side is written by hand, or is huifang's own registrar core.

use super::*;
use crate::sip::auth::{Algorithm, Credentials, DigestServer, Verdict};
use crate::sip::registrar::{Registrar, RegistrarConfig};

const PEER: &str = "127.0.0.1:5070";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> PhoneConfig {
    PhoneConfig {
        transport: Transport::Udp,
        local: addr("127.0.0.1:6100"),
        user: "agent1".into(),
        password: Some("secret".into()),
        registrar: None,
        answer_after: Some(Duration::from_secs(1)),
        hangup_after: Some(Duration::from_secs(3)),
        ring_timeout: Duration::from_secs(20),
        max_calls: None,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: Some(101),
        user_agent: "test".into(),
        timers: TimerConfig::default(),
    }
}

fn offer(port: u16) -> String {
    format!(
        "v=0\r\no=huifang 1 1 IN IP4 127.0.0.1\r\ns=huifang\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// A request from the peer; `to_tag` puts it in a dialog.
fn request(
    method: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    branch: &str,
    body: &str,
) -> Message {
    let to = match to_tag {
        Some(t) => format!("<sip:agent1@127.0.0.1:6100>;tag={t}"),
        None => "<sip:agent1@127.0.0.1:6100>".to_string(),
    };
    let mut raw = format!(
        "{method} sip:agent1@127.0.0.1:6100 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"huifang\" <sip:huifang@127.0.0.1>;tag=hf1\r\nTo: {to}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:huifang@{PEER}>\r\n"
    );
    if !body.is_empty() {
        raw.push_str("Content-Type: application/sdp\r\n");
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Message::parse(raw.as_bytes()).expect("a well-formed test request")
}

struct Run {
    phone: Phone,
    now: Instant,
}

impl Run {
    fn new(cfg: PhoneConfig) -> Run {
        let now = Instant::now();
        let mut phone = Phone::new(cfg);
        phone.start(now);
        Run { phone, now }
    }
    fn sent(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.phone.poll_transmit()).collect()
    }
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.phone.poll_event()).collect()
    }
    fn deliver(&mut self, msg: Message) {
        self.phone.on_message(msg, Transport::Udp, addr(PEER), self.now);
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.phone.handle_timeout(self.now);
    }
    fn statuses(&mut self) -> Vec<u16> {
        self.sent().iter().filter_map(|t| t.msg.status()).collect()
    }
}

/// The phone's one message goes to the registrar core and its answer back.
fn exchange(run: &mut Run, registrar: &mut Registrar) -> (Message, u16) {
    let source = Target { transport: Transport::Udp, addr: addr("127.0.0.1:6100") };
    let t = only(run.sent());
    assert_eq!(t.target.addr, addr(PEER));
    assert_eq!(t.msg.method(), Some(Method::Register));
    let (resp, _) = registrar.on_register(&t.msg, source, run.now);
    let status = resp.status().unwrap();
    run.deliver(resp);
    (t.msg, status)
}

fn only<T: std::fmt::Debug>(mut v: Vec<T>) -> T {
    assert_eq!(v.len(), 1, "want exactly one, got {v:?}");
    v.pop().unwrap()
}

#[test]
fn registers_with_digest_to_huifangs_registrar_and_unregisters() {
    for algorithms in [vec![Algorithm::Md5], vec![Algorithm::Sha256, Algorithm::Md5]] {
        let mut cfg = config();
        cfg.registrar = Some(RegistrarSpec {
            uri: Uri::parse("sip:127.0.0.1:5070").unwrap(),
            target: Target { transport: Transport::Udp, addr: addr(PEER) },
            domain: "127.0.0.1".into(),
            expires: 600,
        });
        let mut run = Run::new(cfg);
        let mut registrar = Registrar::new(
            RegistrarConfig {
                realm: "huifang".into(),
                min_expires: 60,
                max_expires: 3600,
                nonce_lifetime: Duration::from_secs(300),
                algorithms: algorithms.clone(),
                guess: Default::default(),
            },
            vec![("agent1".into(), "secret".into())],
            run.now,
        );
        let (first, status) = exchange(&mut run, &mut registrar);
        assert_eq!(status, 401, "the first REGISTER is challenged");
        assert!(first.header("Authorization").is_none());
        let (second, status) = exchange(&mut run, &mut registrar);
        assert_eq!(status, 200);
        let auth = second.header("Authorization").unwrap();
        assert!(auth.contains(algorithms[0].as_str()), "answered the strongest challenge: {auth}");
        assert!(
            run.events()
                .iter()
                .any(|e| matches!(e, Event::Registration(RegState::Registered { expires: 600 })))
        );
        let bindings = registrar.lookup("agent1", run.now);
        assert_eq!(bindings[0].contact.as_str(), "sip:agent1@127.0.0.1:6100");

        run.phone.shutdown(run.now);
        assert!(!run.phone.is_finished());
        let (bye, status) = exchange(&mut run, &mut registrar);
        assert_eq!(bye.header("Expires"), Some("0"));
        // The nonce is still good: unregistering needs no new challenge.
        assert!(status == 200 || status == 401, "{status}");
        if status == 401 {
            exchange(&mut run, &mut registrar);
        }
        assert!(registrar.lookup("agent1", run.now).is_empty(), "binding withdrawn");
        assert!(run.phone.is_finished());
    }
}

#[test]
fn answers_after_its_delay_retransmits_until_ack_and_hangs_up() {
    let mut run = Run::new(config());
    run.deliver(request("INVITE", "c1", 1, None, "i1", &offer(40000)));
    let ringing = only(run.sent());
    assert_eq!(ringing.msg.status(), Some(180));
    assert_eq!(ringing.target.addr, addr(PEER));
    let tag = ringing.msg.to_tag().expect("180 carries our tag");
    assert!(ringing.msg.header("Contact").unwrap().contains("sip:agent1@127.0.0.1:6100"));
    let call = match only(run.events()) {
        Event::Incoming(c) => c,
        e => panic!("{e:?}"),
    };
    // Not before its time, and not without media.
    run.advance(Duration::from_millis(1200));
    assert!(run.statuses().iter().all(|&s| s < 200), "answered without an RTP port");
    run.phone.set_media(call, addr("127.0.0.1:41000"), run.now);
    let ok = only(run.sent()).msg;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.to_tag().as_deref(), Some(tag.as_str()));
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(body.contains("m=audio 41000 RTP/AVP 8"), "answer keeps the offerer's first codec:\n{body}");
    match only(run.events()) {
        Event::Up(c, n) => {
            assert_eq!(c, call);
            assert_eq!(n.remote, addr("127.0.0.1:40000"));
            assert_eq!((n.codec, n.pt, n.telephone_event), (Codec::Pcma, 8, Some(101)));
        }
        e => panic!("{e:?}"),
    }
    // No ACK yet: the 200 again after T1, then after 2·T1.
    run.advance(Duration::from_millis(500));
    assert_eq!(run.statuses(), vec![200]);
    run.advance(Duration::from_millis(999));
    assert!(run.statuses().is_empty());
    run.advance(Duration::from_millis(1));
    assert_eq!(run.statuses(), vec![200]);
    run.deliver(request("ACK", "c1", 1, Some(&tag), "a1", ""));
    run.advance(Duration::from_secs(1));
    assert!(run.sent().is_empty(), "the ACK stops the retransmissions");
    // hangup_after counts from the answer (3 s; 2.5 s went by).
    run.advance(Duration::from_millis(600));
    let bye = only(run.sent());
    assert_eq!(bye.msg.method(), Some(Method::Bye));
    assert_eq!(bye.target.addr, addr(PEER), "to the peer's Contact");
    assert_eq!(bye.msg.from_tag().as_deref(), Some(tag.as_str()));
    assert_eq!(bye.msg.to_tag().as_deref(), Some("hf1"));
    assert!(run.events().is_empty(), "the call ends with the BYE's answer");
    run.deliver(Message::response_to(&bye.msg, 200));
    match only(run.events()) {
        Event::Ended(c, s) => {
            assert_eq!(c, call);
            assert_eq!(s.reason, EndReason::LocalHangup);
            assert_eq!(s.direction, CallDirection::Incoming);
            assert_eq!(s.status, Some(200));
            assert!(s.answered.is_some());
            assert_eq!(s.remote, "sip:huifang@127.0.0.1");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(run.phone.active_calls(), 0);
}

#[test]
fn a_bye_from_the_other_side_ends_the_call() {
    let mut cfg = config();
    cfg.answer_after = Some(Duration::ZERO);
    cfg.hangup_after = None;
    let mut run = Run::new(cfg);
    run.deliver(request("INVITE", "c2", 1, None, "i2", &offer(40000)));
    let call = match only(run.events()) {
        Event::Incoming(c) => c,
        e => panic!("{e:?}"),
    };
    run.phone.set_media(call, addr("127.0.0.1:41000"), run.now);
    let sent = run.sent();
    let tag = sent.last().unwrap().msg.to_tag().unwrap();
    assert_eq!(sent.iter().filter_map(|t| t.msg.status()).collect::<Vec<_>>(), vec![180, 200]);
    run.deliver(request("ACK", "c2", 1, Some(&tag), "a2", ""));
    run.events();
    run.advance(Duration::from_secs(60));
    assert!(run.sent().is_empty(), "no hang-up of its own");
    run.deliver(request("BYE", "c2", 2, Some(&tag), "b2", ""));
    assert_eq!(run.statuses(), vec![200]);
    match only(run.events()) {
        Event::Ended(_, s) => assert_eq!(s.reason, EndReason::RemoteHangup),
        e => panic!("{e:?}"),
    }
    // A BYE for a call that is gone: 481.
    run.deliver(request("BYE", "c2", 3, Some(&tag), "b3", ""));
    assert_eq!(run.statuses(), vec![481]);
}

#[test]
fn a_cancel_before_the_answer_ends_it_487() {
    let mut run = Run::new(config());
    run.deliver(request("INVITE", "c3", 1, None, "i3", &offer(40000)));
    let call = match only(run.events()) {
        Event::Incoming(c) => c,
        e => panic!("{e:?}"),
    };
    run.phone.set_media(call, addr("127.0.0.1:41000"), run.now);
    assert_eq!(run.statuses(), vec![180]);
    run.deliver(request("CANCEL", "c3", 1, None, "i3", ""));
    let mut statuses = run.statuses();
    statuses.sort();
    assert_eq!(statuses, vec![200, 487], "200 for the CANCEL, 487 for the INVITE");
    match only(run.events()) {
        Event::Ended(c, s) => {
            assert_eq!(c, call);
            assert_eq!(s.reason, EndReason::Cancelled);
            assert!(s.answered.is_none());
        }
        e => panic!("{e:?}"),
    }
    run.advance(Duration::from_secs(2));
    assert!(run.statuses().iter().all(|&s| s != 200), "never answered after the CANCEL");
}

#[test]
fn refuses_calls_it_does_not_take() {
    let mut cfg = config();
    cfg.answer_after = None;
    let mut run = Run::new(cfg);
    run.deliver(request("INVITE", "c4", 1, None, "i4", &offer(40000)));
    assert_eq!(run.statuses(), vec![486]);
    assert!(run.events().is_empty());

    let mut cfg = config();
    cfg.max_calls = Some(1);
    let mut run = Run::new(cfg);
    run.deliver(request("INVITE", "c5", 1, None, "i5", &offer(40000)));
    assert_eq!(run.statuses(), vec![180]);
    run.deliver(request("INVITE", "c6", 1, None, "i6", &offer(40002)));
    assert_eq!(run.statuses(), vec![486], "past max_calls");

    // Nothing in common: 488.
    let mut run = Run::new(config());
    let g722 = offer(40000).replace("RTP/AVP 8 0 101", "RTP/AVP 9").replace("a=rtpmap:8 PCMA/8000\r\n", "");
    let g722 = g722.replace("a=rtpmap:0 PCMU/8000\r\n", "");
    run.deliver(request("INVITE", "c7", 1, None, "i7", &g722));
    assert_eq!(run.statuses(), vec![488]);
}

#[test]
fn an_offerless_invite_gets_our_offer_and_the_ack_answers() {
    let mut cfg = config();
    cfg.answer_after = Some(Duration::ZERO);
    let mut run = Run::new(cfg);
    run.deliver(request("INVITE", "c8", 1, None, "i8", ""));
    let call = match only(run.events()) {
        Event::Incoming(c) => c,
        e => panic!("{e:?}"),
    };
    run.phone.set_media(call, addr("127.0.0.1:41000"), run.now);
    let ok = run.sent().pop().unwrap().msg;
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 41000 RTP/AVP 0 8 101"));
    assert!(run.events().is_empty(), "no media before the answer");
    let mut ack = request("ACK", "c8", 1, ok.to_tag().as_deref(), "a8", &offer(40004));
    ack.set_body("application/sdp", offer(40004).replace("RTP/AVP 8 0 101", "RTP/AVP 0").into_bytes());
    run.deliver(ack);
    match only(run.events()) {
        Event::Up(_, n) => assert_eq!((n.remote, n.codec), (addr("127.0.0.1:40004"), Codec::Pcmu)),
        e => panic!("{e:?}"),
    }
}

#[test]
fn dials_answers_a_proxy_challenge_and_acks_the_200() {
    let mut run = Run::new(config());
    let server = DigestServer::new("kamailio", Duration::from_secs(60), run.now);
    let uri = Uri::parse("sip:client1@127.0.0.1:5070").unwrap();
    let call = run.phone.dial(uri, addr("127.0.0.1:41002"), run.now).expect("somewhere to send it");
    let invite = only(run.sent());
    assert_eq!(invite.target.addr, addr(PEER));
    assert!(invite.msg.header("Proxy-Authorization").is_none());
    assert!(String::from_utf8_lossy(&invite.msg.body).contains("m=audio 41002 RTP/AVP 0 8 101"));
    let mut challenge = Message::response_to(&invite.msg, 407);
    challenge.ensure_to_tag("k1");
    challenge.push("Proxy-Authenticate", server.challenge(run.now, false, Algorithm::Md5).to_string());
    run.deliver(challenge);
    let sent = run.sent();
    assert_eq!(sent.len(), 2, "the ACK for the 407 and the new INVITE: {sent:?}");
    let invite2 = sent.into_iter().find(|t| t.msg.method() == Some(Method::Invite)).unwrap().msg;
    assert_eq!(invite2.cseq().unwrap().seq, 2);
    assert_eq!(invite2.call_id(), invite.msg.call_id());
    let creds: Credentials = invite2.header("Proxy-Authorization").unwrap().parse().unwrap();
    let verdict = server.verify(&creds, "INVITE", |u| (u == "agent1").then(|| "secret".into()), run.now);
    assert!(matches!(verdict, Verdict::Ok { .. }), "{verdict:?}");

    let mut ringing = Message::response_to(&invite2, 180);
    ringing.ensure_to_tag("c1");
    run.deliver(ringing);
    assert!(run.events().is_empty());
    let mut ok = Message::response_to(&invite2, 200);
    ok.ensure_to_tag("c1");
    ok.push("Contact", "<sip:client1@127.0.0.1:6200>");
    ok.set_body("application/sdp", offer(40010).replace("RTP/AVP 8 0 101", "RTP/AVP 0 101").into_bytes());
    run.deliver(ok.clone());
    let ack = only(run.sent());
    assert_eq!(ack.msg.method(), Some(Method::Ack));
    assert_eq!(ack.msg.cseq().unwrap().seq, 2);
    assert_eq!(ack.target.addr, addr("127.0.0.1:6200"), "in-dialog requests go to the Contact");
    match only(run.events()) {
        Event::Up(c, n) => {
            assert_eq!(c, call);
            assert_eq!((n.remote, n.codec), (addr("127.0.0.1:40010"), Codec::Pcmu));
        }
        e => panic!("{e:?}"),
    }
    // A retransmitted 200 gets the same ACK again.
    run.deliver(ok);
    assert_eq!(only(run.sent()).msg.method(), Some(Method::Ack));
    // The callee hangs up.
    let mut bye = request("BYE", invite2.call_id().unwrap(), 1, None, "b9", "");
    bye.set("From", "<sip:client1@127.0.0.1>;tag=c1");
    let our_tag = invite2.from_tag().unwrap();
    bye.set("To", format!("<sip:agent1@127.0.0.1>;tag={our_tag}"));
    run.deliver(bye);
    assert_eq!(run.statuses(), vec![200]);
    match only(run.events()) {
        Event::Ended(_, s) => {
            assert_eq!(s.reason, EndReason::RemoteHangup);
            assert_eq!(s.direction, CallDirection::Outgoing);
            assert_eq!(s.remote, "sip:client1@127.0.0.1:5070");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_rejected_dial_and_a_dial_that_rings_too_long() {
    let mut run = Run::new(config());
    run.phone.dial(Uri::parse("sip:x@127.0.0.1:5070").unwrap(), addr("127.0.0.1:41002"), run.now);
    let invite = only(run.sent()).msg;
    let mut busy = Message::response_to(&invite, 486);
    busy.ensure_to_tag("b");
    run.deliver(busy);
    match only(run.events()) {
        Event::Ended(_, s) => assert_eq!((s.reason, s.status), (EndReason::Rejected(486), Some(486))),
        e => panic!("{e:?}"),
    }

    run.phone.dial(Uri::parse("sip:y@127.0.0.1:5070").unwrap(), addr("127.0.0.1:41004"), run.now);
    let invite = run.sent().pop().unwrap().msg;
    let mut ringing = Message::response_to(&invite, 180);
    ringing.ensure_to_tag("r");
    run.deliver(ringing);
    run.advance(Duration::from_secs(20));
    let cancel = run.sent().into_iter().find(|t| t.msg.method() == Some(Method::Cancel)).expect("CANCEL");
    run.deliver(Message::response_to(&cancel.msg, 200));
    let mut terminated = Message::response_to(&invite, 487);
    terminated.ensure_to_tag("r");
    run.deliver(terminated);
    match only(run.events()) {
        Event::Ended(_, s) => assert_eq!(s.reason, EndReason::NoAnswer),
        e => panic!("{e:?}"),
    }
    // Without a registrar, a URI without an address cannot be dialled.
    assert!(
        run.phone.dial(Uri::parse("sip:z@example.invalid").unwrap(), addr("127.0.0.1:1"), run.now).is_none()
    );
}

#[test]
fn shutdown_ends_every_call() {
    let mut cfg = config();
    cfg.answer_after = Some(Duration::from_secs(5));
    let mut run = Run::new(cfg);
    run.deliver(request("INVITE", "r1", 1, None, "r1", &offer(40000)));
    let ringing_call = match only(run.events()) {
        Event::Incoming(c) => c,
        e => panic!("{e:?}"),
    };
    run.sent();
    run.phone.dial(Uri::parse("sip:z@127.0.0.1:5070").unwrap(), addr("127.0.0.1:41006"), run.now);
    let invite = only(run.sent()).msg;
    let mut trying = Message::response_to(&invite, 100);
    trying.remove("To");
    trying.push("To", invite.header("To").unwrap().to_string());
    run.deliver(trying);
    run.phone.shutdown(run.now);
    let sent = run.sent();
    assert!(sent.iter().any(|t| t.msg.status() == Some(480)), "the ringing call is refused: {sent:?}");
    let cancel = sent.iter().find(|t| t.msg.method() == Some(Method::Cancel)).expect("the dial is cancelled");
    let ended = run.events();
    assert!(
        ended.iter().any(
            |e| matches!(e, Event::Ended(c, s) if *c == ringing_call && s.reason == EndReason::Shutdown)
        )
    );
    assert!(!run.phone.is_finished(), "the CANCEL waits for its answer");
    run.deliver(Message::response_to(&cancel.msg, 200));
    let mut t = Message::response_to(&invite, 487);
    t.ensure_to_tag("z");
    run.deliver(t);
    assert!(run.events().iter().any(|e| matches!(e, Event::Ended(_, s) if s.reason == EndReason::Shutdown)));
    // Late transactions drain with time (the 480 waits for its ACK).
    run.advance(Duration::from_secs(40));
    assert!(run.phone.is_finished());
    // New calls are refused.
    run.deliver(request("INVITE", "r2", 1, None, "r2", &offer(40000)));
    assert_eq!(run.statuses(), vec![486]);
}
