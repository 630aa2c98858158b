//! The softphone's media, pure parts: the RTP it sends every 20 ms and
//! where each packet it receives belongs in its recording.
//!
//! - [`Sender`] turns the prompt (8 kHz mono 16-bit samples) into 20 ms
//!   G.711 packets: one call per tick writes the next packet into the
//!   caller's buffer. After an optional delay of silence it plays the
//!   prompt once (then silence) or in a loop. Sequence number, timestamp
//!   and SSRC follow RFC 3550; the first packet carries the marker bit.
//! - [`Receiver`] places each received packet on the call's timeline by
//!   its RTP timestamp: how much silence to write before its samples
//!   (a gap), or that it comes too late to be written (reordered or
//!   duplicated). A new SSRC or a jump of more than [`MAX_GAP`] restarts
//!   the timeline at the current end. It also counts packets and losses.
//!
//! Neither allocates per packet: the prompt is shared, the buffers are the
//! caller's.

use std::sync::Arc;

use crate::media::g711::Codec;
use crate::media::rtp::{HEADER_LEN, RtpView};

/// Samples (and G.711 bytes) in one 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;
/// Bytes of one packet we send: header and 20 ms of G.711.
pub const PACKET: usize = HEADER_LEN + FRAME;
/// Samples per second.
pub const RATE: u32 = 8000;
/// The longest gap filled with silence: a larger jump of the timestamps
/// restarts the timeline instead (10 s).
pub const MAX_GAP: u64 = 10 * RATE as u64;

/// What plays after the prompt's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPrompt {
    /// Silence until the call ends.
    Silence,
    /// The prompt again, from its start.
    Loop,
}

/// The sending side of one call.
#[derive(Debug)]
pub struct Sender {
    prompt: Arc<[i16]>,
    after: AfterPrompt,
    /// Silent frames still to send before the prompt starts.
    delay_frames: u32,
    pos: usize,
    codec: Codec,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    first: bool,
    sent: u64,
}

impl Sender {
    /// A sender of `prompt` (may be empty: silence) with `codec` on payload
    /// type `pt`, starting after `delay_frames` frames of silence. `seq`,
    /// `ts` and `ssrc` are the random starting values RFC 3550 asks for.
    pub fn new(
        prompt: Arc<[i16]>,
        after: AfterPrompt,
        delay_frames: u32,
        (codec, pt): (Codec, u8),
        (seq, ts, ssrc): (u16, u32, u32),
    ) -> Sender {
        Sender { prompt, after, delay_frames, pos: 0, codec, pt, seq, ts, ssrc, first: true, sent: 0 }
    }

    /// Switches codec or payload type (after a re-INVITE).
    pub fn set_payload(&mut self, codec: Codec, pt: u8) {
        self.codec = codec;
        self.pt = pt;
    }

    /// Packets written so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether the prompt has been played to its end (never, when looped).
    pub fn prompt_done(&self) -> bool {
        self.after == AfterPrompt::Silence && self.delay_frames == 0 && self.pos >= self.prompt.len()
    }

    /// Writes the next 20 ms packet into `buf` and returns its length
    /// ([`PACKET`]).
    pub fn next_packet(&mut self, buf: &mut [u8; PACKET]) -> usize {
        buf[0] = 0x80; // version 2, no padding, no extension, no CSRC
        buf[1] = (self.pt & 0x7f) | if self.first { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let silence = self.codec.encode(0);
        let payload = &mut buf[HEADER_LEN..];
        if self.delay_frames > 0 {
            self.delay_frames -= 1;
            payload.fill(silence);
        } else {
            for out in payload.iter_mut() {
                if self.pos >= self.prompt.len() && self.after == AfterPrompt::Loop && !self.prompt.is_empty()
                {
                    self.pos = 0;
                }
                *out = match self.prompt.get(self.pos) {
                    Some(&s) => {
                        self.pos += 1;
                        self.codec.encode(s)
                    }
                    None => silence,
                };
            }
        }
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        self.sent += 1;
        PACKET
    }
}

/// Where a received packet goes in the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Not written: another payload type (telephone-event, comfort noise…),
    /// or too late (its place was already written).
    Drop,
    /// Write this many samples of silence, then the packet's samples.
    Write {
        /// Samples of silence first (a gap in the timestamps).
        silence: u64,
    },
}

/// The receiving side of one call: the timeline of what was heard.
#[derive(Debug)]
pub struct Receiver {
    codec: Codec,
    pt: u8,
    ssrc: Option<u32>,
    /// Extended timestamp of the newest packet and the timeline's origin.
    last_ts: u32,
    ext_last: i64,
    ext_base: i64,
    /// Samples written so far: the timeline position of the next one.
    written: u64,
    /// Highest extended sequence number of this stream (RFC 3550 A.1),
    /// counted from its first packet (0).
    ext_seq: i64,
    last_seq: u16,
    /// Packets of this stream, of all streams, and losses of the earlier
    /// streams.
    stream_received: u64,
    received: u64,
    lost_before: u64,
    late: u64,
}

impl Receiver {
    /// A receiver expecting `codec` on payload type `pt`.
    pub fn new(codec: Codec, pt: u8) -> Receiver {
        Receiver {
            codec,
            pt,
            ssrc: None,
            last_ts: 0,
            ext_last: 0,
            ext_base: 0,
            written: 0,
            ext_seq: 0,
            last_seq: 0,
            stream_received: 0,
            received: 0,
            lost_before: 0,
            late: 0,
        }
    }

    /// The codec of the packets written.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Switches codec or payload type (after a re-INVITE).
    pub fn set_payload(&mut self, codec: Codec, pt: u8) {
        self.codec = codec;
        self.pt = pt;
    }

    /// Audio packets received (of the expected payload type).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets missing from the sequence numbers (RFC 3550 A.3).
    pub fn lost(&self) -> u64 {
        self.lost_before + self.stream_lost()
    }

    fn stream_lost(&self) -> u64 {
        let expected = if self.ssrc.is_some() { (self.ext_seq + 1).max(0) as u64 } else { 0 };
        expected.saturating_sub(self.stream_received)
    }

    /// Packets that came after their place was written.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Samples on the timeline so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Places one packet. On [`Placement::Write`] the caller writes the
    /// silence and then the packet's `payload.len()` samples (one per
    /// G.711 byte); the receiver has already counted them.
    pub fn place(&mut self, rtp: &RtpView<'_>) -> Placement {
        if rtp.payload_type != self.pt || rtp.payload.is_empty() {
            return Placement::Drop;
        }
        let samples = rtp.payload.len() as u64;
        if self.ssrc != Some(rtp.ssrc) {
            // A new stream: it continues the timeline where it stands.
            self.restart(rtp, samples);
            return Placement::Write { silence: 0 };
        }
        self.received += 1;
        self.stream_received += 1;
        let dseq = rtp.seq.wrapping_sub(self.last_seq) as i16 as i64;
        if dseq > 0 {
            self.ext_seq += dseq;
            self.last_seq = rtp.seq;
        }
        let delta = rtp.timestamp.wrapping_sub(self.last_ts) as i32 as i64;
        let ext = self.ext_last + delta;
        let pos = ext - self.ext_base;
        if pos < self.written as i64 {
            self.late += 1;
            return Placement::Drop;
        }
        let gap = pos as u64 - self.written;
        if gap > MAX_GAP {
            // A jump of the timestamps: keep going without the silence.
            self.ext_base = ext - self.written as i64;
            self.ext_last = ext;
            self.last_ts = rtp.timestamp;
            self.written += samples;
            return Placement::Write { silence: 0 };
        }
        if delta > 0 {
            self.ext_last = ext;
            self.last_ts = rtp.timestamp;
        }
        self.written += gap + samples;
        Placement::Write { silence: gap }
    }

    fn restart(&mut self, rtp: &RtpView<'_>, samples: u64) {
        self.lost_before += self.stream_lost();
        self.ssrc = Some(rtp.ssrc);
        self.last_ts = rtp.timestamp;
        self.ext_last = 0;
        self.ext_base = -(self.written as i64);
        self.received += 1;
        self.stream_received = 1;
        self.ext_seq = 0;
        self.last_seq = rtp.seq;
        self.written += samples;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::ulaw_decode;
    use crate::media::rtp;

    fn prompt(n: usize) -> Arc<[i16]> {
        (0..n).map(|i| (i as i16 % 100) * 100 + 1000).collect::<Vec<_>>().into()
    }

    fn packet(seq: u16, ts: u32, ssrc: u32, pt: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend(std::iter::repeat_n(0xff, len));
        p
    }

    #[test]
    fn sender_writes_rtp_with_marker_then_advances() {
        let mut s = Sender::new(prompt(400), AfterPrompt::Silence, 0, (Codec::Pcmu, 0), (65535, 1000, 7));
        let mut buf = [0u8; PACKET];
        assert_eq!(s.next_packet(&mut buf), PACKET);
        let v = rtp::parse(&buf).expect("valid RTP");
        assert!(v.marker);
        assert_eq!((v.payload_type, v.seq, v.timestamp, v.ssrc), (0, 65535, 1000, 7));
        assert_eq!(v.payload.len(), FRAME);
        assert_eq!(ulaw_decode(v.payload[0]), ulaw_decode(Codec::Pcmu.encode(1000)));
        s.next_packet(&mut buf);
        let v = rtp::parse(&buf).unwrap();
        assert!(!v.marker);
        assert_eq!((v.seq, v.timestamp), (0, 1160), "sequence number wraps, timestamp +160");
        assert_eq!(s.sent(), 2);
    }

    #[test]
    fn prompt_plays_after_its_delay_once_then_silence() {
        let mut s = Sender::new(prompt(200), AfterPrompt::Silence, 2, (Codec::Pcma, 8), (0, 0, 1));
        let mut buf = [0u8; PACKET];
        let silence = Codec::Pcma.encode(0);
        for _ in 0..2 {
            s.next_packet(&mut buf);
            assert!(buf[HEADER_LEN..].iter().all(|&b| b == silence), "delay is silence");
            assert!(!s.prompt_done());
        }
        s.next_packet(&mut buf);
        assert_eq!(buf[1] & 0x7f, 8);
        assert_eq!(buf[HEADER_LEN], Codec::Pcma.encode(1000));
        s.next_packet(&mut buf);
        // 40 prompt samples left, then silence.
        assert_eq!(buf[HEADER_LEN + 39], Codec::Pcma.encode(prompt(200)[199]));
        assert!(buf[HEADER_LEN + 40..].iter().all(|&b| b == silence));
        assert!(s.prompt_done());
    }

    #[test]
    fn looped_prompt_starts_again() {
        let p = prompt(100);
        let mut s = Sender::new(p.clone(), AfterPrompt::Loop, 0, (Codec::Pcmu, 0), (0, 0, 1));
        let mut buf = [0u8; PACKET];
        s.next_packet(&mut buf);
        assert_eq!(buf[HEADER_LEN + 100], Codec::Pcmu.encode(p[0]));
        assert!(!s.prompt_done());
        // An empty prompt loops into silence, not into a panic.
        let mut e = Sender::new(Arc::from(Vec::new()), AfterPrompt::Loop, 0, (Codec::Pcmu, 0), (0, 0, 1));
        e.next_packet(&mut buf);
        assert!(buf[HEADER_LEN..].iter().all(|&b| b == Codec::Pcmu.encode(0)));
    }

    fn place(r: &mut Receiver, p: &[u8]) -> Placement {
        r.place(&rtp::parse(p).expect("valid RTP"))
    }

    #[test]
    fn in_order_stream_writes_back_to_back() {
        let mut r = Receiver::new(Codec::Pcmu, 0);
        for i in 0..5u16 {
            let p = packet(100 + i, 5000 + 160 * i as u32, 9, 0, 160);
            assert_eq!(place(&mut r, &p), Placement::Write { silence: 0 });
        }
        assert_eq!((r.received(), r.lost(), r.late(), r.written()), (5, 0, 0, 800));
    }

    #[test]
    fn a_gap_is_filled_with_silence_and_a_late_packet_dropped() {
        let mut r = Receiver::new(Codec::Pcmu, 0);
        assert_eq!(place(&mut r, &packet(1, 0, 9, 0, 160)), Placement::Write { silence: 0 });
        // seq 2 and 3 lost on the way; seq 4 lands 320 samples later.
        assert_eq!(place(&mut r, &packet(4, 480, 9, 0, 160)), Placement::Write { silence: 320 });
        assert_eq!(r.lost(), 2);
        // seq 3 arrives after all: its place is written.
        assert_eq!(place(&mut r, &packet(3, 320, 9, 0, 160)), Placement::Drop);
        assert_eq!((r.late(), r.written(), r.lost()), (1, 640, 1));
    }

    #[test]
    fn timestamps_wrap_and_jumps_restart() {
        let mut r = Receiver::new(Codec::Pcmu, 0);
        place(&mut r, &packet(1, u32::MAX - 159, 9, 0, 160));
        assert_eq!(place(&mut r, &packet(2, 0, 9, 0, 160)), Placement::Write { silence: 0 });
        // 20 s ahead: no 20 s of silence.
        assert_eq!(place(&mut r, &packet(3, 160_000, 9, 0, 160)), Placement::Write { silence: 0 });
        assert_eq!(place(&mut r, &packet(4, 160_160, 9, 0, 160)), Placement::Write { silence: 0 });
        assert_eq!(r.written(), 640);
    }

    #[test]
    fn other_payload_types_and_new_streams() {
        let mut r = Receiver::new(Codec::Pcma, 8);
        assert_eq!(place(&mut r, &packet(1, 0, 9, 101, 4)), Placement::Drop, "telephone-event");
        assert_eq!(place(&mut r, &packet(1, 0, 9, 0, 160)), Placement::Drop, "PCMU when PCMA agreed");
        place(&mut r, &packet(1, 0, 9, 8, 160));
        place(&mut r, &packet(2, 160, 9, 8, 160));
        // Another SSRC with unrelated numbers continues the timeline.
        assert_eq!(place(&mut r, &packet(7000, 99_999, 10, 8, 160)), Placement::Write { silence: 0 });
        assert_eq!(place(&mut r, &packet(7001, 100_159, 10, 8, 160)), Placement::Write { silence: 0 });
        assert_eq!((r.written(), r.received(), r.lost()), (640, 4, 0));
        r.set_payload(Codec::Pcmu, 0);
        assert_eq!(place(&mut r, &packet(7002, 100_319, 10, 0, 160)), Placement::Write { silence: 0 });
    }
}
