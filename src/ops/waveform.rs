//! A recording's waveform, computed on the server for the player: the
//! peak level of each channel — the agent on the left, the client on the
//! right, as recorded — in equal slices of the recording.
//!
//! The WAV is read as a stream (from the archive's recorded version or the
//! spool, through [`super::recordings::open_audio`], so the same person may
//! see it who may play it, and a refusal is audited the same way), on a
//! blocking thread, one slice in memory at a time: an hour-long recording
//! costs its read, never its size in memory. Peaks are per mille of full
//! scale, which is what a drawing needs and no more.
//!
//! A waveform is not audited as a play: it shows when each side spoke and
//! how loud, never what was said.

use std::io::Read;

use serde::Serialize;

use super::OpsError;

/// The slices a waveform has when none is asked for.
pub const DEFAULT_POINTS: usize = 800;
/// The most slices a waveform may have.
pub const MAX_POINTS: usize = 4000;

/// The peaks of both channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waveform {
    /// Frames per second.
    pub sample_rate: u32,
    /// The audio's length.
    pub duration_ms: u64,
    /// Frames per slice (the last slice may be shorter).
    pub frames_per_point: u64,
    /// The agent's channel (left): one peak per slice, 0..=1000.
    pub agent: Vec<u16>,
    /// The client's channel (right).
    pub client: Vec<u16>,
}

/// Reads a 16-bit WAV (mono or stereo) from `r` and computes its peaks in
/// at most `points` slices. A mono file gives the same peaks to both.
pub fn peaks(r: impl Read, points: usize) -> Result<Waveform, OpsError> {
    if !(1..=MAX_POINTS).contains(&points) {
        return Err(OpsError::invalid("points", format!("must be in 1..={MAX_POINTS}")));
    }
    let bad = |e: hound::Error| OpsError::Internal(format!("reading the recording's WAV: {e}"));
    let mut wav = hound::WavReader::new(std::io::BufReader::with_capacity(64 * 1024, r)).map_err(bad)?;
    let spec = wav.spec();
    if spec.bits_per_sample != 16 || !(1..=2).contains(&spec.channels) {
        return Err(OpsError::Internal(format!(
            "the recording is {} channels of {} bits, not 16-bit mono or stereo",
            spec.channels, spec.bits_per_sample
        )));
    }
    let channels = usize::from(spec.channels);
    let frames = u64::from(wav.duration());
    let per = frames.div_ceil(points as u64).max(1);
    let slices = frames.div_ceil(per) as usize;
    let (mut agent, mut client) = (Vec::with_capacity(slices), Vec::with_capacity(slices));
    let (mut peak, mut n, mut i) = ([0u16; 2], 0u64, 0usize);
    let scale = |p: u16| ((u32::from(p) * 1000 + 16_384) / 32_768) as u16;
    for s in wav.samples::<i16>() {
        // a recording cut short (an interrupted call) ends where its data does
        let Ok(s) = s else { break };
        let ch = if channels == 1 { 0 } else { i % 2 };
        peak[ch] = peak[ch].max(s.unsigned_abs());
        i += 1;
        if i == channels {
            i = 0;
            n += 1;
            if n == per {
                if channels == 1 {
                    peak[1] = peak[0];
                }
                agent.push(scale(peak[0]));
                client.push(scale(peak[1]));
                (peak, n) = ([0; 2], 0);
            }
        }
    }
    if n > 0 {
        if channels == 1 {
            peak[1] = peak[0];
        }
        agent.push(scale(peak[0]));
        client.push(scale(peak[1]));
    }
    Ok(Waveform {
        sample_rate: spec.sample_rate,
        duration_ms: frames * 1000 / u64::from(spec.sample_rate.max(1)),
        frames_per_point: per,
        agent,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, frames: &[(i16, i16)]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for (l, r) in frames {
            w.write_sample(*l).unwrap();
            if channels == 2 {
                w.write_sample(*r).unwrap();
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn each_channel_has_its_own_peaks() {
        // one second: the agent speaks in the first half, the client in the second
        let frames: Vec<(i16, i16)> =
            (0..8000).map(|i| if i < 4000 { (16_384, 0) } else { (0, -32_768) }).collect();
        let w = peaks(&wav(2, &frames)[..], 10).unwrap();
        assert_eq!((w.sample_rate, w.duration_ms, w.frames_per_point), (8000, 1000, 800));
        assert_eq!(w.agent, (0..10).map(|i| if i < 5 { 500 } else { 0 }).collect::<Vec<u16>>());
        assert_eq!(w.client, (0..10).map(|i| if i < 5 { 0 } else { 1000 }).collect::<Vec<u16>>());
    }

    #[test]
    fn slices_cover_the_whole_recording() {
        let frames: Vec<(i16, i16)> = (0..1001).map(|i| (if i == 1000 { 100 } else { 0 }, 0)).collect();
        let w = peaks(&wav(2, &frames)[..], 10).unwrap();
        assert_eq!(w.frames_per_point, 101);
        assert_eq!(w.agent.len(), 10);
        assert_eq!(*w.agent.last().unwrap(), 3, "the last frame is in the last slice");
        // fewer frames than points: one slice per frame
        let w = peaks(&wav(2, &[(1, 1), (2, 2)])[..], 800).unwrap();
        assert_eq!(w.agent.len(), 2);
    }

    #[test]
    fn mono_gives_both_the_same_and_bad_asks_are_refused() {
        let w = peaks(&wav(1, &[(32_767, 0); 16])[..], 4).unwrap();
        assert_eq!(w.agent, vec![1000; 4]);
        assert_eq!(w.client, w.agent);
        assert!(peaks(&wav(1, &[(0, 0)])[..], 0).is_err());
        assert!(peaks(&wav(1, &[(0, 0)])[..], MAX_POINTS + 1).is_err());
        assert!(peaks(&b"not a wav"[..], 10).is_err());
    }

    #[test]
    fn a_truncated_file_gives_the_peaks_it_has() {
        let mut bytes = wav(2, &[(1000, 2000); 800]);
        bytes.truncate(44 + 400 * 4);
        let w = peaks(&bytes[..], 8).unwrap();
        assert_eq!(w.agent.len(), 4, "the header says 800 frames; 400 are there");
        assert_eq!(w.client[0], 61);
    }
}
