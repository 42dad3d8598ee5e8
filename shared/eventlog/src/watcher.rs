//! Read-your-writes: wait until a projector's checkpoint reaches a position.
//!
//! Projectors announce each new checkpoint on core NATS (`cairn.checkpoint.<name>`); this watcher keeps
//! the latest value per projector and falls back to reading `es.projector_checkpoints` when no
//! announcement arrives in time (NATS is at-most-once; the table is the truth).

use crate::subjects;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct CheckpointWatcher {
    pool: deadpool_postgres::Pool,
    known: Arc<Mutex<HashMap<String, i64>>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for CheckpointWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointWatcher").finish_non_exhaustive()
    }
}

impl CheckpointWatcher {
    /// Starts listening for checkpoint announcements (if NATS is given).
    pub async fn start(pool: deadpool_postgres::Pool, nats: Option<async_nats::Client>) -> Self {
        let watcher = Self { pool, known: Arc::default(), notify: Arc::new(Notify::new()) };
        if let Some(client) = nats {
            if let Ok(mut sub) = client.subscribe(subjects::CHECKPOINT_SUBJECTS).await {
                let w = watcher.clone();
                tokio::spawn(async move {
                    while let Some(msg) = sub.next().await {
                        let Some(name) = msg.subject.as_str().strip_prefix("cairn.checkpoint.") else { continue };
                        let Ok(position) = std::str::from_utf8(&msg.payload).unwrap_or("").parse::<i64>() else {
                            continue;
                        };
                        w.observe(name, position);
                    }
                });
            }
        }
        watcher
    }

    fn observe(&self, projector: &str, position: i64) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let entry = known.entry(projector.to_string()).or_insert(0);
        if position > *entry {
            *entry = position;
            drop(known);
            self.notify.notify_waiters();
        }
    }

    fn current(&self, projector: &str) -> i64 {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).get(projector).copied().unwrap_or(0)
    }

    async fn read_table(&self, projector: &str) -> Option<i64> {
        let client = self.pool.get().await.ok()?;
        let row = client
            .query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1", &[&projector])
            .await
            .ok()??;
        let position: i64 = row.get(0);
        self.observe(projector, position);
        Some(position)
    }

    /// Waits until `projector` has applied `position`, at most `timeout`. Returns whether it did.
    pub async fn wait_for(&self, projector: &str, position: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // Announcements arrive within milliseconds; the table is the fallback when one is lost, not
        // the normal path (polling it every few ms under load costs PostgreSQL more than the writes).
        let mut poll = Duration::from_millis(20);
        loop {
            if self.current(projector) >= position {
                return true;
            }
            let notified = self.notify.notified();
            if self.current(projector) >= position {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return self.read_table(projector).await.is_some_and(|p| p >= position);
            }
            let wait = poll.min(deadline - now);
            if tokio::time::timeout(wait, notified).await.is_err() {
                // No announcement in time: ask the table (announcements are best effort).
                if self.read_table(projector).await.is_some_and(|p| p >= position) {
                    return true;
                }
                poll = (poll * 2).min(Duration::from_millis(100));
            }
        }
    }
}
