//! A call's media: two RTP/RTCP socket pairs (one facing the agent, one
//! facing the client), symmetric latching, forwarding, DTMF and recording.
//!
//! ## Driving contract
//!
//! One [`Relay`] per call, owned by the call's tokio task (one owner per
//! call: nothing here is shared with other calls, there is no lock). The
//! task creates it inside the runtime ([`Relay::new`]), offers
//! [`Relay::local`] in each leg's SDP, tells it what each SDP said
//! ([`Relay::set_remote`], [`Relay::set_payloads`]), what to forward
//! ([`Relay::set_forwarding`]) and when to record
//! ([`Relay::start_recording`]), and otherwise awaits [`Relay::next_event`]
//! in a `tokio::select!` next to its SIP events. `next_event` is cancel-safe:
//! every datagram is handled completely inside one poll, and all state lives
//! in the `Relay`, so dropping the future at any await point loses nothing.
//! At hang-up, [`Relay::finish`] drains the timeline and seals the file.
//!
//! ## What happens to a packet
//!
//! - **RTP** from a side must be RTP version 2 ([`rtp::parse`]). The first
//!   packet latches that side's address (symmetric RTP, RFC 4961): from then
//!   on the side's media goes to where its packets come from, not to what
//!   its SDP said. Packets from another address are dropped, unless the
//!   latched address has been silent for more than 1 s, in which case the
//!   relay re-latches to the new one ([`RelayEvent::Latched`]).
//!   Telephone-events are fed to the side's DTMF detector
//!   ([`RelayEvent::Dtmf`]); while recording, every packet goes to the
//!   timeline; if forwarding from that side is on, the packet is sent
//!   unchanged from the other side's socket to the other side, except that
//!   the payload-type byte is rewritten when the two sides use different
//!   numbers for the same format (telephone-event, in practice).
//! - **RTCP** on the RTCP sockets (or multiplexed on the RTP socket by the
//!   latched peer) is latched the same way and relayed RTCP-to-RTCP, in both
//!   directions whatever the forwarding flags (RTCP continues on hold,
//!   RFC 3264 §8.4).
//! - Every ~100 ms the timeline is drained into the recorder; a recorder
//!   error is returned once as [`RelayEvent::RecorderFailed`] and the call
//!   must end (fail closed, invariant E1).
//!
//! ## The hot path
//!
//! Each socket has one receive buffer allocated at construction; forwarding
//! uses `try_send_to` (a send that would block is dropped and counted, never
//! awaited); the timeline push works on the received buffer; the drain
//! buffer is preallocated and reused. No packet is logged above `trace`.
//! Time is read from `tokio::time::Instant` here, at the IO edge, and passed
//! to the sans-IO timeline as a `std::time::Instant`.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::media::dtmf::{DtmfDetector, DtmfEvent};
use crate::media::g711::Codec;
use crate::media::ports::{PortError, PortLease, PortPool};
use crate::media::recorder::{RecordError, Recorder, Sealed};
use crate::media::rtp;
use crate::media::timeline::{Side, SideStats, Timeline};

/// The receive buffer's size. A datagram is handled completely before the
/// next is read, and never across an `.await`, so the buffer is one per
/// thread ([`RECV_BUF`]), lent to the relay being polled — not one per call
/// (2 KiB a call saved). A datagram that fills it may have been cut and is
/// dropped.
const BUF_LEN: usize = 2048;

thread_local! {
    /// This thread's receive buffer, while no relay is being polled on it.
    static RECV_BUF: std::cell::Cell<Box<[u8]>> = std::cell::Cell::new(Box::default());
}
/// How often the timeline is drained into the recorder and the silence
/// alarms are checked.
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// A latched address silent for longer than this may be replaced.
const RELATCH_AFTER: Duration = Duration::from_secs(1);
/// The timeline's reorder window.
const REORDER_WINDOW: Duration = Duration::from_millis(200);
/// The default silence alarm (see [`Relay::set_media_timeout`]).
const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// Datagrams handled per poll before yielding to the runtime.
const BUDGET: usize = 64;
/// Room for the events one poll can produce without allocating.
const EVENT_CAPACITY: usize = 8;

/// Something the call should know about. Returned by [`Relay::next_event`].
#[derive(Debug)]
pub enum RelayEvent {
    /// A side's RTP is now sent to `from`, where its packets come from (the
    /// first packet, or a re-latch after the old address went silent).
    Latched {
        /// Which side.
        side: Side,
        /// The address its RTP now goes to.
        from: SocketAddr,
    },
    /// A side sent a DTMF digit (RFC 4733).
    Dtmf {
        /// Which side.
        side: Side,
        /// The digit and its duration.
        event: DtmfEvent,
    },
    /// The recorder failed: end the call (fail closed, E1). Reported once;
    /// from then on the relay forwards no media either way (RTCP still
    /// flows), so no conversation continues unrecorded while the call ends.
    RecorderFailed(RecordError),
    /// No RTP from a side for `for_secs` seconds (the silence alarm, see
    /// [`Relay::set_media_timeout`]); repeated every further timeout until
    /// media resumes.
    NoMedia {
        /// Which side.
        side: Side,
        /// Seconds since its last RTP packet (or since its SDP was set).
        for_secs: u32,
    },
}

/// Why a relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No port pair could be bound.
    #[error(transparent)]
    Ports(#[from] PortError),
    /// The socket could not be registered with the runtime (called outside
    /// a tokio runtime, or out of resources).
    #[error("cannot register an RTP socket: {0}")]
    Socket(#[source] io::Error),
}

/// Per-side packet counts of the relay itself (the timeline's
/// [`SideStats`] describe what was recorded). All counts are of datagrams
/// received from that side, except `*_forwarded` and `send_dropped`, which
/// count its datagrams sent on to the other side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// RTP datagrams received (all, before any check).
    pub rtp_in: u64,
    /// RTP packets accepted (valid, from the latched address).
    pub rtp_accepted: u64,
    /// RTP packets sent to the other side.
    pub rtp_forwarded: u64,
    /// RTCP datagrams received.
    pub rtcp_in: u64,
    /// RTCP packets sent to the other side.
    pub rtcp_forwarded: u64,
    /// Dropped: from an address other than the latched one.
    pub foreign: u64,
    /// Dropped: not RTP/RTCP version 2, or too long.
    pub invalid: u64,
    /// Dropped: the send would have blocked or failed.
    pub send_dropped: u64,
}

/// A call's RTP relay. See the module doc for the driving contract.
pub struct Relay {
    /// Indexed by [`Side::index`]: agent, client.
    legs: [Leg; 2],
    /// Forward media from this side (same index) to the other.
    forward: [bool; 2],
    recording: Option<Recording>,
    /// Where the timeline is drained once the recorder failed (the frames
    /// are dropped); empty and unallocated otherwise: the timeline drains
    /// straight into the recorder's buffer ([`Recorder::write_with`]).
    discard: Vec<i16>,
    /// The receive buffer of all four sockets: this thread's [`RECV_BUF`]
    /// during a poll, empty (unallocated) between polls.
    buf: Box<[u8]>,
    tick: Interval,
    events: VecDeque<RelayEvent>,
    /// Which socket to poll first (fairness between the four).
    next_socket: usize,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("agent", &self.legs[0].local)
            .field("client", &self.legs[1].local)
            .field("forward", &self.forward)
            .field("recording", &self.recording.is_some())
            .finish_non_exhaustive()
    }
}

struct Recording {
    timeline: Timeline,
    recorder: Recorder,
    /// A write failed: stop writing (the timeline is still drained).
    failed: bool,
}

/// One side: its sockets, where to send, and what it sent.
struct Leg {
    side: Side,
    rtp: Socket,
    rtcp: Socket,
    /// Our RTP address for this side.
    local: SocketAddr,
    /// The SDP's RTP and RTCP addresses (usable ones only).
    sdp_rtp: Option<SocketAddr>,
    sdp_rtcp: Option<SocketAddr>,
    /// The SDP asked for nothing to be sent (`c=0.0.0.0` or port 0).
    blocked: bool,
    rtp_latch: Latch,
    rtcp_latch: Latch,
    audio: Vec<(u8, Codec)>,
    telephone_event: Option<u8>,
    /// This side's payload type → the other side's, for its packets.
    pt_out: [u8; 128],
    dtmf: DtmfDetector,
    /// The silence alarm: `None` = off; armed once the SDP is known.
    media_timeout: Option<Duration>,
    armed: bool,
    /// The last accepted RTP packet, or when the alarm was armed.
    silent_since: Instant,
    /// Silence alarms given since `silent_since`.
    alarms: u32,
    counters: RelayCounters,
    /// Declared last: the ports return to the pool after the sockets close.
    _lease: PortLease,
}

struct Socket {
    socket: UdpSocket,
}

/// A latched source address.
#[derive(Debug, Clone, Copy)]
struct Latch {
    addr: Option<SocketAddr>,
    last: Instant,
}

/// What [`Latch::offer`] decided about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// From the latched address.
    Same,
    /// Newly latched (first packet, or the old address went silent).
    Latched,
    /// From another address while the latched one is alive: drop.
    Foreign,
}

impl Latch {
    fn new(now: Instant) -> Latch {
        Latch { addr: None, last: now }
    }

    fn offer(&mut self, from: SocketAddr, now: Instant) -> Verdict {
        match self.addr {
            Some(addr) if addr == from => {
                self.last = now;
                Verdict::Same
            }
            Some(_) if now.saturating_duration_since(self.last) <= RELATCH_AFTER => Verdict::Foreign,
            _ => {
                self.addr = Some(from);
                self.last = now;
                Verdict::Latched
            }
        }
    }
}

/// Whether an address from an SDP may be sent to.
fn usable(addr: SocketAddr) -> bool {
    !addr.ip().is_unspecified() && addr.port() != 0
}

impl Leg {
    fn bind(pool: &PortPool, ip: IpAddr, side: Side, now: Instant) -> Result<Leg, RelayError> {
        let (rtp, rtcp, lease) = pool.bind_pair(ip)?;
        let rtp = UdpSocket::from_std(rtp).map_err(RelayError::Socket)?;
        let rtcp = UdpSocket::from_std(rtcp).map_err(RelayError::Socket)?;
        let local = rtp.local_addr().map_err(RelayError::Socket)?;
        Ok(Leg {
            side,
            rtp: Socket { socket: rtp },
            rtcp: Socket { socket: rtcp },
            local,
            sdp_rtp: None,
            sdp_rtcp: None,
            blocked: false,
            rtp_latch: Latch::new(now),
            rtcp_latch: Latch::new(now),
            audio: Vec::new(),
            telephone_event: None,
            pt_out: identity_map(),
            dtmf: DtmfDetector::new(),
            media_timeout: Some(DEFAULT_MEDIA_TIMEOUT),
            armed: false,
            silent_since: now,
            alarms: 0,
            counters: RelayCounters::default(),
            _lease: lease,
        })
    }

    /// Where this side's RTP goes: the latched source, else its SDP.
    fn rtp_dest(&self) -> Option<SocketAddr> {
        if self.blocked {
            return None;
        }
        self.rtp_latch.addr.or(self.sdp_rtp)
    }

    /// Where this side's RTCP goes: the latched RTCP source, else `a=rtcp`,
    /// else the RTP destination's port + 1.
    fn rtcp_dest(&self) -> Option<SocketAddr> {
        if self.blocked {
            return None;
        }
        self.rtcp_latch.addr.or(self.sdp_rtcp).or_else(|| {
            let rtp = self.rtp_dest()?;
            Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
        })
    }
}

fn identity_map() -> [u8; 128] {
    std::array::from_fn(|i| i as u8)
}

impl Relay {
    /// Binds one RTP/RTCP pair per side from `pool` on `ip`. Must be called
    /// inside a tokio runtime. Forwarding starts as before the bridge (only
    /// client → agent); nothing is recorded until
    /// [`Relay::start_recording`].
    pub fn new(pool: &PortPool, ip: IpAddr) -> Result<Relay, RelayError> {
        let now = Instant::now();
        let agent = Leg::bind(pool, ip, Side::Agent, now)?;
        let client = Leg::bind(pool, ip, Side::Client, now)?;
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Relay {
            legs: [agent, client],
            forward: [false, true],
            recording: None,
            discard: Vec::new(),
            buf: Box::default(),
            tick,
            events: VecDeque::with_capacity(EVENT_CAPACITY),
            next_socket: 0,
        })
    }

    /// Our RTP address offered to that side (RTCP is on the port + 1).
    pub fn local(&self, side: Side) -> SocketAddr {
        self.legs[side.index()].local
    }

    /// Where to send that side's media, from its SDP (`rtcp` from `a=rtcp`,
    /// else the RTP port + 1). Replaced by the source address of its packets
    /// once they arrive (latching). A new address (a re-INVITE moving the
    /// media) forgets the latch; an unspecified IP or port 0 (RFC 2543 hold,
    /// rejected stream) stops all sending to that side until a usable
    /// address is set again. Also arms that side's silence alarm.
    pub fn set_remote(&mut self, side: Side, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        let now = Instant::now();
        let leg = &mut self.legs[side.index()];
        leg.blocked = !usable(rtp);
        if !leg.blocked {
            if leg.sdp_rtp.is_some_and(|old| old != rtp) {
                leg.rtp_latch = Latch::new(now);
                leg.rtcp_latch = Latch::new(now);
            }
            leg.sdp_rtp = Some(rtp);
            leg.sdp_rtcp = rtcp.filter(|a| usable(*a));
        }
        if !leg.armed {
            leg.armed = true;
            leg.silent_since = now;
            leg.alarms = 0;
        }
    }

    /// The payload types that side uses: its audio codecs and its
    /// telephone-event type (from the negotiated SDP). Used by the timeline
    /// to decode, by the DTMF detector, and to rewrite payload types between
    /// sides that number the same format differently.
    pub fn set_payloads(&mut self, side: Side, audio: &[(u8, Codec)], telephone_event: Option<u8>) {
        let leg = &mut self.legs[side.index()];
        leg.audio.clear();
        leg.audio.extend_from_slice(audio);
        leg.telephone_event = telephone_event;
        if let Some(rec) = &mut self.recording {
            rec.timeline.set_payloads(side, audio, telephone_event);
        }
        self.rebuild_pt_maps();
    }

    /// What is forwarded: before the bridge only client → agent (early
    /// media, ringback: the initial setting); after it both ways; on hold
    /// as the SDPs say.
    ///
    /// After [`RelayEvent::RecorderFailed`] nothing is forwarded any more,
    /// whatever this says (E1).
    pub fn set_forwarding(&mut self, agent_to_client: bool, client_to_agent: bool) {
        if self.recording.as_ref().is_some_and(|r| r.failed) {
            return;
        }
        self.forward = [agent_to_client, client_to_agent];
    }

    /// The silence alarm for a side: [`RelayEvent::NoMedia`] after `timeout`
    /// without RTP from it (default 30 s, counted from [`Relay::set_remote`]
    /// or the last packet; this call restarts the count). `None` turns it
    /// off, e.g. while that side is legitimately silent (on hold, inactive).
    pub fn set_media_timeout(&mut self, side: Side, timeout: Option<Duration>) {
        let leg = &mut self.legs[side.index()];
        leg.media_timeout = timeout;
        leg.silent_since = Instant::now();
        leg.alarms = 0;
    }

    /// Starts recording into `rec` with frame 0 = `now` (take it from
    /// `tokio::time::Instant::now().into_std()`). Packets before this are
    /// relayed, not recorded. Once per relay: a second call is ignored (and
    /// `rec` dropped) while a recording runs.
    pub fn start_recording(&mut self, rec: Recorder, now: std::time::Instant) {
        if self.recording.is_some() {
            tracing::warn!("relay: recording already started; second recorder ignored");
            return;
        }
        let mut timeline = Timeline::new(now, REORDER_WINDOW);
        for leg in &self.legs {
            timeline.set_payloads(leg.side, &leg.audio, leg.telephone_event);
        }
        self.recording = Some(Recording { timeline, recorder: rec, failed: false });
    }

    /// Whether a recording is running (started and not failed).
    pub fn is_recording(&self) -> bool {
        self.recording.as_ref().is_some_and(|r| !r.failed)
    }

    /// Waits for and processes packets, and returns only on an event worth
    /// the call's attention. Cancel-safe: use it in `tokio::select!`.
    pub async fn next_event(&mut self) -> RelayEvent {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// At hang-up: drains the timeline to `now` (take it from
    /// `tokio::time::Instant::now().into_std()`) and seals the recording, if
    /// one was started. A recorder that failed earlier is still sealed (what
    /// it holds is evidence); a failure of the last write is returned
    /// instead of sealing, and the file stays in the spool's `recording/`
    /// for the start-up repair (E4). Returns the sealed file and the agent's
    /// and the client's stats.
    pub async fn finish(
        mut self,
        now: std::time::Instant,
    ) -> (Option<Result<Sealed, RecordError>>, SideStats, SideStats) {
        let sealed = match self.recording.take() {
            None => None,
            Some(mut rec) => {
                let written = if rec.failed {
                    Ok(())
                } else {
                    let timeline = &mut rec.timeline;
                    rec.recorder.write_with(|out, max| timeline.finish_upto(now, out, max))
                };
                let (agent, client) = (rec.timeline.stats(Side::Agent), rec.timeline.stats(Side::Client));
                if let Err(e) = written {
                    // The last frames could not be written; seal what is on
                    // disk anyway (the recorder salvages it) rather than
                    // leaving the file for the next start-up.
                    tracing::warn!(error = %e, "final recording write failed; sealing what was written");
                }
                let sealed = rec.recorder.seal().await;
                return (Some(sealed), agent, client);
            }
        };
        let (agent, client) = self.stats();
        (sealed, agent, client)
    }

    /// Per-side stats (agent, client): the timeline's while recording;
    /// before, only `packets` (RTP packets accepted) is counted.
    pub fn stats(&self) -> (SideStats, SideStats) {
        match &self.recording {
            Some(rec) => (rec.timeline.stats(Side::Agent), rec.timeline.stats(Side::Client)),
            None => {
                let of = |leg: &Leg| SideStats { packets: leg.counters.rtp_accepted, ..SideStats::default() };
                (of(&self.legs[0]), of(&self.legs[1]))
            }
        }
    }

    /// The relay's own packet counts for a side (see [`RelayCounters`]).
    pub fn counters(&self, side: Side) -> RelayCounters {
        self.legs[side.index()].counters
    }

    /// One poll of [`Relay::next_event`]: timer first, then the four
    /// sockets until they are empty, an event is due, or the budget is spent.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<RelayEvent> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        // Borrow the thread's buffer for this poll (allocated once per
        // thread), and give it back whatever the poll returns.
        self.buf = RECV_BUF.take();
        if self.buf.len() != BUF_LEN {
            self.buf = vec![0; BUF_LEN].into_boxed_slice();
        }
        let polled = self.poll_sockets(cx);
        RECV_BUF.set(std::mem::take(&mut self.buf));
        polled
    }

    /// [`Relay::poll_event`] with the receive buffer in hand.
    fn poll_sockets(&mut self, cx: &mut Context<'_>) -> Poll<RelayEvent> {
        // Poll the timer until it is pending, so that its waker is set.
        while self.tick.poll_tick(cx).is_ready() {
            self.on_tick();
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
        }
        let mut budget = BUDGET;
        for k in 0..4 {
            let which = (self.next_socket + k) % 4;
            let side = if which < 2 { Side::Agent } else { Side::Client };
            let is_rtcp = which % 2 == 1;
            loop {
                if budget == 0 {
                    // Let the rest of the runtime (and the caller's other
                    // select! branches) run; we come back at once.
                    self.next_socket = which;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let leg = &mut self.legs[side.index()];
                let sock = if is_rtcp { &mut leg.rtcp } else { &mut leg.rtp };
                let mut buf = ReadBuf::new(&mut self.buf);
                let from = match sock.socket.poll_recv_from(cx, &mut buf) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => {
                        // E.g. an ICMP error reported on the socket.
                        budget -= 1;
                        tracing::trace!(?side, kind = ?e.kind(), "relay: receive error");
                        continue;
                    }
                    Poll::Ready(Ok(from)) => from,
                };
                let len = buf.filled().len();
                budget -= 1;
                if is_rtcp {
                    self.on_rtcp(side, len, from, false);
                } else {
                    self.on_rtp(side, len, from);
                }
                if let Some(event) = self.events.pop_front() {
                    self.next_socket = which;
                    return Poll::Ready(event);
                }
            }
        }
        self.next_socket = (self.next_socket + 1) % 4;
        Poll::Pending
    }

    /// An RTP datagram of `len` bytes from `from` in `side`'s RTP buffer.
    fn on_rtp(&mut self, side: Side, len: usize, from: SocketAddr) {
        let now = Instant::now();
        let forward = self.forward[side.index()];
        let [agent, client] = &mut self.legs;
        let (me, other) = match side {
            Side::Agent => (agent, client),
            Side::Client => (client, agent),
        };
        me.counters.rtp_in += 1;
        if len >= BUF_LEN {
            me.counters.invalid += 1;
            tracing::trace!(?side, "relay: oversized datagram dropped");
            return;
        }
        if rtp::is_rtcp(&self.buf[..len]) {
            // RTCP multiplexed on the RTP port (RFC 5761): only from the
            // latched peer, then like any RTCP.
            if me.rtp_latch.addr == Some(from) {
                self.on_rtcp(side, len, from, true);
            } else {
                me.counters.foreign += 1;
            }
            return;
        }
        let packet = &mut self.buf[..len];
        let Some(view) = rtp::parse(packet) else {
            me.counters.invalid += 1;
            tracing::trace!(?side, "relay: not an RTP packet");
            return;
        };
        let (pt, timestamp) = (view.payload_type, view.timestamp);
        match me.rtp_latch.offer(from, now) {
            Verdict::Same => {}
            Verdict::Latched => {
                tracing::debug!(?side, %from, "relay: RTP latched");
                self.events.push_back(RelayEvent::Latched { side, from });
            }
            Verdict::Foreign => {
                me.counters.foreign += 1;
                tracing::trace!(?side, "relay: RTP from a foreign address dropped");
                return;
            }
        }
        me.counters.rtp_accepted += 1;
        me.silent_since = now;
        me.alarms = 0;
        if Some(pt) == me.telephone_event
            && let Some(event) = me.dtmf.push(timestamp, view.payload)
        {
            self.events.push_back(RelayEvent::Dtmf { side, event });
        }
        if let Some(rec) = &mut self.recording {
            // The timeline reports DTMF too; the relay's own detector (which
            // also works before recording) is the one reported.
            let _ = rec.timeline.push(side, packet, now.into_std());
        }
        if !forward {
            return;
        }
        let Some(dest) = other.rtp_dest() else {
            return;
        };
        let out_pt = me.pt_out[usize::from(pt)];
        if out_pt != pt {
            packet[1] = (packet[1] & 0x80) | out_pt;
        }
        match other.rtp.socket.try_send_to(packet, dest) {
            Ok(_) => me.counters.rtp_forwarded += 1,
            Err(e) => {
                me.counters.send_dropped += 1;
                tracing::trace!(?side, kind = ?e.kind(), "relay: RTP send dropped");
            }
        }
    }

    /// An RTCP datagram of `len` bytes from `from`, in `side`'s RTCP buffer
    /// (or its RTP buffer if `muxed`).
    fn on_rtcp(&mut self, side: Side, len: usize, from: SocketAddr, muxed: bool) {
        let now = Instant::now();
        let [agent, client] = &mut self.legs;
        let (me, other) = match side {
            Side::Agent => (agent, client),
            Side::Client => (client, agent),
        };
        me.counters.rtcp_in += 1;
        let packet = &self.buf[..len];
        // An RTCP header and SSRC take 8 bytes.
        if !(8..BUF_LEN).contains(&len) || !rtp::is_rtcp(packet) {
            me.counters.invalid += 1;
            tracing::trace!(?side, "relay: not an RTCP packet");
            return;
        }
        if !muxed && me.rtcp_latch.offer(from, now) == Verdict::Foreign {
            me.counters.foreign += 1;
            return;
        }
        let Some(dest) = other.rtcp_dest() else {
            return;
        };
        match other.rtcp.socket.try_send_to(packet, dest) {
            Ok(_) => me.counters.rtcp_forwarded += 1,
            Err(e) => {
                me.counters.send_dropped += 1;
                tracing::trace!(?side, kind = ?e.kind(), "relay: RTCP send dropped");
            }
        }
    }

    /// Every [`DRAIN_EVERY`]: drain the timeline into the recorder, check
    /// the silence alarms.
    fn on_tick(&mut self) {
        let now = Instant::now();
        if let Some(rec) = &mut self.recording {
            let at = now.into_std();
            let written = if rec.failed {
                // Keep the timeline moving; nothing is recorded any more.
                while rec.timeline.drain_upto(at, &mut self.discard, 800) {
                    self.discard.clear();
                }
                self.discard.clear();
                Ok(())
            } else {
                let timeline = &mut rec.timeline;
                rec.recorder.write_with(|out, max| timeline.drain_upto(at, out, max))
            };
            if let Err(e) = written {
                self.recorder_failed(e);
            }
        }
        for leg in &mut self.legs {
            let Some(timeout) = leg.media_timeout else {
                continue;
            };
            if !leg.armed {
                continue;
            }
            let silent = now.saturating_duration_since(leg.silent_since);
            if silent >= timeout.saturating_mul(leg.alarms.saturating_add(1)) {
                leg.alarms = leg.alarms.saturating_add(1);
                let for_secs = u32::try_from(silent.as_secs()).unwrap_or(u32::MAX);
                self.events.push_back(RelayEvent::NoMedia { side: leg.side, for_secs });
            }
        }
    }

    /// The recorder failed: stop recording and forwarding (fail closed, E1)
    /// and tell the call.
    fn recorder_failed(&mut self, e: RecordError) {
        if let Some(rec) = &mut self.recording {
            rec.failed = true;
        }
        self.forward = [false, false];
        tracing::warn!("relay: recorder failed, media stopped: {e}");
        self.events.push_back(RelayEvent::RecorderFailed(e));
    }

    /// Recomputes each side's payload-type rewrite table from both sides'
    /// payloads: a format both sides number differently is renumbered.
    fn rebuild_pt_maps(&mut self) {
        for s in 0..2 {
            let (me, other) = (&self.legs[s], &self.legs[1 - s]);
            let mut map = identity_map();
            for &(pt, codec) in &me.audio {
                if let Some(&(theirs, _)) = other.audio.iter().find(|(_, c)| *c == codec)
                    && pt < 128
                    && theirs < 128
                {
                    map[usize::from(pt)] = theirs;
                }
            }
            if let (Some(mine), Some(theirs)) = (me.telephone_event, other.telephone_event)
                && mine < 128
                && theirs < 128
            {
                map[usize::from(mine)] = theirs;
            }
            self.legs[s].pt_out = map;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ports::tests::free_range;
    use std::net::{Ipv4Addr, UdpSocket as StdSocket};
    use std::time::Duration;
    use tokio::sync::{mpsc, oneshot};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn pool(pairs: u16) -> PortPool {
        PortPool::new(free_range(pairs)).unwrap()
    }

    /// A peer's socket: blocking, with a receive timeout.
    fn peer() -> StdSocket {
        let s = StdSocket::bind((LOCALHOST, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        s
    }

    fn addr(s: &StdSocket) -> SocketAddr {
        s.local_addr().unwrap()
    }

    /// An RTP packet, built by hand.
    fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// Receives one datagram: its bytes and source; `None` on timeout.
    fn recv(s: &StdSocket, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        s.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 2048];
        match s.recv_from(&mut buf) {
            Ok((n, from)) => Some((buf[..n].to_vec(), from)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => None,
            Err(e) => panic!("recv: {e}"),
        }
    }

    type Finished = (Option<Result<Sealed, RecordError>>, SideStats, SideStats);
    type Job = Box<dyn FnOnce(&mut Relay) + Send>;

    enum Cmd {
        Do(Job, oneshot::Sender<()>),
        Finish(oneshot::Sender<Finished>),
    }

    /// The relay on its own task, as a call task drives it: `select!` over
    /// commands and `next_event` (which is cancelled on every command).
    struct Harness {
        cmds: mpsc::UnboundedSender<Cmd>,
        events: mpsc::UnboundedReceiver<RelayEvent>,
        agent: SocketAddr,
        client: SocketAddr,
    }

    impl Harness {
        fn spawn(mut relay: Relay) -> Harness {
            let (cmds, mut cmd_rx) = mpsc::unbounded_channel::<Cmd>();
            let (ev_tx, events) = mpsc::unbounded_channel();
            let (agent, client) = (relay.local(Side::Agent), relay.local(Side::Client));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        ev = relay.next_event() => { let _ = ev_tx.send(ev); }
                        cmd = cmd_rx.recv() => match cmd {
                            None => return,
                            Some(Cmd::Do(job, ack)) => { job(&mut relay); let _ = ack.send(()); }
                            Some(Cmd::Finish(tx)) => {
                                let now = Instant::now().into_std();
                                let _ = tx.send(relay.finish(now).await);
                                return;
                            }
                        },
                    }
                }
            });
            Harness { cmds, events, agent, client }
        }

        async fn with(&self, job: impl FnOnce(&mut Relay) + Send + 'static) {
            let (ack, done) = oneshot::channel();
            self.cmds.send(Cmd::Do(Box::new(job), ack)).ok().unwrap();
            done.await.unwrap();
        }

        async fn counters(&self, side: Side) -> RelayCounters {
            let (tx, rx) = std::sync::mpsc::channel();
            self.with(move |r| tx.send(r.counters(side)).unwrap()).await;
            rx.recv().unwrap()
        }

        async fn finish(self) -> Finished {
            let (tx, rx) = oneshot::channel();
            self.cmds.send(Cmd::Finish(tx)).ok().unwrap();
            rx.await.unwrap()
        }

        async fn event(&mut self) -> RelayEvent {
            tokio::time::timeout(Duration::from_secs(3), self.events.recv())
                .await
                .expect("no relay event within 3 s")
                .unwrap()
        }

        /// The next event that is not a latch notice.
        async fn event_skipping_latches(&mut self) -> RelayEvent {
            loop {
                match self.event().await {
                    RelayEvent::Latched { .. } => {}
                    other => return other,
                }
            }
        }
    }

    /// A relay between two peers whose SDPs name their sockets.
    fn relay_between(agent: &StdSocket, client: &StdSocket) -> Relay {
        let mut relay = Relay::new(&pool(4), LOCALHOST).unwrap();
        relay.set_remote(Side::Agent, addr(agent), None);
        relay.set_remote(Side::Client, addr(client), None);
        relay.set_payloads(Side::Agent, &[(0, Codec::Pcmu)], Some(101));
        relay.set_payloads(Side::Client, &[(0, Codec::Pcmu)], Some(101));
        relay
    }

    const SHORT: Duration = Duration::from_millis(300);
    const LONG: Duration = Duration::from_secs(2);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn before_the_bridge_only_client_to_agent_then_both_ways() {
        let (agent, client) = (peer(), peer());
        let h = Harness::spawn(relay_between(&agent, &client));

        let from_agent = rtp_packet(0, true, 1, 160, 0xA, &[0xFF; 160]);
        agent.send_to(&from_agent, h.agent).unwrap();
        assert!(recv(&client, SHORT).is_none(), "agent audio leaked before the bridge");

        let from_client = rtp_packet(0, true, 7, 800, 0xC, &[0x7F; 160]);
        client.send_to(&from_client, h.client).unwrap();
        let (bytes, src) = recv(&agent, LONG).expect("early media reaches the agent");
        assert_eq!(bytes, from_client, "relayed unchanged");
        assert_eq!(src, h.agent, "sent from the agent-facing socket (symmetric RTP)");

        h.with(|r| r.set_forwarding(true, true)).await;
        agent.send_to(&from_agent, h.agent).unwrap();
        let (bytes, src) = recv(&client, LONG).expect("bridged: agent reaches the client");
        assert_eq!(bytes, from_agent);
        assert_eq!(src, h.client);
        client.send_to(&from_client, h.client).unwrap();
        assert_eq!(recv(&agent, LONG).unwrap().0, from_client);

        let a = h.counters(Side::Agent).await;
        assert_eq!((a.rtp_in, a.rtp_accepted, a.rtp_forwarded), (2, 2, 1));
        let c = h.counters(Side::Client).await;
        assert_eq!((c.rtp_in, c.rtp_forwarded), (2, 2));

        // On hold as the SDP says: client puts us on hold, agent's audio stops.
        h.with(|r| r.set_forwarding(false, true)).await;
        agent.send_to(&from_agent, h.agent).unwrap();
        assert!(recv(&client, SHORT).is_none());
        let (rec, a, c) = h.finish().await;
        assert!(rec.is_none());
        assert_eq!((a.packets, c.packets), (3, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn latching_follows_the_observed_source_and_relatches_after_silence() {
        let (agent_sdp, agent_real, intruder, client) = (peer(), peer(), peer(), peer());
        let mut h = Harness::spawn(relay_between(&agent_sdp, &client));
        let ping = rtp_packet(0, false, 1, 0, 0xC, &[0xFF; 160]);

        // Nothing from the agent yet: its SDP address is used.
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&agent_sdp, LONG).is_some());
        // Client latched to its (SDP) address too.
        assert!(matches!(h.event().await, RelayEvent::Latched { side: Side::Client, .. }));

        // The agent's packets come from elsewhere (NAT): latch and follow.
        agent_real.send_to(&rtp_packet(0, true, 1, 0, 0xA, &[0xFF; 160]), h.agent).unwrap();
        match h.event().await {
            RelayEvent::Latched { side, from } => {
                assert_eq!(side, Side::Agent);
                assert_eq!(from, addr(&agent_real));
            }
            other => panic!("expected a latch, got {other:?}"),
        }
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&agent_real, LONG).is_some(), "replies go to the observed source");
        assert!(recv(&agent_sdp, SHORT).is_none());

        // Someone else, while the agent is alive: dropped, no re-latch.
        intruder.send_to(&rtp_packet(0, false, 2, 160, 0xB, &[0xFF; 160]), h.agent).unwrap();
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&agent_real, LONG).is_some());
        assert!(recv(&intruder, SHORT).is_none());
        assert_eq!(h.counters(Side::Agent).await.foreign, 1);

        // The agent falls silent for > 1 s; a new source takes over.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        intruder.send_to(&rtp_packet(0, false, 3, 320, 0xB, &[0xFF; 160]), h.agent).unwrap();
        match h.event().await {
            RelayEvent::Latched { side, from } => {
                assert_eq!(side, Side::Agent);
                assert_eq!(from, addr(&intruder));
            }
            other => panic!("expected a re-latch, got {other:?}"),
        }
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&intruder, LONG).is_some());

        // A re-INVITE moving the agent's media forgets the latch.
        let moved = peer();
        let moved_addr = addr(&moved);
        h.with(move |r| r.set_remote(Side::Agent, moved_addr, None)).await;
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&moved, LONG).is_some());

        // RFC 2543 hold: c=0.0.0.0, nothing is sent to the agent.
        h.with(|r| r.set_remote(Side::Agent, "0.0.0.0:4000".parse().unwrap(), None)).await;
        client.send_to(&ping, h.client).unwrap();
        assert!(recv(&moved, SHORT).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rtcp_is_relayed_rtcp_to_rtcp() {
        // The client's phone uses an adjacent pair (RTCP = RTP + 1, no
        // a=rtcp); the agent's softphone announces its RTCP port.
        let peers = pool(2);
        let (client_rtp, client_rtcp, _lease) = peers.bind_pair(LOCALHOST).unwrap();
        for s in [&client_rtp, &client_rtcp] {
            s.set_nonblocking(false).unwrap();
        }
        let (agent_rtp, agent_rtcp) = (peer(), peer());
        let mut relay = Relay::new(&pool(4), LOCALHOST).unwrap();
        relay.set_remote(Side::Agent, addr(&agent_rtp), Some(addr(&agent_rtcp)));
        relay.set_remote(Side::Client, addr(&client_rtp), None);
        let h = Harness::spawn(relay);
        let relay_rtcp = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() + 1);

        let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xC];
        client_rtcp.send_to(&rr, relay_rtcp(h.client)).unwrap();
        let (bytes, src) = recv(&agent_rtcp, LONG).expect("client RTCP reaches the agent");
        assert_eq!(bytes, rr);
        assert_eq!(src, relay_rtcp(h.agent));

        // Agent → client even before the bridge (RTCP is not media).
        let sr = [0x81, 200, 0, 1, 0, 0, 0, 0xA];
        agent_rtcp.send_to(&sr, relay_rtcp(h.agent)).unwrap();
        let (bytes, src) = recv(&client_rtcp, LONG).expect("agent RTCP reaches the client");
        assert_eq!(bytes, sr);
        assert_eq!(src, relay_rtcp(h.client));
        assert!(recv(&client_rtp, SHORT).is_none(), "RTCP never goes to an RTP port");

        // Not RTCP on an RTCP port: dropped.
        agent_rtcp.send_to(b"hello, world", relay_rtcp(h.agent)).unwrap();
        assert!(recv(&client_rtcp, SHORT).is_none());
        let a = h.counters(Side::Agent).await;
        assert_eq!((a.rtcp_in, a.rtcp_forwarded, a.invalid), (2, 1, 1));
    }

    /// RFC 4733 packets of one digit: three updates, three ends.
    fn digit_packets(pt: u8, event: u8, ts: u32, seq0: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, (end, duration)) in
            [(false, 160u16), (false, 320), (false, 480), (true, 640), (true, 640), (true, 640)]
                .into_iter()
                .enumerate()
        {
            let flags = 10 | if end { 0x80 } else { 0 };
            let d = duration.to_be_bytes();
            out.push(rtp_packet(pt, i == 0, seq0 + i as u16, ts, 0xA, &[event, flags, d[0], d[1]]));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn telephone_events_give_one_dtmf_event_and_are_renumbered() {
        let (agent, client) = (peer(), peer());
        let mut relay = relay_between(&agent, &client);
        // The client's leg negotiated telephone-event as 96.
        relay.set_payloads(Side::Client, &[(0, Codec::Pcmu)], Some(96));
        relay.set_forwarding(true, true);
        let mut h = Harness::spawn(relay);

        for p in digit_packets(101, 5, 8000, 10) {
            agent.send_to(&p, h.agent).unwrap();
        }
        match h.event_skipping_latches().await {
            RelayEvent::Dtmf { side, event } => {
                assert_eq!(side, Side::Agent);
                assert_eq!(event.digit, '5');
                assert_eq!(event.duration_ms, 80);
            }
            other => panic!("expected DTMF, got {other:?}"),
        }
        // Exactly one: the redundant ends give nothing.
        for (i, p) in digit_packets(101, 5, 8000, 10).into_iter().enumerate() {
            let (bytes, _) = recv(&client, LONG).expect("forwarded");
            assert_eq!(bytes[1] & 0x7F, 96, "renumbered for the client");
            assert_eq!(bytes[1] & 0x80 != 0, i == 0, "marker kept");
            assert_eq!(bytes[2..], p[2..], "the rest unchanged");
        }
        // Audio keeps its number; the client's 96 becomes the agent's 101.
        agent.send_to(&rtp_packet(0, false, 20, 9000, 0xA, &[0xFF; 160]), h.agent).unwrap();
        assert_eq!(recv(&client, LONG).unwrap().0[1], 0);
        for p in digit_packets(96, 11, 4000, 1) {
            client.send_to(&p, h.client).unwrap();
        }
        match h.event_skipping_latches().await {
            RelayEvent::Dtmf { side, event } => {
                assert_eq!(side, Side::Client);
                assert_eq!(event.digit, '#');
            }
            other => panic!("expected DTMF, got {other:?}"),
        }
        assert_eq!(recv(&agent, LONG).unwrap().0[1] & 0x7F, 101);
        tokio::time::sleep(SHORT).await;
        assert!(h.events.try_recv().is_err(), "one event per digit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn next_event_is_cancel_safe() {
        const N: u32 = 400;
        let (agent, client) = (peer(), peer());
        let mut relay = relay_between(&agent, &client);
        relay.set_forwarding(true, true);
        let (to_agent, to_client) = (relay.local(Side::Agent), relay.local(Side::Client));

        // The agent counts what reaches it; the client sends N packets.
        let counter = std::thread::spawn(move || {
            let mut n = 0;
            while recv(&agent, Duration::from_secs(2)).is_some() {
                n += 1;
            }
            n
        });
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                let p = rtp_packet(0, false, i as u16, i * 160, 0xC, &[0xFF; 160]);
                client.send_to(&p, to_client).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = to_agent;
        });

        // Drop next_event over and over, mid-call.
        let mut cancelled = 0u32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while relay.counters(Side::Client).rtp_forwarded < u64::from(N) && Instant::now() < deadline {
            tokio::select! {
                _ = relay.next_event() => {}
                _ = tokio::time::sleep(Duration::from_millis(1)) => cancelled += 1,
            }
        }
        sender.join().unwrap();
        assert_eq!(relay.counters(Side::Client).rtp_forwarded, u64::from(N));
        assert_eq!(counter.join().unwrap(), N, "every packet relayed");
        assert!(cancelled > 20, "next_event was dropped {cancelled} times only");
    }

    #[tokio::test]
    async fn silence_alarm() {
        let agent = peer();
        let mut relay = Relay::new(&pool(4), LOCALHOST).unwrap();
        relay.set_remote(Side::Agent, addr(&agent), None);
        // The client has no SDP yet (ringing): no alarm for it.
        relay.set_media_timeout(Side::Agent, Some(Duration::from_secs(1)));
        let started = Instant::now();
        for expected in [1, 2] {
            match relay.next_event().await {
                RelayEvent::NoMedia { side, for_secs } => {
                    assert_eq!((side, for_secs), (Side::Agent, expected));
                }
                other => panic!("expected NoMedia, got {other:?}"),
            }
        }
        assert!(started.elapsed() < Duration::from_millis(2500));
        // Media resumes: the count starts again.
        agent.send_to(&rtp_packet(0, true, 1, 0, 0xA, &[0xFF; 160]), relay.local(Side::Agent)).unwrap();
        assert!(matches!(relay.next_event().await, RelayEvent::Latched { .. }));
        let t = Instant::now();
        assert!(matches!(relay.next_event().await, RelayEvent::NoMedia { for_secs: 1, .. }));
        assert!(t.elapsed() >= Duration::from_millis(800));
        // On hold: turned off.
        relay.set_media_timeout(Side::Agent, None);
        let quiet = tokio::time::timeout(Duration::from_millis(1500), relay.next_event()).await;
        assert!(quiet.is_err(), "no alarm while off");
    }

    /// `n` μ-law samples of a sine at `hz`, starting at sample `from`.
    fn tone(hz: f64, from: u32, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                let t = f64::from(from + i as u32) / 8000.0;
                let v = (2.0 * std::f64::consts::PI * hz * t).sin() * 12000.0;
                crate::media::g711::ulaw_encode(v as i16)
            })
            .collect()
    }

    /// Goertzel power of `hz` in `x` (8 kHz).
    fn power(x: &[i16], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = f64::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - c * s1 * s2
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recording_puts_the_agent_left_and_the_client_right() {
        use crate::media::recorder::RecorderPool;

        let spool = tempfile::tempdir().unwrap();
        let recorders = RecorderPool::new(spool.path().to_path_buf(), 1).unwrap();
        let (agent, client) = (peer(), peer());
        let mut relay = relay_between(&agent, &client);
        relay.set_forwarding(true, true);
        let h = Harness::spawn(relay);
        let rec = recorders.open(uuid::Uuid::new_v4()).await.unwrap();
        let id = rec.id();
        h.with(|r| r.start_recording(rec, Instant::now().into_std())).await;

        // 1 s each: 50 packets of 20 ms, paced.
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for i in 0..50u16 {
            pace.tick().await;
            let (seq, ts) = (i, u32::from(i) * 160);
            let a = rtp_packet(0, i == 0, seq, ts, 0xA, &tone(440.0, ts, 160));
            let c = rtp_packet(0, i == 0, 1000 + seq, 90_000 + ts, 0xC, &tone(1000.0, ts, 160));
            agent.send_to(&a, h.agent).unwrap();
            client.send_to(&c, h.client).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (sealed, a, c) = h.finish().await;
        let sealed = sealed.expect("recording started").expect("sealed");
        assert_eq!(sealed.id, id);
        assert_eq!((a.packets, c.packets), (50, 50));
        assert_eq!((a.lost, c.lost), (0, 0));

        let mut wav = hound::WavReader::open(&sealed.path).unwrap();
        let spec = wav.spec();
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
        let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
        let frames = samples.len() / 2;
        assert!((7600..=9600).contains(&frames), "length {frames} frames, expected about 1 s");
        assert!((950..=1200).contains(&sealed.duration_ms), "{}", sealed.duration_ms);
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        // The middle half second, away from the edges.
        let (l, r) = (&left[2000..6000], &right[2000..6000]);
        assert!(power(l, 440.0) > 100.0 * power(l, 1000.0), "left is the agent's 440 Hz");
        assert!(power(r, 1000.0) > 100.0 * power(r, 440.0), "right is the client's 1 kHz");
        let crossings = |x: &[i16]| x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        // 0.5 s: 440 Hz crosses zero ~440 times, 1 kHz ~1000 times.
        assert!((400..=480).contains(&crossings(l)), "{}", crossings(l));
        assert!((950..=1050).contains(&crossings(r)), "{}", crossings(r));
    }

    /// A quick local measurement of sustained forwarding (no loss allowed):
    /// the client keeps at most `WINDOW` packets in flight. Run with
    /// `cargo test --release --lib media::relay::tests::throughput --
    /// --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    #[ignore = "measurement, not a check"]
    async fn throughput() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        const N: u32 = 300_000;
        const WINDOW: u32 = 128;
        let (agent, client) = (peer(), peer());
        let mut relay = relay_between(&agent, &client);
        relay.set_forwarding(true, true);
        let to_client = relay.local(Side::Client);
        let h = Harness::spawn(relay);
        let received = Arc::new(AtomicU32::new(0));
        let seen = received.clone();
        let counter = std::thread::spawn(move || {
            while recv(&agent, Duration::from_millis(500)).is_some() {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        let started = std::time::Instant::now();
        let mut p = rtp_packet(0, false, 0, 0, 0xC, &[0xFF; 160]);
        let mut sent = 0u32;
        let mut progress = (0, std::time::Instant::now());
        while sent < N {
            let got = received.load(Ordering::Relaxed);
            if got != progress.0 {
                progress = (got, std::time::Instant::now());
            } else if progress.1.elapsed() > Duration::from_secs(1) {
                break; // packets were lost (busy machine): report what passed
            }
            if sent - got >= WINDOW {
                std::hint::spin_loop();
                continue;
            }
            p[2..4].copy_from_slice(&(sent as u16).to_be_bytes());
            client.send_to(&p, to_client).unwrap();
            sent += 1;
        }
        while received.load(Ordering::Relaxed) < sent && started.elapsed() < Duration::from_secs(30) {
            std::hint::spin_loop();
        }
        let took = started.elapsed();
        let got = received.load(Ordering::Relaxed);
        let c = h.counters(Side::Client).await;
        println!(
            "relay: {got}/{N} packets of 172 bytes through one relay in {took:?}: {:.0} pps \
             (relayed {}, send dropped {})",
            f64::from(got) / took.as_secs_f64(),
            c.rtp_forwarded,
            c.send_dropped,
        );
        counter.join().unwrap();
        let _ = h.finish().await;
    }

    /// invariant E1: a recorder failure stops the conversation at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recorder_failure_stops_forwarding() {
        use crate::media::recorder::RecorderPool;

        let spool = tempfile::tempdir().unwrap();
        let recorders = RecorderPool::new(spool.path().to_path_buf(), 1).unwrap();
        let (agent, client) = (peer(), peer());
        let mut relay = relay_between(&agent, &client);
        relay.set_forwarding(true, true);
        let rec = recorders.open(uuid::Uuid::new_v4()).await.unwrap();
        relay.start_recording(rec, Instant::now().into_std());
        assert!(relay.is_recording());
        // What on_tick does with a failed write.
        relay.recorder_failed(RecordError::Full);
        assert!(!relay.is_recording());
        relay.set_forwarding(true, true);
        let mut h = Harness::spawn(relay);
        assert!(matches!(h.event().await, RelayEvent::RecorderFailed(RecordError::Full)));
        let p = rtp_packet(0, true, 1, 0, 0xA, &[0xFF; 160]);
        agent.send_to(&p, h.agent).unwrap();
        client.send_to(&p, h.client).unwrap();
        assert!(recv(&client, SHORT).is_none(), "agent audio stopped");
        assert!(recv(&agent, SHORT).is_none(), "client audio stopped");
        // What was recorded is still sealed: it is evidence.
        let (sealed, _, _) = h.finish().await;
        assert!(sealed.unwrap().is_ok());
    }
}
