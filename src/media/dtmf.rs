//! RFC 4733 telephone-events (DTMF digits sent as RTP) turned into call events.
//!
//! A sender announces a digit with a packet carrying the event code and a
//! growing duration, all with the same RTP timestamp (the event's start), and
//! ends it with the E bit set, usually three times for safety. A
//! [`DtmfDetector`] per stream sees every telephone-event packet in order of
//! arrival ([`DtmfDetector::push`]) and reports each digit exactly once:
//!
//! - when its first end packet arrives (the redundant end packets and any
//!   retransmission of the event — same RTP timestamp — give nothing more);
//! - or, if all end packets were lost, when the next event starts (with the
//!   last duration seen). Should the packet starting that next event be an
//!   end packet itself, that next event is reported by its redundant end
//!   packet.
//!
//! Events other than the 16 DTMF digits (flash, modem tones…) are ignored. The
//! clock is assumed to be 8 kHz, as for G.711. Long events split in
//! 65535-tick segments (RFC 4733 §2.5.1.3) report the final segment's
//! duration. Allocates nothing.

/// One DTMF digit, as a call event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// How long the key was held, as the sender reported it.
    pub duration_ms: u32,
}

/// The telephone-event clock (8 kHz for narrow-band audio).
const CLOCK_HZ: u32 = 8000;

/// The digit of an RFC 4733 event code, for the 16 DTMF events.
fn digit(event: u8) -> Option<char> {
    const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
    DIGITS.get(event as usize).map(|&d| d as char)
}

/// An event seen but not yet reported.
#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    digit: char,
    duration: u16,
}

/// Per-stream RFC 4733 state. See the module doc for when it reports.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    /// The event in progress (no end bit seen yet).
    current: Option<Current>,
    /// Timestamps of the last events reported (a small ring); their late
    /// packets are ignored.
    reported: [Option<u32>; 4],
    /// Next slot of `reported` to overwrite.
    next: usize,
}

impl DtmfDetector {
    /// A detector with no event in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// One telephone-event packet: its RTP `timestamp` and its `payload`.
    /// Returns the event once when its end bit is first seen (the 3 redundant
    /// end packets and retransmissions give it once only; a new event is keyed
    /// by RTP timestamp). Short payloads and non-DTMF events return `None`.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Option<DtmfEvent> {
        let [event, flags, d0, d1, ..] = *payload else {
            return None;
        };
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);
        let digit = digit(event)?;
        if self.reported.contains(&Some(timestamp)) {
            return None; // a redundant end, or a retransmission of a finished event
        }
        // A different event in progress whose end packets were all lost.
        let abandoned = match self.current {
            Some(c) if c.timestamp != timestamp => {
                self.current = None;
                self.remember(c.timestamp);
                Some(c)
            }
            _ => None,
        };
        if let Some(c) = abandoned {
            if !end {
                self.current = Some(Current { timestamp, digit, duration });
            }
            // An end packet here is reported by its redundant copy.
            return Some(event_of(c.digit, c.duration));
        }
        if end {
            self.current = None;
            self.remember(timestamp);
            return Some(event_of(digit, duration));
        }
        let longest = self.current.map_or(0, |c| c.duration);
        self.current = Some(Current { timestamp, digit, duration: duration.max(longest) });
        None
    }

    fn remember(&mut self, timestamp: u32) {
        self.reported[self.next] = Some(timestamp);
        self.next = (self.next + 1) % self.reported.len();
    }
}

fn event_of(digit: char, duration: u16) -> DtmfEvent {
    DtmfEvent { digit, duration_ms: u32::from(duration) * 1000 / CLOCK_HZ }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An RFC 4733 payload: event, E bit, volume 10, duration in ticks.
    pub(crate) fn te(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    /// The packets a softphone sends for one key press: a start, continuation
    /// packets every 50 ms and three end packets, all with one timestamp.
    fn press(event: u8, ticks: u16) -> Vec<[u8; 4]> {
        let mut v: Vec<[u8; 4]> = (1..=ticks / 400).map(|k| te(event, false, k * 400)).collect();
        v.extend([te(event, true, ticks); 3]);
        v
    }

    fn run(d: &mut DtmfDetector, ts: u32, packets: &[[u8; 4]]) -> Vec<DtmfEvent> {
        packets.iter().filter_map(|p| d.push(ts, p)).collect()
    }

    #[test]
    fn one_digit_from_a_realistic_sequence() {
        let mut d = DtmfDetector::new();
        let events = run(&mut d, 16000, &press(5, 1600));
        assert_eq!(events, [DtmfEvent { digit: '5', duration_ms: 200 }]);
    }

    #[test]
    fn two_digits_even_the_same_one() {
        let mut d = DtmfDetector::new();
        let mut events = run(&mut d, 1000, &press(1, 800));
        events.extend(run(&mut d, 5000, &press(1, 1200)));
        events.extend(run(&mut d, 9000, &press(11, 960)));
        assert_eq!(
            events,
            [
                DtmfEvent { digit: '1', duration_ms: 100 },
                DtmfEvent { digit: '1', duration_ms: 150 },
                DtmfEvent { digit: '#', duration_ms: 120 },
            ]
        );
    }

    #[test]
    fn retransmitted_end_and_late_continuation_give_nothing() {
        let mut d = DtmfDetector::new();
        assert_eq!(run(&mut d, 1000, &press(10, 800)).len(), 1);
        assert_eq!(d.push(1000, &te(10, true, 800)), None);
        assert_eq!(d.push(1000, &te(10, false, 400)), None);
        // The next digit is still reported.
        let ev = run(&mut d, 4000, &press(12, 800));
        assert_eq!(ev, [DtmfEvent { digit: 'A', duration_ms: 100 }]);
        // A packet of the first digit, delayed past the second, is no new event.
        assert_eq!(d.push(1000, &te(10, false, 400)), None);
        assert_eq!(d.push(1000, &te(10, true, 800)), None);
        assert_eq!(run(&mut d, 8000, &press(2, 800)).len(), 1);
    }

    #[test]
    fn lost_end_packets_report_on_the_next_event() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &te(3, false, 400)), None);
        assert_eq!(d.push(1000, &te(3, false, 800)), None);
        // All three ends lost; the next event starts.
        assert_eq!(d.push(5000, &te(4, false, 400)), Some(DtmfEvent { digit: '3', duration_ms: 100 }));
        assert_eq!(run(&mut d, 5000, &[te(4, true, 800); 3]), [DtmfEvent { digit: '4', duration_ms: 100 }]);
        // An abandoned event followed directly by an end packet.
        assert_eq!(d.push(9000, &te(6, false, 400)), None);
        assert_eq!(d.push(12000, &te(7, true, 480)), Some(DtmfEvent { digit: '6', duration_ms: 50 }));
        assert_eq!(d.push(12000, &te(7, true, 480)), Some(DtmfEvent { digit: '7', duration_ms: 60 }));
        assert_eq!(d.push(12000, &te(7, true, 480)), None);
    }

    #[test]
    fn garbage_and_other_events_are_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1, &[]), None);
        assert_eq!(d.push(1, &[1, 0x80, 0]), None);
        assert_eq!(d.push(1, &te(16, true, 800)), None); // flash
        assert_eq!(d.push(1, &te(200, true, 800)), None);
        assert_eq!(d.push(2, &te(0, true, 0)), Some(DtmfEvent { digit: '0', duration_ms: 0 }));
        assert_eq!(digit(15), Some('D'));
    }
}
