//! The malformed corpus (`tests/fixtures/malformed/`, ≥ 30 messages written
//! for these tests) fed to a running huifang over UDP and TCP: no crash, the
//! expected answer (400, or 505/416/513/501 where the RFC says so) where a
//! response can be routed, silence where it cannot, and OPTIONS still
//! answered afterwards.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::huifang::Huifang;

struct Case {
    file: String,
    udp: String,
    tcp: String,
    raw: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let dir = common::repo_root().join("tests/fixtures/malformed");
    let expect = std::fs::read_to_string(dir.join("expect.txt")).unwrap();
    let cases: Vec<Case> = expect
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let file = it.next().unwrap().to_string();
            let udp = it.next().unwrap().trim_start_matches("udp=").to_string();
            let tcp = it.next().unwrap().trim_start_matches("tcp=").to_string();
            let raw = std::fs::read(dir.join(&file)).unwrap();
            Case { file, udp, tcp, raw }
        })
        .collect();
    assert!(cases.len() >= 30, "corpus has only {} cases", cases.len());
    cases
}

fn fill(raw: &[u8], t: &str, src: u16, case: usize, port: u16) -> Vec<u8> {
    let mut s = raw.to_vec();
    for (k, v) in [
        ("{T}", t.to_string()),
        ("{SRC}", src.to_string()),
        ("{CASE}", case.to_string()),
        ("{PORT}", port.to_string()),
    ] {
        s = replace_all(&s, k.as_bytes(), v.as_bytes());
    }
    s
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn status_of(resp: &[u8]) -> Option<String> {
    let line = resp.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let mut it = line.split_whitespace();
    (it.next()? == "SIP/2.0").then(|| it.next().map(str::to_string))?
}

#[test]
fn corpus_over_udp() {
    let h = Huifang::start("", "");
    let port = h.addr.port();
    for (i, c) in corpus().iter().enumerate().filter(|(_, c)| c.udp != "skip") {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let src = sock.local_addr().unwrap().port();
        sock.send_to(&fill(&c.raw, "UDP", src, i, port), h.addr).unwrap();
        let wait = if c.udp == "none" { 400 } else { 2000 };
        sock.set_read_timeout(Some(Duration::from_millis(wait))).unwrap();
        let mut buf = vec![0u8; 65536];
        let got = sock.recv(&mut buf).ok().map(|n| status_of(&buf[..n]).unwrap_or_else(|| "garbage".into()));
        let got = got.unwrap_or_else(|| "none".into());
        assert_eq!(got, c.udp, "{} over UDP; huifang log:\n{}", c.file, h.log());
    }
    assert!(
        common::sip_options_ping(h.addr, Duration::from_secs(2)).is_ok(),
        "OPTIONS unanswered after the corpus"
    );
}

#[test]
fn corpus_over_tcp() {
    let mut h = Huifang::start("", "");
    let port = h.addr.port();
    for (i, c) in corpus().iter().enumerate().filter(|(_, c)| c.tcp != "skip") {
        let mut s = TcpStream::connect(h.addr).unwrap();
        let src = s.local_addr().unwrap().port();
        s.write_all(&fill(&c.raw, "TCP", src, i, port)).unwrap();
        let wait = if c.tcp == "none" { 400 } else { 2000 };
        let got = read_response(&mut s, Duration::from_millis(wait));
        assert_eq!(got, c.tcp, "{} over TCP; huifang log:\n{}", c.file, h.log());
    }
    assert!(h.is_running(), "huifang died");
    // OPTIONS over a fresh TCP connection still gets its 200.
    let mut s = TcpStream::connect(h.addr).unwrap();
    let local = s.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:{a} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-after\r\nMax-Forwards: 70\r\n\
         From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:{a}>\r\nCall-ID: after@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        a = h.addr
    );
    s.write_all(options.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s, Duration::from_secs(2)), "200");
}

/// Reads one response head from a stream; its status, or `none` on
/// timeout/EOF without bytes.
fn read_response(s: &mut TcpStream, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(
            deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
        ))
        .unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    if buf.is_empty() { "none".into() } else { status_of(&buf).unwrap_or_else(|| "garbage".into()) }
}
