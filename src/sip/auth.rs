//! SIP HTTP Digest authentication (RFC 2617, RFC 7616, RFC 8760).
//!
//! Pure functions plus a little state; no IO and no clock of its own: every
//! time-dependent call takes `now: Instant` from the caller.
//!
//! # Client contract
//! On a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`) response:
//! 1. parse each challenge header value with [`Challenge::from_str`] (skip the
//!    ones that fail, e.g. an algorithm we do not support);
//! 2. for each realm, choose one with [`pick`] (SHA-256 preferred over MD5);
//! 3. ask [`should_retry`] whether another attempt makes sense;
//! 4. call [`DigestClient::respond`] and put the [`Credentials`] (via `Display`)
//!    into `Authorization` / `Proxy-Authorization`, then resend the request with
//!    an incremented CSeq (same Call-ID and From tag).
//!
//! # Server contract
//! Send [`DigestServer::challenge`] in a 401/407; when the request comes back,
//! parse the `Authorization` value with [`Credentials::from_str`] and call
//! [`DigestServer::verify`]. On [`Verdict::Stale`] re-challenge with
//! `stale = true`. Nonces are self-verifying (timestamp + salt + MAC under a
//! per-server random secret), so no per-nonce storage is needed except the
//! bounded replay cache. **Checking that `Credentials::uri` matches the
//! request-URI is the caller's job**; `verify` only uses it in the hash.
//!
//! Supported algorithms: MD5, MD5-sess, SHA-256, SHA-256-sess. Others (e.g.
//! RFC 8760's SHA-512-256) parse as [`AuthError::UnsupportedAlgorithm`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use sha2::Sha256;

/// Why a header value could not be parsed. Never contains header values or
/// passwords, only parameter names and byte offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The auth scheme is not `Digest`.
    #[error("not a Digest challenge or credentials")]
    NotDigest,
    /// A required parameter is absent.
    #[error("missing parameter `{0}`")]
    MissingParam(&'static str),
    /// A parameter appears more than once.
    #[error("duplicate parameter `{0}`")]
    DuplicateParam(&'static str),
    /// A parameter has a value we do not understand.
    #[error("bad value for parameter `{0}`")]
    BadValue(&'static str),
    /// `nc` is not exactly 8 hex digits.
    #[error("bad nc: expected 8 hex digits")]
    BadNc,
    /// The `algorithm` is not MD5, MD5-sess, SHA-256 or SHA-256-sess.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// Syntax error in the parameter list at this byte offset.
    #[error("malformed parameter list at byte {0}")]
    Malformed(usize),
}

/// Digest hash algorithm, ordered by preference (weakest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// `MD5-sess`.
    Md5Sess,
    /// `MD5` (RFC 2617; the default when absent).
    Md5,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    const ALL: [Algorithm; 4] = [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess];

    /// The token as written on the wire, e.g. `SHA-256-sess`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (HA1 bound to nonce and cnonce).
    pub fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    /// Whether the underlying hash is MD5.
    pub fn is_md5(self) -> bool {
        matches!(self, Self::Md5 | Self::Md5Sess)
    }

    fn hash(self, data: &[u8]) -> String {
        if self.is_md5() { hex::encode(Md5::digest(data)) } else { hex::encode(Sha256::digest(data)) }
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or(AuthError::UnsupportedAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authenticate method and URI.
    Auth,
    /// `auth-int`: also authenticate the message body.
    AuthInt,
}

impl Qop {
    /// The token as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        let s = s.trim();
        [Self::Auth, Self::AuthInt].into_iter().find(|q| q.as_str().eq_ignore_ascii_case(s))
    }
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Hash algorithm (MD5 when the header omits it).
    pub algorithm: Algorithm,
    /// Offered qop values; unknown tokens are dropped. Empty means RFC 2069 mode.
    pub qop: Vec<Qop>,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// `stale=true`: the previous nonce expired but the credentials were fine.
    pub stale: bool,
    /// Other parameters (lowercased name, unescaped value), e.g. `domain`.
    pub other: Vec<(String, String)>,
}

/// A parsed or generated `Authorization` / `Proxy-Authorization` Digest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Realm from the challenge.
    pub realm: String,
    /// Nonce from the challenge.
    pub nonce: String,
    /// Digest URI (the request-URI).
    pub uri: String,
    /// Hex response hash.
    pub response: String,
    /// Hash algorithm (MD5 when the header omits it).
    pub algorithm: Algorithm,
    /// Client nonce (required with qop and with `-sess`).
    pub cnonce: Option<String>,
    /// Opaque value echoed from the challenge.
    pub opaque: Option<String>,
    /// Chosen qop; `None` is RFC 2069 compatibility mode.
    pub qop: Option<Qop>,
    /// Nonce count (written as 8 hex digits).
    pub nc: Option<u32>,
}

const CHALLENGE_PARAMS: [&str; 6] = ["realm", "nonce", "algorithm", "qop", "opaque", "stale"];

impl FromStr for Challenge {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        let p = Params(parse_params(s)?);
        let qop = p.get("qop")?.map_or_else(Vec::new, |q| q.split(',').filter_map(Qop::from_token).collect());
        Ok(Challenge {
            realm: p.req("realm")?.to_owned(),
            nonce: p.req("nonce")?.to_owned(),
            algorithm: p.get("algorithm")?.map_or(Ok(Algorithm::Md5), str::parse)?,
            qop,
            opaque: p.get("opaque")?.map(str::to_owned),
            stale: p.get("stale")?.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            other: (p.0.into_iter()).filter(|(n, _)| !CHALLENGE_PARAMS.contains(&n.as_str())).collect(),
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let qop: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
        let mut params = vec![
            ("realm", Some(quote(&self.realm))),
            ("nonce", Some(quote(&self.nonce))),
            ("algorithm", Some(self.algorithm.to_string())),
            ("qop", (!qop.is_empty()).then(|| quote(&qop.join(",")))),
            ("opaque", self.opaque.as_deref().map(quote)),
            ("stale", self.stale.then(|| "TRUE".to_owned())),
        ];
        let valid = |n: &&String| !n.is_empty() && n.bytes().all(is_tchar);
        let other = self.other.iter().filter(|(n, _)| valid(&n));
        params.extend(other.map(|(n, v)| (n.as_str(), Some(quote(v)))));
        write_params(f, &params)
    }
}

impl FromStr for Credentials {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        let p = Params(parse_params(s)?);
        let qop = match p.get("qop")? {
            None => None,
            Some(q) => Some(Qop::from_token(q).ok_or(AuthError::BadValue("qop"))?),
        };
        let creds = Credentials {
            username: p.req("username")?.to_owned(),
            realm: p.req("realm")?.to_owned(),
            nonce: p.req("nonce")?.to_owned(),
            uri: p.req("uri")?.to_owned(),
            response: p.req("response")?.to_owned(),
            algorithm: p.get("algorithm")?.map_or(Ok(Algorithm::Md5), str::parse)?,
            cnonce: p.get("cnonce")?.map(str::to_owned),
            opaque: p.get("opaque")?.map(str::to_owned),
            qop,
            nc: p.get("nc")?.map(parse_nc).transpose()?,
        };
        match (creds.qop, &creds.cnonce, creds.nc) {
            (Some(_), None, _) => Err(AuthError::MissingParam("cnonce")),
            (Some(_), _, None) => Err(AuthError::MissingParam("nc")),
            _ => Ok(creds),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_params(
            f,
            &[
                ("username", Some(quote(&self.username))),
                ("realm", Some(quote(&self.realm))),
                ("nonce", Some(quote(&self.nonce))),
                ("uri", Some(quote(&self.uri))),
                ("response", Some(quote(&self.response))),
                ("algorithm", Some(self.algorithm.to_string())),
                ("cnonce", self.cnonce.as_deref().map(quote)),
                ("qop", self.qop.map(|q| q.as_str().to_owned())),
                ("nc", self.nc.map(|n| format!("{n:08x}"))),
                ("opaque", self.opaque.as_deref().map(quote)),
            ],
        )
    }
}

/// Writes `Digest a=b, c=d`, skipping absent values.
fn write_params(f: &mut fmt::Formatter<'_>, params: &[(&str, Option<String>)]) -> fmt::Result {
    f.write_str("Digest")?;
    let present = params.iter().filter_map(|(n, v)| Some((n, v.as_ref()?)));
    for (i, (n, v)) in present.enumerate() {
        write!(f, "{}{n}={v}", if i == 0 { " " } else { ", " })?;
    }
    Ok(())
}

fn parse_nc(s: &str) -> Result<u32, AuthError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::BadNc);
    }
    u32::from_str_radix(s, 16).map_err(|_| AuthError::BadNc)
}

/// Quotes a value, escaping `"` and `\` and dropping CR/LF (no header injection).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| *c != '\r' && *c != '\n') {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Splits `Digest a=b, c="d"` into (lowercased name, unescaped value) pairs.
fn parse_params(input: &str) -> Result<Vec<(String, String)>, AuthError> {
    let b = input.as_bytes();
    let start = skip_ws(b, 0);
    let mut i = start;
    while i < b.len() && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    if !b[start..i].eq_ignore_ascii_case(b"digest") {
        return Err(AuthError::NotDigest);
    }
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        let name_start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(AuthError::Malformed(i));
        }
        let name = String::from_utf8_lossy(&b[name_start..i]).to_ascii_lowercase();
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(AuthError::Malformed(i));
        }
        i = skip_ws(b, i + 1);
        let value = if b.get(i) == Some(&b'"') {
            let open = i;
            let mut v = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(AuthError::Malformed(open)),
                    Some(b'"') => break,
                    Some(b'\\') => match b.get(i + 1) {
                        Some(&c) => {
                            v.push(c);
                            i += 2;
                        }
                        None => return Err(AuthError::Malformed(open)),
                    },
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            String::from_utf8(v).map_err(|_| AuthError::Malformed(open))?
        } else {
            let value_start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !b",\"".contains(&b[i]) {
                i += 1;
            }
            if i == value_start {
                return Err(AuthError::Malformed(i));
            }
            String::from_utf8_lossy(&b[value_start..i]).into_owned()
        };
        i = skip_ws(b, i);
        if i < b.len() && b[i] != b',' {
            return Err(AuthError::Malformed(i));
        }
        out.push((name, value));
    }
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &'static str) -> Result<Option<&str>, AuthError> {
        let mut hits = self.0.iter().filter(|(n, _)| n == name);
        let first = hits.next().map(|(_, v)| v.as_str());
        match hits.next() {
            Some(_) => Err(AuthError::DuplicateParam(name)),
            None => Ok(first),
        }
    }

    fn req(&self, name: &'static str) -> Result<&str, AuthError> {
        self.get(name)?.ok_or(AuthError::MissingParam(name))
    }
}

/// Computes the Digest `response` for `creds` (all fields but `response`).
fn digest_response(creds: &Credentials, password: &str, method: &str, body: &[u8]) -> String {
    let alg = creds.algorithm;
    let h = |s: String| alg.hash(s.as_bytes());
    let cnonce = creds.cnonce.as_deref().unwrap_or("");
    let (nonce, uri) = (&creds.nonce, &creds.uri);
    let mut ha1 = h(format!("{}:{}:{password}", creds.username, creds.realm));
    if alg.is_sess() {
        ha1 = h(format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = match creds.qop {
        Some(Qop::AuthInt) => h(format!("{method}:{uri}:{}", alg.hash(body))),
        _ => h(format!("{method}:{uri}")),
    };
    match creds.qop {
        Some(q) => {
            let nc = creds.nc.unwrap_or(0);
            h(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:{}:{ha2}", q.as_str()))
        }
        None => h(format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Constant-time (for equal lengths) byte comparison.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

/// A password; its `Debug` output is `***`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How many nonces the client remembers nonce counts for.
const CLIENT_NONCES: usize = 16;

/// Client-side Digest state: credentials and per-nonce counters.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: String,
    password: Password,
    counts: VecDeque<(String, u32)>,
}

impl DigestClient {
    /// Creates a client for one user.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestClient { username: username.into(), password: Password::new(password), counts: VecDeque::new() }
    }

    /// Answers `challenge` for a request `method uri` with `body` (the body is
    /// hashed only for `auth-int`). Uses qop=auth when offered, `auth-int` only
    /// if it is the only qop offered, RFC 2069 mode when none is. The nonce
    /// count goes up with each use of the same nonce and starts at 1 for a new
    /// one; the cnonce is 32 fresh random hex digits.
    pub fn respond(&mut self, challenge: &Challenge, method: &str, uri: &str, body: &[u8]) -> Credentials {
        let qop = [Qop::Auth, Qop::AuthInt].into_iter().find(|q| challenge.qop.contains(q));
        let nc = qop.map(|_| self.next_nc(&challenge.nonce));
        let cnonce =
            (qop.is_some() || challenge.algorithm.is_sess()).then(|| hex::encode(rand::random::<[u8; 16]>()));
        let mut creds = Credentials {
            username: self.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: challenge.algorithm,
            cnonce,
            opaque: challenge.opaque.clone(),
            qop,
            nc,
        };
        creds.response = digest_response(&creds, &self.password.0, method, body);
        creds
    }

    fn next_nc(&mut self, nonce: &str) -> u32 {
        if let Some((_, nc)) = self.counts.iter_mut().find(|(n, _)| n == nonce) {
            *nc = nc.saturating_add(1);
            return *nc;
        }
        if self.counts.len() >= CLIENT_NONCES {
            self.counts.pop_front();
        }
        self.counts.push_back((nonce.to_owned(), 1));
        1
    }
}

/// Picks the strongest of several alternative challenges for one realm
/// (SHA-256 > SHA-256-sess > MD5 > MD5-sess; the first wins a tie).
pub fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges.iter().fold(None, |best, c| match best {
        Some(b) if b.algorithm >= c.algorithm => Some(b),
        _ => Some(c),
    })
}

/// Upper bound on attempts per realm, including stale-nonce retries.
pub const MAX_ATTEMPTS: u32 = 4;

/// Whether to answer `challenge`, given how many requests with credentials
/// for this realm were already sent for this transaction (count every one,
/// stale or not). The first challenge is always answered; after that only a
/// `stale=true` challenge (expired nonce, password fine) is, up to
/// [`MAX_ATTEMPTS`]. A plain repeat challenge means wrong credentials: stop.
pub fn should_retry(challenge: &Challenge, attempts_with_this_realm: u32) -> bool {
    attempts_with_this_realm == 0 || (challenge.stale && attempts_with_this_realm < MAX_ATTEMPTS)
}

/// Why [`DigestServer::verify`] refused credentials. For the peer, answer
/// `UnknownUser` and `WrongPassword` alike (no user enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// `password_lookup` knows no such user.
    UnknownUser,
    /// The response hash does not match.
    WrongPassword,
    /// The nonce (or opaque) was not issued by this server.
    BadNonce,
    /// The credentials are for another realm.
    RealmMismatch,
    /// The algorithm is disabled on this server (MD5 when not accepted).
    UnsupportedAlgorithm,
    /// Only qop=auth is verified; `auth-int` is refused.
    UnsupportedQop,
    /// qop, cnonce or nc is missing (RFC 2069 answers are refused).
    MissingParam,
    /// The nonce count is not above the last one seen for this nonce.
    Replay,
}

/// Outcome of [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Ok {
        /// The authenticated user name.
        username: String,
    },
    /// Correct credentials on an expired nonce of ours: re-challenge with
    /// `stale = true`.
    Stale,
    /// Refused; re-challenge (stale = false) or reply 403.
    Rejected(RejectReason),
}

/// Number of nonces the replay cache remembers.
pub const REPLAY_CAP: usize = 4096;

/// Highest nc seen per nonce, FIFO-evicted beyond [`REPLAY_CAP`] nonces.
#[derive(Debug, Default)]
struct ReplayCache {
    last: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl ReplayCache {
    /// Records `nc` for `nonce` if it is above the last one seen (or above 0).
    fn check_and_record(&mut self, nonce: &str, nc: u32) -> bool {
        let last = self.last.get(nonce).copied();
        if nc <= last.unwrap_or(0) {
            return false;
        }
        if last.is_none() {
            if self.order.len() >= REPLAY_CAP
                && let Some(old) = self.order.pop_front()
            {
                self.last.remove(&old);
            }
            self.order.push_back(nonce.to_owned());
        }
        self.last.insert(nonce.to_owned(), nc);
        true
    }
}

/// Server-side Digest: stateless expiring nonces plus a bounded replay cache.
///
/// Nonce = hex(seconds since construction, 8 bytes BE ‖ random salt, 8 bytes
/// ‖ first 16 bytes of SHA-256(secret ‖ seconds ‖ salt)). Ages are measured
/// in whole seconds. A nonce evicted from the replay cache (more than
/// [`REPLAY_CAP`] nonces in use within one lifetime) loses replay protection
/// until it expires, so size `nonce_lifetime` accordingly.
pub struct DigestServer {
    realm: String,
    nonce_lifetime: Duration,
    secret: [u8; 32],
    base: Instant,
    opaque: String,
    accept_md5: bool,
    seen: Mutex<ReplayCache>,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestServer {{ realm: {:?}, secret: *** }}", self.realm)
    }
}

impl DigestServer {
    /// Creates a server for `realm` with a fresh random secret; `now` is the
    /// base for nonce timestamps. MD5 is accepted until [`Self::set_accept_md5`].
    pub fn new(realm: impl Into<String>, nonce_lifetime: Duration, now: Instant) -> Self {
        DigestServer {
            realm: realm.into(),
            nonce_lifetime,
            secret: rand::random(),
            base: now,
            opaque: hex::encode(rand::random::<[u8; 8]>()),
            accept_md5: true,
            seen: Mutex::new(ReplayCache::default()),
        }
    }

    /// Whether MD5 / MD5-sess credentials are accepted (RFC 8760 lets a
    /// server require SHA-256).
    pub fn set_accept_md5(&mut self, accept: bool) {
        self.accept_md5 = accept;
    }

    /// A fresh challenge (qop="auth", our opaque) with a nonce issued at `now`.
    pub fn challenge(&self, now: Instant, stale: bool, algorithm: Algorithm) -> Challenge {
        let ts = self.seconds(now);
        let salt: [u8; 8] = rand::random();
        let mut raw = ts.to_be_bytes().to_vec();
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&self.nonce_mac(ts, &salt));
        Challenge {
            realm: self.realm.clone(),
            nonce: hex::encode(raw),
            algorithm,
            qop: vec![Qop::Auth],
            opaque: Some(self.opaque.clone()),
            stale,
            other: Vec::new(),
        }
    }

    /// Verifies credentials for a request with `method`: realm, algorithm,
    /// qop=auth with cnonce and nc, the nonce's MAC, the user, the response
    /// (constant-time), then the nonce's age and the nc replay check. Does not
    /// check `creds.uri` against the request-URI: the caller must.
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &str,
        password_lookup: impl Fn(&str) -> Option<String>,
        now: Instant,
    ) -> Verdict {
        use RejectReason as R;
        if creds.realm != self.realm {
            return Verdict::Rejected(R::RealmMismatch);
        }
        if creds.algorithm.is_md5() && !self.accept_md5 {
            return Verdict::Rejected(R::UnsupportedAlgorithm);
        }
        match creds.qop {
            Some(Qop::Auth) => {}
            Some(Qop::AuthInt) => return Verdict::Rejected(R::UnsupportedQop),
            None => return Verdict::Rejected(R::MissingParam),
        }
        let (Some(nc), Some(_)) = (creds.nc, &creds.cnonce) else {
            return Verdict::Rejected(R::MissingParam);
        };
        let Some(issued) = self.check_nonce(&creds.nonce) else {
            return Verdict::Rejected(R::BadNonce);
        };
        if creds.opaque.as_ref().is_some_and(|o| *o != self.opaque) {
            return Verdict::Rejected(R::BadNonce);
        }
        let Some(password) = password_lookup(&creds.username) else {
            return Verdict::Rejected(R::UnknownUser);
        };
        let expected = digest_response(creds, &password, method, b"");
        let given = creds.response.to_ascii_lowercase();
        if !ct_eq(expected.as_bytes(), given.as_bytes()) {
            return Verdict::Rejected(R::WrongPassword);
        }
        if self.seconds(now).saturating_sub(issued) > self.nonce_lifetime.as_secs() {
            return Verdict::Stale;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.check_and_record(&creds.nonce, nc) {
            return Verdict::Rejected(R::Replay);
        }
        Verdict::Ok { username: creds.username.clone() }
    }

    fn seconds(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_secs()
    }

    fn nonce_mac(&self, ts: u64, salt: &[u8; 8]) -> [u8; 16] {
        let d = Sha256::new()
            .chain_update(self.secret)
            .chain_update(ts.to_be_bytes())
            .chain_update(salt)
            .finalize();
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&d[..16]);
        mac
    }

    /// Returns the nonce's issue time if it is a canonical nonce of ours.
    fn check_nonce(&self, nonce: &str) -> Option<u64> {
        if nonce.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let raw = hex::decode(nonce).ok()?;
        let (ts, rest) = raw.split_first_chunk::<8>()?;
        let (salt, mac) = rest.split_first_chunk::<8>()?;
        let ts = u64::from_be_bytes(*ts);
        ct_eq(&self.nonce_mac(ts, salt), mac).then_some(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RejectReason as R;
    use proptest::prelude::*;

    const RFC2617: &str = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    const RFC7616: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const CHALLENGE: &str =
        r#"Digest realm="huifang", nonce="abc", algorithm=MD5, qop="auth,auth-int", opaque="x", stale=TRUE"#;

    fn lookup(user: &str) -> Option<String> {
        (user == "alice").then(|| "s3cret".to_owned())
    }

    fn ok() -> Verdict {
        let username = "alice".to_owned();
        Verdict::Ok { username }
    }

    fn server() -> (DigestServer, Instant) {
        let t0 = Instant::now();
        let srv = DigestServer::new("huifang", Duration::from_secs(30), t0);
        (srv, t0)
    }

    fn answer(user: &str, pass: &str, ch: &Challenge) -> Credentials {
        DigestClient::new(user, pass).respond(ch, "INVITE", "sip:b", b"")
    }

    #[test]
    fn rfc2617_md5_example() {
        let c: Credentials = RFC2617.parse().unwrap();
        assert_eq!((c.algorithm, c.qop, c.nc), (Algorithm::Md5, Some(Qop::Auth), Some(1)));
        let r = digest_response(&c, "Circle Of Life", "GET", b"");
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        let mut c: Credentials = RFC7616.parse().unwrap();
        let sha = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";
        assert_eq!(digest_response(&c, "Circle of Life", "GET", b""), sha);
        c.algorithm = Algorithm::Md5;
        let md5 = digest_response(&c, "Circle of Life", "GET", b"");
        assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn parses_challenges_leniently() {
        let c: Challenge = CHALLENGE.parse().unwrap();
        assert_eq!((c.realm.as_str(), c.nonce.as_str(), c.stale), ("huifang", "abc", true));
        assert_eq!((c.qop, c.opaque), (vec![Qop::Auth, Qop::AuthInt], Some("x".into())));
        let s = r#"  digest  REALM="a \"q\" b" ,, nonce=n1 ,algorithm=sha-256-SESS, qop="auth-int, foo",stale=false, Domain="sip:a sip:b","#;
        let c: Challenge = s.parse().unwrap();
        assert_eq!((c.realm.as_str(), c.algorithm), (r#"a "q" b"#, Algorithm::Sha256Sess));
        assert_eq!((&c.qop, c.stale), (&vec![Qop::AuthInt], false));
        assert_eq!(c.other, [("domain".to_owned(), "sip:a sip:b".to_owned())]);
        assert_eq!(c.to_string().parse(), Ok(c));
    }

    #[test]
    fn parse_errors_are_precise_and_leak_nothing() {
        use AuthError as E;
        let challenges = [
            ("Basic realm=\"x\"", E::NotDigest),
            ("Digestrealm=x", E::NotDigest),
            ("Digest realm=r, nonce=n, algorithm=SHA-512-256", E::UnsupportedAlgorithm),
            ("Digest nonce=\"n\"", E::MissingParam("realm")),
            ("Digest realm=\"hunter2\" nonce=\"n\"", E::Malformed(23)),
            ("Digest realm=\"hunter2", E::Malformed(13)),
            ("Digest realm=a, realm=b, nonce=n", E::DuplicateParam("realm")),
            ("Digest =hunter2", E::Malformed(7)),
        ];
        for (input, want) in challenges {
            let err = input.parse::<Challenge>().unwrap_err();
            assert_eq!(err, want, "{input}");
            assert!(!err.to_string().contains("hunter2"));
        }
        let credentials = [
            ("00000001", "1", E::BadNc),
            ("00000001", "0000000g", E::BadNc),
            (", cnonce=\"0a4f113b\"", "", E::MissingParam("cnonce")),
            ("qop=auth", "qop=bogus", E::BadValue("qop")),
        ];
        for (from, to, want) in credentials {
            assert_eq!(RFC2617.replace(from, to).parse::<Credentials>(), Err(want));
        }
    }

    #[test]
    fn formats_credentials() {
        let mut c: Credentials = RFC2617.parse().unwrap();
        (c.username, c.realm, c.nonce) = ("alice".into(), "r".into(), "n".into());
        (c.uri, c.response) = ("sip:x".into(), "f00".into());
        (c.cnonce, c.opaque) = (Some("c\"1".into()), Some("o".into()));
        let want = r#"Digest username="alice", realm="r", nonce="n", uri="sip:x", response="f00", algorithm=MD5, cnonce="c\"1", qop=auth, nc=00000001, opaque="o""#;
        assert_eq!(c.to_string(), want);
        assert_eq!(want.parse(), Ok(c));
    }

    #[test]
    fn round_trip_all_algorithms() {
        let (srv, t0) = server();
        let mut client = DigestClient::new("alice", "s3cret");
        for alg in Algorithm::ALL {
            let ch: Challenge = srv.challenge(t0, false, alg).to_string().parse().unwrap();
            assert_eq!((ch.algorithm, &ch.qop), (alg, &vec![Qop::Auth]));
            let creds = client.respond(&ch, "REGISTER", "sip:huifang", b"");
            let creds: Credentials = creds.to_string().parse().unwrap();
            assert_eq!(srv.verify(&creds, "REGISTER", lookup, t0), ok(), "{alg}");
            let other_method = srv.verify(&creds, "INVITE", lookup, t0);
            assert_eq!(other_method, Verdict::Rejected(R::WrongPassword));
        }
    }

    #[test]
    fn rejections() {
        let (mut srv, t0) = server();
        let ch = srv.challenge(t0, false, Algorithm::Md5);
        let good = answer("alice", "s3cret", &ch);
        let with = |f: fn(&mut Credentials)| {
            let mut c = good.clone();
            f(&mut c);
            c
        };
        let cases = [
            (answer("alice", "nope", &ch), R::WrongPassword),
            (answer("bob", "s3cret", &ch), R::UnknownUser),
            (with(|c| c.nonce.insert(0, '0')), R::BadNonce),
            (with(|c| c.nonce.make_ascii_uppercase()), R::BadNonce),
            (with(|c| c.nonce = "zz".into()), R::BadNonce),
            (with(|c| c.opaque = Some("other".into())), R::BadNonce),
            (with(|c| c.realm = "elsewhere".into()), R::RealmMismatch),
            (with(|c| c.qop = Some(Qop::AuthInt)), R::UnsupportedQop),
            (with(|c| c.qop = None), R::MissingParam),
            (with(|c| c.cnonce = None), R::MissingParam),
        ];
        for (creds, reason) in cases {
            let verdict = srv.verify(&creds, "INVITE", lookup, t0);
            assert_eq!(verdict, Verdict::Rejected(reason), "{creds}");
        }
        let mut tampered = good.clone();
        let last = if tampered.nonce.ends_with('0') { "1" } else { "0" };
        tampered.nonce.replace_range(tampered.nonce.len() - 1.., last);
        let verdict = srv.verify(&tampered, "INVITE", lookup, t0);
        assert_eq!(verdict, Verdict::Rejected(R::BadNonce));
        srv.set_accept_md5(false);
        let verdict = srv.verify(&good, "INVITE", lookup, t0);
        assert_eq!(verdict, Verdict::Rejected(R::UnsupportedAlgorithm));
    }

    #[test]
    fn expired_nonce_is_stale_only_with_right_password() {
        let (srv, t0) = server();
        let secs = Duration::from_secs;
        let ch = srv.challenge(t0 + secs(5), false, Algorithm::Sha256);
        let creds = answer("alice", "s3cret", &ch);
        assert_eq!(srv.verify(&creds, "INVITE", lookup, t0 + secs(36)), Verdict::Stale);
        let wrong = srv.verify(&answer("alice", "x", &ch), "INVITE", lookup, t0 + secs(36));
        assert_eq!(wrong, Verdict::Rejected(R::WrongPassword));
        assert_eq!(srv.verify(&creds, "INVITE", lookup, t0 + secs(34)), ok());
    }

    #[test]
    fn nonce_count_increments_and_replay_is_rejected() {
        let (srv, t0) = server();
        let mut client = DigestClient::new("alice", "s3cret");
        let ch = srv.challenge(t0, false, Algorithm::Sha256);
        let mut cnonces = Vec::new();
        for want in 1..=3 {
            let creds = client.respond(&ch, "MESSAGE", "sip:b", b"hi");
            assert_eq!(creds.nc, Some(want));
            assert_eq!(srv.verify(&creds, "MESSAGE", lookup, t0), ok());
            let again = srv.verify(&creds, "MESSAGE", lookup, t0);
            assert_eq!(again, Verdict::Rejected(R::Replay));
            cnonces.extend(creds.cnonce);
        }
        let hex = |c: &String| c.len() >= 16 && c.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(cnonces.iter().all(hex));
        assert!(cnonces[0] != cnonces[1] && cnonces[1] != cnonces[2]);
        let fresh = srv.challenge(t0, true, Algorithm::Sha256);
        assert_eq!(client.respond(&fresh, "MESSAGE", "sip:b", b"").nc, Some(1));
        assert_eq!(client.respond(&ch, "MESSAGE", "sip:b", b"").nc, Some(4));
    }

    #[test]
    fn qop_choice_and_rfc2069_fallback() {
        let mut client = DigestClient::new("alice", "s3cret");
        let mut ch: Challenge = CHALLENGE.parse().unwrap();
        assert_eq!(client.respond(&ch, "INVITE", "sip:b", b"").qop, Some(Qop::Auth));
        ch.qop = vec![Qop::AuthInt];
        let a = client.respond(&ch, "INVITE", "sip:b", b"v=0");
        assert_eq!(a.qop, Some(Qop::AuthInt));
        assert_eq!(digest_response(&a, "s3cret", "INVITE", b"v=0"), a.response);
        assert_ne!(digest_response(&a, "s3cret", "INVITE", b"v=1"), a.response);
        ch.qop.clear();
        let c = client.respond(&ch, "INVITE", "sip:b", b"");
        assert_eq!((c.qop, c.nc, &c.cnonce), (None, None, &None));
        assert!(!c.to_string().contains("nc=") && !format!("{client:?}").contains("s3cret"));
        assert_eq!(format!("{:?}", Password::new("s3cret")), "***");
    }

    #[test]
    fn pick_and_retry_policy() {
        let md5: Challenge = CHALLENGE.parse().unwrap();
        let sha = Challenge { algorithm: Algorithm::Sha256, ..md5.clone() };
        assert_eq!(pick(&[md5.clone(), sha.clone(), md5.clone()]), Some(&sha));
        assert_eq!(pick(std::slice::from_ref(&md5)), Some(&md5));
        assert_eq!(pick(&[]), None);
        let plain = Challenge { stale: false, ..md5.clone() };
        assert!(should_retry(&plain, 0) && !should_retry(&plain, 1));
        assert!(should_retry(&md5, 1) && should_retry(&md5, 3));
        assert!(!should_retry(&md5, MAX_ATTEMPTS));
    }

    #[test]
    fn replay_cache_is_bounded() {
        let mut cache = ReplayCache::default();
        for i in 0..=REPLAY_CAP {
            assert!(cache.check_and_record(&i.to_string(), 1));
        }
        assert_eq!((cache.last.len(), cache.order.len()), (REPLAY_CAP, REPLAY_CAP));
        assert!(cache.check_and_record("0", 1) && !cache.check_and_record("1", 0));
    }

    fn special_char() -> impl Strategy<Value = char> {
        prop_oneof![Just('"'), Just('\\'), Just(','), Just('='), any::<char>()]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in any::<String>()) {
            for s in [s.clone(), format!("Digest {s}")] {
                let _ = s.parse::<Challenge>();
                let _ = s.parse::<Credentials>();
            }
        }

        #[test]
        fn mutated_headers_never_panic(
            ops in prop::collection::vec((any::<prop::sample::Index>(), special_char(), 0u8..3), 0..8)
        ) {
            for base in [CHALLENGE, RFC2617, RFC7616] {
                let mut chars: Vec<char> = base.chars().collect();
                for (idx, c, op) in &ops {
                    let i = idx.index(chars.len() + 1);
                    match op {
                        0 => chars.insert(i, *c),
                        1 if i < chars.len() => { chars.remove(i); }
                        _ => chars.truncate(i),
                    }
                }
                let s: String = chars.into_iter().collect();
                let _ = s.parse::<Challenge>();
                let _ = s.parse::<Credentials>();
            }
        }

        #[test]
        fn credentials_round_trip(user in "[^\r\n]{0,24}", uri in "[^\r\n]{0,24}", nc in any::<u32>()) {
            let mut c: Credentials = RFC7616.parse().unwrap();
            (c.username, c.uri, c.nc) = (user, uri, Some(nc));
            prop_assert_eq!(c.to_string().parse::<Credentials>(), Ok(c));
        }
    }
}
