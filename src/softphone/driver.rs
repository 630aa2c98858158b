//! The softphone's driver: one tokio task owns the SIP socket, the clock
//! and the [`Phone`]; each answered call gets a media task that owns its
//! RTP socket, sends the prompt every 20 ms and writes what it hears.
//!
//! [`Softphone::start`] binds the SIP socket and starts the task; it runs
//! until [`Softphone::stop`], `calls` calls ended, or `duration` passed,
//! then ends its calls, unregisters (within a grace period) and returns a
//! [`Summary`]. Every call is reported as it ends ([`CallReport`], with the
//! media counters and the recording).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::SoftphoneError;
use super::media::{AfterPrompt, PACKET, Placement, Receiver, Sender};
use super::ua::{CallDirection, CallId, CallSummary, Event, Phone, PhoneConfig, RegistrarSpec};
use crate::media::g711::Codec;
use crate::media::sdp::Negotiated;
use crate::sip::endpoint::tcp::{self, Conn, ConnEvent};
use crate::sip::msg::framing::StreamItem;
use crate::sip::msg::{MAX_MESSAGE, Message, Uri};
use crate::sip::registration::RegState;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{Target, Transport};

/// How long a shutdown may take (BYEs, CANCELs, unregistering).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a softphone does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address for SIP; RTP sockets bind to its IP. Port 0: any.
    pub listen: SocketAddr,
    /// SIP over UDP, or over TCP: then the phone listens for connections
    /// on `listen` and keeps one connection per peer, reused both ways
    /// (the registrar's INVITEs come back on the connection that
    /// registered, RFC 3261 §18).
    pub transport: Transport,
    /// User name (address of record, Contact, digest user).
    pub user: String,
    /// Digest password.
    pub password: Option<String>,
    /// Registrar (`sip:IP:PORT`); `None`: no registration, calls go
    /// straight to the dialled URI's address.
    pub registrar: Option<Uri>,
    /// Domain of the address of record (default: the registrar's host).
    pub domain: Option<String>,
    /// Registration lifetime asked for, seconds.
    pub expires: u32,
    /// Answer incoming calls after this long; `None` refuses them.
    pub answer_after: Option<Duration>,
    /// Hang up this long after the answer; `None`: when the other side does.
    pub hangup_after: Option<Duration>,
    /// Dial this URI (again after each call, up to `calls`).
    pub dial: Option<Uri>,
    /// Stop after this many calls ended.
    pub calls: Option<u32>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// What to play into each call (8 kHz mono); empty: silence.
    pub prompt: Arc<[i16]>,
    /// Once the prompt is over: silence or again.
    pub after_prompt: AfterPrompt,
    /// Silence before the prompt starts, from the answer.
    pub play_after: Duration,
    /// Record what each call hears into a WAV here.
    pub record_dir: Option<PathBuf>,
    /// Codecs, in order of preference.
    pub codecs: Vec<Codec>,
    /// User-Agent.
    pub user_agent: String,
}

impl Options {
    /// A phone for `user` on `listen` with the defaults: answers at once,
    /// plays silence, records nothing, runs until stopped.
    pub fn new(user: &str, listen: SocketAddr) -> Options {
        Options {
            listen,
            transport: Transport::Udp,
            user: user.to_string(),
            password: None,
            registrar: None,
            domain: None,
            expires: 600,
            answer_after: Some(Duration::ZERO),
            hangup_after: None,
            dial: None,
            calls: None,
            duration: None,
            prompt: Arc::from(Vec::new()),
            after_prompt: AfterPrompt::Silence,
            play_after: Duration::ZERO,
            record_dir: None,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            user_agent: format!("huifang-softphone/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// One call, as the softphone prints it (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The phone's own count of its calls, from 1.
    pub call: u32,
    /// The SIP Call-ID.
    pub call_id: String,
    /// In or out.
    pub direction: CallDirection,
    /// The other party's URI.
    pub remote: String,
    /// Final status of the INVITE.
    pub status: Option<u16>,
    /// Whether it was answered.
    pub answered: bool,
    /// Why it ended (`remote-hangup`, `local-hangup`, `cancelled`, …).
    pub ended: &'static str,
    /// From the answer to the end, ms (0 when not answered).
    pub duration_ms: u64,
    /// The codec used.
    pub codec: Option<&'static str>,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP audio packets received.
    pub packets_received: u64,
    /// Packets missing in the received sequence numbers.
    pub packets_lost: u64,
    /// The recording of what was heard, when recording.
    pub recorded: Option<PathBuf>,
    /// Its length, ms.
    pub recorded_ms: u64,
}

/// What the phone is doing, for those who wait on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Registered now (always false without a registrar).
    pub registered: bool,
    /// The last registration failure, if the last attempt failed.
    pub registration_failed: Option<String>,
    /// Calls ended so far.
    pub calls_ended: u32,
    /// Calls offered to this phone so far (INVITEs received).
    pub calls_offered: u32,
}

/// How a softphone's run went.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Calls ended.
    pub calls: u32,
    /// Of which answered.
    pub answered: u32,
    /// Calls we dialled that were not answered.
    pub unanswered_dials: u32,
    /// Whether it was registered at least once (when it had a registrar).
    pub registered: Option<bool>,
}

impl Summary {
    /// Registered when asked to, and every call dialled was answered.
    pub fn is_success(&self) -> bool {
        self.registered != Some(false) && self.unanswered_dials == 0
    }
}

/// A running softphone.
pub struct Softphone {
    local: SocketAddr,
    status: watch::Receiver<Status>,
    stop: watch::Sender<bool>,
    reports: mpsc::UnboundedReceiver<CallReport>,
    task: Option<JoinHandle<Summary>>,
    summary: Option<Summary>,
}

impl Softphone {
    /// Binds the SIP socket and starts the phone.
    pub async fn start(opts: Options) -> Result<Softphone, SoftphoneError> {
        if opts.listen.ip().is_unspecified() {
            return Err(SoftphoneError::Options(
                "the listen address must be an IP address the other side can reach (not 0.0.0.0)".into(),
            ));
        }
        if opts.codecs.is_empty() {
            return Err(SoftphoneError::Options("no codec to offer".into()));
        }
        let registrar = match &opts.registrar {
            Some(uri) => {
                let addr = uri.socket_addr().ok_or_else(|| {
                    SoftphoneError::Options("the registrar must be sip:IP:PORT (no DNS)".into())
                })?;
                Some(RegistrarSpec {
                    uri: uri.clone(),
                    target: Target { transport: opts.transport, addr },
                    domain: opts.domain.clone().unwrap_or_else(|| uri.host().to_string()),
                    expires: opts.expires,
                })
            }
            None => None,
        };
        if registrar.is_some() && opts.password.is_none() {
            return Err(SoftphoneError::Options("registering needs a password".into()));
        }
        let mut opts = opts;
        if let Some(dir) = &opts.record_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                SoftphoneError::Options(format!("cannot create the record directory {}: {e}", dir.display()))
            })?;
            // Reports name the files by absolute path.
            opts.record_dir = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
        }
        let bind_err = |source| SoftphoneError::Bind { what: format!("SIP {}", opts.listen), source };
        let sock = match opts.transport {
            Transport::Udp => SipSocket::Udp(UdpSocket::bind(opts.listen).await.map_err(bind_err)?),
            Transport::Tcp => SipSocket::tcp(TcpListener::bind(opts.listen).await.map_err(bind_err)?),
        };
        let local =
            sock.local_addr().map_err(|source| SoftphoneError::Bind { what: "SIP".into(), source })?;
        let cfg = PhoneConfig {
            local,
            transport: opts.transport,
            user: opts.user.clone(),
            password: opts.password.clone(),
            registrar,
            answer_after: opts.answer_after.filter(|_| opts.dial.is_none()),
            hangup_after: opts.hangup_after,
            ring_timeout: Duration::from_secs(60),
            max_calls: opts.calls,
            codecs: opts.codecs.clone(),
            telephone_event: Some(101),
            user_agent: opts.user_agent.clone(),
            timers: TimerConfig::default(),
        };
        let (status_tx, status) = watch::channel(Status::default());
        let (stop, stop_rx) = watch::channel(false);
        let (report_tx, reports) = mpsc::unbounded_channel();
        let driver = Driver {
            phone: Phone::new(cfg),
            sock,
            opts: Arc::new(opts),
            status: status_tx,
            reports: report_tx,
            sockets: HashMap::new(),
            media: HashMap::new(),
            ended: HashMap::new(),
            numbers: HashMap::new(),
            count: 0,
            summary: Summary::default(),
            next_dial: None,
            dialled: 0,
            stopping: false,
        };
        let task = tokio::spawn(driver.run(stop_rx));
        Ok(Softphone { local, status, stop, reports, task: Some(task), summary: None })
    }

    /// The SIP address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The phone's status, as it changes.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Waits until registered; false after `timeout`.
    pub async fn wait_registered(&self, timeout: Duration) -> bool {
        let mut rx = self.status.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.registered)).await.is_ok_and(|r| r.is_ok())
    }

    /// The reports of ended calls, as they come.
    pub fn reports(&mut self) -> &mut mpsc::UnboundedReceiver<CallReport> {
        &mut self.reports
    }

    /// Takes the reports' receiver (to wait on it and on the phone at once).
    pub fn take_reports(&mut self) -> mpsc::UnboundedReceiver<CallReport> {
        std::mem::replace(&mut self.reports, mpsc::unbounded_channel().1)
    }

    /// Waits until the phone stops by itself (`calls` or `duration`), or
    /// after [`Softphone::request_stop`]; again later, returns the same.
    pub async fn finished(&mut self) -> Result<Summary, SoftphoneError> {
        if let Some(task) = self.task.as_mut() {
            let summary = task.await.map_err(|e| SoftphoneError::Task(e.to_string()))?;
            self.task = None;
            self.summary = Some(summary);
        }
        self.summary.clone().ok_or_else(|| SoftphoneError::Task("the phone ended abnormally".into()))
    }

    /// Asks the phone to stop: it ends its calls and unregisters.
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the phone and waits for it (at most the shutdown grace).
    pub async fn stop(mut self) -> Result<Summary, SoftphoneError> {
        self.request_stop();
        self.finished().await
    }
}

/// Commands to a call's media task.
enum MediaCmd {
    Change(Negotiated),
    Stop,
}

/// What a media task did.
#[derive(Debug, Default)]
struct MediaStats {
    codec: Option<&'static str>,
    sent: u64,
    received: u64,
    lost: u64,
    recorded: Option<PathBuf>,
    recorded_ms: u64,
}

struct MediaTask {
    cmd: mpsc::UnboundedSender<MediaCmd>,
    task: JoinHandle<()>,
}

/// The phone's SIP socket: one UDP socket, or a TCP listener and the
/// connections (opened by us or by the peer), one per remote address.
enum SipSocket {
    Udp(UdpSocket),
    Tcp(TcpSip),
}

struct TcpSip {
    listener: TcpListener,
    conns: HashMap<SocketAddr, Conn>,
    events_tx: mpsc::Sender<ConnEvent>,
    events: mpsc::Receiver<ConnEvent>,
    next_id: u64,
}

/// What the SIP socket brought.
enum Inbound {
    Datagram(usize, SocketAddr),
    Accepted(TcpStream, SocketAddr),
    Conn(ConnEvent),
    Failed(std::io::Error),
}

impl SipSocket {
    fn tcp(listener: TcpListener) -> SipSocket {
        let (events_tx, events) = mpsc::channel(256);
        SipSocket::Tcp(TcpSip { listener, conns: HashMap::new(), events_tx, events, next_id: 0 })
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            SipSocket::Udp(s) => s.local_addr(),
            SipSocket::Tcp(t) => t.listener.local_addr(),
        }
    }

    /// The next datagram, connection or framed message (cancel-safe).
    async fn recv(&mut self, buf: &mut [u8]) -> Inbound {
        match self {
            SipSocket::Udp(s) => match s.recv_from(buf).await {
                Ok((n, from)) => Inbound::Datagram(n, from),
                Err(e) => Inbound::Failed(e),
            },
            SipSocket::Tcp(t) => tokio::select! {
                r = t.listener.accept() => match r {
                    Ok((stream, peer)) => Inbound::Accepted(stream, peer),
                    Err(e) => Inbound::Failed(e),
                },
                Some(ev) = t.events.recv() => Inbound::Conn(ev),
            },
        }
    }

    async fn send(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        match self {
            SipSocket::Udp(s) => {
                if let Err(e) = s.send_to(&bytes, to).await {
                    debug!(%to, error = %e, "SIP send failed");
                }
            }
            SipSocket::Tcp(t) => {
                if let Some(c) = t.conns.get(&to)
                    && c.send(bytes.clone())
                {
                    return;
                }
                // none yet, or it went away: a new one (bytes wait for it)
                t.next_id += 1;
                let c = tcp::connect(to, t.next_id, t.events_tx.clone());
                if !c.send(bytes) {
                    debug!(%to, "SIP send failed: connection queue full");
                }
                t.conns.insert(to, c);
            }
        }
    }

    fn accepted(&mut self, stream: TcpStream, peer: SocketAddr) {
        if let SipSocket::Tcp(t) = self {
            t.next_id += 1;
            let c = tcp::accepted(stream, peer, t.next_id, t.events_tx.clone());
            t.conns.insert(peer, c);
        }
    }

    /// A connection's news: the message it framed, if any.
    fn on_conn_event(&mut self, ev: ConnEvent) -> Option<(Message, SocketAddr)> {
        let SipSocket::Tcp(t) = self else { return None };
        match ev {
            ConnEvent::Item { peer, item: Ok(StreamItem::Message(msg)) } => return Some((msg, peer)),
            ConnEvent::Item { peer, item: Ok(StreamItem::Ping) } => {
                if let Some(c) = t.conns.get(&peer) {
                    c.send(b"\r\n".to_vec());
                }
            }
            ConnEvent::Item { item: Ok(StreamItem::Pong), .. } => {}
            ConnEvent::Item { peer, item: Ok(StreamItem::Invalid(r)) } => {
                debug!(%peer, reason = %r, "malformed SIP message dropped");
            }
            ConnEvent::Item { peer, item: Err(r) } => {
                debug!(%peer, reason = %r, "TCP stream out of sync; closing");
                t.conns.remove(&peer);
            }
            ConnEvent::Closed { peer, id } => {
                if t.conns.get(&peer).is_some_and(|c| c.id == id) {
                    t.conns.remove(&peer);
                }
            }
        }
        None
    }
}

struct Driver {
    phone: Phone,
    sock: SipSocket,
    opts: Arc<Options>,
    status: watch::Sender<Status>,
    reports: mpsc::UnboundedSender<CallReport>,
    /// RTP sockets bound for calls not answered yet.
    sockets: HashMap<CallId, UdpSocket>,
    media: HashMap<CallId, MediaTask>,
    /// Ended calls whose media task is finishing.
    ended: HashMap<CallId, CallSummary>,
    /// Our numbering of calls.
    numbers: HashMap<CallId, u32>,
    count: u32,
    summary: Summary,
    next_dial: Option<Instant>,
    dialled: u32,
    /// Shutting down: no new calls.
    stopping: bool,
}

impl Driver {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Summary {
        let started = Instant::now();
        let deadline = self.opts.duration.map(|d| started + d);
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let mut stopping_until: Option<Instant> = None;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(CallId, MediaStats)>();
        if self.opts.registrar.is_none() {
            self.summary.registered = None;
            if self.opts.dial.is_some() {
                self.next_dial = Some(started);
            }
        } else {
            self.summary.registered = Some(false);
        }
        self.phone.start(started.into_std());
        info!(local = %self.sock.local_addr().map(|a| a.to_string()).unwrap_or_default(), "softphone up");
        loop {
            self.flush().await;
            self.handle_events(&done_tx).await;
            self.flush().await;
            let done = self.opts.calls.is_some_and(|n| self.summary.calls >= n);
            if stopping_until.is_none() && (done || deadline.is_some_and(|d| Instant::now() >= d)) {
                stopping_until = Some(Instant::now() + SHUTDOWN_GRACE);
                self.begin_shutdown();
                continue;
            }
            if let Some(until) = stopping_until {
                let quiet = self.phone.is_finished() && self.media.is_empty() && self.ended.is_empty();
                if quiet || Instant::now() >= until {
                    break;
                }
            }
            let timer = self.phone.poll_timeout().map(Instant::from_std);
            tokio::select! {
                r = self.sock.recv(&mut buf) => match r {
                    Inbound::Datagram(n, from) => self.on_datagram(&buf[..n], from),
                    Inbound::Accepted(stream, peer) => self.sock.accepted(stream, peer),
                    Inbound::Conn(ev) => {
                        if let Some((msg, from)) = self.sock.on_conn_event(ev) {
                            self.phone.on_message(msg, Transport::Tcp, from, Instant::now().into_std());
                        }
                    }
                    Inbound::Failed(e) => debug!(error = %e, "SIP receive failed"),
                },
                _ = sleep_until(timer) => self.phone.handle_timeout(Instant::now().into_std()),
                Some((id, stats)) = done_rx.recv() => self.media_done(id, stats),
                _ = sleep_until(self.next_dial), if self.next_dial.is_some() => {
                    self.next_dial = None;
                    self.dial().await;
                }
                _ = sleep_until(deadline), if stopping_until.is_none() => {}
                r = stop.changed(), if stopping_until.is_none() => {
                    if r.is_err() || *stop.borrow() {
                        stopping_until = Some(Instant::now() + SHUTDOWN_GRACE);
                        self.begin_shutdown();
                    }
                }
                _ = sleep_until(stopping_until), if stopping_until.is_some() => {}
            }
        }
        // Whatever did not finish in time: stop the media, report the calls.
        for m in self.media.values() {
            let _ = m.cmd.send(MediaCmd::Stop);
        }
        let waiting = Instant::now() + Duration::from_secs(1);
        while !self.media.is_empty() {
            match tokio::time::timeout_at(waiting, done_rx.recv()).await {
                Ok(Some((id, stats))) => self.media_done(id, stats),
                _ => break,
            }
        }
        for (_, m) in self.media.drain() {
            m.task.abort();
        }
        let ended: Vec<(CallId, CallSummary)> = self.ended.drain().collect();
        for (id, s) in ended {
            self.report(id, s, MediaStats::default());
        }
        info!(calls = self.summary.calls, "softphone stopped");
        self.summary
    }

    fn begin_shutdown(&mut self) {
        self.stopping = true;
        self.next_dial = None;
        self.phone.shutdown(Instant::now().into_std());
    }

    async fn flush(&mut self) {
        while let Some(t) = self.phone.poll_transmit() {
            self.sock.send(t.msg.to_bytes(), t.target.addr).await;
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if crate::sip::msg::framing::is_keepalive(data) {
            return;
        }
        match Message::parse(data) {
            Ok(msg) => self.phone.on_message(msg, Transport::Udp, from, Instant::now().into_std()),
            Err(e) => debug!(%from, reason = %e, "malformed SIP message dropped"),
        }
    }

    async fn handle_events(&mut self, done: &mpsc::UnboundedSender<(CallId, MediaStats)>) {
        while let Some(ev) = self.phone.poll_event() {
            match ev {
                Event::Registration(s) => self.on_registration(s),
                Event::Incoming(id) => {
                    self.number(id);
                    self.status.send_modify(|st| st.calls_offered += 1);
                    match bind_rtp(self.opts.listen.ip()).await {
                        Ok(sock) => {
                            if let Ok(addr) = sock.local_addr() {
                                self.sockets.insert(id, sock);
                                self.phone.set_media(id, addr, Instant::now().into_std());
                            }
                        }
                        Err(e) => {
                            warn!(error = %e, "no RTP socket for an incoming call; refusing it");
                            self.phone.hang_up(id, Instant::now().into_std());
                        }
                    }
                }
                Event::Up(id, n) => {
                    let Some(sock) = self.sockets.remove(&id) else { continue };
                    let number = self.number(id);
                    let record =
                        self.opts.record_dir.as_ref().map(|d| d.join(format!("call-{number:03}.wav")));
                    let (cmd, rx) = mpsc::unbounded_channel();
                    let opts = self.opts.clone();
                    let done = done.clone();
                    let task = tokio::spawn(async move {
                        let stats = run_media(sock, n, &opts, record, rx).await;
                        let _ = done.send((id, stats));
                    });
                    debug!(call = number, "call up");
                    self.media.insert(id, MediaTask { cmd, task });
                }
                Event::MediaChanged(id, n) => {
                    if let Some(m) = self.media.get(&id) {
                        let _ = m.cmd.send(MediaCmd::Change(n));
                    }
                }
                Event::Ended(id, summary) => {
                    self.sockets.remove(&id);
                    if summary.direction == CallDirection::Outgoing
                        && !self.stopping
                        && self.opts.dial.is_some()
                        && self.opts.calls.is_none_or(|n| self.dialled < n)
                    {
                        self.next_dial = Some(Instant::now() + Duration::from_secs(1));
                    }
                    match self.media.get(&id) {
                        Some(m) => {
                            let _ = m.cmd.send(MediaCmd::Stop);
                            self.ended.insert(id, summary);
                        }
                        None => self.report(id, summary, MediaStats::default()),
                    }
                }
            }
        }
    }

    fn on_registration(&mut self, s: RegState) {
        match &s {
            RegState::Registered { expires } => {
                info!(expires, "softphone registered");
                if self.summary.registered == Some(false)
                    && self.opts.dial.is_some()
                    && self.dialled == 0
                    && !self.stopping
                {
                    self.next_dial = Some(Instant::now());
                }
                self.summary.registered = Some(true);
                self.status.send_modify(|st| {
                    st.registered = true;
                    st.registration_failed = None;
                });
            }
            RegState::Failed { reason, retry_in } => {
                warn!(%reason, retry_in_secs = retry_in.as_secs(), "softphone registration failed");
                let reason = reason.clone();
                self.status.send_modify(|st| {
                    st.registered = false;
                    st.registration_failed = Some(reason);
                });
            }
            RegState::Unregistered => {
                info!("softphone unregistered");
                self.status.send_modify(|st| st.registered = false);
            }
            RegState::Registering | RegState::Unregistering | RegState::Idle => {}
        }
    }

    async fn dial(&mut self) {
        let Some(uri) = self.opts.dial.clone() else { return };
        let sock = match bind_rtp(self.opts.listen.ip()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "no RTP socket for a call; not dialling");
                return;
            }
        };
        let Ok(media) = sock.local_addr() else { return };
        match self.phone.dial(uri, media, Instant::now().into_std()) {
            Some(id) => {
                self.dialled += 1;
                self.number(id);
                self.sockets.insert(id, sock);
            }
            None => warn!("cannot dial: no registrar and no IP address in the URI, or no calls left"),
        }
    }

    fn number(&mut self, id: CallId) -> u32 {
        if let Some(n) = self.numbers.get(&id) {
            return *n;
        }
        self.count += 1;
        self.numbers.insert(id, self.count);
        self.count
    }

    fn media_done(&mut self, id: CallId, stats: MediaStats) {
        self.media.remove(&id);
        if let Some(s) = self.ended.remove(&id) {
            self.report(id, s, stats);
        }
    }

    fn report(&mut self, id: CallId, s: CallSummary, stats: MediaStats) {
        let number = self.numbers.remove(&id).unwrap_or(0);
        let answered = s.answered.is_some();
        self.summary.calls += 1;
        if answered {
            self.summary.answered += 1;
        } else if s.direction == CallDirection::Outgoing {
            self.summary.unanswered_dials += 1;
        }
        let report = CallReport {
            call: number,
            call_id: s.sip_call_id,
            direction: s.direction,
            remote: s.remote,
            status: s.status,
            answered,
            ended: s.reason.as_str(),
            duration_ms: s
                .answered
                .map(|a| s.ended.saturating_duration_since(a).as_millis() as u64)
                .unwrap_or(0),
            codec: stats.codec,
            packets_sent: stats.sent,
            packets_received: stats.received,
            packets_lost: stats.lost,
            recorded: stats.recorded,
            recorded_ms: stats.recorded_ms,
        };
        info!(call = number, ended = report.ended, answered, "softphone call ended");
        let _ = self.reports.send(report);
        let calls = self.summary.calls;
        self.status.send_modify(|st| st.calls_ended = calls);
    }
}

async fn bind_rtp(ip: IpAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

/// One call's media until told to stop: the prompt out every 20 ms, what
/// comes in onto the recording's timeline.
async fn run_media(
    sock: UdpSocket,
    n: Negotiated,
    opts: &Options,
    record: Option<PathBuf>,
    mut cmd: mpsc::UnboundedReceiver<MediaCmd>,
) -> MediaStats {
    let delay_frames = (opts.play_after.as_millis() / 20) as u32;
    let mut sender = Sender::new(
        opts.prompt.clone(),
        opts.after_prompt,
        delay_frames,
        (n.codec, n.pt),
        (rand::random(), rand::random(), rand::random()),
    );
    let mut receiver = Receiver::new(n.codec, n.pt);
    let mut remote = n.remote;
    let mut send = !remote.ip().is_unspecified() && n.direction.receives();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: super::media::RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = match &record {
        Some(path) => match hound::WavWriter::create(path, spec) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot record this call");
                None
            }
        },
        None => None,
    };
    let mut out = [0u8; PACKET];
    let mut inbuf = [0u8; 2048];
    let mut pcm = [0i16; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let len = sender.next_packet(&mut out);
                if send {
                    let _ = sock.try_send_to(&out[..len], remote);
                }
            }
            r = sock.recv_from(&mut inbuf) => {
                let Ok((len, _)) = r else { continue };
                let Some(view) = crate::media::rtp::parse(&inbuf[..len]) else { continue };
                if let Placement::Write { silence } = receiver.place(&view)
                    && let Some(w) = writer.as_mut()
                {
                    let ok = (0..silence).try_for_each(|_| w.write_sample(0i16)).and_then(|()| {
                        let samples = &mut pcm[..view.payload.len().min(2048)];
                        receiver.codec().decode_into(view.payload, samples);
                        samples.iter().try_for_each(|&s| w.write_sample(s))
                    });
                    if let Err(e) = ok {
                        warn!(error = %e, "recording failed; the call goes on unrecorded");
                        writer = None;
                    }
                }
            }
            c = cmd.recv() => match c {
                Some(MediaCmd::Change(n)) => {
                    remote = n.remote;
                    send = !remote.ip().is_unspecified() && n.direction.receives();
                    sender.set_payload(n.codec, n.pt);
                    receiver.set_payload(n.codec, n.pt);
                }
                Some(MediaCmd::Stop) | None => break,
            },
        }
    }
    let mut recorded = None;
    let mut recorded_ms = 0;
    if let (Some(w), Some(path)) = (writer, record) {
        let samples = w.len() as u64;
        match w.finalize() {
            Ok(()) => {
                recorded = Some(path);
                recorded_ms = samples * 1000 / super::media::RATE as u64;
            }
            Err(e) => warn!(error = %e, "the recording could not be finished"),
        }
    }
    MediaStats {
        codec: Some(receiver.codec().name()),
        sent: sender.sent(),
        received: receiver.received(),
        lost: receiver.lost(),
        recorded,
        recorded_ms,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
