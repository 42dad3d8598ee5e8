//! The exporter projector. For now it follows the log (its checkpoint advances with the head, so lag and
//! restarts behave like every projector); its read model arrives with its own issue.

use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::{ApplyError, Options, Projector, Runtime};
use cairn_platform::{Settings, Shutdown, connect};
use deadpool_postgres::Transaction;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The projector name (checkpoint key and JetStream durable).
pub const NAME: &str = "exporter";

#[derive(Debug, Default, Clone)]
pub struct Exporter;

impl Projector for Exporter {
    fn name(&self) -> &str {
        NAME
    }

    async fn apply(&self, _tx: &Transaction<'_>, _changes: &[StoredChange]) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// Runs the exporter until shutdown.
///
/// # Errors
/// An unusable database URL, or the database unreachable at start.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await.ok();
    let runtime = Runtime::new(Exporter, pool, nats, Options::from_settings(&settings.projector)).await?;
    runtime.run(shutdown).await;
    Ok(())
}
