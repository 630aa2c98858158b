//! The built-in registrar (RFC 3261 §10.3): softphones register to huifang
//! when there is no switch.
//!
//! Sans-IO. The endpoint hands every REGISTER that opened a server
//! transaction to [`Registrar::on_register`] and sends the response it
//! returns on that transaction. [`Registrar::poll_timeout`] says when the
//! next binding expires; [`Registrar::handle_timeout`] drops the expired
//! ones and returns them (for logging). [`Registrar::lookup`] finds where a
//! user can be reached.
//!
//! Authentication is HTTP digest against the configured users ([`auth`]):
//! a REGISTER without credentials gets `401` with one challenge per
//! configured algorithm (MD5 by default: some softphones, baresip 1.0 among
//! them, give up on a 401 that offers an algorithm they do not know, even
//! next to one they do); credentials for a stale nonce get a new challenge with
//! `stale=true`; a wrong password, an unknown user or a user registering
//! somebody else's address gets `403`.
//!
//! **Password guessing** is throttled per source address ([`GuessLimit`]):
//! after `max_failures` wrong passwords or unknown users from one IP
//! address within `window`, every REGISTER from that address is answered
//! `403` without its credentials being checked, for `block`. The account
//! itself is never locked: its real phone on another address registers as
//! before. Each failure and each block is reported ([`BindingEvent`]) for
//! the metric and a warning naming the account and the address.
//!
//! [`auth`]: super::auth

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::auth::{Algorithm, Credentials, DigestServer, RejectReason, Verdict};
use super::msg::{Message, NameAddr, Uri};
use super::transport::{Target, Transport};

/// A contact bound to an address of record.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Where the user agent asked to be reached.
    pub contact: Uri,
    /// The address the REGISTER came from (for reaching a phone behind
    /// NAT, and over its TCP connection).
    pub source: Target,
    /// When the binding ends.
    pub expires_at: Instant,
    /// The Call-ID of the REGISTER that made it (with `cseq`: an older
    /// REGISTER never wins over a newer one, §10.3 step 7).
    pub call_id: String,
    /// That REGISTER's CSeq number.
    pub cseq: u32,
    /// Whether the phone has shown it is there: always for a binding made
    /// by a REGISTER; a binding restored after a restart only once the
    /// phone answered an OPTIONS (until then [`Registrar::lookup`] does not
    /// give it: a phone that went away while huifang was down must not be
    /// called, and its agent paused for not answering).
    pub confirmed: bool,
}

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Digest realm.
    pub realm: String,
    /// Shortest lifetime accepted (423 below).
    pub min_expires: u32,
    /// Longest lifetime granted.
    pub max_expires: u32,
    /// Nonce validity.
    pub nonce_lifetime: Duration,
    /// Digest algorithms offered, one challenge each, in this order.
    pub algorithms: Vec<Algorithm>,
    /// The password-guessing throttle.
    pub guess: GuessLimit,
}

/// How many failed authentications from one address are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimit {
    /// Failures within `window` that block the address.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a blocked address is refused unchecked.
    pub block: Duration,
}

impl Default for GuessLimit {
    fn default() -> Self {
        GuessLimit { max_failures: 10, window: Duration::from_secs(60), block: Duration::from_secs(300) }
    }
}

/// Failed authentications from one address.
#[derive(Debug, Default)]
struct Failures {
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// The registrar: users, their passwords and their bindings.
pub struct Registrar {
    cfg: RegistrarConfig,
    users: HashMap<String, String>,
    digest: DigestServer,
    bindings: HashMap<String, Vec<Binding>>,
    failures: HashMap<IpAddr, Failures>,
}

/// What happened to a binding (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingEvent {
    /// A new or refreshed binding.
    Bound {
        /// The user.
        user: String,
        /// Lifetime granted.
        expires: u32,
        /// What it came over (calls to it go back the same way).
        transport: Transport,
    },
    /// Removed by the user agent.
    Removed {
        /// The user.
        user: String,
    },
    /// Lifetime ran out.
    Expired {
        /// The user.
        user: String,
    },
    /// A wrong password or an unknown user.
    AuthFailed {
        /// The user named.
        user: String,
        /// Where it came from.
        addr: IpAddr,
    },
    /// An address is refused unchecked for a while (password guessing).
    Blocked {
        /// The user of its last attempt.
        user: String,
        /// The address.
        addr: IpAddr,
        /// For how long.
        secs: u64,
    },
}

impl Registrar {
    /// A registrar for the given `(user, password)` accounts.
    pub fn new(
        cfg: RegistrarConfig,
        users: impl IntoIterator<Item = (String, String)>,
        now: Instant,
    ) -> Registrar {
        Registrar {
            digest: DigestServer::new(cfg.realm.clone(), cfg.nonce_lifetime, now),
            users: users.into_iter().collect(),
            bindings: HashMap::new(),
            failures: HashMap::new(),
            cfg,
        }
    }

    /// Whether `addr` is refused unchecked now.
    fn blocked(&self, addr: IpAddr, now: Instant) -> bool {
        self.failures.get(&addr).and_then(|f| f.blocked_until).is_some_and(|until| now < until)
    }

    /// Counts a failed authentication of `user` from `addr`; blocks the
    /// address when it reaches the limit.
    fn failed(&mut self, user: &str, addr: IpAddr, now: Instant, events: &mut Vec<BindingEvent>) {
        events.push(BindingEvent::AuthFailed { user: user.to_string(), addr });
        let limit = self.cfg.guess;
        let f = self.failures.entry(addr).or_default();
        while f.recent.front().is_some_and(|t| now.duration_since(*t) >= limit.window) {
            f.recent.pop_front();
        }
        f.recent.push_back(now);
        if f.recent.len() >= limit.max_failures as usize {
            f.recent.clear();
            f.blocked_until = Some(now + limit.block);
            events.push(BindingEvent::Blocked { user: user.to_string(), addr, secs: limit.block.as_secs() });
        }
    }

    /// Whether `user` is an account of this registrar.
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Current bindings of a user (confirmed ones: see [`Binding::confirmed`]).
    pub fn lookup(&self, user: &str, now: Instant) -> Vec<Binding> {
        self.bindings
            .get(user)
            .map(|v| v.iter().filter(|b| b.expires_at > now && b.confirmed).cloned().collect())
            .unwrap_or_default()
    }

    /// The restored bindings not confirmed yet, by user: to be asked
    /// with an OPTIONS each.
    pub fn unconfirmed(&self) -> Vec<(String, Binding)> {
        let mut out: Vec<(String, Binding)> = self
            .bindings
            .iter()
            .flat_map(|(u, v)| v.iter().filter(|b| !b.confirmed).map(move |b| (u.clone(), b.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The phone of a restored binding answered: it may be called again.
    pub fn confirm(&mut self, user: &str, contact: &Uri) -> bool {
        let Some(b) = self.bindings.get_mut(user).and_then(|v| v.iter_mut().find(|b| &b.contact == contact))
        else {
            return false;
        };
        b.confirmed = true;
        true
    }

    /// The phone of a restored binding did not answer: the binding is
    /// dropped (unless a REGISTER renewed it meanwhile).
    pub fn forget_unconfirmed(&mut self, user: &str, contact: &Uri) -> Vec<BindingEvent> {
        let Some(list) = self.bindings.get_mut(user) else { return Vec::new() };
        let before = list.len();
        list.retain(|b| b.confirmed || &b.contact != contact);
        let removed = list.len() < before;
        if list.is_empty() {
            self.bindings.remove(user);
        }
        if removed { vec![BindingEvent::Removed { user: user.to_string() }] } else { Vec::new() }
    }

    /// Every binding of `user` (expired ones not yet dropped included):
    /// what the endpoint keeps in the database after each change.
    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.bindings.get(user).map_or(&[], Vec::as_slice)
    }

    /// Puts back a binding kept from before a restart (a crash or a
    /// deploy: the phones do not register again for minutes), not
    /// [confirmed](Binding::confirmed) until its phone answers. Refused —
    /// `false` — for a user who is no longer an account, a binding that
    /// has ended, or a contact already bound since.
    pub fn restore(&mut self, user: &str, b: Binding, now: Instant) -> bool {
        if !self.users.contains_key(user) || b.expires_at <= now {
            return false;
        }
        let b = Binding { confirmed: false, ..b };
        let list = self.bindings.entry(user.to_string()).or_default();
        if list.iter().any(|x| x.contact == b.contact) {
            return false;
        }
        list.push(b);
        true
    }

    /// Handles a REGISTER that arrived from `source`; returns the response
    /// to send (with a To tag) and what changed.
    pub fn on_register(
        &mut self,
        req: &Message,
        source: Target,
        now: Instant,
    ) -> (Message, Vec<BindingEvent>) {
        let mut events = Vec::new();
        let resp = self.process(req, source, now, &mut events);
        let mut resp = resp;
        resp.ensure_to_tag(&super::random_token(10));
        (resp, events)
    }

    fn challenge(&self, req: &Message, now: Instant, stale: bool) -> Message {
        let mut r = Message::response_to(req, 401);
        for &alg in &self.cfg.algorithms {
            r.push("WWW-Authenticate", self.digest.challenge(now, stale, alg).to_string());
        }
        r
    }

    fn process(
        &mut self,
        req: &Message,
        source: Target,
        now: Instant,
        events: &mut Vec<BindingEvent>,
    ) -> Message {
        // 0. A guessing address gets no further
        if self.blocked(source.addr.ip(), now) {
            return Message::response_to(req, 403);
        }
        // 1. Who is it?
        // Credentials of a scheme we do not know are no credentials (RFC
        // 4475 3.3.7): challenged, not refused as malformed.
        let digest = |v: &&str| v.split_whitespace().next().is_some_and(|s| s.eq_ignore_ascii_case("digest"));
        let Some(creds) = req.header_values("Authorization").find(digest) else {
            return self.challenge(req, now, false);
        };
        let Ok(creds) = creds.parse::<Credentials>() else {
            return Message::response_to(req, 400);
        };
        // The digest URI must be this request's URI (RFC 3261 §22.4 leaves
        // the check to the server; a mismatch is a replay elsewhere).
        if req.request_uri().map(|u| u.as_str()) != Some(creds.uri.as_str()) {
            return Message::response_to(req, 400);
        }
        let users = &self.users;
        let verdict = self.digest.verify(&creds, "REGISTER", |u| users.get(u).cloned(), now);
        let user = match verdict {
            Verdict::Ok { username } => username,
            Verdict::Stale => return self.challenge(req, now, true),
            Verdict::Rejected(RejectReason::BadNonce | RejectReason::RealmMismatch) => {
                return self.challenge(req, now, false);
            }
            Verdict::Rejected(RejectReason::WrongPassword | RejectReason::UnknownUser) => {
                let user = creds.username.clone();
                self.failed(&user, source.addr.ip(), now, events);
                return Message::response_to(req, 403);
            }
            Verdict::Rejected(_) => return Message::response_to(req, 403),
        };
        // 2. May this user register this address of record?
        let Ok(to) = req.to_hdr() else {
            return Message::response_to(req, 400);
        };
        if to.uri.user() != Some(user.as_str()) {
            return Message::response_to(req, 403);
        }
        // 3. The contacts.
        let call_id = req.call_id().unwrap_or_default().to_string();
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = req.number("Expires");
        if req.is_contact_star() {
            if header_expires != Some(0) || req.header_values("Contact").count() != 1 {
                return Message::response_to(req, 400);
            }
            if self.bindings.remove(&user).is_some() {
                events.push(BindingEvent::Removed { user: user.clone() });
            }
            return self.ok(req, &user, now);
        }
        let contacts = match req.name_addrs("Contact") {
            Ok(c) => c,
            Err(_) => return Message::response_to(req, 400),
        };
        // Check every contact before changing anything (all or nothing).
        let mut plan = Vec::new();
        for c in &contacts {
            let asked = c.params.get("expires").flatten().and_then(|e| e.parse::<u32>().ok());
            let expires = asked.or(header_expires).unwrap_or(self.cfg.max_expires);
            if expires != 0 && expires < self.cfg.min_expires {
                let mut r = Message::response_to(req, 423);
                r.push("Min-Expires", self.cfg.min_expires.to_string());
                return r;
            }
            plan.push((c.uri.clone(), expires.min(self.cfg.max_expires)));
        }
        let list = self.bindings.entry(user.clone()).or_default();
        for (uri, expires) in plan {
            let existing = list.iter().position(|b| b.contact == uri);
            if let Some(i) = existing {
                // RFC 3261 §10.3 step 7: an older request does not win.
                if list[i].call_id == call_id && list[i].cseq >= cseq {
                    continue;
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    list.remove(i);
                    events.push(BindingEvent::Removed { user: user.clone() });
                }
                continue;
            }
            let b = Binding {
                contact: uri,
                source,
                expires_at: now + Duration::from_secs(expires.into()),
                call_id: call_id.clone(),
                cseq,
                confirmed: true,
            };
            match existing {
                Some(i) => list[i] = b,
                None => list.push(b),
            }
            events.push(BindingEvent::Bound { user: user.clone(), expires, transport: source.transport });
        }
        if list.is_empty() {
            self.bindings.remove(&user);
        }
        self.ok(req, &user, now)
    }

    fn ok(&self, req: &Message, user: &str, now: Instant) -> Message {
        let mut r = Message::response_to(req, 200);
        for b in self.bindings(user).iter().filter(|b| b.expires_at > now) {
            let mut c = NameAddr::new(b.contact.clone());
            let left = b.expires_at.saturating_duration_since(now).as_secs().max(1);
            c.params.set("expires", Some(&left.to_string()));
            r.push("Contact", c.to_string());
        }
        r
    }

    /// Drops expired bindings; returns who lost one.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<BindingEvent> {
        // forget addresses with nothing left to count
        let window = self.cfg.guess.window;
        self.failures.retain(|_, f| {
            f.blocked_until.is_some_and(|u| now < u)
                || f.recent.back().is_some_and(|t| now.duration_since(*t) < window)
        });
        let mut events = Vec::new();
        self.bindings.retain(|user, list| {
            list.retain(|b| {
                let alive = b.expires_at > now;
                if !alive {
                    events.push(BindingEvent::Expired { user: user.clone() });
                }
                alive
            });
            !list.is_empty()
        });
        events
    }

    /// When the next binding expires.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::auth::{Challenge, DigestClient};
    use crate::sip::transport::Transport;

    fn registrar(now: Instant) -> Registrar {
        let cfg = RegistrarConfig {
            realm: "huifang".into(),
            min_expires: 60,
            max_expires: 3600,
            nonce_lifetime: Duration::from_secs(300),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            guess: GuessLimit {
                max_failures: 5,
                window: Duration::from_secs(60),
                block: Duration::from_secs(300),
            },
        };
        Registrar::new(cfg, [("agent1".to_string(), "pw1".to_string())], now)
    }

    fn register(user: &str, contact: &str, cseq: u32) -> Message {
        let raw = format!(
            "REGISTER sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK{cseq}\r\n\
From: <sip:{user}@127.0.0.1>;tag=a\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: reg1\r\nCSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\n\r\n"
        );
        Message::parse(raw.as_bytes()).unwrap()
    }

    fn src() -> Target {
        Target { transport: Transport::Udp, addr: "127.0.0.1:5090".parse().unwrap() }
    }

    fn authed(r: &mut Registrar, req: Message, user: &str, pw: &str, now: Instant) -> Message {
        authed_from(r, req, user, pw, now, src()).0
    }

    /// A REGISTER answered with credentials, from `from`: the answer and
    /// the events of the second round.
    fn authed_from(
        r: &mut Registrar,
        mut req: Message,
        user: &str,
        pw: &str,
        now: Instant,
        from: Target,
    ) -> (Message, Vec<BindingEvent>) {
        let (resp, _) = r.on_register(&req, from, now);
        assert_eq!(resp.status(), Some(401));
        let chs: Vec<Challenge> =
            resp.header_values("WWW-Authenticate").map(|v| v.parse().unwrap()).collect();
        assert_eq!(chs[0].algorithm, Algorithm::Sha256);
        let mut client = DigestClient::new(user, pw);
        let creds = client.respond(&chs[1], "REGISTER", "sip:127.0.0.1:5070", b"");
        req.push("Authorization", creds.to_string());
        r.on_register(&req, from, now)
    }

    #[test]
    fn a_guessing_address_is_refused_unchecked_while_the_real_phone_registers() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let guesser = Target { transport: Transport::Udp, addr: "10.0.0.66:5060".parse().unwrap() };
        let phone = Target { transport: Transport::Udp, addr: "10.0.0.7:5060".parse().unwrap() };
        let contact = "<sip:agent1@10.0.0.7:5060>;expires=600";
        // four wrong passwords: each a 403, counted, not yet blocked
        for i in 0..4 {
            let (resp, ev) =
                authed_from(&mut r, register("agent1", contact, i), "agent1", "guess", t0, guesser);
            assert_eq!(resp.status(), Some(403));
            assert!(matches!(ev.as_slice(), [BindingEvent::AuthFailed { .. }]), "{ev:?}");
        }
        // the fifth (an unknown user counts too) blocks the address
        let (_, ev) = authed_from(&mut r, register("nobody", contact, 5), "nobody", "x", t0, guesser);
        assert!(
            ev.iter().any(|e| matches!(e, BindingEvent::Blocked { addr, secs: 300, .. } if addr.to_string() == "10.0.0.66")),
            "{ev:?}"
        );
        // from there, even the right password is refused — without a challenge
        let later = t0 + Duration::from_secs(10);
        let (resp, _) = r.on_register(&register("agent1", contact, 6), guesser, later);
        assert_eq!(resp.status(), Some(403), "no 401 for a blocked address");
        // the real phone, elsewhere, registers all the while
        let (resp, _) = authed_from(&mut r, register("agent1", contact, 7), "agent1", "pw1", later, phone);
        assert_eq!(resp.status(), Some(200));
        // the block ends
        let after = t0 + Duration::from_secs(301);
        let (resp, _) = authed_from(&mut r, register("agent1", contact, 8), "agent1", "pw1", after, guesser);
        assert_eq!(resp.status(), Some(200));
    }

    #[test]
    fn failures_spread_beyond_the_window_never_block() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let contact = "<sip:agent1@127.0.0.1:5090>;expires=600";
        for i in 0..12u32 {
            let now = t0 + Duration::from_secs(20 * u64::from(i));
            let (resp, ev) =
                authed_from(&mut r, register("agent1", contact, i), "agent1", "typo", now, src());
            assert_eq!(resp.status(), Some(403));
            assert!(
                !ev.iter().any(|e| matches!(e, BindingEvent::Blocked { .. })),
                "a typo every 20 s: {ev:?}"
            );
        }
    }

    #[test]
    fn register_lookup_expire() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let resp = authed(
            &mut r,
            register("agent1", "<sip:agent1@127.0.0.1:5090>;expires=120", 1),
            "agent1",
            "pw1",
            t0,
        );
        assert_eq!(resp.status(), Some(200));
        assert!(resp.header("Contact").unwrap().contains("expires=120"));
        assert_eq!(r.lookup("agent1", t0).len(), 1);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        let ev = r.handle_timeout(t0 + Duration::from_secs(120));
        assert_eq!(ev, vec![BindingEvent::Expired { user: "agent1".into() }]);
        assert!(r.lookup("agent1", t0 + Duration::from_secs(120)).is_empty());
    }

    #[test]
    fn wrong_password_is_forbidden() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let resp = authed(&mut r, register("agent1", "<sip:agent1@127.0.0.1:5090>", 1), "agent1", "nope", t0);
        assert_eq!(resp.status(), Some(403));
        let resp = authed(&mut r, register("agent9", "<sip:agent9@127.0.0.1:5090>", 1), "agent9", "pw1", t0);
        assert_eq!(resp.status(), Some(403));
    }

    #[test]
    fn too_brief_and_capped() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let resp = authed(
            &mut r,
            register("agent1", "<sip:agent1@127.0.0.1:5090>;expires=10", 1),
            "agent1",
            "pw1",
            t0,
        );
        assert_eq!(resp.status(), Some(423));
        assert_eq!(resp.header("Min-Expires"), Some("60"));
        let resp = authed(
            &mut r,
            register("agent1", "<sip:agent1@127.0.0.1:5090>;expires=99999", 2),
            "agent1",
            "pw1",
            t0,
        );
        assert!(resp.header("Contact").unwrap().contains("expires=3600"));
    }

    #[test]
    fn unregister_and_star() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        authed(&mut r, register("agent1", "<sip:agent1@127.0.0.1:5090>", 1), "agent1", "pw1", t0);
        let resp = authed(
            &mut r,
            register("agent1", "<sip:agent1@127.0.0.1:5090>;expires=0", 2),
            "agent1",
            "pw1",
            t0,
        );
        assert_eq!(resp.status(), Some(200));
        assert!(r.lookup("agent1", t0).is_empty());
        authed(&mut r, register("agent1", "<sip:agent1@127.0.0.1:5090>", 3), "agent1", "pw1", t0);
        let mut star = register("agent1", "*", 4);
        star.push("Expires", "0");
        let resp = authed(&mut r, star, "agent1", "pw1", t0);
        assert_eq!(resp.status(), Some(200));
        assert!(r.lookup("agent1", t0).is_empty());
    }

    #[test]
    fn stale_nonce_rechallenged() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let mut req = register("agent1", "<sip:agent1@127.0.0.1:5090>", 1);
        let (resp, _) = r.on_register(&req, src(), t0);
        let ch: Challenge = resp.header_values("WWW-Authenticate").nth(1).unwrap().parse().unwrap();
        let creds = DigestClient::new("agent1", "pw1").respond(&ch, "REGISTER", "sip:127.0.0.1:5070", b"");
        req.push("Authorization", creds.to_string());
        let (resp, _) = r.on_register(&req, src(), t0 + Duration::from_secs(301));
        assert_eq!(resp.status(), Some(401));
        assert!(resp.header("WWW-Authenticate").unwrap().to_ascii_lowercase().contains("stale=true"));
    }

    fn kept(contact: &str, expires_at: Instant, cseq: u32) -> Binding {
        Binding {
            contact: Uri::parse(contact).unwrap(),
            source: src(),
            expires_at,
            call_id: "reg1".into(),
            cseq,
            confirmed: true,
        }
    }

    #[test]
    fn a_restored_binding_is_found_and_expires_as_before() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let until = t0 + Duration::from_secs(600);
        assert!(r.restore("agent1", kept("sip:agent1@127.0.0.1:5090", until, 7), t0));
        // not called before the phone answered an OPTIONS
        assert!(r.lookup("agent1", t0).is_empty());
        let [(user, b)] = r.unconfirmed().try_into().unwrap();
        assert_eq!((user.as_str(), b.contact.as_str()), ("agent1", "sip:agent1@127.0.0.1:5090"));
        assert!(r.confirm("agent1", &b.contact));
        assert!(r.unconfirmed().is_empty());
        let found = r.lookup("agent1", t0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].contact.as_str(), "sip:agent1@127.0.0.1:5090");
        assert_eq!(found[0].source, src());
        assert_eq!(r.bindings("agent1").len(), 1);
        assert_eq!(r.poll_timeout(), Some(until));
        let ev = r.handle_timeout(until);
        assert_eq!(ev, vec![BindingEvent::Expired { user: "agent1".into() }]);
        assert!(r.lookup("agent1", until).is_empty());
    }

    #[test]
    fn restore_refuses_unknown_users_ended_and_already_bound_contacts() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let later = t0 + Duration::from_secs(600);
        assert!(!r.restore("nobody", kept("sip:nobody@127.0.0.1:5090", later, 1), t0), "not an account");
        assert!(!r.restore("agent1", kept("sip:agent1@127.0.0.1:5090", t0, 1), t0), "ended");
        assert!(r.lookup("agent1", t0).is_empty());
        // registered again since (a newer binding for the same contact) wins
        authed(&mut r, register("agent1", "<sip:agent1@127.0.0.1:5090>", 3), "agent1", "pw1", t0);
        assert!(!r.restore("agent1", kept("sip:agent1@127.0.0.1:5090", later, 1), t0));
        assert_eq!(r.bindings("agent1").len(), 1);
        assert_eq!(r.bindings("agent1")[0].cseq, 3);
    }

    #[test]
    fn a_restored_binding_whose_phone_does_not_answer_is_dropped() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let gone = kept("sip:agent1@127.0.0.1:5090", t0 + Duration::from_secs(600), 5);
        assert!(r.restore("agent1", gone.clone(), t0));
        assert_eq!(
            r.forget_unconfirmed("agent1", &gone.contact),
            vec![BindingEvent::Removed { user: "agent1".into() }]
        );
        assert!(r.bindings("agent1").is_empty());
        // a binding the phone renewed by a REGISTER meanwhile stays
        assert!(r.restore("agent1", gone.clone(), t0));
        authed(&mut r, register("agent1", "<sip:agent1@127.0.0.1:5090>", 9), "agent1", "pw1", t0);
        assert!(r.forget_unconfirmed("agent1", &gone.contact).is_empty());
        assert_eq!(r.lookup("agent1", t0).len(), 1);
    }

    #[test]
    fn a_restored_binding_still_refuses_an_older_register() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        assert!(r.restore("agent1", kept("sip:agent1@127.0.0.1:5090", t0 + Duration::from_secs(600), 5), t0));
        assert!(r.confirm("agent1", &Uri::parse("sip:agent1@127.0.0.1:5090").unwrap()));
        // a retransmission of an older REGISTER of the same Call-ID: no change
        let (resp, ev) = authed_from(
            &mut r,
            register("agent1", "<sip:agent1@127.0.0.1:5090>;expires=0", 4),
            "agent1",
            "pw1",
            t0,
            src(),
        );
        assert_eq!(resp.status(), Some(200));
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(r.lookup("agent1", t0).len(), 1);
    }
}
