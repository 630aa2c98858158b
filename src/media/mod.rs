//! Media: SDP, RTP relay, G.711, the two-sided timeline and the recorder.
//!
//! | module | what | IO? |
//! | --- | --- | --- |
//! | [`sdp`] | SDP offer/answer for the codecs we speak | no |
//! | [`g711`] | μ-law and A-law to and from linear PCM | no |
//! | [`rtp`] | RTP header parsing | no |
//! | [`dtmf`] | RFC 4733 telephone-events as call events | no |
//! | [`timeline`] | both sides on one timeline: reorder, gaps, silence | no |
//! | [`recorder`] | stereo WAV writing on blocking threads; seal; repair | files |
//! | [`ports`] | the RTP port range | no |
//! | [`relay`] | a call's RTP/RTCP sockets: latch, forward, record | tokio |

pub mod dtmf;
pub mod g711;
pub mod ports;
pub mod recorder;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod timeline;
