//! The indexer: the read models the API answers from.
//!
//! # Layout
//! - [`directory`]: organisations, users, API keys, instance settings (`rm.organisations`, `rm.users`,
//!   `rm.auth_keys`, `rm.instance`, `rm.settings`), event templates (`rm.event_templates`).
//! - [`events`]: Events, Attributes, Objects, references, tags and tag links (`rm.events`, …).
//! - [`collaboration`]: proposals, delegations, discussion threads and posts, sightings
//!   (`rm.shadow_attributes`, `rm.event_delegations`, `rm.threads`, `rm.posts`, `rm.sightings`).
//! - [`bulk`]: the Event tables written from a folded log in one `COPY` each (rebuilds).
//!
//! One projector (`indexer`) owns all of these tables, so a read-your-writes wait has a single
//! checkpoint to watch.

pub mod bulk;
pub mod collaboration;
pub mod directory;
pub mod events;

use cairn_domain::Change;
use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::{ApplyError, Options, Projector, Runtime, decode_batch};
use cairn_platform::{Settings, Shutdown, connect};
use deadpool_postgres::Transaction;

/// The projector name (checkpoint key and JetStream durable).
pub const NAME: &str = "indexer";

/// The indexer projector.
#[derive(Debug, Default, Clone)]
pub struct Indexer;

impl Projector for Indexer {
    fn name(&self) -> &str {
        NAME
    }

    async fn apply(&self, tx: &Transaction<'_>, changes: &[StoredChange]) -> Result<(), ApplyError> {
        apply_changes(tx, &decode_batch(changes, Change::from_record)?).await
    }
}

/// Applies decoded changes `(stream id, change)`, in order, to every table of the indexer.
///
/// # Errors
/// Database errors.
pub async fn apply_changes(tx: &Transaction<'_>, changes: &[(uuid::Uuid, Change)]) -> Result<(), ApplyError> {
    let mut pending = events::Pending::default();
    for (stream_id, change) in changes {
        directory::apply(tx, *stream_id, change).await?;
        events::apply(tx, *stream_id, change, &mut pending).await?;
        collaboration::apply(tx, *stream_id, change).await?;
    }
    events::finish(tx, &mut pending).await
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the indexer until shutdown.
///
/// # Errors
/// An unusable database URL, or the database unreachable at start.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await.ok();
    let runtime = Runtime::new(Indexer, pool, nats, Options::from_settings(&settings.projector)).await?;
    runtime.run(shutdown).await;
    Ok(())
}

