//! The registration client: keeps huifang registered to the switch.
//!
//! Sans-IO. The driver (the endpoint) owns one [`Registration`] and:
//! 1. calls [`Registration::start`] once;
//! 2. sends every [`RegOutput::Send`] as a new non-INVITE client
//!    transaction to [`Registration::target`], and hands back the final
//!    response with [`Registration::on_response`] or a transaction time-out
//!    or transport error with [`Registration::on_failure`];
//! 3. calls [`Registration::handle_timeout`] when [`Registration::poll_timeout`]
//!    is due, and drains [`Registration::poll_output`] after every input;
//! 4. at shutdown calls [`Registration::unregister`] and waits for
//!    [`RegState::Unregistered`] (or its own deadline).
//!
//! Behaviour: the REGISTER keeps one Call-ID and increments CSeq (RFC 3261
//! §10.2.4); a 401/407 is answered with digest credentials once per
//! challenge (again when the server says `stale=true`); a 423 adopts the
//! server's Min-Expires; a 2xx is refreshed at three quarters of the
//! granted lifetime (at least 5 s before it ends); any failure — a final
//! error, a time-out, credentials refused twice — is retried after a
//! back-off that doubles from `retry_min` to `retry_max` and resets after a
//! success.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::auth::{Challenge, DigestClient, pick};
use super::msg::{Message, Method, NameAddr, Uri, Via};
use super::transport::{Target, Transport};

/// What the registration needs to know.
#[derive(Clone, Debug)]
pub struct RegConfig {
    /// The registrar's URI (Request-URI of the REGISTER).
    pub registrar: Uri,
    /// Where to send it.
    pub target: Target,
    /// Address of record (To and From).
    pub aor: Uri,
    /// Digest user name.
    pub user: String,
    /// Digest password.
    pub password: String,
    /// Our address, for Via and Contact.
    pub local: SocketAddr,
    /// Lifetime to ask for.
    pub expires: u32,
    /// Back-off start.
    pub retry_min: Duration,
    /// Back-off cap.
    pub retry_max: Duration,
    /// User-Agent.
    pub user_agent: String,
}

/// Where the registration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegState {
    /// Not started.
    Idle,
    /// A REGISTER is on its way.
    Registering,
    /// Registered until the given time.
    Registered {
        /// Lifetime granted, seconds.
        expires: u32,
    },
    /// The last attempt failed; retrying later.
    Failed {
        /// Why (a status code and reason, or a transport condition).
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// Unregistering at shutdown.
    Unregistering,
    /// Unregistered (or given up at shutdown): the end.
    Unregistered,
}

/// What the driver must do.
#[derive(Debug)]
pub enum RegOutput {
    /// Send this REGISTER as a new client transaction to the target.
    Send(Message),
    /// The state changed (log it).
    State(RegState),
}

/// The registration client state machine.
pub struct Registration {
    cfg: RegConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    digest: DigestClient,
    /// The challenge answered by the request in flight, and whether the
    /// last request carried credentials.
    challenge: Option<(bool, Challenge)>,
    auth_attempts: u32,
    state: RegState,
    expires: u32,
    failures: u32,
    wake: Option<Instant>,
    in_flight: bool,
    out: VecDeque<RegOutput>,
}

impl Registration {
    /// A registration that has not started.
    pub fn new(cfg: RegConfig) -> Registration {
        let digest = DigestClient::new(cfg.user.clone(), cfg.password.clone());
        Registration {
            expires: cfg.expires,
            call_id: format!("{}@huifang", super::random_token(20)),
            from_tag: super::random_token(12),
            cseq: 0,
            digest,
            challenge: None,
            auth_attempts: 0,
            state: RegState::Idle,
            failures: 0,
            wake: None,
            in_flight: false,
            out: VecDeque::new(),
            cfg,
        }
    }

    /// Where REGISTERs go.
    pub fn target(&self) -> Target {
        self.cfg.target
    }
    /// The current state.
    pub fn state(&self) -> &RegState {
        &self.state
    }
    /// Our Contact URI.
    pub fn contact(&self) -> Uri {
        let t = self.cfg.target.transport;
        let u = Uri::sip(Some(&self.cfg.user), &self.cfg.local.ip().to_string(), Some(self.cfg.local.port()));
        if t == Transport::Tcp { u.with_param("transport", Some("tcp")) } else { u }
    }

    /// Starts registering now.
    pub fn start(&mut self, now: Instant) {
        let _ = now;
        self.send(false);
    }

    /// Unregisters (Expires 0). When not registered, ends at once.
    pub fn unregister(&mut self, now: Instant) {
        let _ = now;
        match self.state {
            RegState::Registered { .. } | RegState::Registering => {
                self.set_state(RegState::Unregistering);
                self.challenge = None;
                self.auth_attempts = 0;
                self.wake = None;
                self.send(true);
            }
            RegState::Unregistering | RegState::Unregistered => {}
            _ => {
                self.wake = None;
                self.set_state(RegState::Unregistered);
            }
        }
    }

    fn unregistering(&self) -> bool {
        self.state == RegState::Unregistering
    }

    fn build(&mut self, unregister: bool) -> Message {
        self.cseq += 1;
        let transport = self.cfg.target.transport;
        let via = Via {
            transport: transport.via_name().to_string(),
            host: self.cfg.local.ip().to_string(),
            port: Some(self.cfg.local.port()),
            params: super::msg::Params::parse(&format!(";branch={};rport", super::new_branch())),
        };
        let mut from = NameAddr::new(self.cfg.aor.clone());
        from.params.set("tag", Some(&self.from_tag));
        let mut contact = NameAddr::new(self.contact());
        let expires = if unregister { 0 } else { self.expires };
        contact.params.set("expires", Some(&expires.to_string()));
        let mut m = Message::request(Method::Register, self.cfg.registrar.clone())
            .with("Via", via.to_string())
            .with("Max-Forwards", "70")
            .with("From", from.to_string())
            .with("To", NameAddr::new(self.cfg.aor.clone()).to_string())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} REGISTER", self.cseq))
            .with("Contact", contact.to_string())
            .with("Expires", expires.to_string())
            .with("User-Agent", self.cfg.user_agent.clone());
        if let Some((proxy, ch)) = &self.challenge {
            let creds = self.digest.respond(ch, "REGISTER", self.cfg.registrar.as_str(), b"");
            let name = if *proxy { "Proxy-Authorization" } else { "Authorization" };
            m.push(name, creds.to_string());
        }
        m
    }

    fn send(&mut self, unregister: bool) {
        if !unregister && !matches!(self.state, RegState::Registered { .. }) {
            self.set_state(RegState::Registering);
        }
        let m = self.build(unregister);
        self.in_flight = true;
        self.out.push_back(RegOutput::Send(m));
    }

    /// The final response to our last REGISTER (provisionals are ignored).
    pub fn on_response(&mut self, resp: &Message, now: Instant) {
        let Some(status) = resp.status() else { return };
        if status < 200 || !self.in_flight {
            return;
        }
        self.in_flight = false;
        match status {
            200..=299 => {
                self.challenge = None;
                self.auth_attempts = 0;
                if self.unregistering() {
                    self.set_state(RegState::Unregistered);
                    return;
                }
                let granted = self.granted(resp).unwrap_or(self.expires);
                if granted == 0 {
                    self.fail("registrar granted no lifetime".into(), now);
                    return;
                }
                self.failures = 0;
                // Refresh at 3/4 of the lifetime, and never closer than
                // 5 s to its end.
                let g = Duration::from_secs(granted.into());
                let refresh =
                    (g * 3 / 4).min(g.saturating_sub(Duration::from_secs(5))).max(Duration::from_secs(1));
                self.wake = Some(now + refresh);
                self.set_state(RegState::Registered { expires: granted });
            }
            401 | 407 => {
                let proxy = status == 407;
                let name = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                let challenges: Vec<Challenge> =
                    resp.header_values(name).filter_map(|v| v.parse::<Challenge>().ok()).collect();
                let Some(ch) = pick(&challenges).cloned() else {
                    self.fail(format!("{status} without a usable digest challenge"), now);
                    return;
                };
                let answered_before = self.challenge.is_some();
                if super::auth::should_retry(&ch, if answered_before { self.auth_attempts } else { 0 }) {
                    self.auth_attempts += 1;
                    self.challenge = Some((proxy, ch));
                    let unregister = self.unregistering();
                    self.send(unregister);
                } else {
                    self.challenge = None;
                    self.auth_attempts = 0;
                    self.fail(format!("{status}: credentials refused"), now);
                }
            }
            423 => match resp.number("Min-Expires") {
                Some(min) if min > self.expires && min <= 86_400 && !self.unregistering() => {
                    self.expires = min;
                    self.send(false);
                }
                _ => self.fail("423 without a usable Min-Expires".into(), now),
            },
            _ => {
                let reason = match &resp.start {
                    super::msg::StartLine::Response { reason, .. } => format!("{status} {reason}"),
                    _ => status.to_string(),
                };
                self.fail(reason, now)
            }
        }
    }

    /// The transaction of our last REGISTER timed out or could not be sent.
    pub fn on_failure(&mut self, reason: &str, now: Instant) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        self.fail(reason.to_string(), now);
    }

    fn fail(&mut self, reason: String, now: Instant) {
        if self.unregistering() {
            // At shutdown a failure ends the attempt: the binding expires by itself.
            self.set_state(RegState::Unregistered);
            return;
        }
        let exp = self.failures.min(16);
        self.failures += 1;
        let retry_in = (self.cfg.retry_min * 2u32.pow(exp)).min(self.cfg.retry_max);
        self.wake = Some(now + retry_in);
        self.set_state(RegState::Failed { reason, retry_in });
    }

    /// Lifetime granted: our Contact's `expires`, else the Expires header.
    fn granted(&self, resp: &Message) -> Option<u32> {
        let ours = self.contact();
        let from_contact = resp.name_addrs("Contact").ok().and_then(|cs| {
            cs.into_iter()
                .find(|c| {
                    c.uri.host() == ours.host() && c.uri.port() == ours.port() && c.uri.user() == ours.user()
                })
                .and_then(|c| c.params.get("expires").flatten().and_then(|e| e.parse().ok()))
        });
        from_contact.or_else(|| resp.number("Expires"))
    }

    /// Call when `poll_timeout` is due: refreshes or retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.wake.is_some_and(|w| w <= now) && !self.in_flight {
            self.wake = None;
            self.challenge = None;
            self.auth_attempts = 0;
            self.send(false);
        }
    }

    /// The next time [`Registration::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<RegOutput> {
        self.out.pop_front()
    }

    fn set_state(&mut self, s: RegState) {
        // A refresh repeats `Registered`: report it too, it is news.
        if self.state != s || matches!(s, RegState::Registered { .. }) {
            self.state = s.clone();
            self.out.push_back(RegOutput::State(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RegConfig {
        RegConfig {
            registrar: Uri::parse("sip:127.0.0.1:25060").unwrap(),
            target: Target { transport: Transport::Udp, addr: "127.0.0.1:25060".parse().unwrap() },
            aor: Uri::parse("sip:huifang@127.0.0.1").unwrap(),
            user: "huifang".into(),
            password: "pw".into(),
            local: "127.0.0.1:5070".parse().unwrap(),
            expires: 60,
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(30),
            user_agent: "t".into(),
        }
    }

    fn sent(r: &mut Registration) -> Vec<Message> {
        let mut v = Vec::new();
        while let Some(o) = r.poll_output() {
            if let RegOutput::Send(m) = o {
                v.push(m)
            }
        }
        v
    }

    fn reply(req: &Message, status: u16, extra: &[(&'static str, &str)]) -> Message {
        let mut r = Message::response_to(req, status);
        r.ensure_to_tag("srv");
        for (k, v) in extra {
            r.push(*k, v.to_string());
        }
        r
    }

    #[test]
    fn digest_then_refresh_then_unregister() {
        let t0 = Instant::now();
        let mut r = Registration::new(cfg());
        r.start(t0);
        let first = sent(&mut r).pop().unwrap();
        assert_eq!(first.cseq().unwrap().seq, 1);
        assert!(first.header("Authorization").is_none());
        let ch = "Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\"";
        r.on_response(&reply(&first, 401, &[("WWW-Authenticate", ch)]), t0);
        let second = sent(&mut r).pop().unwrap();
        assert_eq!(second.cseq().unwrap().seq, 2);
        assert_eq!(second.call_id(), first.call_id());
        assert!(second.header("Authorization").unwrap().contains("nc=00000001"));
        let contact = format!("<{}>;expires=40", r.contact());
        r.on_response(&reply(&second, 200, &[("Contact", &contact)]), t0);
        assert_eq!(r.state(), &RegState::Registered { expires: 40 });
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        r.handle_timeout(t0 + Duration::from_secs(30));
        let refresh = sent(&mut r).pop().unwrap();
        assert_eq!(refresh.cseq().unwrap().seq, 3);
        r.unregister(t0 + Duration::from_secs(31));
        let unreg = sent(&mut r).pop().unwrap();
        assert_eq!(unreg.header("Expires"), Some("0"));
        r.on_response(&reply(&unreg, 200, &[]), t0 + Duration::from_secs(31));
        assert_eq!(r.state(), &RegState::Unregistered);
    }

    #[test]
    fn wrong_password_backs_off() {
        let t0 = Instant::now();
        let mut r = Registration::new(cfg());
        r.start(t0);
        let ch = "Digest realm=\"x\", nonce=\"n1\", qop=\"auth\"";
        let m = sent(&mut r).pop().unwrap();
        r.on_response(&reply(&m, 401, &[("WWW-Authenticate", ch)]), t0);
        let m = sent(&mut r).pop().unwrap();
        r.on_response(&reply(&m, 401, &[("WWW-Authenticate", ch)]), t0);
        assert!(sent(&mut r).is_empty(), "no third attempt with refused credentials");
        assert!(
            matches!(r.state(), RegState::Failed { retry_in, .. } if *retry_in == Duration::from_secs(2))
        );
        r.handle_timeout(t0 + Duration::from_secs(2));
        let m = sent(&mut r).pop().unwrap();
        r.on_failure("timeout", t0 + Duration::from_secs(34));
        assert!(
            matches!(r.state(), RegState::Failed { retry_in, .. } if *retry_in == Duration::from_secs(4))
        );
        assert!(m.header("Authorization").is_none());
    }

    #[test]
    fn stale_nonce_is_retried() {
        let t0 = Instant::now();
        let mut r = Registration::new(cfg());
        r.start(t0);
        let m = sent(&mut r).pop().unwrap();
        r.on_response(&reply(&m, 401, &[("WWW-Authenticate", "Digest realm=\"x\", nonce=\"n1\"")]), t0);
        let m = sent(&mut r).pop().unwrap();
        r.on_response(
            &reply(&m, 401, &[("WWW-Authenticate", "Digest realm=\"x\", nonce=\"n2\", stale=true")]),
            t0,
        );
        let m = sent(&mut r).pop().unwrap();
        assert!(m.header("Authorization").unwrap().contains("n2"));
    }

    #[test]
    fn interval_too_brief() {
        let t0 = Instant::now();
        let mut r = Registration::new(cfg());
        r.start(t0);
        let m = sent(&mut r).pop().unwrap();
        r.on_response(&reply(&m, 423, &[("Min-Expires", "120")]), t0);
        let m = sent(&mut r).pop().unwrap();
        assert_eq!(m.header("Expires"), Some("120"));
    }

    #[test]
    fn backoff_is_capped() {
        let t0 = Instant::now();
        let mut r = Registration::new(cfg());
        r.start(t0);
        let mut now = t0;
        for _ in 0..10 {
            let _ = sent(&mut r);
            r.on_failure("timeout", now);
            now = r.poll_timeout().unwrap();
            r.handle_timeout(now);
        }
        assert!(matches!(r.state(), RegState::Registering));
        r.on_failure("timeout", now);
        assert!(
            matches!(r.state(), RegState::Failed { retry_in, .. } if *retry_in == Duration::from_secs(30))
        );
    }
}
