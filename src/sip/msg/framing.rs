//! Where a message ends: datagram and stream framing (RFC 3261 §18.3) and
//! CRLF keep-alives (RFC 5626 §3.5.1).
//!
//! rsip reads everything after the empty line as the body; two messages in
//! one TCP read would become one. Framing therefore happens here, on raw
//! bytes, before anything is parsed.

use bytes::{Buf, Bytes, BytesMut};

use super::{MAX_MESSAGE, Message, ParseError, Rejected};

/// Finds the end of the header section: returns `(head_len, body_start)`.
/// Accepts CRLFCRLF and, leniently, LFLF.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                let head = if i > 0 && buf[i - 1] == b'\r' { i - 1 } else { i };
                return Some((head, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Reads the Content-Length (or `l`) header straight from a raw head, so
/// that a message whose other headers are broken can still be skipped on a
/// stream. `None`: absent; `Some(Err)`: present but not a number.
fn raw_content_length(head: &[u8]) -> Option<Result<usize, ParseError>> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = line[colon + 1..].trim_ascii();
            let n = std::str::from_utf8(v)
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok());
            found = Some(n.ok_or(ParseError::BadHeader { name: "Content-Length", reason: "not a number" }));
        }
    }
    found
}

/// Whether a datagram is only whitespace: a keep-alive, to be ignored.
pub fn is_keepalive(datagram: &[u8]) -> bool {
    datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
}

/// Parses one datagram.
pub fn parse_datagram(buf: &[u8]) -> Result<Message, Rejected> {
    if buf.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge { size: buf.len(), limit: MAX_MESSAGE }.into());
    }
    // A missing empty line in a datagram means "no body" (some stacks cut it).
    let (head_len, body_start) = find_head_end(buf).unwrap_or((buf.len(), buf.len()));
    let head = &buf[..head_len];
    let rest = &buf[body_start..];
    let body = match raw_content_length(head) {
        Some(Ok(n)) if n <= rest.len() => Bytes::copy_from_slice(&rest[..n]),
        Some(Ok(n)) => {
            let error = ParseError::ContentLength { declared: n, available: rest.len() };
            return Err(with_partial(head, error));
        }
        Some(Err(e)) => return Err(with_partial(head, e)),
        None => Bytes::copy_from_slice(rest),
    };
    Message::from_parts(head, body)
}

/// Rejects with the head parsed as far as it goes, so that a 400 can be
/// built from its Via/From/To/Call-ID/CSeq.
fn with_partial(head: &[u8], error: ParseError) -> Rejected {
    let partial = match Message::from_parts(head, Bytes::new()) {
        Ok(m) => Some(Box::new(m)),
        Err(r) => r.partial,
    };
    Rejected { error, partial }
}

/// What a stream framer yields.
#[derive(Debug)]
pub enum StreamItem {
    /// A complete message.
    Message(Message),
    /// A double CRLF keep-alive ping: answer with a single CRLF.
    Ping,
    /// A single CRLF pong answering our ping.
    Pong,
    /// A framed message that failed to parse; the stream is still in sync.
    Invalid(Rejected),
}

/// Frames messages on a byte stream (TCP).
///
/// Feed received bytes with [`StreamFramer::push`], then call
/// [`StreamFramer::next`] until it returns `Ok(None)`. An `Err` means the
/// stream is out of sync (no or absurd Content-Length, oversized head):
/// answer if you can and close the connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    awaiting_pong: bool,
}

impl StreamFramer {
    /// A framer with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// Tells the framer that we sent a CRLFCRLF ping, so that a lone CRLF
    /// is read as its pong.
    pub fn ping_sent(&mut self) {
        self.awaiting_pong = true;
    }
    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// The next item, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<StreamItem>, Rejected> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.advance(4);
            return Ok(Some(StreamItem::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            // A pong, the start of a ping, or a stray CRLF before a message.
            match self.buf.get(2) {
                None if self.awaiting_pong => {
                    self.awaiting_pong = false;
                    self.buf.advance(2);
                    return Ok(Some(StreamItem::Pong));
                }
                None => return Ok(None),
                Some(b'\r') if self.buf.len() == 3 => return Ok(None),
                Some(_) => {
                    self.buf.advance(2);
                    if std::mem::take(&mut self.awaiting_pong) {
                        return Ok(Some(StreamItem::Pong));
                    }
                    return self.next();
                }
            }
        }
        // Skip stray LFs (lenient) before a message.
        while self.buf.first() == Some(&b'\n') {
            self.buf.advance(1);
        }
        let Some((head_len, body_start)) = find_head_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(ParseError::TooLarge { size: self.buf.len(), limit: MAX_MESSAGE }.into());
            }
            return Ok(None);
        };
        let len = match raw_content_length(&self.buf[..head_len]) {
            None => {
                return Err(with_partial(&self.buf[..head_len], ParseError::StreamWithoutLength));
            }
            Some(Err(e)) => return Err(with_partial(&self.buf[..head_len], e)),
            Some(Ok(n)) if body_start + n > MAX_MESSAGE => {
                let e = ParseError::TooLarge { size: body_start + n, limit: MAX_MESSAGE };
                return Err(with_partial(&self.buf[..head_len], e));
            }
            Some(Ok(n)) => n,
        };
        if self.buf.len() < body_start + len {
            return Ok(None);
        }
        let frame = self.buf.split_to(body_start + len).freeze();
        let body = frame.slice(body_start..);
        match Message::from_parts(&frame[..head_len], body) {
            Ok(m) => Ok(Some(StreamItem::Message(m))),
            Err(r) => Ok(Some(StreamItem::Invalid(r))),
        }
    }
}
