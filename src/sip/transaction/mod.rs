//! The RFC 3261 §17 transaction layer, with RFC 6026's Accepted state.
//!
//! A transaction is one request and the responses to it. The layer makes
//! UDP look reliable to the transaction user (TU: the dialog, registration
//! and call logic above): it retransmits requests until answered and final
//! responses until acknowledged, absorbs what the network duplicates, ACKs
//! non-2xx final responses to our INVITEs, answers CANCELs, and tells the TU
//! when a peer stopped answering.
//!
//! # Driving contract
//!
//! [`Transactions`] does no IO, reads no clock and starts no thread. It is
//! driven like str0m's `Rtc` or quinn-proto's `Connection`:
//!
//! 1. feed it one input with the current time: [`on_request`], [`on_response`],
//!    [`send_request`], [`respond`], [`cancel`], [`transport_failed`] or
//!    [`handle_timeout`];
//! 2. drain [`poll_transmit`] until `None` (send each message to its target)
//!    and [`poll_event`] until `None` (hand each to the TU);
//! 3. arm one timer for [`poll_timeout`]; when it fires, call
//!    [`handle_timeout`] and go to 2. Calling it early is harmless; the
//!    deadline can move after any input, so re-read it each time.
//!
//! The TU's answers to events and requests (a [`respond`], a [`cancel`]) are
//! inputs too: drain again after them.
//!
//! [`on_request`]: Transactions::on_request
//! [`on_response`]: Transactions::on_response
//! [`send_request`]: Transactions::send_request
//! [`respond`]: Transactions::respond
//! [`cancel`]: Transactions::cancel
//! [`transport_failed`]: Transactions::transport_failed
//! [`handle_timeout`]: Transactions::handle_timeout
//! [`poll_transmit`]: Transactions::poll_transmit
//! [`poll_event`]: Transactions::poll_event
//! [`poll_timeout`]: Transactions::poll_timeout
//!
//! # The four state machines
//!
//! Timers are named as in RFC 3261 (table 4) and RFC 6026. "UDP only"
//! timers are not armed on a reliable transport, and the end-of-transaction
//! timers that are "zero on TCP" end the transaction at once.
//!
//! **Client INVITE.** *Calling* → (1xx) *Proceeding* → (300–699)
//! *Completed* → (Timer D) *Terminated*; a 2xx from Calling or Proceeding
//! leads to *Accepted* → (Timer M) *Terminated*. Calling retransmits on
//! Timer A (UDP only, T1 doubling without a cap) and gives up on Timer B
//! (64·T1, `Timeout`). Proceeding has no timer of its own (the TU decides
//! how long to ring), except that 64·T1 after a CANCEL was sent without a
//! final response the transaction gives up (§9.1). In Completed the layer
//! has sent the ACK (§17.1.1.3) and re-sends it for every retransmission of
//! the final response, which it absorbs; Timer D is max(32 s, 64·T1) on
//! UDP, zero on TCP. In Accepted every 2xx goes up as a `Response` (the
//! dialog layer ACKs each one); Timer M is 64·T1.
//!
//! **Client non-INVITE.** *Trying* → (1xx) *Proceeding* → (200–699)
//! *Completed* → (Timer K) *Terminated*. Timer E retransmits (UDP only:
//! T1 doubling up to T2 in Trying, every T2 in Proceeding); Timer F (64·T1)
//! gives up with `Timeout`. Timer K is T4 on UDP, zero on TCP; retransmitted
//! final responses are absorbed until then.
//!
//! **Server INVITE.** *Proceeding* → (TU 2xx) *Accepted* → (Timer L)
//! *Terminated*; *Proceeding* → (TU 300–699) *Completed* → (ACK)
//! *Confirmed* → (Timer I) *Terminated*. In Proceeding the layer sends
//! `100 Trying` if the TU has not responded within [`TRYING_DELAY`]
//! (200 ms), and re-sends the last provisional response on a retransmitted
//! INVITE (a `100 Trying` at once if there was none). In Accepted INVITE
//! retransmissions are absorbed, the TU's 2xx retransmissions pass through
//! and a matching ACK goes up as [`Incoming::Ack2xx`]; Timer L is 64·T1. In
//! Completed, Timer G re-sends the final response (UDP only: T1 doubling up
//! to T2), so does each retransmitted INVITE, and Timer H (64·T1) gives up
//! with `AckTimeout`. The ACK moves it to Confirmed: nothing is sent any
//! more, and Timer I is T4 on UDP, zero on TCP.
//!
//! **Server non-INVITE.** *Trying* → (TU 1xx) *Proceeding* → (TU 200–699)
//! *Completed* → (Timer J) *Terminated*. Retransmitted requests get the last
//! response again (none in Trying). Timer J is 64·T1 on UDP, zero on TCP.
//! There is no timer in Trying: the TU must answer every request.
//!
//! # CANCEL
//!
//! A CANCEL we receive is a server non-INVITE transaction of its own that
//! the layer runs without the TU (it never appears as a request, and no
//! event names it). If it matches a live server INVITE transaction (same
//! branch and sent-by, §9.2) the layer answers it `200` — with the To tag
//! of the TU's responses to the INVITE, or a fresh one if the TU has sent
//! none with a tag yet — and, if the INVITE has no final response, reports
//! [`TxEvent::Cancelled`]: the TU then answers the INVITE with 487. An
//! unmatched CANCEL is answered `481`. Only INVITE transactions are looked
//! up: a CANCEL for a non-INVITE request also gets 481 (cancelling those has
//! no effect anyway).
//!
//! A CANCEL we send ([`Transactions::cancel`]) is built by the layer (§9.1)
//! and runs as a client non-INVITE transaction. It waits for the INVITE's
//! first provisional response if none has arrived yet.
//!
//! # Matching
//!
//! Requests match server transactions by top Via branch, sent-by and method
//! (ACK as INVITE); requests without the RFC 3261 magic cookie are matched
//! on Call-ID, CSeq number, From tag and top Via instead of the full
//! RFC 2543 rules. Responses match client transactions by top Via branch
//! and CSeq method.
//!
//! # Limits
//!
//! - ACK for a 2xx is not a transaction. If the TU passes one to
//!   [`Transactions::send_request`] it is sent once and no transaction is
//!   made.
//! - The TU must answer every [`Incoming::Request`]; a server transaction
//!   without an answer lives until the layer is dropped.

mod client;
mod key;
mod server;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::{CancelLink, ClientState, ClientTx};
use key::{ClientKey, ServerKey};
use server::ServerTx;

use crate::sip::msg::{Message, Method};
use crate::sip::transport::{self, Target, Transport};

pub use server::TRYING_DELAY;

/// The RFC 3261 timer base values (§17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate: the first retransmission interval; 64·T1 is the
    /// transaction timeout. Default 500 ms.
    pub t1: Duration,
    /// The longest retransmission interval for non-INVITE requests and
    /// INVITE responses. Default 4 s.
    pub t2: Duration,
    /// How long the network may keep a message. Default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

/// Identifies a transaction for as long as it lives (ids are not reused).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// A message to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Where to: over which transport, to which address.
    pub target: Target,
    /// The message.
    pub msg: Message,
}

/// What the layer reports to the TU, drained with
/// [`Transactions::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A response for a client transaction: provisional or final. The
    /// retransmissions of a non-2xx final response are absorbed; for an
    /// INVITE every 2xx is passed up (RFC 6026): the dialog layer ACKs each.
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        msg: Message,
    },
    /// The client transaction got no final response: Timer B or F fired,
    /// 64·T1 passed after a CANCEL without a final response, or the
    /// transport failed. The TU treats it as a 408.
    Timeout {
        /// The client transaction.
        tx: TxId,
    },
    /// A server INVITE transaction's Timer H fired: no ACK came for the
    /// non-2xx final response.
    AckTimeout {
        /// The server transaction.
        tx: TxId,
    },
    /// A CANCEL matched this server INVITE transaction before its final
    /// response. The layer has already answered the CANCEL with 200; the TU
    /// should answer the INVITE with 487.
    Cancelled {
        /// The server INVITE transaction.
        tx: TxId,
    },
    /// The transaction reached Terminated and was removed. Also reported
    /// for a CANCEL id handed out by [`Transactions::cancel`] that was never
    /// sent because the INVITE ended first.
    Terminated {
        /// The transaction.
        tx: TxId,
    },
}

/// What became of a message handed to [`Transactions::on_request`] or
/// [`Transactions::on_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request: the TU must answer it with [`Transactions::respond`].
    /// For an INVITE the layer sends `100 Trying` itself if the TU has not
    /// responded within [`TRYING_DELAY`].
    Request {
        /// The new server transaction.
        tx: TxId,
        /// The request.
        msg: Message,
    },
    /// The ACK for a 2xx, which belongs to the dialog layer: an ACK that
    /// matched no server transaction, or one in Accepted (RFC 6026).
    Ack2xx {
        /// The ACK.
        msg: Message,
    },
    /// Absorbed by the layer (a retransmission, the ACK for a non-2xx, a
    /// CANCEL, a response for a client transaction whose events follow, or
    /// a request that cannot be matched at all): nothing for the TU.
    Absorbed,
    /// A response that matched no client transaction: a 2xx retransmission
    /// after the client INVITE transaction is gone (the dialog re-ACKs), or
    /// a stray the TU may drop.
    StrayResponse {
        /// The response.
        msg: Message,
    },
}

/// A retransmission timer (A, E or G): when it fires next, and the interval
/// that led there.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    at: Instant,
    interval: Duration,
}

impl Backoff {
    fn new(now: Instant, first: Duration) -> Backoff {
        Backoff { at: now + first, interval: first }
    }
    fn rearm(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.at = now + interval;
    }
}

/// The output queues the transactions write to.
#[derive(Debug, Default)]
struct Out {
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl Out {
    fn send(&mut self, target: Target, msg: Message) {
        self.transmits.push_back(Transmit { target, msg });
    }
    fn event(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }
}

/// A transaction of either role, boxed: the map of live transactions stays
/// small and cheap to grow.
#[derive(Debug)]
enum Tx {
    Client(Box<ClientTx>),
    Server(Box<ServerTx>),
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Tx::Client(c) => c.next_deadline(),
            Tx::Server(s) => s.next_deadline(),
        }
    }
    /// Still waiting for its final response (client) or for the TU's
    /// final response (server); the absorbing states after it do not count.
    fn awaits_final(&self) -> bool {
        match self {
            Tx::Client(c) => {
                matches!(c.state, ClientState::Calling | ClientState::Trying | ClientState::Proceeding)
            }
            Tx::Server(s) => {
                matches!(s.state, server::ServerState::Trying | server::ServerState::Proceeding)
            }
        }
    }
    fn is_terminated(&self) -> bool {
        match self {
            Tx::Client(c) => c.state == ClientState::Terminated,
            Tx::Server(s) => s.state == server::ServerState::Terminated,
        }
    }
    fn request(&self) -> &Message {
        match self {
            Tx::Client(c) => &c.request,
            Tx::Server(s) => &s.request,
        }
    }
}

/// A live transaction and the deadline it is filed under in the timer index.
#[derive(Debug)]
struct Entry {
    tx: Tx,
    deadline: Option<Instant>,
}

/// All client and server transactions of one SIP endpoint.
///
/// See the [module documentation](self) for the driving contract.
pub struct Transactions {
    cfg: TimerConfig,
    next_id: u64,
    txs: HashMap<TxId, Entry>,
    server_keys: HashMap<ServerKey, TxId>,
    client_keys: HashMap<ClientKey, TxId>,
    /// Every live transaction's earliest deadline.
    timers: BTreeSet<(Instant, TxId)>,
    out: Out,
}

impl fmt::Debug for Transactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactions")
            .field("live", &self.txs.len())
            .field("next_timeout", &self.poll_timeout())
            .finish_non_exhaustive()
    }
}

impl Transactions {
    /// An empty layer. T1 and T2 are raised to at least 1 ms so that the
    /// retransmission timers always move forward.
    pub fn new(cfg: TimerConfig) -> Self {
        let min = Duration::from_millis(1);
        Transactions {
            cfg: TimerConfig { t1: cfg.t1.max(min), t2: cfg.t2.max(min), t4: cfg.t4 },
            next_id: 1,
            txs: HashMap::new(),
            server_keys: HashMap::new(),
            client_keys: HashMap::new(),
            timers: BTreeSet::new(),
            out: Out::default(),
        }
    }

    fn alloc_id(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    /// A request arrived from `source` over `transport`, already stamped
    /// with `received`/`rport` ([`transport::stamp_received`]).
    ///
    /// A new request opens a server transaction and comes back as
    /// [`Incoming::Request`]; a retransmission is answered with the last
    /// response and absorbed; an ACK is absorbed by the INVITE transaction
    /// it acknowledges or, matching none, is [`Incoming::Ack2xx`]; a CANCEL
    /// is answered by the layer (see the module doc). A request without a
    /// top Via or CSeq (which the parser never lets through) is dropped as
    /// `Absorbed`. Drain the outputs afterwards.
    pub fn on_request(
        &mut self,
        msg: Message,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) -> Incoming {
        let (Some(method), Some(key)) =
            (msg.is_request().then(|| msg.method()).flatten(), ServerKey::of_request(&msg))
        else {
            tracing::debug!("request without a usable Via or CSeq dropped");
            return Incoming::Absorbed;
        };
        let matched = self.server_keys.get(&key).copied();
        if method == Method::Ack {
            let Some(id) = matched else {
                return Incoming::Ack2xx { msg };
            };
            let incoming = match self.txs.get_mut(&id) {
                Some(Entry { tx: Tx::Server(s), .. }) => s.on_ack(msg, now, &self.cfg),
                _ => Incoming::Absorbed,
            };
            self.settle(id);
            return incoming;
        }
        if let Some(id) = matched {
            if let Some(Entry { tx: Tx::Server(s), .. }) = self.txs.get_mut(&id) {
                s.on_retransmission(&mut self.out);
            }
            self.settle(id);
            return Incoming::Absorbed;
        }
        let Ok(via) = msg.top_via() else {
            return Incoming::Absorbed;
        };
        let target = transport::response_target(&via, transport, source);
        if method == Method::Cancel {
            self.on_cancel(msg, key, target, now);
            return Incoming::Absorbed;
        }
        let id = self.alloc_id();
        let tx = ServerTx::new(id, msg.clone(), key.clone(), target, now, false);
        self.insert(id, Tx::Server(Box::new(tx)));
        self.server_keys.insert(key, id);
        Incoming::Request { tx: id, msg }
    }

    /// A new CANCEL (§9.2): run it as an internal server transaction and
    /// answer it 200 if it matches a server INVITE transaction, else 481.
    fn on_cancel(&mut self, cancel: Message, key: ServerKey, target: Target, now: Instant) {
        let invite =
            self.server_keys.get(&key.with_method(Method::Invite)).and_then(|id| match self.txs.get(id) {
                Some(Entry { tx: Tx::Server(s), .. }) if s.is_invite() => Some(s),
                _ => None,
            });
        let (status, tag) = match invite {
            Some(inv) => {
                if inv.awaiting_final() {
                    self.out.event(TxEvent::Cancelled { tx: inv.id });
                }
                (200, inv.to_tag().map(str::to_string))
            }
            None => (481, None),
        };
        let mut resp = Message::response_to(&cancel, status);
        resp.ensure_to_tag(&tag.unwrap_or_else(|| crate::sip::random_token(10)));
        let id = self.alloc_id();
        let mut tx = ServerTx::new(id, cancel, key.clone(), target, now, true);
        tx.respond(resp, now, &self.cfg, &mut self.out);
        self.server_keys.insert(key, id);
        self.insert(id, Tx::Server(Box::new(tx)));
    }

    /// A response arrived. If it matches a client transaction it is
    /// processed (events follow through [`poll_event`](Self::poll_event))
    /// and `Absorbed` is returned; otherwise it is an
    /// [`Incoming::StrayResponse`].
    pub fn on_response(&mut self, msg: Message, now: Instant) -> Incoming {
        let Some(id) = (!msg.is_request())
            .then(|| ClientKey::of_response(&msg))
            .flatten()
            .and_then(|key| self.client_keys.get(&key).copied())
        else {
            return Incoming::StrayResponse { msg };
        };
        let Some(Entry { tx: Tx::Client(c), .. }) = self.txs.get_mut(&id) else {
            return Incoming::StrayResponse { msg };
        };
        c.on_response(msg, now, &self.cfg, &mut self.out);
        self.after_invite_progress(id, now);
        self.settle(id);
        Incoming::Absorbed
    }

    /// A deferred CANCEL goes out with the first provisional response, and
    /// is dropped if the INVITE got its final response first.
    fn after_invite_progress(&mut self, id: TxId, now: Instant) {
        let Some(Entry { tx: Tx::Client(c), .. }) = self.txs.get_mut(&id) else {
            return;
        };
        let CancelLink::Deferred(cancel_id) = c.cancel else {
            return;
        };
        match c.state {
            ClientState::Proceeding => {
                c.cancel = CancelLink::Sent(cancel_id);
                self.send_cancel(id, cancel_id, now);
            }
            ClientState::Calling => {}
            _ => {
                c.cancel = CancelLink::None;
                self.out.event(TxEvent::Terminated { tx: cancel_id });
            }
        }
    }

    /// Starts a client transaction for `msg`, which carries its top Via with
    /// a fresh branch; the request and its retransmissions go to `target`.
    /// For an INVITE the layer sends the ACK for a non-2xx final response
    /// itself. An ACK (for a 2xx) is not a transaction: it is sent once and
    /// the returned id gets no events. Drain the outputs afterwards.
    pub fn send_request(&mut self, msg: Message, target: Target, now: Instant) -> TxId {
        let id = self.alloc_id();
        if msg.method() == Some(Method::Ack) || !msg.is_request() {
            self.out.send(target, msg);
            return id;
        }
        self.start_client(id, msg, target, now);
        id
    }

    fn start_client(&mut self, id: TxId, msg: Message, target: Target, now: Instant) {
        match ClientKey::of_request(&msg) {
            Some(key) => {
                if let Some(old) = self.client_keys.insert(key, id) {
                    tracing::warn!(tx = id.0, old = old.0, "branch reused by a new request");
                }
            }
            None => tracing::warn!(tx = id.0, "request without a branch: responses cannot match"),
        }
        let tx = ClientTx::start(id, msg, target, now, &self.cfg, &mut self.out);
        self.insert(id, Tx::Client(Box::new(tx)));
    }

    /// Cancels a client INVITE transaction (§9.1): builds the CANCEL and
    /// runs it as a client non-INVITE transaction, whose id is returned.
    /// Before any provisional response the CANCEL is held back and sent when
    /// the first one arrives (the id is returned now; if the INVITE ends
    /// first, the CANCEL is never sent and its id is reported `Terminated`).
    /// Asking again returns the same id; [`request`](Self::request) knows
    /// the CANCEL once it is sent. `None` if `invite_tx` is not a live client
    /// INVITE transaction without a final response. Drain the outputs
    /// afterwards.
    pub fn cancel(&mut self, invite_tx: TxId, now: Instant) -> Option<TxId> {
        let Some(Entry { tx: Tx::Client(c), .. }) = self.txs.get(&invite_tx) else {
            return None;
        };
        if !c.is_invite() {
            return None;
        }
        let (state, link) = (c.state, c.cancel);
        match (state, link) {
            (ClientState::Calling | ClientState::Proceeding, CancelLink::Deferred(id))
            | (ClientState::Calling | ClientState::Proceeding, CancelLink::Sent(id)) => Some(id),
            (ClientState::Calling, CancelLink::None) => {
                let id = self.alloc_id();
                self.set_cancel_link(invite_tx, CancelLink::Deferred(id));
                Some(id)
            }
            (ClientState::Proceeding, CancelLink::None) => {
                let id = self.alloc_id();
                self.set_cancel_link(invite_tx, CancelLink::Sent(id));
                self.send_cancel(invite_tx, id, now);
                Some(id)
            }
            _ => None,
        }
    }

    fn set_cancel_link(&mut self, invite_tx: TxId, link: CancelLink) {
        if let Some(Entry { tx: Tx::Client(c), .. }) = self.txs.get_mut(&invite_tx) {
            c.cancel = link;
        }
    }

    /// Builds and starts the CANCEL for `invite_tx` with id `cancel_id`.
    fn send_cancel(&mut self, invite_tx: TxId, cancel_id: TxId, now: Instant) {
        let Some(Entry { tx: Tx::Client(c), .. }) = self.txs.get_mut(&invite_tx) else {
            return;
        };
        c.cancel_sent(now, &self.cfg);
        let target = c.target;
        let Some(cancel) = client::build_cancel(&c.request) else {
            return;
        };
        self.settle(invite_tx);
        self.start_client(cancel_id, cancel, target, now);
    }

    /// The TU's response on server transaction `tx`, sent to the target
    /// derived from the request's top Via ([`transport::response_target`]).
    /// For an INVITE a 2xx moves the transaction to Accepted and a 300–699
    /// to Completed (see the module doc). Responses to unknown or finished
    /// transactions are dropped. Drain the outputs afterwards.
    pub fn respond(&mut self, tx: TxId, msg: Message, now: Instant) {
        match self.txs.get_mut(&tx) {
            Some(Entry { tx: Tx::Server(s), .. }) => s.respond(msg, now, &self.cfg, &mut self.out),
            _ => {
                tracing::debug!(tx = tx.0, "respond() on no live server transaction");
                return;
            }
        }
        self.settle(tx);
    }

    /// The transport could not deliver to `target` (a TCP connection that
    /// could not be opened or broke, an ICMP error). Client transactions
    /// sending there end with [`TxEvent::Timeout`]; server transactions
    /// answering there end (§17.1.4, §17.2.4). Drain the outputs afterwards.
    pub fn transport_failed(&mut self, target: Target, _now: Instant) {
        let hit: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, e)| match &e.tx {
                Tx::Client(c) => c.target == target,
                Tx::Server(s) => s.target == target,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in hit {
            match self.txs.get_mut(&id).map(|e| &mut e.tx) {
                Some(Tx::Client(c)) => c.transport_failed(&mut self.out),
                Some(Tx::Server(s)) => s.transport_failed(),
                None => {}
            }
            self.settle(id);
        }
    }

    /// Fires every timer due at `now`. Call it when the
    /// [`poll_timeout`](Self::poll_timeout) deadline has passed; calling it
    /// early does nothing. Drain the outputs afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxId> = self.timers.iter().take_while(|(at, _)| *at <= now).map(|(_, id)| *id).collect();
        for id in due {
            match self.txs.get_mut(&id).map(|e| &mut e.tx) {
                Some(Tx::Client(c)) => c.on_timer(now, &self.cfg, &mut self.out),
                Some(Tx::Server(s)) => s.on_timer(now, &self.cfg, &mut self.out),
                None => {}
            }
            self.settle(id);
        }
    }

    /// The next message to send, if any. Drain until `None` after every
    /// input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU, if any. Drain until `None` after every
    /// input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.out.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` when no timer is armed. Changes after any input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Number of live transactions, including the CANCELs the layer answers
    /// itself.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Number of transactions still waiting for a final response: the
    /// ones a clean shutdown lets finish. Transactions that only linger to
    /// absorb retransmissions (Completed, Accepted, Confirmed) are not
    /// counted.
    pub fn pending(&self) -> usize {
        self.txs.values().filter(|e| e.tx.awaits_final()).count()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The original request of a live client or server transaction.
    pub fn request(&self, tx: TxId) -> Option<&Message> {
        self.txs.get(&tx).map(|e| e.tx.request())
    }

    fn insert(&mut self, id: TxId, tx: Tx) {
        self.txs.insert(id, Entry { tx, deadline: None });
        self.settle(id);
    }

    /// After a transaction changed: remove it if it terminated, else file
    /// it under its new earliest deadline.
    fn settle(&mut self, id: TxId) {
        let Some(entry) = self.txs.get_mut(&id) else {
            return;
        };
        if !entry.tx.is_terminated() {
            let next = entry.tx.next_deadline();
            if next != entry.deadline {
                if let Some(old) = entry.deadline {
                    self.timers.remove(&(old, id));
                }
                if let Some(new) = next {
                    self.timers.insert((new, id));
                }
                entry.deadline = next;
            }
            return;
        }
        let Some(entry) = self.txs.remove(&id) else {
            return;
        };
        if let Some(old) = entry.deadline {
            self.timers.remove(&(old, id));
        }
        match entry.tx {
            Tx::Client(c) => {
                if let Some(key) = ClientKey::of_request(&c.request)
                    && self.client_keys.get(&key) == Some(&id)
                {
                    self.client_keys.remove(&key);
                }
                if let CancelLink::Deferred(cancel_id) = c.cancel {
                    self.out.event(TxEvent::Terminated { tx: cancel_id });
                }
                self.out.event(TxEvent::Terminated { tx: id });
            }
            Tx::Server(s) => {
                if self.server_keys.get(&s.key) == Some(&id) {
                    self.server_keys.remove(&s.key);
                }
                if !s.internal {
                    self.out.event(TxEvent::Terminated { tx: id });
                }
            }
        }
    }
}
