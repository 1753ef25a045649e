//! The bench's SSE parser reads whatever a server sends: it never panics, and how the stream is
//! cut into reads never changes the events it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::bench::sse_parser::SseParser;

fuzz_target!(|input: (u16, &[u8])| {
    let (split, stream) = input;
    let whole = SseParser::new().feed(stream);
    let at = usize::from(split) % (stream.len() + 1);
    let mut parser = SseParser::new();
    let mut pieces = parser.feed(&stream[..at]);
    pieces.extend(parser.feed(&stream[at..]));
    assert_eq!(whole, pieces);
});
