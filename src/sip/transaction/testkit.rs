//! Test kit: message builders, a virtual clock that jumps from deadline to
//! deadline, and a log of what a layer sent and reported, stamped with the
//! virtual time. Nothing here sleeps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Incoming, Transactions, Transmit, TxEvent, TxId};
use crate::sip::msg::{Message, Method};
use crate::sip::transport::{Target, Transport};

/// The UAC's address (the sent-by of its Via).
pub fn uac_addr() -> SocketAddr {
    "10.0.0.1:5060".parse().unwrap()
}

/// The UAS's address.
pub fn uas_addr() -> SocketAddr {
    "10.0.0.2:5060".parse().unwrap()
}

/// Where the UAC sends its requests.
pub fn to_uas(transport: Transport) -> Target {
    Target { transport, addr: uas_addr() }
}

/// Where the UAS sends its responses.
pub fn to_uac(transport: Transport) -> Target {
    Target { transport, addr: uac_addr() }
}

/// A request as the UAC sends it, with two Route headers and a second Via
/// (so the ACK/CANCEL rules "single top Via, same Routes" are visible).
pub fn request(method: &str, branch: &str, transport: Transport) -> Message {
    request_cseq(method, branch, transport, 1)
}

/// [`request`] with a CSeq number.
pub fn request_cseq(method: &str, branch: &str, transport: Transport, cseq: u32) -> Message {
    let raw = format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/{t} 10.0.0.1:5060;branch={branch};rport\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKdownstream\r\n\
         Max-Forwards: 69\r\n\
         Route: <sip:p1.example;lr>\r\n\
         Route: <sip:p2.example;lr>\r\n\
         From: Alice <sip:alice@10.0.0.1>;tag=a1\r\n\
         To: Bob <sip:bob@10.0.0.2>\r\n\
         Call-ID: call-1@10.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 4\r\n\
         \r\n\
         v=0\n",
        t = transport.via_name(),
    );
    Message::parse(raw.as_bytes()).unwrap()
}

/// A response to `req` as a UAS builds it, with a To tag if given.
pub fn response(req: &Message, status: u16, to_tag: Option<&str>) -> Message {
    let mut r = Message::response_to(req, status);
    if let Some(t) = to_tag {
        r.ensure_to_tag(t);
    }
    r
}

/// Seconds since `base`, rounded to the millisecond (for readable asserts).
pub fn secs(base: Instant, at: Instant) -> f64 {
    (at.duration_since(base).as_millis() as f64) / 1000.0
}

/// Everything a layer sent and reported, with virtual times.
#[derive(Debug, Default)]
pub struct Log {
    /// Transmits, with the second they were drained at.
    pub sent: Vec<(f64, Transmit)>,
    /// Events, with the second they were drained at.
    pub events: Vec<(f64, TxEvent)>,
}

impl Log {
    /// Times at which a message with this start (a method, or a status as
    /// text) was sent.
    pub fn sent_times(&self, what: &str) -> Vec<f64> {
        self.sent.iter().filter(|(_, t)| label(&t.msg) == what).map(|(at, _)| *at).collect()
    }
    /// The messages with this start that were sent.
    pub fn sent_msgs(&self, what: &str) -> Vec<&Transmit> {
        self.sent.iter().filter(|(_, t)| label(&t.msg) == what).map(|(_, t)| t).collect()
    }
    /// Events without their times.
    pub fn events(&self) -> Vec<&TxEvent> {
        self.events.iter().map(|(_, e)| e).collect()
    }
    /// Times of the events that satisfy `f`.
    pub fn event_times(&self, f: impl Fn(&TxEvent) -> bool) -> Vec<f64> {
        self.events.iter().filter(|(_, e)| f(e)).map(|(at, _)| *at).collect()
    }
    /// Statuses of the `Response` events for `tx`.
    pub fn response_statuses(&self, tx: TxId) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                TxEvent::Response { tx: t, msg } if *t == tx => msg.status(),
                _ => None,
            })
            .collect()
    }
}

/// `INVITE`, `ACK`, … for a request; `404`, `200`, … for a response.
pub fn label(m: &Message) -> String {
    match m.status() {
        Some(s) => s.to_string(),
        None => m.method().map(|m| m.to_string()).unwrap_or_default(),
    }
}

/// One layer on a virtual clock, with a log of its outputs.
#[derive(Debug)]
pub struct Harness {
    /// The layer under test.
    pub layer: Transactions,
    /// Time zero.
    pub base: Instant,
    /// The current virtual time.
    pub now: Instant,
    /// What it sent and reported.
    pub log: Log,
}

impl Harness {
    /// A layer with the default timers at time zero.
    pub fn new() -> Harness {
        Harness::starting_at(Instant::now())
    }

    /// A layer whose time zero is `base` (to share a clock with another).
    pub fn starting_at(base: Instant) -> Harness {
        Harness { layer: Transactions::new(Default::default()), base, now: base, log: Log::default() }
    }

    /// The instant `s` seconds after time zero.
    pub fn at(&self, s: f64) -> Instant {
        self.base + Duration::from_secs_f64(s)
    }

    /// Moves the clock to `s` seconds, firing every timer on the way.
    pub fn run_until(&mut self, s: f64) {
        let until = self.at(s);
        run_until(&mut self.layer, &mut self.now, until, self.base, &mut self.log);
    }

    /// Drains the outputs into the log at the current time.
    pub fn drain(&mut self) {
        drain(&mut self.layer, self.now, self.base, &mut self.log);
    }

    /// Runs to `s` seconds, then starts a client transaction.
    pub fn send_request(&mut self, s: f64, msg: Message, target: Target) -> TxId {
        self.run_until(s);
        let id = self.layer.send_request(msg, target, self.now);
        self.drain();
        id
    }

    /// Runs to `s` seconds, then hands a response to the layer.
    pub fn on_response(&mut self, s: f64, msg: Message) -> Incoming {
        self.run_until(s);
        let r = self.layer.on_response(msg, self.now);
        self.drain();
        r
    }

    /// Runs to `s` seconds, then hands a request (from the UAC) to the layer.
    pub fn on_request(&mut self, s: f64, msg: Message, transport: Transport) -> Incoming {
        self.run_until(s);
        let r = self.layer.on_request(msg, transport, uac_addr(), self.now);
        self.drain();
        r
    }

    /// Runs to `s` seconds, then responds on a server transaction.
    pub fn respond(&mut self, s: f64, tx: TxId, msg: Message) {
        self.run_until(s);
        self.layer.respond(tx, msg, self.now);
        self.drain();
    }

    /// Runs to `s` seconds, then cancels a client INVITE transaction.
    pub fn cancel(&mut self, s: f64, tx: TxId) -> Option<TxId> {
        self.run_until(s);
        let r = self.layer.cancel(tx, self.now);
        self.drain();
        r
    }

    /// The request a transmit carries, if it is one with this method.
    pub fn last_sent(&self, what: &str) -> Message {
        self.log
            .sent_msgs(what)
            .last()
            .map(|t| t.msg.clone())
            .unwrap_or_else(|| panic!("nothing sent with {what}"))
    }
}

/// Drains `layer`'s transmits and events into `log`, stamped `now`.
pub fn drain(layer: &mut Transactions, now: Instant, base: Instant, log: &mut Log) {
    while let Some(t) = layer.poll_transmit() {
        log.sent.push((secs(base, now), t));
    }
    while let Some(e) = layer.poll_event() {
        log.events.push((secs(base, now), e));
    }
}

/// Jumps the clock from one [`Transactions::poll_timeout`] deadline to the
/// next until `until`, calling `handle_timeout` at each and draining the
/// outputs; leaves `now` at `until`.
pub fn run_until(layer: &mut Transactions, now: &mut Instant, until: Instant, base: Instant, log: &mut Log) {
    let mut steps = 0;
    while let Some(deadline) = layer.poll_timeout().filter(|d| *d <= until) {
        steps += 1;
        assert!(steps < 100_000, "timers do not move forward");
        *now = deadline.max(*now);
        layer.handle_timeout(*now);
        drain(layer, *now, base, log);
    }
    *now = until.max(*now);
}

/// Whether `m` is a request with method `method`.
pub fn is_method(m: &Message, method: Method) -> bool {
    m.is_request() && m.method() == Some(method)
}
