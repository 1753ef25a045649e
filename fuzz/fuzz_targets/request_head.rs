//! The fast path's request-head parser sees every byte a client sends first: it never panics,
//! a head it takes is within the bytes read, and bytes after the head (a pipelined request)
//! never change how the head itself is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::fastpath::request::{Parsed, parse};

fuzz_target!(|input: (bool, &[u8], &[u8])| {
    let (origin_sensitive, head, next) = input;
    let alone = parse(head, b"\"42\"", origin_sensitive);
    if let Parsed::Fast(request) = &alone {
        assert!(request.len > 0 && request.len <= head.len());
        let mut pipelined = head[..request.len].to_vec();
        pipelined.extend_from_slice(next);
        assert_eq!(parse(&pipelined, b"\"42\"", origin_sensitive), alone);
    }
});
