//! `cairnctl bench correlator`: the correlation read model at 1M attributes (engines.md §4.4, C4), in a
//! scratch database. Writes a log of Events through the appender, times a full rebuild, then the
//! correlator's work per single attribute change, beside raw `COPY` baselines.

use crate::BoxError;
use crate::bench::{Scratch, bar, percentile};
use crate::bench_data;
use crate::replay::{Kind, Target};
use cairn_domain::Change;
use cairn_domain::event::{Attribute, EventMeta, Object};
use cairn_eventlog::projector::{Options, Outcome, Runtime};
use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, StreamWrite};
use cairn_platform::Settings;
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use uuid::Uuid;

/// Data-set seed.
const SEED: u64 = 0xc0_22e1;
/// Timestamps of the generated data.
const T0: i64 = 1_700_000_000;

#[derive(Args)]
pub(crate) struct CorrelatorArgs {
    /// Events in the log.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// Attributes in the log (spread evenly over the Events).
    #[arg(long, default_value_t = 1_000_000)]
    attributes: u64,
    /// Single attribute changes timed, per kind (add, edit, delete).
    #[arg(long, default_value_t = 1_000)]
    changes: usize,
    /// Concurrent appending clients while writing the log.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Keep the scratch database.
    #[arg(long)]
    keep: bool,
    /// Reuse a scratch database kept by an earlier run (`--keep`) instead of writing the log again.
    #[arg(long)]
    reuse: Option<String>,
}

/// The Event number `k` (0-based; id `k + 1`).
fn event_meta(k: u64, uuid: Uuid) -> EventMeta {
    EventMeta {
        id: k as i64 + 1,
        uuid,
        info: format!("bench correlator: report {k}"),
        date: "2026-01-01".into(),
        threat_level_id: 1 + (k % 4) as u8,
        analysis: (k % 3) as u8,
        distribution: (k % 4) as u8,
        sharing_group_id: 0,
        org_id: 1 + (k % 5) as i64,
        orgc_id: 1 + (k % 5) as i64,
        user_id: 1,
        published: k % 2 == 0,
        publish_timestamp: if k % 2 == 0 { T0 } else { 0 },
        timestamp: T0,
        sighting_timestamp: 0,
        proposal_email_lock: false,
        locked: false,
        disable_correlation: k % 500 == 499,
        extends_uuid: String::new(),
    }
}

fn attribute(id: i64, event_id: i64, object: Option<(i64, &str)>, v: &bench_data::Value, timestamp: i64) -> Attribute {
    let (value1, value2) = v.halves();
    Attribute {
        id,
        uuid: Uuid::new_v4(),
        event_id,
        object_id: object.map_or(0, |o| o.0),
        object_relation: object.map(|o| o.1.to_string()),
        category: v.category().into(),
        attr_type: v.attr_type.into(),
        value1,
        value2,
        to_ids: v.to_ids,
        comment: String::new(),
        distribution: 5,
        sharing_group_id: 0,
        timestamp,
        deleted: false,
        disable_correlation: false,
        first_seen: None,
        last_seen: None,
        tags: Vec::new(),
    }
}

/// The changes creating Event `k` with attributes `first..first + n` (ids `first + 1…`); every tenth
/// Event carries its last three attributes in a `file` Object.
fn event_changes(k: u64, uuid: Uuid, first: u64, n: u64) -> Vec<Change> {
    let event_id = k as i64 + 1;
    let mut changes = vec![Change::EventCreated(event_meta(k, uuid))];
    let object_id = (k / 10) as i64 + 1;
    let in_object = if k % 10 == 0 && n >= 3 { 3 } else { 0 };
    if in_object > 0 {
        changes.push(Change::ObjectAdded(Object {
            id: object_id,
            uuid: Uuid::new_v4(),
            event_id,
            name: "file".into(),
            meta_category: "file".into(),
            description: String::new(),
            template_uuid: None,
            template_version: "24".into(),
            timestamp: T0,
            distribution: 5,
            sharing_group_id: 0,
            comment: String::new(),
            deleted: false,
            first_seen: None,
            last_seen: None,
        }));
    }
    for (i, v) in bench_data::event_values(SEED, first, n).iter().enumerate() {
        let object = (i as u64 >= n - in_object).then_some((object_id, "filename"));
        changes.push(Change::AttributeAdded(attribute((first + i as u64) as i64 + 1, event_id, object, v, T0)));
    }
    changes
}

fn commit(stream: Uuid, expected: ExpectedVersion, command: &str, changes: &[Change]) -> CommitRequest {
    CommitRequest {
        command_id: Uuid::new_v4(),
        command_type: command.into(),
        actor: json!({"bench": true}),
        writes: vec![StreamWrite { stream_id: stream, stream_type: cairn_domain::stream::EVENT.into(), expected, changes: cairn_api::commands::to_new_changes(changes) }],
    }
}

pub(crate) async fn correlator(settings: &Settings, args: CorrelatorArgs) -> Result<(), BoxError> {
    let scratch = match &args.reuse {
        Some(name) => Scratch::open(settings, name, args.clients + 6).await?,
        None => Scratch::create(settings, args.clients + 6).await?,
    };
    println!("scratch database {}", scratch.name);
    let result = run(settings, &scratch, &args).await;
    if args.keep || args.reuse.is_some() {
        println!("kept scratch database {}", scratch.name);
    } else {
        scratch.drop_db().await?;
    }
    result
}

async fn run(settings: &Settings, scratch: &Scratch, args: &CorrelatorArgs) -> Result<(), BoxError> {
    let appender = Appender::spawn(scratch.pool.clone(), None);
    let client = scratch.pool.get().await?;
    if args.reuse.is_some() {
        return measure(settings, scratch, &client, &appender, args).await;
    }
    let events = args.events.max(1);
    let per_event = (args.attributes / events).max(1);
    let uuids: Arc<Vec<Uuid>> = Arc::new((0..events).map(|_| Uuid::new_v4()).collect());

    // 1. The log: one commit per Event (EventCreated, maybe an Object, its attributes).
    let progress = bar(events * per_event, "writing the log");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.clients.max(1) {
        let (appender, next, progress, uuids) = (appender.clone(), next.clone(), progress.clone(), uuids.clone());
        tasks.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= events {
                    return Ok::<_, BoxError>(());
                }
                let changes = event_changes(k, uuids[k as usize], k * per_event, per_event);
                appender.commit(commit(uuids[k as usize], ExpectedVersion::NoStream, "events.add", &changes)).await?;
                progress.inc(per_event);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    progress.finish_and_clear();
    println!("log written in {:.1} s ({} clients)", started.elapsed().as_secs_f64(), args.clients);
    client.batch_execute("VACUUM ANALYZE es.changes").await?;
    measure(settings, scratch, &client, &appender, args).await
}

/// Rebuild, incremental changes and baselines over the log of the scratch database.
async fn measure(
    settings: &Settings,
    scratch: &Scratch,
    client: &deadpool_postgres::Object,
    appender: &Appender,
    args: &CorrelatorArgs,
) -> Result<(), BoxError> {
    let head: i64 = client.query_one("SELECT last_position FROM es.log_head", &[]).await?.get(0);
    // Event k has id k + 1 (the generator's numbering); attribute ids continue after the largest.
    let mut uuids: Vec<Uuid> = Vec::new();
    for r in client
        .query("SELECT (payload->>'id')::bigint, stream_id FROM es.changes WHERE change_type = 'event.created' ORDER BY 1", &[])
        .await?
    {
        uuids.push(r.get(1));
    }
    let events = uuids.len() as u64;
    let attributes: i64 = client
        .query_one("SELECT count(*) FROM es.changes WHERE change_type = 'attribute.added'", &[])
        .await?
        .get(0);
    let max_id: i64 = client
        .query_one("SELECT coalesce(max((payload->>'id')::bigint), 0) FROM es.changes WHERE change_type = 'attribute.added'", &[])
        .await?
        .get(0);
    println!("log: {events} Events, {attributes} attributes, {head} changes");

    // 2. Every read model built from zero in bulk into this database's own (emptied) tables, as
    //    `cairnctl replay` does: the log read and folded, the indexer's and the correlator's tables
    //    written by COPY with their indexes built last.
    client
        .batch_execute(
            "DO $$ DECLARE t record; BEGIN FOR t IN SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('rm', 'corr') \
             AND tablename NOT IN ('instance') LOOP EXECUTE format('TRUNCATE %I.%I', t.schemaname, t.tablename); END LOOP; END $$; \
             DELETE FROM es.projector_checkpoints",
        )
        .await?;
    // A quiet server: the log just written is flushed before the clock starts.
    client.batch_execute("CHECKPOINT").await?;
    let mut source_client = scratch.pool.get().await?;
    let source = crate::replay::snapshot(&mut source_client).await?;
    let target = |kind: Kind, schema: &str| Target { kind, pool: scratch.pool.clone(), schema: schema.into(), until: head, checkpoint: true, unlogged: false };
    let targets = vec![target(Kind::Indexer, "rm"), target(Kind::Correlator, cairn_correlator::SCHEMA)];
    let snapshot = crate::replay::export(&source).await?;
    let replayed = crate::replay::build(&scratch.pool, &snapshot, targets).await?;
    drop(source);
    drop(source_client);
    client.batch_execute("CHECKPOINT").await?;
    // 2b. `cairnctl rebuild all` over those read models: the indexer into a scratch database of its
    //     own, the correlator beside the live tables; compared with them; the correlator switched.
    let started = Instant::now();
    let built = crate::replay::rebuild_on(settings, &scratch.pool, "all", false).await?;
    let rebuild_all_secs = started.elapsed().as_secs_f64();
    let rebuild_secs = built.secs;
    let attribute_rows: i64 = client.query_one("SELECT count(*) FROM rm.attributes", &[]).await?.get(0);
    let holders: i64 = client.query_one("SELECT count(*) FROM corr.holders", &[]).await?.get(0);
    let bytes: i64 = client.query_one("SELECT pg_total_relation_size('corr.holders')", &[]).await?.get(0);
    let over: Vec<(String, i64)> = client
        .query("SELECT key, count(*) FROM corr.holders GROUP BY key HAVING count(*) > 20 ORDER BY 2 DESC", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    println!(
        "rebuild: {} changes read, {} rows written ({attribute_rows} attributes, {holders} holder rows of {:.0} bytes each with indexes) \
         in {rebuild_secs:.1} s; {} over-correlating keys (most: {} holders)",
        built.changes,
        built.rows,
        bytes as f64 / holders.max(1) as f64,
        over.len(),
        over.first().map_or(0, |o| o.1)
    );

    // 3. Incremental: single attribute changes, each its own commit (the change and the Event's
    //    touch, as `attributes/add|edit|delete` write them), then one step of the live projector
    //    runtime (read the log, apply, move the checkpoint, commit).
    client.batch_execute("CHECKPOINT").await?;
    let mut runtime = Runtime::new(cairn_correlator::Correlator::default(), scratch.pool.clone(), None, Options::default()).await?;
    while runtime.try_apply_next().await? != Outcome::Idle {}
    let mut rng = bench_data::Rng::new(0xadd);
    let mut next_id = max_id + 1;
    let mut added: Vec<Attribute> = Vec::with_capacity(args.changes);
    let mut times: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![("add", vec![], vec![]), ("edit value", vec![], vec![]), ("soft delete", vec![], vec![])];
    let progress = bar(3 * args.changes as u64, "incremental changes");
    for (kind, (_, apply, total)) in times.iter_mut().enumerate() {
        for i in 0..args.changes {
            let now = T0 + 1_000 + i as i64;
            let (stream, change) = match kind {
                0 => {
                    let k = rng.below(events);
                    let v = match rng.below(100) {
                        0..=4 => {
                            let (t, v) = bench_data::OVER_CORRELATING[rng.below(bench_data::OVER_CORRELATING.len() as u64) as usize];
                            bench_data::Value { attr_type: t, value: v.to_string(), to_ids: false }
                        }
                        5..=29 => bench_data::shared(SEED, rng.below(bench_data::SHARED_POOL)),
                        _ => bench_data::value(SEED ^ 0xffff, i as u64),
                    };
                    let a = attribute(next_id, k as i64 + 1, None, &v, now);
                    next_id += 1;
                    added.push(a.clone());
                    (uuids[k as usize], Change::AttributeAdded(a))
                }
                1 => {
                    let mut a = added[i % added.len()].clone();
                    let v = bench_data::value(SEED ^ 0xeeee, i as u64);
                    (a.attr_type, a.value1, a.value2) = (v.attr_type.into(), v.halves().0, v.halves().1);
                    a.timestamp = now;
                    (uuids[(a.event_id - 1) as usize], Change::AttributeUpdated(a))
                }
                _ => {
                    let a = &added[i % added.len()];
                    (uuids[(a.event_id - 1) as usize], Change::AttributeDeleted { id: a.id, hard: false, timestamp: now })
                }
            };
            let changes = [change, Change::EventTouched { timestamp: now }];
            let t0 = Instant::now();
            appender.commit(commit(stream, ExpectedVersion::Exists, "attributes.change", &changes)).await?;
            let t1 = Instant::now();
            let outcome = runtime.try_apply_next().await?;
            let t2 = Instant::now();
            if outcome != Outcome::Applied(2) {
                return Err(format!("the correlator step did {outcome:?}, expected 2 changes").into());
            }
            apply.push((t2 - t1).as_secs_f64() * 1000.0);
            total.push((t2 - t0).as_secs_f64() * 1000.0);
            progress.inc(1);
        }
        apply.sort_by(f64::total_cmp);
        total.sort_by(f64::total_cmp);
    }
    progress.finish_and_clear();

    // 4. Baselines: the log read back by COPY, and the holder rows written by binary COPY into a
    //    table with the same indexes.
    let progress = bar(head as u64, "baseline: COPY log out");
    let started = Instant::now();
    let stream = client.copy_out("COPY (SELECT position, stream_id, change_type, payload FROM es.changes ORDER BY position) TO STDOUT (FORMAT binary)").await?;
    futures::pin_mut!(stream);
    let mut log_bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        log_bytes += chunk?.len() as u64;
    }
    let log_secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    client.batch_execute("DROP TABLE IF EXISTS public.bench_holders; CREATE TABLE public.bench_holders (LIKE corr.holders INCLUDING ALL)").await?;
    let writer = scratch.pool.get().await?;
    let progress = bar(holders as u64, "baseline: COPY holders");
    let started = Instant::now();
    let source = client.copy_out("COPY corr.holders TO STDOUT (FORMAT binary)").await?;
    let sink = writer.copy_in("COPY public.bench_holders FROM STDIN (FORMAT binary)").await?;
    futures::pin_mut!(source);
    futures::pin_mut!(sink);
    while let Some(chunk) = source.next().await {
        sink.send(chunk?).await?;
    }
    let copied = sink.as_mut().finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    println!();
    println!("| full rebuild of all read models ({events} Events, {attributes} attributes, {head} changes) | seconds | changes/s | rows/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| into empty tables, as `cairnctl replay` (log read and folded, {} rows copied, indexes built) | {:.1} | {:.0} | {:.0} |",
        replayed.rows,
        replayed.secs,
        head as f64 / replayed.secs,
        replayed.rows as f64 / replayed.secs
    );
    println!(
        "| `cairnctl rebuild all`: rebuilt beside the live tables ({} rows copied, indexes built) | {rebuild_secs:.1} | {:.0} | {:.0} |",
        built.rows,
        head as f64 / rebuild_secs,
        built.rows as f64 / rebuild_secs
    );
    println!("| `cairnctl rebuild all` with both comparisons and the correlator's switch | {rebuild_all_secs:.1} | {:.0} | |", head as f64 / rebuild_all_secs);
    println!("| baseline: `COPY` of the log out ({:.0} MB) | {log_secs:.1} | {:.0} | |", log_bytes as f64 / 1e6, head as f64 / log_secs);
    println!("| baseline: binary `COPY` of the {copied} holder rows into a table with the same indexes | {copy_secs:.1} | | {:.0} |", copied as f64 / copy_secs);
    println!();
    println!("| single attribute change ({} each, at {attributes} attributes) | correlator step p50 ms | p95 | p99 | max | append + step p99 ms |", args.changes);
    println!("|---|---:|---:|---:|---:|---:|");
    let mut all = Vec::new();
    for (kind, apply, total) in &times {
        all.extend_from_slice(apply);
        println!(
            "| {kind} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(apply, 0.50),
            percentile(apply, 0.95),
            percentile(apply, 0.99),
            apply.last().copied().unwrap_or_default(),
            percentile(total, 0.99)
        );
    }
    all.sort_by(f64::total_cmp);
    println!("| all | {:.2} | {:.2} | {:.2} | {:.2} | |", percentile(&all, 0.50), percentile(&all, 0.95), percentile(&all, 0.99), all.last().copied().unwrap_or_default());
    Ok(())
}
