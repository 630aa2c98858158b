//! SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and
//! telephone-event (RFC 4733).
//!
//! huifang is a back-to-back user agent with its own relay, so every SDP it
//! sends describes one of its relay ports, and every SDP it receives is
//! reduced to a [`RemoteMedia`]: where the peer wants audio, which codecs (in
//! the peer's order), which payload type carries telephone-events, and the
//! direction.
//!
//! ## Driving contract
//!
//! Pure functions, no IO, no clock:
//!
//! - a peer's SDP (offer or answer) → [`parse`] → [`RemoteMedia`];
//! - we offer → [`offer`]; the peer answers → [`parse`] then [`negotiated`];
//! - the peer offers → [`parse`] then [`answer`] (our SDP and what was agreed).
//!
//! [`LocalSession::version`] must grow by one for every SDP we send in a
//! dialog (RFC 3264 §8); [`LocalSession::next_version`] does that.
//!
//! Parsing and printing go through `sdp-types`, which keeps attributes it
//! does not know. Only the first audio `m=` line over RTP/AVP (or RTP/AVPF)
//! is used; an answer rejects every other `m=` line in place (port 0), as
//! RFC 3264 §6 asks. A connection address must be an IP address (no host
//! names: this module does not resolve) and unicast.
//!
//! Errors never quote the SDP: they name the part that was wrong.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sdp_types::{
    AddrType, Attribute, Connection, MediaType, NetType, Origin, ParserError, Rtcp, RtpMap, Session, Time,
};

use crate::media::g711::Codec;

/// The encoding name of RFC 4733 events in `a=rtpmap`.
const TELEPHONE_EVENT: &str = "telephone-event";
/// The only clock rate we speak (G.711 and its telephone-events).
const CLOCK_RATE: u32 = 8000;
/// The events we announce in `a=fmtp`: DTMF 0–9, *, #, A–D and flash.
const EVENTS: &str = "0-16";
/// The packet time we ask for.
const PTIME_MS: u32 = 20;

/// The direction of a media stream, from the point of view of the side whose
/// SDP it is (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives (the default when no attribute is present).
    SendRecv,
    /// Sends only: the usual way to put the other side on hold.
    SendOnly,
    /// Receives only.
    RecvOnly,
    /// Neither sends nor receives.
    Inactive,
}

impl Direction {
    /// The same stream seen from the other end: `sendonly` ↔ `recvonly`.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the side with this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side with this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What both may do: we send only if `self` sends and `other` receives,
    /// and receive only if `self` receives and `other` sends, where `other`
    /// is already seen from our side (i.e. reversed).
    fn intersect(self, other: Direction) -> Direction {
        let send = self.sends() && other.sends();
        let recv = self.receives() && other.receives();
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

/// One `m=` line of a peer's SDP as it was written, kept so that an answer
/// can reject the lines we do not use in place (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// Media type (`audio`, `video`, …).
    pub media: String,
    /// Transport protocol (`RTP/AVP`, …).
    pub proto: String,
    /// The format list, unparsed.
    pub fmt: String,
}

/// The audio stream a peer described in its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where the peer wants RTP: the connection address (media or session
    /// level) and the `m=` port. An unspecified IP (`0.0.0.0`, `::`) is the
    /// RFC 2543 way of putting us on hold: send nothing there.
    pub addr: SocketAddr,
    /// Where the peer wants RTCP, if it said so with `a=rtcp` (RFC 3605);
    /// otherwise RTCP goes to the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// The G.711 codecs of the `m=` line with their payload types, in the
    /// peer's order of preference; static (0, 8) or mapped by `a=rtpmap`.
    /// Formats we do not speak are left out.
    pub codecs: Vec<(u8, Codec)>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event: Option<u8>,
    /// The peer's direction (media level, else session level, else
    /// `sendrecv`).
    pub direction: Direction,
    /// The `m=` port is 0: the stream is rejected (in an answer) or disabled.
    pub port_zero: bool,
    /// Every `m=` line of the SDP, in order.
    pub media_lines: Vec<MediaLine>,
    /// The index in [`RemoteMedia::media_lines`] of the audio line described
    /// here.
    pub index: usize,
}

impl RemoteMedia {
    /// Whether the peer asks us not to send: the RFC 2543 hold
    /// (`c=0.0.0.0`), a rejected stream, or a direction without receiving.
    pub fn wants_no_media(&self) -> bool {
        self.port_zero || self.addr.ip().is_unspecified() || !self.direction.receives()
    }
}

/// Why an SDP could not be used. The text names the part, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not a well-formed session description; the text names
    /// the line or field.
    #[error("malformed SDP: {0}")]
    Parse(&'static str),
    /// There is no audio `m=` line.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// The audio stream uses something we do not speak (SRTP, a host name,
    /// multicast…).
    #[error("unsupported SDP: {0}")]
    Unsupported(&'static str),
    /// None of the offered (or answered) codecs is one we support (SIP 488).
    #[error("no common codec")]
    NoCommonCodec,
    /// The audio stream has port 0: rejected or disabled.
    #[error("the audio stream is rejected (port 0)")]
    Rejected,
}

impl SdpError {
    /// The SIP status to answer an offer that failed this way: 400 for a
    /// malformed body, 488 (Not Acceptable Here) for the rest.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Parse(_) => 400,
            _ => 488,
        }
    }
}

/// Our side of a dialog's SDP: the `o=` line's numbers and the relay port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSession {
    /// The `o=` session id, fixed for the dialog.
    pub session_id: u64,
    /// The `o=` version: bump it on each new offer or answer we send in the
    /// dialog (see [`LocalSession::next_version`]).
    pub version: u64,
    /// Our relay's RTP address for this leg (RTCP is on the port + 1).
    pub addr: SocketAddr,
}

impl LocalSession {
    /// A session for `addr` with the given id; the first version equals the
    /// id, as is customary.
    pub fn new(session_id: u64, addr: SocketAddr) -> LocalSession {
        LocalSession { session_id, version: session_id, addr }
    }

    /// Bumps the version: call before building every SDP after the first one
    /// in a dialog.
    pub fn next_version(&mut self) {
        self.version = self.version.wrapping_add(1);
    }
}

/// What an offer/answer exchange agreed on for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: Codec,
    /// Its payload type in this leg's RTP.
    pub pt: u8,
    /// The telephone-event payload type, if both sides use RFC 4733.
    pub telephone_event: Option<u8>,
    /// Where to send this leg's RTP (see [`RemoteMedia::addr`]).
    pub remote: SocketAddr,
    /// Where to send this leg's RTCP if the peer said so (`a=rtcp`); else
    /// the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// The remote's direction.
    pub direction: Direction,
}

/// Parses a peer's SDP (offer or answer) and describes its first audio
/// stream over RTP/AVP.
pub fn parse(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let session = Session::parse(body).map_err(parse_error)?;
    let media_lines: Vec<MediaLine> = session
        .medias
        .iter()
        .map(|m| MediaLine { media: m.media.clone(), proto: m.proto.clone(), fmt: m.fmt.clone() })
        .collect();

    let is_audio = |m: &sdp_types::Media| m.media.eq_ignore_ascii_case("audio");
    let is_rtp = |m: &sdp_types::Media| {
        m.proto.eq_ignore_ascii_case("RTP/AVP") || m.proto.eq_ignore_ascii_case("RTP/AVPF")
    };
    if !session.medias.iter().any(is_audio) {
        return Err(SdpError::NoAudio);
    }
    // The first live audio stream over plain RTP; else the first one over
    // plain RTP even if disabled (so an answer's rejection is reported).
    let index = session
        .medias
        .iter()
        .position(|m| is_audio(m) && is_rtp(m) && m.port != 0)
        .or_else(|| session.medias.iter().position(|m| is_audio(m) && is_rtp(m)))
        .ok_or(SdpError::Unsupported("audio transport is not RTP/AVP"))?;
    let media = &session.medias[index];
    let port_zero = media.port == 0;

    let ip = match media.connections.first().or(session.connection.as_ref()) {
        Some(c) => connection_ip(c)?,
        None if port_zero => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => return Err(SdpError::Parse("c= line missing")),
    };
    let addr = SocketAddr::new(ip, media.port);

    let rtcp = match media.get_first_attribute_typed::<Rtcp>() {
        Some(Ok(rtcp)) => rtcp_addr(&rtcp, ip),
        _ => None,
    };

    let rtpmaps: Vec<RtpMap> = media.attributes_typed::<RtpMap>().filter_map(Result::ok).collect();
    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for token in media.fmt.split_ascii_whitespace() {
        let pt: u8 = match token.parse() {
            Ok(pt) if pt < 128 => pt,
            _ => return Err(SdpError::Parse("m= format list")),
        };
        match rtpmaps.iter().find(|r| r.payload_type == pt) {
            Some(map) => {
                if map.clock_rate != CLOCK_RATE || !mono(map) {
                    continue;
                }
                if map.encoding_name.eq_ignore_ascii_case(TELEPHONE_EVENT) {
                    telephone_event.get_or_insert(pt);
                } else if let Some(codec) = codec_named(&map.encoding_name) {
                    codecs.push((pt, codec));
                }
            }
            None => {
                if let Some(codec) = static_codec(pt) {
                    codecs.push((pt, codec));
                }
            }
        }
    }

    let direction = direction_of(media.attributes.iter())
        .or_else(|| direction_of(session.attributes.iter()))
        .unwrap_or(Direction::SendRecv);

    Ok(RemoteMedia { addr, rtcp, codecs, telephone_event, direction, port_zero, media_lines, index })
}

/// Our offer: one audio stream on `local.addr` with all `codecs` in order,
/// telephone-event on the given payload type if `Some`, and `direction`.
pub fn offer(
    local: &LocalSession,
    codecs: &[Codec],
    telephone_event: Option<u8>,
    direction: Direction,
) -> Vec<u8> {
    let audio: Vec<(u8, Codec)> = codecs.iter().map(|c| (c.payload_type(), *c)).collect();
    let media = audio_media(local, "RTP/AVP", &audio, telephone_event, direction);
    write(local, vec![media])
}

/// Our answer to the offer `remote`: the first codec of the offer that is in
/// `supported` (with the offerer's payload type number), telephone-event if
/// offered, and the direction allowed by both the offer and `ours`
/// (RFC 3264 §6.1: `sendonly` → `recvonly`, `recvonly` → `sendonly`,
/// `inactive` → `inactive`, `sendrecv` → `ours`; e.g. an offer `sendonly`
/// when we hold too gives `inactive`). Every other `m=` line of the offer is
/// rejected in place with port 0.
///
/// Errors: [`SdpError::Rejected`] when the offer's audio stream has port 0,
/// [`SdpError::NoCommonCodec`] when no codec matches (answer 488).
pub fn answer(
    local: &LocalSession,
    remote: &RemoteMedia,
    supported: &[Codec],
    ours: Direction,
) -> Result<(Vec<u8>, Negotiated), SdpError> {
    if remote.port_zero {
        return Err(SdpError::Rejected);
    }
    let (pt, codec) =
        remote.codecs.iter().copied().find(|(_, c)| supported.contains(c)).ok_or(SdpError::NoCommonCodec)?;
    let direction = ours.intersect(remote.direction.reverse());

    let proto = remote.media_lines.get(remote.index).map_or("RTP/AVP", |l| l.proto.as_str());
    let mut medias = Vec::with_capacity(remote.media_lines.len().max(1));
    for (i, line) in remote.media_lines.iter().enumerate() {
        if i == remote.index {
            medias.push(audio_media(local, proto, &[(pt, codec)], remote.telephone_event, direction));
        } else {
            medias.push(sdp_types::Media {
                media: line.media.clone(),
                port: 0,
                num_ports: None,
                proto: line.proto.clone(),
                fmt: line.fmt.clone(),
                media_title: None,
                connections: Vec::new(),
                bandwidths: Vec::new(),
                key: None,
                attributes: Vec::new(),
            });
        }
    }
    if medias.is_empty() {
        // A RemoteMedia built by hand, without its lines.
        medias.push(audio_media(local, proto, &[(pt, codec)], remote.telephone_event, direction));
    }
    let negotiated = Negotiated {
        codec,
        pt,
        telephone_event: remote.telephone_event,
        remote: remote.addr,
        rtcp: remote.rtcp,
        direction: remote.direction,
    };
    Ok((write(local, medias), negotiated))
}

/// What was agreed when `answer` answers our offer of `offered`: the first
/// codec of the answer that we offered, with the answer's payload type.
///
/// Errors: [`SdpError::Rejected`] when the answer rejects the audio stream,
/// [`SdpError::NoCommonCodec`] when it names none of our codecs.
pub fn negotiated(offered: &[Codec], answer: &RemoteMedia) -> Result<Negotiated, SdpError> {
    if answer.port_zero {
        return Err(SdpError::Rejected);
    }
    let (pt, codec) =
        answer.codecs.iter().copied().find(|(_, c)| offered.contains(c)).ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        codec,
        pt,
        telephone_event: answer.telephone_event,
        remote: answer.addr,
        rtcp: answer.rtcp,
        direction: answer.direction,
    })
}

/// The audio `m=` section of our SDPs.
fn audio_media(
    local: &LocalSession,
    proto: &str,
    audio: &[(u8, Codec)],
    telephone_event: Option<u8>,
    direction: Direction,
) -> sdp_types::Media {
    let mut fmt: Vec<String> = audio.iter().map(|(pt, _)| pt.to_string()).collect();
    if let Some(te) = telephone_event {
        fmt.push(te.to_string());
    }
    let mut media = sdp_types::Media::new(
        MediaType::Audio,
        local.addr.port(),
        sdp_types::TransportProto::RtpAvp,
        fmt.join(" "),
    );
    media.proto = proto.to_string();
    for (pt, codec) in audio {
        media.add_attribute(RtpMap::new(*pt, codec.name(), CLOCK_RATE));
    }
    if let Some(te) = telephone_event {
        media.add_attribute(RtpMap::new(te, TELEPHONE_EVENT, CLOCK_RATE));
        media.add_attribute(Attribute::with_value("fmtp", format!("{te} {EVENTS}")));
    }
    media.add_attribute(Attribute::with_value("ptime", PTIME_MS));
    media.add_attribute(Attribute::new(direction.as_str()));
    media
}

/// Prints a session around `medias` with our origin and connection.
fn write(local: &LocalSession, medias: Vec<sdp_types::Media>) -> Vec<u8> {
    let ip = local.addr.ip();
    let mut origin = Origin::with_ip_addr(local.session_id, local.version, ip);
    origin.username = Some("huifang".to_string());
    let mut session = Session::new(origin, "huifang");
    session.set_connection(Connection::from_ip_addr(ip));
    session.add_time(Time::new(0, 0));
    session.add_medias(medias);
    let mut out = Vec::with_capacity(512);
    session.write(&mut out).expect("writing SDP into a Vec cannot fail");
    out
}

/// The IP of a `c=` line: `IN`, `IP4`/`IP6`, a unicast (or unspecified) IP.
fn connection_ip(c: &Connection) -> Result<IpAddr, SdpError> {
    if c.nettype != NetType::In {
        return Err(SdpError::Unsupported("c= network type is not IN"));
    }
    if !matches!(c.addrtype, AddrType::Ip4 | AddrType::Ip6) {
        return Err(SdpError::Unsupported("c= address type is not IP4 or IP6"));
    }
    let parsed = c.try_address().map_err(|_| SdpError::Unsupported("c= address is not an IP address"))?;
    if parsed.ip.is_multicast() {
        return Err(SdpError::Unsupported("c= address is multicast"));
    }
    Ok(parsed.ip)
}

/// The RTCP address of an `a=rtcp` (RFC 3605) whose default IP is `ip`;
/// `None` if its address is not a usable IP.
fn rtcp_addr(rtcp: &Rtcp, ip: IpAddr) -> Option<SocketAddr> {
    if rtcp.port == 0 {
        return None;
    }
    let ip = match rtcp.try_address() {
        None => ip,
        Some(Ok(a)) if !a.ip.is_multicast() => a.ip,
        Some(_) => return None,
    };
    Some(SocketAddr::new(ip, rtcp.port))
}

/// The direction attribute among `attributes`, if any.
fn direction_of<'a>(attributes: impl Iterator<Item = &'a Attribute>) -> Option<Direction> {
    attributes.filter(|a| a.value.is_none()).find_map(|a| Direction::from_attribute(&a.attribute))
}

/// A G.711 codec by its `a=rtpmap` encoding name, in any case.
fn codec_named(name: &str) -> Option<Codec> {
    [Codec::Pcmu, Codec::Pcma].into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
}

/// A static payload type of RFC 3551 that we speak.
fn static_codec(pt: u8) -> Option<Codec> {
    [Codec::Pcmu, Codec::Pcma].into_iter().find(|c| c.payload_type() == pt)
}

/// One channel: no encoding parameter, or `1`.
fn mono(map: &RtpMap) -> bool {
    map.encoding_params.as_deref().is_none_or(|p| p.trim() == "1")
}

/// Our error for a parser error: the field it names, never the content.
fn parse_error(e: ParserError) -> SdpError {
    SdpError::Parse(match e {
        ParserError::InvalidLineFormat(_, what)
        | ParserError::InvalidFieldEncoding(_, what)
        | ParserError::InvalidFieldFormat(_, what)
        | ParserError::MissingField(_, what)
        | ParserError::FieldTrailingData(_, what) => what,
        ParserError::InvalidVersion(..) | ParserError::MultipleVersions(_) => "v= line",
        ParserError::NoVersion => "v= line missing",
        ParserError::MultipleOrigins(_) => "o= line repeated",
        ParserError::MultipleConnections(_) => "c= line repeated",
        _ => "line repeated or out of place",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session-level `c=` with IPs in place of RFC 4317's host names (this
    /// module does not resolve names): RFC 4317 §2.1 "Audio and Video 1".
    const RFC4317_2_1_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 97\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:97 iLBC/8000\r\n\
m=video 51372 RTP/AVP 31 32\r\n\
a=rtpmap:31 H261/90000\r\n\
a=rtpmap:32 MPV/90000\r\n";

    const RFC4317_2_1_ANSWER: &str = "v=0\r\n\
o=bob 2808844564 2808844564 IN IP4 198.51.100.20\r\n\
s=\r\n\
c=IN IP4 198.51.100.20\r\n\
t=0 0\r\n\
m=audio 49174 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 49170 RTP/AVP 32\r\n\
a=rtpmap:32 MPV/90000\r\n";

    /// RFC 3264 §10.2 style: codecs without rtpmap for the static ones, the
    /// stream inactive.
    const RFC3264_10_2_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 62986 RTP/AVP 0 4 18\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:4 G723/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=inactive\r\n";

    /// RFC 3264 §10.1: audio and two video streams; the answer rejects the
    /// first video stream.
    const RFC3264_10_1_ANSWER: &str = "v=0\r\n\
o=bob 2808844564 2808844564 IN IP4 198.51.100.20\r\n\
s=\r\n\
c=IN IP4 198.51.100.20\r\n\
t=0 0\r\n\
m=audio 49920 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 0 RTP/AVP 31\r\n\
m=video 53000 RTP/AVP 32\r\n\
a=rtpmap:32 MPV/90000\r\n";

    /// RFC 4317 §3.1 "Hold and Unhold 1": the re-offer puts the peer on hold.
    const RFC4317_3_1_HOLD: &str = "v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n\
s=\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 97\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:97 iLBC/8000\r\n\
a=sendonly\r\n";

    /// A typical softphone offer: dynamic telephone-event, media-level
    /// `c=`, `a=rtcp`, an unknown attribute, LF line ends.
    const SOFTPHONE_OFFER: &str = "v=0\n\
o=- 3891234567 3891234567 IN IP4 10.1.2.3\n\
s=pjmedia\n\
b=AS:84\n\
t=0 0\n\
a=X-nat:0\n\
m=audio 4000 RTP/AVP 8 0 96 120\n\
c=IN IP4 10.1.2.3\n\
b=TIAS:64000\n\
a=rtcp:4001 IN IP4 10.1.2.3\n\
a=sendrecv\n\
a=rtpmap:96 opus/48000/2\n\
a=rtpmap:120 telephone-event/8000\n\
a=fmtp:120 0-16\n\
a=ssrc:1234567 cname:abcdef\n";

    fn local() -> LocalSession {
        LocalSession::new(42, "203.0.113.5:30000".parse().unwrap())
    }

    fn text(sdp: &[u8]) -> &str {
        std::str::from_utf8(sdp).unwrap()
    }

    #[test]
    fn rfc4317_offer_is_parsed_in_the_offerers_order() {
        let m = parse(RFC4317_2_1_OFFER.as_bytes()).unwrap();
        assert_eq!(m.addr, "192.0.2.10:49170".parse().unwrap());
        assert_eq!(m.codecs, vec![(0, Codec::Pcmu), (8, Codec::Pcma)]);
        assert_eq!(m.telephone_event, None);
        assert_eq!(m.direction, Direction::SendRecv);
        assert_eq!(m.rtcp, None);
        assert!(!m.port_zero);
        assert_eq!(m.media_lines.len(), 2);
        assert_eq!(m.index, 0);
    }

    #[test]
    fn rfc4317_answer_is_negotiated() {
        let m = parse(RFC4317_2_1_ANSWER.as_bytes()).unwrap();
        let n = negotiated(&[Codec::Pcmu, Codec::Pcma], &m).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.pt, 0);
        assert_eq!(n.remote, "198.51.100.20:49174".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        // Offered only PCMA: the answer's PCMU is not ours.
        assert_eq!(negotiated(&[Codec::Pcma], &m), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn our_answer_to_rfc4317_picks_the_first_supported_codec_and_rejects_video() {
        let m = parse(RFC4317_2_1_OFFER.as_bytes()).unwrap();
        // We prefer PCMA but the offerer's order wins.
        let (sdp, n) = answer(&local(), &m, &[Codec::Pcma, Codec::Pcmu], Direction::SendRecv).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.pt, 0);
        let t = text(&sdp);
        assert!(t.contains("m=audio 30000 RTP/AVP 0\r\n"), "{t}");
        assert!(t.contains("m=video 0 RTP/AVP 31 32\r\n"), "{t}");
        assert!(t.contains("c=IN IP4 203.0.113.5\r\n"), "{t}");
        assert!(t.contains("o=huifang 42 42 IN IP4 203.0.113.5\r\n"), "{t}");
        assert!(t.contains("a=rtpmap:0 PCMU/8000\r\n"), "{t}");
        assert!(t.contains("a=sendrecv\r\n"), "{t}");
        // Our answer is itself a valid SDP describing what we agreed.
        let back = parse(&sdp).unwrap();
        assert_eq!(back.codecs, vec![(0, Codec::Pcmu)]);
        assert_eq!(back.addr, local().addr);
        assert_eq!(back.media_lines.len(), 2);
        assert!(m.media_lines[1].media == back.media_lines[1].media);
    }

    #[test]
    fn rfc3264_inactive_offer_gets_an_inactive_answer() {
        let m = parse(RFC3264_10_2_OFFER.as_bytes()).unwrap();
        assert_eq!(m.direction, Direction::Inactive);
        assert_eq!(m.codecs, vec![(0, Codec::Pcmu)]);
        let (sdp, n) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert_eq!(parse(&sdp).unwrap().direction, Direction::Inactive);
    }

    #[test]
    fn rfc3264_answer_with_a_rejected_video_stream_still_gives_audio() {
        let m = parse(RFC3264_10_1_ANSWER.as_bytes()).unwrap();
        assert_eq!(m.addr.port(), 49920);
        assert_eq!(m.media_lines.len(), 3);
        assert_eq!(negotiated(&[Codec::Pcmu], &m).unwrap().pt, 0);
    }

    #[test]
    fn hold_with_sendonly_is_answered_recvonly() {
        let m = parse(RFC4317_3_1_HOLD.as_bytes()).unwrap();
        assert_eq!(m.direction, Direction::SendOnly);
        assert!(m.wants_no_media());
        let (sdp, n) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        assert!(text(&sdp).contains("a=recvonly\r\n"));
        // Both holding: nobody sends.
        let (sdp, _) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendOnly).unwrap();
        assert!(text(&sdp).contains("a=inactive\r\n"));
    }

    #[test]
    fn hold_forms_recvonly_inactive_and_rfc2543() {
        let recvonly = RFC4317_3_1_HOLD.replace("a=sendonly", "a=recvonly");
        let m = parse(recvonly.as_bytes()).unwrap();
        let (sdp, _) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert!(text(&sdp).contains("a=sendonly\r\n"));

        let inactive = RFC4317_3_1_HOLD.replace("a=sendonly", "a=inactive");
        let m = parse(inactive.as_bytes()).unwrap();
        let (sdp, _) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert!(text(&sdp).contains("a=inactive\r\n"));

        // RFC 2543 hold: c=0.0.0.0, no direction attribute.
        let old = RFC4317_2_1_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
        let m = parse(old.as_bytes()).unwrap();
        assert!(m.addr.ip().is_unspecified());
        assert_eq!(m.direction, Direction::SendRecv);
        assert!(m.wants_no_media());
        let (_, n) = answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert!(n.remote.ip().is_unspecified());
    }

    #[test]
    fn session_level_direction_applies_when_the_media_has_none() {
        let s = RFC4317_2_1_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert_eq!(parse(s.as_bytes()).unwrap().direction, Direction::SendOnly);
    }

    #[test]
    fn dynamic_telephone_event_and_media_level_connection() {
        let m = parse(SOFTPHONE_OFFER.as_bytes()).unwrap();
        assert_eq!(m.addr, "10.1.2.3:4000".parse().unwrap());
        assert_eq!(m.rtcp, Some("10.1.2.3:4001".parse().unwrap()));
        assert_eq!(m.codecs, vec![(8, Codec::Pcma), (0, Codec::Pcmu)]);
        assert_eq!(m.telephone_event, Some(120));
        let (sdp, n) = answer(&local(), &m, &[Codec::Pcmu, Codec::Pcma], Direction::SendRecv).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.pt, 8);
        assert_eq!(n.telephone_event, Some(120));
        assert_eq!(n.rtcp, Some("10.1.2.3:4001".parse().unwrap()));
        let t = text(&sdp);
        assert!(t.contains("m=audio 30000 RTP/AVP 8 120\r\n"), "{t}");
        assert!(t.contains("a=rtpmap:120 telephone-event/8000\r\n"), "{t}");
        assert!(t.contains("a=fmtp:120 0-16\r\n"), "{t}");
    }

    #[test]
    fn offer_lists_codecs_in_order_with_telephone_event() {
        let sdp = offer(&local(), &[Codec::Pcma, Codec::Pcmu], Some(101), Direction::SendRecv);
        let t = text(&sdp);
        assert!(t.starts_with("v=0\r\n"), "{t}");
        assert!(t.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"), "{t}");
        assert!(t.contains("a=ptime:20\r\n"), "{t}");
        let m = parse(&sdp).unwrap();
        assert_eq!(m.codecs, vec![(8, Codec::Pcma), (0, Codec::Pcmu)]);
        assert_eq!(m.telephone_event, Some(101));
        assert_eq!(m.direction, Direction::SendRecv);

        // A peer answering with its own telephone-event number.
        let peer = LocalSession::new(7, "192.0.2.99:5004".parse().unwrap());
        let (ans, n) = answer(&peer, &m, &[Codec::Pcmu], Direction::SendRecv).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        let ans = text(&ans).replace("101", "96");
        let agreed = negotiated(&[Codec::Pcma, Codec::Pcmu], &parse(ans.as_bytes()).unwrap()).unwrap();
        assert_eq!(agreed.telephone_event, Some(96));
        assert_eq!(agreed.remote, "192.0.2.99:5004".parse().unwrap());
    }

    #[test]
    fn offer_on_hold_and_version_bump() {
        let mut l = local();
        l.next_version();
        let sdp = offer(&l, &[Codec::Pcmu], None, Direction::SendOnly);
        let t = text(&sdp);
        assert!(t.contains("o=huifang 42 43 IN IP4"), "{t}");
        assert!(t.contains("a=sendonly\r\n"), "{t}");
        assert!(!t.contains("telephone-event"), "{t}");
    }

    #[test]
    fn ipv6_connection() {
        let l = LocalSession::new(1, "[2001:db8::5]:30002".parse().unwrap());
        let sdp = offer(&l, &[Codec::Pcmu], Some(101), Direction::SendRecv);
        assert!(text(&sdp).contains("c=IN IP6 2001:db8::5\r\n"));
        let m = parse(&sdp).unwrap();
        assert_eq!(m.addr, "[2001:db8::5]:30002".parse().unwrap());
    }

    #[test]
    fn no_common_codec_is_488() {
        let s = RFC4317_2_1_OFFER
            .replace("RTP/AVP 0 8 97", "RTP/AVP 97 18")
            .replace("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", "");
        let m = parse(s.as_bytes()).unwrap();
        assert!(m.codecs.is_empty());
        let e = answer(&local(), &m, &[Codec::Pcmu, Codec::Pcma], Direction::SendRecv).unwrap_err();
        assert_eq!(e, SdpError::NoCommonCodec);
        assert_eq!(e.sip_status(), 488);
        // Supported but not by us.
        let m = parse(RFC3264_10_2_OFFER.as_bytes()).unwrap();
        assert_eq!(
            answer(&local(), &m, &[Codec::Pcma], Direction::SendRecv).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn rtpmap_names_are_case_insensitive_and_override_static_numbers() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 0 100 101 102\r\n\
a=RTPMAP:0 pcma/8000\r\n\
a=rtpmap:100 pcmu/8000/1\r\n\
a=rtpmap:101 Telephone-Event/8000\r\n\
a=rtpmap:102 PCMU/16000\r\n\
a=SENDONLY\r\n";
        let m = parse(s.as_bytes()).unwrap();
        assert_eq!(m.codecs, vec![(0, Codec::Pcma), (100, Codec::Pcmu)]);
        assert_eq!(m.telephone_event, Some(101));
        assert_eq!(m.direction, Direction::SendOnly);
    }

    #[test]
    fn rejected_and_unsupported_streams() {
        let zero = RFC4317_2_1_ANSWER.replace("m=audio 49174", "m=audio 0");
        let m = parse(zero.as_bytes()).unwrap();
        assert!(m.port_zero);
        assert_eq!(negotiated(&[Codec::Pcmu], &m), Err(SdpError::Rejected));
        assert_eq!(
            answer(&local(), &m, &[Codec::Pcmu], Direction::SendRecv).unwrap_err(),
            SdpError::Rejected
        );

        let srtp = RFC4317_2_1_OFFER.replace("m=audio 49170 RTP/AVP", "m=audio 49170 RTP/SAVP");
        assert!(matches!(parse(srtp.as_bytes()), Err(SdpError::Unsupported(_))));

        let video_only = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
t=0 0\r\nm=video 5000 RTP/AVP 31\r\n";
        assert_eq!(parse(video_only.as_bytes()), Err(SdpError::NoAudio));

        let fqdn = RFC4317_2_1_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 host.example.com");
        assert!(matches!(parse(fqdn.as_bytes()), Err(SdpError::Unsupported(_))));

        let mcast = RFC4317_2_1_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 224.2.1.1/127");
        assert!(matches!(parse(mcast.as_bytes()), Err(SdpError::Unsupported(_))));

        let no_c = RFC4317_2_1_OFFER.replace("c=IN IP4 192.0.2.10\r\n", "");
        assert_eq!(parse(no_c.as_bytes()), Err(SdpError::Parse("c= line missing")));
        assert!(matches!(parse(b"hello"), Err(SdpError::Parse(_))));
        assert_eq!(parse(b"s=x\r\n"), Err(SdpError::Parse("v= line missing")));
    }

    #[test]
    fn errors_never_quote_the_sdp() {
        let secret = "13800138000";
        let bad = [
            format!(
                "v=0\r\no=- 1 1 IN IP4 {secret}\r\ns=-\r\nc=IN IP4 {secret}\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n"
            ),
            format!("v={secret}\r\n"),
            format!("v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5 RTP/AVP {secret}\r\n"),
            format!("v=0\r\nm=audio x{secret} RTP/AVP 0\r\n"),
        ];
        for b in bad {
            let e = parse(b.as_bytes()).unwrap_err();
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn mutated_fixtures_never_panic(
                which in 0usize..5,
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                cut in any::<prop::sample::Index>(),
            ) {
                let base = [RFC4317_2_1_OFFER, RFC4317_2_1_ANSWER, RFC3264_10_2_OFFER,
                            RFC4317_3_1_HOLD, SOFTPHONE_OFFER][which];
                let mut b = base.as_bytes().to_vec();
                for (i, v) in edits {
                    let i = i.index(b.len());
                    b[i] = v;
                }
                b.truncate(cut.index(b.len() + 1));
                if let Ok(m) = parse(&b) {
                    // Whatever parses can be answered or refused cleanly.
                    let _ = answer(&local(), &m, &[Codec::Pcmu, Codec::Pcma], Direction::SendRecv);
                    let _ = negotiated(&[Codec::Pcmu], &m);
                }
            }

            #[test]
            fn sdp_like_lines_never_panic(lines in proptest::collection::vec(
                ("[vosctmab]", "[ -~]{0,40}"), 0..20)) {
                let mut s = String::from("v=0\r\n");
                for (k, v) in lines {
                    s.push_str(&k);
                    s.push('=');
                    s.push_str(&v);
                    s.push_str("\r\n");
                }
                let _ = parse(s.as_bytes());
            }
        }
    }
}
