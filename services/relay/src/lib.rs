//! The relay service: the only publisher of the change log to JetStream (see
//! [`cairn_eventlog::relay`] for the mechanism; this crate is the process around it).

use cairn_platform::{Settings, Shutdown, connect};
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the relay until shutdown.
///
/// # Errors
/// An unusable database URL or NATS URL.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await?;
    cairn_eventlog::relay::run(
        pool,
        nats,
        settings.relay.batch_size,
        Duration::from_millis(settings.relay.poll_ms),
        shutdown,
    )
    .await?;
    Ok(())
}
