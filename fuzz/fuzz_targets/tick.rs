//! `--tick` from the command line: any text is accepted as a valid range or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::cli::parse_tick;

fuzz_target!(|data: &str| {
    if let Ok(range) = parse_tick(data) {
        assert!(!range.start().is_zero());
        assert!(range.start() <= range.end());
    }
});
