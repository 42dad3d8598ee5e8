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
    // The notary: signed checkpoints of the chain head, when the instance has a key.
    let notary = match &settings.checkpoint_key_file {
        Some(path) => {
            let key = cairn_eventlog::checkpoint::read_key(path)?;
            tracing::info!(public_key = %cairn_eventlog::checkpoint::public_key_hex(&key), "signing log checkpoints");
            let interval = Duration::from_secs(settings.checkpoint_interval_secs.max(1));
            Some(tokio::spawn(cairn_eventlog::checkpoint::run_notary(pool.clone(), Some(nats.clone()), key, interval, shutdown.clone())))
        }
        None => None,
    };
    cairn_eventlog::relay::run(
        pool,
        nats,
        settings.relay.batch_size,
        Duration::from_millis(settings.relay.poll_ms),
        shutdown,
    )
    .await?;
    if let Some(n) = notary {
        let _ = n.await;
    }
    Ok(())
}
