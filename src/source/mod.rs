//! Where counts come from. Transports never know which source runs: they read the `Hub`.
//!
//! - [`walk`]: the simulated random walk, pure logic.
//! - [`simulator`]: runs the walk in-process on a timer and publishes each change to the hub.

pub mod simulator;
pub mod walk;

use serde::Serialize;

/// What `/healthz` and `/api/stats` say about the source.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SourceHealth {
    /// `simulator` or `redis`.
    pub kind: &'static str,
    pub healthy: bool,
    /// Why the source is not healthy, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
