//! SIP URIs: rsip's grammar behind our own type.
//!
//! [`Uri`] keeps the text it was parsed from, so that a URI we forward or
//! echo is byte-for-byte what the peer sent (rsip's printer drops URI
//! headers and re-cases parameters), and answers the questions a SIP stack
//! asks of a URI: user, host, port, transport, a parameter by name.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

/// A URI that could not be parsed. The text is not included (it may hold a
/// phone number).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UriError {
    /// Not a `sip:` or `sips:` URI (other schemes are carried, not parsed).
    #[error("unsupported URI scheme")]
    Scheme,
    /// The URI does not follow RFC 3261's grammar.
    #[error("malformed URI")]
    Malformed,
    /// The port is not a number in 1..=65535.
    #[error("bad port in URI")]
    Port,
}

/// A parsed `sip:` or `sips:` URI.
#[derive(Clone, PartialEq, Eq)]
pub struct Uri {
    text: String,
    sips: bool,
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl Uri {
    /// Parses a URI such as `sip:agent1@127.0.0.1:5060;transport=tcp`.
    pub fn parse(text: &str) -> Result<Uri, UriError> {
        let text = text.trim();
        let lower = text.get(..5).map(str::to_ascii_lowercase).unwrap_or_default();
        let sips = if lower.starts_with("sips:") {
            true
        } else if lower.starts_with("sip:") {
            false
        } else {
            // `tel:…` is a URI we do not take (416); `no-colon` is no URI.
            let scheme = text.split_once(':').map(|(s, _)| s).unwrap_or("");
            let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            return Err(if is_scheme { UriError::Scheme } else { UriError::Malformed });
        };
        if text.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"' || b >= 0x7f) {
            return Err(UriError::Malformed);
        }
        // URI headers (`?Route=…`, §19.1.1) follow the host part; a `?` in
        // the user part is just a character. Neither reading below looks at
        // them (they are kept in the text).
        let host_from = text.find('@').map_or(0, |i| i + 1);
        let text_before_headers = match text[host_from..].find('?') {
            Some(q) => &text[..host_from + q],
            None => text,
        };
        let (full, text) = (text, text_before_headers);
        // rsip accepts any port text that fits u16 and cuts off the rest;
        // read the port ourselves from the host part first.
        let port = port_of(text)?;
        // rsip does not know IPv6 references: check those ourselves and let
        // rsip parse the rest of the URI around a stand-in host.
        let mut v6_host = None;
        let mut for_rsip = std::borrow::Cow::Borrowed(text);
        if let (Some(open), Some(close)) = (text.find('['), text.find(']')) {
            let inner = text.get(open + 1..close).ok_or(UriError::Malformed)?;
            let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| UriError::Malformed)?;
            v6_host = Some(ip.to_string());
            for_rsip = format!("{}v6.invalid{}", &text[..open], &text[close + 1..]).into();
        }
        // rsip's URI tokenizer does the grammar (userinfo, params). A parser
        // of untrusted input must not take the process down, so it runs
        // under catch_unwind in case a corner of rsip panics.
        let parsed = std::panic::catch_unwind(|| rsip::Uri::try_from(for_rsip.as_ref()))
            .map_err(|_| UriError::Malformed)?
            .map_err(|_| UriError::Malformed)?;
        let host = v6_host.unwrap_or_else(|| parsed.host().to_string());
        if host.is_empty() {
            return Err(UriError::Malformed);
        }
        Ok(Uri { text: full.to_string(), sips, user: parsed.user().map(str::to_string), host, port })
    }

    /// Whether the URI has headers (`sip:a@h?Route=…`): allowed in a
    /// Contact or a Refer-To, never in a Request-URI (§19.1.1).
    pub fn has_headers(&self) -> bool {
        let host_from = self.text.find('@').map_or(0, |i| i + 1);
        self.text[host_from..].contains('?')
    }

    /// Builds `sip:user@host:port` (user and port optional).
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        let mut text = String::from("sip:");
        if let Some(u) = user {
            text.push_str(u);
            text.push('@');
        }
        if host.contains(':') && !host.starts_with('[') {
            text.push('[');
            text.push_str(host);
            text.push(']');
        } else {
            text.push_str(host);
        }
        if let Some(p) = port {
            text.push(':');
            text.push_str(&p.to_string());
        }
        Uri {
            text,
            sips: false,
            user: user.map(str::to_string),
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        }
    }

    /// Returns a copy with `;name=value` appended (or replaced).
    pub fn with_param(&self, name: &str, value: Option<&str>) -> Uri {
        let (base, params, headers) = self.split();
        let mut out = base.to_string();
        for p in params.split(';').filter(|p| !p.is_empty()) {
            let pname = p.split('=').next().unwrap_or("");
            if !pname.eq_ignore_ascii_case(name) {
                out.push(';');
                out.push_str(p);
            }
        }
        out.push(';');
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
        out.push_str(headers);
        let mut u = self.clone();
        u.text = out;
        u
    }

    fn split(&self) -> (&str, &str, &str) {
        let t = self.text.as_str();
        let (t, headers) = match t.find('?') {
            Some(i) => (&t[..i], &t[i..]),
            None => (t, ""),
        };
        // Parameters start at the first ';' after the host part.
        let host_start = t.find('@').map(|i| i + 1).unwrap_or(4);
        match t[host_start..].find(';') {
            Some(i) => (&t[..host_start + i], &t[host_start + i..], headers),
            None => (t, "", headers),
        }
    }

    /// The value of a URI parameter: `None` if absent, `Some(None)` for a
    /// flag such as `;lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        let (_, params, _) = self.split();
        params.split(';').filter(|p| !p.is_empty()).find_map(|p| {
            let mut kv = p.splitn(2, '=');
            let k = kv.next().unwrap_or("");
            k.eq_ignore_ascii_case(name).then(|| kv.next())
        })
    }

    /// `sips:` rather than `sip:`.
    pub fn is_sips(&self) -> bool {
        self.sips
    }
    /// The user part, if any (may be a phone number: never log it).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The host, without IPv6 brackets.
    pub fn host(&self) -> &str {
        self.host.trim_matches(['[', ']'])
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The `transport` parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.param("transport").flatten().map(str::to_ascii_lowercase)
    }
    /// The host and port as a socket address when the host is an IP
    /// literal (default port 5060, or 5061 for `sips:`).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host().parse().ok()?;
        Some(SocketAddr::new(ip, self.port.unwrap_or(if self.sips { 5061 } else { 5060 })))
    }
    /// The URI as text, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// The URI with user and password removed: safe for logs.
    pub fn masked(&self) -> String {
        crate::sip::mask_uri(&self.text)
    }
}

fn port_of(text: &str) -> Result<Option<u16>, UriError> {
    let (t, _) = text.split_once('?').unwrap_or((text, ""));
    let rest = t.split_once(':').map(|(_, r)| r).unwrap_or("");
    let hostport = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hostport = hostport.split(';').next().unwrap_or("");
    let port_text = if let Some(end) = hostport.find(']') {
        hostport[end + 1..].strip_prefix(':')
    } else {
        hostport.split_once(':').map(|(_, p)| p)
    };
    match port_text {
        None => Ok(None),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(UriError::Port),
            Ok(n) => Ok(Some(n)),
        },
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_host_part() {
        // RFC 4475 3.3.14: a Contact with an escaped Route header
        let u = Uri::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").unwrap();
        assert_eq!((u.user(), u.host(), u.port()), (Some("user"), "example.com", None));
        assert!(u.has_headers());
        assert_eq!(u.as_str(), "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        let u = Uri::parse("sip:user@example.com:5070;lr?Subject=x").unwrap();
        assert_eq!(u.port(), Some(5070));
        // a `?` in the user part is a character, not headers (3.1.1.2)
        let u = Uri::parse("sip:crazy?,/;;*@example.com").unwrap();
        assert!(!u.has_headers());
        assert_eq!(u.host(), "example.com");
    }

    #[test]
    fn parts() {
        let u = Uri::parse("sip:agent1@127.0.0.1:5070;transport=TCP;lr").unwrap();
        assert_eq!(u.user(), Some("agent1"));
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.socket_addr(), Some("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(u.as_str(), "sip:agent1@127.0.0.1:5070;transport=TCP;lr");
    }

    #[test]
    fn no_user_no_port() {
        let u = Uri::parse("sip:127.0.0.1").unwrap();
        assert_eq!(u.user(), None);
        assert_eq!(u.port(), None);
        assert_eq!(u.socket_addr().unwrap().port(), 5060);
    }

    #[test]
    fn ipv6() {
        let u = Uri::parse("sip:[::1]:5070").unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.port(), Some(5070));
    }

    #[test]
    fn rejects() {
        assert_eq!(Uri::parse("tel:+8613800000000"), Err(UriError::Scheme));
        assert_eq!(Uri::parse("sip:a@h:99999"), Err(UriError::Port));
        assert_eq!(Uri::parse("sip:a b@h"), Err(UriError::Malformed));
        assert!(Uri::parse("sip:").is_err());
    }

    #[test]
    fn with_param_replaces() {
        let u = Uri::parse("sip:h;transport=udp;lr").unwrap();
        assert_eq!(u.with_param("transport", Some("tcp")).as_str(), "sip:h;lr;transport=tcp");
    }
}
