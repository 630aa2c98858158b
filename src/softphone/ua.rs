//! The softphone's user agent: registration, calls in and out, sans-IO.
//!
//! [`Phone`] is built from huifang's protocol cores — [`Transactions`],
//! [`Registration`], [`Dialog`], digest answers and SDP offer/answer — and,
//! like them, does no IO and reads no clock.
//!
//! ## Driving contract
//! 1. [`Phone::start`] once (it registers when a registrar is configured).
//! 2. Feed it inputs with the current time: every SIP message received
//!    ([`Phone::on_message`]), the driver's answers ([`Phone::set_media`],
//!    [`Phone::dial`], [`Phone::hang_up`], [`Phone::shutdown`]) and
//!    [`Phone::handle_timeout`] when [`Phone::poll_timeout`] is due.
//! 3. After every input drain [`Phone::poll_transmit`] (send each message
//!    to its target) and [`Phone::poll_event`] (act on each) until both are
//!    empty; then sleep until the next [`Phone::poll_timeout`].
//!
//! ## Behaviour
//! - **Incoming calls.** An INVITE with an offer (or without: we offer in
//!   the 200 and take the answer from the ACK) is answered `180` at once and
//!   reported as [`Event::Incoming`]; the driver binds an RTP socket and
//!   calls [`Phone::set_media`]. After `answer_after` the phone answers
//!   `200` with its SDP, retransmits it until the ACK (RFC 3261 §13.3.1.4;
//!   without an ACK for 64·T1 it hangs up) and reports [`Event::Up`].
//!   Without `answer_after`, or past `max_calls`, or while shutting down,
//!   it answers `486`. A CANCEL before the answer ends the call `487`.
//! - **Outgoing calls.** [`Phone::dial`] sends an INVITE with our offer to
//!   the outbound proxy (the registrar) or the URI's address, answers a
//!   401/407 with digest credentials, ACKs the 2xx (again for every
//!   retransmission) and reports [`Event::Up`]; a final error ends the call.
//!   After `ring_timeout` it CANCELs.
//! - **In a call.** A re-INVITE is answered with our SDP
//!   ([`Event::MediaChanged`]); a BYE ends the call; after `hangup_after`
//!   (counted from the answer) the phone sends BYE itself.
//! - **Shutdown.** Calls are ended (BYE, CANCEL, or `480` for one still
//!   ringing) and the registration is withdrawn; [`Phone::is_finished`]
//!   once all of that is answered or given up.
//!
//! Every call ends with exactly one [`Event::Ended`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::media::g711::Codec;
use crate::media::sdp::{self, Direction, LocalSession, Negotiated, RemoteMedia};
use crate::sip::auth::{Challenge, DigestClient, pick, should_retry};
use crate::sip::dialog::{Dialog, new_tag};
use crate::sip::msg::{Message, Method, NameAddr, Params, Uri, Via};
use crate::sip::registration::{RegConfig, RegOutput, RegState, Registration};
use crate::sip::transaction::{Incoming, TimerConfig, Transactions, Transmit, TxEvent, TxId};
use crate::sip::transport::{Target, Transport, stamp_received};

/// Methods the softphone answers, for `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// How long a BYE or CANCEL may go unanswered before the call is over anyway.
const ENDING_GRACE: Duration = Duration::from_secs(32);

/// Where and as whom to register.
#[derive(Debug, Clone)]
pub struct RegistrarSpec {
    /// The registrar's URI (Request-URI of the REGISTER).
    pub uri: Uri,
    /// Where REGISTERs (and our INVITEs) go.
    pub target: Target,
    /// Domain of our address of record.
    pub domain: String,
    /// Lifetime to ask for, seconds.
    pub expires: u32,
}

/// How the phone behaves.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// Our SIP address: Via, Contact (the driver's bound socket).
    pub local: SocketAddr,
    /// What we speak SIP over (`Contact` says `;transport=tcp` for TCP, and
    /// a URI dialled without a registrar and without a transport of its own
    /// is reached over it).
    pub transport: Transport,
    /// Our user name (Contact, address of record).
    pub user: String,
    /// Digest password, for the registrar and for 401/407 on INVITE.
    pub password: Option<String>,
    /// Register there; without, the phone only listens and dials directly.
    pub registrar: Option<RegistrarSpec>,
    /// Answer incoming calls after this long; `None` refuses them (486).
    pub answer_after: Option<Duration>,
    /// Hang up this long after the answer; `None` waits for the other side.
    pub hangup_after: Option<Duration>,
    /// Give up on an outgoing call that rings this long (CANCEL).
    pub ring_timeout: Duration,
    /// Calls to take part in at most (in and out); later INVITEs get 486.
    pub max_calls: Option<u32>,
    /// Codecs offered and accepted, in order of preference.
    pub codecs: Vec<Codec>,
    /// telephone-event payload type offered (RFC 4733).
    pub telephone_event: Option<u8>,
    /// User-Agent header.
    pub user_agent: String,
    /// Transaction timers.
    pub timers: TimerConfig,
}

/// Our id of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    /// The other side called us.
    Incoming,
    /// We dialled.
    Outgoing,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The other side sent BYE.
    RemoteHangup,
    /// We sent BYE (`hangup_after`, [`Phone::hang_up`]).
    LocalHangup,
    /// The caller cancelled before we answered.
    Cancelled,
    /// Our outgoing call got this final status.
    Rejected(u16),
    /// Our outgoing call rang for `ring_timeout`.
    NoAnswer,
    /// No response (transaction timeout), or no ACK for our 200.
    Timeout,
    /// We refused it, or its SDP could not be used.
    Refused(u16),
    /// The phone shut down.
    Shutdown,
}

impl EndReason {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::RemoteHangup => "remote-hangup",
            EndReason::LocalHangup => "local-hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected(_) => "rejected",
            EndReason::NoAnswer => "no-answer",
            EndReason::Timeout => "timeout",
            EndReason::Refused(_) => "refused",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// What a call was, when it ended.
#[derive(Debug, Clone)]
pub struct CallSummary {
    /// The SIP Call-ID.
    pub sip_call_id: String,
    /// In or out.
    pub direction: CallDirection,
    /// The other party (From of an incoming call, To of an outgoing one).
    pub remote: String,
    /// The final status of the INVITE (ours or theirs).
    pub status: Option<u16>,
    /// Why it ended.
    pub reason: EndReason,
    /// When it started (INVITE sent or received).
    pub started: Instant,
    /// When it was answered.
    pub answered: Option<Instant>,
    /// When it ended.
    pub ended: Instant,
}

/// What the driver must act on.
#[derive(Debug, Clone)]
pub enum Event {
    /// The registration changed state.
    Registration(RegState),
    /// A call is ringing here: bind its RTP socket and call
    /// [`Phone::set_media`].
    Incoming(CallId),
    /// The call is answered: start sending to and receiving from `media`.
    Up(CallId, Negotiated),
    /// A re-INVITE changed where or how media goes.
    MediaChanged(CallId, Negotiated),
    /// The call is over: stop its media.
    Ended(CallId, CallSummary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Incoming, 180 sent, waiting for its answer time (and media).
    Ringing,
    /// Outgoing, INVITE sent, no final response.
    Inviting,
    /// Incoming, 200 sent, no ACK yet (media already flows).
    Answered,
    /// Talking.
    Up,
    /// BYE or CANCEL sent, waiting for the answer.
    Ending,
}

/// A 2xx we retransmit until its ACK.
#[derive(Debug)]
struct Retransmit {
    msg: Message,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

struct Call {
    id: CallId,
    sip_call_id: String,
    direction: CallDirection,
    state: State,
    remote: Uri,
    /// The INVITE (received, or the last one we sent).
    invite: Message,
    /// Its transaction (server or client).
    invite_tx: Option<TxId>,
    /// Our tag.
    local_tag: String,
    /// CSeq of our INVITE (outgoing).
    cseq: u32,
    dialog: Option<Dialog>,
    /// Where requests outside the dialog's route go (first hop).
    target: Target,
    session: Option<LocalSession>,
    /// An incoming offer, until answered.
    remote_offer: Option<RemoteMedia>,
    /// Codecs in our offer awaiting an answer (outgoing, or offerless INVITE).
    offered: Vec<Codec>,
    negotiated: Option<Negotiated>,
    answer_at: Option<Instant>,
    hangup_at: Option<Instant>,
    deadline: Option<Instant>,
    ok: Option<Retransmit>,
    digest: Option<DigestClient>,
    challenge: Option<(bool, Challenge)>,
    auth_attempts: u32,
    status: Option<u16>,
    started: Instant,
    answered: Option<Instant>,
    reason: Option<EndReason>,
}

impl Call {
    fn in_dialog_target(&self) -> Target {
        let Some(d) = &self.dialog else { return self.target };
        let hop = d.next_hop();
        match hop.socket_addr() {
            Some(addr) => Target {
                transport: hop
                    .transport()
                    .and_then(|t| Transport::parse(&t))
                    .unwrap_or(self.target.transport),
                addr,
            },
            None => self.target,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let media_ready = self.session.is_some();
        [
            self.answer_at.filter(|_| self.state == State::Ringing && media_ready),
            self.hangup_at.filter(|_| matches!(self.state, State::Up | State::Answered)),
            self.deadline,
            self.ok.as_ref().map(|r| r.next.min(r.give_up)),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The softphone's user agent. See the module doc for the driving contract.
pub struct Phone {
    cfg: PhoneConfig,
    tx: Transactions,
    reg: Option<Registration>,
    reg_tx: Option<TxId>,
    calls: HashMap<CallId, Call>,
    by_sip_id: HashMap<String, CallId>,
    tx_owner: HashMap<TxId, (CallId, Method)>,
    next_id: u64,
    taken: u32,
    stopping: bool,
    events: VecDeque<Event>,
}

impl Phone {
    /// A phone that has not started.
    pub fn new(cfg: PhoneConfig) -> Phone {
        let reg = cfg.registrar.as_ref().map(|r| {
            Registration::new(RegConfig {
                registrar: r.uri.clone(),
                target: r.target,
                aor: Uri::sip(Some(&cfg.user), &r.domain, None),
                user: cfg.user.clone(),
                password: cfg.password.clone().unwrap_or_default(),
                local: cfg.local,
                expires: r.expires,
                retry_min: Duration::from_secs(1),
                retry_max: Duration::from_secs(30),
                user_agent: cfg.user_agent.clone(),
            })
        });
        Phone {
            tx: Transactions::new(cfg.timers),
            reg,
            reg_tx: None,
            calls: HashMap::new(),
            by_sip_id: HashMap::new(),
            tx_owner: HashMap::new(),
            next_id: 1,
            taken: 0,
            stopping: false,
            events: VecDeque::new(),
            cfg,
        }
    }

    /// Starts registering (when a registrar is configured).
    pub fn start(&mut self, now: Instant) {
        if let Some(r) = self.reg.as_mut() {
            r.start(now);
        }
        self.pump(now);
    }

    /// Our Contact URI.
    pub fn contact(&self) -> Uri {
        let u = Uri::sip(Some(&self.cfg.user), &self.cfg.local.ip().to_string(), Some(self.cfg.local.port()));
        if self.cfg.transport == Transport::Tcp { u.with_param("transport", Some("tcp")) } else { u }
    }

    /// Our address of record (From of our calls).
    pub fn aor(&self) -> Uri {
        match &self.cfg.registrar {
            Some(r) => Uri::sip(Some(&self.cfg.user), &r.domain, None),
            None => self.contact(),
        }
    }

    /// The registration state; `None` without a registrar.
    pub fn registration(&self) -> Option<&RegState> {
        self.reg.as_ref().map(|r| r.state())
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether a shutdown finished: every call ended, the registration
    /// withdrawn (or given up) and no transaction waiting for an answer.
    pub fn is_finished(&self) -> bool {
        self.stopping
            && self.calls.is_empty()
            && self.reg.as_ref().is_none_or(|r| *r.state() == RegState::Unregistered)
            && self.tx.pending() == 0
    }

    /// A message received from `from` over `transport`.
    pub fn on_message(&mut self, mut msg: Message, transport: Transport, from: SocketAddr, now: Instant) {
        if msg.is_request() {
            stamp_received(&mut msg, from);
            match self.tx.on_request(msg, transport, from, now) {
                Incoming::Request { tx, msg } => self.on_request(tx, msg, transport, from, now),
                Incoming::Ack2xx { msg } => self.on_ack(msg),
                Incoming::Absorbed | Incoming::StrayResponse { .. } => {}
            }
        } else if let Incoming::StrayResponse { msg } = self.tx.on_response(msg, now) {
            self.on_stray_response(msg, now);
        }
        self.pump(now);
    }

    /// The RTP address of an incoming call's media (after
    /// [`Event::Incoming`]); it is answered when its time comes.
    pub fn set_media(&mut self, call: CallId, media: SocketAddr, now: Instant) {
        if let Some(c) = self.calls.get_mut(&call)
            && c.session.is_none()
        {
            c.session = Some(LocalSession::new(rand::random::<u32>() as u64, media));
        }
        self.check_answer(call, now);
        self.pump(now);
    }

    /// Dials `uri`, with our RTP on `media`. `None` when there is nowhere
    /// to send the INVITE (no registrar and no address in the URI), or the
    /// phone is shutting down or took its `max_calls`.
    pub fn dial(&mut self, uri: Uri, media: SocketAddr, now: Instant) -> Option<CallId> {
        if self.stopping || self.cfg.max_calls.is_some_and(|m| self.taken >= m) {
            return None;
        }
        let target = match &self.cfg.registrar {
            Some(r) => r.target,
            None => Target {
                transport: uri.transport().and_then(|t| Transport::parse(&t)).unwrap_or(self.cfg.transport),
                addr: uri.socket_addr()?,
            },
        };
        self.taken += 1;
        let id = self.alloc_id();
        let sip_call_id = format!("{}@{}", crate::sip::random_token(20), self.cfg.local.ip());
        let call = Call {
            id,
            sip_call_id: sip_call_id.clone(),
            direction: CallDirection::Outgoing,
            state: State::Inviting,
            remote: uri,
            invite: Message::request(Method::Invite, self.aor()),
            invite_tx: None,
            local_tag: new_tag(),
            cseq: 0,
            dialog: None,
            target,
            session: Some(LocalSession::new(rand::random::<u32>() as u64, media)),
            remote_offer: None,
            offered: self.cfg.codecs.clone(),
            negotiated: None,
            answer_at: None,
            hangup_at: None,
            deadline: Some(now + self.cfg.ring_timeout),
            ok: None,
            digest: self.cfg.password.as_ref().map(|p| DigestClient::new(self.cfg.user.clone(), p.clone())),
            challenge: None,
            auth_attempts: 0,
            status: None,
            started: now,
            answered: None,
            reason: None,
        };
        self.by_sip_id.insert(sip_call_id, id);
        self.calls.insert(id, call);
        self.send_invite(id, now);
        self.pump(now);
        Some(id)
    }

    /// Ends a call from our side (BYE, CANCEL, or 480 while it rings).
    pub fn hang_up(&mut self, call: CallId, now: Instant) {
        self.end_local(call, EndReason::LocalHangup, now);
        self.pump(now);
    }

    /// Ends every call and withdraws the registration; new calls are
    /// refused. Poll until [`Phone::is_finished`].
    pub fn shutdown(&mut self, now: Instant) {
        self.stopping = true;
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.end_local(id, EndReason::Shutdown, now);
        }
        if let Some(r) = self.reg.as_mut() {
            r.unregister(now);
        }
        self.pump(now);
    }

    /// Call when [`Phone::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        if let Some(r) = self.reg.as_mut() {
            r.handle_timeout(now);
        }
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.call_timers(id, now);
        }
        self.pump(now);
    }

    /// When to call [`Phone::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(Call::next_deadline).min();
        [self.tx.poll_timeout(), self.reg.as_ref().and_then(|r| r.poll_timeout()), calls]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    /// The next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------ internals

    fn alloc_id(&mut self) -> CallId {
        let id = CallId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Drains the registration and the transaction layer's events.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            if let Some(reg) = self.reg.as_mut() {
                while let Some(out) = reg.poll_output() {
                    progressed = true;
                    match out {
                        RegOutput::Send(msg) => {
                            let target = reg.target();
                            self.reg_tx = Some(self.tx.send_request(msg, target, now));
                        }
                        RegOutput::State(s) => self.events.push_back(Event::Registration(s)),
                    }
                }
            }
            while let Some(ev) = self.tx.poll_event() {
                progressed = true;
                self.on_tx_event(ev, now);
            }
            if !progressed {
                break;
            }
        }
    }

    fn via(&self, transport: Transport) -> String {
        Via {
            transport: transport.via_name().to_string(),
            host: self.cfg.local.ip().to_string(),
            port: Some(self.cfg.local.port()),
            params: Params::parse(&format!(";branch={};rport", crate::sip::new_branch())),
        }
        .to_string()
    }

    /// Sends a request we built (adds the top Via); its events come back
    /// for `owner`.
    fn send(
        &mut self,
        mut msg: Message,
        target: Target,
        owner: Option<(CallId, Method)>,
        now: Instant,
    ) -> TxId {
        msg.prepend("Via", self.via(target.transport));
        if msg.header("User-Agent").is_none() {
            msg.push("User-Agent", self.cfg.user_agent.clone());
        }
        let tx = self.tx.send_request(msg, target, now);
        if let Some(owner) = owner {
            self.tx_owner.insert(tx, owner);
        }
        tx
    }

    fn respond(&mut self, tx: TxId, mut msg: Message, now: Instant) {
        if msg.header("Server").is_none() {
            msg.push("Server", self.cfg.user_agent.clone());
        }
        self.tx.respond(tx, msg, now);
    }

    /// A response to `req` with our tag (when final) and, for dialog
    /// responses, the Record-Route of the request and our Contact.
    fn response(&self, req: &Message, status: u16, tag: Option<&str>) -> Message {
        let mut r = Message::response_to(req, status);
        if status > 100 {
            match tag {
                Some(t) => r.ensure_to_tag(t),
                None => r.ensure_to_tag(&new_tag()),
            }
        }
        if req.method() == Some(Method::Invite) && (101..300).contains(&status) {
            for rr in req.header_values("Record-Route") {
                r.push("Record-Route", rr.to_string());
            }
            r.push("Contact", NameAddr::new(self.contact()).to_string());
            r.push("Allow", ALLOW);
        }
        if matches!(status, 405 | 501) {
            r.push("Allow", ALLOW);
        }
        r
    }

    fn on_request(&mut self, tx: TxId, req: Message, transport: Transport, from: SocketAddr, now: Instant) {
        let method = req.method().unwrap_or(Method::Options);
        let call = req.call_id().and_then(|c| self.by_sip_id.get(c)).copied();
        match (method, call) {
            (Method::Invite, None) if req.to_tag().is_none() => self.on_invite(tx, req, transport, from, now),
            (Method::Invite, Some(id)) if req.to_tag().is_some() => self.on_reinvite(id, tx, req, now),
            (Method::Bye, Some(id)) => {
                if !self.check_in_dialog(id, tx, &req, now) {
                    return;
                }
                let ok = self.response(&req, 200, None);
                self.respond(tx, ok, now);
                if let Some(c) = self.calls.get_mut(&id) {
                    c.reason.get_or_insert(EndReason::RemoteHangup);
                }
                self.finish(id, now);
            }
            (Method::Options, _) => {
                let mut ok = self.response(&req, 200, None);
                ok.push("Allow", ALLOW);
                ok.push("Accept", "application/sdp");
                self.respond(tx, ok, now);
            }
            (Method::Info | Method::Update | Method::Notify, Some(id)) => {
                if self.check_in_dialog(id, tx, &req, now) {
                    let ok = self.response(&req, 200, None);
                    self.respond(tx, ok, now);
                }
            }
            (Method::Invite | Method::Bye | Method::Info | Method::Update | Method::Notify, _) => {
                let r = self.response(&req, 481, None);
                self.respond(tx, r, now);
            }
            (Method::Other(_), _) => {
                let r = self.response(&req, 501, None);
                self.respond(tx, r, now);
            }
            _ => {
                let r = self.response(&req, 405, None);
                self.respond(tx, r, now);
            }
        }
    }

    /// Checks an in-dialog request against its dialog; answers the error
    /// and returns false when it does not belong.
    fn check_in_dialog(&mut self, id: CallId, tx: TxId, req: &Message, now: Instant) -> bool {
        let verdict = match self.calls.get_mut(&id).and_then(|c| c.dialog.as_mut()) {
            Some(d) if d.matches_request(req) => d.on_request(req).map_err(|e| {
                use crate::sip::dialog::DialogError as E;
                match e {
                    E::CSeqOutOfOrder => 500,
                    E::BadContact => 400,
                    _ => 481,
                }
            }),
            _ => Err(481),
        };
        match verdict {
            Ok(()) => true,
            Err(status) => {
                let r = self.response(req, status, None);
                self.respond(tx, r, now);
                false
            }
        }
    }

    fn on_invite(&mut self, tx: TxId, req: Message, transport: Transport, from: SocketAddr, now: Instant) {
        let full = self.cfg.max_calls.is_some_and(|m| self.taken >= m);
        let Some(answer_after) = self.cfg.answer_after.filter(|_| !self.stopping && !full) else {
            let busy = self.response(&req, 486, None);
            self.respond(tx, busy, now);
            return;
        };
        let offer = if req.body.is_empty() {
            None
        } else {
            match sdp::parse(&req.body) {
                Ok(o) if o.codecs.iter().any(|(_, c)| self.cfg.codecs.contains(c)) && !o.port_zero => Some(o),
                Ok(_) => {
                    let r = self.response(&req, 488, None);
                    self.respond(tx, r, now);
                    return;
                }
                Err(e) => {
                    let r = self.response(&req, e.sip_status(), None);
                    self.respond(tx, r, now);
                    return;
                }
            }
        };
        let tag = new_tag();
        let ringing = self.response(&req, 180, Some(&tag));
        let dialog = match Dialog::from_uas(&req, &ringing) {
            Ok(d) => d,
            Err(_) => {
                let r = self.response(&req, 400, None);
                self.respond(tx, r, now);
                return;
            }
        };
        self.respond(tx, ringing, now);
        self.taken += 1;
        let id = self.alloc_id();
        let sip_call_id = req.call_id().unwrap_or_default().to_string();
        let remote = req.from_hdr().map(|f| f.uri).unwrap_or_else(|_| self.contact());
        let target = match req.top_via() {
            Ok(via) => crate::sip::transport::response_target(&via, transport, from),
            Err(_) => Target { transport, addr: from },
        };
        self.by_sip_id.insert(sip_call_id.clone(), id);
        self.calls.insert(
            id,
            Call {
                id,
                sip_call_id,
                direction: CallDirection::Incoming,
                state: State::Ringing,
                remote,
                invite: req,
                invite_tx: Some(tx),
                local_tag: tag,
                cseq: 0,
                dialog: Some(dialog),
                target,
                session: None,
                remote_offer: offer,
                offered: Vec::new(),
                negotiated: None,
                answer_at: Some(now + answer_after),
                hangup_at: None,
                deadline: None,
                ok: None,
                digest: None,
                challenge: None,
                auth_attempts: 0,
                status: Some(180),
                started: now,
                answered: None,
                reason: None,
            },
        );
        self.events.push_back(Event::Incoming(id));
    }

    /// Answers an incoming call when its time has come and its media is set.
    fn check_answer(&mut self, id: CallId, now: Instant) {
        let codecs = self.cfg.codecs.clone();
        let te = self.cfg.telephone_event;
        let t1 = self.cfg.timers.t1;
        let contact = NameAddr::new(self.contact()).to_string();
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.state != State::Ringing || c.answer_at.is_none_or(|t| t > now) {
            return;
        }
        let Some(session) = c.session.as_ref() else { return };
        let (body, negotiated) = match &c.remote_offer {
            Some(offer) => match sdp::answer(session, offer, &codecs, Direction::SendRecv) {
                Ok((body, n)) => (body, Some(n)),
                Err(e) => {
                    let status = e.sip_status();
                    let r = Self::refusal(&c.invite, status, &c.local_tag);
                    let tx = c.invite_tx;
                    c.reason = Some(EndReason::Refused(status));
                    c.status = Some(status);
                    if let Some(tx) = tx {
                        self.respond(tx, r, now);
                    }
                    self.finish(id, now);
                    return;
                }
            },
            None => {
                c.offered = codecs.clone();
                (sdp::offer(session, &codecs, te, Direction::SendRecv), None)
            }
        };
        let mut ok = Message::response_to(&c.invite, 200);
        ok.ensure_to_tag(&c.local_tag);
        for rr in c.invite.header_values("Record-Route") {
            ok.push("Record-Route", rr.to_string());
        }
        ok.push("Contact", contact);
        ok.push("Allow", ALLOW);
        ok.push("Server", self.cfg.user_agent.clone());
        ok.set_body("application/sdp", body);
        if let Some(d) = c.dialog.as_mut() {
            let _ = d.confirm(&ok);
        }
        c.state = State::Answered;
        c.status = Some(200);
        c.answered = Some(now);
        c.hangup_at = self.cfg.hangup_after.map(|d| now + d);
        c.ok = Some(Retransmit { msg: ok.clone(), next: now + t1, interval: t1, give_up: now + t1 * 64 });
        let tx = c.invite_tx;
        let up = negotiated.inspect(|n| c.negotiated = Some(n.clone()));
        if let Some(tx) = tx {
            self.tx.respond(tx, ok, now);
        }
        if let Some(n) = up {
            self.events.push_back(Event::Up(id, n));
        }
    }

    fn refusal(invite: &Message, status: u16, tag: &str) -> Message {
        let mut r = Message::response_to(invite, status);
        r.ensure_to_tag(tag);
        r
    }

    fn on_reinvite(&mut self, id: CallId, tx: TxId, req: Message, now: Instant) {
        if !self.check_in_dialog(id, tx, &req, now) {
            return;
        }
        let codecs = self.cfg.codecs.clone();
        let te = self.cfg.telephone_event;
        let t1 = self.cfg.timers.t1;
        let contact = NameAddr::new(self.contact()).to_string();
        let Some(c) = self.calls.get_mut(&id) else { return };
        let Some(session) = c.session.as_mut() else {
            let r = Self::refusal(&req, 491, &c.local_tag);
            self.respond(tx, r, now);
            return;
        };
        session.next_version();
        let (body, negotiated) = if req.body.is_empty() {
            c.offered = codecs.clone();
            (sdp::offer(session, &codecs, te, Direction::SendRecv), None)
        } else {
            match sdp::parse(&req.body).and_then(|o| sdp::answer(session, &o, &codecs, Direction::SendRecv)) {
                Ok((body, n)) => (body, Some(n)),
                Err(e) => {
                    let r = Self::refusal(&req, e.sip_status(), &c.local_tag);
                    self.respond(tx, r, now);
                    return;
                }
            }
        };
        let mut ok = Message::response_to(&req, 200);
        ok.ensure_to_tag(&c.local_tag);
        ok.push("Contact", contact);
        ok.push("Server", self.cfg.user_agent.clone());
        ok.set_body("application/sdp", body);
        if c.direction == CallDirection::Incoming {
            // Our 200 to a re-INVITE is retransmitted like the first one.
            c.invite_tx = Some(tx);
            c.ok = Some(Retransmit { msg: ok.clone(), next: now + t1, interval: t1, give_up: now + t1 * 64 });
        }
        let changed = negotiated.inspect(|n| c.negotiated = Some(n.clone()));
        self.tx.respond(tx, ok, now);
        if let Some(n) = changed {
            self.events.push_back(Event::MediaChanged(id, n));
        }
    }

    fn on_ack(&mut self, ack: Message) {
        let Some(id) = ack.call_id().and_then(|c| self.by_sip_id.get(c)).copied() else { return };
        let Some(c) = self.calls.get_mut(&id) else { return };
        if !c.dialog.as_ref().is_some_and(|d| d.matches_request(&ack)) {
            return;
        }
        c.ok = None;
        let mut media = None;
        if !c.offered.is_empty() && !ack.body.is_empty() {
            // The answer to the offer of our 200 (offerless INVITE).
            if let Ok(n) = sdp::parse(&ack.body).and_then(|r| sdp::negotiated(&c.offered, &r)) {
                c.offered.clear();
                let first = c.negotiated.is_none();
                c.negotiated = Some(n.clone());
                media = Some((first, n));
            }
        }
        if c.state == State::Answered {
            c.state = State::Up;
        }
        match media {
            Some((true, n)) => self.events.push_back(Event::Up(id, n)),
            Some((false, n)) => self.events.push_back(Event::MediaChanged(id, n)),
            None => {}
        }
    }

    fn on_stray_response(&mut self, msg: Message, now: Instant) {
        // A 2xx retransmission after our INVITE transaction ended: ACK again.
        let is_invite_2xx = msg.status().is_some_and(|s| (200..300).contains(&s))
            && msg.cseq().is_ok_and(|c| c.method == Method::Invite);
        if !is_invite_2xx {
            return;
        }
        let Some(id) = msg.call_id().and_then(|c| self.by_sip_id.get(c)).copied() else { return };
        let Some(c) = self.calls.get(&id) else { return };
        if let Some(d) = c.dialog.as_ref().filter(|d| d.matches_response(&msg)) {
            let ack = d.ack(c.cseq);
            let target = c.in_dialog_target();
            self.send(ack, target, None, now);
        }
    }

    fn on_tx_event(&mut self, ev: TxEvent, now: Instant) {
        match ev {
            TxEvent::Response { tx, msg } if Some(tx) == self.reg_tx => {
                if msg.status().is_some_and(|s| s >= 200) {
                    self.reg_tx = None;
                }
                if let Some(r) = self.reg.as_mut() {
                    r.on_response(&msg, now);
                }
            }
            TxEvent::Timeout { tx } if Some(tx) == self.reg_tx => {
                self.reg_tx = None;
                if let Some(r) = self.reg.as_mut() {
                    r.on_failure("no response (transaction timeout)", now);
                }
            }
            TxEvent::Response { tx, msg } => match self.tx_owner.get(&tx).cloned() {
                Some((id, Method::Invite)) => self.on_invite_response(id, msg, now),
                // The final answer to our BYE ends the call.
                Some((id, Method::Bye)) if msg.status().is_some_and(|s| s >= 200) => self.finish(id, now),
                _ => {}
            },
            TxEvent::Timeout { tx } => {
                if let Some((id, method)) = self.tx_owner.get(&tx).cloned() {
                    if method == Method::Invite
                        && let Some(c) = self.calls.get_mut(&id)
                        && c.state == State::Inviting
                    {
                        c.status = Some(408);
                        c.reason = Some(EndReason::Timeout);
                    }
                    if matches!(method, Method::Invite | Method::Bye) {
                        self.finish(id, now);
                    }
                }
            }
            TxEvent::Cancelled { tx } => {
                let id = self.calls.values().find(|c| c.invite_tx == Some(tx)).map(|c| c.id);
                if let Some(id) = id
                    && let Some(c) = self.calls.get_mut(&id)
                    && c.state == State::Ringing
                {
                    let r = Self::refusal(&c.invite, 487, &c.local_tag);
                    c.status = Some(487);
                    c.reason = Some(EndReason::Cancelled);
                    self.respond(tx, r, now);
                    self.finish(id, now);
                } else if let Some(req) = self.tx.request(tx).cloned() {
                    let r = self.response(&req, 487, None);
                    self.respond(tx, r, now);
                }
            }
            TxEvent::AckTimeout { .. } => {}
            TxEvent::Terminated { tx } => {
                self.tx_owner.remove(&tx);
            }
        }
    }

    fn send_invite(&mut self, id: CallId, now: Instant) {
        let aor = self.aor();
        let contact = NameAddr::new(self.contact()).to_string();
        let te = self.cfg.telephone_event;
        let Some(c) = self.calls.get_mut(&id) else { return };
        let Some(session) = c.session.as_ref() else { return };
        c.cseq += 1;
        let mut from = NameAddr::new(aor);
        from.params.set("tag", Some(&c.local_tag));
        let mut m = Message::request(Method::Invite, c.remote.clone())
            .with("Max-Forwards", "70")
            .with("From", from.to_string())
            .with("To", NameAddr::new(c.remote.clone()).to_string())
            .with("Call-ID", c.sip_call_id.clone())
            .with("CSeq", format!("{} INVITE", c.cseq))
            .with("Contact", contact)
            .with("Allow", ALLOW);
        m.set_body("application/sdp", sdp::offer(session, &c.offered, te, Direction::SendRecv));
        if let (Some(digest), Some((proxy, ch))) = (c.digest.as_mut(), c.challenge.as_ref()) {
            let creds = digest.respond(ch, "INVITE", c.remote.as_str(), &m.body);
            m.push(if *proxy { "Proxy-Authorization" } else { "Authorization" }, creds.to_string());
        }
        let target = c.target;
        let tx = self.send(m, target, Some((id, Method::Invite)), now);
        if let Some(c) = self.calls.get_mut(&id) {
            c.invite_tx = Some(tx);
            if let Some(sent) = self.tx.request(tx) {
                c.invite = sent.clone();
            }
        }
    }

    fn on_invite_response(&mut self, id: CallId, msg: Message, now: Instant) {
        let Some(status) = msg.status() else { return };
        let Some(c) = self.calls.get_mut(&id) else { return };
        // Responses to an INVITE we replaced (auth retry) are done with.
        if msg.cseq().map(|s| s.seq).ok() != Some(c.cseq) {
            return;
        }
        if status < 200 {
            if c.state == State::Inviting {
                c.status = Some(status);
            }
            return;
        }
        if (200..300).contains(&status) {
            // Every 2xx (a retransmission, another fork) gets its ACK.
            let confirmed = c.dialog.as_ref().filter(|d| d.matches_response(&msg));
            if let Some(d) = confirmed {
                let ack = d.ack(c.cseq);
                let target = c.in_dialog_target();
                self.send(ack, target, None, now);
                return;
            }
            let dialog = match Dialog::from_uac(&c.invite, &msg) {
                Ok(d) => d,
                Err(_) => {
                    c.status = Some(status);
                    c.reason = Some(EndReason::Refused(status));
                    self.finish(id, now);
                    return;
                }
            };
            let ack = dialog.ack(c.cseq);
            c.dialog = Some(dialog);
            c.status = Some(status);
            let target = c.in_dialog_target();
            let ending = c.state == State::Ending;
            let negotiated = sdp::parse(&msg.body).and_then(|r| sdp::negotiated(&c.offered, &r));
            self.send(ack, target, None, now);
            if ending {
                // Answered after we gave up: hang up at once.
                let c = self.calls.get_mut(&id).expect("call exists");
                c.state = State::Up;
                self.bye(id, now);
                return;
            }
            let c = self.calls.get_mut(&id).expect("call exists");
            match negotiated {
                Ok(n) => {
                    c.state = State::Up;
                    c.answered = Some(now);
                    c.deadline = None;
                    c.hangup_at = self.cfg.hangup_after.map(|d| now + d);
                    c.negotiated = Some(n.clone());
                    self.events.push_back(Event::Up(id, n));
                }
                Err(_) => {
                    c.state = State::Up;
                    c.reason = Some(EndReason::Refused(488));
                    self.bye(id, now);
                }
            }
            return;
        }
        // A final error: the transaction layer has ACKed it.
        if matches!(status, 401 | 407) && c.state == State::Inviting && c.digest.is_some() {
            let header = if status == 407 { "Proxy-Authenticate" } else { "WWW-Authenticate" };
            let challenges: Vec<Challenge> =
                msg.header_values(header).filter_map(|v| v.parse().ok()).collect();
            if let Some(ch) = pick(&challenges).cloned() {
                let attempts = if c.challenge.is_some() { c.auth_attempts } else { 0 };
                if should_retry(&ch, attempts) {
                    c.auth_attempts += 1;
                    c.challenge = Some((status == 407, ch));
                    self.send_invite(id, now);
                    return;
                }
            }
        }
        c.status = Some(status);
        c.reason.get_or_insert(EndReason::Rejected(status));
        self.finish(id, now);
    }

    fn call_timers(&mut self, id: CallId, now: Instant) {
        self.check_answer(id, now);
        let Some(c) = self.calls.get_mut(&id) else { return };
        // Our 200 until its ACK.
        if let Some(r) = c.ok.as_mut() {
            if now >= r.give_up {
                c.ok = None;
                c.reason = Some(EndReason::Timeout);
                self.bye(id, now);
                return;
            }
            if now >= r.next {
                r.interval = (r.interval * 2).min(self.cfg.timers.t2);
                r.next = now + r.interval;
                let (msg, tx) = (r.msg.clone(), c.invite_tx);
                if let Some(tx) = tx {
                    self.tx.respond(tx, msg, now);
                }
            }
        }
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.hangup_at.is_some_and(|t| now >= t) && matches!(c.state, State::Up | State::Answered) {
            c.hangup_at = None;
            c.reason.get_or_insert(EndReason::LocalHangup);
            self.bye(id, now);
            return;
        }
        if c.deadline.is_some_and(|t| now >= t) {
            c.deadline = None;
            match c.state {
                State::Inviting => {
                    c.reason = Some(EndReason::NoAnswer);
                    self.cancel(id, now);
                }
                State::Ending => self.finish(id, now),
                _ => {}
            }
        }
    }

    /// Ends a call from our side, whatever its state.
    fn end_local(&mut self, id: CallId, reason: EndReason, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        match c.state {
            State::Ringing => {
                let r = Self::refusal(&c.invite, 480, &c.local_tag);
                c.status = Some(480);
                c.reason = Some(reason);
                if let Some(tx) = c.invite_tx {
                    self.respond(tx, r, now);
                }
                self.finish(id, now);
            }
            State::Inviting => {
                c.reason = Some(reason);
                self.cancel(id, now);
            }
            State::Answered | State::Up => {
                c.reason.get_or_insert(reason);
                self.bye(id, now);
            }
            State::Ending => {}
        }
    }

    fn cancel(&mut self, id: CallId, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.state = State::Ending;
        c.deadline = Some(now + ENDING_GRACE);
        if let Some(tx) = c.invite_tx
            && let Some(cancel) = self.tx.cancel(tx, now)
        {
            self.tx_owner.insert(cancel, (id, Method::Cancel));
        }
    }

    fn bye(&mut self, id: CallId, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.ok = None;
        let Some(d) = c.dialog.as_mut() else {
            self.finish(id, now);
            return;
        };
        let bye = d.request(Method::Bye);
        d.terminate();
        c.state = State::Ending;
        c.deadline = Some(now + ENDING_GRACE);
        let target = c.in_dialog_target();
        self.send(bye, target, Some((id, Method::Bye)), now);
    }

    /// The call is over: report it once and forget it.
    fn finish(&mut self, id: CallId, now: Instant) {
        let Some(c) = self.calls.remove(&id) else { return };
        self.by_sip_id.remove(&c.sip_call_id);
        let summary = CallSummary {
            sip_call_id: c.sip_call_id,
            direction: c.direction,
            remote: c.remote.to_string(),
            status: c.status,
            reason: c.reason.unwrap_or(EndReason::RemoteHangup),
            started: c.started,
            answered: c.answered,
            ended: now,
        };
        self.events.push_back(Event::Ended(id, summary));
    }
}

#[cfg(test)]
mod tests;
