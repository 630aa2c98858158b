use super::*;

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

#[test]
fn parses_rfc3261_invite() {
    let m = Message::parse(INVITE.as_bytes()).unwrap();
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(m.request_uri().unwrap().user(), Some("bob"));
    assert_eq!(m.call_id(), Some("a84b4c76e66710@pc33.atlanta.example.com"));
    assert_eq!(m.cseq().unwrap().seq, 314159);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(m.from_tag().as_deref(), Some("1928301774"));
    assert_eq!(m.to_tag(), None);
    assert_eq!(&m.body[..], b"v=0\n");
}

#[test]
fn round_trip() {
    let m = Message::parse(INVITE.as_bytes()).unwrap();
    let again = Message::parse(&m.to_bytes()).unwrap();
    assert_eq!(m, again);
}

#[test]
fn trailing_octets_in_datagram_are_dropped() {
    let mut buf = INVITE.as_bytes().to_vec();
    buf.extend_from_slice(b"garbage after the body");
    let m = Message::parse(&buf).unwrap();
    assert_eq!(&m.body[..], b"v=0\n");
}

#[test]
fn content_length_larger_than_datagram() {
    let buf = INVITE.replace("Content-Length: 4", "Content-Length: 400");
    let r = Message::parse(buf.as_bytes()).unwrap_err();
    assert_eq!(r.error, ParseError::ContentLength { declared: 400, available: 4 });
    // The head was fine: a 400 can still be built.
    assert!(r.partial.is_some());
}

#[test]
fn missing_mandatory_header_keeps_partial() {
    let buf = INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", "");
    let r = Message::parse(buf.as_bytes()).unwrap_err();
    assert_eq!(r.error, ParseError::MissingHeader("Call-ID"));
    assert_eq!(r.to_string(), "missing mandatory header Call-ID");
}

#[test]
fn cseq_method_mismatch() {
    let buf = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
    assert_eq!(Message::parse(buf.as_bytes()).unwrap_err().error, ParseError::CSeqMethodMismatch);
}

#[test]
fn compact_form_message() {
    let buf = "OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n\
f: <sip:a@h>;tag=1\r\nt: <sip:h>\r\ni: cid\r\nCSeq: 01 OPTIONS\r\nl: 0\r\n\r\n";
    let m = Message::parse(buf.as_bytes()).unwrap();
    assert_eq!(m.call_id(), Some("cid"));
    assert_eq!(m.header("Content-Length"), Some("0"));
}

#[test]
fn errors_never_contain_the_message() {
    let buf =
        INVITE.replace("To: Bob <sip:bob@biloxi.example.com>", "To: Bob <sip:13800000000@biloxi.example.com");
    let r = Message::parse(buf.as_bytes()).unwrap_err();
    let text = format!("{r} {:?}", r);
    assert!(!text.contains("13800000000"), "{text}");
    assert!(!text.contains("biloxi"), "{text}");
}

#[test]
fn response_to_copies_the_right_headers() {
    let req = Message::parse(INVITE.as_bytes()).unwrap();
    let mut resp = Message::response_to(&req, 404);
    resp.ensure_to_tag("xyz");
    let printed = resp.to_bytes();
    let resp = Message::parse(&printed).unwrap();
    assert_eq!(resp.status(), Some(404));
    assert_eq!(resp.to_tag().as_deref(), Some("xyz"));
    assert_eq!(resp.header("Contact"), None);
    assert_eq!(resp.cseq().unwrap().method, Method::Invite);
}

#[test]
fn stream_framing_two_messages_and_keepalives() {
    let mut f = StreamFramer::new();
    let mut data = b"\r\n\r\n".to_vec();
    data.extend_from_slice(INVITE.as_bytes());
    data.extend_from_slice(INVITE.as_bytes());
    // Deliver one byte at a time: framing must not depend on read sizes.
    let mut got = Vec::new();
    for b in data {
        f.push(&[b]);
        while let Some(item) = f.next().unwrap() {
            got.push(item);
        }
    }
    assert!(matches!(got[0], StreamItem::Ping));
    assert!(matches!(got[1], StreamItem::Message(_)));
    assert!(matches!(got[2], StreamItem::Message(_)));
    assert_eq!(got.len(), 3);
    assert_eq!(f.buffered(), 0);
}

#[test]
fn stream_without_content_length_is_fatal() {
    let mut f = StreamFramer::new();
    f.push(INVITE.replace("Content-Length: 4\r\n", "").as_bytes());
    assert_eq!(f.next().unwrap_err().error, ParseError::StreamWithoutLength);
}

#[test]
fn stream_invalid_message_keeps_sync() {
    let mut f = StreamFramer::new();
    f.push(INVITE.replace("CSeq: 314159 INVITE", "CSeq: x INVITE").as_bytes());
    f.push(INVITE.as_bytes());
    assert!(matches!(f.next().unwrap(), Some(StreamItem::Invalid(_))));
    assert!(matches!(f.next().unwrap(), Some(StreamItem::Message(_))));
}

#[test]
fn stream_huge_content_length() {
    let mut f = StreamFramer::new();
    f.push(INVITE.replace("Content-Length: 4", "Content-Length: 99999999").as_bytes());
    assert!(matches!(f.next().unwrap_err().error, ParseError::TooLarge { .. }));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::parse(&data);
            let mut f = StreamFramer::new();
            f.push(&data);
            for _ in 0..8 { if !matches!(f.next(), Ok(Some(_))) { break; } }
        }

        #[test]
        fn mutated_invite_never_panics(pos in 0usize..INVITE.len(), byte in any::<u8>(), cut in 0usize..INVITE.len()) {
            let mut data = INVITE.as_bytes().to_vec();
            data[pos] = byte;
            let _ = Message::parse(&data);
            let _ = Message::parse(&data[..cut]);
        }

        #[test]
        fn parsed_messages_reprint_and_reparse(pos in 0usize..INVITE.len(), byte in any::<u8>()) {
            let mut data = INVITE.as_bytes().to_vec();
            data[pos] = byte;
            if let Ok(m) = Message::parse(&data) {
                let again = Message::parse(&m.to_bytes());
                prop_assert!(again.is_ok(), "reprint of a parsed message must parse: {:?}", again.err());
            }
        }
    }
}

/// The malformed corpus of `tests/fixtures/malformed/` at the parser
/// level: each case parses, or is refused with the status the endpoint
/// will answer, or is refused with nothing to answer.
#[test]
fn malformed_corpus_outcomes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/malformed");
    let expect = std::fs::read_to_string(dir.join("expect.txt")).unwrap();
    let mut n = 0;
    for line in expect.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let mut it = line.split_whitespace();
        let file = it.next().unwrap();
        let udp = it.next().unwrap().strip_prefix("udp=").unwrap();
        if udp == "skip" {
            continue;
        }
        let raw = std::fs::read(dir.join(file)).unwrap();
        let data = substitute(&raw, "UDP", 1);
        let outcome = match Message::parse(&data) {
            Ok(m) => format!("ok {}", m.method().unwrap()),
            Err(r) => match r.partial {
                Some(p) if p.is_request() && p.top_via().is_ok() => r.error.status().to_string(),
                _ => "none".into(),
            },
        };
        let ok = match udp {
            "404" => outcome == "ok INVITE",
            "501" => outcome.starts_with("ok "),
            other => outcome == other,
        };
        assert!(ok, "{file}: expected {udp}, got {outcome}");
        n += 1;
    }
    assert!(n >= 30, "the corpus has at least 30 cases, found {n}");
}

/// Fills the corpus placeholders.
pub fn substitute(raw: &[u8], transport: &str, case: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        let repl: Option<(usize, String)> = [
            ("{T}", transport.to_string()),
            ("{SRC}", "5999".to_string()),
            ("{CASE}", case.to_string()),
            ("{PORT}", "5070".to_string()),
        ]
        .into_iter()
        .find(|(k, _)| rest.starts_with(k.as_bytes()))
        .map(|(k, v)| (k.len(), v));
        match repl {
            Some((len, v)) => {
                out.extend_from_slice(v.as_bytes());
                i += len;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

/// An RFC 4475 torture message (`tests/fixtures/rfc4475/`), as a datagram.
fn torture(name: &str) -> Result<Message, Rejected> {
    let path = format!("{}/tests/fixtures/rfc4475/{name}", env!("CARGO_MANIFEST_DIR"));
    Message::parse(&std::fs::read(&path).unwrap())
}

#[test]
fn rfc4475_valid_messages_parse() {
    // 3.1.1: "a parser must accept" each; their answers are pinned in
    // tests/sip/torture.rs
    for name in [
        "wsinv.dat",
        "intmeth.dat",
        "esc01.dat",
        "escnull.dat",
        "esc02.dat",
        "lwsdisp.dat",
        "longreq.dat",
        "dblreq.dat",
        "semiuri.dat",
        "transports.dat",
        "mpart01.dat",
        "unreason.dat",
        "noreason.dat",
        "badbranch.dat",
        "zeromf.dat",
        "cparam01.dat",
        "cparam02.dat",
        "regescrt.dat",
        "bcast.dat",
    ] {
        let m = torture(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(m.validate().is_ok(), "{name}: {:?}", m.validate());
    }
}

#[test]
fn rfc4475_short_tortuous_invite() {
    let m = torture("wsinv.dat").unwrap();
    assert_eq!(m.method(), Some(Method::Invite));
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.transport.as_str(), via.host.as_str(), via.branch()),
        ("UDP", "192.0.2.2", Some("390skdjuw"))
    );
    // the compact `v:` header holds two more Vias
    assert_eq!(m.header_values("Via").count(), 3);
    assert_eq!(m.to_tag().as_deref(), Some("1918181833n"));
    assert_eq!(m.from_tag().as_deref(), Some("98asjd8"));
    assert_eq!(m.cseq().unwrap().seq, 9);
    assert_eq!(m.number("Max-Forwards"), Some(68));
    assert_eq!(m.body.len(), 150);
}

#[test]
fn rfc4475_responses() {
    let m = torture("unreason.dat").unwrap();
    assert_eq!(m.status(), Some(200));
    let m = torture("noreason.dat").unwrap();
    assert_eq!(m.status(), Some(100));
    // a status code beyond 699, and a CSeq beyond 2^32 - 1: dropped
    assert!(torture("bigcode.dat").is_err());
    assert!(torture("scalarlg.dat").is_err());
}

#[test]
fn rfc4475_unknown_method_and_versions() {
    let m = torture("intmeth.dat").unwrap();
    assert!(
        matches!(m.method(), Some(Method::Other(ref s)) if &**s == "!interesting-Method0123456789_*+`.%indeed'~")
    );
    // SIP/7.0: refused, but the Via still says where the 505 goes
    let e = torture("badvers.dat").unwrap_err();
    assert_eq!(e.error.status(), 505);
    let p = e.partial.unwrap();
    assert!(p.top_via().is_err());
    assert_eq!(p.top_via_any_version().unwrap().host, "c.example.com");
    // spaces after SIP/2.0: malformed (400), not another version
    assert_eq!(torture("trws.dat").unwrap_err().error.status(), 400);
}
