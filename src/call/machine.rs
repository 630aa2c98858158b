//! The call state machine (sans-IO): one recorded callback call, two legs.
//!
//! ```text
//!  start ─► INVITE agent ──2xx──► ACK, StartRecording ──ready──► INVITE client ──2xx──► ACK, bridge
//!              │ non-2xx/timeout        │ failed                    │ 183: early media   │ BYE either side
//!              ▼                        ▼                           ▼ non-2xx/timeout    ▼
//!       agent-unavailable        BYE agent,                  BYE agent, outcome     BYE the other,
//!                                recording-failed            by status              completed
//! ```
//!
//! ## Driving contract
//! The driver ([`super::task`]) feeds the machine and executes its outputs:
//! - [`CallMachine::start`] once; it emits the agent INVITE.
//! - Every SIP event of a leg goes to [`CallMachine::on_leg_event`]; the
//!   driver finds the leg from the Call-ID with [`CallMachine::leg_of`].
//! - [`Output::StartRecording`] asks the driver to open the recorder; it
//!   answers with [`CallMachine::on_recording`] (E1: the client is called
//!   only after the file is open; an error ends the call fail-closed).
//! - Media trouble (recorder failure mid-call) goes to
//!   [`CallMachine::on_recorder_failed`]; a shutdown to
//!   [`CallMachine::hang_up`].
//! - [`CallMachine::handle_timeout`] when [`CallMachine::poll_timeout`] is
//!   due. After every input drain [`CallMachine::poll_output`] until `None`.
//! - The call is over when [`CallMachine::is_done`]; [`CallMachine::outcome`]
//!   is then set (exactly one outcome per attempt, E2).
//!
//! The machine builds complete requests except the top Via, which the
//! endpoint adds (it knows the transport and picks the branch).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Leg, Outcome};
use crate::media::g711::Codec;
use crate::media::sdp::{self, Direction, LocalSession, Negotiated};
use crate::sip::auth::{Challenge, DigestClient, pick, should_retry};
use crate::sip::dialog::{Dialog, DialogState, new_tag};
use crate::sip::msg::{Message, Method, NameAddr, Uri, reason_phrase};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Target, Transport};

/// Methods we accept in a dialog, for `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// How long we wait for BYE/CANCEL answers before calling the legs ended.
const ENDING_GRACE: Duration = Duration::from_secs(8);

/// How the agent's phone is asked to answer by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoAnswer {
    /// `Call-Info: <sip:…>;answer-after=0`
    CallInfo,
    /// `Alert-Info: <http://127.0.0.1/>;info=alert-autoanswer`
    AlertInfo,
    /// Both headers.
    Both,
    /// No hint: the agent answers by hand.
    None,
}

/// Where and how one leg is called.
#[derive(Debug, Clone)]
pub struct LegSpec {
    /// Request-URI of the INVITE.
    pub request_uri: Uri,
    /// The callee's address of record (To).
    pub to: Uri,
    /// Where the INVITE goes (the switch, or the phone itself).
    pub target: Target,
    /// Our relay's RTP address for this leg.
    pub media: SocketAddr,
}

/// Everything a call needs to know.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// The agent leg.
    pub agent: LegSpec,
    /// The client leg.
    pub client: LegSpec,
    /// Our identity (From).
    pub from: Uri,
    /// Our Contact.
    pub contact: Uri,
    /// Digest credentials for 401/407 from the switch.
    pub credentials: Option<(String, String)>,
    /// Auto-answer hint for the agent.
    pub auto_answer: AutoAnswer,
    /// How long the agent's phone may ring.
    pub agent_ring: Duration,
    /// How long the client's phone may ring.
    pub client_ring: Duration,
    /// Longest conversation.
    pub max_duration: Duration,
    /// Codecs offered to the agent, in order.
    pub codecs: Vec<Codec>,
    /// Payload type offered for telephone-event.
    pub telephone_event: u8,
    /// User-Agent header.
    pub user_agent: String,
}

/// What happened on a leg (delivered by the endpoint).
#[derive(Debug)]
pub enum LegEvent {
    /// A response to a request we sent on this leg.
    Response(Message),
    /// A request of ours got no final response in time (or the transport failed).
    Timeout(Method),
    /// A request from the leg's phone, on server transaction `tx`.
    Request(TxId, Message),
    /// An ACK for a 2xx we sent.
    Ack(Message),
}

/// Media instructions for the driver's relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCmd {
    /// Where a leg's media goes and what its payload types mean.
    Remote {
        /// The leg.
        leg: Leg,
        /// What was negotiated.
        negotiated: Negotiated,
    },
    /// What may flow: agent→client and client→agent.
    Forwarding(bool, bool),
}

/// What the call wants recorded in the trace (the driver stamps the time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// The leg's first INVITE is leaving.
    Invited(Leg),
    /// The last SIP status of a leg's INVITE changed.
    LegStatus(Leg, u16),
    /// The client answered: the conversation starts.
    Answered,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send a request on a leg (the endpoint adds the Via).
    Send(Leg, Message, Target),
    /// Answer a request of a leg.
    Respond(TxId, Message),
    /// CANCEL the pending INVITE of a leg.
    Cancel(Leg),
    /// Adjust the relay.
    Media(MediaCmd),
    /// Open the recorder, then call [`CallMachine::on_recording`].
    StartRecording,
    /// Record this in the trace.
    Trace(Trace),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not called yet.
    Idle,
    /// INVITE sent, no final response.
    Inviting,
    /// Dialog confirmed.
    Up,
    /// CANCEL sent, waiting for the INVITE's final response.
    Cancelling,
    /// BYE sent, waiting for its answer.
    Closing,
    /// Over.
    Ended,
}

struct LegState {
    spec: LegSpec,
    call_id: String,
    from_tag: String,
    cseq: u32,
    invite: Option<Message>,
    phase: Phase,
    dialog: Option<Dialog>,
    status: Option<u16>,
    digest: Option<DigestClient>,
    challenge: Option<(bool, Challenge)>,
    auth_attempts: u32,
    session: LocalSession,
    negotiated: Option<Negotiated>,
    /// Offer we sent in an INVITE whose answer is pending (initial or re-INVITE).
    offered: Vec<Codec>,
    reinvite_pending: bool,
    direction: Direction,
}

impl LegState {
    fn new(spec: LegSpec, credentials: &Option<(String, String)>, session_id: u64) -> LegState {
        LegState {
            session: LocalSession { session_id, version: 1, addr: spec.media },
            spec,
            call_id: format!("{}@huifang", crate::sip::random_token(24)),
            from_tag: new_tag(),
            cseq: 0,
            invite: None,
            phase: Phase::Idle,
            dialog: None,
            status: None,
            digest: credentials.as_ref().map(|(u, p)| DigestClient::new(u.clone(), p.clone())),
            challenge: None,
            auth_attempts: 0,
            negotiated: None,
            offered: Vec::new(),
            reinvite_pending: false,
            direction: Direction::SendRecv,
        }
    }

    fn live(&self) -> bool {
        matches!(self.phase, Phase::Inviting | Phase::Up | Phase::Cancelling | Phase::Closing)
    }

    /// Where in-dialog requests go: the dialog's next hop.
    fn in_dialog_target(&self) -> Target {
        let default = self.spec.target;
        let Some(d) = &self.dialog else {
            return default;
        };
        let hop = d.next_hop();
        match hop.socket_addr() {
            Some(addr) => Target {
                transport: hop.transport().and_then(|t| Transport::parse(&t)).unwrap_or(default.transport),
                addr,
            },
            None => default,
        }
    }
}

/// Where the call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Created,
    CallingAgent,
    OpeningRecorder,
    CallingClient,
    Bridged,
    Ending,
    Done,
}

/// One recorded callback call.
pub struct CallMachine {
    spec: CallSpec,
    agent: LegState,
    client: LegState,
    stage: Stage,
    outcome: Option<(Outcome, Option<String>)>,
    deadline: Option<Instant>,
    ending_since: Option<Instant>,
    out: VecDeque<Output>,
}

impl CallMachine {
    /// A call that has not started.
    pub fn new(spec: CallSpec) -> CallMachine {
        let sid = rand::random::<u32>() as u64;
        CallMachine {
            agent: LegState::new(spec.agent.clone(), &spec.credentials, sid),
            client: LegState::new(spec.client.clone(), &spec.credentials, sid + 1),
            spec,
            stage: Stage::Created,
            outcome: None,
            deadline: None,
            ending_since: None,
            out: VecDeque::new(),
        }
    }

    fn leg(&mut self, leg: Leg) -> &mut LegState {
        match leg {
            Leg::Agent => &mut self.agent,
            Leg::Client => &mut self.client,
        }
    }
    fn leg_ref(&self, leg: Leg) -> &LegState {
        match leg {
            Leg::Agent => &self.agent,
            Leg::Client => &self.client,
        }
    }

    /// Which leg a Call-ID belongs to.
    pub fn leg_of(&self, call_id: &str) -> Option<Leg> {
        if call_id == self.agent.call_id {
            Some(Leg::Agent)
        } else if call_id == self.client.call_id {
            Some(Leg::Client)
        } else {
            None
        }
    }
    /// The Call-ID of a leg (to route its SIP events here).
    pub fn call_id(&self, leg: Leg) -> &str {
        &self.leg_ref(leg).call_id
    }
    /// Final (or last) INVITE status of a leg.
    pub fn status(&self, leg: Leg) -> Option<u16> {
        self.leg_ref(leg).status
    }
    /// The outcome, once decided.
    pub fn outcome(&self) -> Option<(Outcome, Option<&str>)> {
        self.outcome.as_ref().map(|(o, r)| (*o, r.as_deref()))
    }
    /// Whether the call is over (outcome decided and both legs ended).
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }
    /// Whether the two legs are bridged (the client answered).
    pub fn is_bridged(&self) -> bool {
        self.stage == Stage::Bridged
    }

    /// Starts the call: INVITEs the agent.
    pub fn start(&mut self, now: Instant) {
        if self.stage != Stage::Created {
            return;
        }
        self.stage = Stage::CallingAgent;
        self.deadline = Some(now + self.spec.agent_ring);
        let codecs = self.spec.codecs.clone();
        self.invite(Leg::Agent, &codecs);
    }

    /// Builds and sends the initial INVITE of a leg (again, with
    /// credentials, after a challenge).
    fn invite(&mut self, leg: Leg, codecs: &[Codec]) {
        let te = Some(self.spec.telephone_event);
        let from = self.spec.from.clone();
        let contact = self.spec.contact.clone();
        let ua = self.spec.user_agent.clone();
        let auto = self.spec.auto_answer;
        let l = self.leg(leg);
        l.cseq += 1;
        l.offered = codecs.to_vec();
        let body = sdp::offer(&l.session, codecs, te, Direction::SendRecv);
        let mut from_na = NameAddr::new(from);
        from_na.display = Some("\"huifang\"".into());
        from_na.params.set("tag", Some(&l.from_tag));
        let mut m = Message::request(Method::Invite, l.spec.request_uri.clone())
            .with("Max-Forwards", "70")
            .with("From", from_na.to_string())
            .with("To", NameAddr::new(l.spec.to.clone()).to_string())
            .with("Call-ID", l.call_id.clone())
            .with("CSeq", format!("{} INVITE", l.cseq))
            .with("Contact", NameAddr::new(contact.clone()).to_string())
            .with("Allow", ALLOW)
            .with("User-Agent", ua);
        if leg == Leg::Agent {
            if matches!(auto, AutoAnswer::CallInfo | AutoAnswer::Both) {
                m.push("Call-Info", format!("<{contact}>;answer-after=0"));
            }
            if matches!(auto, AutoAnswer::AlertInfo | AutoAnswer::Both) {
                m.push("Alert-Info", "<http://127.0.0.1/>;info=alert-autoanswer");
            }
        }
        m.set_body("application/sdp", body);
        if let (Some(digest), Some((proxy, ch))) = (l.digest.as_mut(), l.challenge.as_ref()) {
            let creds = digest.respond(ch, "INVITE", l.spec.request_uri.as_str(), &m.body);
            m.push(if *proxy { "Proxy-Authorization" } else { "Authorization" }, creds.to_string());
        }
        l.invite = Some(m.clone());
        l.phase = Phase::Inviting;
        let first = l.cseq == 1;
        let target = l.spec.target;
        if first {
            self.out.push_back(Output::Trace(Trace::Invited(leg)));
        }
        self.out.push_back(Output::Send(leg, m, target));
    }

    /// The recorder opened (`Ok`) or could not (`Err(reason)`).
    pub fn on_recording(&mut self, result: Result<(), String>, now: Instant) {
        if self.stage != Stage::OpeningRecorder {
            return;
        }
        match result {
            Ok(()) => {
                self.stage = Stage::CallingClient;
                self.deadline = Some(now + self.spec.client_ring);
                // Offer the client exactly what the agent agreed to, so the
                // relay forwards packets unchanged.
                let codec = self.agent.negotiated.as_ref().map(|n| n.codec).unwrap_or(Codec::Pcmu);
                self.invite(Leg::Client, &[codec]);
            }
            Err(reason) => self.end(Outcome::RecordingFailed, Some(format!("recorder: {reason}")), now),
        }
    }

    /// The recorder failed mid-call: end the call (E1, fail closed).
    pub fn on_recorder_failed(&mut self, reason: &str, now: Instant) {
        if self.outcome.is_none() {
            self.end(Outcome::RecordingFailed, Some(format!("recorder: {reason}")), now);
        }
    }

    /// Ends the call from outside (shutdown).
    pub fn hang_up(&mut self, now: Instant) {
        if self.outcome.is_none() && self.stage != Stage::Created {
            self.end(Outcome::Interrupted, Some("huifang stopped".into()), now);
        } else if self.stage == Stage::Created {
            self.outcome = Some((Outcome::Interrupted, Some("huifang stopped".into())));
            self.stage = Stage::Done;
        }
    }

    /// A SIP event of a leg.
    pub fn on_leg_event(&mut self, leg: Leg, ev: LegEvent, now: Instant) {
        match ev {
            LegEvent::Response(msg) => self.on_response(leg, msg, now),
            LegEvent::Timeout(method) => self.on_timeout(leg, method, now),
            LegEvent::Request(tx, msg) => self.on_request(leg, tx, msg, now),
            LegEvent::Ack(msg) => self.on_ack(leg, msg),
        }
        self.check_done(now);
    }

    fn on_response(&mut self, leg: Leg, msg: Message, now: Instant) {
        let Some(status) = msg.status() else { return };
        let Ok(cseq) = msg.cseq() else { return };
        match cseq.method {
            // The dialog-creating INVITE (its latest CSeq, after auth retries)…
            Method::Invite if cseq.seq == self.leg_ref(leg).cseq => {
                self.on_invite_response(leg, status, msg, now)
            }
            // …or a re-INVITE of ours.
            Method::Invite => self.on_reinvite_response(leg, status, msg),
            Method::Bye if status >= 200 => {
                let l = self.leg(leg);
                if l.phase == Phase::Closing {
                    l.phase = Phase::Ended;
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, leg: Leg, status: u16, msg: Message, now: Instant) {
        if status < 200 {
            self.set_status(leg, status);
            if leg == Leg::Client && status == 183 && !msg.body.is_empty() {
                // Early media: the client's network plays ringback or an
                // announcement; relay it to the agent.
                if let Ok(n) = sdp::parse(&msg.body).and_then(|r| sdp::negotiated(&self.client.offered, &r)) {
                    self.client.negotiated = Some(n.clone());
                    self.out.push_back(Output::Media(MediaCmd::Remote { leg, negotiated: n }));
                    self.out.push_back(Output::Media(MediaCmd::Forwarding(false, true)));
                }
            }
            return;
        }
        if (200..300).contains(&status) {
            self.on_invite_2xx(leg, status, msg, now);
            return;
        }
        // A final non-2xx: the transaction layer has ACKed it.
        if matches!(status, 401 | 407)
            && self.leg_ref(leg).phase == Phase::Inviting
            && self.retry_with_auth(leg, status, &msg)
        {
            return;
        }
        self.set_status(leg, status);
        {
            let l = self.leg(leg);
            l.phase = Phase::Ended;
            if let Some(d) = l.dialog.as_mut() {
                d.terminate();
            }
        }
        if self.outcome.is_some() {
            return; // we cancelled; this is the 487
        }
        let reason = format!("{leg} answered {status} {}", reason_phrase(status));
        match leg {
            Leg::Agent => self.end(Outcome::AgentUnavailable, Some(reason), now),
            Leg::Client => self.end(Outcome::of_client_status(status), Some(reason), now),
        }
    }

    fn retry_with_auth(&mut self, leg: Leg, status: u16, msg: &Message) -> bool {
        let proxy = status == 407;
        let name = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        let challenges: Vec<Challenge> = msg.header_values(name).filter_map(|v| v.parse().ok()).collect();
        let l = self.leg(leg);
        if l.digest.is_none() {
            return false;
        }
        let Some(ch) = pick(&challenges).cloned() else {
            return false;
        };
        let attempts = if l.challenge.is_some() { l.auth_attempts } else { 0 };
        if !should_retry(&ch, attempts) {
            return false;
        }
        l.auth_attempts += 1;
        l.challenge = Some((proxy, ch));
        let codecs = l.offered.clone();
        self.invite(leg, &codecs);
        true
    }

    fn on_invite_2xx(&mut self, leg: Leg, status: u16, msg: Message, now: Instant) {
        // A retransmitted 2xx (or one for an established dialog): ACK again.
        if let Some(d) = self.leg_ref(leg).dialog.as_ref()
            && d.state() == DialogState::Confirmed
        {
            let ack = d.ack(self.leg_ref(leg).cseq);
            let target = self.leg_ref(leg).in_dialog_target();
            self.out.push_back(Output::Send(leg, ack, target));
            return;
        }
        let Some(invite) = self.leg_ref(leg).invite.clone() else {
            return;
        };
        let dialog = match Dialog::from_uac(&invite, &msg) {
            Ok(d) => d,
            Err(e) => {
                // Cannot even ACK properly without a dialog; give up on the leg.
                self.set_status(leg, status);
                self.leg(leg).phase = Phase::Ended;
                self.end(Outcome::Failed, Some(format!("{leg} 2xx unusable: {e}")), now);
                return;
            }
        };
        self.set_status(leg, status);
        let ack = dialog.ack(self.leg_ref(leg).cseq);
        {
            let l = self.leg(leg);
            l.dialog = Some(dialog);
            l.phase = Phase::Up;
        }
        let target = self.leg_ref(leg).in_dialog_target();
        self.out.push_back(Output::Send(leg, ack, target));

        // Answered after we decided to end (CANCEL raced the 200): hang up.
        if self.outcome.is_some() {
            self.bye(leg);
            return;
        }
        let negotiated = sdp::parse(&msg.body).and_then(|r| sdp::negotiated(&self.leg_ref(leg).offered, &r));
        let negotiated = match negotiated {
            Ok(n) => n,
            Err(e) => {
                self.end(Outcome::Failed, Some(format!("{leg} SDP answer: {e}")), now);
                return;
            }
        };
        self.leg(leg).negotiated = Some(negotiated.clone());
        self.out.push_back(Output::Media(MediaCmd::Remote { leg, negotiated }));
        match leg {
            Leg::Agent => {
                self.stage = Stage::OpeningRecorder;
                self.deadline = None;
                self.out.push_back(Output::StartRecording);
            }
            Leg::Client => {
                self.stage = Stage::Bridged;
                self.deadline = Some(now + self.spec.max_duration);
                self.out.push_back(Output::Media(MediaCmd::Forwarding(true, true)));
                self.out.push_back(Output::Trace(Trace::Answered));
            }
        }
    }

    fn on_reinvite_response(&mut self, leg: Leg, status: u16, msg: Message) {
        if status < 200 {
            return;
        }
        let l = self.leg(leg);
        l.reinvite_pending = false;
        if (200..300).contains(&status) {
            if let Some(d) = l.dialog.as_mut() {
                d.on_response(&Method::Invite, &msg);
            }
            let ack = l.dialog.as_ref().map(|d| d.ack(msg.cseq().map(|c| c.seq).unwrap_or(0)));
            if let Ok(n) = sdp::parse(&msg.body).and_then(|r| sdp::negotiated(&l.offered, &r)) {
                l.negotiated = Some(n.clone());
                self.out.push_back(Output::Media(MediaCmd::Remote { leg, negotiated: n }));
            }
            if let Some(ack) = ack {
                let target = self.leg_ref(leg).in_dialog_target();
                self.out.push_back(Output::Send(leg, ack, target));
            }
        }
    }

    fn on_timeout(&mut self, leg: Leg, method: Method, now: Instant) {
        match method {
            Method::Invite if self.leg_ref(leg).phase == Phase::Inviting => {
                self.leg(leg).phase = Phase::Ended;
                let reason = format!("{leg}: no response");
                match leg {
                    Leg::Agent => self.end(Outcome::AgentUnavailable, Some(reason), now),
                    Leg::Client => self.end(Outcome::Unreachable, Some(reason), now),
                }
            }
            Method::Invite if self.leg_ref(leg).phase == Phase::Cancelling => {
                self.leg(leg).phase = Phase::Ended;
            }
            Method::Invite => self.leg(leg).reinvite_pending = false,
            Method::Bye => self.leg(leg).phase = Phase::Ended,
            _ => {}
        }
    }

    fn on_request(&mut self, leg: Leg, tx: TxId, req: Message, now: Instant) {
        let method = req.method().unwrap_or(Method::Options);
        // The request must belong to the leg's dialog.
        let check = match self.leg(leg).dialog.as_mut() {
            Some(d) if d.matches_request(&req) => d.on_request(&req),
            _ => {
                self.respond(tx, &req, 481, None);
                return;
            }
        };
        if let Err(e) = check {
            use crate::sip::dialog::DialogError as E;
            let status = match e {
                E::CSeqOutOfOrder => 500,
                E::BadContact => 400,
                _ => 481,
            };
            self.respond(tx, &req, status, None);
            return;
        }
        match method {
            Method::Bye => {
                self.respond(tx, &req, 200, None);
                self.leg(leg).phase = Phase::Ended;
                if self.outcome.is_none() {
                    let (outcome, reason) = match (self.stage, leg) {
                        (Stage::Bridged, _) => (Outcome::Completed, format!("{leg} hung up")),
                        (Stage::CallingClient, Leg::Agent) => {
                            (Outcome::Cancelled, "agent hung up while the client rang".to_string())
                        }
                        (Stage::OpeningRecorder, Leg::Agent) => {
                            (Outcome::Cancelled, "agent hung up before the client was called".to_string())
                        }
                        _ => (Outcome::Failed, format!("{leg} hung up unexpectedly")),
                    };
                    self.end(outcome, Some(reason), now);
                }
            }
            Method::Invite => self.on_reinvite(leg, tx, req),
            Method::Options | Method::Info | Method::Update | Method::Notify => {
                self.respond(tx, &req, 200, None);
            }
            _ => self.respond(tx, &req, 501, None),
        }
    }

    /// A re-INVITE (hold, unhold, codec change) from a leg: answer it with
    /// our relay's address, and carry a direction change to the other leg.
    fn on_reinvite(&mut self, leg: Leg, tx: TxId, req: Message) {
        let supported = self.spec.codecs.clone();
        let te = self.spec.telephone_event;
        let l = self.leg(leg);
        l.session.version += 1;
        if req.body.is_empty() {
            // Offer-less re-INVITE: we offer in the 200, the ACK answers.
            let codec = l.negotiated.as_ref().map(|n| n.codec).unwrap_or(Codec::Pcmu);
            l.offered = vec![codec];
            let body = sdp::offer(&l.session, &[codec], Some(te), Direction::SendRecv);
            self.respond(tx, &req, 200, Some(body));
            return;
        }
        let remote = match sdp::parse(&req.body) {
            Ok(r) => r,
            Err(_) => {
                self.respond(tx, &req, 488, None);
                return;
            }
        };
        let l = self.leg(leg);
        match sdp::answer(&l.session, &remote, &supported, Direction::SendRecv) {
            Ok((body, negotiated)) => {
                let direction = remote.direction;
                let codec = negotiated.codec;
                l.negotiated = Some(negotiated.clone());
                self.respond(tx, &req, 200, Some(body));
                self.out.push_back(Output::Media(MediaCmd::Remote { leg, negotiated }));
                self.propagate(leg.other(), direction, codec);
            }
            Err(_) => self.respond(tx, &req, 488, None),
        }
    }

    /// Tells the other leg what changed — the direction (hold, unhold) or
    /// the codec — by a re-INVITE of our own, so that the relay can keep
    /// forwarding packets unchanged.
    fn propagate(&mut self, leg: Leg, direction: Direction, codec: Codec) {
        let te = Some(self.spec.telephone_event);
        let l = self.leg(leg);
        let current = l.negotiated.as_ref().map(|n| n.codec);
        if l.phase != Phase::Up || l.reinvite_pending || (l.direction == direction && current == Some(codec))
        {
            return;
        }
        let Some(d) = l.dialog.as_mut() else { return };
        l.session.version += 1;
        l.offered = vec![codec];
        l.direction = direction;
        let mut m = d.request(Method::Invite);
        m.set_body("application/sdp", sdp::offer(&l.session, &[codec], te, direction));
        l.reinvite_pending = true;
        let target = l.in_dialog_target();
        self.out.push_back(Output::Send(leg, m, target));
    }

    fn on_ack(&mut self, leg: Leg, ack: Message) {
        // The ACK of an offer-less re-INVITE carries the answer.
        let l = self.leg(leg);
        if ack.body.is_empty() {
            return;
        }
        if let Ok(n) = sdp::parse(&ack.body).and_then(|r| sdp::negotiated(&l.offered, &r)) {
            l.negotiated = Some(n.clone());
            self.out.push_back(Output::Media(MediaCmd::Remote { leg, negotiated: n }));
        }
    }

    fn respond(&mut self, tx: TxId, req: &Message, status: u16, sdp_body: Option<Vec<u8>>) {
        let mut r = Message::response_to(req, status);
        if status >= 200 {
            // In-dialog requests already carry our tag; others get a fresh one.
            r.ensure_to_tag(&new_tag());
        }
        if (200..300).contains(&status) && req.method() == Some(Method::Invite) {
            r.push("Contact", NameAddr::new(self.spec.contact.clone()).to_string());
        }
        if status == 501 || status == 405 {
            r.push("Allow", ALLOW);
        }
        if let Some(body) = sdp_body {
            r.set_body("application/sdp", body);
        }
        self.out.push_back(Output::Respond(tx, r));
    }

    fn set_status(&mut self, leg: Leg, status: u16) {
        let l = self.leg(leg);
        if l.status != Some(status) {
            l.status = Some(status);
            self.out.push_back(Output::Trace(Trace::LegStatus(leg, status)));
        }
    }

    fn bye(&mut self, leg: Leg) {
        let l = self.leg(leg);
        if l.phase != Phase::Up {
            return;
        }
        let Some(d) = l.dialog.as_mut() else { return };
        let bye = d.request(Method::Bye);
        d.terminate();
        l.phase = Phase::Closing;
        let target = l.in_dialog_target();
        self.out.push_back(Output::Send(leg, bye, target));
    }

    /// Decides the outcome and starts taking both legs down.
    fn end(&mut self, outcome: Outcome, reason: Option<String>, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some((outcome, reason));
        self.stage = Stage::Ending;
        self.ending_since = Some(now);
        self.deadline = Some(now + ENDING_GRACE);
        self.out.push_back(Output::Media(MediaCmd::Forwarding(false, false)));
        for leg in [Leg::Client, Leg::Agent] {
            match self.leg_ref(leg).phase {
                Phase::Inviting => {
                    self.leg(leg).phase = Phase::Cancelling;
                    self.out.push_back(Output::Cancel(leg));
                }
                Phase::Up => self.bye(leg),
                _ => {}
            }
        }
        self.check_done(now);
    }

    fn check_done(&mut self, _now: Instant) {
        if self.stage == Stage::Ending && !self.agent.live() && !self.client.live() {
            self.stage = Stage::Done;
            self.deadline = None;
        }
    }

    /// Call when [`CallMachine::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(d) = self.deadline else { return };
        if now < d {
            return;
        }
        self.deadline = None;
        match self.stage {
            Stage::CallingAgent => {
                self.end(Outcome::AgentUnavailable, Some("agent did not answer".into()), now)
            }
            Stage::CallingClient => self.end(Outcome::NoAnswer, Some("client did not answer".into()), now),
            Stage::Bridged => self.end(Outcome::Completed, Some("maximum call duration reached".into()), now),
            Stage::Ending => {
                // Whatever did not answer our BYE/CANCEL is over anyway.
                self.agent.phase = Phase::Ended;
                self.client.phase = Phase::Ended;
                self.check_done(now);
            }
            _ => {}
        }
    }

    /// When to call [`CallMachine::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests;
