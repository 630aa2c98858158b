//! Reproducible random samples ("≥30% of the new accounts", "20% of the
//! dormant clients per half-year").
//!
//! An inspector must be able to re-derive a sample from what is stored, with
//! any tool, years later. So the sample depends on nothing but the batch's
//! seed (32 bytes, stored on the task batch as 64 hex digits), the clients'
//! ids and the ratio — no PRNG whose output could change with a crate
//! version:
//!
//! 1. Each client's **score** is the first 8 bytes, read big-endian as an
//!    unsigned 64-bit integer, of `SHA-256(seed ‖ 0x00 ‖ client_id as UTF-8)`.
//!    (`printf '%s' "$SEED" | xxd -r -p; printf '\0%s' "$ID"` piped into
//!    `sha256sum` gives the same digest.)
//! 2. A client is in the sample when `score < ratio × 2^64`.
//! 3. Should that select fewer than `⌈ratio × n⌉` of the `n` clients, the
//!    lowest-scoring others are added until it does not (ties broken by
//!    client id), so the required coverage is always met.
//!
//! Rule 2 decides each client on its own, so planning the same period again
//! with a larger population (accounts opened later in the week) keeps every
//! earlier choice.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

/// A batch's seed.
pub type Seed = [u8; 32];

/// A client's score under `seed` (see the module docs).
pub fn score(seed: &Seed, client_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update([0u8]);
    h.update(client_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The sample of `ids` at `ratio` (0 < ratio ≤ 1) under `seed`.
pub fn select<'a>(seed: &Seed, ids: impl IntoIterator<Item = &'a str>, ratio: f64) -> BTreeSet<String> {
    let mut scored: Vec<(u64, &str)> = ids.into_iter().map(|id| (score(seed, id), id)).collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    let n = scored.len();
    let threshold = threshold(ratio);
    let needed = needed(n, ratio);
    scored
        .iter()
        .enumerate()
        .filter(|(i, (s, _))| u128::from(*s) < threshold || *i < needed)
        .map(|(_, (_, id))| id.to_string())
        .collect()
}

/// `⌈ratio × n⌉`, computed without floating-point surprises at exact
/// multiples (30% of 10 is 3, not 4).
pub fn needed(n: usize, ratio: f64) -> usize {
    let scaled = (ratio * 1_000_000.0).round() as u128;
    let n = n as u128;
    (n * scaled).div_ceil(1_000_000).min(n) as usize
}

/// `ratio × 2^64` as an exclusive upper bound on scores.
fn threshold(ratio: f64) -> u128 {
    if ratio >= 1.0 {
        return u128::MAX;
    }
    let scaled = (ratio.max(0.0) * 1_000_000.0).round() as u128;
    (scaled << 64) / 1_000_000
}

/// A seed as 64 lower-case hex digits.
pub fn seed_hex(seed: &Seed) -> String {
    hex::encode(seed)
}

/// A seed from 64 hex digits.
pub fn parse_seed(s: &str) -> Option<Seed> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_sha256_of_seed_zero_id() {
        // Pinned: SHA-256(32 zero bytes ‖ 0x00 ‖ "C0001"), first 8 bytes.
        let mut h = Sha256::new();
        h.update([0u8; 33]);
        h.update(b"C0001");
        let d = h.finalize();
        assert_eq!(score(&[0; 32], "C0001").to_be_bytes(), d[..8]);
        assert_ne!(score(&[0; 32], "C0001"), score(&[1; 32], "C0001"));
    }

    #[test]
    fn needed_is_the_ceiling() {
        let cases = [
            (10, 0.30, 3),
            (11, 0.30, 4),
            (1, 0.30, 1),
            (0, 0.30, 0),
            (7, 1.0, 7),
            (100, 0.2, 20),
            (3, 0.2, 1),
        ];
        for (n, r, want) in cases {
            assert_eq!(needed(n, r), want, "{n} × {r}");
        }
    }

    #[test]
    fn sample_meets_the_ratio_and_is_reproducible() {
        let ids: Vec<String> = (0..1000).map(|i| format!("C{i:05}")).collect();
        for seed_byte in 0..20u8 {
            let seed = [seed_byte; 32];
            let s = select(&seed, ids.iter().map(String::as_str), 0.30);
            assert!(s.len() >= 300, "{}", s.len());
            assert!(s.len() < 380, "{}", s.len());
            assert_eq!(s, select(&seed, ids.iter().rev().map(String::as_str), 0.30));
        }
    }

    #[test]
    fn growing_population_keeps_earlier_choices() {
        let seed = [7; 32];
        let first: Vec<String> = (0..200).map(|i| format!("A{i}")).collect();
        let more: Vec<String> = first.iter().cloned().chain((0..300).map(|i| format!("B{i}"))).collect();
        let s1 = select(&seed, first.iter().map(String::as_str), 0.3);
        let s2 = select(&seed, more.iter().map(String::as_str), 0.3);
        // every client chosen by its own score stays chosen
        for id in &s1 {
            if u128::from(score(&seed, id)) < threshold(0.3) {
                assert!(s2.contains(id), "{id}");
            }
        }
    }

    #[test]
    fn small_populations_get_at_least_one() {
        let s = select(&[3; 32], ["ONLY"], 0.3);
        assert_eq!(s.len(), 1);
        assert!(select(&[3; 32], [], 0.3).is_empty());
    }

    #[test]
    fn seeds_round_trip_as_hex() {
        let seed = [0xab; 32];
        assert_eq!(parse_seed(&seed_hex(&seed)), Some(seed));
        assert_eq!(parse_seed("abc"), None);
    }
}
