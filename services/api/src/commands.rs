//! Running a command: load the stream, fold `evolve`, `decide`, append with the expected version,
//! retry a bounded number of times on a concurrent write, then wait until the read models have applied
//! the new position (read-your-writes).

use crate::error::ApiError;
use crate::state::AppState;
use cairn_domain::{Actor, Change, DomainError};
use cairn_eventlog::{CommitReceipt, CommitRequest, ExpectedVersion, StoreError, StreamWrite};
use std::time::Duration;
use uuid::Uuid;

const MAX_RETRIES: usize = 5;

/// Identity of one command: its idempotency key, its name and who issued it.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub command_id: Uuid,
    pub command_type: &'static str,
    pub actor: Actor,
}

impl CommandMeta {
    pub fn new(command_type: &'static str, actor: Actor) -> Self {
        Self { command_id: Uuid::new_v4(), command_type, actor }
    }
}

/// Reads a stream and folds it.
///
/// # Errors
/// Store errors and undecodable changes.
pub async fn load<S: Default>(
    state: &AppState,
    stream_id: Uuid,
    evolve: fn(S, &Change) -> S,
) -> Result<(S, i64), ApiError> {
    let client = state.pool.get().await?;
    let stored = cairn_eventlog::store::read_stream(&client, stream_id, 0).await?;
    let mut version = 0;
    let mut s = S::default();
    for c in &stored {
        let change = Change::from_record(&c.change_type, c.schema_version, &c.payload).map_err(ApiError::internal)?;
        s = evolve(s, &change);
        version = c.stream_version;
    }
    Ok((s, version))
}

/// The stored form of domain changes.
pub fn to_new_changes(changes: &[Change]) -> Vec<cairn_eventlog::NewChange> {
    crate::bootstrap::to_new_changes(changes)
}

/// Runs `decide` against the current state of one stream and appends what it returns.
/// Returns `None` when the command changed nothing.
///
/// # Errors
/// Domain refusals, 409 after repeated concurrent writes, 503 when the store is unreachable.
pub async fn execute<S: Default>(
    state: &AppState,
    meta: &CommandMeta,
    stream_id: Uuid,
    stream_type: &str,
    evolve: fn(S, &Change) -> S,
    decide: impl Fn(&S) -> Result<Vec<Change>, DomainError>,
) -> Result<Option<CommitReceipt>, ApiError> {
    for _ in 0..MAX_RETRIES {
        let (current, version) = load(state, stream_id, evolve).await?;
        let changes = decide(&current)?;
        if changes.is_empty() {
            return Ok(None);
        }
        let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        let request = CommitRequest {
            command_id: meta.command_id,
            command_type: meta.command_type.into(),
            actor: serde_json::to_value(&meta.actor).map_err(ApiError::internal)?,
            writes: vec![StreamWrite { stream_id, stream_type: stream_type.into(), expected, changes: to_new_changes(&changes) }],
        };
        match state.appender.commit(request).await {
            Ok(receipt) => {
                wait_for_read_models(state, receipt.last_position).await;
                return Ok(Some(receipt));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("The target is being modified concurrently; please retry.".into()))
}

/// Waits (bounded) until the indexer has applied `position`. A timeout is logged and counted, not an error:
/// the write happened.
pub async fn wait_for_read_models(state: &AppState, position: i64) {
    let timeout = Duration::from_millis(state.settings.read_your_writes_timeout_ms);
    if !state.watcher.wait_for(cairn_indexer_name(), position, timeout).await {
        state.metrics.ryw_timeouts.inc();
        tracing::warn!(position, "read models did not reach the written position in time");
    }
}

/// The indexer's projector name (kept here so the API does not depend on the indexer crate).
pub fn cairn_indexer_name() -> &'static str {
    "indexer"
}
