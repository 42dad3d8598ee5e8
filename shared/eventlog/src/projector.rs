//! The projector runtime shared by every read model (ARCHITECTURE.md §6).
//!
//! A projector is a name plus an `apply(tx, changes)` that folds changes into its tables. The runtime
//! feeds it in position order, exactly once in effect:
//! * each batch is applied and the checkpoint moved in ONE PostgreSQL transaction; JetStream messages
//!   are acknowledged only after that commit, all at once by acknowledging the batch's last one (the
//!   consumer's policy is ack-all; a crash in between causes a redelivery, which the checkpoint turns
//!   into a no-op);
//! * live, it follows a durable JetStream pull consumer; when it is far behind, when NATS is down, when
//!   a message is missing or too large, it reads the range from PostgreSQL instead (same `apply`);
//! * a change that keeps failing is retried `max_attempts` times, then recorded in `es.dead_letters`
//!   and skipped, so one poison change cannot stall the read model forever;
//! * lag (head − checkpoint) is exported as a metric.
//!
//! [`Runtime::try_apply_next`] performs one step, so tests drive projectors without sleeping.

use crate::wake::{self, Backoff, Woken};
use crate::model::StoredChange;
use crate::store;
use crate::subjects::{self, CHANGES_STREAM, CHANGES_SUBJECTS, HEADER_POSITION, HEADER_TRUNCATED};
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use cairn_platform::Shutdown;
use cairn_platform::metrics::{Handle, Registry};
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::time::{Duration, Instant};
use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;

/// Why applying a change failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Invalid(String),
    /// Something the projector depends on is not ready yet (another read model behind): retried
    /// without counting an attempt.
    #[error("not ready: {0}")]
    NotReady(String),
}

/// A batch decoded with `decode` (e.g. `Change::from_record`), each change with its stream id; an
/// undecodable change makes the batch invalid.
///
/// # Errors
/// [`ApplyError::Invalid`] naming the first change that does not decode.
pub fn decode_batch<T, E: std::fmt::Display>(
    changes: &[StoredChange],
    decode: impl Fn(&str, i16, &serde_json::Value) -> Result<T, E>,
) -> Result<Vec<(uuid::Uuid, T)>, ApplyError> {
    changes
        .iter()
        .map(|c| decode(&c.change_type, c.schema_version, &c.payload).map(|t| (c.stream_id, t)))
        .collect::<Result<_, E>>()
        .map_err(|e| ApplyError::Invalid(e.to_string()))
}

impl ApplyError {
    /// Failures that say nothing about the change itself (connection lost, deadlock, server shutting
    /// down): retried without counting an attempt.
    fn is_transient(&self) -> bool {
        match self {
            Self::Db(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let code = c.code();
                        code.starts_with("08")
                            || code.starts_with("57")
                            || code.starts_with("53")
                            || *c == SqlState::T_R_SERIALIZATION_FAILURE
                            || *c == SqlState::T_R_DEADLOCK_DETECTED
                    })
                    || e.code().is_none()
            }
            Self::Invalid(_) => false,
            Self::NotReady(_) => true,
        }
    }
}

/// A read model: folds changes, in position order, inside the runtime's transaction.
pub trait Projector: Send + Sync + 'static {
    /// Unique name; also the checkpoint key and the JetStream durable consumer name.
    fn name(&self) -> &str;

    /// Applies `changes` (contiguous, ascending positions) inside `tx`. Must not commit.
    fn apply(
        &self,
        tx: &Transaction<'_>,
        changes: &[StoredChange],
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("applying position {position} failed (attempt {attempts}): {error}")]
    Apply { position: i64, attempts: i32, error: ApplyError },
    #[error("NATS: {0}")]
    Nats(String),
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied this many changes (0: only skipped redeliveries).
    Applied(usize),
    /// Nothing to do.
    Idle,
}

/// Runtime options (defaults suit production; tests shorten the waits).
#[derive(Debug, Clone)]
pub struct Options {
    pub batch_size: usize,
    /// Beyond this many changes behind the head, read PostgreSQL instead of JetStream.
    pub catchup_threshold: i64,
    pub max_attempts: i32,
    /// How long one live step waits for a message before answering `Idle`.
    pub idle_wait: Duration,
    /// JetStream redelivers unacked messages after this long.
    pub ack_wait: Duration,
    /// If JetStream brings nothing for this long while the log is ahead, read PostgreSQL.
    pub stall_after: Duration,
    /// PostgreSQL polling interval when not live.
    pub poll: Duration,
    /// Fault injection for tests: never ack (as if the process died right after each commit).
    pub crash_before_ack: bool,
    /// Once a live message arrived, how long to wait for more before applying the batch (zero: take
    /// only what is already there). A projector nothing waits on trades this much delay for fewer,
    /// larger transactions.
    pub linger: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            catchup_threshold: 10_000,
            max_attempts: 5,
            idle_wait: Duration::from_millis(500),
            ack_wait: Duration::from_secs(30),
            stall_after: Duration::from_secs(2),
            poll: Duration::from_millis(100),
            crash_before_ack: false,
            linger: Duration::ZERO,
        }
    }
}

impl Options {
    pub fn from_settings(s: &cairn_platform::settings::ProjectorSettings) -> Self {
        Self {
            batch_size: s.batch_size,
            catchup_threshold: s.catchup_threshold,
            max_attempts: s.max_attempts,
            ..Self::default()
        }
    }
}

struct Live {
    messages: pull::Stream,
}

/// How long a live projector goes on using the log head it last read.
const HEAD_REFRESH: Duration = Duration::from_millis(100);

/// Moves `projector`'s checkpoint from `from` to `to` inside `tx`, which keeps it locked until the
/// commit; false (nothing moved) when it is not at `from`: another instance of the projector got there
/// first, and this one must not apply the same changes again. Read models are derived data: a crash may
/// lose the last projector commits (checkpoint and data together, never one without the other) and they
/// are simply re-applied from the log, so the transaction does not wait for the WAL flush
/// (`set_config(…, true)` is `SET LOCAL`), which keeps read-your-writes fast.
async fn claim(tx: &Transaction<'_>, projector: &str, from: i64, to: i64) -> Result<bool, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "UPDATE es.projector_checkpoints SET position = $3, updated_at = clock_timestamp() \
             WHERE projector = $1 AND position = $2 RETURNING set_config('synchronous_commit', 'off', true)",
        )
        .await?;
    Ok(tx.query_opt(&stmt, &[&projector, &from, &to]).await?.is_some())
}

/// Drives one projector.
pub struct Runtime<P: Projector> {
    projector: P,
    pool: deadpool_postgres::Pool,
    nats: Option<async_nats::Client>,
    options: Options,
    checkpoint: i64,
    live: Option<Live>,
    next_live_attempt: Instant,
    last_progress: Instant,
    /// The log head last read, and when: while JetStream delivers less than full batches, it is read
    /// again only every [`HEAD_REFRESH`] (it only chooses between live and catch-up reading and times
    /// waits).
    head: Option<(i64, Instant)>,
    metric_checkpoint: Handle,
    metric_lag: Handle,
    metric_applied: Handle,
    metric_dead: Handle,
}

impl<P: Projector> Runtime<P> {
    /// Registers the projector's checkpoint (0 for a new one) and loads it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn new(
        projector: P,
        pool: deadpool_postgres::Pool,
        nats: Option<async_nats::Client>,
        options: Options,
    ) -> Result<Self, RuntimeError> {
        let name = projector.name().to_string();
        let client = pool.get().await?;
        client
            .execute(
                "INSERT INTO es.projector_checkpoints (projector, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&name],
            )
            .await?;
        let checkpoint: i64 = client
            .query_one("SELECT position FROM es.projector_checkpoints WHERE projector = $1", &[&name])
            .await?
            .get(0);
        drop(client);
        let registry = Registry::global();
        let labels = [("projector", name.as_str())];
        Ok(Self {
            metric_checkpoint: registry.gauge("cairn_projector_checkpoint", "Last position applied.", &labels),
            metric_lag: registry.gauge("cairn_projector_lag", "Log head minus checkpoint.", &labels),
            metric_applied: registry.counter("cairn_projector_applied_total", "Changes applied.", &labels),
            metric_dead: registry.counter("cairn_projector_dead_letters_total", "Changes dead-lettered.", &labels),
            projector,
            pool,
            nats,
            options,
            checkpoint,
            live: None,
            next_live_attempt: Instant::now(),
            last_progress: Instant::now(),
            head: None,
        })
    }

    pub fn projector(&self) -> &P {
        &self.projector
    }

    pub fn checkpoint(&self) -> i64 {
        self.checkpoint
    }

    /// Whether the last step followed JetStream (false: PostgreSQL).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// One step: apply the next batch from JetStream or PostgreSQL.
    ///
    /// # Errors
    /// Database or NATS failures, or a change that failed to apply (retried on the next step until it is
    /// dead-lettered).
    pub async fn try_apply_next(&mut self) -> Result<Outcome, RuntimeError> {
        let recent = self.head.filter(|(_, at)| self.live.is_some() && at.elapsed() < HEAD_REFRESH);
        let head = match recent {
            Some((head, _)) => head,
            None => {
                let client = self.pool.get().await?;
                let head = store::head(&client).await?.position;
                self.head = Some((head, Instant::now()));
                head
            }
        };
        let behind = (head - self.checkpoint).max(0);
        self.metric_lag.set(behind);
        if behind > self.options.catchup_threshold {
            // Far behind: bulk catch-up from PostgreSQL; JetStream resumes afterwards at the checkpoint.
            self.live = None;
            return self.apply_from_postgres().await;
        }
        if self.live.is_none() && self.nats.is_some() && Instant::now() >= self.next_live_attempt {
            if let Err(e) = self.go_live().await {
                tracing::debug!(projector = self.projector.name(), error = %e, "JetStream not available; reading PostgreSQL");
                self.next_live_attempt = Instant::now() + Duration::from_secs(2);
            }
        }
        if self.live.is_none() {
            return self.apply_from_postgres().await;
        }
        let messages = self.next_messages(head > self.checkpoint).await?;
        if messages.is_empty() {
            if head > self.checkpoint && self.last_progress.elapsed() >= self.options.stall_after {
                // The log moved but JetStream brought nothing (relay down or slow): read it directly.
                return self.apply_from_postgres().await;
            }
            return Ok(Outcome::Idle);
        }
        if messages.len() >= self.options.batch_size {
            // A full batch: the log may be far ahead (a large commit), which the head tells at once.
            self.head = None;
        }
        self.apply_messages(messages).await
    }

    /// Runs until shutdown, logging and backing off on errors.
    pub async fn run(mut self, shutdown: Shutdown) {
        let mut backoff = Backoff::default();
        let mut wake = match &self.nats {
            Some(c) => c.subscribe(crate::appender::APPENDED_SUBJECT).await.ok(),
            None => None,
        };
        tracing::info!(projector = self.projector.name(), checkpoint = self.checkpoint, "projector started");
        while !shutdown.is_triggered() {
            let step = tokio::select! {
                _ = shutdown.wait() => break,
                r = self.try_apply_next() => r,
            };
            match step {
                Ok(Outcome::Applied(_)) => backoff.reset(),
                Ok(Outcome::Idle) => {
                    backoff.reset();
                    // Live, the JetStream fetch itself waited; otherwise wait for an append or the poll.
                    if self.live.is_none() && wake::idle(&mut wake, self.options.poll, &shutdown).await == Woken::Shutdown {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(projector = self.projector.name(), error = %e, "projector step failed");
                    if matches!(e, RuntimeError::Nats(_)) {
                        self.live = None;
                    }
                    if !backoff.sleep(&shutdown).await {
                        break;
                    }
                }
            }
        }
        tracing::info!(projector = self.projector.name(), checkpoint = self.checkpoint, "projector stopped");
    }

    async fn go_live(&mut self) -> Result<(), RuntimeError> {
        let Some(client) = self.nats.clone() else { return Err(RuntimeError::Nats("no NATS client".into())) };
        let js = jetstream::new(client);
        let stream = js.get_stream(CHANGES_STREAM).await.map_err(|e| RuntimeError::Nats(e.to_string()))?;
        let name = self.projector.name().to_string();
        let config = pull::Config {
            durable_name: Some(name.clone()),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: (self.checkpoint + 1) as u64 },
            // Acknowledging a batch's last message acknowledges the batch (the checkpoint, not the
            // acknowledgements, says what was applied).
            ack_policy: AckPolicy::All,
            ack_wait: self.options.ack_wait,
            max_deliver: 50,
            filter_subject: CHANGES_SUBJECTS.into(),
            max_ack_pending: 20_000,
            ..Default::default()
        };
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_or_create_consumer(&name, config.clone()).await.map_err(|e| RuntimeError::Nats(e.to_string()))?;
        // A durable that lags far behind the checkpoint (we caught up from PostgreSQL) would redeliver
        // everything in between only for us to skip it: start it afresh at the checkpoint instead.
        let info = consumer.info().await.map_err(|e| RuntimeError::Nats(e.to_string()))?;
        let floor = info.ack_floor.stream_sequence as i64;
        // A durable created before acknowledgements were per batch is replaced too (JetStream cannot
        // change a consumer's acknowledgement policy).
        if self.checkpoint - floor > self.options.catchup_threshold.min(1_000) || info.config.ack_policy != AckPolicy::All {
            stream.delete_consumer(&name).await.map_err(|e| RuntimeError::Nats(e.to_string()))?;
            consumer = stream.create_consumer(config).await.map_err(|e| RuntimeError::Nats(e.to_string()))?;
        }
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.options.batch_size.max(1))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| RuntimeError::Nats(e.to_string()))?;
        self.live = Some(Live { messages });
        Ok(())
    }

    /// Waits up to `idle_wait` for the first message (less when the log is already ahead), then takes
    /// whatever else is immediately available, up to the batch size.
    async fn next_messages(&mut self, log_ahead: bool) -> Result<Vec<jetstream::Message>, RuntimeError> {
        let Some(live) = self.live.as_mut() else { return Ok(Vec::new()) };
        let wait = if log_ahead { self.options.idle_wait.min(Duration::from_millis(250)) } else { self.options.idle_wait };
        let mut out = Vec::new();
        match tokio::time::timeout(wait, live.messages.next()).await {
            Err(_) => return Ok(out),
            Ok(None) => {
                self.live = None;
                return Ok(out);
            }
            Ok(Some(Err(e))) => {
                self.live = None;
                return Err(RuntimeError::Nats(e.to_string()));
            }
            Ok(Some(Ok(m))) => out.push(m),
        }
        let until = Instant::now() + self.options.linger;
        while out.len() < self.options.batch_size {
            let next = match live.messages.next().now_or_never() {
                Some(next) => next,
                None => match until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) {
                    Some(left) => tokio::time::timeout(left, live.messages.next()).await.ok().flatten(),
                    None => break,
                },
            };
            match next {
                Some(Ok(m)) => out.push(m),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn apply_messages(&mut self, messages: Vec<jetstream::Message>) -> Result<Outcome, RuntimeError> {
        let mut changes = Vec::with_capacity(messages.len());
        let mut contiguous = true;
        let mut expected = self.checkpoint + 1;
        let mut max_position = self.checkpoint;
        for m in &messages {
            let position = m
                .headers
                .as_ref()
                .and_then(|h| h.get(HEADER_POSITION))
                .and_then(|v| v.as_str().parse::<i64>().ok());
            let Some(position) = position else { continue };
            max_position = max_position.max(position);
            if position <= self.checkpoint {
                continue; // a redelivery of something already applied
            }
            let truncated = m.headers.as_ref().is_some_and(|h| h.get(HEADER_TRUNCATED).is_some());
            match serde_json::from_slice::<StoredChange>(&m.payload) {
                Ok(c) if !truncated && position == expected && c.position == position => {
                    changes.push(c);
                    expected += 1;
                }
                _ => contiguous = false,
            }
        }
        if let Some(c) = changes.last() {
            let delay = chrono::Utc::now() - c.recorded_at;
            tracing::debug!(projector = self.projector.name(), position = c.position, delay_us = delay.num_microseconds(), "live batch received");
        }
        let applied = if max_position <= self.checkpoint {
            0
        } else if contiguous {
            self.apply_batch(changes).await?
        } else {
            // A hole, an oversized change or an undecodable body: take the range from the source of truth.
            let client = self.pool.get().await?;
            let range = store::read_range(&client, self.checkpoint, max_position).await?;
            drop(client);
            self.apply_batch(range).await?
        };
        if !self.options.crash_before_ack {
            if let Some(m) = messages.last() {
                if let Err(e) = m.ack().await {
                    tracing::debug!(error = %e, "ack failed; the redelivery will be skipped");
                }
            }
        }
        Ok(Outcome::Applied(applied))
    }

    async fn apply_from_postgres(&mut self) -> Result<Outcome, RuntimeError> {
        let changes = {
            let client = self.pool.get().await?;
            store::read_log(&client, self.checkpoint, self.options.batch_size as i64).await?
        };
        if changes.is_empty() {
            return Ok(Outcome::Idle);
        }
        Ok(Outcome::Applied(self.apply_batch(changes).await?))
    }

    /// Applies a contiguous batch with its checkpoint in one transaction. On failure, applies the
    /// changes one by one so the failing one is isolated, counted and eventually dead-lettered.
    async fn apply_batch(&mut self, changes: Vec<StoredChange>) -> Result<usize, RuntimeError> {
        match self.apply_in_tx(&changes).await {
            Ok(n) => Ok(n),
            Err(TxError::Runtime(e)) => Err(e),
            Err(TxError::Apply(error)) if error.is_transient() => Err(RuntimeError::Apply {
                position: changes.first().map_or(0, |c| c.position),
                attempts: 0,
                error,
            }),
            Err(TxError::Apply(_)) if changes.len() > 1 => {
                let mut applied = 0;
                for c in changes {
                    if c.position <= self.checkpoint {
                        continue;
                    }
                    let one = [c];
                    match self.apply_in_tx(&one).await {
                        Ok(n) => applied += n,
                        Err(TxError::Runtime(e)) => return Err(e),
                        Err(TxError::Apply(error)) => {
                            let [c] = one;
                            return self.record_failure(&c, error).await.map(|n| applied + n);
                        }
                    }
                }
                Ok(applied)
            }
            Err(TxError::Apply(error)) => {
                let Some(c) = changes.into_iter().next() else { return Ok(0) };
                self.record_failure(&c, error).await
            }
        }
    }

    async fn apply_in_tx(&mut self, changes: &[StoredChange]) -> Result<usize, TxError> {
        let started = std::time::Instant::now();
        let result = self.apply_in_tx_inner(changes).await;
        tracing::debug!(projector = self.projector.name(), changes = changes.len(), took_us = started.elapsed().as_micros() as u64, "batch applied");
        result
    }

    async fn apply_in_tx_inner(&mut self, changes: &[StoredChange]) -> Result<usize, TxError> {
        let runtime = |e: tokio_postgres::Error| TxError::Runtime(e.into());
        let name = self.projector.name().to_string();
        let todo: Vec<StoredChange> = changes.iter().filter(|c| c.position > self.checkpoint).cloned().collect();
        let (Some(first), Some(last)) = (todo.first().map(|c| c.position), todo.last().map(|c| c.position)) else { return Ok(0) };
        let mut client = self.pool.get().await.map_err(|e| TxError::Runtime(e.into()))?;
        let tx = client.transaction().await.map_err(runtime)?;
        // The batch claims the checkpoint from the position this runtime applied last.
        let claimed = first == self.checkpoint + 1 && claim(&tx, &name, self.checkpoint, last).await.map_err(runtime)?;
        if !claimed {
            // Another instance moved the checkpoint, or the caller's batch starts past a hole.
            let read = tx.prepare_cached("SELECT position FROM es.projector_checkpoints WHERE projector = $1").await.map_err(runtime)?;
            self.checkpoint = tx.query_one(&read, &[&name]).await.map_err(runtime)?.get(0);
            tx.commit().await.map_err(runtime)?;
            return Ok(0);
        }
        self.projector.apply(&tx, &todo).await.map_err(TxError::Apply)?;
        tx.commit().await.map_err(|e| TxError::Apply(e.into()))?;
        self.advanced(last, todo.len());
        Ok(todo.len())
    }

    fn advanced(&mut self, position: i64, applied: usize) {
        self.checkpoint = position;
        self.last_progress = Instant::now();
        self.metric_checkpoint.set(position);
        self.metric_applied.add(applied as i64);
        if let Some(client) = &self.nats {
            let client = client.clone();
            let subject = subjects::checkpoint_subject(self.projector.name());
            tokio::spawn(async move {
                let _ = client.publish(subject, position.to_string().into()).await;
            });
        }
    }

    /// Counts a failed attempt; after `max_attempts` dead-letters the change and moves past it.
    async fn record_failure(&mut self, change: &StoredChange, error: ApplyError) -> Result<usize, RuntimeError> {
        let name = self.projector.name().to_string();
        let message = error.to_string();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let attempts: i32 = tx
            .query_one(
                "INSERT INTO es.projector_failures (projector, position, attempts, last_error) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (projector, position) DO UPDATE \
                 SET attempts = es.projector_failures.attempts + 1, last_error = $3, last_seen = clock_timestamp() \
                 RETURNING attempts",
                &[&name, &change.position, &message],
            )
            .await?
            .get(0);
        if attempts < self.options.max_attempts {
            tx.commit().await?;
            return Err(RuntimeError::Apply { position: change.position, attempts, error });
        }
        if !claim(&tx, &name, change.position - 1, change.position).await? {
            tx.commit().await?;
            return Ok(0);
        }
        tx.execute(
            "INSERT INTO es.dead_letters (projector, position, change_id, change_type, error, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&name, &change.position, &change.change_id, &change.change_type, &message, &attempts],
        )
        .await?;
        tx.execute("DELETE FROM es.projector_failures WHERE projector = $1 AND position = $2", &[&name, &change.position])
            .await?;
        tx.commit().await?;
        tracing::error!(projector = %name, position = change.position, change_type = %change.change_type,
            error = %message, "change dead-lettered after {attempts} attempts");
        self.metric_dead.inc();
        self.advanced(change.position, 0);
        Ok(0)
    }
}

enum TxError {
    Runtime(RuntimeError),
    Apply(ApplyError),
}
