//! `If-None-Match` from a poller: any header value is matched without panicking, and only a
//! value that names the tag (or `*`) matches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::transport::poll::if_none_match_hits;

fuzz_target!(|data: &[u8]| {
    if if_none_match_hits(data, b"\"42\"") {
        let text = String::from_utf8_lossy(data);
        assert!(text.contains("\"42\"") || text.contains('*'), "{text:?}");
    }
});
