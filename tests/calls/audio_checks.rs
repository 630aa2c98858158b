//! The audio checks the call tests rely on, checked themselves: the
//! energy-envelope correlation tells the same phrase through G.711 (≥ 0.9)
//! from the other phrase (≤ 0.5), and finds each channel of a stereo file.

use crate::common;
use common::audio::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn sox(args: &[&str]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .unwrap_or_else(|_| common::peer_missing("sox", "scripts/install-peers.sh"));
    assert!(out.status.success(), "sox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn mono(path: &Path) -> Vec<i16> {
    let (rate, ch, s) = read_wav(path);
    assert_eq!((rate, ch), (8000, 1), "{}", path.display());
    s
}

#[test]
fn fixtures_are_sane() {
    for name in [AGENT_WAV, CLIENT_WAV] {
        let s = mono(&fixture(name));
        assert_eq!(s.len(), 7 * 8000, "{name}");
        let (pk, rms) = (peak_dbfs(&s), rms_dbfs(&s));
        assert!((-6.0..-1.0).contains(&pk), "{name}: peak {pk:.1} dBFS");
        assert!((-30.0..-15.0).contains(&rms), "{name}: rms {rms:.1} dBFS");
    }
    for name in [AGENT_ULAW_WAV, CLIENT_ULAW_WAV] {
        let s = mono(&fixture(name));
        assert_eq!(s.len(), 7 * 8000, "{name}");
    }
}

#[test]
fn g711_decoders_match_reference_points() {
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x7F), 0);
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(alaw_decode(0xAA), 32256);
}

#[test]
fn committed_ulaw_copy_decodes_like_the_pcm() {
    let pcm = mono(&fixture(AGENT_WAV));
    let ulaw = mono(&fixture(AGENT_ULAW_WAV));
    let r = pearson(&envelope(&pcm, 8000), &envelope(&ulaw, 8000));
    assert!(r > 0.99, "r = {r}");
}

/// (a) the agent phrase after a μ-law round trip (sox) and behind 1.3 s of
/// silence still scores high against the original.
#[test]
fn same_phrase_through_ulaw_with_lead_in_scores_high() {
    let dir = tempfile::tempdir().unwrap();
    let ul = dir.path().join("agent-ul.wav");
    let back = dir.path().join("agent-back.wav");
    let src = fixture(AGENT_WAV);
    sox(&[src.to_str().unwrap(), "-e", "u-law", "-b", "8", ul.to_str().unwrap(), "pad", "1.3"]);
    sox(&[ul.to_str().unwrap(), "-e", "signed-integer", "-b", "16", back.to_str().unwrap()]);
    let rec = mono(&back);
    let score = speech_score(&rec, &src);
    eprintln!("agent vs agent (ulaw, +1.3 s): {score:.3}");
    assert!(score >= 0.9, "same phrase scored {score}");
    // the lag is found: 1.3 s = 65 frames
    let (_, lag) = best_correlation(&envelope(&rec, 8000), &envelope(&mono(&src), 8000), 250);
    assert!((64..=66).contains(&lag), "lag {lag}");
    // worst case: half a frame (10 ms) off the frame grid
    let mut off = vec![0i16; 80];
    off.extend_from_slice(&rec);
    let score = speech_score(&off, &src);
    eprintln!("agent vs agent (ulaw, +1.31 s): {score:.3}");
    assert!(score >= 0.95, "same phrase, half a frame off, scored {score}");
}

/// (b) the other phrase scores low, both ways, at any lead-in and with
/// or without trailing silence; the right phrase high at the same offsets.
#[test]
fn different_phrases_score_low() {
    let agent = mono(&fixture(AGENT_WAV));
    let client = mono(&fixture(CLIENT_WAV));
    let (mut worst_other, mut worst_same) = (f64::MIN, f64::MAX);
    for lead in [0usize, 7211, 21633, 36055] {
        for tail in [0usize, 24000] {
            let rec = |s: &[i16]| {
                let mut v = vec![0i16; lead];
                v.extend_from_slice(s);
                v.resize(v.len() + tail, 0);
                v
            };
            let (a, c) = (rec(&agent), rec(&client));
            let ac = speech_score(&a, &fixture(CLIENT_WAV));
            let ca = speech_score(&c, &fixture(AGENT_WAV));
            let aa = speech_score(&a, &fixture(AGENT_WAV));
            let cc = speech_score(&c, &fixture(CLIENT_WAV));
            worst_other = worst_other.max(ac).max(ca);
            worst_same = worst_same.min(aa).min(cc);
        }
    }
    eprintln!("lead 0-5 s: same phrase >= {worst_same:.3}, other phrase <= {worst_other:.3}");
    assert!(worst_other <= 0.4, "other phrase scored {worst_other}");
    assert!(worst_same >= 0.95, "same phrase scored {worst_same}");
}

/// Silence and a steady tone carry no phrase.
#[test]
fn silence_and_tone_score_low() {
    let silence = vec![0i16; 8000 * 10];
    assert_eq!(speech_score(&silence, &fixture(AGENT_WAV)), 0.0);
    let tone: Vec<i16> = (0..8000 * 10)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let s = speech_score(&tone, &fixture(AGENT_WAV));
    assert!(s < 0.3, "tone scored {s}");
}

/// The recording may begin mid-phrase (up to 30 % of the speech cut).
#[test]
fn phrase_cut_at_recording_start_still_matches() {
    let agent = mono(&fixture(AGENT_WAV));
    let cut = &agent[8000..]; // 1 s of a 5 s phrase that starts at 0.25 s
    let rec_env = envelope(cut, 8000);
    let ref_env = envelope(&agent, 8000);
    let a = align(&rec_env, &ref_env, -(ref_env.len() as isize), 250).unwrap();
    assert_eq!(a.lag, -50);
    assert!(a.r > 0.99, "{a:?}");
    assert!(speech_score(cut, &fixture(AGENT_WAV)) > 0.99);
    // too much cut: 3 s of 5 s → no qualifying alignment at the true lag
    let a = align(&envelope(&agent[24000..], 8000), &ref_env, -150, -150);
    assert!(a.is_none(), "{a:?}");
}

/// A looping stream (SIPp rtp_stream, write_repeated) matches too.
#[test]
fn looped_phrase_matches() {
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("client-loop.wav");
    write_repeated(&fixture(CLIENT_WAV), &looped, 30.0);
    let s = mono(&looped);
    assert_eq!(s.len(), 30 * 8000);
    // recording starts 3.3 s into the loop
    let rec = &s[26400..];
    assert!(speech_score(rec, &fixture(CLIENT_WAV)) > 0.95);
    assert!(speech_score(rec, &fixture(AGENT_WAV)) < 0.5);
    let padded = dir.path().join("agent-40.wav");
    write_padded(&fixture(AGENT_WAV), &padded, 40.0);
    assert_eq!(mono(&padded).len(), 40 * 8000);
}

/// (c) a stereo file made by sox (left = agent, right = client, each
/// with its own offset, through μ-law) has the channels told apart; the
/// swapped file is caught.
#[test]
fn stereo_channel_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (agent, client) = (fixture(AGENT_WAV), fixture(CLIENT_WAV));
    sox(&[agent.to_str().unwrap(), &p("l.wav"), "pad", "0.7", "3"]);
    sox(&[client.to_str().unwrap(), &p("r.wav"), "pad", "2.1", "1.6"]);
    sox(&["-M", &p("l.wav"), &p("r.wav"), "-e", "u-law", "-b", "8", &p("st-ul.wav")]);
    sox(&[&p("st-ul.wav"), "-e", "signed-integer", "-b", "16", &p("stereo.wav")]);
    sox(&["-M", &p("r.wav"), &p("l.wav"), &p("swapped.wav")]);
    let s = assert_agent_left_client_right(Path::new(&p("stereo.wav")));
    eprintln!("stereo: {s:?}");
    let w = stereo_scores(Path::new(&p("swapped.wav")), &agent, &client);
    eprintln!("swapped: {w:?}");
    assert!(!w.agent_left_client_right());
    assert!(w.left_client >= SAME_MIN && w.right_agent >= SAME_MIN);
    assert!(w.left_agent <= OTHER_MAX && w.right_client <= OTHER_MAX);
}

#[test]
fn unfinished_header_is_read_to_end_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump-2024-01-01-00-00-00-dec.wav");
    let samples: Vec<i16> = (0..800).map(|i| (i * 7) as i16).collect();
    write_wav(&path, 8000, 1, &samples);
    let mut bytes = fs::read(&path).unwrap();
    // what sndfile leaves before hang-up: RIFF and data sizes not yet set
    bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    bytes[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let (rate, ch, back) = read_wav(&path);
    assert_eq!((rate, ch), (8000, 1));
    assert_eq!(back, samples);
    assert_eq!(baresip_dump(dir.path(), "dec"), Some(path));
    assert_eq!(baresip_dump(dir.path(), "enc"), None);
}
