//! TCP: a CRLFCRLF keep-alive ping is answered with a CRLF pong (RFC 5626
//! §3.5.1), several requests on one connection are each answered on that
//! same connection (RFC 3261 §18.2.2), and two messages in one segment are
//! framed apart by Content-Length.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::huifang::Huifang;

fn options(h: &Huifang, local: std::net::SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:{a} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-ka{n}\r\nMax-Forwards: 70\r\n\
         From: <sip:t@127.0.0.1>;tag=k{n}\r\nTo: <sip:{a}>\r\nCall-ID: ka{n}@t\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n",
        a = h.addr
    )
}

fn read_until(s: &mut TcpStream, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !pred(&buf) {
        let n = s.read(&mut chunk).expect("huifang closed or did not answer");
        assert!(n > 0, "connection closed; got so far: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn ping_pong_and_reuse() {
    let h = Huifang::start("", "");
    let mut s = TcpStream::connect(h.addr).unwrap();
    let local = s.local_addr().unwrap();

    s.write_all(b"\r\n\r\n").unwrap();
    let pong = read_until(&mut s, |b| b.len() >= 2);
    assert_eq!(pong, b"\r\n", "pong must be a single CRLF");

    // Two requests in one write, then a third: three 200s on this socket.
    let mut two = options(&h, local, 1);
    two.push_str(&options(&h, local, 2));
    s.write_all(two.as_bytes()).unwrap();
    s.write_all(options(&h, local, 3).as_bytes()).unwrap();
    let got = read_until(&mut s, |b| count(b, b"SIP/2.0 200 OK") == 3);
    for n in 1..=3 {
        assert!(count(&got, format!("CSeq: {n} OPTIONS").as_bytes()) == 1, "answer {n} missing");
    }
}
