//! The group-commit appender: one task per process owns the write path to the log.
//!
//! Commands send a [`CommitRequest`] over a channel; the task drains whatever is queued (up to a bound),
//! locks the `es.log_head` row (serialising appends across processes), checks each request's expected
//! versions (later requests in the batch see the versions written by earlier ones), assigns gap-free positions,
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
use tokio_postgres::error::SqlState;
use uuid::Uuid;

const MAX_JOBS_PER_BATCH: usize = 512;
const MAX_CHANGES_PER_BATCH: usize = 50_000;
const UNIQUE_RACE_RETRIES: usize = 3;
/// Longest time a batch waits for more commands after the first one arrived.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

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
    // Size of the previous batch: a good guess of how many clients are waiting to send again.
    let mut last_batch = 1;
    while let Some(first) = rx.recv().await {
        let mut n_changes = count_changes(&first.request);
        let mut jobs = vec![first];
        // Clients answered by the previous commit are about to send their next command: give them a
        // moment (a few scheduler turns, bounded by LINGER) so they share this transaction.
        let linger_until = std::time::Instant::now() + LINGER;
        loop {
            while jobs.len() < MAX_JOBS_PER_BATCH && n_changes < MAX_CHANGES_PER_BATCH {
                match rx.try_recv() {
                    Ok(job) => {
                        n_changes += count_changes(&job.request);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            if jobs.len() >= last_batch || jobs.len() >= MAX_JOBS_PER_BATCH || std::time::Instant::now() >= linger_until {
                break;
            }
            tokio::task::yield_now().await;
        }
        last_batch = jobs.len().max(1);
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
    let client = pool.get().await?;
    match append_on(&client, requests).await {
        Ok(results) => Ok(results),
        Err(e) => {
            // The statements are pipelined with explicit BEGIN/COMMIT: after a failure the session's
            // state is unknown, so the connection is closed rather than returned to the pool.
            let _ = deadpool_postgres::Object::take(client);
            Err(e)
        }
    }
}

type Op<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;

/// One group commit in two round trips: (BEGIN, read command ids, lock streams, lock the head) then
/// (write streams, commits, changes, head, COMMIT). Statements are prepared once per connection.
async fn append_on(
    client: &deadpool_postgres::Object,
    requests: &[&CommitRequest],
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    let known_stmt = client
        .prepare_cached(
            "SELECT command_id, commit_seq, first_position, last_position FROM es.commits WHERE command_id = ANY($1)",
        )
        .await?;
    // Under the head lock (taken first in the same round trip) versions cannot change underneath us.
    let streams_stmt = client
        .prepare_cached(
            "SELECT s.stream_id, (SELECT max(c.stream_version) FROM es.changes c WHERE c.stream_id = s.stream_id), \
             s.stream_type FROM es.streams s WHERE s.stream_id = ANY($1)",
        )
        .await?;
    let head_stmt = client
        .prepare_cached("SELECT last_position, last_commit, chain_hash FROM es.log_head WHERE id = 1 FOR UPDATE")
        .await?;
    let insert_streams = client
        .prepare_cached(
            "INSERT INTO es.streams (stream_id, stream_type, first_position) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])",
        )
        .await?;
    let insert_commits = client
        .prepare_cached(
            "INSERT INTO es.commits (commit_seq, first_position, last_position, command_id, command_type, actor, \
             committed_at, batch_digest, chain_hash) \
             SELECT seq, first_position, last_position, command_id, command_type, actor, $7::timestamptz, batch_digest, chain_hash \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[], $8::bytea[], $9::bytea[]) \
             AS u(seq, first_position, last_position, command_id, command_type, actor, batch_digest, chain_hash)",
        )
        .await?;
    let insert_changes = client
        .prepare_cached(
            "INSERT INTO es.changes (position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, \
             schema_version, payload, metadata, recorded_at, content_hash) \
             SELECT position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, schema_version, \
             payload, metadata, $11::timestamptz, content_hash \
             FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::bigint[], $7::text[], \
             $8::smallint[], $9::jsonb[], $10::jsonb[], $12::bytea[]) \
             AS u(position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, schema_version, \
             payload, metadata, content_hash)",
        )
        .await?;
    let update_head = client
        .prepare_cached("UPDATE es.log_head SET last_position = $1, last_commit = $2, chain_hash = $3 WHERE id = 1")
        .await?;

    // Round trip 1: BEGIN, lock the head (serialising appends across processes), then read what is
    // already committed and the streams' current versions.
    let command_ids: Vec<Uuid> = requests.iter().map(|r| r.command_id).collect();
    let stream_ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.writes.iter().map(|w| w.stream_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&command_ids];
    let stream_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&stream_ids];
    let (_, head, known_rows, stream_rows) = futures::try_join!(
        client.batch_execute("BEGIN"),
        client.query_one(&head_stmt, &[]),
        client.query(&known_stmt, &known_params),
        client.query(&streams_stmt, &stream_params),
    )?;
    let mut known: HashMap<Uuid, CommitReceipt> = HashMap::new();
    for row in known_rows {
        known.insert(
            row.get(0),
            CommitReceipt { commit_seq: row.get(1), first_position: row.get(2), last_position: row.get(3), duplicate: true },
        );
    }
    let mut versions: HashMap<Uuid, (i64, String)> = HashMap::new();
    for row in stream_rows {
        versions.insert(row.get(0), (row.get::<_, Option<i64>>(1).unwrap_or(0), row.get(2)));
    }
    let existed: HashSet<Uuid> = versions.keys().copied().collect();
    let start_versions: HashMap<Uuid, i64> = versions.iter().map(|(id, v)| (*id, v.0)).collect();

    // Decide each request in order against the evolving versions.
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
        client.batch_execute("COMMIT").await?;
        return Ok(resolve(outcomes, &HashMap::new()));
    }

    // Build every row in memory: positions, versions, hashes, the chain.
    let mut position: i64 = head.get(0);
    let mut commit_seq: i64 = head.get(1);
    let mut chain: Vec<u8> = head.get(2);
    let now = hash::to_pg_precision(Utc::now());
    let mut scratch = Vec::new();
    let mut stream_versions: HashMap<Uuid, i64> = start_versions.clone();
    let mut created: Vec<(Uuid, i64)> = Vec::new();
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
        let metadata = std::sync::Arc::new(json!({
            "command_id": req.command_id,
            "command_type": req.command_type,
            "actor": req.actor,
        }));
        let first_hash_index = rows.content_hash.len();
        for w in &req.writes {
            for change in &w.changes {
                position += 1;
                let version = stream_versions.entry(w.stream_id).or_insert(0);
                *version += 1;
                if *version == 1 && !existed.contains(&w.stream_id) {
                    created.push((w.stream_id, position));
                }
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
        commit_rows.push(commit_seq, first, position, req, batch_digest.to_vec(), chain.clone());
        receipts.insert(i, CommitReceipt { commit_seq, first_position: first, last_position: position, duplicate: false });
    }

    let (mut new_ids, mut new_types, mut new_firsts) = (Vec::new(), Vec::new(), Vec::new());
    for (id, first) in &created {
        if let Some((_, stream_type)) = versions.get(id) {
            new_ids.push(*id);
            new_types.push(stream_type.clone());
            new_firsts.push(*first);
        }
    }
    let hashes: Vec<&[u8]> = rows.content_hash.iter().map(|h| h.as_slice()).collect();
    let metadata: Vec<&Value> = rows.metadata.iter().map(|m| m.as_ref()).collect();

    // Round trip 2: every write, the head last, then COMMIT. A failing statement aborts the
    // transaction and turns the pipelined COMMIT into a rollback.
    let mut ops: Vec<Op<'_>> = Vec::new();
    if !new_ids.is_empty() {
        ops.push(Box::pin(async { client.execute(&insert_streams, &[&new_ids, &new_types, &new_firsts]).await.map(|_| ()) }));
    }
    ops.push(Box::pin(async {
        client
            .execute(
                &insert_commits,
                &[
                    &commit_rows.commit_seq,
                    &commit_rows.first,
                    &commit_rows.last,
                    &commit_rows.command_id,
                    &commit_rows.command_type,
                    &commit_rows.actor,
                    &now,
                    &commit_rows.batch_digest,
                    &commit_rows.chain_hash,
                ],
            )
            .await
            .map(|_| ())
    }));
    ops.push(Box::pin(async {
        client
            .execute(
                &insert_changes,
                &[
                    &rows.position,
                    &rows.commit_seq,
                    &rows.change_id,
                    &rows.stream_id,
                    &rows.stream_type,
                    &rows.stream_version,
                    &rows.change_type,
                    &rows.schema_version,
                    &rows.payload,
                    &metadata,
                    &now,
                    &hashes,
                ],
            )
            .await
            .map(|_| ())
    }));
    ops.push(Box::pin(async { client.execute(&update_head, &[&position, &commit_seq, &chain]).await.map(|_| ()) }));
    ops.push(Box::pin(client.batch_execute("COMMIT")));
    futures::future::try_join_all(ops).await?;
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
struct ChangeRows<'a> {
    position: Vec<i64>,
    commit_seq: Vec<i64>,
    change_id: Vec<Uuid>,
    stream_id: Vec<Uuid>,
    stream_type: Vec<String>,
    stream_version: Vec<i64>,
    change_type: Vec<String>,
    schema_version: Vec<i16>,
    payload: Vec<&'a Value>,
    metadata: Vec<std::sync::Arc<Value>>,
    content_hash: Vec<[u8; 32]>,
}

impl<'a> ChangeRows<'a> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        position: i64,
        commit_seq: i64,
        change: &'a crate::model::NewChange,
        stream_id: Uuid,
        stream_type: &str,
        stream_version: i64,
        metadata: &std::sync::Arc<Value>,
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
        self.payload.push(&change.payload);
        self.metadata.push(std::sync::Arc::clone(metadata));
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
        batch_digest: Vec<u8>,
        chain_hash: Vec<u8>,
    ) {
        self.commit_seq.push(commit_seq);
        self.first.push(first);
        self.last.push(last);
        self.command_id.push(req.command_id);
        self.command_type.push(req.command_type.clone());
        self.actor.push(req.actor.clone());
        self.batch_digest.push(batch_digest);
        self.chain_hash.push(chain_hash);
    }
}

