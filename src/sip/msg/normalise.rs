//! The pre-parse normaliser: turns a raw header section into a start line
//! and a list of `(canonical name, value)` pairs.
//!
//! rsip (and most of the wild) trip over legal but unusual forms. This pass
//! accepts what RFC 3261 §7.3 allows and hands the rest of the stack one
//! spelling of everything:
//! - compact forms (`v`, `i`, `l`, `m`, …) become their long names;
//! - header names are matched without case and written canonically
//!   (`call-id` → `Call-ID`, `WWW-AUTHENTICATE` → `WWW-Authenticate`);
//! - whitespace around the colon and at the end of a value is dropped;
//! - folded lines (a line starting with SP or HT) are joined with one space;
//! - leading zeros of numeric headers are dropped (`Content-Length: 007`);
//! - leading CRLFs before the start line are skipped (§7.5) and bare LF is
//!   accepted as a line end.
//!
//! Anything else that is wrong is refused with its line number.

use super::{ParseError, StartLine};

/// Most headers a message may have before it is refused.
pub const MAX_HEADERS: usize = 256;
/// Longest header line (after unfolding) before it is refused.
pub const MAX_LINE: usize = 8 * 1024;

/// Compact forms (RFC 3261 §7.3.3 and the extensions' registrations).
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Canonical spellings of the headers we know.
const KNOWN: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "RAck",
    "Server",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// Headers whose value is a plain non-negative number.
const NUMERIC: &[&str] = &["Content-Length", "Max-Forwards", "Expires", "Min-Expires"];

/// Headers that may be sent as several comma-separated elements in one line
/// and that the stack reads element by element; the normaliser splits them
/// into one header each (RFC 3261 §7.3.1 says the two forms are equal).
const SPLIT: &[&str] = &["Via", "Route", "Record-Route", "Contact", "Path"];

/// A header as the normaliser hands it on: canonical name and value.
pub type RawHeader = (std::borrow::Cow<'static, str>, String);

/// Returns the canonical name for a header name as written.
pub fn canonical_name(name: &str) -> std::borrow::Cow<'static, str> {
    if name.len() == 1 {
        let b = name.as_bytes()[0].to_ascii_lowercase();
        if let Some((_, long)) = COMPACT.iter().find(|(c, _)| *c == b) {
            return (*long).into();
        }
    }
    match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(k) => (*k).into(),
        None => name.to_string().into(),
    }
}

/// Parses a header section (without the empty line that ends it).
pub fn parse_head(head: &[u8]) -> Result<(StartLine, Vec<RawHeader>), ParseError> {
    // Split lines (CRLF or bare LF), skipping leading empty lines.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in head.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            // Leading CRLFs are skipped (§7.5); inside a head an empty line
            // can only be the one that ended it.
            continue;
        }
        if has_bad_control(raw) {
            return Err(ParseError::HeaderLine { line: line_no, reason: "control character" });
        }
        let text = std::str::from_utf8(raw).map_err(|_| ParseError::NotUtf8 { line: line_no })?;
        if text.starts_with([' ', '\t']) {
            // A folded continuation of the previous header.
            if lines.len() <= 1 {
                return Err(ParseError::HeaderLine {
                    line: line_no,
                    reason: "continuation line without a header",
                });
            }
            let prev = &mut lines.last_mut().expect("checked above").1;
            if prev.len() + text.len() >= MAX_LINE {
                return Err(ParseError::HeaderLine { line: line_no, reason: "header line too long" });
            }
            prev.push(' ');
            prev.push_str(text.trim());
            continue;
        }
        if text.len() > MAX_LINE {
            return Err(ParseError::HeaderLine { line: line_no, reason: "header line too long" });
        }
        lines.push((line_no, text.to_string()));
    }
    let mut it = lines.into_iter();
    let (_, first) = it.next().ok_or(ParseError::StartLine("empty message"))?;
    let start = parse_start_line(&first)?;

    let mut headers = Vec::new();
    for (line, text) in it {
        let colon =
            text.find(':').ok_or(ParseError::HeaderLine { line, reason: "no colon in header line" })?;
        let name = text[..colon].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(super::header::is_token) {
            return Err(ParseError::HeaderLine { line, reason: "bad header name" });
        }
        let name = canonical_name(name);
        let mut value = text[colon + 1..].trim_matches([' ', '\t']).to_string();
        if NUMERIC.iter().any(|n| *n == name) {
            // Leading zeros go; a value that is no number at all is left
            // for validation (or framing) to refuse with a precise reason.
            if let Some(n) = normalise_number(&value) {
                value = n;
            }
        }
        if SPLIT.iter().any(|n| *n == name) && value.contains(',') && value.trim() != "*" {
            for part in super::header::split_list(&value) {
                headers.push((name.clone(), part.to_string()));
            }
        } else {
            headers.push((name, value));
        }
        if headers.len() > MAX_HEADERS {
            return Err(ParseError::HeaderLine { line, reason: "too many headers" });
        }
    }
    Ok((start, headers))
}

/// Whether a line holds a CR, or a NUL anywhere but as a quoted-pair
/// inside a quoted string (`"NUL:\<00>"` is legal: RFC 3261 §25.1
/// quoted-pair, RFC 4475 3.1.1.2).
fn has_bad_control(line: &[u8]) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for &b in line {
        match b {
            b'\r' => return true,
            0 if !escaped => return true,
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ => {}
        }
    }
    false
}

/// `007` → `7`; `0` → `0`; anything but digits → `None`.
fn normalise_number(v: &str) -> Option<String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = v.trim_start_matches('0');
    if t.len() > 10 {
        return None;
    }
    Some(if t.is_empty() { "0".into() } else { t.into() })
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::StartLine("too long"));
    }
    // method SP Request-URI SP version, or version SP code SP reason:
    // split at the first space, and for requests at the last.
    let Some((first, rest)) = line.split_once(' ') else {
        return Err(ParseError::StartLine("not three parts separated by spaces"));
    };
    let parts: Vec<&str> = if first.eq_ignore_ascii_case("SIP/2.0") || first.starts_with("SIP/") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        vec![first, code, reason]
    } else {
        match rest.rsplit_once(' ') {
            Some((uri, version)) => vec![first, uri, version],
            None => return Err(ParseError::StartLine("not three parts separated by spaces")),
        }
    };
    if parts[0].eq_ignore_ascii_case("SIP/2.0") {
        let code = parts[1];
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let status: u16 = code.parse().map_err(|_| ParseError::StartLine("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::StartLine("status code out of range"));
        }
        return Ok(StartLine::Response { status, reason: parts[2].to_string() });
    }
    if parts[0].starts_with("SIP/") {
        return Err(ParseError::StartLine(super::error::UNSUPPORTED_VERSION));
    }
    if line.ends_with([' ', '\t']) {
        // RFC 4475 3.1.2.10: acceptable to reject, and the version is not
        // the problem (no 505). A response may end in a space: an empty
        // reason phrase (3.1.1.13).
        return Err(ParseError::StartLine("white space after the SIP version"));
    }
    let method = super::Method::parse(parts[0]).ok_or(ParseError::StartLine("bad method"))?;
    if !parts[2].eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::StartLine(super::error::UNSUPPORTED_VERSION));
    }
    let uri = parts[1];
    if uri.contains(' ') || uri.is_empty() {
        return Err(ParseError::StartLine("bad Request-URI"));
    }
    let uri = super::Uri::parse(uri).map_err(|e| match e {
        super::uri::UriError::Scheme => ParseError::StartLine(super::error::UNSUPPORTED_SCHEME),
        _ => ParseError::StartLine("bad Request-URI"),
    })?;
    if uri.has_headers() {
        // §19.1.1: no headers in a Request-URI (RFC 4475 3.1.2.11)
        return Err(ParseError::StartLine("bad Request-URI"));
    }
    Ok(StartLine::Request { method, uri })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(head: &str) -> Vec<(String, String)> {
        parse_head(head.as_bytes()).unwrap().1.into_iter().map(|(n, v)| (n.into_owned(), v)).collect()
    }

    #[test]
    fn compact_and_case() {
        let h = names(
            "OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP h\r\ni: abc\r\nl: 000\r\ncall-ID : x\r\nCSEQ:1 OPTIONS",
        );
        assert_eq!(h[0], ("Via".into(), "SIP/2.0/UDP h".into()));
        assert_eq!(h[1], ("Call-ID".into(), "abc".into()));
        assert_eq!(h[2], ("Content-Length".into(), "0".into()));
        assert_eq!(h[3], ("Call-ID".into(), "x".into()));
        assert_eq!(h[4], ("CSeq".into(), "1 OPTIONS".into()));
    }

    #[test]
    fn folding_and_lf() {
        let h = names("\r\n\r\nOPTIONS sip:h SIP/2.0\nSubject: one\n  two\n\tthree\nTo: <sip:a@h>");
        assert_eq!(h[0], ("Subject".into(), "one two three".into()));
        assert_eq!(h[1].0, "To");
    }

    #[test]
    fn split_lists() {
        let h = names("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b\r\nContact: *");
        assert_eq!(h.len(), 3);
        assert_eq!(h[1].1, "SIP/2.0/UDP b");
        assert_eq!(h[2].1, "*");
    }

    #[test]
    fn refusals() {
        let err = |s: &str| parse_head(s.as_bytes()).unwrap_err();
        assert_eq!(err(""), ParseError::StartLine("empty message"));
        assert_eq!(err("OPTIONS sip:h SIP/3.0"), ParseError::StartLine("unsupported SIP version"));
        assert_eq!(err("SIP/2.0 99 Nope"), ParseError::StartLine("status code is not three digits"));
        assert!(matches!(err("OPTIONS sip:h SIP/2.0\r\nNoColon"), ParseError::HeaderLine { line: 2, .. }));
        assert!(matches!(
            err("OPTIONS sip:h SIP/2.0\r\nBad Name: x"),
            ParseError::HeaderLine { line: 2, .. }
        ));
        let h = names("OPTIONS sip:h SIP/2.0\r\nMax-Forwards: 0070\r\nExpires: soon");
        assert_eq!(h[0].1, "70");
        assert_eq!(h[1].1, "soon");
        assert!(matches!(err(" folded first"), ParseError::HeaderLine { line: 1, .. }));
        assert!(matches!(
            parse_head(b"OPTIONS sip:h SIP/2.0\r\nX: \xff"),
            Err(ParseError::NotUtf8 { line: 2 })
        ));
    }
}
