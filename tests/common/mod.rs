//! Helpers for huifang's integration tests against real peers (Kamailio,
//! baresip, SIPp), all on 127.0.0.1. Include with `mod common;`.
//!
//! Peers are installed by `scripts/install-peers.sh` and Kamailio is started by
//! `scripts/peers/kamailio.sh start` (both run by `scripts/test.sh`). A missing
//! peer makes the test fail with a message naming the script to run: tests
//! never pass silently without their peers.
//!
//! std only, plus the `tempfile` dev-dependency.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Loopback: the only address tests may use.
pub const LOCALHOST: &str = "127.0.0.1";

/// Fail the test because a peer program is missing or not running.
pub fn peer_missing(what: &str, script: &str) -> ! {
    panic!("{what} is not installed or not running: run {script}");
}

/// Repository root (the crate's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the peer scripts keep their state: `$HUIFANG_PEERS_DIR`, else
/// `<repo>/target/peers` (the same default as `scripts/peers/*.sh`).
pub fn peers_dir() -> PathBuf {
    match std::env::var_os("HUIFANG_PEERS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("target").join("peers"),
    }
}

/// Path of a file in `tests/peers/` (SIPp scenarios and peer configs).
pub fn scenario(name: &str) -> PathBuf {
    let p = repo_root().join("tests").join("peers").join(name);
    assert!(p.exists(), "no such peer file: {}", p.display());
    p
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

fn require(program: &str) -> PathBuf {
    which(program).unwrap_or_else(|| peer_missing(program, "scripts/install-peers.sh"))
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------- ports

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn port_free_tcp(port: u16) -> bool {
    TcpListener::bind((LOCALHOST, port)).is_ok()
}

fn port_free_udp(port: u16) -> bool {
    UdpSocket::bind((LOCALHOST, port)).is_ok()
}

/// A port on 127.0.0.1 that is free for both UDP and TCP right now, and not
/// handed out before by this process (tests run in parallel threads).
pub fn free_port_udp_tcp() -> u16 {
    free_port_where(|_| true)
}

/// Where test ports come from: above the kernel's ephemeral range (32768–
/// 60999 on Linux), so that no outgoing connection (to PostgreSQL, to the
/// S3 store, a phone's) can take a port between the moment it is handed out
/// and the moment the process it is meant for binds it.
const TEST_PORTS: std::ops::RangeInclusive<u16> = 61000..=65500;

/// Candidate ports, starting at a place that differs between processes.
/// Even ports only: some users also bind the port + 1 (baresip's SIP over
/// TCP/TLS, RTCP), which must never be handed out to someone else.
fn candidates() -> impl Iterator<Item = u16> {
    let span = u32::from(TEST_PORTS.end() - TEST_PORTS.start()) / 2 + 1;
    let start = (std::process::id().wrapping_mul(7919)) % span;
    (0..span).map(move |k| TEST_PORTS.start() + 2 * ((start + k) % span) as u16)
}

fn free_port_where(extra: impl Fn(u16) -> bool) -> u16 {
    let mut set = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for port in candidates() {
        if set.contains(&port) || !port_free_udp(port) || !port_free_tcp(port) || !extra(port) {
            continue;
        }
        set.insert(port);
        return port;
    }
    panic!("no free UDP+TCP port on 127.0.0.1 in {TEST_PORTS:?}");
}

/// A TCP port on 127.0.0.1 free right now and not handed out before.
pub fn free_port_tcp() -> u16 {
    let mut set = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for port in candidates() {
        if set.contains(&port) || !port_free_tcp(port) {
            continue;
        }
        set.insert(port);
        return port;
    }
    panic!("no free TCP port on 127.0.0.1 in {TEST_PORTS:?}");
}

// ---------------------------------------------------------------- Kamailio

/// The running test Kamailio (started by `scripts/peers/kamailio.sh start`).
#[derive(Debug, Clone)]
pub struct Kamailio {
    /// SIP port, UDP and TCP, on 127.0.0.1.
    pub port: u16,
    /// `127.0.0.1:port`
    pub addr: SocketAddr,
    /// State directory (pid file, log, db copy, ctl socket path).
    pub state_dir: PathBuf,
    /// kamcmd socket, `unix:/...`.
    pub ctl: String,
    pub pid: u32,
}

const KAMAILIO_START: &str = "scripts/peers/kamailio.sh start";

/// The test Kamailio, after checking it is running (pid alive and a UDP
/// OPTIONS answered with 200). Panics naming the start script otherwise.
pub fn kamailio() -> Kamailio {
    let port: u16 = match std::env::var("HUIFANG_KAMAILIO_PORT") {
        Ok(p) if !p.is_empty() => {
            p.parse().unwrap_or_else(|_| panic!("HUIFANG_KAMAILIO_PORT={p} is not a port"))
        }
        _ => 25060,
    };
    let state_dir = peers_dir().join("kamailio");
    let pid_file = state_dir.join("kamailio.pid");
    let pid: u32 =
        fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
            peer_missing(&format!("Kamailio (no pid file {})", pid_file.display()), KAMAILIO_START)
        });
    if !pid_alive(pid) {
        peer_missing(&format!("Kamailio (pid {pid} from {} is gone)", pid_file.display()), KAMAILIO_START);
    }
    let ctl = fs::read_to_string(state_dir.join("ctl.path"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("unix:{}", state_dir.join("kamailio_ctl").display()));
    let addr: SocketAddr = format!("{LOCALHOST}:{port}").parse().unwrap();
    if let Err(e) = sip_options_ping(addr, Duration::from_secs(3)) {
        peer_missing(&format!("Kamailio (pid {pid}) does not answer OPTIONS on {addr}: {e}"), KAMAILIO_START);
    }
    Kamailio { port, addr, state_dir, ctl, pid }
}

/// Send one OPTIONS over UDP to `addr` and wait for a 200.
pub fn sip_options_ping(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let sock = UdpSocket::bind((LOCALHOST, 0))?;
    let local = sock.local_addr()?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let nonce = format!("{}x{}x{}", std::process::id(), local.port(), nanos);
    let msg = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-hfping-{nonce}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ping@{local}>;tag=hfping{nonce}\r\n\
         To: <sip:{addr}>\r\n\
         Call-ID: hfping-{nonce}@{LOCALHOST}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    let mut next_send = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no 200 to OPTIONS"));
        }
        if now >= next_send {
            sock.send_to(msg.as_bytes(), addr)?;
            next_send = now + Duration::from_millis(500);
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(10))))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == addr => {
                let text = String::from_utf8_lossy(&buf[..n]);
                if text.starts_with("SIP/2.0 200") {
                    return Ok(());
                }
                if text.starts_with("SIP/2.0 1") {
                    continue;
                }
                let first = text.lines().next().unwrap_or("").to_string();
                return Err(io::Error::other(format!("answered {first}")));
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                continue;
            }
            // ICMP port unreachable shows up as ConnectionRefused on Linux
            Err(e) => return Err(e),
        }
    }
}

impl Kamailio {
    /// `127.0.0.1:port`, as used in SIP URIs and account lines.
    pub fn hostport(&self) -> String {
        format!("{LOCALHOST}:{}", self.port)
    }

    /// Run a kamcmd RPC against this Kamailio; returns its stdout.
    pub fn kamcmd(&self, args: &[&str]) -> String {
        let kamcmd = require("kamcmd");
        let out = Command::new(kamcmd)
            .arg("-s")
            .arg(&self.ctl)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kamcmd");
        assert!(
            out.status.success(),
            "kamcmd -s {} {:?} failed ({}): {}{}",
            self.ctl,
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Contacts bound to `aor_user` in the location table (`ul.dump`).
    pub fn bindings(&self, aor_user: &str) -> Vec<String> {
        parse_ul_dump(&self.kamcmd(&["ul.dump"]), aor_user)
    }

    /// Poll `bindings(aor_user)` until `pred` holds or `timeout` passes.
    pub fn wait_bindings(
        &self,
        aor_user: &str,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let b = self.bindings(aor_user);
            if pred(&b) || Instant::now() >= deadline {
                return b;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kamailio's log file (all runs since the state dir was made).
    pub fn log(&self) -> String {
        fs::read_to_string(self.state_dir.join("kamailio.log")).unwrap_or_default()
    }
}

/// Parse `kamcmd ul.dump` output: the `Address:` lines of the AoR `aor_user`
/// (AoRs are user names only: the test config has `use_domain` 0).
///
/// ```text
/// AoR: agent1
///     Contacts: {
///         Contact: {
///             Address: sip:agent1-0x55...@127.0.0.1:36060;transport=udp
/// ```
pub fn parse_ul_dump(dump: &str, aor_user: &str) -> Vec<String> {
    let mut current: Option<&str> = None;
    let mut out = Vec::new();
    for line in dump.lines() {
        let line = line.trim();
        if let Some(aor) = line.strip_prefix("AoR:") {
            current = Some(aor.trim());
        } else if let Some(addr) = line.strip_prefix("Address:") {
            let aor = current.unwrap_or("");
            // tolerate use_domain=1 style AoRs (user@domain) too
            let user = aor.split('@').next().unwrap_or("");
            if aor == aor_user || user == aor_user {
                out.push(addr.trim().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------- SIPp

/// Outcome of one SIPp run.
#[derive(Debug)]
pub struct SippResult {
    /// Exit code 0 (all calls successful).
    pub success: bool,
    /// Exit code, `None` if killed by a signal (e.g. the wall-clock guard).
    pub code: Option<i32>,
    /// True if the wall-clock guard had to kill SIPp.
    pub killed: bool,
    pub stdout: String,
    pub stderr: String,
    /// Contents of SIPp's `-trace_err` file (why calls failed).
    pub errors: String,
    /// Contents of SIPp's `-trace_logs` file (`<log>` actions in scenarios).
    pub logs: String,
    /// The full command line, for messages.
    pub command: String,
}

impl SippResult {
    /// Panic with everything SIPp said unless it succeeded.
    pub fn assert_success(&self) {
        assert!(self.success, "SIPp failed: {self}");
    }
}

impl std::fmt::Display for SippResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = |s: &str, n: usize| -> String {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        write!(
            f,
            "`{}` -> code {:?}{}\n--- errors:\n{}\n--- logs:\n{}\n--- stderr:\n{}\n--- stdout (tail):\n{}",
            self.command,
            self.code,
            if self.killed { " (killed by wall-clock guard)" } else { "" },
            tail(&self.errors, 40),
            tail(&self.logs, 40),
            tail(&self.stderr, 20),
            tail(&self.stdout, 25)
        )
    }
}

fn has_flag(args: &[&str], flag: &str) -> bool {
    args.contains(&flag)
}

fn parse_duration_secs(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec.parse().ok();
    }
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<f64>().ok().map(|v| v * 60.0);
    }
    s.parse().ok()
}

/// The flags every SIPp run gets unless the caller gave them: a free
/// control port, a `-timeout` (returned, in seconds) with
/// `-timeout_error`, `-nostdin`, and error and log traces into `work`.
fn sipp_defaults(args: &[&str], full: &mut Vec<String>, work: &Path) -> (f64, PathBuf, PathBuf) {
    if !has_flag(args, "-cp") {
        full.extend(["-cp".into(), free_port_udp_tcp().to_string()]);
    }
    let timeout_secs = match args.iter().position(|a| *a == "-timeout") {
        Some(i) => {
            args.get(i + 1).and_then(|v| parse_duration_secs(v)).unwrap_or(SIPP_DEFAULT_TIMEOUT_SECS as f64)
        }
        None => {
            full.extend(["-timeout".into(), format!("{SIPP_DEFAULT_TIMEOUT_SECS}s")]);
            SIPP_DEFAULT_TIMEOUT_SECS as f64
        }
    };
    if !has_flag(args, "-timeout_error") {
        full.push("-timeout_error".into());
    }
    if !has_flag(args, "-nostdin") {
        full.push("-nostdin".into());
    }
    let err_file = work.join("sipp-errors.log");
    let log_file = work.join("sipp-logs.log");
    if !has_flag(args, "-trace_err") {
        full.push("-trace_err".into());
        full.extend(["-error_file".into(), err_file.display().to_string()]);
    }
    if !has_flag(args, "-trace_logs") {
        full.push("-trace_logs".into());
        full.extend(["-log_file".into(), log_file.display().to_string()]);
    }
    (timeout_secs, err_file, log_file)
}

/// Default `-timeout` when the caller gives none.
pub const SIPP_DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Run SIPp in the foreground, e.g.
/// `sipp(&["127.0.0.1:5070", "-sf", scenario("options.xml").to_str().unwrap(), "-m", "1"])`.
///
/// Unless given, adds `-i 127.0.0.1`, `-p <free port>` (local SIP port; SIPp
/// would take 5060), `-cp <free port>` (control port, which SIPp binds on
/// 0.0.0.0:8888 otherwise), `-timeout 30s -timeout_error`, `-nostdin`, and
/// always `-trace_err -trace_logs` (read back into the result). SIPp runs in
/// a fresh temporary directory and is killed by PID if it outlives its
/// `-timeout` by 10 s (SIPp can hang on a bad scenario).
pub fn sipp(args: &[&str]) -> SippResult {
    let bin = require("sipp");
    let work = tempfile::Builder::new().prefix("huifang-sipp-").tempdir().expect("temp dir for sipp");
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if !has_flag(args, "-i") {
        full.extend(["-i".into(), LOCALHOST.into()]);
    }
    if !has_flag(args, "-p") {
        full.extend(["-p".into(), free_port_udp_tcp().to_string()]);
    }
    let (timeout_secs, err_file, log_file) = sipp_defaults(args, &mut full, work.path());
    let command = format!("sipp {}", full.join(" "));
    let guard = Duration::from_secs_f64(timeout_secs.max(1.0) + 10.0);

    let mut child = Command::new(bin)
        .args(&full)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
    let out_reader = drain(child.stdout.take().expect("stdout"));
    let err_reader = drain(child.stderr.take().expect("stderr"));
    let (status, killed) = wait_with_guard(&mut child, guard);
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    SippResult {
        success: status.map(|s| s.success()).unwrap_or(false),
        code: status.and_then(|s| s.code()),
        killed,
        stdout,
        stderr,
        errors: fs::read_to_string(&err_file).unwrap_or_default(),
        logs: fs::read_to_string(&log_file).unwrap_or_default(),
        command,
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child`; after `guard`, kill it (SIGKILL, by its PID) and reap it.
fn wait_with_guard(child: &mut Child, guard: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + guard;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let st = child.wait().ok();
                return (st, true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => return (None, false),
        }
    }
}

// ---------------------------------------------------------------- baresip

/// SIP transport of a baresip account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// How to start a baresip: one account.
#[derive(Debug, Clone)]
pub struct BaresipOpts {
    /// SIP user, e.g. `agent1` (AoR `sip:agent1@127.0.0.1:<registrar port>`).
    pub user: String,
    /// Digest password (test fixtures only).
    pub password: String,
    /// Registrar / domain `host:port`, e.g. `127.0.0.1:25060`.
    pub registrar: String,
    pub transport: Transport,
    /// Registration interval (Expires) in seconds; 0 = do not register.
    pub regint: u32,
    /// `auto` answers incoming calls, `manual` waits for `accept`.
    pub answermode: String,
    /// WAV played into calls: 8000 Hz mono 16-bit (G.711 rate). Baresip hangs
    /// up when it ends, so pad it (`sox in.wav out.wav pad 0 20`). `None`: a
    /// generated silence of `silence_secs`.
    pub audio_source: Option<PathBuf>,
    pub silence_secs: u32,
    /// Extra `;key=value` account parameters, appended verbatim.
    pub extra_account_params: String,
    /// Start with `-s`: every SIP message sent/received goes to `log()`.
    pub sip_trace: bool,
}

impl BaresipOpts {
    /// An account registering `user` with `password` at `registrar` over UDP,
    /// regint 60 s, auto-answer, silent audio.
    pub fn new(user: &str, password: &str, registrar: &str) -> Self {
        BaresipOpts {
            user: user.into(),
            password: password.into(),
            registrar: registrar.into(),
            transport: Transport::Udp,
            regint: 60,
            answermode: "auto".into(),
            audio_source: None,
            silence_secs: 120,
            extra_account_params: String::new(),
            sip_trace: false,
        }
    }

    pub fn transport(mut self, t: Transport) -> Self {
        self.transport = t;
        self
    }

    pub fn regint(mut self, secs: u32) -> Self {
        self.regint = secs;
        self
    }

    pub fn answermode(mut self, mode: &str) -> Self {
        self.answermode = mode.into();
        self
    }

    pub fn sip_trace(mut self, on: bool) -> Self {
        self.sip_trace = on;
        self
    }

    pub fn audio_source(mut self, wav: impl Into<PathBuf>) -> Self {
        self.audio_source = Some(wav.into());
        self
    }

    /// The accounts-file line.
    pub fn account_line(&self) -> String {
        format!(
            "<sip:{}@{};transport={}>;auth_pass={};answermode={};regint={}{}",
            self.user,
            self.registrar,
            self.transport.as_str(),
            self.password,
            self.answermode,
            self.regint,
            self.extra_account_params
        )
    }
}

/// A running baresip with its own temporary config directory. Dropping it
/// asks it to quit (it then unregisters), and kills it by PID if it lingers.
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    log_path: PathBuf,
    pub opts: BaresipOpts,
    /// SIP port (UDP and TCP) on 127.0.0.1; baresip also listens on TCP port+1.
    pub sip_port: u16,
    /// ctrl_tcp port on 127.0.0.1.
    pub ctrl_port: u16,
}

/// Write a WAV of silence: 8000 Hz, mono, 16-bit.
pub fn write_silence_wav(path: &Path, secs: u32) -> io::Result<()> {
    let rate: u32 = 8000;
    let data_len = rate * 2 * secs;
    let mut f = io::BufWriter::new(fs::File::create(path)?);
    f.write_all(b"RIFF")?;
    f.write_all(&(36 + data_len).to_le_bytes())?;
    f.write_all(b"WAVEfmt ")?;
    f.write_all(&16u32.to_le_bytes())?;
    f.write_all(&1u16.to_le_bytes())?; // PCM
    f.write_all(&1u16.to_le_bytes())?; // mono
    f.write_all(&rate.to_le_bytes())?;
    f.write_all(&(rate * 2).to_le_bytes())?; // byte rate
    f.write_all(&2u16.to_le_bytes())?; // block align
    f.write_all(&16u16.to_le_bytes())?; // bits
    f.write_all(b"data")?;
    f.write_all(&data_len.to_le_bytes())?;
    let zeros = vec![0u8; 16000];
    let mut left = data_len as usize;
    while left > 0 {
        let n = left.min(zeros.len());
        f.write_all(&zeros[..n])?;
        left -= n;
    }
    f.flush()
}

/// Remove ANSI colour sequences (baresip colours failures red).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Baresip {
    /// Start baresip with a fresh config dir: modules `g711 aufile sndfile
    /// alsa account contact menu ctrl_tcp`, `sip_listen 127.0.0.1:<free>`,
    /// `ctrl_tcp_listen 127.0.0.1:<free>`, `audio_player alsa,null`,
    /// `net_interface 127.0.0.1`, `dns_server 127.0.0.1:53` (baresip binds its
    /// DNS and RTP sockets on 0.0.0.0 whatever; everything it is told to
    /// reach is on 127.0.0.1). stdout and stderr go to `log()`.
    pub fn spawn(opts: BaresipOpts) -> Baresip {
        let bin = require("baresip");
        let dir =
            tempfile::Builder::new().prefix("huifang-baresip-").tempdir().expect("temp dir for baresip");
        // baresip listens on TCP sip_port+1 as well
        let sip_port = free_port_where(|p| p < u16::MAX && port_free_tcp(p + 1));
        let ctrl_port = free_port_tcp();
        let audio = match &opts.audio_source {
            Some(p) => p.clone(),
            None => {
                let p = dir.path().join("silence.wav");
                write_silence_wav(&p, opts.silence_secs).expect("write silence.wav");
                p
            }
        };
        let snd = dir.path().join("snd");
        fs::create_dir_all(&snd).expect("mkdir snd");
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{LOCALHOST}:{sip_port}\n\
             call_local_timeout\t120\n\
             call_max_calls\t\t4\n\
             audio_player\t\talsa,null\n\
             audio_source\t\taufile,{audio}\n\
             audio_alert\t\talsa,null\n\
             audio_level\t\tno\n\
             net_interface\t\t{LOCALHOST}\n\
             dns_server\t\t{LOCALHOST}:53\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\tsndfile.so\n\
             module\t\t\talsa.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tcontact.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t{LOCALHOST}:{ctrl_port}\n\
             snd_path\t\t{snd}\n",
            audio = audio.display(),
            snd = snd.display(),
        );
        fs::write(dir.path().join("config"), config).expect("write config");
        fs::write(dir.path().join("accounts"), format!("{}\n", opts.account_line())).expect("write accounts");
        fs::write(dir.path().join("contacts"), "").expect("write contacts");
        let log_path = dir.path().join("baresip.log");
        let log = fs::File::create(&log_path).expect("create baresip.log");
        let log2 = log.try_clone().expect("clone log fd");
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(dir.path());
        if opts.sip_trace {
            cmd.arg("-s");
        }
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn baresip: {e}"));
        Baresip { child, dir, log_path, opts, sip_port, ctrl_port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config directory (config, accounts, snd/ recordings).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where sndfile writes `dump-<time>-dec.wav` (heard) / `-enc.wav` (sent).
    pub fn snd_dir(&self) -> PathBuf {
        self.dir.path().join("snd")
    }

    /// Everything baresip printed so far, ANSI colours removed.
    pub fn log(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait until a log line satisfies `pred`; false on timeout or exit.
    pub fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().lines().any(&pred) {
                return true;
            }
            if Instant::now() >= deadline || !self.is_running() {
                // one last look: the line may have been written just before exit
                return self.log().lines().any(&pred);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the registration OK line, e.g.
    /// `agent1@127.0.0.1: {0/UDP/v4} 200 OK (huifang-test-kamailio) [1 binding]`.
    /// Returns false on timeout, on exit, or as soon as a registration
    /// failure line (`reg: sip:agent1@127.0.0.1:25060: 401 Unauthorized (...)`)
    /// appears.
    pub fn wait_registered(&mut self, timeout: Duration) -> bool {
        let ok_prefix = format!("{}@", self.opts.user);
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            for line in log.lines() {
                if is_reg_ok_line(line, &ok_prefix) {
                    return true;
                }
                if is_reg_fail_line(line) {
                    return false;
                }
            }
            if Instant::now() >= deadline || !self.is_running() {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send one ctrl_tcp command (JSON in a netstring) and return the JSON
    /// response text, skipping event messages. baresip keeps only its newest
    /// ctrl_tcp connection, so each call opens its own.
    pub fn ctrl(&self, command: &str, params: &str) -> io::Result<String> {
        let mut s = TcpStream::connect((LOCALHOST, self.ctrl_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let body = format!(
            "{{\"command\":\"{}\",\"params\":\"{}\",\"token\":\"hf\"}}",
            json_escape(command),
            json_escape(params)
        );
        s.write_all(format!("{}:{},", body.len(), body).as_bytes())?;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // parse complete netstrings from buf
            while let Some((msg, used)) = parse_netstring(&buf) {
                buf.drain(..used);
                if msg.contains("\"response\"") {
                    return Ok(msg);
                }
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "ctrl_tcp closed before responding",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// `reginfo` via ctrl_tcp (colours removed).
    pub fn reginfo(&self) -> io::Result<String> {
        self.ctrl("reginfo", "").map(|s| strip_ansi(&s))
    }

    pub fn dial(&self, uri: &str) -> io::Result<String> {
        self.ctrl("dial", uri)
    }

    pub fn accept(&self) -> io::Result<String> {
        self.ctrl("accept", "")
    }

    pub fn hangup(&self) -> io::Result<String> {
        self.ctrl("hangup", "")
    }

    /// Ask baresip to quit, wait up to `grace`, then kill it by PID. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        let _ = self.ctrl("quit", "");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_reg_ok_line(line: &str, user_at: &str) -> bool {
    // "agent1@127.0.0.1: {0/UDP/v4} 200 OK (server) [1 binding]"
    line.starts_with(user_at) && line.contains("} 200 ") && line.contains("binding")
}

fn is_reg_fail_line(line: &str) -> bool {
    // "reg: sip:agent1@127.0.0.1:25060: 401 Unauthorized (server)"
    let Some(rest) = line.strip_prefix("reg: ") else {
        return false;
    };
    rest.split(": ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|c| c.parse::<u16>().ok())
        .map(|c| c >= 300)
        .unwrap_or(true)
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// `LEN:DATA,` -> (DATA, bytes used), if complete.
fn parse_netstring(buf: &[u8]) -> Option<(String, usize)> {
    let colon = buf.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&buf[..colon]).ok()?.trim().parse().ok()?;
    let end = colon + 1 + len;
    if buf.len() < end + 1 {
        return None;
    }
    let msg = String::from_utf8_lossy(&buf[colon + 1..end]).into_owned();
    Some((msg, end + 1))
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- baresip {} (pid {}) log tail:\n{}",
                self.opts.user,
                self.child.id(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------- calls and media
//
// Additions for call tests: SIPp running in the background as the client's
// phone (tests/peers/client-*.xml, streaming a μ-law WAV), baresip call
// control (established / closed, hold / resume / mute) and its sndfile dumps.
// Audio checks on recordings are in `audio`.

/// File name, in SIPp's working directory, that the `client-*.xml` scenarios
/// stream with `<exec rtp_stream="stream-ulaw.wav,-1,0"/>` (SIPp 3.6.1 reads
/// the file when it loads the scenario and substitutes no `-key` there).
pub const SIPP_STREAM_FILE: &str = "stream-ulaw.wav";

/// Is a UDP socket bound to 127.0.0.1:`port` (or 0.0.0.0:`port`)? Reads
/// /proc/net/udp, so probing does not race the program binding it.
pub fn udp_port_bound(port: u16) -> bool {
    let Ok(table) = fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    let want = [format!("0100007F:{port:04X}"), format!("00000000:{port:04X}")];
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|local| want.iter().any(|w| w == local))
}

/// A SIPp running in the background, e.g. a client-phone UAS waiting for
/// huifang's INVITE. `wait()` returns its `SippResult`; dropping it without
/// waiting kills SIPp (by PID) and reaps it.
pub struct SippProcess {
    /// Local SIP port (UDP and TCP) on 127.0.0.1.
    pub sip_port: u16,
    /// `127.0.0.1:sip_port`
    pub addr: SocketAddr,
    /// The full command line, for messages.
    pub command: String,
    child: Option<Child>,
    work: Option<tempfile::TempDir>,
    err_file: PathBuf,
    log_file: PathBuf,
    out_reader: Option<thread::JoinHandle<String>>,
    err_reader: Option<thread::JoinHandle<String>>,
    guard: Duration,
    started: Instant,
}

/// Start SIPp in the background, with the same defaults as `sipp()` (`-i`,
/// `-p <free>`, `-cp <free>`, `-timeout 30s -timeout_error`, `-nostdin`,
/// traces) plus `-mi 127.0.0.1` (media on loopback). If `stream_wav` is
/// given (an 8000 Hz μ-law WAV, e.g. `audio::fixture(audio::CLIENT_ULAW_WAV)`)
/// it is copied into SIPp's fresh working directory as `SIPP_STREAM_FILE`.
/// Returns once SIPp has bound its SIP port (panics after 5 s, or if SIPp
/// exits first, e.g. on a scenario error).
pub fn sipp_spawn(args: &[&str], stream_wav: Option<&Path>) -> SippProcess {
    let bin = require("sipp");
    let work = tempfile::Builder::new().prefix("huifang-sipp-").tempdir().expect("temp dir for sipp");
    if let Some(src) = stream_wav {
        fs::copy(src, work.path().join(SIPP_STREAM_FILE))
            .unwrap_or_else(|e| panic!("copy {} for SIPp: {e}", src.display()));
    }
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if !has_flag(args, "-i") {
        full.extend(["-i".into(), LOCALHOST.into()]);
    }
    if !has_flag(args, "-mi") {
        full.extend(["-mi".into(), LOCALHOST.into()]);
    }
    let sip_port: u16 = match args.iter().position(|a| *a == "-p") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("sipp_spawn: bad -p in {args:?}")),
        None => {
            let p = free_port_udp_tcp();
            full.extend(["-p".into(), p.to_string()]);
            p
        }
    };
    let (timeout_secs, err_file, log_file) = sipp_defaults(args, &mut full, work.path());
    let command = format!("sipp {}", full.join(" "));
    let mut child = Command::new(bin)
        .args(&full)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
    let out_reader = drain(child.stdout.take().expect("stdout"));
    let err_reader = drain(child.stderr.take().expect("stderr"));
    let mut proc = SippProcess {
        sip_port,
        addr: format!("{LOCALHOST}:{sip_port}").parse().unwrap(),
        command,
        child: Some(child),
        work: Some(work),
        err_file,
        log_file,
        out_reader: Some(out_reader),
        err_reader: Some(err_reader),
        guard: Duration::from_secs_f64(timeout_secs.max(1.0) + 10.0),
        started: Instant::now(),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if udp_port_bound(sip_port) {
            return proc;
        }
        let exited = proc.child.as_mut().map(|c| matches!(c.try_wait(), Ok(Some(_)))).unwrap_or(true);
        if exited || Instant::now() >= deadline {
            let r = proc.finish(Duration::from_secs(1));
            panic!("SIPp did not start listening on {}: {r}", r.command);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The client's phone: `tests/peers/<scenario_name>` as a UAS (one call,
/// `-m 1`) streaming `stream_wav` if given, plus `extra` arguments (e.g.
/// `["-set", "ring_ms", "2000", "-timeout", "60s"]`). Point huifang at
/// `proc.uri("client1")`.
pub fn sipp_uas(scenario_name: &str, stream_wav: Option<&Path>, extra: &[&str]) -> SippProcess {
    let sf = scenario(scenario_name);
    let sf = sf.to_str().expect("utf-8 path").to_string();
    let mut args: Vec<&str> = vec!["-sf", &sf];
    if !has_flag(extra, "-m") {
        args.extend(["-m", "1"]);
    }
    args.extend_from_slice(extra);
    sipp_spawn(&args, stream_wav)
}

impl SippProcess {
    /// `sip:<user>@127.0.0.1:<sip_port>`
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{LOCALHOST}:{}", self.sip_port)
    }

    /// SIPp's working directory (its stream file; traces).
    pub fn work_dir(&self) -> &Path {
        self.work.as_ref().expect("work dir").path()
    }

    /// True while SIPp runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().map(|c| matches!(c.try_wait(), Ok(None))).unwrap_or(false)
    }

    /// What the scenario's `<log>` actions wrote so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Wait for SIPp to exit (killing it by PID once its `-timeout` + 10 s
    /// have passed since it started) and collect everything it said.
    pub fn wait(mut self) -> SippResult {
        let left = self.guard.saturating_sub(self.started.elapsed());
        self.finish(left)
    }

    /// Kill SIPp now (by PID) and collect its output.
    pub fn kill(mut self) -> SippResult {
        self.finish(Duration::ZERO)
    }

    fn finish(&mut self, guard: Duration) -> SippResult {
        let (status, killed) = match self.child.as_mut() {
            Some(c) => wait_with_guard(c, guard),
            None => (None, false),
        };
        self.child = None;
        let stdout = self.out_reader.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = self.err_reader.take().and_then(|h| h.join().ok()).unwrap_or_default();
        SippResult {
            success: status.map(|s| s.success()).unwrap_or(false),
            code: status.and_then(|s| s.code()),
            killed,
            stdout,
            stderr,
            errors: fs::read_to_string(&self.err_file).unwrap_or_default(),
            logs: fs::read_to_string(&self.log_file).unwrap_or_default(),
            command: self.command.clone(),
        }
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Baresip {
    /// `ctrl`, but an error unless baresip answered `"ok":true` (unknown
    /// commands answer `"ok":false` with "command not found").
    pub fn ctrl_ok(&self, command: &str, params: &str) -> io::Result<String> {
        let r = self.ctrl(command, params)?;
        if r.contains("\"ok\":true") {
            Ok(r)
        } else {
            Err(io::Error::other(format!("ctrl_tcp {command} {params:?}: {r}")))
        }
    }

    /// Put the current call on hold: a re-INVITE with `a=sendonly` (baresip
    /// 1.0 menu command `hold`; log `call: hold <peer uri>`; the peer logs
    /// `call: got re-INVITE (SDP Offer)`).
    ///
    /// Quirk: after any re-INVITE baresip 1.0's sndfile `-dec.wav` stops
    /// growing (on both phones; `-enc.wav` goes on): check audio heard after
    /// a hold/resume in huifang's recording, not in `heard_wav()`.
    pub fn hold(&self) -> io::Result<String> {
        self.ctrl_ok("hold", "")
    }

    /// Take the current call off hold: re-INVITE with `a=sendrecv` (command
    /// `resume`; log `call: resume <peer uri>`).
    pub fn resume(&self) -> io::Result<String> {
        self.ctrl_ok("resume", "")
    }

    /// Toggle the microphone of the current call (command `mute`: it sends
    /// silence while muted, no re-INVITE). Returns true if now muted.
    pub fn toggle_mute(&self) -> io::Result<bool> {
        let r = self.ctrl_ok("mute", "")?;
        Ok(r.contains("call muted"))
    }

    /// Length of the log so far: a mark for `wait_for_line_after`.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// Like `wait_for_line`, looking only at what was logged after `mark`
    /// (from `log_mark()`): for the second call of a phone, a second hold...
    pub fn wait_for_line_after(
        &mut self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let found = |log: &str| log.get(mark..).unwrap_or("").lines().any(&pred);
            if found(&self.log()) {
                return true;
            }
            if Instant::now() >= deadline || !self.is_running() {
                return found(&self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for `<user>@<domain>: Call established: <peer uri>` (either
    /// direction) after `mark` (0: since start).
    pub fn wait_call_established(&mut self, mark: usize, timeout: Duration) -> bool {
        self.wait_for_line_after(mark, timeout, is_call_established_line)
    }

    /// Wait for the end of a call after `mark` (0: since start): a BYE either
    /// way (`... Call with <peer> terminated (duration: N secs)`, which
    /// follows `... session closed: Connection reset by peer` on a remote
    /// BYE), a refused call (`<peer>: session closed: 486 Busy Here`), or
    /// our own hang-up (`call: terminate call '<id>' with <peer>`: the only
    /// line when we cancel an unanswered call).
    pub fn wait_call_closed(&mut self, mark: usize, timeout: Duration) -> bool {
        self.wait_for_line_after(mark, timeout, is_call_closed_line)
    }

    /// The newest sndfile dump of what this phone heard (`snd_dir()/dump-
    /// <YYYY-MM-DD-hh-mm-ss>-dec.wav`, 8000 Hz mono s16 with G.711; one per
    /// call, header final only at hang-up, but `audio::read_wav` reads it
    /// while it grows). See the hold quirk on `hold()`.
    pub fn heard_wav(&self) -> Option<PathBuf> {
        audio::baresip_dump(&self.snd_dir(), "dec")
    }

    /// The newest sndfile dump of what this phone sent (`...-enc.wav`).
    pub fn sent_wav(&self) -> Option<PathBuf> {
        audio::baresip_dump(&self.snd_dir(), "enc")
    }
}

/// `agent1@127.0.0.1: Call established: sip:client1@127.0.0.1:5090` (baresip
/// colours nothing here; status lines may precede it on the same line).
pub fn is_call_established_line(line: &str) -> bool {
    line.contains(": Call established: ")
}

/// See `Baresip::wait_call_closed`.
pub fn is_call_closed_line(line: &str) -> bool {
    (line.contains(": Call with ") && line.contains(" terminated"))
        || line.contains(": session closed: ")
        || line.contains("call: terminate call ")
}

pub mod audio;
#[macro_use]
pub mod db;
pub mod dialer;
pub mod huifang;
pub mod s3;
pub mod site;
pub mod softphone;
