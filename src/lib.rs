//! pulse: a live "users online" counter served over polling, long polling, Server-Sent Events
//! and WebSocket, with every byte on the wire measured, a page that compares them side by side,
//! and a load generator that measures them at scale.
//!
//! # Layout
//!
//! The modules follow the data, from where a count comes from to the bytes a client receives:
//!
//! - [`source`]: where counts come from: the simulated random walk, in-process or shared by
//!   many instances through Redis (one leader simulates, every instance mirrors).
//! - [`snapshot`]: a `Snapshot` and its wire renderings, made once per change.
//! - [`hub`]: latest-value fan-out of the current Snapshot to every transport.
//! - [`transport`]: polling, long polling, SSE and WebSocket, each a thin framing of the hub.
//! - [`wire`]: exact bytes per connection, attributed to transports and page sessions.
//! - [`http`]: routes, shared state, errors, `/api/stats`, `/metrics`, `/healthz`.
//! - [`page`]: the comparison page, built into the binary.
//! - [`fastpath`]: plain polls and SSE streams answered straight from the socket, with the
//!   heads the router would send; everything else is handed to hyper and the router.
//! - [`server`]: the accept loop that ties them together and shuts down gracefully.
//! - [`config`], [`cli`], [`signal`]: what `serve` is told, from where, and when to stop.
//! - [`bench`]: the client side of every transport, thousands at once, and the report
//!   (terminal table, JSON, HTML) that compares them.

pub mod bench;
pub mod cli;
pub mod config;
pub mod fastpath;
pub mod http;
pub mod hub;
pub mod page;
pub mod server;
pub mod signal;
pub mod snapshot;
pub mod source;
pub mod transport;
pub mod wire;

pub use config::Config;
pub use server::{Server, serve};
