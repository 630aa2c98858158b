//! The SIP message facade: parse, inspect, build and print SIP messages.
//!
//! Everything above this module sees [`Message`], never rsip. The path of
//! bytes into a `Message` is:
//!
//! 1. **framing** ([`framing`]): find the end of the header section and cut
//!    the body by `Content-Length` — on a datagram, missing means "the rest"
//!    and extra octets are dropped (RFC 3261 §18.3); on a stream the header
//!    is mandatory and the next message starts right after the body;
//! 2. **normalising** ([`normalise`]): compact forms, case, whitespace,
//!    folding and leading zeros are brought to one spelling;
//! 3. **grammar**: the start line and every URI go through rsip's URI parser
//!    ([`Uri`]); the headers the stack routes by are typed on demand
//!    ([`header`]);
//! 4. **validation**: the headers every request and response must carry
//!    (Via, From, To, Call-ID, CSeq) are present and well formed, and a
//!    request's CSeq method matches its method.
//!
//! Any input either becomes a `Message` or a [`Rejected`] whose reason
//! names the line or header at fault. No input panics (a proptest and the
//! fuzz target in `fuzz/` hold us to that). When the head was readable, the
//! rejection carries the partial message so a server can answer 400.
//!
//! Printing ([`Message::to_bytes`]) always writes a correct
//! `Content-Length`.

pub mod error;
pub mod framing;
pub mod header;
pub mod normalise;
pub mod uri;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

pub use error::ParseError;
pub use framing::{StreamFramer, StreamItem};
pub use header::{CSeq, NameAddr, Params, Via};
pub use uri::Uri;

/// Largest message accepted on any transport.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A SIP method. Extension methods are kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO
    Info,
    /// UPDATE
    Update,
    /// PRACK
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// REFER
    Refer,
    /// MESSAGE
    Message,
    /// PUBLISH
    Publish,
    /// Any other token.
    Other(Box<str>),
}

impl Method {
    /// Parses a method token (case-sensitive, RFC 3261 §7.1).
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            // any token, within reason (RFC 4475 3.1.1.2 has one of 43 characters)
            other if !other.is_empty() && other.len() <= 64 && other.bytes().all(header::is_token) => {
                Method::Other(other.into())
            }
            _ => return None,
        })
    }
    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`
    Request {
        /// The method.
        method: Method,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100..=699.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A header: canonical name and its (unfolded, trimmed) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name, e.g. `Call-ID`.
    pub name: Cow<'static, str>,
    /// The value, e.g. `a84b4c76e66710`.
    pub value: String,
}

/// A SIP request or response.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    headers: Vec<Header>,
    /// The body, exactly `Content-Length` bytes.
    pub body: Bytes,
}

/// A message that was refused, with the part of it that could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// Why.
    pub error: ParseError,
    /// The message as far as it was readable, when the head parsed: enough
    /// to build a `400` if it has Via, From, To, Call-ID and CSeq.
    pub partial: Option<Box<Message>>,
}

impl From<ParseError> for Rejected {
    fn from(error: ParseError) -> Self {
        Rejected { error, partial: None }
    }
}

impl Message {
    /// A new request with no headers.
    pub fn request(method: Method, uri: Uri) -> Message {
        Message { start: StartLine::Request { method, uri }, headers: Vec::new(), body: Bytes::new() }
    }

    /// A new response with no headers and the standard reason phrase.
    pub fn response(status: u16) -> Message {
        Message {
            start: StartLine::Response { status, reason: reason_phrase(status).to_string() },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A response to `req` as a UAS or stateless server builds it (RFC 3261
    /// §8.2.6): Via, From, To, Call-ID and CSeq copied; the caller adds a To
    /// tag where one is due.
    pub fn response_to(req: &Message, status: u16) -> Message {
        let mut resp = Message::response(status);
        for h in &req.headers {
            if matches!(&*h.name, "Via" | "From" | "To" | "Call-ID" | "CSeq") {
                resp.headers.push(h.clone());
            }
        }
        if status == 100
            && let Some(ts) = req.header("Timestamp")
        {
            resp.push("Timestamp", ts.to_string());
        }
        resp
    }

    /// Parses one datagram (UDP): the body is cut to `Content-Length` and
    /// trailing octets are ignored; without the header the rest is the body.
    pub fn parse(datagram: &[u8]) -> Result<Message, Rejected> {
        framing::parse_datagram(datagram)
    }

    /// Builds a message from a head and a body already framed.
    fn from_parts(head: &[u8], body: Bytes) -> Result<Message, Rejected> {
        let (start, headers) = match normalise::parse_head(head) {
            Ok(parts) => parts,
            Err(error @ ParseError::StartLine(_)) => {
                return Err(Rejected { partial: Self::behind_bad_request_line(head), error });
            }
            Err(error) => return Err(error.into()),
        };
        let headers = headers.into_iter().map(|(name, value)| Header { name, value }).collect();
        let msg = Message { start, headers, body };
        match msg.validate() {
            Ok(()) => Ok(msg),
            Err(error) => Err(Rejected { error, partial: Some(Box::new(msg)) }),
        }
    }

    /// A request whose request line is broken may still have readable
    /// headers, enough to answer it: parse them behind a stand-in request
    /// line, with the method taken from CSeq. Status lines are not tried (a
    /// broken response is never answered).
    fn behind_bad_request_line(head: &[u8]) -> Option<Box<Message>> {
        let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
        let head = &head[start..];
        if head.len() >= 4 && head[..4].eq_ignore_ascii_case(b"SIP/") {
            return None;
        }
        let eol = head.iter().position(|&b| b == b'\n')?;
        let mut stand_in = b"OPTIONS sip:invalid.invalid SIP/2.0\r\n".to_vec();
        stand_in.extend_from_slice(&head[eol + 1..]);
        let (_, headers) = normalise::parse_head(&stand_in).ok()?;
        let mut msg = Message {
            start: StartLine::Request {
                method: Method::Options,
                uri: Uri::sip(None, "invalid.invalid", None),
            },
            headers: headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
            body: Bytes::new(),
        };
        let method = msg.cseq().ok()?.method;
        if let StartLine::Request { method: m, .. } = &mut msg.start {
            *m = method;
        }
        Some(Box::new(msg))
    }

    /// Checks the headers that the transaction layer relies on.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.header("Via").is_none() {
            return Err(ParseError::MissingHeader("Via"));
        }
        for v in self.header_values("Via") {
            Via::parse(v)?;
        }
        let from = self.header("From").ok_or(ParseError::MissingHeader("From"))?;
        NameAddr::parse(from, "From")?;
        let to = self.header("To").ok_or(ParseError::MissingHeader("To"))?;
        NameAddr::parse(to, "To")?;
        let call_id = self.header("Call-ID").ok_or(ParseError::MissingHeader("Call-ID"))?;
        if call_id.is_empty() || call_id.contains([' ', '\t']) {
            return Err(ParseError::BadHeader { name: "Call-ID", reason: "empty or contains spaces" });
        }
        let cseq = CSeq::parse(self.header("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?)?;
        for name in ["Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length"] {
            if self.header_values(name).nth(1).is_some() {
                return Err(ParseError::BadHeader {
                    name: static_name(name),
                    reason: "appears more than once",
                });
            }
        }
        if let Some(mf) = self.header("Max-Forwards") {
            mf.parse::<u8>()
                .map_err(|_| ParseError::BadHeader { name: "Max-Forwards", reason: "not 0..=255" })?;
        }
        if let StartLine::Request { method, .. } = &self.start
            && *method != cseq.method
        {
            return Err(ParseError::CSeqMethodMismatch);
        }
        Ok(())
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    /// The method of a request, or of the request a response answers (from CSeq).
    pub fn method(&self) -> Option<Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => self.cseq().ok().map(|c| c.method),
        }
    }
    /// The status of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }
    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header (name compared without case, compact
    /// forms were already expanded by the parser).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
    /// All headers in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }
    /// Appends a header.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let name = normalise::canonical_name(&name.into());
        self.headers.push(Header { name, value: value.into() });
    }
    /// Builder form of [`Message::push`].
    pub fn with(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Message {
        self.push(name, value);
        self
    }
    /// Replaces every value of a header with one value (appends if absent,
    /// else keeps the position of the first).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.headers.iter().position(|h| h.name.eq_ignore_ascii_case(name)) {
            Some(i) => {
                self.headers[i].value = value;
                let mut seen = 0;
                self.headers.retain(|h| {
                    if h.name.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name.to_string(), value),
        }
    }
    /// Removes every value of a header.
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }
    /// Inserts a header before all others of its name (a new top Via).
    pub fn prepend(&mut self, name: &str, value: impl Into<String>) {
        let name = normalise::canonical_name(name);
        let at = self.headers.iter().position(|h| h.name == name).unwrap_or(0);
        self.headers.insert(at, Header { name, value: value.into() });
    }
    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.set("Content-Type", content_type);
        self.body = body.into();
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }
    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.header("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?)
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        Via::parse(self.header("Via").ok_or(ParseError::MissingHeader("Via"))?)
    }
    /// The topmost Via whatever SIP version it names (to answer 505).
    pub fn top_via_any_version(&self) -> Result<Via, ParseError> {
        Via::parse_any_version(self.header("Via").ok_or(ParseError::MissingHeader("Via"))?)
    }
    /// Replaces the topmost Via.
    pub fn set_top_via(&mut self, via: &Via) {
        if let Some(h) = self.headers.iter_mut().find(|h| h.name == "Via") {
            h.value = via.to_string();
        }
    }
    /// The From header.
    pub fn from_hdr(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.header("From").ok_or(ParseError::MissingHeader("From"))?, "From")
    }
    /// The To header.
    pub fn to_hdr(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.header("To").ok_or(ParseError::MissingHeader("To"))?, "To")
    }
    /// The From tag.
    pub fn from_tag(&self) -> Option<String> {
        self.from_hdr().ok().and_then(|n| n.tag().map(str::to_string))
    }
    /// The To tag.
    pub fn to_tag(&self) -> Option<String> {
        self.to_hdr().ok().and_then(|n| n.tag().map(str::to_string))
    }
    /// Adds a tag to the To header if it has none.
    pub fn ensure_to_tag(&mut self, tag: &str) {
        if let Ok(mut to) = self.to_hdr()
            && to.tag().is_none()
        {
            to.params.set("tag", Some(tag));
            self.set("To", to.to_string());
        }
    }
    /// Elements of a list header of name-addrs (Contact, Route,
    /// Record-Route). A `Contact: *` yields an error here; check
    /// [`Message::is_contact_star`] first.
    pub fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr>, ParseError> {
        self.header_values(name).map(|v| NameAddr::parse(v, name)).collect()
    }
    /// `Contact: *` (remove all bindings).
    pub fn is_contact_star(&self) -> bool {
        self.header("Contact").is_some_and(|c| c.trim() == "*")
    }
    /// A numeric header (Expires, Max-Forwards, …).
    pub fn number(&self, name: &str) -> Option<u32> {
        self.header(name).and_then(|v| v.parse().ok())
    }

    /// Prints the message with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        out
    }

    /// Appends the printed message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match &self.start {
            StartLine::Request { method, uri } => write!(out, "{method} {uri} SIP/2.0\r\n"),
            StartLine::Response { status, reason } => write!(out, "SIP/2.0 {status} {reason}\r\n"),
        };
        for h in self.headers.iter().filter(|h| h.name != "Content-Length") {
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        out.extend_from_slice(&self.body);
    }

    /// A one-line summary safe for logs: method or status, CSeq, and a
    /// hash of the Call-ID. No URIs, numbers or names.
    pub fn summary(&self) -> String {
        let what = match &self.start {
            StartLine::Request { method, .. } => method.to_string(),
            StartLine::Response { status, .. } => status.to_string(),
        };
        let cseq = self.header("CSeq").unwrap_or("-");
        format!("{what} (CSeq {cseq}, call {})", crate::sip::short_hash(self.call_id().unwrap_or("")))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output ends up in logs and panics: keep it free of PII.
        write!(f, "Message({})", self.summary())
    }
}

fn static_name(name: &str) -> &'static str {
    match name {
        "Call-ID" => "Call-ID",
        "CSeq" => "CSeq",
        "From" => "From",
        "To" => "To",
        "Max-Forwards" => "Max-Forwards",
        _ => "Content-Length",
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
