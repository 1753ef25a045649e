//! Wire accounting: exact bytes in and out of every connection, attributed to a transport and,
//! when a request carries `?session=ID`, to that page session.
//!
//! - [`stats`]: the counters (`WireStats`), per transport and per session.
//! - [`meter`]: the per-connection meter and the byte-counting IO wrapper around the socket.
//! - [`process`]: CPU time and resident memory of this process.
//! - [`metrics`]: the counters in Prometheus text format.

pub mod meter;
pub mod metrics;
pub mod process;
pub mod stats;

pub use meter::{ConnMeter, MeteredBody, MeteredIo};
pub use stats::{SessionId, WireStats};
