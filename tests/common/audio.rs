//! Audio checks for call recordings: does a channel carry the phrase that a
//! peer played into the call?
//!
//! A recording channel is compared with the WAV that was played into the call
//! by cross-correlating their 20 ms RMS energy envelopes over a range of lags
//! (Pearson r on the overlapping part). Measured with the fixtures in
//! `tests/fixtures/audio/` (see `scripts/make-test-audio.sh`) by
//! `speech_score`: the same phrase scores 0.99-1.0 (after a μ-law round
//! trip, at any lead-in 0-5 s, off the 20 ms grid, looped; and 0.993-1.0
//! through real baresip and SIPp RTP calls), the other phrase 0.27-0.31,
//! silence 0: a channel swap, a silent or a one-way channel is caught
//! reliably. The recording must hold at least `MIN_OVERLAP` (70 %) of the
//! phrase's speech (agent ~3.5 s, client ~2.9 s), else the score is 0.
//!
//! Fixtures (8000 Hz mono, 7 s: 0.25 s silence, the phrase, silence):
//! - `agent.wav` / `agent-ulaw.wav`: "Hello, this is the callback desk of the
//!   securities company, calling about your new account." (en-us, ~5.0 s)
//! - `client.wav` / `client-ulaw.wav`: "Yes, I opened the account myself and I
//!   understand the risks." (en-gb female, ~4.2 s)
//!
//! s16 files are for baresip's `aufile` and as references; the μ-law files for
//! SIPp's `<exec rtp_stream="FILE,-1,0"/>` (loops every 7 s). baresip hangs up
//! when its audio file ends, so give it a longer copy:
//! `write_padded(&fixture(AGENT_WAV), &dir.join("agent-40s.wav"), 40.0)`
//! (phrase once, then silence) or `write_repeated(.., 40.0)` (phrase looped).
//!
//! Uses `hound` (a normal dependency of the crate) and, in its own tests, sox.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Agent phrase, 8000 Hz mono s16 (reference; baresip aufile source).
pub const AGENT_WAV: &str = "agent.wav";
/// Agent phrase as 8000 Hz μ-law (SIPp rtp_stream).
pub const AGENT_ULAW_WAV: &str = "agent-ulaw.wav";
/// Client phrase, 8000 Hz mono s16.
pub const CLIENT_WAV: &str = "client.wav";
/// Client phrase as 8000 Hz μ-law (SIPp rtp_stream).
pub const CLIENT_ULAW_WAV: &str = "client-ulaw.wav";
pub const AGENT_TEXT: &str =
    "Hello, this is the callback desk of the securities company, calling about your new account.";
pub const CLIENT_TEXT: &str = "Yes, I opened the account myself and I understand the risks.";

/// Envelope frame length.
pub const FRAME_MS: u32 = 20;
/// Lag window of `speech_score`: the phrase may start up to 5 s into the
/// recording (and, with at least `MIN_OVERLAP` of it recorded, before it).
pub const MAX_LAG_SECS: f64 = 5.0;
/// Share of the reference's non-silent frames an alignment must cover.
pub const MIN_OVERLAP: f64 = 0.7;
/// A frame is "non-silent" above this fraction of the loudest frame's RMS.
pub const ACTIVE_FRACTION: f64 = 0.05;
/// Suggested thresholds: the played phrase scores above `SAME_MIN`, the
/// other phrase (or silence, noise) below `OTHER_MAX`.
pub const SAME_MIN: f64 = 0.8;
pub const OTHER_MAX: f64 = 0.5;

/// `tests/fixtures/audio/<name>`; panics if missing.
pub fn fixture(name: &str) -> PathBuf {
    let p = super::repo_root().join("tests").join("fixtures").join("audio").join(name);
    assert!(p.is_file(), "no audio fixture {} (scripts/make-test-audio.sh makes them)", p.display());
    p
}

// ---------------------------------------------------------------- reading

/// Read a WAV: (sample rate, channels, interleaved samples as i16).
///
/// PCM 16-bit (and 8/24/32-bit int, float) is read with hound. Files hound
/// refuses are parsed by hand when they are μ-law or A-law (SIPp's stream
/// files) or 16-bit PCM whose header sizes were never finalised (baresip's
/// sndfile dumps and other recordings read while still being written: the
/// data then runs to the end of the file). Panics on anything else.
pub fn read_wav(path: impl AsRef<Path>) -> (u32, u16, Vec<i16>) {
    let path = path.as_ref();
    try_read_wav(path).unwrap_or_else(|e| panic!("read WAV {}: {e}", path.display()))
}

/// `read_wav` without the panic.
pub fn try_read_wav(path: &Path) -> io::Result<(u32, u16, Vec<i16>)> {
    match hound::WavReader::open(path) {
        Ok(mut r) => {
            let spec = r.spec();
            if spec.channels == 0 || spec.sample_rate == 0 {
                return Err(io::Error::other("WAV header with 0 channels or rate"));
            }
            let samples: Result<Vec<i16>, hound::Error> = match spec.sample_format {
                hound::SampleFormat::Int if spec.bits_per_sample == 16 => r.samples::<i16>().collect(),
                hound::SampleFormat::Int => {
                    let shift = spec.bits_per_sample.saturating_sub(16);
                    let up = 16u16.saturating_sub(spec.bits_per_sample);
                    r.samples::<i32>().map(|s| s.map(|v| ((v >> shift) << up) as i16)).collect()
                }
                hound::SampleFormat::Float => r
                    .samples::<f32>()
                    .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0).round() as i16))
                    .collect(),
            };
            match samples {
                // A header whose sizes were never finalised (0) claims less
                // data than the file holds: take the longer hand-parsed read.
                Ok(s)
                    if spec.bits_per_sample == 16
                        && (s.len() as u64 * 2 + 44) < fs::metadata(path)?.len() =>
                {
                    match parse_wav_by_hand(&fs::read(path)?) {
                        Ok(h) if h.2.len() > s.len() => Ok(h),
                        _ => Ok((spec.sample_rate, spec.channels, s)),
                    }
                }
                Ok(s) => Ok((spec.sample_rate, spec.channels, s)),
                // truncated data chunk (file still being written): fall back
                Err(_) => parse_wav_by_hand(&fs::read(path)?),
            }
        }
        Err(hound::Error::IoError(e)) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => parse_wav_by_hand(&fs::read(path)?),
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Minimal RIFF/WAVE parser: PCM s16 (format 1 or extensible), A-law (6),
/// μ-law (7). A data chunk size of 0, 0xFFFFFFFF or past the end of the file
/// means "to the end of the file".
fn parse_wav_by_hand(b: &[u8]) -> io::Result<(u32, u16, Vec<i16>)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None; // tag, channels, rate, bits
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let size = le32(b, at + 4) as usize;
        let body = at + 8;
        if id == b"fmt " {
            if body + 16 > b.len() {
                return Err(bad("short fmt chunk"));
            }
            let mut tag = le16(b, body);
            if tag == 0xFFFE && size >= 26 && body + 26 <= b.len() {
                tag = le16(b, body + 24); // WAVE_FORMAT_EXTENSIBLE subformat
            }
            fmt = Some((tag, le16(b, body + 2), le32(b, body + 4), le16(b, body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or_else(|| bad("data before fmt"))?;
            if channels == 0 || rate == 0 {
                return Err(bad("fmt with 0 channels or rate"));
            }
            let end =
                if size == 0 || size == 0xFFFF_FFFF || body + size > b.len() { b.len() } else { body + size };
            let data = &b[body..end];
            let samples: Vec<i16> = match (tag, bits) {
                (1, 16) => data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect(),
                (7, 8) => data.iter().map(|&x| ulaw_decode(x)).collect(),
                (6, 8) => data.iter().map(|&x| alaw_decode(x)).collect(),
                _ => return Err(bad(&format!("unsupported WAV format {tag}/{bits} bit"))),
            };
            let whole = samples.len() - samples.len() % channels as usize;
            let mut samples = samples;
            samples.truncate(whole);
            return Ok((rate, channels, samples));
        }
        at = body + size + (size & 1);
    }
    Err(bad("no data chunk"))
}

/// G.711 μ-law byte to linear 16-bit.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0F) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// G.711 A-law byte to linear 16-bit.
pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// One channel of interleaved samples.
pub fn channel(samples: &[i16], channels: u16, idx: usize) -> Vec<i16> {
    let n = channels as usize;
    assert!(idx < n, "channel {idx} of a {n}-channel signal");
    samples.iter().skip(idx).step_by(n).copied().collect()
}

/// Write mono or interleaved s16 samples as a WAV.
pub fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w =
        hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    for &s in samples {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finalize WAV");
}

/// Copy a mono s16 WAV (e.g. `fixture(AGENT_WAV)`) to `dst`, padded with
/// silence to `total_secs` (the phrase once). For baresip's aufile, which
/// hangs up when the file ends.
pub fn write_padded(src: &Path, dst: &Path, total_secs: f64) {
    let (rate, ch, mut s) = read_wav(src);
    let want = (total_secs * rate as f64).round() as usize * ch as usize;
    s.resize(want.max(s.len()), 0);
    write_wav(dst, rate, ch, &s);
}

/// Copy a mono s16 WAV to `dst`, repeated (gaplessly, each copy keeping the
/// fixture's own leading/trailing silence) to fill `total_secs`.
pub fn write_repeated(src: &Path, dst: &Path, total_secs: f64) {
    let (rate, ch, s) = read_wav(src);
    assert!(!s.is_empty(), "{} is empty", src.display());
    let want = (total_secs * rate as f64).round() as usize * ch as usize;
    let out: Vec<i16> = s.iter().copied().cycle().take(want.max(s.len())).collect();
    write_wav(dst, rate, ch, &out);
}

// ---------------------------------------------------------------- measuring

/// Samples per envelope frame at `rate`.
pub fn frame_len(rate: u32) -> usize {
    ((rate as u64 * FRAME_MS as u64) / 1000).max(1) as usize
}

/// 20 ms RMS energy envelope (linear, full scale = 32768); a trailing partial
/// frame is dropped.
pub fn envelope(samples: &[i16], rate: u32) -> Vec<f64> {
    let n = frame_len(rate);
    samples
        .chunks_exact(n)
        .map(|f| (f.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / n as f64).sqrt())
        .collect()
}

/// RMS level in dBFS (-inf for digital silence).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms = samples.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / samples.len() as f64;
    20.0 * (ms.sqrt() / 32768.0).log10()
}

/// Peak level in dBFS.
pub fn peak_dbfs(samples: &[i16]) -> f64 {
    let p = samples.iter().map(|&s| (s as i32).abs()).max().unwrap_or(0);
    20.0 * (p as f64 / 32768.0).log10()
}

/// Indices of frames above `ACTIVE_FRACTION` of the loudest frame.
fn active_frames(env: &[f64]) -> Vec<bool> {
    let peak = env.iter().cloned().fold(0.0, f64::max);
    let thr = peak * ACTIVE_FRACTION;
    env.iter().map(|&e| peak > 0.0 && e > thr).collect()
}

/// Pearson r of two equally long series; 0 if either is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    if a.len() < 2 {
        return 0.0;
    }
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    // constant (or numerically constant) series: no evidence either way
    if saa <= 1e-9 * n || sbb <= 1e-9 * n {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// Result of `align`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Pearson r of the overlapping frames.
    pub r: f64,
    /// Reference frame i lines up with recorded frame i + lag; negative when
    /// the phrase started before the recording did.
    pub lag: isize,
    /// Frames compared.
    pub overlap: usize,
}

/// Best Pearson r of `reference` against `recorded` over lags
/// `min_lag..=max_lag` (frames; reference frame i vs recorded frame i + lag),
/// each computed on the overlapping frames only, and only for lags where the
/// overlap holds at least `MIN_OVERLAP` of the reference's non-silent frames.
/// `None` if no lag qualifies (recording too short, reference silent).
pub fn align(recorded: &[f64], reference: &[f64], min_lag: isize, max_lag: isize) -> Option<Alignment> {
    let active = active_frames(reference);
    let total_active = active.iter().filter(|&&a| a).count();
    if total_active == 0 {
        return None;
    }
    // prefix count of active frames
    let mut pre = vec![0usize; active.len() + 1];
    for (i, &a) in active.iter().enumerate() {
        pre[i + 1] = pre[i] + a as usize;
    }
    let n_ref = reference.len() as isize;
    let n_rec = recorded.len() as isize;
    let need = (MIN_OVERLAP * total_active as f64).ceil() as usize;
    let mut best: Option<Alignment> = None;
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
        let a = &reference[lo..hi];
        let b = &recorded[(lo as isize + lag) as usize..(hi as isize + lag) as usize];
        let r = pearson(a, b);
        if best.map(|x| r > x.r).unwrap_or(true) {
            best = Some(Alignment { r, lag, overlap: hi - lo });
        }
    }
    best
}

/// Best overlap-normalised Pearson r of the envelopes over lags
/// `0..=max_lag_frames` (the phrase starts that many frames into the
/// recording), and also negative lags, i.e. the recording started after the
/// phrase did, as long as `MIN_OVERLAP` of the reference's speech is in the
/// recording. Returns (r, lag); a negative best lag is reported as 0 (use
/// `align` for the signed lag). (0.0, 0) when nothing can be compared.
pub fn best_correlation(recorded: &[f64], reference: &[f64], max_lag_frames: usize) -> (f64, usize) {
    let min_lag = -(reference.len() as isize);
    match align(recorded, reference, min_lag, max_lag_frames as isize) {
        Some(a) => (a.r, a.lag.max(0) as usize),
        None => (0.0, 0),
    }
}

/// The non-silent span of an envelope, `start..end` frames, widened by
/// `margin` frames each side (within bounds); `None` if all silent.
pub fn active_span(env: &[f64], margin: usize) -> Option<std::ops::Range<usize>> {
    let active = active_frames(env);
    let first = active.iter().position(|&a| a)?;
    let last = active.iter().rposition(|&a| a)?;
    Some(first.saturating_sub(margin)..(last + 1 + margin).min(env.len()))
}

/// How well one recording channel carries the phrase in `reference_wav`
/// (mono; the recording must have the same sample rate, 8 kHz for the
/// fixtures): Pearson r of the 20 ms envelopes at the best lag, the file
/// starting 0-5 s into the recording (or the recording starting during the
/// phrase, with `MIN_OVERLAP` of its speech recorded).
///
/// The reference's leading and trailing silence is dropped first (2 frames
/// kept each side): silence lined up with silence would otherwise count as
/// agreement and lift the score of the wrong phrase (to ~0.5 instead of
/// ~0.3 with the fixtures). The recording is tried at four sub-frame phases
/// (0, 5, 10, 15 ms) so that a phrase off the 20 ms grid still scores ~0.98.
pub fn speech_score(recording_channel: &[i16], reference_wav: &Path) -> f64 {
    let (rate, ch, refs) = read_wav(reference_wav);
    let reference = if ch == 1 { refs } else { channel(&refs, ch, 0) };
    let ref_env = envelope(&reference, rate);
    let Some(span) = active_span(&ref_env, 2) else {
        panic!("reference {} is silent", reference_wav.display());
    };
    let max_lag = (MAX_LAG_SECS * 1000.0 / FRAME_MS as f64) as usize + span.start;
    // The phrase rarely starts on the recording's 20 ms grid; half a frame off
    // costs ~0.07. Try the recording at four sub-frame phases, keep the best.
    let n = frame_len(rate);
    (0..4)
        .map(|q| q * n / 4)
        .filter(|&phase| phase < recording_channel.len())
        .map(|phase| {
            let rec_env = envelope(&recording_channel[phase..], rate);
            best_correlation(&rec_env, &ref_env[span.clone()], max_lag).0
        })
        .fold(0.0, f64::max)
}

/// Scores of both channels of a stereo recording against both phrases.
#[derive(Debug, Clone, Copy)]
pub struct StereoScores {
    pub left_agent: f64,
    pub left_client: f64,
    pub right_agent: f64,
    pub right_client: f64,
    /// RMS of each channel, dBFS.
    pub left_dbfs: f64,
    pub right_dbfs: f64,
}

impl StereoScores {
    /// Left carries the agent phrase and right the client phrase, each
    /// clearly (`SAME_MIN`) and not the other (`OTHER_MAX`).
    pub fn agent_left_client_right(&self) -> bool {
        self.left_agent >= SAME_MIN
            && self.right_client >= SAME_MIN
            && self.left_client <= OTHER_MAX
            && self.right_agent <= OTHER_MAX
    }
}

/// Score a stereo recording (left = agent, right = client, as huifang writes
/// them) against two reference WAVs. Panics unless the file is 2-channel.
pub fn stereo_scores(recording: &Path, agent_ref: &Path, client_ref: &Path) -> StereoScores {
    let (rate, ch, s) = read_wav(recording);
    assert_eq!(ch, 2, "{} has {ch} channels, want 2", recording.display());
    for reference in [agent_ref, client_ref] {
        let (ref_rate, _, _) = read_wav(reference);
        assert_eq!(
            rate,
            ref_rate,
            "{} is {rate} Hz, {} is {ref_rate} Hz",
            recording.display(),
            reference.display()
        );
    }
    let (l, r) = (channel(&s, 2, 0), channel(&s, 2, 1));
    StereoScores {
        left_agent: speech_score(&l, agent_ref),
        left_client: speech_score(&l, client_ref),
        right_agent: speech_score(&r, agent_ref),
        right_client: speech_score(&r, client_ref),
        left_dbfs: rms_dbfs(&l),
        right_dbfs: rms_dbfs(&r),
    }
}

/// Panic (with all scores) unless `recording` has the agent phrase on the
/// left and the client phrase on the right, scored against the fixtures.
pub fn assert_agent_left_client_right(recording: &Path) -> StereoScores {
    let s = stereo_scores(recording, &fixture(AGENT_WAV), &fixture(CLIENT_WAV));
    assert!(
        s.agent_left_client_right(),
        "{}: want left = agent, right = client (same >= {SAME_MIN}, other <= {OTHER_MAX}), got {s:?}",
        recording.display()
    );
    s
}

/// The newest `dump-*-<kind>.wav` in a baresip `snd_dir()` (`kind` "dec" =
/// what the phone heard, "enc" = what it sent). sndfile names them
/// `dump-<YYYY-MM-DD-hh-mm-ss>-dec.wav`; with several calls in one second
/// the newest by mtime wins. The header is finalised only at hang-up, but
/// `read_wav` copes with an unfinished one.
pub fn baresip_dump(snd_dir: &Path, kind: &str) -> Option<PathBuf> {
    let suffix = format!("-{kind}.wav");
    fs::read_dir(snd_dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(|n| n.starts_with("dump-") && n.ends_with(&suffix))
                .unwrap_or(false)
        })
        .max_by_key(|p| {
            (fs::metadata(p).and_then(|m| m.modified()).ok(), p.file_name().map(|n| n.to_owned()))
        })
}
