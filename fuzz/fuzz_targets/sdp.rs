//! Fuzzes the SDP offer/answer facade: whatever `sdp::parse` accepts must
//! be answerable without a panic, and our answer must parse again and agree
//! with what was negotiated (the same codec, payload type and address).
#![no_main]

use std::net::SocketAddr;

use huifang::media::g711::Codec;
use huifang::media::sdp::{self, Direction, LocalSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(remote) = sdp::parse(data) else { return };
    let _ = remote.wants_no_media();
    let local = LocalSession::new(1, SocketAddr::from(([127, 0, 0, 1], 4000)));
    // As a callee (the offer came in) and as a caller (it is the answer to ours).
    if let Ok((body, agreed)) = sdp::answer(&local, &remote, &[Codec::Pcmu, Codec::Pcma], Direction::SendRecv) {
        let ours = sdp::parse(&body).expect("our answer parses");
        let back = sdp::negotiated(&[Codec::Pcmu, Codec::Pcma], &ours).expect("our answer negotiates");
        assert_eq!((back.codec, back.pt), (agreed.codec, agreed.pt));
        assert_eq!(back.remote, local.addr);
    }
    let _ = sdp::negotiated(&[Codec::Pcmu, Codec::Pcma], &remote);
});
