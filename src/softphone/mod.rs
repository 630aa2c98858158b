//! A small, real SIP softphone on huifang's own stack: `huifang softphone`,
//! and the simulated agent and clients of `huifang demo`.
//!
//! It registers to a registrar with digest authentication (huifang's
//! built-in one or a switch such as Kamailio), answers incoming calls by
//! itself after a delay or dials a URI, plays a WAV (8 kHz mono 16-bit)
//! into each call as 20 ms G.711 packets, records what it hears to a WAV
//! (one file per call), hangs up after a while or when the other side
//! does, and reports every call. Useful beyond the demo: "ring me" smoke
//! tests of a deployment, and load.
//!
//! | module | what | IO? |
//! | --- | --- | --- |
//! | [`ua`] | the user agent: registration, calls in and out, SDP | no |
//! | [`media`] | RTP packets out of the prompt, received packets into the timeline | no |
//! | [`driver`] | the SIP socket, the clock, one media task per call, WAV files | tokio |
//!
//! The user agent is built from the sans-IO cores of [`crate::sip`]
//! (transactions, registration, dialogs, digest) and [`crate::media::sdp`];
//! only the driver touches sockets, files and the clock. SIP over UDP.

pub mod driver;
pub mod media;
pub mod ua;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

pub use driver::{CallReport, Options, Softphone, Status, Summary};

/// What can go wrong around a softphone (not in a call: calls end with a
/// reason, they do not fail). The texts name files and addresses of our
/// own, never a party's URI.
#[derive(Debug, thiserror::Error)]
pub enum SoftphoneError {
    /// The SIP or an RTP socket could not be bound.
    #[error("binding {what}: {source}")]
    Bind {
        /// Which socket.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The WAV to play is unusable.
    #[error("the audio to play ({what}): {reason}")]
    Prompt {
        /// Its file name (or "embedded").
        what: String,
        /// Why.
        reason: String,
    },
    /// The options do not make a phone.
    #[error("{0}")]
    Options(String),
    /// The driver task panicked or was cancelled.
    #[error("the softphone task ended abnormally: {0}")]
    Task(String),
}

/// Reads a WAV to play: 8000 Hz, mono, 16-bit PCM.
pub fn load_prompt(path: &Path) -> Result<Arc<[i16]>, SoftphoneError> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| SoftphoneError::Prompt { what: what.clone(), reason: e.to_string() })?;
    prompt_from_reader(std::io::BufReader::new(file), &what)
}

/// Reads a WAV to play from memory (an embedded file).
pub fn prompt_from_bytes(bytes: &[u8], what: &str) -> Result<Arc<[i16]>, SoftphoneError> {
    prompt_from_reader(std::io::Cursor::new(bytes), what)
}

fn prompt_from_reader<R: Read>(r: R, what: &str) -> Result<Arc<[i16]>, SoftphoneError> {
    let err = |reason: String| SoftphoneError::Prompt { what: what.to_string(), reason };
    let reader = hound::WavReader::new(r).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != media::RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(err(format!(
            "want 8000 Hz mono 16-bit PCM, got {} Hz, {} channel(s), {} bits",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        )));
    }
    let samples: Vec<i16> =
        reader.into_samples::<i16>().collect::<Result<_, _>>().map_err(|e| err(e.to_string()))?;
    Ok(samples.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn prompts_must_be_8k_mono_16_bit() {
        let p = prompt_from_bytes(&wav(8000, 1, &[1, -2, 3]), "t").unwrap();
        assert_eq!(&*p, &[1, -2, 3]);
        let e = prompt_from_bytes(&wav(16000, 1, &[0]), "t.wav").unwrap_err().to_string();
        assert!(e.contains("t.wav") && e.contains("16000 Hz"), "{e}");
        assert!(prompt_from_bytes(&wav(8000, 2, &[0, 0]), "t").is_err());
        assert!(prompt_from_bytes(b"not a wav", "t").is_err());
    }

    #[test]
    fn the_demo_speech_is_usable() {
        for f in ["config/demo/audio/agent.wav", "config/demo/audio/client.wav"] {
            let p = load_prompt(&Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
            let secs = p.len() as f64 / 8000.0;
            assert!((1.5..=5.0).contains(&secs), "{f}: {secs} s");
        }
    }
}
