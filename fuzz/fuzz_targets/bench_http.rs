//! The bench's HTTP/1.1 response reader: any head parses or is refused, and the body decoder
//! gives the same bytes however the body is cut into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::bench::http1::parse_head;

fuzz_target!(|input: (u16, &[u8])| {
    let (split, bytes) = input;
    let Ok(Some((head, len))) = parse_head(bytes) else { return };
    assert!(len <= bytes.len());
    let body = &bytes[len..];

    let decode = |pieces: &[&[u8]]| {
        let mut decoder = head.body();
        let mut out = Vec::new();
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() {
                match decoder.feed(rest, &mut out) {
                    Ok((used, done)) => {
                        assert!(used <= rest.len());
                        rest = &rest[used..];
                        if done || used == 0 {
                            return Some((out, done));
                        }
                    }
                    Err(_) => return None,
                }
            }
        }
        Some((out, false))
    };
    let at = usize::from(split) % (body.len() + 1);
    let whole = decode(&[body]);
    let cut = decode(&[&body[..at], &body[at..]]);
    // A body that completes, or fails, does so the same way whichever way it arrives.
    if let (Some((a, true)), Some((b, true))) = (&whole, &cut) {
        assert_eq!(a, b);
    }
    assert_eq!(whole.is_none(), cut.is_none());
});
