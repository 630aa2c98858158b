//! The call state machine on a virtual clock: no sockets, no sleeping.

use super::*;

fn spec() -> CallSpec {
    let t = |p: u16| Target { transport: Transport::Udp, addr: SocketAddr::from(([127, 0, 0, 1], p)) };
    CallSpec {
        agent: LegSpec {
            request_uri: Uri::parse("sip:agent1@127.0.0.1:25060").unwrap(),
            to: Uri::parse("sip:agent1@127.0.0.1:25060").unwrap(),
            target: t(25060),
            media: SocketAddr::from(([127, 0, 0, 1], 30000)),
        },
        client: LegSpec {
            request_uri: Uri::parse("sip:client1@127.0.0.1:25060").unwrap(),
            to: Uri::parse("sip:client1@127.0.0.1:25060").unwrap(),
            target: t(25060),
            media: SocketAddr::from(([127, 0, 0, 1], 30002)),
        },
        from: Uri::parse("sip:huifang@127.0.0.1").unwrap(),
        contact: Uri::parse("sip:huifang@127.0.0.1:5070").unwrap(),
        credentials: Some(("huifang".into(), "secret".into())),
        auto_answer: AutoAnswer::CallInfo,
        agent_ring: Duration::from_secs(30),
        client_ring: Duration::from_secs(45),
        max_duration: Duration::from_secs(600),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: 101,
        user_agent: "test".into(),
    }
}

fn sdp_answer(port: u16, pt: u8, dir: &str) -> String {
    let name = if pt == 0 { "PCMU" } else { "PCMA" };
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

struct Run {
    m: CallMachine,
    now: Instant,
}

impl Run {
    fn new() -> Run {
        let mut m = CallMachine::new(spec());
        let now = Instant::now();
        m.start(now);
        Run { m, now }
    }
    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.m.poll_output()).collect()
    }
    fn sent(&mut self, leg: Leg) -> Vec<Message> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(l, m, _) if l == leg => Some(m),
                _ => None,
            })
            .collect()
    }
    fn respond(&mut self, leg: Leg, req: &Message, status: u16, tag: &str, body: Option<String>) {
        let mut r = Message::response_to(req, status);
        if status > 100 {
            r.ensure_to_tag(tag);
        }
        if (200..300).contains(&status) {
            r.push(
                "Contact",
                format!("<sip:{leg}@127.0.0.1:{}>", if leg == Leg::Agent { 6000 } else { 6002 }),
            );
        }
        if let Some(b) = body {
            r.set_body("application/sdp", b.into_bytes());
        }
        self.m.on_leg_event(leg, LegEvent::Response(r), self.now);
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.handle_timeout(self.now);
    }
    /// Agent answered, recorder open, client INVITE out: returns (agent INVITE, client INVITE).
    fn ring_client(&mut self) -> (Message, Message) {
        let agent_invite = self.sent(Leg::Agent).pop().unwrap();
        self.respond(Leg::Agent, &agent_invite, 200, "a1", Some(sdp_answer(40000, 0, "sendrecv")));
        let outs = self.outputs();
        assert!(outs.iter().any(|o| matches!(o, Output::StartRecording)), "{outs:?}");
        self.m.on_recording(Ok(()), self.now);
        let client_invite = self.sent(Leg::Client).pop().unwrap();
        self.respond(Leg::Client, &client_invite, 180, "c1", None);
        (agent_invite, client_invite)
    }
    fn bridged(&mut self) -> (Message, Message) {
        let (a, c) = self.ring_client();
        self.respond(Leg::Client, &c, 200, "c1", Some(sdp_answer(40002, 0, "sendrecv")));
        (a, c)
    }
    fn request_from(&mut self, leg: Leg, invite: &Message, method: &str, cseq: u32, body: Option<String>) {
        // A request from the phone in its dialog: From = their tag, To = ours.
        let tag = if leg == Leg::Agent { "a1" } else { "c1" };
        let ours = invite.from_tag().unwrap();
        let mut raw = format!(
            "{method} sip:huifang@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKp{cseq}\r\n\
             From: <sip:x@127.0.0.1>;tag={tag}\r\nTo: <sip:huifang@127.0.0.1>;tag={ours}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:x@127.0.0.1:6000>\r\n",
            invite.call_id().unwrap()
        );
        let body = body.unwrap_or_default();
        if !body.is_empty() {
            raw.push_str("Content-Type: application/sdp\r\n");
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let msg = Message::parse(raw.as_bytes()).unwrap();
        self.m.on_leg_event(leg, LegEvent::Request(TxId(900 + cseq as u64), msg), self.now);
    }
}

fn responses(outs: &[Output]) -> Vec<u16> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Respond(_, m) => m.status(),
            _ => None,
        })
        .collect()
}

#[test]
fn agent_invite_carries_offer_and_auto_answer_hint() {
    let mut r = Run::new();
    let inv = r.sent(Leg::Agent).pop().unwrap();
    assert_eq!(inv.method(), Some(Method::Invite));
    assert!(inv.header("Call-Info").unwrap().contains("answer-after=0"));
    let body = String::from_utf8_lossy(&inv.body).to_string();
    assert!(body.contains("m=audio 30000 RTP/AVP 0 8 101"), "{body}");
    assert!(inv.header("Via").is_none(), "the endpoint adds the Via");
}

#[test]
fn full_call_client_hangs_up_first() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.ring_client();
    // The client is offered exactly the agent's codec.
    let body = String::from_utf8_lossy(&client_invite.body).to_string();
    assert!(body.contains("m=audio 30002 RTP/AVP 0 101"), "{body}");
    assert!(client_invite.header("Call-Info").is_none());
    assert_ne!(client_invite.call_id(), agent_invite.call_id(), "two legs, two Call-IDs");
    r.respond(Leg::Client, &client_invite, 200, "c1", Some(sdp_answer(40002, 0, "sendrecv")));
    let outs = r.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::Trace(Trace::Answered))));
    assert!(outs.iter().any(|o| matches!(o, Output::Media(MediaCmd::Forwarding(true, true)))));
    assert!(
        outs.iter().any(|o| matches!(o, Output::Send(Leg::Client, m, _) if m.method() == Some(Method::Ack)))
    );
    assert!(r.m.is_bridged());

    r.request_from(Leg::Client, &client_invite, "BYE", 1, None);
    let outs = r.outputs();
    assert_eq!(responses(&outs), vec![200]);
    let bye = outs
        .iter()
        .find_map(|o| match o {
            Output::Send(Leg::Agent, m, _) if m.method() == Some(Method::Bye) => Some(m.clone()),
            _ => None,
        })
        .expect("BYE to the agent");
    assert_eq!(r.m.outcome().unwrap().0, Outcome::Completed);
    assert!(!r.m.is_done(), "waits for the agent's answer to BYE");
    r.respond(Leg::Agent, &bye, 200, "a1", None);
    assert!(r.m.is_done());
}

#[test]
fn agent_hangs_up_first() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.bridged();
    r.outputs();
    r.request_from(Leg::Agent, &agent_invite, "BYE", 1, None);
    let bye = r.sent(Leg::Client).pop().unwrap();
    assert_eq!(bye.method(), Some(Method::Bye));
    assert_eq!(bye.call_id(), client_invite.call_id());
    r.respond(Leg::Client, &bye, 200, "c1", None);
    assert!(r.m.is_done());
    assert_eq!(r.m.outcome().unwrap().0, Outcome::Completed);
}

#[test]
fn agent_unavailable_ends_without_calling_the_client() {
    let mut r = Run::new();
    let inv = r.sent(Leg::Agent).pop().unwrap();
    r.respond(Leg::Agent, &inv, 480, "a1", None);
    assert!(r.m.is_done());
    assert_eq!(r.m.outcome().unwrap().0, Outcome::AgentUnavailable);
    assert!(r.sent(Leg::Client).is_empty());
}

#[test]
fn agent_ring_timeout_cancels() {
    let mut r = Run::new();
    let inv = r.sent(Leg::Agent).pop().unwrap();
    r.respond(Leg::Agent, &inv, 180, "a1", None);
    r.advance(Duration::from_secs(30));
    let outs = r.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::Cancel(Leg::Agent))));
    r.respond(Leg::Agent, &inv, 487, "a1", None);
    assert!(r.m.is_done());
    assert_eq!(r.m.outcome().unwrap().0, Outcome::AgentUnavailable);
}

#[test]
fn client_busy_rejected_unreachable() {
    for (status, outcome) in
        [(486, Outcome::Busy), (603, Outcome::Rejected), (404, Outcome::Unreachable), (500, Outcome::Failed)]
    {
        let mut r = Run::new();
        let (_, client_invite) = r.ring_client();
        r.outputs();
        r.respond(Leg::Client, &client_invite, status, "c1", None);
        assert_eq!(r.m.outcome().unwrap().0, outcome, "{status}");
        let bye = r.sent(Leg::Agent).pop().expect("the agent is hung up");
        assert_eq!(bye.method(), Some(Method::Bye));
        r.respond(Leg::Agent, &bye, 200, "a1", None);
        assert!(r.m.is_done());
    }
}

#[test]
fn client_no_answer_cancels_then_ends() {
    let mut r = Run::new();
    let (_, client_invite) = r.ring_client();
    r.outputs();
    r.advance(Duration::from_secs(45));
    let outs = r.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::Cancel(Leg::Client))));
    let bye = outs
        .into_iter()
        .find_map(|o| match o {
            Output::Send(Leg::Agent, m, _) => Some(m),
            _ => None,
        })
        .unwrap();
    r.respond(Leg::Agent, &bye, 200, "a1", None);
    assert!(!r.m.is_done(), "waits for the client's 487");
    r.respond(Leg::Client, &client_invite, 487, "c1", None);
    assert!(r.m.is_done());
    assert_eq!(r.m.outcome().unwrap().0, Outcome::NoAnswer);
}

#[test]
fn agent_hangs_up_while_client_rings() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.ring_client();
    r.outputs();
    r.request_from(Leg::Agent, &agent_invite, "BYE", 1, None);
    let outs = r.outputs();
    assert_eq!(responses(&outs), vec![200]);
    assert!(outs.iter().any(|o| matches!(o, Output::Cancel(Leg::Client))));
    assert_eq!(r.m.outcome().unwrap().0, Outcome::Cancelled);
    r.respond(Leg::Client, &client_invite, 487, "c1", None);
    assert!(r.m.is_done());
}

#[test]
fn answer_racing_the_cancel_is_acked_and_hung_up() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.ring_client();
    r.request_from(Leg::Agent, &agent_invite, "BYE", 1, None);
    r.outputs();
    r.respond(Leg::Client, &client_invite, 200, "c1", Some(sdp_answer(40002, 0, "sendrecv")));
    let sent: Vec<Method> = r.sent(Leg::Client).iter().filter_map(|m| m.method()).collect();
    assert_eq!(sent, vec![Method::Ack, Method::Bye]);
}

#[test]
fn recorder_cannot_open_fails_closed() {
    let mut r = Run::new();
    let inv = r.sent(Leg::Agent).pop().unwrap();
    r.respond(Leg::Agent, &inv, 200, "a1", Some(sdp_answer(40000, 0, "sendrecv")));
    r.outputs();
    r.m.on_recording(Err("disk full".into()), r.now);
    // invariant E1: no client INVITE without an open recording.
    let outs = r.outputs();
    assert!(!outs.iter().any(|o| matches!(o, Output::Send(Leg::Client, _, _))), "{outs:?}");
    assert_eq!(r.m.outcome().unwrap().0, Outcome::RecordingFailed);
}

#[test]
fn recorder_failure_mid_call_ends_both_legs() {
    let mut r = Run::new();
    r.bridged();
    r.outputs();
    r.m.on_recorder_failed("I/O error", r.now);
    let outs = r.outputs();
    let byes =
        outs.iter().filter(|o| matches!(o, Output::Send(_, m, _) if m.method() == Some(Method::Bye))).count();
    assert_eq!(byes, 2);
    assert_eq!(r.m.outcome().unwrap().0, Outcome::RecordingFailed);
}

#[test]
fn proxy_challenge_is_answered_once() {
    let mut r = Run::new();
    let inv = r.sent(Leg::Agent).pop().unwrap();
    let mut chal = Message::response_to(&inv, 407);
    chal.ensure_to_tag("px");
    chal.push("Proxy-Authenticate", "Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\"");
    r.m.on_leg_event(Leg::Agent, LegEvent::Response(chal.clone()), r.now);
    let retry = r.sent(Leg::Agent).pop().expect("INVITE with credentials");
    assert_eq!(retry.cseq().unwrap().seq, 2);
    assert_eq!(retry.call_id(), inv.call_id());
    assert_eq!(retry.from_tag(), inv.from_tag());
    assert!(retry.header("Proxy-Authorization").unwrap().contains("username=\"huifang\""));
    // A second plain challenge means the credentials are wrong.
    let mut chal2 = Message::response_to(&retry, 407);
    chal2.ensure_to_tag("px");
    chal2.push("Proxy-Authenticate", "Digest realm=\"127.0.0.1\", nonce=\"abd\", qop=\"auth\"");
    r.m.on_leg_event(Leg::Agent, LegEvent::Response(chal2), r.now);
    assert_eq!(r.m.outcome().unwrap().0, Outcome::AgentUnavailable);
}

#[test]
fn hold_from_agent_is_answered_and_carried_to_the_client() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.bridged();
    r.outputs();
    r.request_from(Leg::Agent, &agent_invite, "INVITE", 2, Some(sdp_answer(40000, 0, "sendonly")));
    let outs = r.outputs();
    let ok = outs
        .iter()
        .find_map(|o| match o {
            Output::Respond(_, m) if m.status() == Some(200) => Some(m.clone()),
            _ => None,
        })
        .expect("200 to the re-INVITE");
    assert!(String::from_utf8_lossy(&ok.body).contains("a=recvonly"));
    let reinvite = outs
        .iter()
        .find_map(|o| match o {
            Output::Send(Leg::Client, m, _) if m.method() == Some(Method::Invite) => Some(m.clone()),
            _ => None,
        })
        .expect("re-INVITE to the client");
    assert_eq!(reinvite.call_id(), client_invite.call_id());
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendonly"));
    r.respond(Leg::Client, &reinvite, 200, "c1", Some(sdp_answer(40002, 0, "recvonly")));
    let acks = r.sent(Leg::Client);
    assert!(acks.iter().any(|m| m.method() == Some(Method::Ack)));
    assert!(r.m.is_bridged(), "hold does not end the call");
    // Unhold.
    r.request_from(Leg::Agent, &agent_invite, "INVITE", 3, Some(sdp_answer(40000, 0, "sendrecv")));
    let outs = r.outputs();
    assert!(outs.iter().any(|o| matches!(o, Output::Send(Leg::Client, m, _)
        if m.method() == Some(Method::Invite) && String::from_utf8_lossy(&m.body).contains("a=sendrecv"))));
}

#[test]
fn max_duration_hangs_up_both() {
    let mut r = Run::new();
    r.bridged();
    r.outputs();
    r.advance(Duration::from_secs(600));
    let outs = r.outputs();
    let byes =
        outs.iter().filter(|o| matches!(o, Output::Send(_, m, _) if m.method() == Some(Method::Bye))).count();
    assert_eq!(byes, 2);
    assert_eq!(r.m.outcome().unwrap().0, Outcome::Completed);
    // Nobody answers the BYEs: the grace period ends the call anyway.
    r.advance(ENDING_GRACE);
    assert!(r.m.is_done());
}

#[test]
fn stray_request_outside_the_dialog_gets_481() {
    let mut r = Run::new();
    let (agent_invite, _) = r.bridged();
    r.outputs();
    let mut other = agent_invite.clone();
    other.set("Call-ID", "somewhere-else");
    r.request_from(Leg::Agent, &other, "BYE", 1, None);
    assert_eq!(responses(&r.outputs()), vec![481]);
    assert!(r.m.is_bridged());
}

#[test]
fn shutdown_interrupts() {
    let mut r = Run::new();
    r.bridged();
    r.outputs();
    r.m.hang_up(r.now);
    assert_eq!(r.m.outcome().unwrap().0, Outcome::Interrupted);
}

#[test]
fn codec_change_is_carried_to_the_other_leg() {
    let mut r = Run::new();
    let (agent_invite, client_invite) = r.bridged();
    r.outputs();
    r.request_from(Leg::Agent, &agent_invite, "INVITE", 2, Some(sdp_answer(40000, 8, "sendrecv")));
    let outs = r.outputs();
    let ok = outs
        .iter()
        .find_map(|o| match o {
            Output::Respond(_, m) if m.status() == Some(200) => Some(m.clone()),
            _ => None,
        })
        .expect("200 to the re-INVITE");
    assert!(String::from_utf8_lossy(&ok.body).contains("RTP/AVP 8"));
    let reinvite = outs
        .iter()
        .find_map(|o| match o {
            Output::Send(Leg::Client, m, _) if m.method() == Some(Method::Invite) => Some(m.clone()),
            _ => None,
        })
        .expect("re-INVITE to the client with the new codec");
    assert_eq!(reinvite.call_id(), client_invite.call_id());
    assert!(String::from_utf8_lossy(&reinvite.body).contains("RTP/AVP 8 101"));
}
