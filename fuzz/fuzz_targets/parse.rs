//! Fuzzes the SIP message facade: the datagram parser, the stream framer,
//! and the printer on whatever parses.
#![no_main]

use huifang::sip::msg::{Message, StreamFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        // Whatever parses must print and parse again.
        let again = Message::parse(&m.to_bytes());
        assert!(again.is_ok(), "reprint failed to parse");
        let _ = m.summary();
    }
    // The same bytes as a stream, split at every 7th byte.
    let mut f = StreamFramer::new();
    for chunk in data.chunks(7) {
        f.push(chunk);
        while let Ok(Some(_)) = f.next() {}
    }
});
