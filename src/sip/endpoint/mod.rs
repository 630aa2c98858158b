//! The SIP endpoint: sockets, clock and dispatch around the sans-IO cores.
//!
//! One tokio task ([`Endpoint::run`]) owns the UDP socket, the TCP listener
//! and connection table, the [`Transactions`] layer, and — depending on the
//! mode — the [`Registration`] to the switch or the built-in [`Registrar`].
//! It loops over: a datagram, a TCP event, the earliest timer of any core,
//! or the stop signal; feeds the event to the right core; then drains every
//! core's outputs (messages to send, events to act on) and sleeps until the
//! next deadline. No core ever waits on IO.
//!
//! Requests are dispatched by method: `REGISTER` to the registrar (built-in
//! mode), `OPTIONS` answered `200`, `INVITE` answered `404` for unknown users
//! (calls arrive with the call-control layer), requests outside any dialog
//! `481`, unknown methods `501`. A message that fails to parse is answered
//! `400` (with a `Warning` naming the reason) when its Via can be read, and
//! dropped otherwise; a TCP stream that loses framing is closed.
//!
//! In built-in registrar mode the bindings are kept in the database
//! ([`bindings`]): every change goes to a worker, and the kept ones are
//! restored before the first datagram, so a restart reaches the phones
//! registered before it.
//!
//! Shutdown: on the stop signal the registration is withdrawn
//! (`Expires: 0`) and the loop runs on until that is answered and no
//! transaction is waiting for a final response, or until the grace period
//! ends.

pub mod bindings;
pub mod tcp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::msg::framing::{StreamItem, is_keepalive};
use super::msg::{Message, Method, Params, Rejected, Uri, Via};
use super::registrar::{BindingEvent, Registrar, RegistrarConfig};
use super::registration::{RegConfig, RegOutput, RegState, Registration};
use super::transaction::{Incoming, TimerConfig, Transactions, TxEvent, TxId};
use super::transport::{Target, Transport, response_target, stamp_received, stamp_via};
use crate::config::Config;
use tcp::{Conn, ConnEvent};

/// Datagrams queued while the socket is not writable, at most.
const UDP_QUEUE: usize = 4096;

/// Methods huifang answers, for `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO";

/// A SIP event for the owner of a Call-ID (a call's task).
#[derive(Debug)]
pub enum SipEvent {
    /// A response to a request the owner sent (or a 2xx retransmission
    /// that arrived after its transaction ended: re-ACK it).
    Response(Message),
    /// A request the owner sent got no final response in time, or its
    /// transport failed.
    Timeout {
        /// The Call-ID of the request.
        call_id: String,
        /// Its method.
        method: Method,
    },
    /// A request in the owner's dialog, on a new server transaction: answer
    /// it with [`EndpointHandle::respond`].
    Request(TxId, Message),
    /// An ACK for a 2xx the owner sent.
    Ack(Message),
}

/// Where a call's SIP events go. Boxed: tokio's channel allocates its
/// slots 32 at a time, and 32 inline events would be ≈ 5 KiB per call for
/// the few messages a call gets.
pub type Sink = mpsc::UnboundedSender<Box<SipEvent>>;

/// What others ask of the endpoint.
enum Command {
    Send(Message, Target),
    Respond(TxId, Message),
    Cancel(String),
    Attach(String, Sink),
    Detach(String),
    Resolve(Uri, oneshot::Sender<Option<(Uri, Target)>>),
    Registered(oneshot::Sender<Option<bool>>),
}

/// A handle for the tasks that place calls: send requests, answer
/// requests, receive the events of their Call-IDs. Cheap to clone.
#[derive(Clone)]
pub struct EndpointHandle {
    tx: mpsc::Sender<Command>,
    advertised: SocketAddr,
    switch: Option<Transport>,
}

impl EndpointHandle {
    async fn cmd(&self, c: Command) {
        // The endpoint outlives every call; if it is gone, so is the call.
        let _ = self.tx.send(c).await;
    }
    /// Routes every SIP event of `call_id` to `sink` (before the first
    /// request of that Call-ID is sent).
    pub async fn attach(&self, call_id: &str, sink: Sink) {
        self.cmd(Command::Attach(call_id.to_string(), sink)).await;
    }
    /// Stops routing `call_id`.
    pub async fn detach(&self, call_id: &str) {
        self.cmd(Command::Detach(call_id.to_string())).await;
    }
    /// Sends a request (the endpoint adds the top Via) as a new client
    /// transaction; its responses and time-out go to the Call-ID's sink.
    pub async fn send(&self, msg: Message, target: Target) {
        self.cmd(Command::Send(msg, target)).await;
    }
    /// Answers a request received as [`SipEvent::Request`].
    pub async fn respond(&self, tx: TxId, msg: Message) {
        self.cmd(Command::Respond(tx, msg)).await;
    }
    /// CANCELs the pending INVITE of a Call-ID.
    pub async fn cancel(&self, call_id: &str) {
        self.cmd(Command::Cancel(call_id.to_string())).await;
    }
    /// Where a request for `uri` goes: through the switch when there is
    /// one; else to the phone registered under that user, or to the URI's
    /// own address. Returns the Request-URI to use and the target, or
    /// `None` when the user is not registered.
    pub async fn resolve(&self, uri: &Uri) -> Option<(Uri, Target)> {
        let (tx, rx) = oneshot::channel();
        self.cmd(Command::Resolve(uri.clone(), tx)).await;
        rx.await.ok().flatten()
    }
    /// `None` in registrar mode; else whether registered to the switch now.
    pub async fn registered(&self) -> Option<bool> {
        let (tx, rx) = oneshot::channel();
        self.cmd(Command::Registered(tx)).await;
        rx.await.ok().flatten()
    }
    /// Our SIP address as advertised in Via and Contact.
    pub fn advertised(&self) -> SocketAddr {
        self.advertised
    }
    /// Our Contact for a transport.
    pub fn contact(&self, transport: Transport) -> Uri {
        let u = Uri::sip(Some("huifang"), &self.advertised.ip().to_string(), Some(self.advertised.port()));
        match transport {
            Transport::Tcp => u.with_param("transport", Some("tcp")),
            Transport::Udp => u,
        }
    }
    /// The switch's transport, when there is a switch.
    pub fn switch_transport(&self) -> Option<Transport> {
        self.switch
    }
}

/// How the endpoint is set up.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Where to listen (UDP and TCP).
    pub listen: SocketAddr,
    /// What to advertise in Via and Contact (`None`: the bound address).
    pub advertise: Option<SocketAddr>,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// User-Agent / Server.
    pub user_agent: String,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Register to a switch, or be the registrar.
    pub mode: Mode,
}

/// Switch or built-in registrar.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Register to the switch; `RegConfig::local` is filled in at bind time.
    Switch(Box<RegConfig>),
    /// Be the registrar for these `(user, password)` accounts.
    Registrar(RegistrarConfig, Vec<(String, String)>),
}

impl EndpointConfig {
    /// Builds the endpoint settings from the configuration file.
    pub fn from_config(cfg: &Config) -> Result<EndpointConfig, crate::config::ConfigError> {
        let (t1, t2, t4) = cfg.timers();
        let mode = match cfg.switch()? {
            Some(sw) => Mode::Switch(Box::new(RegConfig {
                target: Target { transport: sw.transport, addr: sw.target },
                aor: Uri::sip(Some(&sw.user), &sw.domain, None),
                registrar: sw.registrar,
                user: sw.user,
                password: sw.password,
                local: cfg.advertised(),
                expires: sw.expires,
                retry_min: sw.retry_min,
                retry_max: sw.retry_max,
                user_agent: cfg.sip.user_agent.clone(),
            })),
            None => {
                let (users, skipped) = cfg.users();
                for name in skipped {
                    warn!(user = %name, "registrar account skipped: its password_env variable is not set");
                }
                let r = &cfg.sip.registrar;
                Mode::Registrar(
                    RegistrarConfig {
                        realm: r.realm.clone(),
                        min_expires: r.min_expires,
                        max_expires: r.max_expires,
                        nonce_lifetime: Duration::from_secs(r.nonce_lifetime_secs),
                        algorithms: r.algorithms().map_err(|reason| crate::config::ConfigError {
                            file: "-".into(),
                            key: "sip.registrar.digest_algorithms".into(),
                            reason,
                        })?,
                        guess: r.guess().map_err(|(key, reason)| crate::config::ConfigError {
                            file: "-".into(),
                            key,
                            reason,
                        })?,
                    },
                    users,
                )
            }
        };
        Ok(EndpointConfig {
            listen: cfg.sip.listen,
            advertise: cfg.sip.advertise,
            timers: TimerConfig { t1, t2, t4 },
            user_agent: cfg.sip.user_agent.clone(),
            shutdown_grace: Duration::from_millis(cfg.sip.shutdown_grace_ms),
            mode,
        })
    }
}

/// A bound endpoint, ready to [`run`](Endpoint::run).
pub struct Endpoint {
    cfg: EndpointConfig,
    udp: UdpSocket,
    tcp: TcpListener,
    local: SocketAddr,
    cmd_tx: mpsc::Sender<Command>,
    cmd_rx: mpsc::Receiver<Command>,
    /// Bindings to restore, and where to send changes ([`bindings`]).
    kept: Vec<crate::store::StoredBinding>,
    keep_tx: Option<mpsc::UnboundedSender<bindings::UserBindings>>,
}

impl Endpoint {
    /// Binds UDP and TCP on the configured address (the same port for
    /// both; with port 0 a free port is picked for both).
    pub async fn bind(cfg: EndpointConfig) -> anyhow::Result<Endpoint> {
        let mut attempts = 0;
        let (udp, tcp) = loop {
            let udp =
                UdpSocket::bind(cfg.listen).await.with_context(|| format!("binding UDP {}", cfg.listen))?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if cfg.listen.port() == 0 && attempts < 10 => {
                    attempts += 1;
                    debug!(error = %e, "TCP port taken, trying another");
                }
                Err(e) => return Err(e).with_context(|| format!("binding TCP {addr}")),
            }
        };
        let local = udp.local_addr()?;
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        Ok(Endpoint { cfg, udp, tcp, local, cmd_tx, cmd_rx, kept: Vec::new(), keep_tx: None })
    }

    /// A handle for placing calls through this endpoint.
    pub fn handle(&self) -> EndpointHandle {
        EndpointHandle {
            tx: self.cmd_tx.clone(),
            advertised: self.cfg.advertise.unwrap_or(self.local),
            switch: match &self.cfg.mode {
                Mode::Switch(rc) => Some(rc.target.transport),
                Mode::Registrar(..) => None,
            },
        }
    }

    /// Built-in registrar mode: restore `kept` (bindings from before a
    /// restart) at start, and send every later change of a user's
    /// bindings to `changes` (the [`bindings::keep`] worker).
    pub fn keep_bindings(
        &mut self,
        kept: Vec<crate::store::StoredBinding>,
        changes: mpsc::UnboundedSender<bindings::UserBindings>,
    ) {
        self.kept = kept;
        self.keep_tx = Some(changes);
    }

    /// Whether this endpoint is the built-in registrar (not registered to a switch).
    pub fn is_registrar(&self) -> bool {
        matches!(self.cfg.mode, Mode::Registrar(..))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Runs until `stop` turns true and the shutdown finished (or its
    /// grace period ended).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut cmd_rx = self.cmd_rx;
        drop(self.cmd_tx);
        let (conn_tx, mut conn_rx) = mpsc::channel(1024);
        let advertised = self.cfg.advertise.unwrap_or(self.local);
        let now = Instant::now().into_std();
        let (registration, registrar) = match &self.cfg.mode {
            Mode::Switch(rc) => {
                let mut rc = (**rc).clone();
                rc.local = advertised;
                (Some(Registration::new(rc)), None)
            }
            Mode::Registrar(rc, users) => {
                if users.is_empty() {
                    warn!("the built-in registrar has no usable account: every REGISTER will be refused");
                }
                let mut registrar = Registrar::new(rc.clone(), users.clone(), now);
                let wall = chrono::Utc::now();
                let (mut restored, mut refused) = (0, 0);
                for (user, b) in bindings::from_rows(std::mem::take(&mut self.kept), now, wall) {
                    if registrar.restore(&user, b, now) {
                        restored += 1;
                    } else {
                        refused += 1;
                    }
                }
                if restored + refused > 0 {
                    info!(restored, refused, "registrar: bindings from before the restart");
                }
                (None, Some(registrar))
            }
        };
        let mut core = Core {
            tx: Transactions::new(self.cfg.timers),
            registration,
            reg_tx: None,
            registrar,
            udp: self.udp,
            conns: HashMap::new(),
            next_conn: 0,
            conn_tx,
            user_agent: self.cfg.user_agent.clone(),
            udp_queue: Default::default(),
            advertised,
            routes: HashMap::new(),
            tx_owner: HashMap::new(),
            keep_tx: self.keep_tx.take(),
            qualify: HashMap::new(),
        };
        if let Some(r) = core.registration.as_mut() {
            r.start(now);
        }
        core.qualify_restored(now);
        core.drain();

        let mut buf = vec![0u8; super::msg::MAX_MESSAGE + 1];
        let mut stopping_until: Option<Instant> = None;
        loop {
            if let Some(until) = stopping_until
                && (core.shutdown_done() || Instant::now() >= until)
            {
                if !core.shutdown_done() {
                    warn!("shutdown grace period over with work still open");
                }
                break;
            }
            let deadline = core.next_deadline().map(Instant::from_std);
            let wake = match (deadline, stopping_until) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            tokio::select! {
                r = core.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => core.on_datagram(&buf[..n], from),
                    Err(e) => debug!(error = %e, "UDP receive error"),
                },
                r = self.tcp.accept() => match r {
                    Ok((stream, peer)) => {
                        core.next_conn += 1;
                        let conn = tcp::accepted(stream, peer, core.next_conn, core.conn_tx.clone());
                        core.conns.insert(peer, conn);
                    }
                    Err(e) => warn!(error = %e, "TCP accept failed"),
                },
                Some(ev) = conn_rx.recv() => core.on_conn_event(ev),
                Some(cmd) = cmd_rx.recv() => core.on_command(cmd),
                r = core.udp.writable(), if !core.udp_queue.is_empty() => {
                    if r.is_ok() {
                        core.flush_udp();
                    }
                }
                _ = sleep_until(wake) => {}
                r = stop.changed(), if stopping_until.is_none() => {
                    if r.is_err() || *stop.borrow() {
                        info!("stopping: unregistering and finishing open transactions");
                        stopping_until = Some(Instant::now() + self.cfg.shutdown_grace);
                        if let Some(reg) = core.registration.as_mut() {
                            reg.unregister(Instant::now().into_std());
                        }
                    }
                }
            }
            core.on_time(Instant::now().into_std());
            core.drain();
        }
        Ok(())
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Everything the loop owns, with the synchronous handlers.
struct Core {
    tx: Transactions,
    registration: Option<Registration>,
    reg_tx: Option<TxId>,
    registrar: Option<Registrar>,
    udp: UdpSocket,
    conns: HashMap<SocketAddr, Conn>,
    next_conn: u64,
    conn_tx: mpsc::Sender<ConnEvent>,
    user_agent: String,
    /// Datagrams waiting for the socket to become writable.
    udp_queue: std::collections::VecDeque<(Vec<u8>, SocketAddr)>,
    /// Our address for Via and Contact.
    advertised: SocketAddr,
    /// Call-ID → owner.
    routes: HashMap<String, Sink>,
    /// Client transactions sent for owners: Call-ID and method.
    tx_owner: HashMap<TxId, (String, Method)>,
    /// Where changed bindings go to be kept (built-in registrar mode).
    keep_tx: Option<mpsc::UnboundedSender<bindings::UserBindings>>,
    /// OPTIONS sent to the phones of restored bindings: user and contact.
    qualify: HashMap<TxId, (String, Uri)>,
}

impl Core {
    fn now() -> std::time::Instant {
        Instant::now().into_std()
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        [
            self.tx.poll_timeout(),
            self.registration.as_ref().and_then(|r| r.poll_timeout()),
            self.registrar.as_ref().and_then(|r| r.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Asks the phone of every restored binding with an OPTIONS (RFC 3261
    /// §11): any final response confirms the binding, a timeout drops it.
    fn qualify_restored(&mut self, now: std::time::Instant) {
        let Some(reg) = &self.registrar else { return };
        for (user, b) in reg.unconfirmed() {
            let mut msg = Message::request(Method::Options, b.contact.clone())
                .with("Max-Forwards", "70")
                .with("From", format!("<sip:huifang@{}>;tag={}", self.advertised, super::random_token(10)))
                .with("To", format!("<{}>", b.contact))
                .with("Call-ID", super::random_token(20))
                .with("CSeq", "1 OPTIONS")
                .with("User-Agent", self.user_agent.clone());
            let via = Via {
                transport: b.source.transport.via_name().to_string(),
                host: self.advertised.ip().to_string(),
                port: Some(self.advertised.port()),
                params: Params::parse(&format!(";branch={};rport", super::new_branch())),
            };
            msg.prepend("Via", via.to_string());
            let tx = self.tx.send_request(msg, b.source, now);
            self.qualify.insert(tx, (user, b.contact));
        }
    }

    /// Sends the bindings of every user whose bindings changed to the
    /// worker that keeps them (never waits).
    fn keep_bindings(&self, events: &[BindingEvent], now: std::time::Instant) {
        let (Some(tx), Some(reg)) = (&self.keep_tx, &self.registrar) else { return };
        let mut users: Vec<&str> = events
            .iter()
            .filter_map(|ev| match ev {
                BindingEvent::Bound { user, .. }
                | BindingEvent::Removed { user }
                | BindingEvent::Expired { user } => Some(user.as_str()),
                BindingEvent::AuthFailed { .. } | BindingEvent::Blocked { .. } => None,
            })
            .collect();
        users.sort_unstable();
        users.dedup();
        let wall = chrono::Utc::now();
        for user in users {
            let _ = tx.send(bindings::to_rows(user, reg.bindings(user), now, wall));
        }
    }

    fn shutdown_done(&self) -> bool {
        let reg_done = self.registration.as_ref().is_none_or(|r| *r.state() == RegState::Unregistered);
        reg_done && self.tx.pending() == 0
    }

    fn on_time(&mut self, now: std::time::Instant) {
        self.tx.handle_timeout(now);
        if let Some(r) = self.registration.as_mut() {
            r.handle_timeout(now);
        }
        if let Some(r) = self.registrar.as_mut() {
            let events = r.handle_timeout(now);
            for ev in &events {
                log_binding(ev);
            }
            self.keep_bindings(&events, now);
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if is_keepalive(data) {
            return;
        }
        match Message::parse(data) {
            Ok(msg) => self.on_message(msg, Transport::Udp, from),
            Err(rejected) => self.on_rejected(rejected, Transport::Udp, from),
        }
    }

    fn on_conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Item { peer, item } => match item {
                Ok(StreamItem::Message(msg)) => self.on_message(msg, Transport::Tcp, peer),
                Ok(StreamItem::Invalid(rejected)) => self.on_rejected(rejected, Transport::Tcp, peer),
                Ok(StreamItem::Ping) => {
                    if let Some(c) = self.conns.get(&peer) {
                        c.send(b"\r\n".to_vec());
                    }
                }
                Ok(StreamItem::Pong) => {}
                Err(rejected) => {
                    debug!(%peer, reason = %rejected, "TCP stream out of sync; closing");
                    self.on_rejected(rejected, Transport::Tcp, peer);
                    // Dropping our handle closes the writer, which closes the socket.
                    self.conns.remove(&peer);
                }
            },
            ConnEvent::Closed { peer, id } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == id) {
                    self.conns.remove(&peer);
                    debug!(%peer, "TCP connection closed");
                    // Transactions waiting on it fail now rather than at Timer B/F.
                    self.tx.transport_failed(Target { transport: Transport::Tcp, addr: peer }, Self::now());
                }
            }
        }
    }

    /// A message that failed to parse: answer 400 if it was a request whose
    /// Via can be read, else drop it.
    fn on_rejected(&mut self, rejected: Rejected, transport: Transport, from: SocketAddr) {
        debug!(%from, %transport, reason = %rejected, "malformed message");
        let Some(partial) = rejected.partial else {
            return;
        };
        if !partial.is_request() || partial.method() == Some(Method::Ack) {
            return;
        }
        // The Via of a request of another SIP version still says where its
        // 505 goes (RFC 4475 3.1.2.16).
        let strict = partial.top_via().is_ok();
        let mut partial = partial;
        let Ok(mut via) = partial.top_via_any_version() else { return };
        // §18.2.1 as for any request: a sent-by that is not the source
        // address (a name, another address) gets `received`, so a 400 over
        // UDP reaches the sender rather than the name it wrote.
        stamp_via(&mut via, from);
        if strict {
            partial.set_top_via(&via);
        }
        let status = rejected.error.status();
        let mut resp = Message::response_to(&partial, status);
        resp.ensure_to_tag(&super::random_token(10));
        // The reason is ours (it never quotes the message), so it may go back.
        resp.push("Warning", format!("399 huifang \"{}\"", rejected.error.to_string().replace('"', "'")));
        let target = response_target(&via, transport, from);
        self.send(target, &resp);
    }

    fn on_message(&mut self, mut msg: Message, transport: Transport, from: SocketAddr) {
        let now = Self::now();
        if msg.is_request() {
            stamp_received(&mut msg, from);
            match self.tx.on_request(msg, transport, from, now) {
                Incoming::Request { tx, msg } => match self.route(&msg) {
                    Some(sink) => {
                        let _ = sink.send(Box::new(SipEvent::Request(tx, msg)));
                    }
                    None => self.on_request(tx, msg, transport, from, now),
                },
                Incoming::Ack2xx { msg } => match self.route(&msg) {
                    Some(sink) => {
                        let _ = sink.send(Box::new(SipEvent::Ack(msg)));
                    }
                    None => debug!(msg = %msg.summary(), "ACK outside any dialog ignored"),
                },
                Incoming::Absorbed => {}
                Incoming::StrayResponse { .. } => {}
            }
        } else if let Incoming::StrayResponse { msg } = self.tx.on_response(msg, now) {
            match self.route(&msg) {
                Some(sink) => {
                    let _ = sink.send(Box::new(SipEvent::Response(msg)));
                }
                None => debug!(msg = %msg.summary(), "stray response dropped"),
            }
        }
    }

    fn route(&self, msg: &Message) -> Option<Sink> {
        self.routes.get(msg.call_id()?).cloned()
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Self::now();
        match cmd {
            Command::Attach(call_id, sink) => {
                self.routes.insert(call_id, sink);
            }
            Command::Detach(call_id) => {
                self.routes.remove(&call_id);
            }
            Command::Send(mut msg, target) => {
                let via = Via {
                    transport: target.transport.via_name().to_string(),
                    host: self.advertised.ip().to_string(),
                    port: Some(self.advertised.port()),
                    params: Params::parse(&format!(";branch={};rport", super::new_branch())),
                };
                msg.prepend("Via", via.to_string());
                let owner = msg.call_id().map(str::to_string).zip(msg.method());
                let tx = self.tx.send_request(msg, target, now);
                if let Some(owner) = owner
                    && owner.1 != Method::Ack
                {
                    self.tx_owner.insert(tx, owner);
                }
            }
            Command::Respond(tx, mut msg) => {
                if !msg.headers().iter().any(|h| h.name == "Server") {
                    msg.push("Server", self.user_agent.clone());
                }
                self.tx.respond(tx, msg, now);
            }
            Command::Cancel(call_id) => {
                let invite = self
                    .tx_owner
                    .iter()
                    .filter(|(_, (c, m))| *c == call_id && *m == Method::Invite)
                    .map(|(tx, _)| *tx)
                    .max();
                if let Some(tx) = invite
                    && let Some(cancel) = self.tx.cancel(tx, now)
                {
                    self.tx_owner.insert(cancel, (call_id, Method::Cancel));
                }
            }
            Command::Resolve(uri, reply) => {
                let _ = reply.send(self.resolve(&uri, now));
            }
            Command::Registered(reply) => {
                let _ = reply.send(
                    self.registration.as_ref().map(|r| matches!(r.state(), RegState::Registered { .. })),
                );
            }
        }
    }

    fn resolve(&self, uri: &Uri, now: std::time::Instant) -> Option<(Uri, Target)> {
        if let Some(reg) = &self.registration {
            return Some((uri.clone(), reg.target()));
        }
        if let (Some(registrar), Some(user)) = (&self.registrar, uri.user())
            && registrar.knows(user)
        {
            let b = registrar.lookup(user, now).into_iter().max_by_key(|b| b.expires_at)?;
            return Some((b.contact, b.source));
        }
        let transport = uri.transport().and_then(|t| Transport::parse(&t)).unwrap_or(Transport::Udp);
        uri.socket_addr().map(|addr| (uri.clone(), Target { transport, addr }))
    }

    /// A new server transaction: the built-in user agent's answers.
    fn on_request(
        &mut self,
        tx: TxId,
        req: Message,
        transport: Transport,
        from: SocketAddr,
        now: std::time::Instant,
    ) {
        let method = req.method().unwrap_or(Method::Options);
        let resp = match method {
            // §8.2.2.3: an extension we were required to understand and do
            // not (RFC 4475 3.3.5) — after the method and the Request-URI
            // (an INVITE to nobody is a 404 first)
            Method::Register | Method::Options if Self::unsupported(&req).is_some() => {
                Self::unsupported(&req).expect("checked")
            }
            Method::Register => match self.registrar.as_mut() {
                Some(reg) => {
                    let (resp, events) = reg.on_register(&req, Target { transport, addr: from }, now);
                    for ev in &events {
                        log_binding(ev);
                    }
                    self.keep_bindings(&events, now);
                    resp
                }
                None => self.with_allow(Message::response_to(&req, 405)),
            },
            Method::Options => {
                let mut r = self.with_allow(Message::response_to(&req, 200));
                r.push("Accept", "application/sdp");
                r
            }
            Method::Invite => {
                if req.to_tag().is_some() {
                    Message::response_to(&req, 481)
                } else {
                    let user = req.request_uri().and_then(|u| u.user()).unwrap_or_default().to_string();
                    if self.is_local_user(&user) {
                        // Calls to huifang's users arrive with call control.
                        Self::unsupported(&req).unwrap_or_else(|| Message::response_to(&req, 480))
                    } else {
                        Message::response_to(&req, 404)
                    }
                }
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Notify | Method::Refer => {
                Message::response_to(&req, 481)
            }
            Method::Other(_) => self.with_allow(Message::response_to(&req, 501)),
            _ => self.with_allow(Message::response_to(&req, 405)),
        };
        self.respond(tx, resp, now);
    }

    /// 420 Bad Extension listing the option tags of the request's Require
    /// headers, when it has any: this user agent supports no extension that
    /// a request outside a dialog may require.
    fn unsupported(req: &Message) -> Option<Message> {
        let tags: Vec<&str> = req
            .headers()
            .iter()
            .filter(|h| h.name == "Require")
            .flat_map(|h| h.value.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tags.is_empty() {
            return None;
        }
        let mut r = Message::response_to(req, 420);
        r.push("Unsupported", tags.join(", "));
        Some(r)
    }

    fn is_local_user(&self, user: &str) -> bool {
        match (&self.registrar, &self.registration) {
            (Some(r), _) => r.knows(user),
            (None, Some(_)) => false,
            (None, None) => false,
        }
    }

    fn with_allow(&self, mut r: Message) -> Message {
        r.push("Allow", ALLOW);
        r
    }

    fn respond(&mut self, tx: TxId, mut resp: Message, now: std::time::Instant) {
        if resp.status().is_some_and(|s| s > 100) {
            resp.ensure_to_tag(&super::random_token(10));
        }
        resp.push("Server", self.user_agent.clone());
        self.tx.respond(tx, resp, now);
    }

    /// Drains every core's outputs until all are quiet.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            if let Some(reg) = self.registration.as_mut() {
                while let Some(out) = reg.poll_output() {
                    progressed = true;
                    match out {
                        RegOutput::Send(msg) => {
                            let target = reg.target();
                            self.reg_tx = Some(self.tx.send_request(msg, target, Self::now()));
                        }
                        RegOutput::State(s) => log_registration(&s),
                    }
                }
            }
            while let Some(t) = self.tx.poll_transmit() {
                progressed = true;
                self.send(t.target, &t.msg);
            }
            while let Some(ev) = self.tx.poll_event() {
                progressed = true;
                self.on_tx_event(ev);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_tx_event(&mut self, ev: TxEvent) {
        let now = Self::now();
        match ev {
            TxEvent::Response { tx, msg } if self.qualify.contains_key(&tx) => {
                if msg.status().is_some_and(|s| s >= 200) {
                    let (user, contact) = self.qualify.remove(&tx).expect("checked");
                    if let Some(r) = self.registrar.as_mut()
                        && r.confirm(&user, &contact)
                    {
                        debug!(user = %super::mask_user(&user), "registrar: a phone registered before the restart answered");
                    }
                }
            }
            TxEvent::Timeout { tx } if self.qualify.contains_key(&tx) => {
                let (user, contact) = self.qualify.remove(&tx).expect("checked");
                let events = self
                    .registrar
                    .as_mut()
                    .map(|r| r.forget_unconfirmed(&user, &contact))
                    .unwrap_or_default();
                if !events.is_empty() {
                    warn!(
                        user = %super::mask_user(&user),
                        "registrar: a phone registered before the restart does not answer; its registration is dropped"
                    );
                    self.keep_bindings(&events, now);
                }
            }
            TxEvent::Response { tx, msg } if Some(tx) == self.reg_tx => {
                if msg.status().is_some_and(|s| s >= 200) {
                    self.reg_tx = None;
                }
                if let Some(r) = self.registration.as_mut() {
                    r.on_response(&msg, now);
                }
            }
            TxEvent::Timeout { tx } if Some(tx) == self.reg_tx => {
                self.reg_tx = None;
                if let Some(r) = self.registration.as_mut() {
                    r.on_failure("no response (transaction timeout)", now);
                }
            }
            TxEvent::Cancelled { tx } => {
                // Nothing of ours is ringing yet: the layer answered the CANCEL;
                // end the INVITE with 487.
                if let Some(req) = self.tx.request(tx).cloned() {
                    self.respond(tx, Message::response_to(&req, 487), now);
                }
            }
            TxEvent::Response { tx, msg } => {
                if let Some(sink) = self.tx_owner.get(&tx).and_then(|(c, _)| self.routes.get(c)) {
                    let _ = sink.send(Box::new(SipEvent::Response(msg)));
                }
            }
            TxEvent::Timeout { tx } => {
                if let Some((call_id, method)) = self.tx_owner.get(&tx).cloned()
                    && let Some(sink) = self.routes.get(&call_id)
                {
                    let _ = sink.send(Box::new(SipEvent::Timeout { call_id, method }));
                }
            }
            TxEvent::Terminated { tx } => {
                self.tx_owner.remove(&tx);
            }
            other => debug!(event = ?other, "transaction event"),
        }
    }

    /// Sends a message to a target; over TCP, on the existing connection to
    /// that address or a new one.
    fn send(&mut self, target: Target, msg: &Message) {
        let bytes = msg.to_bytes();
        match target.transport {
            Transport::Udp => {
                if self.udp_queue.is_empty() {
                    match self.udp.try_send_to(&bytes, target.addr) {
                        Ok(_) => return,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            debug!(to = %target.addr, error = %e, "UDP send failed");
                            return;
                        }
                    }
                }
                // Not writable right now: queue (bounded) and flush when it is.
                if self.udp_queue.len() < UDP_QUEUE {
                    self.udp_queue.push_back((bytes, target.addr));
                } else {
                    warn!(to = %target.addr, "UDP send queue full; message dropped");
                }
            }
            Transport::Tcp => {
                let conn = match self.conns.get(&target.addr) {
                    Some(c) => c.clone(),
                    None => {
                        self.next_conn += 1;
                        let c = tcp::connect(target.addr, self.next_conn, self.conn_tx.clone());
                        self.conns.insert(target.addr, c.clone());
                        c
                    }
                };
                if !conn.send(bytes) {
                    debug!(to = %target.addr, "TCP connection gone or congested; message dropped");
                    self.conns.remove(&target.addr);
                }
            }
        }
    }

    /// Sends what waited for the UDP socket to become writable.
    fn flush_udp(&mut self) {
        while let Some((bytes, to)) = self.udp_queue.front() {
            match self.udp.try_send_to(bytes, *to) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => debug!(%to, error = %e, "UDP send failed"),
                Ok(_) => {}
            }
            self.udp_queue.pop_front();
        }
    }
}

fn log_registration(s: &RegState) {
    match s {
        RegState::Registered { expires } => info!(expires, "registered to the switch"),
        RegState::Failed { reason, retry_in } => {
            warn!(%reason, retry_in_secs = retry_in.as_secs(), "registration failed")
        }
        RegState::Unregistered => info!("unregistered from the switch"),
        RegState::Registering => debug!("registering"),
        RegState::Unregistering => info!("unregistering"),
        RegState::Idle => {}
    }
}

fn log_binding(ev: &BindingEvent) {
    match ev {
        BindingEvent::Bound { user, expires, transport } => {
            info!(user = %super::mask_user(user), expires, %transport, "softphone registered")
        }
        BindingEvent::Removed { user } => info!(user = %super::mask_user(user), "softphone unregistered"),
        BindingEvent::Expired { user } => {
            info!(user = %super::mask_user(user), "softphone registration expired")
        }
        BindingEvent::AuthFailed { user, addr } => {
            crate::metrics::METRICS.registrar_auth_failed();
            debug!(user = %super::mask_user(user), %addr, "registrar: authentication failed")
        }
        // one warning per block: never a line per guess
        BindingEvent::Blocked { user, addr, secs } => warn!(
            user = %super::mask_user(user),
            %addr,
            secs,
            "registrar: too many failed authentications from this address (password guessing?); \
             its REGISTERs are refused unchecked for a while"
        ),
    }
}
