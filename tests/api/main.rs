//! Integration tests: the real server on 127.0.0.1:0, driven by real clients. One test binary,
//! so the crate is linked once.

mod bench;
