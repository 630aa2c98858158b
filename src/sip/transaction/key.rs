//! Transaction keys: how a message finds the transaction it belongs to.
//!
//! **Server side** (RFC 3261 §17.2.3). A request whose top Via branch
//! starts with the magic cookie `z9hG4bK` matches a server transaction when
//! three things are equal: the branch, the sent-by (host and port) of the
//! top Via, and the method — where an ACK counts as the INVITE it
//! acknowledges, and a CANCEL keeps its own method (so a CANCEL is its own
//! transaction, and finds the INVITE it cancels by asking for the same key
//! with method INVITE, [`ServerKey::with_method`]).
//!
//! The sent-by is compared as host (without case) and port, where a missing
//! port counts as the transport's default (5060, or 5061 for TLS). The
//! `received` and `rport` parameters stamped on receipt play no part.
//!
//! **Requests without the magic cookie** (RFC 2543 peers) are not matched
//! by the full §17.2.3 fallback rules. They get a key made of what an
//! RFC 2543 retransmission repeats unchanged: Call-ID, CSeq number, From
//! tag, the top Via's sent-by and branch (if any), and the method as above.
//! That absorbs their retransmissions, matches their ACK for a non-2xx
//! (same Via, same CSeq number) and their CANCEL; it does not look at the
//! To tag or the Request-URI, which is a simplification we accept.
//!
//! **Client side** (RFC 3261 §17.1.3). A response matches a client
//! transaction when the branch of its top Via and the method of its CSeq
//! are those of the request: a 200 to a CANCEL and a 487 to the INVITE share
//! a branch but not a method.

use crate::sip::msg::header::BRANCH_COOKIE;
use crate::sip::msg::{Message, Method};

/// What identifies the request side of a server transaction's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BranchKey {
    /// An RFC 3261 branch (with the magic cookie), compared exactly.
    Rfc3261(String),
    /// An RFC 2543 request: what its retransmissions repeat.
    Rfc2543 {
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        seq: u32,
        /// The From tag, if any.
        from_tag: Option<String>,
        /// The branch without the cookie, if any.
        branch: Option<String>,
    },
}

/// The key of a server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ServerKey {
    branch: BranchKey,
    host: String,
    port: u16,
    method: Method,
}

impl ServerKey {
    /// The key a request belongs to, or `None` if it lacks the top Via or
    /// CSeq that a key is made of (a parsed [`Message`] always has both).
    pub(super) fn of_request(req: &Message) -> Option<ServerKey> {
        let method = match req.method()? {
            Method::Ack => Method::Invite,
            m => m,
        };
        let via = req.top_via().ok()?;
        let branch = match via.branch() {
            Some(b) if b.starts_with(BRANCH_COOKIE) => BranchKey::Rfc3261(b.to_string()),
            other => BranchKey::Rfc2543 {
                call_id: req.call_id()?.to_string(),
                seq: req.cseq().ok()?.seq,
                from_tag: req.from_tag(),
                branch: other.map(str::to_string),
            },
        };
        let default_port = if via.transport == "TLS" { 5061 } else { 5060 };
        Some(ServerKey {
            branch,
            host: via.host.to_ascii_lowercase(),
            port: via.port.unwrap_or(default_port),
            method,
        })
    }

    /// The same key for another method: a CANCEL's key with
    /// [`Method::Invite`] is the key of the INVITE it cancels (§9.2).
    pub(super) fn with_method(&self, method: Method) -> ServerKey {
        ServerKey { method, ..self.clone() }
    }
}

/// The key of a client transaction (RFC 3261 §17.1.3): the branch we put in
/// the top Via and the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    branch: String,
    method: Method,
}

impl ClientKey {
    /// The key of a request we send: its top Via branch and its method.
    pub(super) fn of_request(req: &Message) -> Option<ClientKey> {
        Some(ClientKey { branch: req.top_via().ok()?.branch()?.to_string(), method: req.method()? })
    }

    /// The key a response belongs to: its top Via branch and CSeq method.
    pub(super) fn of_response(resp: &Message) -> Option<ClientKey> {
        Some(ClientKey {
            branch: resp.top_via().ok()?.branch()?.to_string(),
            method: resp.cseq().ok()?.method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, via: &str, cseq: &str) -> Message {
        let raw = format!(
            "{method} sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=f1\r\nTo: <sip:h>\r\n\
             Call-ID: c1\r\nCSeq: {cseq}\r\n\r\n"
        );
        Message::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn ack_matches_invite_cancel_does_not() {
        let via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc";
        let invite = ServerKey::of_request(&req("INVITE", via, "1 INVITE")).unwrap();
        let ack = ServerKey::of_request(&req("ACK", via, "1 ACK")).unwrap();
        let cancel = ServerKey::of_request(&req("CANCEL", via, "1 CANCEL")).unwrap();
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.with_method(Method::Invite), invite);
    }

    #[test]
    fn sent_by_compared_with_default_port_and_without_case() {
        let a = req("OPTIONS", "SIP/2.0/UDP Host.example;branch=z9hG4bKx", "1 OPTIONS");
        let b = req(
            "OPTIONS",
            "SIP/2.0/UDP host.example:5060;branch=z9hG4bKx;received=1.2.3.4;rport=9",
            "1 OPTIONS",
        );
        let c = req("OPTIONS", "SIP/2.0/UDP host.example:5070;branch=z9hG4bKx", "1 OPTIONS");
        let d = req("OPTIONS", "SIP/2.0/UDP host.example;branch=z9hG4bKy", "1 OPTIONS");
        let key = |m: &Message| ServerKey::of_request(m).unwrap();
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert_ne!(key(&a), key(&d));
    }

    #[test]
    fn rfc2543_requests_keyed_by_call_id_cseq_from_tag() {
        let via = "SIP/2.0/UDP 10.0.0.1:5060";
        let invite = ServerKey::of_request(&req("INVITE", via, "7 INVITE")).unwrap();
        let ack = ServerKey::of_request(&req("ACK", via, "7 ACK")).unwrap();
        let next = ServerKey::of_request(&req("INVITE", via, "8 INVITE")).unwrap();
        assert_eq!(invite, ack);
        assert_ne!(invite, next);
    }

    #[test]
    fn client_key_separates_cancel_from_invite() {
        let via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc";
        let invite = ClientKey::of_request(&req("INVITE", via, "1 INVITE")).unwrap();
        let cancel = ClientKey::of_request(&req("CANCEL", via, "1 CANCEL")).unwrap();
        assert_ne!(invite, cancel);
        let mut resp = Message::response(487).with("Via", via).with("CSeq", "1 INVITE");
        assert_eq!(ClientKey::of_response(&resp).unwrap(), invite);
        resp.set("CSeq", "1 CANCEL");
        assert_eq!(ClientKey::of_response(&resp).unwrap(), cancel);
    }
}
