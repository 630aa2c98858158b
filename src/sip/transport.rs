//! Transport addressing rules, with no sockets: which transport a message
//! goes over, where a response is sent (RFC 3261 §18.2.2 with RFC 3581's
//! `rport`), and how a server stamps `received`/`rport` on a request's top
//! Via (§18.2.1).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::msg::{Message, Via};

/// A SIP transport huifang speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, the transaction layer retransmits.
    Udp,
    /// TCP: reliable and stream-framed.
    Tcp,
}

impl Transport {
    /// Whether the transport delivers reliably (no retransmissions then).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
    /// The name in a Via (`UDP`, `TCP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
    /// Parses `udp`/`tcp` without case.
    pub fn parse(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// Where a message goes: a transport and an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
}

/// Stamps `received` and fills `rport` on a request's top Via as a server
/// does on receipt (RFC 3261 §18.2.1, RFC 3581 §4): `received` when the
/// sent-by host differs from the source address or `rport` was asked for;
/// `rport` filled with the source port when it was asked for.
pub fn stamp_received(req: &mut Message, source: SocketAddr) {
    let Ok(mut via) = req.top_via() else { return };
    stamp_via(&mut via, source);
    req.set_top_via(&via);
}

/// What [`stamp_received`] does, on a Via already parsed.
pub fn stamp_via(via: &mut Via, source: SocketAddr) {
    let rport_requested = via.rport().is_some();
    let sent_by_ip: Option<IpAddr> = via.host.parse().ok();
    if sent_by_ip != Some(source.ip()) || rport_requested {
        via.params.set("received", Some(&source.ip().to_string()));
    }
    if rport_requested {
        via.params.set("rport", Some(&source.port().to_string()));
    }
}

/// Where a response to a request with this top Via goes (§18.2.2 + RFC
/// 3581 §4), given the transport and source the request came from.
///
/// Reliable transports answer on the connection the request came in on
/// (the caller tries that first, then falls back to this address); on UDP
/// the response goes to `received` (or the sent-by host) at `rport` (or
/// the sent-by port, or 5060). `maddr` is not supported (multicast).
pub fn response_target(via: &Via, transport: Transport, source: SocketAddr) -> Target {
    if transport.is_reliable() {
        return Target { transport, addr: source };
    }
    let ip: IpAddr =
        via.received().and_then(|r| r.parse().ok()).or_else(|| via.host.parse().ok()).unwrap_or(source.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        Some(None) => source.port(),
        None => via.port.unwrap_or(5060),
    };
    Target { transport, addr: SocketAddr::new(ip, port) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> Message {
        let raw = format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        Message::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn rport_filled_and_used() {
        let mut m = req("SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKa;rport");
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        stamp_received(&mut m, src);
        let via = m.top_via().unwrap();
        assert_eq!(via.received(), Some("127.0.0.1"));
        assert_eq!(via.rport(), Some(Some(40000)));
        assert_eq!(response_target(&via, Transport::Udp, src).addr, src);
    }

    #[test]
    fn received_without_rport_uses_sent_by_port() {
        let mut m = req("SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKa");
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        stamp_received(&mut m, src);
        let via = m.top_via().unwrap();
        assert_eq!(via.received(), Some("127.0.0.1"));
        assert_eq!(response_target(&via, Transport::Udp, src).addr, "127.0.0.1:5062".parse().unwrap());
    }

    #[test]
    fn same_host_no_received() {
        let mut m = req("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa");
        let src: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        stamp_received(&mut m, src);
        let via = m.top_via().unwrap();
        assert_eq!(via.received(), None);
        assert_eq!(response_target(&via, Transport::Udp, src).addr, src);
    }

    #[test]
    fn tcp_answers_the_source() {
        let m = req("SIP/2.0/TCP 10.1.1.1:5060;branch=z9hG4bKa");
        let src: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let t = response_target(&m.top_via().unwrap(), Transport::Tcp, src);
        assert_eq!(t, Target { transport: Transport::Tcp, addr: src });
    }
}
