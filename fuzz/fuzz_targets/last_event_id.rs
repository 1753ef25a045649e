//! `Last-Event-ID` from a reconnecting client: any bytes parse or are refused, never panic,
//! and an accepted id reads back the same from its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::transport::sse::resume_id;

fuzz_target!(|data: &[u8]| {
    if let Some(id) = resume_id(data) {
        assert_eq!(resume_id(id.to_string().as_bytes()), Some(id));
        assert!(data.iter().any(u8::is_ascii_digit));
    }
});
