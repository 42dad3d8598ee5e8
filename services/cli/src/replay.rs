//! Read models rebuilt from the log: `cairnctl rebuild indexer|correlator|all` (compared with the live
//! ones) and `cairnctl replay --until` (a read-only snapshot of the whole platform as of a position or
//! time).
//!
//! Both go through [`build`]: the log is read once (two readers on one snapshot, each a binary `COPY`)
//! and folded in memory ([`Fold`], the write side's `evolve` per Event); the changes the folded Events do not describe
//! (directory, tags, collaboration, sightings, exclusions) go through each projector's own incremental
//! code; the Event tables are then written with one `COPY` each into tables whose indexes were taken
//! off, and the indexes are built last. The indexer and the correlator are written side by side.

use crate::BoxError;
use crate::bench::{Scratch, bar};
use cairn_domain::Change;
use cairn_domain::event::fold::Fold;
use cairn_eventlog::bulk::{Indexes, Part, read_log};
use cairn_platform::{Settings, connect};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Which read model a [`Target`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Indexer,
    Correlator,
}

impl Target {
    /// The tables the bulk write fills, schema-qualified.
    fn bulk_tables(&self) -> Vec<String> {
        self.kind.bulk_tables().iter().map(|name| format!("{}.{name}", self.schema)).collect()
    }
}

impl Kind {
    fn projector(self) -> &'static str {
        match self {
            Kind::Indexer => cairn_indexer::NAME,
            Kind::Correlator => cairn_correlator::NAME,
        }
    }

    fn bulk_tables(self) -> &'static [&'static str] {
        match self {
            Kind::Indexer => cairn_indexer::bulk::TABLES,
            Kind::Correlator => cairn_correlator::bulk::TABLES,
        }
    }
}

/// Where one read model is rebuilt: its (empty, migrated) tables in `schema` of `client`'s database,
/// as of log position `until`.
pub(crate) struct Target {
    pub kind: Kind,
    /// Connections to the target's database (two are used: indexes are built side by side).
    pub pool: deadpool_postgres::Pool,
    pub schema: String,
    pub until: i64,
    /// Record the projector's checkpoint at `until` in the target database (a database of its own).
    pub checkpoint: bool,
    /// Write the tables unlogged (rebuilt tables that are compared, then dropped).
    pub unlogged: bool,
}

/// What [`build`] did.
pub(crate) struct Built {
    /// Changes read from the log (up to the largest target position).
    pub changes: u64,
    /// Rows written by `COPY`.
    pub rows: u64,
    pub secs: f64,
}

/// The changes a fold hands back, with their positions.
struct Others {
    positions: Vec<i64>,
    changes: Vec<(Uuid, Change)>,
}

impl Others {
    fn until(&self, position: i64) -> &[(Uuid, Change)] {
        &self.changes[..self.positions.partition_point(|p| *p <= position)]
    }
}

/// Readers of the log side by side, each folding a part of the Event streams.
const READERS: u32 = 2;

/// Rebuilds every target from the log as of `snapshot` (exported by a transaction on `source` that
/// stays open meanwhile, see [`export`]).
///
/// # Errors
/// Database errors, undecodable changes, rows the tables refuse.
pub(crate) async fn build(source: &deadpool_postgres::Pool, snapshot: &str, targets: Vec<Target>) -> Result<Built, BoxError> {
    let started = Instant::now();
    let mut pending: Vec<(Target, Indexes)> = Vec::new();
    for t in targets {
        let tables = t.bulk_tables();
        let client = t.pool.get().await?;
        let indexes = Indexes::take_off(&**client, &tables).await?;
        if t.unlogged {
            for table in &tables {
                client.batch_execute(&format!("ALTER TABLE {table} SET UNLOGGED")).await?;
            }
        }
        pending.push((t, indexes));
    }
    pending.sort_by_key(|(t, _)| t.until);
    let (mut changes, mut rows) = (0u64, 0u64);
    while !pending.is_empty() {
        // The targets due at one position share one read of the log (rarely, two projectors were
        // at different positions: each position is read from zero).
        let until = pending[0].0.until;
        let progress = bar(until.max(0) as u64, "reading the log");
        let mut readers = tokio::task::JoinSet::new();
        for index in 0..READERS {
            let (source, snapshot, progress) = (source.clone(), snapshot.to_string(), progress.clone());
            readers.spawn(async move { read_part(&source, &snapshot, until, Part { index, of: READERS }, &progress).await });
        }
        let (mut fold, mut others, mut read) = (Fold::default(), Vec::new(), 0);
        while let Some(part) = readers.join_next().await {
            let (f, o, counted) = part??;
            fold.merge(f);
            others.extend(o);
            read += counted;
        }
        changes = changes.max(read);
        others.sort_unstable_by_key(|(position, _, _)| *position);
        let (positions, changes) = others.into_iter().map(|(position, stream, change)| (position, (stream, change))).unzip();
        let others = Others { positions, changes };
        progress.finish_and_clear();
        println!("  log read and folded up to {until} in {:.1} s ({READERS} readers)", started.elapsed().as_secs_f64());
        // Every target due at this position is written side by side (a connection each).
        let (fold, others) = (Arc::new(fold), Arc::new(others));
        let due = pending.partition_point(|(t, _)| t.until == until);
        let mut writers = tokio::task::JoinSet::new();
        for (target, indexes) in pending.drain(..due) {
            let (fold, others) = (fold.clone(), others.clone());
            writers.spawn(async move { write(target, indexes, &fold, others.until(until)).await });
        }
        while let Some(written) = writers.join_next().await {
            rows += written??;
        }
        // Freeing millions of records takes a while: not on the way.
        tokio::task::spawn_blocking(move || drop((fold, others)));
    }
    Ok(Built { changes, rows, secs: started.elapsed().as_secs_f64() })
}

/// A handed-back change and its position.
type Other = (i64, Uuid, Change);

/// One reader: part `part` of the Event streams (and every other change) up to `until`, folded, in a
/// transaction on the exported snapshot. Returns the fold, the changes it handed back (those of other
/// streams only from part 0, so each is kept once), and the changes read for the whole log.
async fn read_part(
    source: &deadpool_postgres::Pool,
    snapshot: &str,
    until: i64,
    part: Part,
    progress: &indicatif::ProgressBar,
) -> Result<(Fold, Vec<Other>, u64), BoxError> {
    let mut client = source.get().await?;
    let tx = client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await?;
    // One long scan: compiling its expressions (JIT) costs more than it saves.
    tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'; SET LOCAL jit = off")).await?;
    let (mut fold, mut others, mut counted) = (Fold::default(), Vec::new(), 0u64);
    read_log(&tx, 0, until, part, |row| {
        let change = Change::from_json(row.change_type, row.schema_version, row.payload).map_err(|e| format!("position {}: {e}", row.position))?;
        let own = row.stream_type == cairn_domain::stream::EVENT || part.index == 0;
        if let Some(change) = fold.take(row.stream_type, row.stream_id, change)
            && own
        {
            others.push((row.position, row.stream_id, change));
        }
        counted += u64::from(own);
        if row.position % 4096 == 0 {
            progress.set_position(row.position as u64);
        }
        Ok(())
    })
    .await?;
    Ok((fold, others, counted))
}

/// Exports the snapshot of `tx` for the readers of [`build`].
///
/// # Errors
/// Database errors.
pub(crate) async fn export(tx: &tokio_postgres::Transaction<'_>) -> Result<String, BoxError> {
    Ok(tx.query_one("SELECT pg_export_snapshot()", &[]).await?.get(0))
}

/// Writes one target: the handed-back changes through the projector's incremental code, the Event
/// tables by `COPY`, then the indexes. Returns the rows copied.
async fn write(target: Target, indexes: Indexes, fold: &Fold, others: &[(Uuid, Change)]) -> Result<u64, BoxError> {
    let schema = target.schema.clone();
    let started = Instant::now();
    let (mut client, second) = (target.pool.get().await?, target.pool.get().await?);
    // Derived tables, rebuilt again if this crashes: no waiting for each load's WAL flush.
    for c in [&client, &second] {
        c.batch_execute("SET synchronous_commit = off").await?;
    }
    let tx = client.transaction().await?;
    match target.kind {
        Kind::Indexer => cairn_indexer::apply_changes(&tx, others).await?,
        Kind::Correlator => cairn_correlator::apply_decoded(&tx, &schema, others).await?,
    }
    // Emptied in the loading transaction, so the rows can be written frozen.
    tx.batch_execute(&format!("TRUNCATE {}", target.bulk_tables().join(", "))).await?;
    let rows = match target.kind {
        Kind::Indexer => cairn_indexer::bulk::write(&tx, &schema, fold).await?,
        Kind::Correlator => cairn_correlator::bulk::write(&tx, &schema, fold).await?,
    };
    tx.commit().await?;
    let copied = started.elapsed().as_secs_f64();
    indexes.restore(&[&client, &second]).await?;
    // Statistics are left to autovacuum's analyze (or to the caller).
    println!(
        "  {}: {} changes through its own code, {rows} rows copied in {copied:.1} s, indexes built in {:.1} s",
        target.kind.projector(),
        others.len(),
        started.elapsed().as_secs_f64() - copied
    );
    if target.checkpoint {
        client
            .execute(
                "INSERT INTO es.projector_checkpoints (projector, position) VALUES ($1, $2) \
                 ON CONFLICT (projector) DO UPDATE SET position = $2, updated_at = clock_timestamp()",
                &[&target.kind.projector(), &target.until],
            )
            .await?;
    }
    Ok(rows)
}

/// Copies the rows `select` returns (on the live snapshot `from`) into `table` of `to`.
async fn copy(from: &tokio_postgres::Transaction<'_>, to: &tokio_postgres::Client, select: &str, table: &str) -> Result<u64, BoxError> {
    let out = from.copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)")).await?;
    let sink = to.copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)")).await?;
    futures::pin_mut!(out);
    futures::pin_mut!(sink);
    while let Some(chunk) = out.next().await {
        sink.send(chunk?).await?;
    }
    Ok(sink.finish().await?)
}

/// Copies the log up to `until` from the snapshot `live` into the (migrated) scratch database.
async fn copy_log(live: &tokio_postgres::Transaction<'_>, scratch: &Scratch, until: i64) -> Result<(), BoxError> {
    let client = scratch.pool.get().await?;
    let commit = live.query_opt("SELECT commit_seq, chain_hash FROM es.commits WHERE last_position = $1", &[&until]).await?;
    let (commit_seq, chain): (i64, Vec<u8>) = match commit {
        Some(r) => (r.get(0), r.get(1)),
        None if until == 0 => (0, vec![0; 32]),
        None => return Err(format!("position {until} does not end a commit").into()),
    };
    let started = Instant::now();
    let changes = copy(live, &client, &format!("SELECT * FROM es.changes WHERE position <= {until} ORDER BY position"), "es.changes").await?;
    copy(live, &client, &format!("SELECT * FROM es.commits WHERE commit_seq <= {commit_seq} ORDER BY commit_seq"), "es.commits").await?;
    copy(live, &client, &format!("SELECT * FROM es.streams WHERE first_position <= {until}"), "es.streams").await?;
    client
        .execute("UPDATE es.log_head SET last_position = $1, last_commit = $2, chain_hash = $3 WHERE id = 1", &[&until, &commit_seq, &chain])
        .await?;
    println!("log copied: {changes} changes up to position {until} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A live snapshot of the database (repeatable read, read only).
pub(crate) async fn snapshot(client: &mut tokio_postgres::Client) -> Result<tokio_postgres::Transaction<'_>, BoxError> {
    Ok(client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await?)
}

/// A projector's checkpoint in a snapshot (0 before its first batch).
async fn checkpoint(tx: &tokio_postgres::Transaction<'_>, projector: &str) -> Result<i64, BoxError> {
    Ok(tx.query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1", &[&projector]).await?.map_or(0, |r| r.get(0)))
}

fn report(what: &str, built: &Built) {
    println!(
        "{what}: {} changes read, {} rows written and indexed in {:.1} s ({:.0} changes/s)",
        built.changes,
        built.rows,
        built.secs,
        built.changes as f64 / built.secs.max(1e-9)
    );
}

/// `cairnctl replay --until <position | RFC 3339 time>`: a read-only database holding the platform
/// (log, directory, Events, correlations) as of that point.
pub(crate) async fn replay_until(settings: &Settings, until: &str, database: Option<String>) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let mut live = pool.get().await?;
    let tx = snapshot(&mut live).await?;
    let position: i64 = match until.trim().parse::<i64>() {
        Ok(p) => p,
        Err(_) => {
            let t = chrono::DateTime::parse_from_rfc3339(until.trim()).map_err(|_| format!("--until takes a position or an RFC 3339 time, not {until:?}"))?;
            tx.query_one("SELECT coalesce(max(last_position), 0) FROM es.commits WHERE committed_at <= $1", &[&t.with_timezone(&chrono::Utc)])
                .await?
                .get(0)
        }
    };
    // Round down to the end of a commit: a commit is all or nothing.
    let position: i64 = tx.query_one("SELECT coalesce(max(last_position), 0) FROM es.commits WHERE last_position <= $1", &[&position]).await?.get(0);
    let name = database.unwrap_or_else(|| format!("cairn_asof_{position}"));
    let scratch = Scratch::create_named(settings, &name, 4).await?;
    copy_log(&tx, &scratch, position).await?;
    let snapshot = export(&tx).await?;
    let targets = vec![
        Target { kind: Kind::Indexer, pool: scratch.pool.clone(), schema: "rm".into(), until: position, checkpoint: true, unlogged: false },
        Target {
            kind: Kind::Correlator,
            pool: scratch.pool.clone(),
            schema: cairn_correlator::SCHEMA.into(),
            until: position,
            checkpoint: true,
            unlogged: false,
        },
    ];
    let built = build(&pool, &snapshot, targets).await?;
    report("replay", &built);
    let client = scratch.pool.get().await?;
    client.batch_execute(&format!("ANALYZE; ALTER DATABASE {name} SET default_transaction_read_only = on")).await?;
    println!("replay: database {name} holds the platform as of position {position} (read only)");
    println!("        query it with CAIRN_DATABASE_URL pointing at it; drop it with DROP DATABASE {name}");
    Ok(())
}

/// One table's row count and an order-independent digest of its rows.
async fn digest(client: &impl tokio_postgres::GenericClient, table: &str) -> Result<(i64, String), BoxError> {
    let row = client
        .query_one(&format!("SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) FROM {table} t"), &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Compares every `rm` table of the snapshot `live` with the rebuilt one in `rebuilt`; returns the
/// tables that differ.
async fn compare_indexer(live: &tokio_postgres::Transaction<'_>, rebuilt: &Scratch) -> Result<Vec<String>, BoxError> {
    let started = Instant::now();
    let position = checkpoint(live, cairn_indexer::NAME).await?;
    let tables: Vec<String> = live
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'rm' ORDER BY tablename", &[])
        .await?
        .iter()
        .map(|r| format!("rm.{}", r.get::<_, String>(0)))
        .collect();
    let client = rebuilt.pool.get().await?;
    let mut failures = Vec::new();
    for t in &tables {
        let (a, b) = (digest(live, t).await?, digest(&**client, t).await?);
        if a != b {
            failures.push(format!("{t}: live {} rows, rebuilt {} rows, contents differ", a.0, b.0));
        }
    }
    if failures.is_empty() {
        println!(
            "rebuild indexer: {} tables equal the live ones at position {position} (compared in {:.1} s)",
            tables.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(failures)
}

/// `cairnctl rebuild indexer|correlator|all` on the database of `settings`.
pub(crate) async fn rebuild(settings: &Settings, which: &str, keep: bool) -> Result<(), BoxError> {
    rebuild_on(settings, &connect::pg_pool(settings)?, which, keep).await.map(|_| ())
}

/// The read models of `live` rebuilt from zero in bulk, up to the live projectors' checkpoints (in
/// one snapshot), then compared with the live ones. The indexer is rebuilt in a scratch database on
/// the server of `settings` (unlogged tables, dropped unless `keep`) and compared table by table; the
/// correlator in a schema beside the live one, compared and switched in
/// ([`cairn_correlator::rebuild::switch`]). Fails when the rebuilt indexer differs from the live one,
/// naming the tables. Returns the build (the verification and the switch are timed and printed).
pub(crate) async fn rebuild_on(settings: &Settings, pool: &deadpool_postgres::Pool, which: &str, keep: bool) -> Result<Built, BoxError> {
    let (indexer, correlator) = match which {
        "indexer" => (true, false),
        "correlator" => (false, true),
        "all" => (true, true),
        other => return Err(format!("cannot rebuild {other:?}: `indexer`, `correlator` or `all`").into()),
    };
    let mut live = pool.get().await?;
    let tx = snapshot(&mut live).await?;
    let mut targets = Vec::new();
    let mut scratch = None;
    if indexer {
        let s = Scratch::create_named(settings, &format!("cairn_rebuild_{}", std::process::id()), 3).await?;
        let until = checkpoint(&tx, cairn_indexer::NAME).await?;
        targets.push(Target { kind: Kind::Indexer, pool: s.pool.clone(), schema: "rm".into(), until, checkpoint: true, unlogged: true });
        scratch = Some(s);
    }
    let mut correlator_at = None;
    if correlator {
        cairn_correlator::rebuild::prepare(&pool.get().await?, cairn_correlator::rebuild::TARGET).await?;
        let until = checkpoint(&tx, cairn_correlator::NAME).await?;
        targets.push(Target {
            kind: Kind::Correlator,
            pool: pool.clone(),
            schema: cairn_correlator::rebuild::TARGET.into(),
            until,
            checkpoint: false,
            unlogged: false,
        });
        correlator_at = Some(until);
    }
    let snapshot = export(&tx).await?;
    // The scratch database goes (unless kept) whether the build and comparison succeed or not.
    let outcome = async {
        let built = build(pool, &snapshot, targets).await?;
        report(&format!("rebuild {which}"), &built);
        let failures = match &scratch {
            Some(s) => compare_indexer(&tx, s).await?,
            None => Vec::new(),
        };
        Ok::<_, BoxError>((built, failures))
    }
    .await;
    if let Some(s) = scratch {
        if keep {
            println!("rebuild indexer: the rebuilt database {} is kept", s.name);
        } else {
            s.drop_db().await?;
        }
    }
    let (built, failures) = outcome?;
    drop(tx);
    if let Some(reached) = correlator_at {
        let started = Instant::now();
        let mut client = pool.get().await?;
        let (position, differences) = cairn_correlator::rebuild::switch(&mut client, reached).await?;
        let secs = started.elapsed().as_secs_f64();
        if differences.is_empty() {
            println!(
                "rebuild correlator: {} tables equal the live ones at position {position}; switched ({secs:.1} s with the comparison)",
                cairn_correlator::rebuild::TABLES.len()
            );
        } else {
            println!(
                "rebuild correlator: the live tables differed ({}); replaced by the rebuilt ones at position {position} ({secs:.1} s)",
                differences.join(", ")
            );
        }
    }
    if failures.is_empty() {
        Ok(built)
    } else {
        Err(format!("rebuild indexer: the rebuilt read models differ from the live ones:\n  {}", failures.join("\n  ")).into())
    }
}
