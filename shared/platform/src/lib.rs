//! Service plumbing shared by every Cairn binary.
//!
//! # Layout
//! - [`settings`]: typed settings from an optional TOML file plus `CAIRN_…` environment variables.
//! - [`telemetry`]: tracing subscriber setup.
//! - [`shutdown`]: a cloneable shutdown signal (Ctrl-C / SIGTERM or programmatic).
//! - [`metrics`]: a tiny Prometheus text registry (counters and gauges).
//! - [`connect`]: PostgreSQL pool and NATS connection helpers.

pub mod connect;
pub mod metrics;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

/// Every binary that links the platform allocates through mimalloc (docs/adr/0007-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use settings::Settings;
pub use shutdown::Shutdown;
