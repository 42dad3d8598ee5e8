//! The relay: the only publisher of `CAIRN_CHANGES`. It tails `es.changes` by position and publishes
//! each change with `Nats-Msg-Id` = change id and `Nats-Expected-Last-Sequence` = position − 1, so the
//! stream sequence equals the log position and JetStream itself refuses holes and duplicates.
//!
//! Resuming is stateless: the next position to publish is the stream's last sequence + 1. After a crash
//! (even between a publish and its ack) or a NATS restart the relay re-reads it; if the stream was wiped
//! it is recreated and refilled from position 1. One relay is active per database (session advisory lock).

use crate::model::StoredChange;
use crate::store;
use crate::wake::{self, Backoff, Woken};
use crate::subjects::{self, HEADER_COMMIT, HEADER_POSITION, HEADER_SCHEMA_VERSION, HEADER_STREAM, HEADER_STREAM_VERSION, HEADER_TRUNCATED};
use async_nats::jetstream::{self, context::PublishErrorKind};
use cairn_platform::Shutdown;
use cairn_platform::metrics::Registry;
use std::time::Duration;

const LEADER_LOCK: i64 = 4_242_002;
/// Room left for headers under the server's max payload.
const HEADER_ROOM: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("JetStream holds position {stream} but the log head is {head}: the stream belongs to another database")]
    StreamAhead { stream: u64, head: i64 },
}

fn nats_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::Nats(e.to_string())
}

/// Relay state: where publishing resumes.
pub struct Relay {
    pool: deadpool_postgres::Pool,
    js: jetstream::Context,
    batch_size: i64,
    next: Option<i64>,
    published: cairn_platform::metrics::Handle,
    position: cairn_platform::metrics::Handle,
}

impl Relay {
    pub fn new(pool: deadpool_postgres::Pool, client: async_nats::Client, batch_size: usize) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .max_ack_inflight(4_096)
            .backpressure_on_inflight(true)
            .build(client);
        let registry = Registry::global();
        Self {
            pool,
            js,
            batch_size: batch_size.max(1) as i64,
            next: None,
            published: registry.counter("cairn_relay_published_total", "Changes published to JetStream.", &[]),
            position: registry.gauge("cairn_relay_position", "Last position published to JetStream.", &[]),
        }
    }

    /// Publishes the next batch of unpublished changes. Returns how many were published (0: up to date).
    ///
    /// # Errors
    /// Database or NATS failures; the next call resumes from JetStream's last sequence.
    pub async fn publish_next(&mut self) -> Result<usize, RelayError> {
        let next = match self.next {
            Some(n) => n,
            None => {
                let mut stream = subjects::ensure_changes_stream(&self.js).await.map_err(nats_err)?;
                let last = stream.info().await.map_err(nats_err)?.state.last_sequence;
                let client = self.pool.get().await?;
                let head = store::head(&client).await?.position;
                if last as i64 > head {
                    return Err(RelayError::StreamAhead { stream: last, head });
                }
                let n = last as i64 + 1;
                self.next = Some(n);
                n
            }
        };
        let changes = {
            let client = self.pool.get().await?;
            store::read_log(&client, next - 1, self.batch_size).await?
        };
        if changes.is_empty() {
            return Ok(0);
        }
        match self.publish(&changes).await {
            Ok(()) => {
                if let Some(c) = changes.last() {
                    let delay = chrono::Utc::now() - c.recorded_at;
                    tracing::debug!(position = c.position, delay_us = delay.num_microseconds(), "published");
                }
                let last = changes.last().map_or(next - 1, |c| c.position);
                self.next = Some(last + 1);
                self.published.add(changes.len() as i64);
                self.position.set(last);
                Ok(changes.len())
            }
            Err(e) => {
                // Re-read the stream's last sequence before the next attempt.
                self.next = None;
                Err(e)
            }
        }
    }

    async fn publish(&self, changes: &[StoredChange]) -> Result<(), RelayError> {
        let max_payload = self.js.client().server_info().max_payload.max(64 * 1024);
        let mut acks = Vec::with_capacity(changes.len());
        for c in changes {
            let mut body = serde_json::to_vec(c).map_err(nats_err)?;
            let mut truncated = false;
            if body.len() + HEADER_ROOM > max_payload {
                let mut stub = c.clone();
                stub.payload = serde_json::Value::Null;
                stub.metadata = serde_json::Value::Null;
                body = serde_json::to_vec(&stub).map_err(nats_err)?;
                truncated = true;
            }
            let mut msg = jetstream::message::PublishMessage::build()
                .payload(body.into())
                .message_id(c.change_id.to_string())
                .expected_last_sequence((c.position - 1) as u64)
                .header(HEADER_POSITION, c.position.to_string().as_str())
                .header(HEADER_STREAM, c.stream_id.to_string().as_str())
                .header(HEADER_STREAM_VERSION, c.stream_version.to_string().as_str())
                .header(HEADER_SCHEMA_VERSION, c.schema_version.to_string().as_str())
                .header(HEADER_COMMIT, c.commit_seq.to_string().as_str());
            if truncated {
                msg = msg.header(HEADER_TRUNCATED, "1");
            }
            let ack = self
                .js
                .send_publish(subjects::change_subject(&c.stream_type, &c.change_type), msg)
                .await
                .map_err(nats_err)?;
            acks.push((c.position, ack));
        }
        for (position, ack) in acks {
            match ack.await {
                Ok(ack) if ack.sequence as i64 == position => {}
                Ok(ack) => {
                    return Err(RelayError::Nats(format!(
                        "JetStream stored position {position} at sequence {} (duplicate: {})",
                        ack.sequence, ack.duplicate
                    )));
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return Err(RelayError::Nats(format!("wrong last sequence publishing position {position}")));
                }
                Err(e) => return Err(nats_err(e)),
            }
        }
        Ok(())
    }
}

/// Runs the relay until shutdown: waits for leadership, then publishes whenever the log grows (woken by
/// the appender's ping, or by polling every `poll`).
///
/// # Errors
/// Only if leadership cannot be requested at all; publishing errors are logged and retried.
pub async fn run(
    pool: deadpool_postgres::Pool,
    client: async_nats::Client,
    batch_size: usize,
    poll: Duration,
    shutdown: Shutdown,
) -> Result<(), RelayError> {
    // Leadership: a session advisory lock held on a dedicated connection for the relay's lifetime.
    let leader = loop {
        let conn = pool.get().await;
        if let Ok(conn) = conn {
            let row = conn.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]).await;
            if let Ok(row) = row {
                if row.get::<_, bool>(0) {
                    break conn;
                }
            }
        }
        tracing::info!("waiting for relay leadership");
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    tracing::info!("relay is the leader");
    let mut wake = client.subscribe(crate::appender::APPENDED_SUBJECT).await.ok();
    let mut relay = Relay::new(pool, client, batch_size);
    let mut backoff = Backoff::default();
    while !shutdown.is_triggered() {
        match relay.publish_next().await {
            // Fewer than a batch: the log is read to its end (a commit since has pinged the wake-up).
            Ok(n) if (n as i64) < relay.batch_size => {
                backoff.reset();
                if wake::idle(&mut wake, poll, &shutdown).await == Woken::Shutdown {
                    break;
                }
            }
            Ok(_) => backoff.reset(),
            Err(e) => {
                tracing::warn!(error = %e, "relay round failed; retrying");
                if !backoff.sleep(&shutdown).await {
                    break;
                }
            }
        }
    }
    let _ = leader.execute("SELECT pg_advisory_unlock($1)", &[&LEADER_LOCK]).await;
    Ok(())
}
