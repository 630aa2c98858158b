//! RTP header parsing (RFC 3550): a zero-copy view of one received packet.
//!
//! [`parse`] is called once per packet the relay receives; it borrows the
//! packet, allocates nothing and never panics, whatever the bytes. It skips
//! the CSRC list, the header extension and the padding, so
//! [`RtpView::payload`] is exactly the codec data. [`is_rtcp`] tells RTCP
//! apart when RTP and RTCP share a port (RFC 5761): [`parse`] refuses those,
//! so a relay that only wants media can call [`parse`] alone.
//!
//! The header is checked by `rtp-types`; this module only adapts its view so
//! that the payload borrows from the packet rather than from the parser.

use std::fmt;

use rtp_types::RtpPacket;

/// The fixed RTP header is 12 octets.
pub const HEADER_LEN: usize = 12;

/// The fields of one RTP packet the media path needs, borrowing its payload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// The marker bit (start of a talk spurt for audio, start of an event for
    /// telephone-events).
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp, in units of the payload's clock (8 kHz for G.711).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload without header, CSRCs, extension and padding.
    pub payload: &'a [u8],
}

impl fmt::Debug for RtpView<'_> {
    /// Prints the header and the payload *length* only: payloads are a
    /// conversation and never go to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtpView")
            .field("payload_type", &self.payload_type)
            .field("marker", &self.marker)
            .field("seq", &self.seq)
            .field("timestamp", &self.timestamp)
            .field("ssrc", &self.ssrc)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Parses an RTP packet. `None` for anything that is not a well-formed RTP
/// version 2 packet: too short, another version, CSRC list / extension /
/// padding running past the end, or RTCP multiplexed on the same port (see
/// [`is_rtcp`]). Never panics.
pub fn parse(packet: &[u8]) -> Option<RtpView<'_>> {
    if is_rtcp(packet) {
        return None;
    }
    let rtp = RtpPacket::parse(packet).ok()?;
    let start = rtp.payload_offset();
    let len = rtp.payload_len();
    let payload = packet.get(start..start.checked_add(len)?)?;
    Some(RtpView {
        payload_type: rtp.payload_type(),
        marker: rtp.marker_bit(),
        seq: rtp.sequence_number(),
        timestamp: rtp.timestamp(),
        ssrc: rtp.ssrc(),
        payload,
    })
}

/// Whether `packet` is RTCP rather than RTP, by the RFC 5761 §4 rule: version
/// 2 and a second octet in 192..=223 (RTCP packet types 192–223; seen as RTP
/// that is the marker bit with payload types 64–95, which RFC 5761 forbids for
/// RTP when multiplexing — this covers the SR/RR/SDES/BYE/APP range 200–204).
pub fn is_rtcp(packet: &[u8]) -> bool {
    match packet {
        [first, second, ..] => first >> 6 == 2 && (192..=223).contains(second),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds an RTP packet by hand (no helper from the crate under test).
    pub(crate) fn packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(HEADER_LEN + payload.len());
        p.push(0x80);
        p.push(pt & 0x7F | if marker { 0x80 } else { 0 });
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn plain_header() {
        let p = packet(8, true, 0xABCD, 0x0102_0304, 0xDEAD_BEEF, &[1, 2, 3]);
        let v = parse(&p).unwrap();
        assert_eq!(v.payload_type, 8);
        assert!(v.marker);
        assert_eq!(v.seq, 0xABCD);
        assert_eq!(v.timestamp, 0x0102_0304);
        assert_eq!(v.ssrc, 0xDEAD_BEEF);
        assert_eq!(v.payload, &[1, 2, 3]);
        assert!(!is_rtcp(&p));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        // V=2, P=1, X=1, CC=2
        let mut p = vec![0b1011_0010, 0, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // two CSRCs
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1]); // extension header, 1 word
        p.extend_from_slice(&[0x10, 0xAA, 0, 0]); // extension data
        p.extend_from_slice(&[0xD5, 0xD5, 0x2A]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 octets of padding
        let v = parse(&p).unwrap();
        assert_eq!(v.payload_type, 0);
        assert_eq!(v.seq, 7);
        assert_eq!(v.timestamp, 160);
        assert_eq!(v.ssrc, 9);
        assert_eq!(v.payload, &[0xD5, 0xD5, 0x2A]);
    }

    #[test]
    fn refuses_truncated_and_foreign() {
        let p = packet(0, false, 1, 2, 3, &[0; 160]);
        for len in 0..HEADER_LEN {
            assert!(parse(&p[..len]).is_none(), "len {len}");
        }
        assert!(parse(&p[..HEADER_LEN]).is_some(), "empty payload is fine");
        let mut v1 = p.clone();
        v1[0] = 0x40; // version 1
        assert!(parse(&v1).is_none());
        let mut cc = p[..HEADER_LEN].to_vec();
        cc[0] = 0x8F; // 15 CSRCs announced, none present
        assert!(parse(&cc).is_none());
        let mut pad = p[..HEADER_LEN + 2].to_vec();
        pad[0] |= 0x20;
        pad[HEADER_LEN + 1] = 200; // padding longer than the packet
        assert!(parse(&pad).is_none());
        pad[HEADER_LEN + 1] = 0; // zero padding count is invalid
        assert!(parse(&pad).is_none());
    }

    #[test]
    fn rtcp_is_recognised() {
        // An RTCP receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 5];
        assert!(is_rtcp(&rr));
        assert!(parse(&rr).is_none());
        let sr = [0x81, 200, 0, 6, 0, 0, 0, 5, 0, 0, 0, 0];
        assert!(is_rtcp(&sr));
        assert!(parse(&sr).is_none());
        // PT 72 without marker is plain (if unusual) RTP.
        assert!(!is_rtcp(&packet(72, false, 1, 1, 1, &[])));
        assert!(!is_rtcp(&[0x80]));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(v) = parse(&bytes) {
                prop_assert!(v.payload.len() <= bytes.len() - HEADER_LEN);
            }
            let _ = is_rtcp(&bytes);
        }

        #[test]
        fn mutated_packets_never_panic(
            first in any::<u8>(),
            cut in 0usize..64,
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut p = packet(0, false, 1, 2, 3, &tail);
            p[0] = 0x80 | (first & 0x3F);
            p.truncate(p.len().saturating_sub(cut));
            let _ = parse(&p);
        }

        #[test]
        fn built_packets_round_trip(
            pt in 0u8..128, marker: bool, seq: u16, ts: u32, ssrc: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let p = packet(pt, marker, seq, ts, ssrc, &payload);
            match parse(&p) {
                Some(v) => {
                    prop_assert_eq!((v.payload_type, v.marker, v.seq, v.timestamp, v.ssrc), (pt, marker, seq, ts, ssrc));
                    prop_assert_eq!(v.payload, &payload[..]);
                }
                None => prop_assert!(marker && (64..=95).contains(&pt)),
            }
        }
    }
}
