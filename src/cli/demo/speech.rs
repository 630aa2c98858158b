//! Does a recording channel carry the phrase a phone played into the call?
//!
//! The demo knows what its phones played (the agent's and the client's
//! phrase), so it checks each recording: the agent's phrase must be on the
//! left channel and the client's on the right, each clearly and not the
//! other. A channel is compared with a phrase by cross-correlating their
//! 20 ms RMS energy envelopes (Pearson r) over a range of lags, on the
//! overlapping frames only, and only where the overlap holds at least 70 %
//! of the phrase's speech; the phrase's leading and trailing silence is
//! dropped first (silence against silence would count as agreement), and
//! the channel is tried at four sub-frame phases. Through G.711 the same
//! phrase scores about 0.95–1.0, another phrase well under 0.5, silence 0.
//! (`tests/common/audio.rs` holds the same method for the test suite.)
//!
//! Pure functions; the caller reads the files.

use serde::Serialize;

/// Samples per envelope frame: 20 ms at 8 kHz.
const FRAME: usize = 160;
/// A frame is speech above this share of the loudest frame's RMS.
const ACTIVE_FRACTION: f64 = 0.05;
/// Share of the phrase's speech frames an alignment must cover.
const MIN_OVERLAP: f64 = 0.7;
/// The phrase may start up to this many frames into the channel (10 s).
const MAX_LAG: isize = 500;
/// The played phrase scores at least this…
pub const SAME_MIN: f64 = 0.8;
/// …and the other phrase at most this.
pub const OTHER_MAX: f64 = 0.5;

/// 20 ms RMS envelope; a trailing partial frame is dropped.
fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks_exact(FRAME)
        .map(|f| (f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / FRAME as f64).sqrt())
        .collect()
}

fn active(env: &[f64]) -> Vec<bool> {
    let peak = env.iter().copied().fold(0.0, f64::max);
    env.iter().map(|&e| peak > 0.0 && e > peak * ACTIVE_FRACTION).collect()
}

/// Pearson r of two equally long series; 0 when either is constant.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    if a.len() < 2 || a.len() != b.len() {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 1e-9 * n || sbb <= 1e-9 * n {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// Best r of `reference` against `recorded` over lags `min_lag..=max_lag`
/// (reference frame i against recorded frame i + lag).
fn align(recorded: &[f64], reference: &[f64], min_lag: isize, max_lag: isize) -> f64 {
    let act = active(reference);
    let total = act.iter().filter(|&&a| a).count();
    if total == 0 {
        return 0.0;
    }
    let mut pre = vec![0usize; act.len() + 1];
    for (i, &a) in act.iter().enumerate() {
        pre[i + 1] = pre[i] + usize::from(a);
    }
    let need = (MIN_OVERLAP * total as f64).ceil() as usize;
    let (n_ref, n_rec) = (reference.len() as isize, recorded.len() as isize);
    let mut best = 0.0f64;
    for lag in min_lag..=max_lag {
        let lo = 0.max(-lag);
        let hi = n_ref.min(n_rec - lag);
        if hi - lo < 2 {
            continue;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        if pre[hi] - pre[lo] < need {
            continue;
        }
        let r = pearson(
            &reference[lo..hi],
            &recorded[(lo as isize + lag) as usize..(hi as isize + lag) as usize],
        );
        best = best.max(r);
    }
    best
}

/// How well `channel` carries `phrase` (both 8 kHz): 0 (not at all) to 1.
pub fn score(channel: &[i16], phrase: &[i16]) -> f64 {
    let env = envelope(phrase);
    let act = active(&env);
    let (Some(first), Some(last)) = (act.iter().position(|&a| a), act.iter().rposition(|&a| a)) else {
        return 0.0;
    };
    let span = first.saturating_sub(2)..(last + 3).min(env.len());
    let reference = &env[span.clone()];
    (0..4)
        .map(|q| q * FRAME / 4)
        .filter(|&phase| phase < channel.len())
        .map(|phase| {
            let rec = envelope(&channel[phase..]);
            align(&rec, reference, -(reference.len() as isize), MAX_LAG + span.start as isize)
        })
        .fold(0.0, f64::max)
}

/// Both channels of a recording scored against both phrases.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Channels {
    /// Left channel against the agent's phrase.
    pub left_agent: f64,
    /// Left channel against the client's phrase.
    pub left_client: f64,
    /// Right channel against the client's phrase.
    pub right_client: f64,
    /// Right channel against the agent's phrase.
    pub right_agent: f64,
}

impl Channels {
    /// The agent's phrase on the left and the client's on the right, each
    /// clearly and not the other.
    pub fn agent_left_client_right(&self) -> bool {
        self.left_agent >= SAME_MIN
            && self.right_client >= SAME_MIN
            && self.left_client <= OTHER_MAX
            && self.right_agent <= OTHER_MAX
    }
}

/// Scores an interleaved stereo recording (left, right, left, …).
pub fn channels(interleaved: &[i16], agent: &[i16], client: &[i16]) -> Channels {
    let left: Vec<i16> = interleaved.iter().step_by(2).copied().collect();
    let right: Vec<i16> = interleaved.iter().skip(1).step_by(2).copied().collect();
    Channels {
        left_agent: score(&left, agent),
        left_client: score(&left, client),
        right_client: score(&right, client),
        right_agent: score(&right, agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{ulaw_decode, ulaw_encode};

    /// A "phrase": bursts of noise with its own rhythm, in silence.
    fn phrase(seed: u64, bursts: &[(usize, usize)]) -> Vec<i16> {
        let mut x = seed;
        let mut out = vec![0i16; 8000 * 4];
        for &(start_ms, len_ms) in bursts {
            for s in &mut out[start_ms * 8..(start_ms + len_ms) * 8] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *s = ((x % 20000) as i32 - 10000) as i16;
            }
        }
        out
    }

    fn agent() -> Vec<i16> {
        phrase(1, &[(200, 300), (600, 120), (800, 500), (1500, 200), (1900, 700), (2800, 300)])
    }
    fn client() -> Vec<i16> {
        phrase(2, &[(200, 700), (1100, 100), (1300, 150), (1600, 900), (2700, 150), (3000, 600)])
    }

    /// Interleaves two channels, each shifted by its delay (in samples).
    fn stereo(left: &[i16], l_delay: usize, right: &[i16], r_delay: usize, len: usize) -> Vec<i16> {
        let at =
            |ch: &[i16], d: usize, i: usize| if i >= d { ch.get(i - d).copied().unwrap_or(0) } else { 0 };
        let g711 = |s: i16| ulaw_decode(ulaw_encode(s));
        (0..len).flat_map(|i| [g711(at(left, l_delay, i)), g711(at(right, r_delay, i))]).collect()
    }

    #[test]
    fn the_right_phrases_on_the_right_channels() {
        let (a, c) = (agent(), client());
        // Agent from 0.7 s, client from 4.3 s (off the 20 ms grid), 9 s in all.
        let rec = stereo(&a, 5_611, &c, 34_413, 72_000);
        let ch = channels(&rec, &a, &c);
        assert!(ch.agent_left_client_right(), "{ch:?}");
        assert!(ch.left_agent > 0.95 && ch.right_client > 0.95, "{ch:?}");
    }

    #[test]
    fn swapped_silent_or_truncated_channels_fail() {
        let (a, c) = (agent(), client());
        let swapped = channels(&stereo(&c, 800, &a, 800, 48_000), &a, &c);
        assert!(!swapped.agent_left_client_right(), "{swapped:?}");
        let silent = channels(&stereo(&a, 800, &[], 0, 48_000), &a, &c);
        assert_eq!(silent.right_client, 0.0);
        assert!(!silent.agent_left_client_right());
        // Only the first half of the client's phrase recorded: not enough.
        let cut = channels(&stereo(&a, 0, &c, 0, 16_000), &a, &c);
        assert!(cut.right_client < SAME_MIN, "{cut:?}");
        assert_eq!(score(&a, &[0; 8000]), 0.0, "a silent phrase matches nothing");
    }
}
