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
    find_head_end_from(buf, 0)
}

/// [`find_head_end`], looking at LFs from `from` on (a stream framer
/// resumes where its last search stopped).
fn find_head_end_from(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
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
///
/// Each byte is looked at a bounded number of times however the stream is
/// cut: the search for the end of the head resumes where it stopped, and a
/// head found is kept while its body arrives (searching the whole buffer
/// again after every read would make a large head sent in small pieces
/// cost quadratic time — a cheap way to stall the endpoint).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    awaiting_pong: bool,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    /// The head found, waiting for its body: `(head_len, body_start, body_len)`.
    pending: Option<(usize, usize, usize)>,
    /// Bytes looked at by the head searches (the linear-time test).
    #[cfg(test)]
    examined: usize,
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
        if let Some((head_len, body_start, len)) = self.pending {
            return Ok(self.take_frame(head_len, body_start, len));
        }
        if self.scanned > 0 {
            // in the middle of a head: resume the search
            return self.frame();
        }
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
        self.frame()
    }

    /// Looks for the end of the current message's head (from where the last
    /// look stopped), then for its body.
    fn frame(&mut self) -> Result<Option<StreamItem>, Rejected> {
        // a head end starts at an LF and spans up to 3 bytes: step back 2
        let from = self.scanned.saturating_sub(2);
        #[cfg(test)]
        {
            self.examined += self.buf.len() - from.min(self.buf.len());
        }
        let Some((head_len, body_start)) = find_head_end_from(&self.buf, from) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(ParseError::TooLarge { size: self.buf.len(), limit: MAX_MESSAGE }.into());
            }
            // under 4 bytes it may still become a keep-alive, which `next`
            // tells from a message only when it looks from the start
            if self.buf.len() >= 4 {
                self.scanned = self.buf.len();
            }
            return Ok(None);
        };
        self.scanned = 0;
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
        Ok(self.take_frame(head_len, body_start, len))
    }

    /// The framed message once its body is all here; else keeps the head
    /// found for the next look.
    fn take_frame(&mut self, head_len: usize, body_start: usize, len: usize) -> Option<StreamItem> {
        if self.buf.len() < body_start + len {
            self.pending = Some((head_len, body_start, len));
            return None;
        }
        self.pending = None;
        let frame = self.buf.split_to(body_start + len).freeze();
        let body = frame.slice(body_start..);
        Some(match Message::from_parts(&frame[..head_len], body) {
            Ok(m) => StreamItem::Message(m),
            Err(r) => StreamItem::Invalid(r),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An INVITE whose headers fill about `size` bytes, with a body.
    fn big_message(size: usize) -> Vec<u8> {
        let mut m =
            b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
            To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                .to_vec();
        let mut i = 0;
        while m.len() < size {
            m.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "x".repeat(500)).as_bytes());
            i += 1;
        }
        m.extend_from_slice(b"Content-Length: 5\r\n\r\nhello");
        m
    }

    fn frame_all(pieces: &[&[u8]]) -> (Vec<Message>, usize) {
        let mut f = StreamFramer::new();
        let mut out = Vec::new();
        for p in pieces {
            f.push(p);
            while let Some(item) = f.next().unwrap() {
                match item {
                    StreamItem::Message(m) => out.push(m),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(f.buffered(), 0);
        (out, f.examined)
    }

    #[test]
    fn a_big_head_fed_one_byte_at_a_time_costs_a_few_times_what_it_costs_at_once() {
        let m = big_message(60 * 1024);
        let (at_once, once) = frame_all(&[&m]);
        let bytes: Vec<&[u8]> = m.chunks(1).collect();
        let (piecewise, each) = frame_all(&bytes);
        assert_eq!((at_once.len(), piecewise.len()), (1, 1));
        assert_eq!(at_once[0].body, piecewise[0].body);
        assert!(each <= 4 * once, "one byte at a time looked at {each} bytes; at once {once}");
    }

    #[test]
    fn every_cut_of_two_messages_frames_the_same_two() {
        let one = big_message(400);
        let two: Vec<u8> = [one.as_slice(), b"\r\n\r\n", one.as_slice()].concat();
        for cut in 0..=two.len() {
            for step in [1usize, 7] {
                let (a, b) = two.split_at(cut);
                let mut pieces: Vec<&[u8]> = a.chunks(step).collect();
                pieces.extend(b.chunks(step.max(1)));
                let mut f = StreamFramer::new();
                let (mut msgs, mut pings) = (0, 0);
                for p in &pieces {
                    f.push(p);
                    while let Some(item) = f.next().unwrap() {
                        match item {
                            StreamItem::Message(m) => {
                                assert_eq!(m.body.as_ref(), b"hello");
                                msgs += 1;
                            }
                            StreamItem::Ping => pings += 1,
                            other => panic!("cut {cut}: {other:?}"),
                        }
                    }
                }
                assert_eq!((msgs, pings, f.buffered()), (2, 1, 0), "cut {cut} step {step}");
            }
        }
    }
}
