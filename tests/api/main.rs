//! Integration tests: the real server on 127.0.0.1:0, driven by real clients. One test binary,
//! so the crate is linked once.

mod bench;
mod browser;
mod count;
mod fastpath;
mod helpers;
mod limits;
mod longpoll;
mod redis;
mod shutdown;
mod sse;
mod wire;
mod ws;
