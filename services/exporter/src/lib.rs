//! The exporter (ARCHITECTURE.md §5–§6): ACL-filtered NATS feeds, this instance's MISP feed and
//! cached exports, built from the log with the API's own search code, so that every output is
//! exactly what restSearch answers its audience.
//!
//! - [`feeds`]: the projector's work per batch: which Events changed for which audience; `event`,
//!   `retract` and `sighting` messages into the outbox; the MISP feed rows; stale cached exports.
//! - [`outbox`]: publishes the outbox to JetStream `CAIRN_FEEDS`, exactly once and in order.
//! - [`generate`]: regenerates stale cached exports as files.
//! - [`misp_feed`]: MISP's feed format (feed fields, manifest entry, hashes).

pub mod feeds;
pub mod generate;
pub mod misp_feed;
pub mod outbox;

use cairn_api::state::AppState;
use cairn_eventlog::projector::{ApplyError, Options, Projector, Runtime};
use cairn_eventlog::watcher::CheckpointWatcher;
use cairn_eventlog::{Appender, StoredChange};
use cairn_platform::{Settings, Shutdown, connect};
use deadpool_postgres::Transaction;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The projector name (checkpoint key and JetStream durable).
pub const NAME: &str = cairn_api::commands::EXPORTER;

#[derive(Clone)]
pub struct Exporter {
    state: AppState,
    /// The last outbox seq a batch wrote (see [`outbox::Publisher`]).
    written: Arc<std::sync::atomic::AtomicI64>,
}

impl Projector for Exporter {
    fn name(&self) -> &str {
        NAME
    }

    async fn apply(&self, tx: &Transaction<'_>, changes: &[StoredChange]) -> Result<(), ApplyError> {
        let written = feeds::apply(&self.state, tx, changes).await?;
        if let Some(seq) = written {
            self.written.fetch_max(seq, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The projector options of the exporter: the shared ones, plus a linger (nothing waits on the
/// exporter, so it applies fewer, larger batches).
fn exporter_options(s: &cairn_platform::settings::ProjectorSettings) -> Options {
    Options { linger: std::time::Duration::from_millis(s.exporter_linger_ms), ..Options::from_settings(s) }
}

/// Runs the exporter until shutdown: the projector, the feed publisher and the export generator.
///
/// # Errors
/// An unusable database URL or reference data, or the database unreachable at start.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let settings = Arc::new(settings);
    let reference = Arc::new(cairn_api::reference::Reference::load(&settings.data_dir)?);
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await.ok();
    let appender = Appender::spawn(pool.clone(), nats.clone());
    let watcher = CheckpointWatcher::start(pool.clone(), nats.clone()).await;
    let state = AppState::new(settings.clone(), pool.clone(), appender, watcher, nats.clone(), reference);
    let written = Arc::new(std::sync::atomic::AtomicI64::new(outbox::UNKNOWN));
    let exporter = Exporter { state: state.clone(), written: written.clone() };
    let runtime = Runtime::new(exporter, pool.clone(), nats.clone(), exporter_options(&settings.projector)).await?;
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(client) = nats {
        tasks.spawn(outbox::run(pool, client, written, shutdown.clone()));
    } else {
        tracing::warn!("no NATS connection: feeds stay in the outbox until the exporter restarts with NATS");
    }
    tasks.spawn(generate::run(state, shutdown.clone()));
    runtime.run(shutdown).await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}
