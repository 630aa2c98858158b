//! G.711 μ-law (PCMU) and A-law (PCMA) to and from 16-bit linear PCM.
//!
//! Written by hand after ITU-T G.711 (1988), tables 1a/1b and 2a/2b, because
//! wrong tables exist in the wild. Decoding is a lookup in a 256-entry table
//! built at compile time; encoding is the classic segment search. The decoded
//! values are the centres of the G.711 decision intervals scaled to 16 bits
//! (μ-law: 14-bit values × 4, A-law: 13-bit values × 8), so
//! `encode(decode(c)) == c` for every code except μ-law's negative zero
//! (`0x7F`), which decodes to 0 like positive zero (`0xFF`); encoding 0 gives
//! `0xFF`.
//!
//! When to call what: the media path calls [`Codec::decode_into`] once per
//! received packet (no allocation); the `*_encode` functions are for tests and
//! for generating audio (prompts, test tones).

/// μ-law bias added to the magnitude before the segment search (33 × 4).
const ULAW_BIAS: i32 = 0x84;

/// Decodes one μ-law code (G.711 table 2a/2b) into the formula's value.
const fn ulaw_formula(code: u8) -> i16 {
    let u = !code;
    let mantissa = (u & 0x0F) as i32;
    let exponent = ((u & 0x70) >> 4) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 { -magnitude as i16 } else { magnitude as i16 }
}

/// Decodes one A-law code (G.711 table 1a/1b) into the formula's value.
const fn alaw_formula(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = (a & 0x0F) as i32;
    let exponent = ((a & 0x70) >> 4) as i32;
    let magnitude =
        if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    if a & 0x80 != 0 { magnitude as i16 } else { -magnitude as i16 }
}

/// The 256 decoded values of μ-law (`alaw = false`) or A-law.
const fn build(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw { alaw_formula(i as u8) } else { ulaw_formula(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build(false);
static ALAW_TABLE: [i16; 256] = build(true);
/// Both decoding tables, indexed by [`Codec::index`]: μ-law, then A-law.
pub(crate) static DECODE: [[i16; 256]; 2] = [build(false), build(true)];
/// The μ-law code that decodes to exactly 0 (A-law has none): what an
/// empty slot of a G.711 byte ring holds, so that it decodes to silence.
pub(crate) const ULAW_SILENCE: u8 = 0xFF;

/// Decodes a μ-law code to linear PCM (range −32124..=32124).
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Decodes an A-law code to linear PCM (range −32256..=32256).
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encodes linear PCM to μ-law; values beyond ±32124 clip to the extreme codes.
/// Zero encodes to `0xFF` (positive zero), never `0x7F`.
pub fn ulaw_encode(sample: i16) -> u8 {
    let (magnitude, mask) =
        if sample < 0 { (ULAW_BIAS - sample as i32, 0x7F) } else { (ULAW_BIAS + sample as i32, 0xFF) };
    if magnitude > 0x7FFF {
        return 0x7F ^ mask;
    }
    // Segment = position of the highest set bit above bit 7 (magnitude ≥ 0x84).
    let segment = (31 - (magnitude as u32).leading_zeros()).saturating_sub(7);
    let mantissa = (magnitude >> (segment + 3)) & 0x0F;
    ((segment << 4) as u8 | mantissa as u8) ^ mask
}

/// Encodes linear PCM to A-law; values beyond ±32256 clip to the extreme codes.
pub fn alaw_encode(sample: i16) -> u8 {
    let shifted = (sample as i32) >> 3;
    let (magnitude, mask) = if shifted >= 0 { (shifted, 0xD5) } else { (-shifted - 1, 0x55) };
    if magnitude > 0xFFF {
        return 0x7F ^ mask;
    }
    // Segment 0 covers 0..=0x1F; segment s ≥ 1 covers 2^(s+4)..2^(s+5).
    let segment = (32 - (magnitude as u32).leading_zeros()).saturating_sub(5);
    let mantissa = if segment < 2 { (magnitude >> 1) & 0x0F } else { (magnitude >> segment) & 0x0F };
    ((segment << 4) as u8 | mantissa as u8) ^ mask
}

/// The two G.711 codecs huifang speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, static RTP payload type 0.
    Pcmu,
    /// A-law, static RTP payload type 8.
    Pcma,
}

impl Codec {
    /// 0 for PCMU, 1 for PCMA: the row of [`DECODE`].
    pub(crate) fn index(self) -> usize {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 1,
        }
    }

    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The SDP encoding name (`a=rtpmap`): `"PCMU"` or `"PCMA"`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Parses an SDP encoding name, ignoring ASCII case (RFC 4566 names are
    /// case-insensitive). `None` for anything else.
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// Decodes one byte per sample from `payload` into `out`. Decodes
    /// `min(payload.len(), out.len())` samples and leaves the rest of `out`
    /// untouched; size `out` to the payload. Allocates nothing.
    pub fn decode_into(self, payload: &[u8], out: &mut [i16]) {
        let table = match self {
            Codec::Pcmu => &ULAW_TABLE,
            Codec::Pcma => &ALAW_TABLE,
        };
        for (o, &c) in out.iter_mut().zip(payload) {
            *o = table[c as usize];
        }
    }

    /// Encodes one linear sample with this codec.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 as the standard states it, written independently of the code
    /// above. μ-law: the code's bits are inverted, segment s and step q give
    /// the magnitude (2q + 33)·2^s − 33 on a 14-bit scale (× 4 for 16 bits).
    /// A-law: the even bits are inverted, segment 0 gives 2q + 1 and segment
    /// s ≥ 1 gives (2q + 33)·2^(s−1) on a 13-bit scale (× 8). In both, bit 7
    /// of the transmitted code set means positive.
    fn reference_ulaw(code: u8) -> i16 {
        let inv = !code;
        let s = ((inv >> 4) & 7) as i32;
        let q = (inv & 15) as i32;
        let magnitude = ((2 * q + 33) * (1 << s) - 33) * 4;
        if code & 0x80 != 0 { magnitude as i16 } else { -magnitude as i16 }
    }

    fn reference_alaw(code: u8) -> i16 {
        let a = code ^ 0x55;
        let s = ((a >> 4) & 7) as i32;
        let q = (a & 15) as i32;
        let magnitude = if s == 0 { 2 * q + 1 } else { (2 * q + 33) * (1 << (s - 1)) } * 8;
        if code & 0x80 != 0 { magnitude as i16 } else { -magnitude as i16 }
    }

    #[test]
    fn known_values() {
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
    }

    #[test]
    fn decode_matches_reference_for_all_codes() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), reference_ulaw(c), "ulaw {c:#04x}");
            assert_eq!(alaw_decode(c), reference_alaw(c), "alaw {c:#04x}");
        }
    }

    #[test]
    fn encode_inverts_decode_for_all_codes() {
        for c in 0..=255u8 {
            let expected = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), expected, "ulaw {c:#04x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "alaw {c:#04x}");
        }
    }

    #[test]
    fn encode_is_monotonic_and_clips() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            assert!(u >= prev_u, "ulaw not monotonic at {s}");
            assert!(a >= prev_a, "alaw not monotonic at {s}");
            prev_u = u;
            prev_a = a;
        }
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encode_stays_within_one_step() {
        // Quantisation error never exceeds the step of the segment (≤ 1024 for
        // μ-law's top segment, ≤ 1024 for A-law's) inside the coding range.
        for s in -32000..=32000i16 {
            assert!((ulaw_decode(ulaw_encode(s)) as i32 - s as i32).abs() <= 1024);
            assert!((alaw_decode(alaw_encode(s)) as i32 - s as i32).abs() <= 1024);
        }
    }

    #[test]
    fn codec_names_and_decode_into() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name(Codec::Pcma.name()), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("G729"), None);
        let mut out = [7i16; 4];
        Codec::Pcma.decode_into(&[0xD5, 0xAA, 0x2A], &mut out);
        assert_eq!(out, [8, 32256, -32256, 7]);
        let mut short = [0i16; 1];
        Codec::Pcmu.decode_into(&[0x80, 0x00], &mut short);
        assert_eq!(short, [32124]);
    }
}
