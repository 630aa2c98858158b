//! RFC 4475 section 3, all of it: each torture message, byte for byte as the
//! RFC's own archive has it (`tests/fixtures/rfc4475/`), sent to a running
//! huifang over UDP and over TCP, and the answer compared with
//! `tests/fixtures/rfc4475/huifang.txt` — which says, per message, what
//! huifang answers and why that is what the RFC asks (`expect.txt` beside
//! it quotes the RFC).
//!
//! Over UDP a response goes where RFC 3261 §18.2.2 sends it: to the source
//! address (`received`, the messages' sent-by hosts are names or other
//! addresses) at the Via's port, 5060 when it names none. So each message is
//! sent from its own loopback address (`127.0.44.N`) bound at that port,
//! which is where its answer must arrive. Over TCP it comes back on the
//! connection; each message gets a fresh one, and every response on it is
//! collected (a stream may carry a second request: `dblreq.dat`).
//!
//! The messages reuse branches: the same branch, sent-by and method is one
//! transaction (§17.2.3) — over UDP `cparam02.dat` would be answered as a
//! retransmission of `cparam01.dat`. So each transport gets its own huifang,
//! and a message whose transaction key an earlier one had goes to another
//! (the [`Fleet`]).

use crate::common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::huifang::Huifang;
use huifang::sip::msg::Message;

/// How long to wait for an answer that must come, and for one that must not.
const ANSWER: Duration = Duration::from_secs(2);
const SILENCE: Duration = Duration::from_millis(500);

struct Case {
    file: String,
    /// The Via port the UDP answer goes to.
    port: u16,
    udp: String,
    tcp: String,
    raw: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let dir = common::repo_root().join("tests/fixtures/rfc4475");
    let table = std::fs::read_to_string(dir.join("huifang.txt")).unwrap();
    let cases: Vec<Case> = table
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "huifang.txt: `{l}`: want `file port=N udp=X tcp=Y`");
            let field = |i: usize, key: &str| {
                f[i].strip_prefix(key).unwrap_or_else(|| panic!("huifang.txt: `{l}`: no {key}")).to_string()
            };
            let raw = std::fs::read(dir.join(f[0])).unwrap();
            Case {
                file: f[0].to_string(),
                port: field(1, "port=").parse().unwrap(),
                udp: field(2, "udp="),
                tcp: field(3, "tcp="),
                raw,
            }
        })
        .collect();
    // every message of the RFC has its line
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    assert_eq!(listed, files, "huifang.txt must list every message once");
    assert_eq!(files.len(), 49, "RFC 4475 section 3 has 49 messages");
    cases
}

/// The status codes of the response heads in `bytes`, comma-separated;
/// `none` when there are none.
fn statuses(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = &rest[..i];
        let line =
            String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or_default()).into_owned();
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some("SIP/2.0"), Some(code)) => out.push(code.to_string()),
            _ => out.push("garbage".into()),
        }
        // skip the body by its Content-Length (our responses have none)
        rest = &rest[i + 4..];
    }
    if out.is_empty() { "none".into() } else { out.join(",") }
}

/// huifangs enough that no two messages with one transaction key meet.
struct Fleet {
    members: Vec<(Huifang, HashSet<String>)>,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet { members: vec![(Huifang::start("", ""), HashSet::new())] }
    }

    /// The huifang that has not seen `raw`'s transaction key.
    fn for_message(&mut self, raw: &[u8]) -> &mut Huifang {
        let key = Message::parse(raw)
            .ok()
            .and_then(|m| {
                let via = m.top_via().ok()?;
                Some(format!("{:?} {}:{:?} {:?}", via.branch(), via.host, via.port, m.cseq().ok()?.method))
            })
            .unwrap_or_default();
        let i = match self.members.iter().position(|(_, seen)| key.is_empty() || !seen.contains(&key)) {
            Some(i) => i,
            None => {
                self.members.push((Huifang::start("", ""), HashSet::new()));
                self.members.len() - 1
            }
        };
        self.members[i].1.insert(key);
        &mut self.members[i].0
    }

    fn logs(&self) -> String {
        self.members.iter().map(|(h, _)| h.log()).collect::<Vec<_>>().join("\n---\n")
    }

    /// Every member is alive and still answers OPTIONS.
    fn all_well(&mut self) {
        for (h, _) in &mut self.members {
            assert!(h.is_running(), "huifang died:\n{}", h.log());
            assert!(common::sip_options_ping(h.addr, Duration::from_secs(2)).is_ok(), "OPTIONS unanswered");
        }
    }
}

#[test]
fn every_rfc4475_message_over_udp() {
    let mut fleet = Fleet::new();
    let mut wrong = Vec::new();
    for (i, c) in corpus().iter().enumerate() {
        let h = fleet.for_message(&c.raw);
        let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 44, 10 + i as u8), c.port);
        let sock = UdpSocket::bind(from).unwrap_or_else(|e| panic!("binding {from} for {}: {e}", c.file));
        sock.send_to(&c.raw, h.addr).unwrap();
        let wait = if c.udp == "none" { SILENCE } else { ANSWER };
        sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 65536];
        let got = match sock.recv(&mut buf) {
            Ok(n) => statuses(&buf[..n]),
            Err(_) => "none".into(),
        };
        if got != c.udp {
            wrong.push(format!("{}: want {}, got {got}", c.file, c.udp));
        }
    }
    assert!(wrong.is_empty(), "over UDP:\n{}\nhuifang logs:\n{}", wrong.join("\n"), fleet.logs());
    fleet.all_well();
}

#[test]
fn every_rfc4475_message_over_tcp() {
    let mut fleet = Fleet::new();
    let mut wrong = Vec::new();
    for c in corpus() {
        let h = fleet.for_message(&c.raw);
        let mut s = TcpStream::connect(h.addr).unwrap();
        s.write_all(&c.raw).unwrap();
        let wait = if c.tcp == "none" { SILENCE } else { ANSWER };
        let got = statuses(&read_until_quiet(&mut s, wait, c.tcp.split(',').count()));
        if got != c.tcp {
            wrong.push(format!("{}: want {}, got {got}", c.file, c.tcp));
        }
    }
    assert!(wrong.is_empty(), "over TCP:\n{}\nhuifang logs:\n{}", wrong.join("\n"), fleet.logs());
    fleet.all_well();
}

/// Reads until `want` response heads came, the peer closed, or `wait`
/// passed.
fn read_until_quiet(s: &mut TcpStream, wait: Duration, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).filter(|w| *w == b"\r\n\r\n").count() >= want {
                    // a little longer: nothing more may follow
                    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                    if let Ok(n) = s.read(&mut chunk) {
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break;
                }
            }
        }
    }
    buf
}

/// RFC 4475 3.3.12–3.3.14: "This REGISTER should succeed" — once it carries
/// credentials (huifang's registrar challenges first) — and the binding
/// keeps what belongs to the contact URI and only that: `unknownparam`
/// outside the angle brackets is a contact parameter, not part of the URI
/// (3.3.12); inside, it is a URI parameter the binding must return
/// (3.3.13); and an escaped Route header in the URI comes back escaped
/// (3.3.14).
#[test]
fn rfc4475_registers_succeed_with_credentials_and_keep_their_contacts() {
    let h = Huifang::start(
        "",
        "[[sip.users]]\nname = \"watson\"\npassword = \"watson-test-secret\"\n\n\
         [[sip.users]]\nname = \"user\"\npassword = \"user-test-secret\"\n",
    );
    let cases = [
        ("cparam01.dat", "watson", "watson-test-secret", "<sip:+19725552222@gw1.example.net>"),
        ("cparam02.dat", "watson", "watson-test-secret", "<sip:+19725552222@gw1.example.net;unknownparam>"),
        (
            "regescrt.dat",
            "user",
            "user-test-secret",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
        ),
    ];
    let dir = common::repo_root().join("tests/fixtures/rfc4475");
    for (file, user, password, bound) in cases {
        let raw = std::fs::read(dir.join(file)).unwrap();
        let mut s = TcpStream::connect(h.addr).unwrap();
        s.write_all(&raw).unwrap();
        let first = Message::parse(&read_until_quiet(&mut s, ANSWER, 1)).expect("a response");
        assert_eq!(first.status(), Some(401), "{file}: {first:?}");
        let challenge: huifang::sip::auth::Challenge =
            first.header("WWW-Authenticate").expect("a challenge").parse().unwrap();
        let creds = huifang::sip::auth::DigestClient::new(user, password).respond(
            &challenge,
            "REGISTER",
            "sip:example.com",
            b"",
        );
        // the same request again, as its sender would: the credentials, the
        // next CSeq, a new branch
        let mut again = Message::parse(&raw).unwrap();
        let cseq = again.cseq().unwrap().seq + 1;
        let mut via = again.top_via().unwrap();
        via.params.set("branch", Some("z9hG4bK-rfc4475-again"));
        again.set_top_via(&via);
        let again = String::from_utf8(again.to_bytes()).unwrap();
        let again = again
            .replacen(&format!("CSeq: {} REGISTER", cseq - 1), &format!("CSeq: {cseq} REGISTER"), 1)
            .replacen("\r\n\r\n", &format!("\r\nAuthorization: {creds}\r\n\r\n"), 1);
        s.write_all(again.as_bytes()).unwrap();
        let ok = Message::parse(&read_until_quiet(&mut s, ANSWER, 1)).expect("a response");
        assert_eq!(ok.status(), Some(200), "{file}: {ok:?}\n{}", h.log());
        // every binding of the user is listed (cparam01's stays beside
        // cparam02's: huifang matches bindings by the URI as written)
        let contacts: Vec<&str> = ok.header_values("Contact").collect();
        assert!(
            contacts.iter().any(|c| c.starts_with(bound) && c.contains(";expires=")),
            "{file}: the bindings are {contacts:?}, want {bound}"
        );
    }
}
