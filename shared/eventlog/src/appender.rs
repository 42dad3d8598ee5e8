//! The group-commit appender: one task per process owns the write path to the log.
//!
//! Commands send a [`CommitRequest`] over a channel; the task drains whatever is queued (up to a bound),
//! checks each request's expected versions against the locked stream rows (later requests in the batch
//! see the versions written by earlier ones), assigns gap-free positions under the `es.log_head` row lock,
//! extends the hash chain, writes everything with one `COPY` and commits once. Throughput is therefore
//! batch size × 1/commit latency instead of 1/commit latency (eventsourcing.md §7.2).
//!
//! A request that is refused (version conflict, wrong stream type) is answered on its own and does not
//! affect the others. If the batch transaction fails as a whole, every request is retried alone so that
//! one bad request cannot fail its neighbours.

use crate::hash::{self, ChangeFields, CommitFields};
use crate::model::{CommitReceipt, CommitRequest};
use crate::store::StoreError;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

const MAX_JOBS_PER_BATCH: usize = 512;
const MAX_CHANGES_PER_BATCH: usize = 50_000;
const UNIQUE_RACE_RETRIES: usize = 3;

/// Subject of the best-effort "something was appended" ping (core NATS; the relay also polls).
pub const APPENDED_SUBJECT: &str = "cairn.appended";

struct Job {
    request: CommitRequest,
    reply: oneshot::Sender<Result<CommitReceipt, StoreError>>,
}

/// Handle to the appender task; clone freely.
#[derive(Clone, Debug)]
pub struct Appender {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("command_id", &self.request.command_id).finish()
    }
}

impl Appender {
    /// Starts the appender task. `notify`, when given, receives a core-NATS ping after every commit.
    pub fn spawn(pool: deadpool_postgres::Pool, notify: Option<async_nats::Client>) -> Self {
        let (tx, rx) = mpsc::channel(4_096);
        tokio::spawn(run(pool, notify, rx));
        Self { tx }
    }

    /// Appends one command's changes as one commit.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] / [`StoreError::WrongStreamType`] when an expectation fails (nothing is
    /// written), [`StoreError::Empty`] for a request without changes, database errors otherwise.
    pub async fn commit(&self, request: CommitRequest) -> Result<CommitReceipt, StoreError> {
        if request.writes.is_empty() || request.writes.iter().any(|w| w.changes.is_empty()) {
            return Err(StoreError::Empty);
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { request, reply }).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(pool: deadpool_postgres::Pool, notify: Option<async_nats::Client>, mut rx: mpsc::Receiver<Job>) {
    let registry = cairn_platform::metrics::Registry::global();
    let commits = registry.counter("cairn_appender_commits_total", "Commits appended.", &[]);
    let changes = registry.counter("cairn_appender_changes_total", "Changes appended.", &[]);
    let batches = registry.counter("cairn_appender_batches_total", "Group-commit transactions.", &[]);
    while let Some(first) = rx.recv().await {
        let mut n_changes = count_changes(&first.request);
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_BATCH && n_changes < MAX_CHANGES_PER_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    n_changes += count_changes(&job.request);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let requests: Vec<&CommitRequest> = jobs.iter().map(|j| &j.request).collect();
        let results = match append_batch_retrying(&pool, &requests).await {
            Ok(results) => results,
            Err(e) if requests.len() > 1 => {
                tracing::warn!(error = %e, jobs = requests.len(), "group commit failed; retrying requests one by one");
                let mut results = Vec::with_capacity(requests.len());
                for r in &requests {
                    results.push(match append_batch_retrying(&pool, &[*r]).await {
                        Ok(mut one) => one.pop().unwrap_or(Err(StoreError::Closed)),
                        Err(e) => Err(e),
                    });
                }
                results
            }
            Err(e) => vec![Err(e)],
        };
        batches.inc();
        let mut head = None;
        for (job, result) in jobs.into_iter().zip(results) {
            if let Ok(r) = &result {
                if !r.duplicate {
                    commits.inc();
                    changes.add(r.last_position - r.first_position + 1);
                    head = head.max(Some(r.last_position));
                }
            }
            let _ = job.reply.send(result);
        }
        if let (Some(client), Some(head)) = (&notify, head) {
            let _ = client.publish(APPENDED_SUBJECT, head.to_string().into()).await;
        }
    }
}

fn count_changes(r: &CommitRequest) -> usize {
    r.writes.iter().map(|w| w.changes.len()).sum()
}

async fn append_batch_retrying(
    pool: &deadpool_postgres::Pool,
    requests: &[&CommitRequest],
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let mut attempt = 0;
    loop {
        match append_batch(pool, requests).await {
            // Another process created the same stream or command concurrently: the retry sees its row
            // and answers with a conflict or the first receipt.
            Err(StoreError::Db(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && attempt < UNIQUE_RACE_RETRIES => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

enum Outcome {
    Done(Result<CommitReceipt, StoreError>),
    /// Same command id as an earlier request of this batch: answered with that request's receipt.
    SameAs(usize),
    Accepted,
}

async fn append_batch(
    pool: &deadpool_postgres::Pool,
    requests: &[&CommitRequest],
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;

    // 1. Idempotency: command ids that already have a commit.
    let command_ids: Vec<Uuid> = requests.iter().map(|r| r.command_id).collect();
    let stmt = tx
        .prepare_cached(
            "SELECT command_id, commit_seq, first_position, last_position FROM es.commits WHERE command_id = ANY($1)",
        )
        .await?;
    let mut known: HashMap<Uuid, CommitReceipt> = HashMap::new();
    for row in tx.query(&stmt, &[&command_ids]).await? {
        known.insert(
            row.get(0),
            CommitReceipt { commit_seq: row.get(1), first_position: row.get(2), last_position: row.get(3), duplicate: true },
        );
    }

    // 2. Lock every touched stream row, in id order (the same order in every process: no deadlocks).
    let stream_ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.writes.iter().map(|w| w.stream_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stmt = tx
        .prepare_cached(
            "SELECT stream_id, version, stream_type FROM es.streams WHERE stream_id = ANY($1) ORDER BY stream_id FOR UPDATE",
        )
        .await?;
    let mut versions: HashMap<Uuid, (i64, String)> = HashMap::new();
    for row in tx.query(&stmt, &[&stream_ids]).await? {
        versions.insert(row.get(0), (row.get(1), row.get(2)));
    }
    let existed: HashSet<Uuid> = versions.keys().copied().collect();
    let start_versions: HashMap<Uuid, i64> = versions.iter().map(|(id, v)| (*id, v.0)).collect();

    // 3. Decide each request in order against the evolving versions.
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut first_in_batch: HashMap<Uuid, usize> = HashMap::new();
    for (i, req) in requests.iter().enumerate() {
        if let Some(receipt) = known.get(&req.command_id) {
            outcomes.push(Outcome::Done(Ok(receipt.clone())));
            continue;
        }
        if let Some(&j) = first_in_batch.get(&req.command_id) {
            outcomes.push(Outcome::SameAs(j));
            continue;
        }
        match check(req, &versions) {
            Err(e) => outcomes.push(Outcome::Done(Err(e))),
            Ok(()) => {
                for w in &req.writes {
                    let current = versions.get(&w.stream_id).map_or(0, |v| v.0);
                    versions.insert(w.stream_id, (current + w.changes.len() as i64, w.stream_type.clone()));
                }
                first_in_batch.insert(req.command_id, i);
                outcomes.push(Outcome::Accepted);
            }
        }
    }
    if !outcomes.iter().any(|o| matches!(o, Outcome::Accepted)) {
        tx.commit().await?;
        return Ok(resolve(outcomes, &HashMap::new()));
    }

    // 4. Take the log head: from here on positions are ours until COMMIT.
    let head = tx
        .query_one("SELECT last_position, last_commit, chain_hash FROM es.log_head WHERE id = 1 FOR UPDATE", &[])
        .await?;
    let mut position: i64 = head.get(0);
    let mut commit_seq: i64 = head.get(1);
    let mut chain: Vec<u8> = head.get(2);

    // 5. Build every row in memory: positions, versions, hashes, the chain.
    let now = hash::to_pg_precision(Utc::now());
    let mut scratch = Vec::new();
    let mut stream_versions: HashMap<Uuid, i64> = start_versions.clone();
    let mut rows = ChangeRows::default();
    let mut commit_rows = CommitRows::default();
    let mut receipts: HashMap<usize, CommitReceipt> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if !matches!(outcome, Outcome::Accepted) {
            continue;
        }
        let req = requests[i];
        commit_seq += 1;
        let first = position + 1;
        let metadata = json!({
            "command_id": req.command_id,
            "command_type": req.command_type,
            "actor": req.actor,
        });
        let first_hash_index = rows.content_hash.len();
        for w in &req.writes {
            for change in &w.changes {
                position += 1;
                let version = stream_versions.entry(w.stream_id).or_insert(0);
                *version += 1;
                let content_hash = hash::content_hash(
                    &ChangeFields {
                        stream_id: w.stream_id,
                        stream_type: &w.stream_type,
                        stream_version: *version,
                        change_id: change.change_id,
                        change_type: &change.change_type,
                        schema_version: change.schema_version,
                        recorded_at: &now,
                        payload: &change.payload,
                        metadata: &metadata,
                    },
                    &mut scratch,
                );
                rows.push(position, commit_seq, change, w.stream_id, &w.stream_type, *version, &metadata, content_hash);
            }
        }
        let batch_digest = hash::batch_digest(rows.content_hash[first_hash_index..].iter().map(|h| h.as_slice()));
        let new_chain = hash::chain_hash(
            &chain,
            &CommitFields {
                commit_seq,
                first_position: first,
                last_position: position,
                command_id: req.command_id,
                command_type: &req.command_type,
                actor: &req.actor,
                committed_at: &now,
                batch_digest: &batch_digest,
            },
            &mut scratch,
        );
        chain = new_chain.to_vec();
        commit_rows.push(commit_seq, first, position, req, now, batch_digest.to_vec(), chain.clone());
        receipts.insert(i, CommitReceipt { commit_seq, first_position: first, last_position: position, duplicate: false });
    }

    // 6. Write: stream versions, commits, changes (binary COPY), and the head last.
    let (mut new_ids, mut new_types, mut new_versions) = (Vec::new(), Vec::new(), Vec::new());
    let (mut upd_ids, mut upd_versions) = (Vec::new(), Vec::new());
    for (id, version) in &stream_versions {
        let Some((_, stream_type)) = versions.get(id) else { continue };
        if existed.contains(id) {
            if start_versions.get(id) != Some(version) {
                upd_ids.push(*id);
                upd_versions.push(*version);
            }
        } else if *version > 0 {
            new_ids.push(*id);
            new_types.push(stream_type.clone());
            new_versions.push(*version);
        }
    }
    if !new_ids.is_empty() {
        tx.execute(
            "INSERT INTO es.streams (stream_id, stream_type, version) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])",
            &[&new_ids, &new_types, &new_versions],
        )
        .await?;
    }
    if !upd_ids.is_empty() {
        tx.execute(
            "UPDATE es.streams s SET version = u.version \
             FROM unnest($1::uuid[], $2::bigint[]) AS u(stream_id, version) WHERE s.stream_id = u.stream_id",
            &[&upd_ids, &upd_versions],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO es.commits (commit_seq, first_position, last_position, command_id, command_type, actor, \
         committed_at, batch_digest, chain_hash) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[], \
         $7::timestamptz[], $8::bytea[], $9::bytea[])",
        &[
            &commit_rows.commit_seq,
            &commit_rows.first,
            &commit_rows.last,
            &commit_rows.command_id,
            &commit_rows.command_type,
            &commit_rows.actor,
            &commit_rows.committed_at,
            &commit_rows.batch_digest,
            &commit_rows.chain_hash,
        ],
    )
    .await?;
    copy_changes(&tx, &rows, now).await?;
    tx.execute(
        "UPDATE es.log_head SET last_position = $1, last_commit = $2, chain_hash = $3 WHERE id = 1",
        &[&position, &commit_seq, &chain],
    )
    .await?;
    tx.commit().await?;
    Ok(resolve(outcomes, &receipts))
}

fn check(req: &CommitRequest, versions: &HashMap<Uuid, (i64, String)>) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for w in &req.writes {
        if !seen.insert(w.stream_id) {
            return Err(StoreError::Empty);
        }
        let current = versions.get(&w.stream_id);
        if let Some((_, stream_type)) = current {
            if stream_type != &w.stream_type {
                return Err(StoreError::WrongStreamType {
                    stream_id: w.stream_id,
                    expected: w.stream_type.clone(),
                    actual: stream_type.clone(),
                });
            }
        }
        let actual = current.map(|v| v.0);
        if !w.expected.admits(actual) {
            return Err(StoreError::Conflict {
                stream_id: w.stream_id,
                expected: format!("{:?}", w.expected),
                actual: actual.map_or_else(|| "no stream".to_string(), |v| v.to_string()),
            });
        }
    }
    Ok(())
}

fn resolve(outcomes: Vec<Outcome>, receipts: &HashMap<usize, CommitReceipt>) -> Vec<Result<CommitReceipt, StoreError>> {
    let mut out: Vec<Result<CommitReceipt, StoreError>> = Vec::with_capacity(outcomes.len());
    for (i, o) in outcomes.into_iter().enumerate() {
        out.push(match o {
            Outcome::Done(r) => r,
            Outcome::Accepted => receipts.get(&i).cloned().ok_or(StoreError::Closed),
            Outcome::SameAs(j) => match receipts.get(&j) {
                Some(r) => Ok(CommitReceipt { duplicate: true, ..r.clone() }),
                None => Err(StoreError::Closed),
            },
        });
    }
    out
}

#[derive(Default)]
struct ChangeRows {
    position: Vec<i64>,
    commit_seq: Vec<i64>,
    change_id: Vec<Uuid>,
    stream_id: Vec<Uuid>,
    stream_type: Vec<String>,
    stream_version: Vec<i64>,
    change_type: Vec<String>,
    schema_version: Vec<i16>,
    payload: Vec<Value>,
    metadata: Vec<Value>,
    content_hash: Vec<[u8; 32]>,
}

impl ChangeRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        position: i64,
        commit_seq: i64,
        change: &crate::model::NewChange,
        stream_id: Uuid,
        stream_type: &str,
        stream_version: i64,
        metadata: &Value,
        content_hash: [u8; 32],
    ) {
        self.position.push(position);
        self.commit_seq.push(commit_seq);
        self.change_id.push(change.change_id);
        self.stream_id.push(stream_id);
        self.stream_type.push(stream_type.to_owned());
        self.stream_version.push(stream_version);
        self.change_type.push(change.change_type.clone());
        self.schema_version.push(change.schema_version);
        self.payload.push(change.payload.clone());
        self.metadata.push(metadata.clone());
        self.content_hash.push(content_hash);
    }
}

#[derive(Default)]
struct CommitRows {
    commit_seq: Vec<i64>,
    first: Vec<i64>,
    last: Vec<i64>,
    command_id: Vec<Uuid>,
    command_type: Vec<String>,
    actor: Vec<Value>,
    committed_at: Vec<chrono::DateTime<Utc>>,
    batch_digest: Vec<Vec<u8>>,
    chain_hash: Vec<Vec<u8>>,
}

impl CommitRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        commit_seq: i64,
        first: i64,
        last: i64,
        req: &CommitRequest,
        at: chrono::DateTime<Utc>,
        batch_digest: Vec<u8>,
        chain_hash: Vec<u8>,
    ) {
        self.commit_seq.push(commit_seq);
        self.first.push(first);
        self.last.push(last);
        self.command_id.push(req.command_id);
        self.command_type.push(req.command_type.clone());
        self.actor.push(req.actor.clone());
        self.committed_at.push(at);
        self.batch_digest.push(batch_digest);
        self.chain_hash.push(chain_hash);
    }
}

async fn copy_changes(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &ChangeRows,
    recorded_at: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    let sink = tx
        .copy_in(
            "COPY es.changes (position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, \
             schema_version, payload, metadata, recorded_at, content_hash) FROM STDIN BINARY",
        )
        .await?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::UUID,
        Type::UUID,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT2,
        Type::JSONB,
        Type::JSONB,
        Type::TIMESTAMPTZ,
        Type::BYTEA,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for i in 0..rows.position.len() {
        let hash: &[u8] = &rows.content_hash[i];
        let row: [&(dyn ToSql + Sync); 12] = [
            &rows.position[i],
            &rows.commit_seq[i],
            &rows.change_id[i],
            &rows.stream_id[i],
            &rows.stream_type[i],
            &rows.stream_version[i],
            &rows.change_type[i],
            &rows.schema_version[i],
            &rows.payload[i],
            &rows.metadata[i],
            &recorded_at,
            &hash,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}
