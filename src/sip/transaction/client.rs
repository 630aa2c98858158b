//! Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state).
//!
//! A client transaction owns one request we sent: it retransmits it over
//! UDP until a response arrives, hands responses up as
//! [`TxEvent::Response`], builds and sends the ACK for a non-2xx final
//! response to an INVITE, and absorbs what the network repeats.
//!
//! **INVITE** (§17.1.1, RFC 6026 §8.4):
//! - *Calling*: the INVITE was sent. Timer A (UDP only) retransmits it at
//!   T1, 2·T1, 4·T1, … (no cap). Timer B (64·T1) gives up: `Timeout`.
//! - *Proceeding*, on a 1xx: A and B stop (B only runs in Calling). Every
//!   1xx goes up. There is no timer here, the TU decides how long to ring;
//!   but once a CANCEL was sent, the transaction gives up after 64·T1
//!   without a final response (§9.1) with `Timeout`.
//! - *Completed*, on a 300–699: the layer builds the ACK (§17.1.1.3) and
//!   sends it; the response goes up. Each retransmission of the final
//!   response is ACKed again and absorbed. Timer D (max(32 s, 64·T1) on UDP,
//!   zero on TCP) ends the transaction.
//! - *Accepted*, on a 2xx: the 2xx goes up, and so does every 2xx after it
//!   (each is a retransmission or another fork's answer, which the dialog
//!   layer ACKs itself). Timer M (64·T1) ends the transaction.
//!
//! **Non-INVITE** (§17.1.2):
//! - *Trying*: the request was sent. Timer E (UDP only) retransmits it at
//!   T1, then doubling up to T2. Timer F (64·T1) gives up: `Timeout`.
//! - *Proceeding*, on a 1xx: the 1xx goes up; E keeps firing, now every T2;
//!   F still runs.
//! - *Completed*, on a 200–699: the response goes up; E and F stop. Timer K
//!   (T4 on UDP, zero on TCP) ends the transaction, absorbing the final
//!   response's retransmissions until then.

use std::time::Instant;

use super::{Backoff, Out, TimerConfig, TxEvent, TxId};
use crate::sip::msg::{Message, Method};
use crate::sip::transport::Target;

/// Where a client transaction is in its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// INVITE sent, nothing heard.
    Calling,
    /// Non-INVITE sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (any for non-INVITE, 300–699 for INVITE).
    Completed,
    /// INVITE only: a 2xx arrived (RFC 6026).
    Accepted,
    /// Done: the transaction is removed.
    Terminated,
}

/// The CANCEL attached to a client INVITE transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CancelLink {
    /// No CANCEL was asked for.
    None,
    /// Asked for before any provisional response: it will be sent with
    /// this id when the first one arrives (§9.1).
    Deferred(TxId),
    /// Sent as the client transaction with this id.
    Sent(TxId),
}

/// One client transaction.
#[derive(Debug)]
pub(super) struct ClientTx {
    pub(super) id: TxId,
    pub(super) state: ClientState,
    /// The request, kept for retransmission and to build ACK and CANCEL.
    pub(super) request: Message,
    /// Where the request, its retransmissions, its ACK and CANCEL go.
    pub(super) target: Target,
    pub(super) cancel: CancelLink,
    invite: bool,
    /// Timer A or E.
    retransmit: Option<Backoff>,
    /// Timer B or F, or the 64·T1 guard after a CANCEL.
    timeout: Option<Instant>,
    /// Timer D, K or M: the end of the transaction.
    linger: Option<Instant>,
    /// The ACK for a non-2xx final response, resent on its retransmissions.
    ack: Option<Message>,
}

impl ClientTx {
    /// Starts a transaction: sends `request` and arms A/E and B/F.
    pub(super) fn start(
        id: TxId,
        request: Message,
        target: Target,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Out,
    ) -> ClientTx {
        let invite = request.method() == Some(Method::Invite);
        let retransmit = (!target.transport.is_reliable()).then(|| Backoff::new(now, cfg.t1));
        out.send(target, request.clone());
        ClientTx {
            id,
            state: if invite { ClientState::Calling } else { ClientState::Trying },
            request,
            target,
            cancel: CancelLink::None,
            invite,
            retransmit,
            timeout: Some(now + cfg.t1 * 64),
            linger: None,
            ack: None,
        }
    }

    /// Whether this is an INVITE transaction.
    pub(super) fn is_invite(&self) -> bool {
        self.invite
    }

    /// The earliest armed timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit.map(|b| b.at), self.timeout, self.linger].into_iter().flatten().min()
    }

    /// A response matched this transaction.
    pub(super) fn on_response(&mut self, resp: Message, now: Instant, cfg: &TimerConfig, out: &mut Out) {
        let Some(status) = resp.status() else { return };
        let provisional = status < 200;
        let success = (200..300).contains(&status);
        let reliable = self.target.transport.is_reliable();
        match self.state {
            ClientState::Calling => {
                // Any response stops Timer A; B only runs in Calling.
                self.retransmit = None;
                self.timeout = None;
                if provisional {
                    self.state = ClientState::Proceeding;
                    self.report(resp, out);
                } else {
                    self.invite_final(resp, success, now, cfg, out);
                }
            }
            ClientState::Proceeding if self.invite => {
                if provisional {
                    self.report(resp, out);
                } else {
                    self.timeout = None;
                    self.invite_final(resp, success, now, cfg, out);
                }
            }
            ClientState::Trying | ClientState::Proceeding => {
                if provisional {
                    // E keeps running, now at T2 (see on_timer); F too.
                    self.state = ClientState::Proceeding;
                } else {
                    self.state = ClientState::Completed;
                    self.retransmit = None;
                    self.timeout = None;
                    self.linger(if reliable { None } else { Some(cfg.t4) }, now);
                }
                self.report(resp, out);
            }
            ClientState::Completed if self.invite && !provisional && !success => {
                // A retransmission of the final response: ACK it again.
                if let Some(ack) = &self.ack {
                    out.send(self.target, ack.clone());
                }
            }
            ClientState::Accepted if success => self.report(resp, out),
            _ => tracing::trace!(tx = self.id.0, status, "response absorbed"),
        }
    }

    /// An INVITE's final response in Calling or Proceeding.
    fn invite_final(&mut self, resp: Message, success: bool, now: Instant, cfg: &TimerConfig, out: &mut Out) {
        if success {
            self.state = ClientState::Accepted;
            self.linger(Some(cfg.t1 * 64), now);
        } else {
            self.ack = build_ack(&self.request, &resp);
            if let Some(ack) = &self.ack {
                out.send(self.target, ack.clone());
            }
            self.state = ClientState::Completed;
            let timer_d = (!self.target.transport.is_reliable())
                .then(|| (cfg.t1 * 64).max(std::time::Duration::from_secs(32)));
            self.linger(timer_d, now);
        }
        self.report(resp, out);
    }

    /// Arms the end-of-transaction timer, or ends it now when there is none.
    fn linger(&mut self, after: Option<std::time::Duration>, now: Instant) {
        match after {
            Some(d) if !d.is_zero() => self.linger = Some(now + d),
            _ => self.state = ClientState::Terminated,
        }
    }

    fn report(&self, msg: Message, out: &mut Out) {
        out.event(TxEvent::Response { tx: self.id, msg });
    }

    /// A CANCEL was sent for this INVITE: give up 64·T1 later if no final
    /// response came by then (§9.1).
    pub(super) fn cancel_sent(&mut self, now: Instant, cfg: &TimerConfig) {
        if self.state == ClientState::Proceeding && self.timeout.is_none() {
            self.timeout = Some(now + cfg.t1 * 64);
        }
    }

    /// Fires the timers that are due at `now`.
    pub(super) fn on_timer(&mut self, now: Instant, cfg: &TimerConfig, out: &mut Out) {
        if self.linger.is_some_and(|t| t <= now) {
            self.state = ClientState::Terminated;
            return;
        }
        if self.timeout.is_some_and(|t| t <= now) {
            out.event(TxEvent::Timeout { tx: self.id });
            self.state = ClientState::Terminated;
            return;
        }
        if let Some(b) = self.retransmit.as_mut().filter(|b| b.at <= now) {
            out.send(self.target, self.request.clone());
            let next = if self.invite {
                b.interval * 2
            } else if self.state == ClientState::Proceeding {
                cfg.t2
            } else {
                (b.interval * 2).min(cfg.t2)
            };
            b.rearm(now, next);
        }
    }

    /// The transport could not deliver to our target.
    pub(super) fn transport_failed(&mut self, out: &mut Out) {
        if matches!(self.state, ClientState::Calling | ClientState::Trying | ClientState::Proceeding) {
            out.event(TxEvent::Timeout { tx: self.id });
        }
        self.state = ClientState::Terminated;
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
/// Request-URI, Call-ID, From, the single top Via and its Route headers; the
/// response's To (with its tag); the INVITE's CSeq number with method ACK.
/// `None` if `invite` is not a request.
pub(super) fn build_ack(invite: &Message, resp: &Message) -> Option<Message> {
    let uri = invite.request_uri()?.clone();
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = invite.header("Via") {
        ack.push("Via", via.to_string());
    }
    ack.push("Max-Forwards", invite.header("Max-Forwards").unwrap_or("70").to_string());
    copy(invite, &mut ack, "From");
    match resp.header("To") {
        Some(to) => ack.push("To", to.to_string()),
        None => copy(invite, &mut ack, "To"),
    }
    copy(invite, &mut ack, "Call-ID");
    if let Ok(cseq) = invite.cseq() {
        ack.push("CSeq", format!("{} ACK", cseq.seq));
    }
    for route in invite.header_values("Route") {
        ack.push("Route", route.to_string());
    }
    Some(ack)
}

/// The CANCEL for a request (RFC 3261 §9.1): its Request-URI, Call-ID, To,
/// From, CSeq number (method CANCEL), single top Via and Route headers.
/// `None` if `request` is not a request.
pub(super) fn build_cancel(request: &Message) -> Option<Message> {
    let uri = request.request_uri()?.clone();
    let mut cancel = Message::request(Method::Cancel, uri);
    if let Some(via) = request.header("Via") {
        cancel.push("Via", via.to_string());
    }
    cancel.push("Max-Forwards", request.header("Max-Forwards").unwrap_or("70").to_string());
    copy(request, &mut cancel, "From");
    copy(request, &mut cancel, "To");
    copy(request, &mut cancel, "Call-ID");
    if let Ok(cseq) = request.cseq() {
        cancel.push("CSeq", format!("{} CANCEL", cseq.seq));
    }
    for route in request.header_values("Route") {
        cancel.push("Route", route.to_string());
    }
    Some(cancel)
}

fn copy(from: &Message, to: &mut Message, name: &'static str) {
    if let Some(v) = from.header(name) {
        to.push(name, v.to_string());
    }
}
