//! Publishes the feed outbox (`exp.feed_outbox`) to JetStream stream `CAIRN_FEEDS`, in `seq` order,
//! with `Nats-Expected-Last-Sequence = seq - 1` and `Nats-Msg-Id`: the stream sequence equals the
//! outbox seq, so after any crash the publisher resumes from the stream's last sequence and can
//! neither skip nor repeat a message. It wakes on the exporter's checkpoint announcements.

use async_nats::jetstream::{self, context::PublishErrorKind};
use cairn_eventlog::subjects::{self, HEADER_POSITION};
use cairn_eventlog::wake::{self, Backoff, Woken};
use cairn_platform::Shutdown;
use cairn_platform::metrics::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const BATCH: i64 = 256;

/// [`Publisher::written`] before anything is known: the outbox may hold rows from an earlier run.
pub const UNKNOWN: i64 = i64::MAX;

/// Sent rows are kept this long in PostgreSQL (the stream keeps them longer).
const KEEP_SENT: &str = "7 days";

pub struct Publisher {
    pool: deadpool_postgres::Pool,
    js: jetstream::Context,
    next: Option<i64>,
    /// The last outbox seq the exporter wrote in this process ([`UNKNOWN`] until the outbox was read
    /// once): while it is below `next` there is nothing to read, and no query is made.
    written: Arc<AtomicI64>,
    published: cairn_platform::metrics::Handle,
}

impl Publisher {
    pub fn new(pool: deadpool_postgres::Pool, client: async_nats::Client, written: Arc<AtomicI64>) -> Self {
        let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(5)).build(client);
        let published = Registry::global().counter("cairn_exporter_feed_messages_total", "Feed messages published to CAIRN_FEEDS.", &[]);
        Self { pool, js, next: None, written, published }
    }

    /// Publishes the next outbox rows; how many.
    ///
    /// # Errors
    /// NATS or database errors (the next call re-reads the stream's position).
    pub async fn publish_next(&mut self, force: bool) -> Result<usize, String> {
        let result = self.try_publish(force).await;
        if result.is_err() {
            self.next = None;
        }
        result
    }

    async fn try_publish(&mut self, force: bool) -> Result<usize, String> {
        let next = match self.next {
            Some(n) => n,
            None => {
                let mut stream = subjects::ensure_feeds_stream(&self.js).await.map_err(|e| e.to_string())?;
                let last = stream.info().await.map_err(|e| e.to_string())?.state.last_sequence;
                let n = last as i64 + 1;
                self.next = Some(n);
                n
            }
        };
        let written = self.written.load(Ordering::SeqCst);
        if !force && written != UNKNOWN && written < next {
            return Ok(0);
        }
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let rows = client
            .query("SELECT seq, msg_id, subject, payload, position FROM exp.feed_outbox WHERE seq >= $1 ORDER BY seq LIMIT $2", &[&next, &BATCH])
            .await
            .map_err(|e| e.to_string())?;
        let Some(first) = rows.first() else {
            // Everything written so far is published: from now on the exporter's hint is exact.
            let _ = self.written.compare_exchange(UNKNOWN, next - 1, Ordering::SeqCst, Ordering::SeqCst);
            return Ok(0);
        };
        let first_seq: i64 = first.get(0);
        if first_seq != next {
            return Err(format!("the feed outbox lacks sequence {next} (it continues at {first_seq}): the stream belongs to another database"));
        }
        let mut acks = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.get(0);
            let msg_id: String = r.get(1);
            let subject: String = r.get(2);
            let payload: String = r.get(3);
            let position: i64 = r.get(4);
            let msg = jetstream::message::PublishMessage::build()
                .payload(payload.into_bytes().into())
                .message_id(msg_id)
                .expected_last_sequence((seq - 1) as u64)
                .header(HEADER_POSITION, position.to_string().as_str());
            let ack = self.js.send_publish(subject, msg).await.map_err(|e| e.to_string())?;
            acks.push((seq, ack));
        }
        let mut last = next - 1;
        for (seq, ack) in acks {
            match ack.await {
                Ok(a) if a.sequence as i64 == seq => last = seq,
                Ok(a) => return Err(format!("CAIRN_FEEDS stored outbox seq {seq} at sequence {} (duplicate: {})", a.sequence, a.duplicate)),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => return Err(format!("wrong last sequence publishing outbox seq {seq}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        self.next = Some(last + 1);
        self.published.add(rows.len() as i64);
        client
            .execute(&format!("DELETE FROM exp.feed_outbox WHERE seq <= $1 AND created_at < now() - interval '{KEEP_SENT}'"), &[&last])
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.len())
    }
}

/// Publishes until shutdown. Woken by the exporter's checkpoints it trusts the exporter's hint; every
/// half second it reads the outbox regardless (a hint can lag behind a write it raced with).
pub async fn run(pool: deadpool_postgres::Pool, client: async_nats::Client, written: Arc<AtomicI64>, shutdown: Shutdown) {
    let mut wake = client.subscribe(subjects::checkpoint_subject(crate::NAME)).await.ok();
    let mut publisher = Publisher::new(pool, client, written);
    let mut backoff = Backoff::default();
    let mut force = true;
    while !shutdown.is_triggered() {
        match publisher.publish_next(force).await {
            Ok(0) => {
                backoff.reset();
                match wake::idle(&mut wake, Duration::from_millis(500), &shutdown).await {
                    Woken::Shutdown => break,
                    Woken::Ping => force = false,
                    Woken::Timer => force = true,
                }
            }
            Ok(_) => backoff.reset(),
            Err(e) => {
                tracing::warn!(error = %e, "feed publisher");
                force = true;
                if !backoff.sleep(&shutdown).await {
                    break;
                }
            }
        }
    }
}
