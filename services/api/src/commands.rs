//! Running a command: load the stream (from an in-process cache of folded states; the stream's tail is
//! read when nothing is cached, after a conflict, and before answering a refusal), `decide`, append
//! with the expected version, retry a bounded number of times on a concurrent write, then wait until
//! the read models have applied the new position (read-your-writes).
//!
//! Commands on the same stream are serialised inside this process (one async lock per stream), so they
//! do not race each other into version conflicts; other processes are handled by the expected version.

use crate::error::ApiError;
use crate::state::AppState;
use cairn_domain::{Actor, Change};
use cairn_eventlog::{CommitReceipt, CommitRequest, ExpectedVersion, StoreError, StreamWrite};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const MAX_RETRIES: usize = 5;
const CACHE_STREAMS: usize = 1_024;
/// The cache also stays under this many folded changes in all (an Event's state grows with its
/// attributes: 1,000 Events of 1,000 attributes would hold a gigabyte).
const CACHE_CHANGES: i64 = 50_000;

/// Identity of one command: its idempotency key, its name and who issued it.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub command_id: Uuid,
    pub command_type: &'static str,
    pub actor: Actor,
    /// Wait for the read models to reach the write before answering (read-your-writes); a batch of
    /// commands (the sync consumers) waits once at its end instead.
    pub wait_for_read_models: bool,
}

impl CommandMeta {
    pub fn new(command_type: &'static str, actor: Actor) -> Self {
        Self { command_id: Uuid::new_v4(), command_type, actor, wait_for_read_models: true }
    }

    /// A command of a batch that waits for the read models once, after its last command.
    pub fn in_batch(command_type: &'static str, actor: Actor) -> Self {
        Self { wait_for_read_models: false, ..Self::new(command_type, actor) }
    }
}

type Slot = Option<(Box<dyn Any + Send + Sync>, i64)>;

/// Folded states of recently used streams, each behind its own async lock.
#[derive(Default)]
pub struct StreamCache {
    slots: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl std::fmt::Debug for StreamCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCache").finish_non_exhaustive()
    }
}

impl StreamCache {
    fn slot(&self, id: Uuid) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(&id) {
            Self::evict(&mut slots);
        }
        slots.entry(id).or_default().clone()
    }

    /// Drops idle entries (nobody holds their lock) while there are too many streams or too many
    /// folded changes; correctness never depends on the cache.
    fn evict(slots: &mut HashMap<Uuid, Arc<tokio::sync::Mutex<Slot>>>) {
        let idle: Vec<(Uuid, i64)> = slots
            .iter()
            .filter(|(_, s)| Arc::strong_count(s) == 1)
            .filter_map(|(k, s)| s.try_lock().ok().map(|g| (*k, g.as_ref().map_or(0, |(_, v)| *v))))
            .collect();
        let mut weight: i64 = idle.iter().map(|(_, v)| v).sum();
        let mut count = slots.len();
        for (k, v) in idle {
            if count < CACHE_STREAMS && weight <= CACHE_CHANGES {
                break;
            }
            slots.remove(&k);
            count -= 1;
            weight -= v;
        }
    }
}

/// What an executed command produced.
#[derive(Debug)]
pub struct Executed<T> {
    pub receipt: Option<CommitReceipt>,
    pub changes: Vec<Change>,
    pub extra: T,
}

/// The stored form of domain changes.
pub fn to_new_changes(changes: &[Change]) -> Vec<cairn_eventlog::NewChange> {
    crate::bootstrap::to_new_changes(changes)
}

/// The state the slot holds, taken out of it.
fn cached<S: 'static>(slot: &mut Slot) -> Option<(S, i64)> {
    let (boxed, version) = slot.take()?;
    boxed.downcast::<S>().ok().map(|s| (*s, version))
}

async fn refresh<S: Default + Send + Sync + 'static>(
    state: &AppState,
    slot: &mut Slot,
    stream_id: Uuid,
    evolve: fn(S, &Change) -> S,
) -> Result<(S, i64), ApiError> {
    let (mut s, mut version) = cached(slot).unwrap_or_default();
    let client = state.pool.get().await?;
    let tail = cairn_eventlog::store::read_stream(&client, stream_id, version).await?;
    for c in &tail {
        let change = Change::from_record(&c.change_type, c.schema_version, &c.payload).map_err(ApiError::internal)?;
        s = evolve(s, &change);
        version = c.stream_version;
    }
    Ok((s, version))
}

/// Reads a stream's current state (through the cache).
///
/// # Errors
/// Store errors and undecodable changes.
pub async fn load<S: Default + Clone + Send + Sync + 'static>(
    state: &AppState,
    stream_id: Uuid,
    evolve: fn(S, &Change) -> S,
) -> Result<(S, i64), ApiError> {
    let slot = state.streams.slot(stream_id);
    let mut guard = slot.lock().await;
    let (s, v) = refresh(state, &mut guard, stream_id, evolve).await?;
    *guard = Some((Box::new(s.clone()), v));
    Ok((s, v))
}

/// Runs `decide` against the current state of one stream and appends what it returns.
///
/// # Errors
/// The decision's refusal, 409 after repeated concurrent writes, 503 when the store is unreachable.
pub async fn execute<S, T>(
    state: &AppState,
    meta: &CommandMeta,
    stream_id: Uuid,
    stream_type: &str,
    evolve: fn(S, &Change) -> S,
    mut decide: impl FnMut(&S) -> Result<(Vec<Change>, T), ApiError>,
) -> Result<Executed<T>, ApiError>
where
    S: Default + Send + Sync + 'static,
{
    let slot = state.streams.slot(stream_id);
    let mut guard = slot.lock().await;
    // A cached state is decided on as it is: the append's expected version finds out whether another
    // process wrote to the stream since (a conflict re-reads the stream's tail and decides again).
    let mut optimistic = guard.is_some();
    for _ in 0..=MAX_RETRIES {
        let (current, version) = match optimistic.then(|| cached(&mut guard)).flatten() {
            Some(c) => c,
            None => {
                optimistic = false;
                refresh(state, &mut guard, stream_id, evolve).await?
            }
        };
        let (changes, extra) = match decide(&current) {
            Ok((changes, extra)) if !changes.is_empty() => (changes, extra),
            // A refusal, or nothing to write: answered only from a state just read.
            unwritten => {
                *guard = Some((Box::new(current), version));
                if std::mem::take(&mut optimistic) {
                    continue;
                }
                return unwritten.map(|(changes, extra)| Executed { receipt: None, changes, extra });
            }
        };
        let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        let request = CommitRequest {
            command_id: meta.command_id,
            command_type: meta.command_type.into(),
            actor: serde_json::to_value(&meta.actor).map_err(ApiError::internal)?,
            writes: vec![StreamWrite { stream_id, stream_type: stream_type.into(), expected, changes: to_new_changes(&changes) }],
        };
        match state.appender.commit(request).await {
            Ok(receipt) => {
                forget_cached_facts(state, stream_id, stream_type);
                if receipt.duplicate {
                    // The same command was already recorded: the cache must re-read the stream.
                    *guard = None;
                } else {
                    let mut s = current;
                    for c in &changes {
                        s = evolve(s, c);
                    }
                    *guard = Some((Box::new(s), version + changes.len() as i64));
                }
                drop(guard);
                if meta.wait_for_read_models {
                    wait_for_read_models(state, receipt.last_position).await;
                }
                // A reader may have cached the facts between the commit and the read models.
                forget_cached_facts(state, stream_id, stream_type);
                return Ok(Executed { receipt: Some(receipt), changes, extra });
            }
            Err(StoreError::Conflict { .. }) => {
                *guard = Some((Box::new(current), version));
                optimistic = false;
                continue;
            }
            Err(e) => {
                *guard = None;
                return Err(e.into());
            }
        }
    }
    Err(ApiError::Conflict("The target is being modified concurrently; please retry.".into()))
}

/// Drops this process's brief caches of what a write to the stream may have changed: the instance's
/// facts, sharing-group memberships, and API keys (they live on their user's stream; an organisation's
/// deletion disables its keys).
fn forget_cached_facts(state: &AppState, stream_id: Uuid, stream_type: &str) {
    use cairn_domain::stream::{ORGANISATION, SHARING_GROUP, USER, instance_stream};
    if stream_id == instance_stream() {
        state.instance.invalidate();
    }
    if stream_type == SHARING_GROUP || stream_type == ORGANISATION {
        state.sharing_groups.invalidate();
    }
    if stream_type == USER || stream_type == ORGANISATION {
        state.auth_keys.invalidate();
    }
}

/// Waits (bounded) until the read models the API reads have applied `position`. A timeout is logged and counted, not an
/// error: the write happened.
pub async fn wait_for_read_models(state: &AppState, position: i64) {
    let timeout = Duration::from_millis(state.settings.read_your_writes_timeout_ms);
    let started = std::time::Instant::now();
    // Reads right after a write consult the indexer's tables and the correlations.
    let mut reached = true;
    for projector in READ_MODELS {
        let left = timeout.saturating_sub(started.elapsed());
        reached &= state.watcher.wait_for(projector, position, left).await;
    }
    state.metrics.ryw_wait_micros.add(started.elapsed().as_micros() as i64);
    state.metrics.ryw_waits.inc();
    if !reached {
        state.metrics.ryw_timeouts.inc();
        tracing::warn!(position, "read models did not reach the written position in time");
    }
}

/// The read models a write waits for (projector names; the API does not depend on their crates).
pub const READ_MODELS: [&str; 2] = ["indexer", "correlator"];

/// The exporter's projector name: no write waits for it, but the export listing does (see
/// `handlers::exports::index`).
pub const EXPORTER: &str = "exporter";

/// `n` fresh ids from an id sequence (`ids.<sequence>`).
///
/// # Errors
/// Database errors.
pub async fn allocate_ids(state: &AppState, sequence: &str, n: usize) -> Result<Vec<i64>, ApiError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut ids = match state.ids.take(sequence, n) {
        Ok(ids) => return Ok(ids),
        Err(leftover) => leftover,
    };
    // Refill: what the request still needs plus a block for the next ones, in one round trip. The
    // leftover spare ids are older (smaller) than the fresh ones and go first.
    let fetch = n - ids.len() + IdBlocks::BLOCK;
    let client = state.pool.get().await?;
    let sql = format!("SELECT nextval('ids.{sequence}') FROM generate_series(1, $1::int)");
    let rows = client.query(&sql, &[&(fetch as i32)]).await?;
    ids.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    ids.sort_unstable();
    let rest = ids.split_off(n);
    let fresh = ids;
    state.ids.put(sequence, rest);
    Ok(fresh)
}

/// Ids drawn from the database sequences in blocks, handed out in increasing order by this process
/// (a request usually needs one: a round trip saved per write). Unused ids of a stopped process are
/// gaps, as in MISP after deletions.
#[derive(Debug, Default)]
pub struct IdBlocks {
    spare: Mutex<HashMap<String, std::collections::VecDeque<i64>>>,
}

impl IdBlocks {
    const BLOCK: usize = 32;

    /// `n` spare ids, or (when fewer are spare) all of them as `Err`, for the caller to complete
    /// from the database: handing out the old ones first keeps ids increasing in request order.
    fn take(&self, sequence: &str, n: usize) -> Result<Vec<i64>, Vec<i64>> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = spare.get_mut(sequence) else {
            return Err(Vec::new());
        };
        if queue.len() >= n {
            Ok(queue.drain(..n).collect())
        } else {
            Err(queue.drain(..).collect())
        }
    }

    fn put(&self, sequence: &str, ids: Vec<i64>) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let queue = spare.entry(sequence.to_string()).or_default();
        // Two refills may race: keep every id, in increasing order.
        queue.extend(ids);
        queue.make_contiguous().sort_unstable();
    }
}
