//! Server transactions (RFC 3261 §17.2, with RFC 6026's Accepted state).
//!
//! A server transaction owns one request we received: it hands the request
//! to the TU once, sends the TU's responses, answers the request's
//! retransmissions with the last response, retransmits a non-2xx final
//! response to an INVITE over UDP until the ACK comes, and absorbs that ACK.
//!
//! **INVITE** (§17.2.1, RFC 6026 §8.5–8.7):
//! - *Proceeding*: the INVITE went up to the TU. If the TU has sent no
//!   response 200 ms later, the layer sends `100 Trying` itself (§17.2.1
//!   allows skipping it when the TU answers within 200 ms, which is how a
//!   fast 404 goes out alone). A retransmitted INVITE gets the last
//!   provisional response again — a `100 Trying` at once if there was none.
//! - *Accepted*, when the TU sends a 2xx: retransmitting the 2xx until
//!   the ACK is the TU's business (it passes each copy through
//!   [`respond`](super::Transactions::respond)); retransmitted INVITEs are
//!   absorbed; an ACK that matches goes up as `Ack2xx`. Timer L (64·T1)
//!   ends the transaction.
//! - *Completed*, when the TU sends a 300–699: over UDP Timer G
//!   retransmits it at T1, doubling up to T2; a retransmitted INVITE gets it
//!   again. Timer H (64·T1) gives up waiting for the ACK: `AckTimeout`.
//! - *Confirmed*, on the ACK: the final response is no longer sent, ACK
//!   and INVITE retransmissions are absorbed. Timer I (T4 on UDP, zero on
//!   TCP) ends the transaction.
//!
//! **Non-INVITE** (§17.2.2):
//! - *Trying*: the request went up; retransmissions are absorbed (nothing
//!   to resend yet). The TU must answer: there is no timer here.
//! - *Proceeding*, when the TU sends a 1xx: retransmissions get it again.
//! - *Completed*, when the TU sends a 200–699: retransmissions get it
//!   again. Timer J (64·T1 on UDP, zero on TCP) ends the transaction.

use std::time::{Duration, Instant};

use super::key::ServerKey;
use super::{Backoff, Incoming, Out, TimerConfig, TxEvent, TxId};
use crate::sip::msg::{Message, Method};
use crate::sip::transport::Target;

/// How long a server INVITE transaction waits for the TU's first response
/// before it sends `100 Trying` itself (RFC 3261 §17.2.1).
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// Where a server transaction is in its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerState {
    /// Non-INVITE received, the TU has not answered.
    Trying,
    /// A provisional response was sent (INVITE: from the start).
    Proceeding,
    /// A final response was sent (any for non-INVITE, 300–699 for INVITE).
    Completed,
    /// INVITE only: a 2xx was sent (RFC 6026).
    Accepted,
    /// INVITE only: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// Done: the transaction is removed.
    Terminated,
}

/// One server transaction.
#[derive(Debug)]
pub(super) struct ServerTx {
    pub(super) id: TxId,
    pub(super) state: ServerState,
    /// The request as it first arrived.
    pub(super) request: Message,
    pub(super) key: ServerKey,
    /// Where responses go (`transport::response_target`).
    pub(super) target: Target,
    /// Run by the layer itself (a CANCEL): the TU never hears of it.
    pub(super) internal: bool,
    invite: bool,
    reliable: bool,
    last_provisional: Option<Message>,
    last_final: Option<Message>,
    /// The To tag of the TU's latest tagged response (for a CANCEL's 200).
    to_tag: Option<String>,
    /// When to send `100 Trying` if the TU stays silent.
    trying_at: Option<Instant>,
    /// Timer G.
    retransmit: Option<Backoff>,
    /// Timer H.
    timeout: Option<Instant>,
    /// Timer I, J or L: the end of the transaction.
    linger: Option<Instant>,
}

impl ServerTx {
    /// A transaction for a request that matched none.
    pub(super) fn new(
        id: TxId,
        request: Message,
        key: ServerKey,
        target: Target,
        now: Instant,
        internal: bool,
    ) -> ServerTx {
        let invite = request.method() == Some(Method::Invite);
        ServerTx {
            id,
            state: if invite { ServerState::Proceeding } else { ServerState::Trying },
            request,
            key,
            target,
            internal,
            invite,
            reliable: target.transport.is_reliable(),
            last_provisional: None,
            last_final: None,
            to_tag: None,
            trying_at: invite.then_some(now + TRYING_DELAY),
            retransmit: None,
            timeout: None,
            linger: None,
        }
    }

    /// Whether this is an INVITE transaction.
    pub(super) fn is_invite(&self) -> bool {
        self.invite
    }

    /// Whether the TU has not sent a final response yet.
    pub(super) fn awaiting_final(&self) -> bool {
        matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    /// The To tag of the TU's latest response that had one.
    pub(super) fn to_tag(&self) -> Option<&str> {
        self.to_tag.as_deref()
    }

    /// The earliest armed timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.trying_at, self.retransmit.map(|b| b.at), self.timeout, self.linger].into_iter().flatten().min()
    }

    /// A retransmission of the request arrived.
    pub(super) fn on_retransmission(&mut self, out: &mut Out) {
        let resend = match self.state {
            ServerState::Proceeding if self.invite && self.last_provisional.is_none() => {
                // The client is retransmitting: stop it with a 100 now.
                self.trying_at = None;
                let trying = Message::response_to(&self.request, 100);
                self.last_provisional = Some(trying);
                self.last_provisional.as_ref()
            }
            ServerState::Proceeding => self.last_provisional.as_ref(),
            ServerState::Completed => self.last_final.as_ref(),
            _ => None,
        };
        if let Some(resp) = resend {
            out.send(self.target, resp.clone());
        }
    }

    /// An ACK matched this (INVITE) transaction.
    pub(super) fn on_ack(&mut self, ack: Message, now: Instant, cfg: &TimerConfig) -> Incoming {
        match self.state {
            ServerState::Completed => {
                self.state = ServerState::Confirmed;
                self.retransmit = None;
                self.timeout = None;
                self.linger((!self.reliable).then_some(cfg.t4), now);
                Incoming::Absorbed
            }
            // RFC 6026 §8.7: an ACK matching the Accepted state goes up.
            ServerState::Accepted => Incoming::Ack2xx { msg: ack },
            _ => Incoming::Absorbed,
        }
    }

    /// The TU's response.
    pub(super) fn respond(&mut self, resp: Message, now: Instant, cfg: &TimerConfig, out: &mut Out) {
        let Some(status) = resp.status() else {
            tracing::debug!(tx = self.id.0, "respond() with a request: ignored");
            return;
        };
        let provisional = status < 200;
        let success = (200..300).contains(&status);
        match self.state {
            ServerState::Proceeding | ServerState::Trying => {
                self.trying_at = None;
                if let Some(tag) = resp.to_tag() {
                    self.to_tag = Some(tag);
                }
                out.send(self.target, resp.clone());
                if provisional {
                    self.state = ServerState::Proceeding;
                    self.last_provisional = Some(resp);
                } else if self.invite && success {
                    self.state = ServerState::Accepted;
                    self.linger(Some(cfg.t1 * 64), now);
                } else if self.invite {
                    self.state = ServerState::Completed;
                    self.last_final = Some(resp);
                    if !self.reliable {
                        self.retransmit = Some(Backoff::new(now, cfg.t1));
                    }
                    self.timeout = Some(now + cfg.t1 * 64);
                } else {
                    self.state = ServerState::Completed;
                    self.last_final = Some(resp);
                    self.linger((!self.reliable).then_some(cfg.t1 * 64), now);
                }
            }
            // RFC 6026 §8.5: the TU's 2xx retransmissions pass through.
            ServerState::Accepted if success => out.send(self.target, resp),
            _ => tracing::debug!(tx = self.id.0, status, "response after the final one: ignored"),
        }
    }

    /// Arms the end-of-transaction timer, or ends it now when there is none.
    fn linger(&mut self, after: Option<Duration>, now: Instant) {
        match after {
            Some(d) if !d.is_zero() => self.linger = Some(now + d),
            _ => self.state = ServerState::Terminated,
        }
    }

    /// Fires the timers that are due at `now`.
    pub(super) fn on_timer(&mut self, now: Instant, cfg: &TimerConfig, out: &mut Out) {
        if self.linger.is_some_and(|t| t <= now) {
            self.state = ServerState::Terminated;
            return;
        }
        if self.timeout.is_some_and(|t| t <= now) {
            out.event(TxEvent::AckTimeout { tx: self.id });
            self.state = ServerState::Terminated;
            return;
        }
        if let Some(b) = self.retransmit.as_mut().filter(|b| b.at <= now) {
            if let Some(resp) = &self.last_final {
                out.send(self.target, resp.clone());
            }
            b.rearm(now, (b.interval * 2).min(cfg.t2));
        }
        if self.trying_at.is_some_and(|t| t <= now) {
            self.trying_at = None;
            if self.state == ServerState::Proceeding && self.last_provisional.is_none() {
                let trying = Message::response_to(&self.request, 100);
                out.send(self.target, trying.clone());
                self.last_provisional = Some(trying);
            }
        }
    }

    /// The transport could not deliver our responses: the transaction ends
    /// (§17.2.4).
    pub(super) fn transport_failed(&mut self) {
        self.state = ServerState::Terminated;
    }
}
