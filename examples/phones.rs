//! `phones`: many simulated phones in one process, the load generator of
//! huifang's media benchmark (`scripts/bench/media.sh`).
//!
//! ## SIP mode (default)
//! A minimal SIP UAS on one UDP port. Every INVITE (any user part: agent
//! and client legs alike) is answered with 180 then 200 with an SDP answer
//! (PCMU, its own RTP port from `--rtp-ports`); the 200 is retransmitted
//! until the ACK comes. From the ACK on the call streams RTP to the address
//! of the offer: 20 ms μ-law packets of 160 bytes from `--wav`, looped,
//! paced in real time. A BYE is answered with 200 and stops the stream.
//! What comes back is counted per call: packets received, packets lost
//! (gaps in the sequence numbers: lost on the way through the relay), and
//! late ones (older than the newest seen).
//!
//! With `--hangup-after SECS` the phones also hang up: a call whose
//! Request-URI user starts with `--hangup-users` (`agent` by default: the
//! agent legs of huifang's calls, which then ends the client leg itself)
//! gets a BYE (built from its UAS dialog, retransmitted until answered)
//! that long after its ACK. That is how `scripts/bench/setup.sh` stands in
//! for thousands of agents' softphones on one port; their addresses of
//! record are the staff rows' `sip:agentN@127.0.0.1:PORT`.
//!
//! ## RTP-only mode (`--rtp-only FILE`)
//! No SIP. `FILE` (JSON, written by `scripts/bench/rtpengine_driver.py`)
//! lists streams: `{"streams": [{"id": "…", "local": PORT, "remote":
//! "127.0.0.1:PORT", "start_ms": …, "duration_ms": …}]}`. Each stream binds
//! its local port, starts sending at `start_ms` after start-up, stops after
//! `duration_ms`, and counts what it receives the same way.
//!
//! ## Bounded
//! The process ends by itself: in SIP mode once `--max-calls` calls have
//! been hung up (plus one second for retransmitted BYEs), in RTP-only mode
//! when the last stream stopped, and in any case after `--duration`
//! seconds (or on SIGTERM or Ctrl-C). It then writes its statistics
//! (`--stats FILE`, JSON) and exits.
//! Calls beyond `--max-calls` are refused with 486.
//!
//! ## Cost
//! One timer tick (20 ms) sends the packets of all streams from one reused
//! buffer (`try_send_to`: a full socket buffer drops and counts the packet,
//! never waits); each stream has one receive task with its own buffer.
//!
//! ```text
//! cargo run --release --example phones -- --sip 127.0.0.1:5090 \
//!     --rtp-ports 16000-19999 --wav tests/fixtures/audio/agent.wav \
//!     --max-calls 2 --duration 60 --stats /tmp/phones.json
//! ```

#[path = "bench_common/mod.rs"]
#[allow(dead_code)]
mod bench_common;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use huifang::media::g711::ulaw_encode;
use huifang::sip::dialog::Dialog;
use huifang::sip::msg::{Message, Method};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// Samples (and μ-law bytes) per 20 ms packet at 8 kHz.
const FRAME: usize = 160;
/// RTP header length (no CSRC, no extension).
const RTP_HEADER: usize = 12;
/// First retransmission interval of a 200 OK (RFC 3261 T1).
const T1: Duration = Duration::from_millis(500);
/// Longest retransmission interval (T2).
const T2: Duration = Duration::from_secs(4);
/// Give up retransmitting a 200 without ACK after this (64·T1).
const ACK_WAIT: Duration = Duration::from_secs(32);
/// How long to stay after the last expected BYE (absorbs retransmissions).
const LINGER: Duration = Duration::from_secs(1);

/// Simulated phones for huifang's media benchmark.
#[derive(Debug, Parser)]
#[command(name = "phones")]
struct Args {
    /// SIP address to listen on (UDP).
    #[arg(long, default_value = "127.0.0.1:5090")]
    sip: SocketAddr,
    /// RTP ports "FIRST-LAST"; each call takes an even port (the odd one
    /// after it is left for RTCP).
    #[arg(long, default_value = "16000-19999")]
    rtp_ports: String,
    /// Audio to stream: a WAV, 8 kHz mono 16-bit PCM (looped).
    #[arg(long)]
    wav: PathBuf,
    /// Calls (SIP dialogs: a huifang call is two, agent and client) to
    /// accept; the process ends once that many were hung up.
    #[arg(long, default_value_t = 1)]
    max_calls: usize,
    /// Hard cap on the run, seconds: the process ends then whatever happens.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Where to write the statistics (JSON); default: stdout.
    #[arg(long)]
    stats: Option<PathBuf>,
    /// RTP-only mode: stream the pairs listed in this JSON file, no SIP.
    #[arg(long)]
    rtp_only: Option<PathBuf>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Hang up (send BYE) this many seconds after the ACK, on the calls
    /// whose Request-URI user starts with `--hangup-users`.
    #[arg(long)]
    hangup_after: Option<f64>,
    /// The user prefix of the calls `--hangup-after` applies to.
    #[arg(long, default_value = "agent")]
    hangup_users: String,
}

// ------------------------------------------------------------- statistics

/// Counters of one stream, shared by the ticker (sending) and the stream's
/// receive task.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    send_dropped: AtomicU64,
    send_errors: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
}

/// One stream in the statistics file.
#[derive(Debug, Serialize)]
struct StreamReport {
    id: String,
    local_port: u16,
    remote: Option<SocketAddr>,
    sent: u64,
    send_dropped: u64,
    send_errors: u64,
    received: u64,
    /// Gaps in the received sequence numbers (packets lost on the way).
    lost: u64,
    /// Packets older than the newest received (reordered or duplicated).
    late: u64,
    /// Milliseconds since start-up when the call was answered / the stream started.
    started_ms: Option<u64>,
    /// Milliseconds since start-up when the stream stopped.
    ended_ms: Option<u64>,
}

/// Sums over all streams.
#[derive(Debug, Default, Serialize)]
struct Totals {
    streams: usize,
    calls_answered: usize,
    calls_ended: usize,
    calls_refused: usize,
    sent: u64,
    send_dropped: u64,
    send_errors: u64,
    received: u64,
    lost: u64,
    late: u64,
    /// Streams that received nothing.
    silent_streams: usize,
    /// `--hangup-after`: BYEs sent, answered, and given up on (64·T1
    /// without a final response).
    byes_sent: usize,
    byes_answered: usize,
    byes_unanswered: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    totals: Totals,
    /// CPU time of this process over the whole run, microseconds.
    cpu_us: Option<u64>,
    /// Peak resident memory of this process, KiB.
    peak_rss_kib: Option<u64>,
    streams: Vec<StreamReport>,
}

// ---------------------------------------------------------------- sending

/// What the ticker needs to send a stream's packets.
struct Tx {
    sock: Arc<UdpSocket>,
    remote: SocketAddr,
    seq: u16,
    ts: u32,
    ssrc: u32,
    pos: usize,
    first: bool,
    /// RTP-only mode: when to start and to stop.
    start_at: Option<Instant>,
    stop_at: Option<Instant>,
    /// Set by the SIP side (BYE); the ticker then forgets the stream.
    stopped: Arc<AtomicBool>,
    /// Tells the receive task to end (RTP-only mode, at `stop_at`).
    stop_rx: Option<watch::Sender<bool>>,
    counters: Arc<Counters>,
}

/// The one timer of all streams: every 20 ms each running stream sends its
/// next packet. Missed ticks are caught up (burst), so every stream keeps
/// its packet rate when the process was late.
async fn ticker(audio: Arc<Vec<u8>>, mut new: mpsc::UnboundedReceiver<Tx>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut streams: Vec<Tx> = Vec::new();
    let mut packet = [0u8; RTP_HEADER + FRAME];
    let mut open = true;
    loop {
        tick.tick().await;
        while open {
            match new.try_recv() {
                Ok(tx) => streams.push(tx),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        if !open && streams.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < streams.len() {
            let s = &mut streams[i];
            let ended = s.stopped.load(Relaxed) || s.stop_at.is_some_and(|t| now >= t);
            if ended {
                if let Some(stop) = s.stop_rx.take() {
                    let _ = stop.send(true);
                }
                streams.swap_remove(i);
                continue;
            }
            i += 1;
            if s.start_at.is_some_and(|t| now < t) {
                continue;
            }
            packet[0] = 0x80;
            packet[1] = if s.first { 0x80 } else { 0 }; // marker, PT 0 (PCMU)
            packet[2..4].copy_from_slice(&s.seq.to_be_bytes());
            packet[4..8].copy_from_slice(&s.ts.to_be_bytes());
            packet[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
            packet[RTP_HEADER..].copy_from_slice(&audio[s.pos..s.pos + FRAME]);
            match s.sock.try_send_to(&packet, s.remote) {
                Ok(_) => {
                    s.counters.sent.fetch_add(1, Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    s.counters.send_dropped.fetch_add(1, Relaxed);
                }
                Err(_) => {
                    s.counters.send_errors.fetch_add(1, Relaxed);
                }
            }
            s.first = false;
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(FRAME as u32);
            s.pos = (s.pos + FRAME) % audio.len();
        }
    }
}

// -------------------------------------------------------------- receiving

/// Counts the RTP a stream receives until told to stop: RFC 3550 A.1
/// style, lost = expected (extended highest − first + 1) − received.
async fn receive(sock: Arc<UdpSocket>, counters: Arc<Counters>, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; 2048];
    // Extended sequence numbers (cycles · 65536 + seq).
    let mut first: Option<i64> = None;
    let mut highest: i64 = 0;
    let mut received: u64 = 0;
    let mut late: u64 = 0;
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                if n < RTP_HEADER || buf[0] >> 6 != 2 {
                    continue;
                }
                // RTCP multiplexed on the RTP port: its packet type (200..=204) fills the second byte.
                if (200..=204).contains(&buf[1]) {
                    continue;
                }
                let seq = u16::from_be_bytes([buf[2], buf[3]]);
                received += 1;
                match first {
                    None => {
                        first = Some(seq as i64);
                        highest = seq as i64;
                    }
                    Some(_) => {
                        let delta = seq.wrapping_sub(highest as u16) as i16 as i64;
                        if delta > 0 {
                            highest += delta;
                        } else {
                            late += 1;
                        }
                    }
                }
                let expected = first.map(|f| highest - f + 1).unwrap_or(0).max(0) as u64;
                counters.received.store(received, Relaxed);
                counters.lost.store(expected.saturating_sub(received), Relaxed);
                counters.late.store(late, Relaxed);
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

// ------------------------------------------------------------------ ports

/// Even RTP ports handed out and taken back, oldest free first: a port
/// given back at a BYE may still be bound for a moment (its receive task
/// and the ticker drop their handles at their next turn), so it goes to the
/// end of the line, and a port that does not bind now is tried again later,
/// never dropped (dropping them ran a long benchmark out of ports: 503).
struct Ports {
    free: VecDeque<u16>,
}

impl Ports {
    fn new(range: &str) -> anyhow::Result<Ports> {
        let (a, b) = range.split_once('-').context("--rtp-ports: want FIRST-LAST")?;
        let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
        if a > b {
            bail!("--rtp-ports: FIRST > LAST");
        }
        Ok(Ports { free: (a..=b).filter(|p| p % 2 == 0).collect() })
    }

    /// Binds the first free port that can be bound now.
    fn bind(&mut self) -> Option<(u16, Arc<UdpSocket>)> {
        for _ in 0..self.free.len() {
            let port = self.free.pop_front()?;
            let bound = std::net::UdpSocket::bind(("127.0.0.1", port))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(UdpSocket::from_std);
            match bound {
                Ok(sock) => return Some((port, Arc::new(sock))),
                Err(_) => self.free.push_back(port),
            }
        }
        None
    }

    fn give_back(&mut self, port: u16) {
        self.free.push_back(port);
    }
}

// -------------------------------------------------------------------- SIP

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// 200 sent, waiting for the ACK.
    Answered,
    /// Streaming.
    Confirmed,
    /// Hung up.
    Ended,
}

/// One SIP dialog (one leg of a huifang call).
struct Call {
    state: State,
    id: String,
    /// The INVITE's CSeq number (to recognise its retransmissions).
    invite_cseq: u32,
    to_tag: String,
    peer: SocketAddr,
    /// The last response to the INVITE, for retransmissions.
    last_response: Vec<u8>,
    next_retransmit: Instant,
    retransmit_every: Duration,
    answered_at: Instant,
    ended_at: Option<Instant>,
    port: u16,
    sock: Option<Arc<UdpSocket>>,
    remote: Option<SocketAddr>,
    counters: Arc<Counters>,
    stopped: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    /// Our side of the dialog, for the BYE of `--hangup-after`.
    dialog: Option<Dialog>,
}

/// A BYE we sent, retransmitted (RFC 3261 timer E) until a final
/// response comes or 64·T1 passed.
struct Bye {
    bytes: Vec<u8>,
    to: SocketAddr,
    next: Instant,
    every: Duration,
    until: Instant,
}

/// The address and port of the offer's first audio stream.
fn offer_media(body: &[u8]) -> Option<(SocketAddr, bool)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut ip: Option<std::net::IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut pcmu = false;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            // A session-level c= or the audio one (which comes after the m=).
            if ip.is_none() || port.is_some() {
                ip = c.split('/').next()?.trim().parse().ok();
            }
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            if port.is_some() {
                break;
            }
            let mut f = m.split_whitespace();
            port = f.next()?.parse().ok();
            let _proto = f.next();
            pcmu = f.any(|pt| pt == "0");
        }
    }
    Some((SocketAddr::new(ip?, port?), pcmu))
}

fn sdp_answer(port: u16, session: u64) -> String {
    format!(
        "v=0\r\no=phones {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

struct Sip {
    sock: UdpSocket,
    local: SocketAddr,
    calls: HashMap<String, Call>,
    ports: Ports,
    new_streams: mpsc::UnboundedSender<Tx>,
    started: Instant,
    max_calls: usize,
    accepted: usize,
    refused: usize,
    ended: usize,
    next_tag: u64,
    /// `--hangup-after` and `--hangup-users`.
    hangup: Option<(Duration, String)>,
    /// Calls to hang up, in the order they are due (one delay for all).
    hangups: VecDeque<(Instant, String)>,
    /// BYEs sent and not answered yet, by Call-ID.
    byes: HashMap<String, Bye>,
    /// BYEs we sent that got a final response / none in 64·T1.
    byes_answered: usize,
    byes_unanswered: usize,
}

impl Sip {
    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        let _ = self.sock.send_to(bytes, to).await;
    }

    async fn respond(&self, req: &Message, status: u16, to: SocketAddr) {
        self.send(&Message::response_to(req, status).to_bytes(), to).await;
    }

    async fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        let Ok(msg) = Message::parse(data) else {
            return;
        };
        let Some(call_id) = msg.call_id().map(str::to_string) else {
            return;
        };
        if !msg.is_request() {
            // the only requests we send are BYEs
            if msg.status().is_some_and(|s| s >= 200)
                && msg.cseq().is_ok_and(|c| c.method == Method::Bye)
                && self.byes.remove(&call_id).is_some()
            {
                self.byes_answered += 1;
            }
            return;
        }
        let Some(method) = msg.method() else { return };
        match method {
            Method::Invite => self.on_invite(msg, call_id, from).await,
            Method::Ack => {
                if let Some(call) = self.calls.get_mut(&call_id)
                    && call.state == State::Answered
                {
                    call.state = State::Confirmed;
                    if call.dialog.is_some()
                        && let Some((after, _)) = &self.hangup
                    {
                        self.hangups.push_back((Instant::now() + *after, call_id.clone()));
                    }
                    if let (Some(sock), Some(remote)) = (call.sock.clone(), call.remote) {
                        let _ = self.new_streams.send(Tx {
                            sock,
                            remote,
                            seq: rand::random(),
                            ts: rand::random(),
                            ssrc: rand::random(),
                            pos: 0,
                            first: true,
                            start_at: None,
                            stop_at: None,
                            stopped: call.stopped.clone(),
                            stop_rx: None,
                            counters: call.counters.clone(),
                        });
                    }
                }
            }
            Method::Bye => {
                let Some(call) = self.calls.get_mut(&call_id) else {
                    self.respond(&msg, 481, from).await;
                    return;
                };
                Self::end(call, &mut self.ports, &mut self.ended);
                self.respond(&msg, 200, from).await;
            }
            Method::Cancel => {
                // We answer at once, so there is nothing left to cancel.
                let status = if self.calls.contains_key(&call_id) { 200 } else { 481 };
                self.respond(&msg, status, from).await;
            }
            Method::Options => self.respond(&msg, 200, from).await,
            _ => self.respond(&msg, 501, from).await,
        }
    }

    async fn on_invite(&mut self, msg: Message, call_id: String, from: SocketAddr) {
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        if let Some(call) = self.calls.get(&call_id) {
            if cseq == call.invite_cseq {
                // A retransmission: the same answer again.
                let (bytes, peer) = (call.last_response.clone(), call.peer);
                self.send(&bytes, peer).await;
            } else {
                // A re-INVITE (hold, codec change…): keep the media as is.
                let mut ok =
                    Message::response_to(&msg, 200).with("Contact", format!("<sip:phones@{}>", self.local));
                let body = sdp_answer(call.port, 1);
                ok.set_body("application/sdp", body.into_bytes());
                self.send(&ok.to_bytes(), from).await;
            }
            return;
        }
        if self.accepted >= self.max_calls {
            self.refused += 1;
            let mut busy = Message::response_to(&msg, 486);
            busy.ensure_to_tag("busy");
            self.send(&busy.to_bytes(), from).await;
            return;
        }
        let Some((remote, pcmu)) = offer_media(&msg.body) else {
            let mut bad = Message::response_to(&msg, 488);
            bad.ensure_to_tag("nosdp");
            self.send(&bad.to_bytes(), from).await;
            return;
        };
        if !pcmu {
            let mut bad = Message::response_to(&msg, 488);
            bad.ensure_to_tag("nopcmu");
            self.send(&bad.to_bytes(), from).await;
            return;
        }
        let Some((port, sock)) = self.ports.bind() else {
            let mut busy = Message::response_to(&msg, 503);
            busy.ensure_to_tag("noports");
            self.send(&busy.to_bytes(), from).await;
            return;
        };
        self.accepted += 1;
        self.next_tag += 1;
        let to_tag = format!("ph{}", self.next_tag);
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(receive(sock.clone(), counters.clone(), stop_rx));

        let mut ringing = Message::response_to(&msg, 180);
        ringing.ensure_to_tag(&to_tag);
        self.send(&ringing.to_bytes(), from).await;
        let mut ok = Message::response_to(&msg, 200)
            .with("Contact", format!("<sip:phones@{}>", self.local))
            .with("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS");
        ok.ensure_to_tag(&to_tag);
        ok.set_body("application/sdp", sdp_answer(port, self.next_tag).into_bytes());
        let bytes = ok.to_bytes();
        self.send(&bytes, from).await;
        let user = msg.request_uri().and_then(|u| u.user().map(str::to_string)).unwrap_or_default();
        let dialog = match &self.hangup {
            Some((_, prefix)) if user.starts_with(prefix.as_str()) => Dialog::from_uas(&msg, &ok).ok(),
            _ => None,
        };
        let now = Instant::now();
        self.calls.insert(
            call_id,
            Call {
                state: State::Answered,
                id: user,
                invite_cseq: cseq,
                to_tag,
                peer: from,
                last_response: bytes,
                next_retransmit: now + T1,
                retransmit_every: T1,
                answered_at: now,
                ended_at: None,
                port,
                sock: Some(sock),
                remote: Some(remote),
                counters,
                stopped: Arc::new(AtomicBool::new(false)),
                stop,
                dialog,
            },
        );
    }

    /// Ends a call's media (a BYE received or sent), once.
    fn end(call: &mut Call, ports: &mut Ports, ended: &mut usize) {
        if call.state == State::Ended {
            return;
        }
        call.state = State::Ended;
        call.ended_at = Some(Instant::now());
        call.stopped.store(true, Relaxed);
        let _ = call.stop.send(true);
        call.sock = None;
        ports.give_back(call.port);
        *ended += 1;
    }

    /// Sends the BYEs of `--hangup-after` that are due, and retransmits
    /// those not answered yet.
    async fn hang_up(&mut self) {
        let now = Instant::now();
        while self.hangups.front().is_some_and(|(at, _)| *at <= now) {
            let (_, call_id) = self.hangups.pop_front().expect("checked");
            let Some(call) = self.calls.get_mut(&call_id) else { continue };
            if call.state != State::Confirmed {
                continue; // hung up by the other side first
            }
            let Some(dialog) = call.dialog.as_mut() else { continue };
            let mut bye = dialog.request(Method::Bye);
            bye.prepend(
                "Via",
                format!("SIP/2.0/UDP {};branch={};rport", self.local, huifang::sip::new_branch()),
            );
            let to = dialog.next_hop().socket_addr().unwrap_or(call.peer);
            dialog.terminate();
            Self::end(call, &mut self.ports, &mut self.ended);
            let bytes = bye.to_bytes();
            self.send(&bytes, to).await;
            self.byes.insert(call_id, Bye { bytes, to, next: now + T1, every: T1, until: now + ACK_WAIT });
        }
        let mut due = Vec::new();
        let mut gave_up = 0;
        self.byes.retain(|_, b| {
            if now >= b.until {
                gave_up += 1;
                return false;
            }
            if now >= b.next {
                due.push((b.bytes.clone(), b.to));
                b.every = (b.every * 2).min(T2);
                b.next = now + b.every;
            }
            true
        });
        self.byes_unanswered += gave_up;
        for (bytes, to) in due {
            self.send(&bytes, to).await;
        }
    }

    /// Retransmits 200s that were not ACKed yet.
    async fn retransmit(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for call in self.calls.values_mut() {
            if call.state != State::Answered || now < call.next_retransmit {
                continue;
            }
            if now.duration_since(call.answered_at) > ACK_WAIT {
                continue;
            }
            due.push((call.last_response.clone(), call.peer));
            call.retransmit_every = (call.retransmit_every * 2).min(T2);
            call.next_retransmit = now + call.retransmit_every;
        }
        for (bytes, peer) in due {
            self.send(&bytes, peer).await;
        }
    }

    fn ms(&self, t: Instant) -> u64 {
        t.duration_since(self.started).as_millis() as u64
    }

    /// Stops every stream and describes them all.
    fn finish(&mut self) -> Vec<StreamReport> {
        let mut out: Vec<StreamReport> = Vec::with_capacity(self.calls.len());
        for call in self.calls.values() {
            call.stopped.store(true, Relaxed);
            let _ = call.stop.send(true);
            let c = &call.counters;
            out.push(StreamReport {
                id: format!("{}:{}", call.id, call.to_tag),
                local_port: call.port,
                remote: call.remote,
                sent: c.sent.load(Relaxed),
                send_dropped: c.send_dropped.load(Relaxed),
                send_errors: c.send_errors.load(Relaxed),
                received: c.received.load(Relaxed),
                lost: c.lost.load(Relaxed),
                late: c.late.load(Relaxed),
                started_ms: Some(self.ms(call.answered_at)),
                ended_ms: call.ended_at.map(|t| self.ms(t)),
            });
        }
        out.sort_by_key(|s| s.started_ms);
        out
    }
}

async fn run_sip(args: &Args, audio: Arc<Vec<u8>>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let sock = UdpSocket::bind(args.sip).await.with_context(|| format!("binding SIP {}", args.sip))?;
    let local = sock.local_addr()?;
    let (new_streams, streams_rx) = mpsc::unbounded_channel();
    let ticker = tokio::spawn(ticker(audio, streams_rx));
    let mut sip = Sip {
        sock,
        local,
        calls: HashMap::new(),
        ports: Ports::new(&args.rtp_ports)?,
        new_streams,
        started,
        max_calls: args.max_calls,
        accepted: 0,
        refused: 0,
        ended: 0,
        next_tag: 0,
        hangup: args.hangup_after.map(|s| (Duration::from_secs_f64(s.max(0.0)), args.hangup_users.clone())),
        hangups: VecDeque::new(),
        byes: HashMap::new(),
        byes_answered: 0,
        byes_unanswered: 0,
    };
    println!("phones: ready on {local}");
    let mut buf = vec![0u8; 65536];
    let mut housekeeping = tokio::time::interval(Duration::from_millis(100));
    let mut linger_until: Option<Instant> = None;
    // SIGTERM or Ctrl-C: stop early, statistics written as at the end
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let end = linger_until.map_or(deadline, |l| l.min(deadline));
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            r = sip.sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    let data = buf[..n].to_vec();
                    sip.on_datagram(&data, from).await;
                    if linger_until.is_none() && sip.ended >= sip.max_calls {
                        linger_until = Some(Instant::now() + LINGER);
                    }
                }
            }
            _ = housekeeping.tick() => {
                sip.retransmit().await;
                sip.hang_up().await;
            }
            _ = tokio::time::sleep_until(end) => break,
        }
    }
    let streams = sip.finish();
    let mut totals = totals(&streams, sip.accepted, sip.ended, sip.refused, sip.calls.len());
    totals.byes_answered = sip.byes_answered;
    totals.byes_unanswered = sip.byes_unanswered + sip.byes.len();
    totals.byes_sent = totals.byes_answered + totals.byes_unanswered;
    drop(sip);
    let _ = tokio::time::timeout(Duration::from_secs(1), ticker).await;
    Ok(Report {
        mode: "sip",
        totals,
        cpu_us: bench_common::cpu_us(None),
        peak_rss_kib: bench_common::status_kib(None, "VmHWM"),
        streams,
    })
}

// --------------------------------------------------------------- RTP only

#[derive(Debug, Deserialize)]
struct PlanStream {
    id: String,
    local: u16,
    remote: SocketAddr,
    #[serde(default)]
    start_ms: u64,
    duration_ms: u64,
}

#[derive(Debug, Deserialize)]
struct Plan {
    streams: Vec<PlanStream>,
}

async fn run_rtp_only(args: &Args, plan: PathBuf, audio: Arc<Vec<u8>>) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(&plan).with_context(|| format!("reading {}", plan.display()))?;
    let plan: Plan = serde_json::from_str(&text).context("parsing the stream plan")?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let (new_streams, streams_rx) = mpsc::unbounded_channel();
    let mut entries = Vec::with_capacity(plan.streams.len());
    let mut last_stop = started;
    for p in &plan.streams {
        let std_sock = std::net::UdpSocket::bind(("127.0.0.1", p.local))
            .with_context(|| format!("binding RTP port {}", p.local))?;
        std_sock.set_nonblocking(true)?;
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let rx_task = tokio::spawn(receive(sock.clone(), counters.clone(), stop_rx));
        let start_at = started + Duration::from_millis(p.start_ms);
        let stop_at = start_at + Duration::from_millis(p.duration_ms);
        last_stop = last_stop.max(stop_at);
        new_streams
            .send(Tx {
                sock,
                remote: p.remote,
                seq: rand::random(),
                ts: rand::random(),
                ssrc: rand::random(),
                pos: 0,
                first: true,
                start_at: Some(start_at),
                stop_at: Some(stop_at),
                stopped: Arc::new(AtomicBool::new(false)),
                stop_rx: Some(stop),
                counters: counters.clone(),
            })
            .ok();
        entries.push((p, counters, rx_task, start_at, stop_at));
    }
    drop(new_streams);
    println!("phones: ready, {} streams", entries.len());
    let ticker = tokio::spawn(ticker(audio, streams_rx));
    // The ticker ends when every stream stopped; the receive tasks with it.
    let _ = tokio::time::timeout_at(deadline, ticker).await;
    let mut streams = Vec::with_capacity(entries.len());
    for (p, c, rx_task, start_at, stop_at) in entries {
        rx_task.abort();
        streams.push(StreamReport {
            id: p.id.clone(),
            local_port: p.local,
            remote: Some(p.remote),
            sent: c.sent.load(Relaxed),
            send_dropped: c.send_dropped.load(Relaxed),
            send_errors: c.send_errors.load(Relaxed),
            received: c.received.load(Relaxed),
            lost: c.lost.load(Relaxed),
            late: c.late.load(Relaxed),
            started_ms: Some(start_at.duration_since(started).as_millis() as u64),
            ended_ms: Some(stop_at.duration_since(started).as_millis() as u64),
        });
    }
    let n = streams.len();
    Ok(Report {
        mode: "rtp-only",
        totals: totals(&streams, n, n, 0, n),
        cpu_us: bench_common::cpu_us(None),
        peak_rss_kib: bench_common::status_kib(None, "VmHWM"),
        streams,
    })
}

// ------------------------------------------------------------------ main

fn totals(streams: &[StreamReport], answered: usize, ended: usize, refused: usize, n: usize) -> Totals {
    let mut t = Totals {
        streams: n,
        calls_answered: answered,
        calls_ended: ended,
        calls_refused: refused,
        ..Totals::default()
    };
    for s in streams {
        t.sent += s.sent;
        t.send_dropped += s.send_dropped;
        t.send_errors += s.send_errors;
        t.received += s.received;
        t.lost += s.lost;
        t.late += s.late;
        if s.received == 0 {
            t.silent_streams += 1;
        }
    }
    t
}

/// The WAV as μ-law, padded with silence to whole 20 ms frames.
fn load_audio(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        bail!("{}: want 8000 Hz mono 16-bit PCM, got {spec:?}", path.display());
    }
    let mut out: Vec<u8> = reader.samples::<i16>().map(|s| s.map(ulaw_encode)).collect::<Result<_, _>>()?;
    if out.is_empty() {
        bail!("{}: no samples", path.display());
    }
    let pad = (FRAME - out.len() % FRAME) % FRAME;
    out.extend(std::iter::repeat_n(ulaw_encode(0), pad));
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let audio = Arc::new(load_audio(&args.wav)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        match args.rtp_only.clone() {
            Some(plan) => run_rtp_only(&args, plan, audio).await,
            None => run_sip(&args, audio).await,
        }
    })?;
    rt.shutdown_timeout(Duration::from_millis(200));
    let json = serde_json::to_string(&report)?;
    match &args.stats {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    let t = &report.totals;
    eprintln!(
        "phones: {} streams, sent {}, received {}, lost {}, late {}, send dropped {}",
        t.streams, t.sent, t.received, t.lost, t.late, t.send_dropped
    );
    Ok(())
}
