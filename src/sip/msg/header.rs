//! Typed views of the headers a SIP stack routes by.
//!
//! Each type parses one header *value* (the text after the colon, already
//! unfolded by the normaliser) and prints it back in canonical form. Only
//! what the transaction, dialog and registration layers need is typed;
//! everything else stays text in [`super::Message`].

use std::fmt;

use super::{Method, ParseError, Uri};

/// Header parameters (`;name=value` or `;flag`), names compared without case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` optional).
    pub fn parse(text: &str) -> Params {
        let mut v = Vec::new();
        for p in split_outside_quotes(text, b';') {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            match p.split_once('=') {
                Some((k, val)) => v.push((k.trim().to_string(), Some(val.trim().to_string()))),
                None => v.push((p.to_string(), None)),
            }
        }
        Params(v)
    }
    /// `None` if absent, `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }
    /// Sets (replacing) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        match self.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value.map(str::to_string),
            None => self.0.push((name.to_string(), value.map(str::to_string))),
        }
    }
    /// Removes a parameter.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Splits at `sep` outside double quotes and angle brackets.
pub fn split_outside_quotes(text: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escape, mut start) = (false, false, false, 0);
    for (i, b) in text.bytes().enumerate() {
        if escape {
            escape = false;
            continue;
        }
        match b {
            b'\\' if quoted => escape = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            _ if b == sep && !quoted && !angle => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Splits a comma-separated header value into its elements.
pub fn split_list(text: &str) -> Vec<&str> {
    split_outside_quotes(text, b',').into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// A `Via` header value: `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport, upper case (`UDP`, `TCP`, …).
    pub transport: String,
    /// The sent-by host (IPv6 without brackets).
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// `branch`, `received`, `rport` and the rest.
    pub params: Params,
}

/// The magic cookie that marks an RFC 3261 branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Parses one Via value.
    pub fn parse(text: &str) -> Result<Via, ParseError> {
        Self::parse_version(text, false)
    }

    /// Parses one Via value whatever SIP version it names: only to route
    /// the 505 that answers a request of another version (RFC 4475 3.1.2.16).
    pub fn parse_any_version(text: &str) -> Result<Via, ParseError> {
        Self::parse_version(text, true)
    }

    fn parse_version(text: &str, any_version: bool) -> Result<Via, ParseError> {
        let bad = |reason| ParseError::BadHeader { name: "Via", reason };
        // sent-protocol = protocol-name SLASH protocol-version SLASH
        // transport, where SLASH = SWS "/" SWS (RFC 3261 §25.1): white space
        // may surround the slashes (RFC 4475 3.1.1.1), and LWS ends it.
        let mut rest = text.trim_start();
        let mut parts = [""; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            if i > 0 {
                rest = match rest.trim_start().strip_prefix('/') {
                    Some(r) => r.trim_start(),
                    None => return Err(bad("protocol is not SIP/2.0")),
                };
            }
            let end = rest.find(['/', ' ', '\t']).unwrap_or(rest.len());
            *part = &rest[..end];
            rest = &rest[end..];
        }
        let [name, version, transport] = parts;
        let version_ok = version == "2.0" || (any_version && !version.is_empty());
        if !name.eq_ignore_ascii_case("SIP") || !version_ok {
            return Err(bad("protocol is not SIP/2.0"));
        }
        if transport.is_empty() || !transport.bytes().all(is_token) {
            return Err(bad("bad transport"));
        }
        let transport = transport.to_ascii_uppercase();
        if !rest.starts_with([' ', '\t']) || rest.trim().is_empty() {
            return Err(bad("no sent-by"));
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by).ok_or(bad("bad sent-by"))?;
        Ok(Via { transport, host, port, params: Params::parse(params) })
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }
    /// `rport`: `None` absent, `Some(None)` requested, `Some(Some(p))` filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
    /// Whether the transport is reliable (anything but UDP).
    pub fn is_reliable(&self) -> bool {
        self.transport != "UDP"
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Splits `host[:port]` / `[v6][:port]`.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        (&rest[..end], rest[end + 1..].strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
    };
    Some((host.to_string(), port))
}

/// A `CSeq` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31 per RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `4711 INVITE`.
    pub fn parse(text: &str) -> Result<CSeq, ParseError> {
        let bad = |reason| ParseError::BadHeader { name: "CSeq", reason };
        let mut it = text.split_ascii_whitespace();
        let num = it.next().ok_or(bad("empty"))?;
        let method = it.next().ok_or(bad("no method"))?;
        if it.next().is_some() {
            return Err(bad("trailing text"));
        }
        if !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("sequence number is not a number"));
        }
        let seq: u64 = num.trim_start_matches('0').parse().unwrap_or(0);
        if num.len() > 12 || seq >= 1 << 31 {
            return Err(bad("sequence number out of range"));
        }
        let method = Method::parse(method).ok_or(bad("bad method"))?;
        Ok(CSeq { seq: seq as u32, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A name-addr or addr-spec with header parameters: `From`, `To`,
/// `Contact`, `Route`, `Record-Route` elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quotes kept).
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, …).
    pub params: Params,
}

impl NameAddr {
    /// A bare `<uri>`.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::default() }
    }
    /// Parses one element. `name` is used for error messages.
    pub fn parse(text: &str, name: &'static str) -> Result<NameAddr, ParseError> {
        let bad = |reason| ParseError::BadHeader { name, reason };
        let text = text.trim();
        if let Some(lt) = find_unquoted(text, b'<') {
            let display = text[..lt].trim();
            if !display.is_empty() && !valid_display(display) {
                return Err(bad("bad display name"));
            }
            let gt = text[lt..].find('>').ok_or(bad("unterminated <"))? + lt;
            let uri = Uri::parse(&text[lt + 1..gt]).map_err(|_| bad("bad URI"))?;
            let rest = text[gt + 1..].trim();
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err(bad("text after URI"));
            }
            Ok(NameAddr {
                display: (!display.is_empty()).then(|| display.to_string()),
                uri,
                params: Params::parse(rest),
            })
        } else {
            // addr-spec: parameters after the URI belong to the header.
            let (u, p) = match text.find(';') {
                Some(i) => (&text[..i], &text[i..]),
                None => (text, ""),
            };
            if text.contains('"') || text.contains('>') {
                return Err(bad("bad name-addr"));
            }
            let uri = Uri::parse(u).map_err(|_| bad("bad URI"))?;
            Ok(NameAddr { display: None, uri, params: Params::parse(p) })
        }
    }
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

fn valid_display(d: &str) -> bool {
    if d.starts_with('"') {
        d.len() >= 2 && d.ends_with('"')
    } else {
        d.bytes().all(|b| is_token(b) || b == b' ' || b == b'\t' || b >= 0x80)
    }
}

fn find_unquoted(text: &str, needle: u8) -> Option<usize> {
    let (mut quoted, mut escape) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if escape {
            escape = false;
        } else if quoted && b == b'\\' {
            escape = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == needle && !quoted {
            return Some(i);
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// RFC 3261 `token` characters.
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_full() {
        let v = Via::parse("SIP/2.0/udp 127.0.0.1:5060 ; branch=z9hG4bK776asdhds;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "127.0.0.1");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.to_string(), "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport");
    }

    #[test]
    fn via_v6_and_errors() {
        let v = Via::parse("SIP/2.0/TCP [::1]:5070;branch=z9hG4bKx").unwrap();
        assert_eq!(v.host, "::1");
        assert!(Via::parse("SIP/3.0/UDP h").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP h:0").is_err());
        assert!(Via::parse("SIP/2.0/UDP h:70000").is_err());
    }

    #[test]
    fn cseq() {
        let c = CSeq::parse("0009  INVITE").unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("99999999999999999999999 ACK").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("\"A, \\\"B\" <sip:a@h;lr>;tag=1928301774", "From").unwrap();
        assert_eq!(n.tag(), Some("1928301774"));
        assert_eq!(n.uri.param("lr"), Some(None));
        let n = NameAddr::parse("sip:a@h;tag=x", "To").unwrap();
        assert_eq!(n.tag(), Some("x"));
        assert_eq!(n.uri.as_str(), "sip:a@h");
        assert!(NameAddr::parse("<sip:a@h", "To").is_err());
        assert!(NameAddr::parse("<sip:a@h> junk", "To").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("<sip:a,b@h>, \"x,y\" <sip:c@h> ,"), vec!["<sip:a,b@h>", "\"x,y\" <sip:c@h>"]);
    }
}
