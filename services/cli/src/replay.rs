//! The platform rebuilt from its log in a separate database: `cairnctl replay --until` (a read-only
//! snapshot of the whole platform as of a position or time) and `cairnctl rebuild indexer` (the
//! indexer's read models replayed from zero and compared with the live ones).
//!
//! Both copy the log up to a position into a fresh database (binary COPY of `es.changes`, `es.commits`,
//! `es.streams`, with the log head set to that position), then run the projectors there with the same
//! runtime and `apply` as in production, reading PostgreSQL only.

use crate::BoxError;
use crate::bench::{Scratch, bar};
use cairn_eventlog::projector::{Options, Outcome, Projector, Runtime};
use cairn_platform::{Settings, connect};
use futures::{SinkExt, StreamExt};
use std::time::Instant;

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

/// Runs `projector` on the scratch database until it has applied `until`; returns changes/s.
pub(crate) async fn replay<P: Projector + Clone + Send + Sync + 'static>(scratch: &Scratch, projector: P, until: i64) -> Result<f64, BoxError> {
    let name = projector.name().to_string();
    let options = Options { batch_size: 5_000, catchup_threshold: 0, ..Options::default() };
    let mut runtime = Runtime::new(projector, scratch.pool.clone(), None, options).await?;
    let progress = bar(until.max(0) as u64, &format!("replay {name} (changes)"));
    let started = Instant::now();
    while runtime.checkpoint() < until {
        match runtime.try_apply_next().await? {
            Outcome::Applied(_) => progress.set_position(runtime.checkpoint() as u64),
            Outcome::Idle => return Err(format!("{name} stopped at {} before {until}", runtime.checkpoint()).into()),
        }
    }
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rate = until as f64 / secs.max(1e-9);
    println!("{name}: {until} changes replayed in {secs:.1} s ({rate:.0} changes/s)");
    Ok(rate)
}

/// A live snapshot of the database (repeatable read, read only).
async fn snapshot(client: &mut tokio_postgres::Client) -> Result<tokio_postgres::Transaction<'_>, BoxError> {
    Ok(client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await?)
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
    drop(tx);
    replay(&scratch, cairn_indexer::Indexer, position).await?;
    replay(&scratch, cairn_correlator::Correlator::default(), position).await?;
    let client = scratch.pool.get().await?;
    client.batch_execute(&format!("ALTER DATABASE {name} SET default_transaction_read_only = on")).await?;
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

/// `cairnctl rebuild indexer`: replays the indexer from zero into a scratch database, up to the live
/// indexer's checkpoint, and compares every `rm` table with the live one (as of that checkpoint).
pub(crate) async fn rebuild_indexer(settings: &Settings, keep: bool) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let mut live = pool.get().await?;
    let tx = snapshot(&mut live).await?;
    let position: i64 = tx
        .query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1", &[&cairn_indexer::NAME])
        .await?
        .map_or(0, |r| r.get(0));
    let name = format!("cairn_rebuild_{}", std::process::id());
    let scratch = Scratch::create_named(settings, &name, 4).await?;
    copy_log(&tx, &scratch, position).await?;
    let rate = replay(&scratch, cairn_indexer::Indexer, position).await?;
    let tables: Vec<String> = tx
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'rm' ORDER BY tablename", &[])
        .await?
        .iter()
        .map(|r| format!("rm.{}", r.get::<_, String>(0)))
        .collect();
    let rebuilt = scratch.pool.get().await?;
    let mut differences = Vec::new();
    for t in &tables {
        let (a, b) = (digest(&tx, t).await?, digest(&**rebuilt, t).await?);
        if a != b {
            differences.push(format!("{t}: live {} rows, rebuilt {} rows, contents differ", a.0, b.0));
        }
    }
    drop(rebuilt);
    drop(tx);
    if keep {
        println!("rebuild indexer: the rebuilt database {name} is kept");
    } else {
        scratch.drop_db().await?;
    }
    if differences.is_empty() {
        println!("rebuild indexer: {} tables equal the live ones at position {position} ({rate:.0} changes/s)", tables.len());
        Ok(())
    } else {
        Err(format!("rebuild indexer: the rebuilt read models differ from the live ones:\n  {}", differences.join("\n  ")).into())
    }
}
