//! Why a SIP message was rejected.
//!
//! The texts name the place (line, header) and the reason, never the
//! content: a SIP message carries phone numbers and names, which must not
//! reach error strings or logs.

use thiserror::Error;

/// A message that could not be parsed or that breaks a rule of RFC 3261.
///
/// `ParseError`s that happen after the start line and the headers were
/// split carry the partly parsed message ([`Rejected::partial`]), so that a
/// server can still answer `400 Bad Request` when enough of the message is
/// known to route a response.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The buffer holds no complete header section yet (stream framing only).
    #[error("incomplete message")]
    Incomplete,
    /// The message is larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The header section is not valid UTF-8.
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// The start line is malformed.
    #[error("start line: {0}")]
    StartLine(&'static str),
    /// A header line is malformed.
    #[error("line {line}: {reason}")]
    HeaderLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header's value does not follow its grammar.
    #[error("header {name}: {reason}")]
    BadHeader {
        /// Canonical header name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header the message cannot do without is missing.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// The Content-Length header disagrees with the bytes that came.
    #[error("Content-Length {declared} but {available} body bytes")]
    ContentLength {
        /// What the header said.
        declared: usize,
        /// What the datagram had.
        available: usize,
    },
    /// A stream message without Content-Length cannot be framed.
    #[error("missing Content-Length on a stream transport")]
    StreamWithoutLength,
}

/// The start-line reason for a SIP version other than 2.0 (answered 505).
pub const UNSUPPORTED_VERSION: &str = "unsupported SIP version";
/// The start-line reason for a Request-URI scheme other than sip/sips
/// (answered 416).
pub const UNSUPPORTED_SCHEME: &str = "unsupported URI scheme";

impl ParseError {
    /// The status code a server should answer with when it can answer at all.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } => 513,
            ParseError::StartLine(UNSUPPORTED_VERSION) => 505,
            ParseError::StartLine(UNSUPPORTED_SCHEME) => 416,
            _ => 400,
        }
    }
}
