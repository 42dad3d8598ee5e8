//! Tracing setup: human-readable by default, JSON lines with `CAIRN_LOG_FORMAT=json`.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("CAIRN_LOG_FORMAT").is_ok_and(|v| v == "json");
    let result = if json {
        fmt().with_env_filter(filter).json().with_writer(std::io::stderr).try_init()
    } else {
        fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init()
    };
    let _ = result;
}
