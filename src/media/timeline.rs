//! Both sides of a call on one timeline, ready for the stereo recording.
//!
//! A [`Timeline`] turns the RTP packets of the two legs (left = [`Side::Agent`],
//! right = [`Side::Client`]) into interleaved 16-bit stereo frames at 8 kHz,
//! frame 0 being the instant the recording started. It is sans-IO: every input
//! carries its instant, and it never reads a clock.
//!
//! ## Driving contract
//! 1. [`Timeline::new`] when the recorder's file is open (frame 0 = now);
//!    [`Timeline::set_payloads`] for each side from the negotiated SDP (before
//!    that, the static payload types 0 = PCMU and 8 = PCMA are understood).
//! 2. [`Timeline::push`] every RTP packet received from a side, with its
//!    arrival instant. A DTMF digit it completes is returned.
//! 3. [`Timeline::drain`] regularly (every ~100 ms) into one reused `Vec`, and
//!    hand the frames to the recorder — or [`Timeline::drain_upto`] straight
//!    into the recorder's own buffer, a bounded piece at a time.
//! 4. [`Timeline::finish`] at hang-up: the rest, up to the hang-up instant.
//!
//! ## Placement
//! Within a stream (one SSRC), a packet's position follows its RTP timestamp,
//! extended over wrap-around: frame = anchor + timestamp. The anchor ties the
//! stream to the arrival clock, which is shared by both sides: the first audio
//! packet of a stream is placed at its arrival frame. The newest packet of a
//! stream (by sequence number) re-anchors when it would land more than 200 ms
//! away from its arrival frame, or on frames already written out (a timestamp
//! jump, a sender that resumed after hold, clock drift or a delay spike).
//! Re-anchoring never moves a side backwards over audio it already has (so a
//! burst after a delay spike is not scrambled), unless that audio is more than
//! 500 ms ahead of the arrival clock. Older packets (reordered) are placed by the
//! current anchor.
//!
//! ## Write-out
//! A frame is written out once it is older than `now - window`, so a packet
//! reordered within the window still lands; a packet whose frames were already
//! written out is dropped and counted `late` (a packet partly written out keeps
//! its unwritten part and counts `late` too). Whatever no packet covered is
//! written as silence on that channel, both channels always advance together,
//! so the sides never drift apart (hold = silence).
//!
//! ## Memory
//! The ring keeps the G.711 bytes as they arrived, one byte per frame and
//! side, plus one flag byte per frame (which sides have audio there, and
//! whether it is A-law); it decodes to 16-bit PCM only at write-out. That is
//! 3 bytes per frame instead of 5 (two `i16` and a flag), and the ring is the
//! biggest thing a recorded call holds. It spans the window plus 300 ms
//! (`HEADROOM_FRAMES`): room for one drain period late, and for a side that
//! runs up to 200 ms ahead of the arrival clock, as far as a stream may
//! drift before it re-anchors (`JUMP_FRAMES`). A side may stay up to 500 ms
//! ahead after a delay spike (`MAX_AHEAD_FRAMES`: its burst is not
//! scrambled); that, or a [`Timeline::drain`] not called for so long that a
//! packet would need frames beyond the ring, forces the oldest frames out
//! into an internal spill buffer (which allocates, and logs a warning once)
//! that the next `drain`/`finish` hands out first: audio is never
//! overwritten silently, and those frames leave the reorder window early.
//!
//! ## Statistics ([`SideStats`])
//! `packets` counts RTP packets of the side; `lost` is RFC 3550's expected −
//! received per stream (so reordered packets that arrive are not lost;
//! duplicates are recognised in the last 64); `late` as above; `gaps` counts
//! runs of ≥ 60 ms without audio between two pieces of audio of the side, at
//! write-out. Packets that are not RTP, of an unknown payload type, empty or
//! absurdly long are counted by [`Timeline::ignored`].
//!
//! [`Timeline::push`], [`Timeline::drain`] and [`Timeline::finish`] allocate
//! nothing (as long as `out` has the capacity, which is the caller's business).

use std::fmt;
use std::time::{Duration, Instant};

use super::dtmf::{DtmfDetector, DtmfEvent};
use super::g711::{Codec, DECODE, ULAW_SILENCE};
use super::rtp;

/// The sample rate of the timeline and of the recording.
pub const SAMPLE_RATE: u32 = 8000;
/// A re-anchoring threshold: a newest packet this far from its arrival frame
/// re-anchors (200 ms).
const JUMP_FRAMES: i64 = 1600;
/// How far ahead of the arrival clock a side may stay after a delay spike
/// before re-anchoring overwrites (500 ms).
const MAX_AHEAD_FRAMES: i64 = 4000;
/// Ring headroom beyond the window (300 ms): one late drain period (100 ms)
/// and a side up to `JUMP_FRAMES` (200 ms) ahead of the arrival clock — a
/// stream that is further ahead re-anchors unless it runs up to
/// `MAX_AHEAD_FRAMES` ahead after a delay spike, and that rare case goes
/// through the spill (see the module doc) rather than make every call's
/// ring 2.5 times as long.
const HEADROOM_FRAMES: u64 = 2400;
/// Flag bits of a frame: bit `side` = that side has audio here; bit
/// `ALAW_SHIFT + side` = that side's byte is A-law (else μ-law).
const ALAW_SHIFT: u32 = 2;
/// A run of missing audio this long is a gap (60 ms).
const GAP_FRAMES: u64 = 480;
/// Payloads longer than this (500 ms) are refused.
const MAX_PACKET_FRAMES: usize = 4000;
/// RFC 3550 A.1: sequence jumps beyond these are a restart or a stray packet.
const MAX_DROPOUT: i64 = 3000;
const MAX_MISORDER: i64 = 100;

/// One side of the call. The agent is the left channel (index 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The agent's leg: left channel.
    Agent,
    /// The client's leg: right channel.
    Client,
}

impl Side {
    /// Both sides, in channel order.
    pub const BOTH: [Side; 2] = [Side::Agent, Side::Client];

    /// The channel index: 0 for the agent (left), 1 for the client (right).
    pub fn index(self) -> usize {
        match self {
            Side::Agent => 0,
            Side::Client => 1,
        }
    }
}

/// Reception statistics of one side (see the module doc for the definitions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SideStats {
    /// RTP packets received.
    pub packets: u64,
    /// Packets missing from the sequence numbers (expected − received).
    pub lost: u64,
    /// Audio packets that came after their frames were written out.
    pub late: u64,
    /// Runs of ≥ 60 ms without audio between two pieces of audio.
    pub gaps: u64,
}

/// What a sequence number says about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqVerdict {
    /// The newest packet of the stream so far (or the first one).
    Newest,
    /// Older than the newest (reordered), not seen before.
    Older,
    /// Seen already.
    Duplicate,
    /// Far off the sequence: ignored until the next packet confirms it.
    Stray,
    /// The packet confirmed a sequence restart: a new sequence starts here.
    Restart,
}

/// RFC 3550 A.1 sequence accounting for one stream.
#[derive(Debug, Clone, Copy)]
struct SeqState {
    base: i64,
    max: i64,
    received: u64,
    /// Bit k set = `max - k` received.
    recent: u64,
    /// After a stray packet: the sequence number that would confirm it.
    probe: Option<u16>,
}

impl SeqState {
    fn new(seq: u16) -> SeqState {
        SeqState { base: i64::from(seq), max: i64::from(seq), received: 1, recent: 1, probe: None }
    }

    fn lost(&self) -> u64 {
        let expected = (self.max - self.base + 1) as u64;
        expected.saturating_sub(self.received)
    }

    fn update(&mut self, seq: u16) -> SeqVerdict {
        let delta = i64::from(seq.wrapping_sub(self.max as u16) as i16);
        if delta > 0 && delta <= MAX_DROPOUT {
            self.max += delta;
            self.recent = if delta >= 64 { 1 } else { (self.recent << delta) | 1 };
            self.received += 1;
            self.probe = None;
            SeqVerdict::Newest
        } else if delta <= 0 && -delta <= MAX_MISORDER {
            let back = -delta;
            if back < 64 {
                let bit = 1u64 << back;
                if self.recent & bit != 0 {
                    return SeqVerdict::Duplicate;
                }
                self.recent |= bit;
            }
            self.base = self.base.min(self.max + delta);
            self.received += 1;
            SeqVerdict::Older
        } else if self.probe == Some(seq) {
            SeqVerdict::Restart
        } else {
            self.probe = Some(seq.wrapping_add(1));
            SeqVerdict::Stray
        }
    }
}

/// Where a stream's timestamps land on the timeline.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Timestamp of the newest packet, and its extended value.
    ref_ts: u32,
    ref_ext: i64,
    /// frame = anchor + extended timestamp.
    anchor: i64,
}

impl Timing {
    fn extend(&self, ts: u32) -> i64 {
        self.ref_ext + i64::from(ts.wrapping_sub(self.ref_ts) as i32)
    }
}

#[derive(Debug)]
struct Stream {
    ssrc: u32,
    seq: SeqState,
    timing: Option<Timing>,
}

/// Everything about one side.
struct SideState {
    audio: [Option<Codec>; 128],
    telephone_event: Option<u8>,
    dtmf: DtmfDetector,
    stream: Option<Stream>,
    /// Lost packets of earlier streams (SSRCs, sequence restarts).
    lost_before: u64,
    stats: SideStats,
    ignored: u64,
    /// End frame of the newest audio placed on this side.
    last_end: i64,
    /// Uncovered frames written out since the last covered one.
    run: u64,
    /// Whether any audio of this side was written out yet.
    heard: bool,
    /// This side's channel as G.711 bytes, one per frame, frame f at
    /// f % capacity; an empty slot holds μ-law silence.
    ring: Box<[u8]>,
}

impl SideState {
    fn new(capacity: usize) -> SideState {
        let mut audio = [None; 128];
        audio[0] = Some(Codec::Pcmu);
        audio[8] = Some(Codec::Pcma);
        SideState {
            audio,
            telephone_event: None,
            dtmf: DtmfDetector::new(),
            stream: None,
            lost_before: 0,
            stats: SideStats::default(),
            ignored: 0,
            last_end: i64::MIN,
            run: 0,
            heard: false,
            ring: vec![ULAW_SILENCE; capacity].into_boxed_slice(),
        }
    }
}

/// Gap accounting of one written-out frame of a side (its `run`, `heard`
/// and `gaps`, see [`SideState`]).
#[inline]
fn account(run: &mut u64, heard: &mut bool, gaps: &mut u64, covered: bool) {
    if covered {
        if *heard && *run >= GAP_FRAMES {
            *gaps += 1;
        }
        *run = 0;
        *heard = true;
    } else {
        *run += 1;
    }
}

/// Both sides of one call on one timeline (sans-IO). See the module doc.
pub struct Timeline {
    start: Instant,
    window_frames: u64,
    capacity: u64,
    /// The first frame still in the ring; frames before it are written out.
    base: u64,
    /// Per frame position: bit 0 = agent audio present, bit 1 = client
    /// audio; bits 2 and 3 = that side's byte is A-law.
    flags: Box<[u8]>,
    sides: [SideState; 2],
    /// Frames forced out of the ring but not yet drained (interleaved).
    spill: Vec<i16>,
    warned: bool,
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeline")
            .field("window_frames", &self.window_frames)
            .field("capacity", &self.capacity)
            .field("frames_out", &self.frames_out())
            .field("agent", &self.stats(Side::Agent))
            .field("client", &self.stats(Side::Client))
            .finish()
    }
}

impl Timeline {
    /// `start` = the instant recording starts (frame 0). `window` = the reorder
    /// window (e.g. 100 ms): a frame is written out only once it is older than
    /// `now - window`, so a packet reordered within the window still lands.
    /// Preallocates the ring (window + 700 ms); nothing is allocated later.
    pub fn new(start: Instant, window: Duration) -> Timeline {
        let window_frames = frames_in(window);
        let capacity = window_frames.saturating_add(HEADROOM_FRAMES);
        let len = usize::try_from(capacity).expect("reorder window too large");
        Timeline {
            start,
            window_frames,
            capacity,
            base: 0,
            flags: vec![0; len].into_boxed_slice(),
            sides: [SideState::new(len), SideState::new(len)],
            spill: Vec::new(),
            warned: false,
        }
    }

    /// Which RTP payload types mean what on `side` (from SDP): `audio` maps
    /// payload types to codecs, `telephone_event` is the RFC 4733 payload type
    /// if negotiated. Replaces the previous mapping (including the static
    /// defaults 0 = PCMU, 8 = PCMA). Unknown payload types are counted
    /// ([`Timeline::ignored`]) and ignored.
    pub fn set_payloads(&mut self, side: Side, audio: &[(u8, Codec)], telephone_event: Option<u8>) {
        let s = &mut self.sides[side.index()];
        s.audio = [None; 128];
        for &(pt, codec) in audio {
            if let Some(slot) = s.audio.get_mut(usize::from(pt)) {
                *slot = Some(codec);
            }
        }
        s.telephone_event = telephone_event.filter(|&pt| pt < 128);
    }

    /// One received RTP packet (the whole packet) of `side` at `arrival`.
    /// Places its samples at the right frame (see the module doc), counts it,
    /// and returns a DTMF event when a telephone-event packet completes one.
    /// Never panics, whatever the bytes; allocates nothing (except the forced
    /// write-out described in the module doc).
    pub fn push(&mut self, side: Side, packet: &[u8], arrival: Instant) -> Option<DtmfEvent> {
        let arrival_frame = self.frame_of(arrival) as i64;
        let s = &mut self.sides[side.index()];
        let Some(v) = rtp::parse(packet) else {
            s.ignored += 1;
            return None;
        };
        s.stats.packets += 1;

        let verdict = match &mut s.stream {
            Some(st) if st.ssrc == v.ssrc => match st.seq.update(v.seq) {
                SeqVerdict::Restart => {
                    s.lost_before += st.seq.lost();
                    st.seq = SeqState::new(v.seq);
                    SeqVerdict::Newest
                }
                other => other,
            },
            _ => {
                if let Some(old) = &s.stream {
                    s.lost_before += old.seq.lost();
                }
                s.stream = Some(Stream { ssrc: v.ssrc, seq: SeqState::new(v.seq), timing: None });
                SeqVerdict::Newest
            }
        };
        if matches!(verdict, SeqVerdict::Duplicate | SeqVerdict::Stray) {
            return None;
        }
        if Some(v.payload_type) == s.telephone_event {
            return s.dtmf.push(v.timestamp, v.payload);
        }
        let Some(codec) = s.audio[usize::from(v.payload_type)] else {
            s.ignored += 1;
            return None;
        };
        if v.payload.is_empty() || v.payload.len() > MAX_PACKET_FRAMES {
            s.ignored += 1;
            return None;
        }
        let newest = verdict == SeqVerdict::Newest;
        let stream = s.stream.as_mut()?;
        let reanchor_at = |last_end: i64| {
            if last_end > arrival_frame && last_end - arrival_frame <= MAX_AHEAD_FRAMES {
                last_end
            } else {
                arrival_frame
            }
        };
        let frame0 = match &mut stream.timing {
            None => {
                let at = reanchor_at(s.last_end);
                stream.timing = Some(Timing { ref_ts: v.timestamp, ref_ext: 0, anchor: at });
                at
            }
            Some(t) => {
                let ext = t.extend(v.timestamp);
                let mut frame0 = t.anchor + ext;
                if newest {
                    let off = frame0 - arrival_frame;
                    if !(-JUMP_FRAMES..=JUMP_FRAMES).contains(&off) || frame0 < self.base as i64 {
                        frame0 = reanchor_at(s.last_end);
                        t.anchor = frame0 - ext;
                    }
                    t.ref_ts = v.timestamp;
                    t.ref_ext = ext;
                } else if frame0 > arrival_frame + MAX_AHEAD_FRAMES {
                    // An old packet placed far in the future: nonsense timestamp.
                    s.ignored += 1;
                    return None;
                }
                frame0
            }
        };
        let end = frame0 + v.payload.len() as i64;
        s.last_end = if newest { end } else { s.last_end.max(end) };
        self.place(side, frame0, v.payload, codec);
        None
    }

    /// Decodes `payload` into `side`'s channel from `frame0` on.
    fn place(&mut self, side: Side, frame0: i64, payload: &[u8], codec: Codec) {
        let end = frame0 + payload.len() as i64;
        if end <= self.base as i64 {
            self.sides[side.index()].stats.late += 1;
            return;
        }
        let end = end as u64;
        if end > self.base + self.capacity {
            self.force_out(end - self.capacity);
        }
        let first = frame0.max(self.base as i64) as u64;
        let skip = (first as i64 - frame0) as usize;
        let s = &mut self.sides[side.index()];
        if skip > 0 {
            s.stats.late += 1;
        }
        let payload = &payload[skip..];
        let pos = (first % self.capacity) as usize;
        let k = payload.len().min(s.ring.len() - pos);
        s.ring[pos..pos + k].copy_from_slice(&payload[..k]);
        s.ring[..payload.len() - k].copy_from_slice(&payload[k..]);
        let i = side.index() as u32;
        let mask = !((1u8 << i) | (1u8 << (ALAW_SHIFT + i)));
        let set = (1u8 << i) | ((codec.index() as u8) << (ALAW_SHIFT + i));
        for f in &mut self.flags[pos..pos + k] {
            *f = (*f & mask) | set;
        }
        for f in &mut self.flags[..payload.len() - k] {
            *f = (*f & mask) | set;
        }
    }

    /// Moves frames out of the ring into the spill buffer up to `new_base`,
    /// because `drain` was not called for too long.
    fn force_out(&mut self, new_base: u64) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(
                frames_out = self.frames_out(),
                "timeline not drained in time; forcing frames out (allocates)"
            );
        }
        let mut spill = std::mem::take(&mut self.spill);
        let count = new_base.saturating_sub(self.base);
        spill.reserve(usize::try_from(count.saturating_mul(2)).unwrap_or(usize::MAX));
        self.write_ring(new_base, &mut spill);
        self.spill = spill;
    }

    /// Appends to `out` the interleaved stereo frames (L,R,L,R…) up to
    /// `now - window`. Call it regularly (the relay does every ~100 ms) and hand
    /// `out` to the recorder.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<i16>) {
        while self.drain_upto(now, out, u64::MAX) {}
    }

    /// Like [`Timeline::drain`], but appends at most `max_frames` frames
    /// (2 samples each) and returns whether more are due: call it again
    /// (after handing `out` on) until it returns `false`. Lets the caller
    /// drain into a fixed-size buffer, e.g. the recorder's.
    pub fn drain_upto(&mut self, now: Instant, out: &mut Vec<i16>, max_frames: u64) -> bool {
        let target = self.frame_of(now).saturating_sub(self.window_frames);
        self.write_out(target, out, max_frames)
    }

    /// At hang-up: appends everything up to `now` (no window), so the file
    /// ends when the call ended. Audio placed after `now` is not written; the
    /// timeline is done after this.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) {
        while self.finish_upto(now, out, u64::MAX) {}
    }

    /// [`Timeline::finish`] a bounded piece at a time, like
    /// [`Timeline::drain_upto`]: call until it returns `false`, with the
    /// same `now` each time.
    pub fn finish_upto(&mut self, now: Instant, out: &mut Vec<i16>, max_frames: u64) -> bool {
        let target = self.frame_of(now);
        self.write_out(target, out, max_frames)
    }

    /// Statistics of one side so far.
    pub fn stats(&self, side: Side) -> SideStats {
        let s = &self.sides[side.index()];
        let current = s.stream.as_ref().map_or(0, |st| st.seq.lost());
        SideStats { lost: s.lost_before + current, ..s.stats }
    }

    /// Packets of `side` that were not placed: not RTP (or RTCP), unknown
    /// payload type, empty or over 500 ms of audio, nonsense timestamps.
    pub fn ignored(&self, side: Side) -> u64 {
        self.sides[side.index()].ignored
    }

    /// Frames written out so far (duration = frames / 8000).
    pub fn frames_out(&self) -> u64 {
        self.base - (self.spill.len() / 2) as u64
    }

    fn frame_of(&self, t: Instant) -> u64 {
        frames_in(t.saturating_duration_since(self.start))
    }

    /// Appends up to `max_frames` frames of the spill and then of the ring
    /// up to `target`; returns whether frames before `target` remain.
    fn write_out(&mut self, target: u64, out: &mut Vec<i16>, max_frames: u64) -> bool {
        let mut budget = max_frames;
        if !self.spill.is_empty() {
            // Spilled frames go out when they are due like any other: a
            // side that ran far ahead may have forced out frames beyond
            // `target` (beyond the hang-up, at `finish`: never written).
            let due = target.saturating_sub(self.frames_out());
            let n = (self.spill.len() as u64 / 2).min(budget).min(due) as usize;
            out.extend_from_slice(&self.spill[..2 * n]);
            self.spill.drain(..2 * n);
            budget -= n as u64;
            if !self.spill.is_empty() {
                return self.frames_out() < target;
            }
        }
        let end = target.min(self.base.saturating_add(budget));
        self.write_ring(end, out);
        end < target
    }

    /// Writes frames `base..target` to `out` (which must have the room, or
    /// it grows), clearing them in the ring. Frames beyond the ring's span
    /// (nothing can have been placed there) are silence.
    fn write_ring(&mut self, target: u64, out: &mut Vec<i16>) {
        if target <= self.base {
            return;
        }
        let count = target - self.base;
        let from_ring = count.min(self.capacity);
        out.reserve(usize::try_from(count.saturating_mul(2)).unwrap_or(usize::MAX));
        let [agent, client] = &mut self.sides;
        let mut pos = (self.base % self.capacity) as usize;
        let mut left = from_ring as usize;
        // At most two contiguous pieces of the ring.
        while left > 0 {
            let n = left.min(self.flags.len() - pos);
            let range = pos..pos + n;
            let start = out.len();
            out.resize(start + 2 * n, 0);
            let frames = out[start..]
                .chunks_exact_mut(2)
                .zip(&mut agent.ring[range.clone()])
                .zip(&mut client.ring[range.clone()])
                .zip(&mut self.flags[range]);
            let (a_gaps, c_gaps) = (&mut agent.stats.gaps, &mut client.stats.gaps);
            for (((dst, a), c), f) in frames {
                let flags = std::mem::take(f);
                let a_law = usize::from(flags >> ALAW_SHIFT);
                dst[0] = DECODE[a_law & 1][usize::from(std::mem::replace(a, ULAW_SILENCE))];
                dst[1] = DECODE[(a_law >> 1) & 1][usize::from(std::mem::replace(c, ULAW_SILENCE))];
                account(&mut agent.run, &mut agent.heard, a_gaps, flags & 1 != 0);
                account(&mut client.run, &mut client.heard, c_gaps, flags & 2 != 0);
            }
            left -= n;
            pos = 0;
        }
        let silent = count - from_ring;
        if silent > 0 {
            out.resize(out.len() + (silent * 2) as usize, 0);
            agent.run += silent;
            client.run += silent;
        }
        self.base = target;
    }
}

/// Frames at 8 kHz in `d`, rounded down.
fn frames_in(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(u64::from(SAMPLE_RATE))
        .saturating_add(u64::from(d.subsec_nanos()) * u64::from(SAMPLE_RATE) / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::tests::te;
    use crate::media::g711::{alaw_encode, ulaw_encode};
    use crate::media::rtp::tests::packet;
    use proptest::prelude::*;

    const MS: u64 = 8; // frames per millisecond
    const WINDOW: Duration = Duration::from_millis(100);

    fn ms(t0: Instant, m: u64) -> Instant {
        t0 + Duration::from_millis(m)
    }

    /// A 20 ms PCMU packet whose every sample decodes to `value`'s code.
    fn pcmu(seq: u16, ts: u32, ssrc: u32, value: i16) -> Vec<u8> {
        packet(0, false, seq, ts, ssrc, &[ulaw_encode(value); 160])
    }

    fn left(out: &[i16]) -> Vec<i16> {
        out.iter().step_by(2).copied().collect()
    }

    fn right(out: &[i16]) -> Vec<i16> {
        out.iter().skip(1).step_by(2).copied().collect()
    }

    const A: i16 = 1000; // decodes to 1052 in μ-law
    const C: i16 = -3000;

    fn a() -> i16 {
        crate::media::g711::ulaw_decode(ulaw_encode(A))
    }
    fn c() -> i16 {
        crate::media::g711::ulaw_decode(ulaw_encode(C))
    }

    #[test]
    fn in_order_both_sides_fill_their_channels() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        for k in 0..50u16 {
            let at = ms(t0, 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(k, 1000 + 160 * u32::from(k), 1, A), at);
            tl.push(
                Side::Client,
                &pcmu(500 + k, 9000 + 160 * u32::from(k), 2, C),
                at + Duration::from_millis(3),
            );
            if k % 5 == 4 {
                tl.drain(at, &mut out);
            }
        }
        tl.finish(ms(t0, 1000), &mut out);
        assert_eq!(out.len(), 2 * 8000);
        assert_eq!(tl.frames_out(), 8000);
        // The client's packets arrived 3 ms later: placed 24 frames later.
        assert!(left(&out).iter().all(|&s| s == a()));
        let r = right(&out);
        assert!(r[..24].iter().all(|&s| s == 0));
        assert!(r[24..].iter().all(|&s| s == c()));
        for side in Side::BOTH {
            assert_eq!(tl.stats(side), SideStats { packets: 50, lost: 0, late: 0, gaps: 0 });
        }
    }

    #[test]
    fn drain_respects_the_window() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        tl.drain(ms(t0, 50), &mut out);
        assert!(out.is_empty());
        tl.drain(ms(t0, 350), &mut out);
        assert_eq!(out.len(), 2 * 250 * MS as usize);
        assert_eq!(tl.frames_out(), 2000);
    }

    #[test]
    fn reordering_inside_the_window_lands_beyond_it_is_late() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        // Agent: packets 0..10 every 20 ms, but 3 arrives after 5, and 7 only
        // after 300 ms (the window is 100 ms).
        let order = [0u16, 1, 2, 4, 5, 3, 6, 8, 9];
        for (i, &k) in order.iter().enumerate() {
            let value = 100 * (k as i16 + 1);
            tl.push(Side::Agent, &pcmu(k, 160 * u32::from(k), 7, value), ms(t0, 20 * i as u64));
            tl.drain(ms(t0, 20 * i as u64), &mut out);
        }
        tl.drain(ms(t0, 300), &mut out);
        tl.push(Side::Agent, &pcmu(7, 160 * 7, 7, 800), ms(t0, 300));
        tl.finish(ms(t0, 400), &mut out);
        let l = left(&out);
        for k in 0..10usize {
            let expected =
                if k == 7 { 0 } else { crate::media::g711::ulaw_decode(ulaw_encode(100 * (k as i16 + 1))) };
            assert!(l[k * 160..(k + 1) * 160].iter().all(|&s| s == expected), "packet {k}");
        }
        let st = tl.stats(Side::Agent);
        assert_eq!((st.packets, st.lost, st.late), (10, 0, 1));
    }

    #[test]
    fn hold_on_one_side_is_silence_and_the_sides_stay_in_step() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::with_capacity(2 * 8000 * 5);
        // 4 s; the client is on hold (sends nothing) from 1 s to 3 s and then
        // resumes with timestamps that continue where they stopped.
        let mut client_seq = 0u16;
        for k in 0..200u32 {
            let at = ms(t0, 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(k as u16, 160 * k, 1, A), at);
            if !(50..150).contains(&k) {
                tl.push(Side::Client, &pcmu(client_seq, 160 * u32::from(client_seq), 2, C), at);
                client_seq += 1;
            }
            tl.drain(at, &mut out);
        }
        tl.finish(ms(t0, 4000), &mut out);
        assert_eq!(out.len(), 2 * 4 * 8000);
        assert!(left(&out).iter().all(|&s| s == a()));
        let r = right(&out);
        assert!(r[..8000].iter().all(|&s| s == c()));
        assert!(r[8000..24000].iter().all(|&s| s == 0));
        assert!(r[24000..].iter().all(|&s| s == c()));
        assert_eq!(tl.stats(Side::Client).gaps, 1);
        assert_eq!(tl.stats(Side::Client).lost, 0);
        assert_eq!(tl.stats(Side::Agent).gaps, 0);
    }

    #[test]
    fn ssrc_change_and_timestamp_jump_re_anchor() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        for k in 0..25u32 {
            tl.push(Side::Agent, &pcmu(k as u16, 160 * k, 1, 1000), ms(t0, 20 * u64::from(k)));
        }
        // A new SSRC at 500 ms with unrelated numbers: placed where it arrives.
        for k in 0..25u32 {
            let at = ms(t0, 500 + 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(40_000 + k as u16, 3_000_000 + 160 * k, 2, 2000), at);
        }
        // Same SSRC, sequence continues, timestamp jumps back by a minute.
        for k in 25..50u32 {
            let at = ms(t0, 500 + 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(40_000 + k as u16, 3_000_000 + 160 * k - 480_000, 2, 4000), at);
        }
        // ... and forward by an hour.
        for k in 50..75u32 {
            let at = ms(t0, 500 + 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(40_000 + k as u16, 160 * k + 28_800_000, 2, 8000), at);
        }
        tl.finish(ms(t0, 2000), &mut out);
        let l = left(&out);
        let d = |v: i16| crate::media::g711::ulaw_decode(ulaw_encode(v));
        assert!(l[..4000].iter().all(|&s| s == d(1000)));
        assert!(l[4000..8000].iter().all(|&s| s == d(2000)));
        assert!(l[8000..12000].iter().all(|&s| s == d(4000)));
        assert!(l[12000..16000].iter().all(|&s| s == d(8000)));
        let st = tl.stats(Side::Agent);
        assert_eq!((st.lost, st.late, st.gaps), (0, 0, 0));
    }

    #[test]
    fn timestamp_and_sequence_wrap_around() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        let ts0 = u32::MAX - 160 * 10 + 1;
        let seq0 = u16::MAX - 5;
        for k in 0..40u32 {
            let ts = ts0.wrapping_add(160 * k);
            let seq = seq0.wrapping_add(k as u16);
            tl.push(Side::Client, &pcmu(seq, ts, 9, C), ms(t0, 20 * u64::from(k)));
            tl.drain(ms(t0, 20 * u64::from(k)), &mut out);
        }
        tl.finish(ms(t0, 800), &mut out);
        assert!(right(&out).iter().all(|&s| s == c()));
        assert_eq!(tl.stats(Side::Client), SideStats { packets: 40, lost: 0, late: 0, gaps: 0 });
    }

    #[test]
    fn losses_are_counted_and_long_ones_are_gaps() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        // Of 100 packets, 10 and 11 (40 ms) and 50..=54 (100 ms) never come;
        // 30 comes twice.
        for k in 0..100u32 {
            if k == 10 || k == 11 || (50..=54).contains(&k) {
                continue;
            }
            let p = pcmu(k as u16, 160 * k, 3, A);
            tl.push(Side::Agent, &p, ms(t0, 20 * u64::from(k)));
            if k == 30 {
                tl.push(Side::Agent, &p, ms(t0, 20 * u64::from(k) + 5));
            }
            tl.drain(ms(t0, 20 * u64::from(k)), &mut out);
        }
        tl.finish(ms(t0, 2000), &mut out);
        assert_eq!(tl.stats(Side::Agent), SideStats { packets: 94, lost: 7, late: 0, gaps: 1 });
        let l = left(&out);
        assert!(l[1600..1920].iter().all(|&s| s == 0));
        assert!(l[8000..8800].iter().all(|&s| s == 0));
        assert!(l[8800..].iter().all(|&s| s == a()));
    }

    #[test]
    fn payload_types_codecs_and_dtmf() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        tl.set_payloads(Side::Client, &[(8, Codec::Pcma)], Some(101));
        tl.push(Side::Client, &packet(8, false, 1, 0, 5, &[alaw_encode(500); 160]), t0);
        // PCMU is not negotiated on this side: ignored.
        tl.push(Side::Client, &packet(0, false, 2, 160, 5, &[0; 160]), ms(t0, 20));
        tl.push(Side::Client, &packet(96, false, 3, 320, 5, &[0; 160]), ms(t0, 40));
        tl.push(Side::Client, &[0x80, 201, 0, 1, 0, 0, 0, 5], ms(t0, 40));
        let mut events = Vec::new();
        for (i, p) in
            [te(9, false, 400), te(9, true, 800), te(9, true, 800), te(9, true, 800)].iter().enumerate()
        {
            let pkt = packet(101, i == 0, 4 + i as u16, 480, 5, p);
            events.extend(tl.push(Side::Client, &pkt, ms(t0, 60 + 10 * i as u64)));
        }
        assert_eq!(events, [DtmfEvent { digit: '9', duration_ms: 100 }]);
        tl.finish(ms(t0, 100), &mut out);
        let r = right(&out);
        let v = crate::media::g711::alaw_decode(alaw_encode(500));
        assert!(r[..160].iter().all(|&s| s == v));
        assert!(r[160..].iter().all(|&s| s == 0));
        assert_eq!(tl.ignored(Side::Client), 3);
        assert_eq!(tl.stats(Side::Client).packets, 7);
        assert_eq!(tl.stats(Side::Client).lost, 0);
    }

    #[test]
    fn a_codec_change_decodes_each_frame_with_its_own_codec() {
        // The ring keeps G.711 bytes and decodes at write-out: a re-INVITE
        // that switches a side from PCMU to PCMA mid-call (and a reordered
        // PCMU packet overwritten by PCMA) must still decode right.
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        tl.set_payloads(Side::Agent, &[(0, Codec::Pcmu), (8, Codec::Pcma)], None);
        tl.set_payloads(Side::Client, &[(8, Codec::Pcma)], None);
        for k in 0..10u32 {
            let at = ms(t0, 20 * u64::from(k));
            let (pt, code) = if k < 5 { (0, ulaw_encode(1000)) } else { (8, alaw_encode(-3000)) };
            tl.push(Side::Agent, &packet(pt, false, k as u16, 160 * k, 1, &[code; 160]), at);
            tl.push(Side::Client, &packet(8, false, k as u16, 160 * k, 2, &[alaw_encode(700); 160]), at);
        }
        tl.finish(ms(t0, 200), &mut out);
        let (l, r) = (left(&out), right(&out));
        let u = crate::media::g711::ulaw_decode(ulaw_encode(1000));
        let a = crate::media::g711::alaw_decode(alaw_encode(-3000));
        assert!(l[..800].iter().all(|&s| s == u));
        assert!(l[800..].iter().all(|&s| s == a));
        let c = crate::media::g711::alaw_decode(alaw_encode(700));
        assert!(r.iter().all(|&s| s == c));
        // Uncovered frames after the seal of a slot are silence again.
        let mut more = Vec::new();
        let mut tl = Timeline::new(t0, WINDOW);
        tl.set_payloads(Side::Agent, &[(8, Codec::Pcma)], None);
        tl.push(Side::Agent, &packet(8, false, 1, 0, 1, &[alaw_encode(900); 160]), t0);
        tl.finish(ms(t0, 2000), &mut more);
        let l = left(&more);
        assert!(l[160..].iter().all(|&s| s == 0), "A-law has no zero code: empty slots must read 0");
    }

    #[test]
    fn drain_upto_in_pieces_gives_what_drain_gives() {
        let t0 = Instant::now();
        let feed = |tl: &mut Timeline, k: u32| {
            let at = ms(t0, 20 * u64::from(k));
            // Some loss and reordering, so that silence and late frames occur.
            if k % 7 != 3 {
                tl.push(Side::Agent, &pcmu(k as u16, 160 * k, 1, (k * 37) as i16), at);
            }
            let j = if k % 5 == 1 {
                k + 1
            } else if k % 5 == 2 {
                k - 1
            } else {
                k
            };
            tl.push(Side::Client, &pcmu(j as u16, 160 * j, 2, -((j * 11) as i16)), at);
        };
        let (mut whole, mut pieces) = (Timeline::new(t0, WINDOW), Timeline::new(t0, WINDOW));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut piece = Vec::with_capacity(2 * 333);
        for k in 0..400u32 {
            feed(&mut whole, k);
            feed(&mut pieces, k);
            if k % 4 == 0 {
                let at = ms(t0, 20 * u64::from(k));
                whole.drain(at, &mut a);
                loop {
                    let more = pieces.drain_upto(at, &mut piece, 333);
                    assert!(piece.len() <= 2 * 333);
                    b.append(&mut piece);
                    if !more {
                        break;
                    }
                }
            }
        }
        whole.finish(ms(t0, 8100), &mut a);
        while pieces.finish_upto(ms(t0, 8100), &mut piece, 333) {
            b.append(&mut piece);
        }
        b.append(&mut piece);
        assert_eq!(a.len(), 2 * 8100 * 8);
        assert_eq!(a, b);
        assert_eq!(whole.stats(Side::Agent), pieces.stats(Side::Agent));
        assert_eq!(whole.stats(Side::Client), pieces.stats(Side::Client));
        // And through the spill (no drain for 5 s) too.
        let (mut whole, mut pieces) = (Timeline::new(t0, WINDOW), Timeline::new(t0, WINDOW));
        for k in 0..250u32 {
            feed(&mut whole, k);
            feed(&mut pieces, k);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        whole.finish(ms(t0, 5000), &mut a);
        while pieces.finish_upto(ms(t0, 5000), &mut piece, 333) {
            b.append(&mut piece);
        }
        b.append(&mut piece);
        assert_eq!(a, b);
    }

    #[test]
    fn delay_spike_keeps_the_audio_in_order() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::new();
        let push = |tl: &mut Timeline, k: u32, at: u64| {
            // Payload code k: every packet's audio is recognisable.
            let p = packet(0, false, k as u16, 160 * k, 1, &[k as u8; 160]);
            tl.push(Side::Agent, &p, ms(t0, at));
        };
        for k in 0..10 {
            push(&mut tl, k, 20 * u64::from(k));
            tl.drain(ms(t0, 20 * u64::from(k)), &mut out);
        }
        // Packets 10..25 (sent 200..500 ms) are held up and arrive in one
        // burst at 500 ms, after their frames were written out.
        tl.drain(ms(t0, 480), &mut out);
        for k in 10..25 {
            push(&mut tl, k, 500);
        }
        for k in 25..60 {
            push(&mut tl, k, 20 * u64::from(k));
            tl.drain(ms(t0, 20 * u64::from(k)), &mut out);
        }
        tl.finish(ms(t0, 1500), &mut out);
        assert_eq!(out.len(), 2 * 12_000);
        // Every packet's audio appears, whole and in order.
        let l = left(&out);
        let mut seen: Vec<(i16, usize)> = Vec::new();
        for &s in l.iter().filter(|&&s| s != 0) {
            match seen.last_mut() {
                Some((v, n)) if *v == s => *n += 1,
                _ => seen.push((s, 1)),
            }
        }
        let expected: Vec<(i16, usize)> =
            (0..60).map(|k| (crate::media::g711::ulaw_decode(k as u8), 160)).collect();
        assert_eq!(seen, expected);
        assert_eq!(tl.stats(Side::Agent).late, 0);
        assert_eq!(tl.stats(Side::Agent).gaps, 1);
    }

    #[test]
    fn forced_write_out_loses_nothing() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        // 10 s of packets and no drain at all.
        for k in 0..500u32 {
            tl.push(Side::Agent, &pcmu(k as u16, 160 * k, 1, A), ms(t0, 20 * u64::from(k)));
        }
        let mut out = Vec::new();
        tl.finish(ms(t0, 10_000), &mut out);
        assert_eq!(out.len(), 2 * 80_000);
        assert!(left(&out).iter().all(|&s| s == a()));
        assert_eq!(tl.stats(Side::Agent).late, 0);
    }

    #[test]
    fn timeline_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Timeline>();
        send_sync::<SideStats>();
    }

    #[test]
    fn drain_allocates_nothing_with_a_presized_vec() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, WINDOW);
        let mut out = Vec::with_capacity(2 * 8000);
        let cap = out.capacity();
        for k in 0..3000u32 {
            let at = ms(t0, 20 * u64::from(k));
            tl.push(Side::Agent, &pcmu(k as u16, 160 * k, 1, A), at);
            tl.push(Side::Client, &pcmu(k as u16, 160 * k, 2, C), at);
            if k % 5 == 0 {
                out.clear();
                tl.drain(at, &mut out);
                assert_eq!(out.capacity(), cap);
            }
        }
        out.clear();
        tl.finish(ms(t0, 60_000), &mut out);
        assert_eq!(out.capacity(), cap);
        assert_eq!(tl.frames_out(), 480_000);
    }

    #[derive(Debug, Clone)]
    struct Input {
        agent: bool,
        packet: Vec<u8>,
        arrival_ms: u64,
        drain: bool,
    }

    fn input() -> impl Strategy<Value = Input> {
        let realistic = (
            any::<bool>(),
            0u16..40,
            0u32..40,
            0u32..3,
            prop_oneof![Just(0u8), Just(8), Just(101), Just(13)],
            0usize..400,
        )
            .prop_map(|(agent, seq, slot, ssrc, pt, len)| {
                (agent, packet(pt, false, seq, slot * 160, ssrc, &vec![0x55; len]))
            });
        let wild =
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(agent, mut bytes)| {
                if let Some(b) = bytes.first_mut() {
                    *b = 0x80 | (*b & 0x3F);
                }
                (agent, bytes)
            });
        let random_header = (any::<bool>(), any::<u16>(), any::<u32>(), 0u32..2, 0usize..5000).prop_map(
            |(agent, seq, ts, ssrc, len)| (agent, packet(0, false, seq, ts, ssrc, &vec![0xFF; len])),
        );
        (prop_oneof![realistic, wild, random_header], 0u64..5000, any::<bool>())
            .prop_map(|((agent, packet), arrival_ms, drain)| Input { agent, packet, arrival_ms, drain })
    }

    proptest! {
        #[test]
        fn arbitrary_inputs_never_panic_and_length_is_elapsed(
            inputs in proptest::collection::vec(input(), 0..120),
            window_ms in 0u64..300,
            sorted: bool,
            extra_ms in 0u64..2000,
        ) {
            let t0 = Instant::now();
            let mut tl = Timeline::new(t0, Duration::from_millis(window_ms));
            let mut inputs = inputs;
            if sorted {
                inputs.sort_by_key(|i| i.arrival_ms);
            }
            let mut out = Vec::new();
            let mut last = 0;
            for i in &inputs {
                let side = if i.agent { Side::Agent } else { Side::Client };
                tl.push(side, &i.packet, ms(t0, i.arrival_ms));
                last = last.max(i.arrival_ms);
                if i.drain {
                    tl.drain(ms(t0, i.arrival_ms), &mut out);
                    prop_assert_eq!(out.len() as u64, 2 * tl.frames_out());
                }
            }
            let end = last + extra_ms;
            tl.finish(ms(t0, end), &mut out);
            prop_assert_eq!(out.len() as u64, 2 * end * MS);
            prop_assert_eq!(tl.frames_out(), end * MS);
        }
    }
}
