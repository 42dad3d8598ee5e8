//! Test harness: real PostgreSQL and real nats-server, per test.
//!
//! # Layout
//! - [`pg`]: a fresh, migrated database per test on the PostgreSQL server named by `CAIRN_TEST_PG`
//!   (scripts/test starts one on a free port and exports it).
//! - [`nats`]: a nats-server with JetStream on free ports and its own store directory, per test;
//!   it can be stopped, restarted and wiped.
//! - [`stack`]: the whole platform in-process (API on a free port, relay, indexer, correlator,
//!   exporter) over a test database and nats-server, bootstrapped, with the admin key.
//! - [`feeds`]: reading the exporter's JetStream feeds; waiting for it and its cached exports.
//! - [`bins`]: paths of the workspace binaries (built by scripts/test before the tests run).

pub mod bins;
pub mod feeds;
pub mod nats;
pub mod oracle;
pub mod pg;
pub mod recorder;
pub mod stack;

/// A free TCP port on 127.0.0.1 (the listener is closed before returning).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
