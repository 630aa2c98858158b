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
//! [`auth`]: super::auth

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::auth::{Algorithm, Credentials, DigestServer, RejectReason, Verdict};
use super::msg::{Message, NameAddr, Uri};
use super::transport::Target;

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
    call_id: String,
    cseq: u32,
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
}

/// The registrar: users, their passwords and their bindings.
pub struct Registrar {
    cfg: RegistrarConfig,
    users: HashMap<String, String>,
    digest: DigestServer,
    bindings: HashMap<String, Vec<Binding>>,
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
            cfg,
        }
    }

    /// Whether `user` is an account of this registrar.
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Current bindings of a user.
    pub fn lookup(&self, user: &str, now: Instant) -> Vec<Binding> {
        self.bindings
            .get(user)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
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
        // 1. Who is it?
        let Some(creds) = req.header("Authorization") else {
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
            };
            match existing {
                Some(i) => list[i] = b,
                None => list.push(b),
            }
            events.push(BindingEvent::Bound { user: user.clone(), expires });
        }
        if list.is_empty() {
            self.bindings.remove(&user);
        }
        self.ok(req, &user, now)
    }

    fn ok(&self, req: &Message, user: &str, now: Instant) -> Message {
        let mut r = Message::response_to(req, 200);
        for b in self.lookup(user, now) {
            let mut c = NameAddr::new(b.contact.clone());
            let left = b.expires_at.saturating_duration_since(now).as_secs().max(1);
            c.params.set("expires", Some(&left.to_string()));
            r.push("Contact", c.to_string());
        }
        r
    }

    /// Drops expired bindings; returns who lost one.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<BindingEvent> {
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

    fn authed(r: &mut Registrar, mut req: Message, user: &str, pw: &str, now: Instant) -> Message {
        let (resp, _) = r.on_register(&req, src(), now);
        assert_eq!(resp.status(), Some(401));
        let chs: Vec<Challenge> =
            resp.header_values("WWW-Authenticate").map(|v| v.parse().unwrap()).collect();
        assert_eq!(chs[0].algorithm, Algorithm::Sha256);
        let mut client = DigestClient::new(user, pw);
        let creds = client.respond(&chs[1], "REGISTER", "sip:127.0.0.1:5070", b"");
        req.push("Authorization", creds.to_string());
        r.on_register(&req, src(), now).0
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
}
