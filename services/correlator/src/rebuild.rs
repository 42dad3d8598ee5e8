//! Rebuilding the correlation read model from zero: replay the log into a fresh schema in large
//! batches (multi-row inserts, asynchronous commit: a crashed rebuild simply restarts), then switch in
//! one transaction that holds the live projector's checkpoint lock, so the live projector resumes
//! exactly where the rebuilt tables are.

use crate::{BoxError, NAME, SCHEMA, apply_changes};
use cairn_eventlog::store;

const BATCH: i64 = 20_000;
const TABLES: &[&str] = &["events", "objects", "holders", "exclusions"];

/// Replays positions `(after, until]` into schema `s`, reporting `(position, head)` after each batch.
async fn replay(
    client: &mut deadpool_postgres::Object,
    s: &str,
    mut after: i64,
    until: i64,
    progress: &mut impl FnMut(i64, i64),
) -> Result<i64, BoxError> {
    while after < until {
        let changes = store::read_range(&*client, after, (after + BATCH).min(until)).await?;
        let Some(last) = changes.last().map(|c| c.position) else { break };
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
        apply_changes(&tx, s, &changes).await.map_err(|e| format!("position {last}: {e}"))?;
        tx.commit().await?;
        after = last;
        progress(after, until);
    }
    Ok(after)
}

/// Rebuilds into `corr_rebuild` from the whole log; with `switch`, replaces the live tables' contents
/// in one transaction and moves the correlator's checkpoint to the rebuilt position. Returns the
/// position the rebuild reached.
///
/// # Errors
/// Database errors and undecodable changes.
pub async fn rebuild(pool: &deadpool_postgres::Pool, switch: bool, mut progress: impl FnMut(i64, i64)) -> Result<i64, BoxError> {
    let target = "corr_rebuild";
    let mut client = pool.get().await?;
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {target} CASCADE")).await?;
    client.execute("SELECT es.create_correlation_tables($1)", &[&target]).await?;
    let head = store::head(&client).await?.position;
    let mut reached = replay(&mut client, target, 0, head, &mut progress).await?;
    if switch {
        let tx = client.transaction().await?;
        // Holding the checkpoint row stops the live correlator between two of its batches.
        tx.query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1 FOR UPDATE", &[&NAME]).await?;
        let head = store::head(&tx).await?.position;
        let tail = store::read_range(&tx, reached, head).await?;
        apply_changes(&tx, target, &tail).await.map_err(|e| format!("catching up: {e}"))?;
        reached = head;
        for t in TABLES {
            tx.batch_execute(&format!("TRUNCATE {SCHEMA}.{t}; INSERT INTO {SCHEMA}.{t} SELECT * FROM {target}.{t}")).await?;
        }
        tx.execute(
            "INSERT INTO es.projector_checkpoints (projector, position) VALUES ($1, $2) \
             ON CONFLICT (projector) DO UPDATE SET position = $2, updated_at = clock_timestamp()",
            &[&NAME, &reached],
        )
        .await?;
        tx.commit().await?;
        client.batch_execute(&format!("DROP SCHEMA {target} CASCADE")).await?;
    }
    Ok(reached)
}

/// Rows that differ between the live schema and `other` (empty: equal), table by table.
///
/// # Errors
/// Database errors.
pub async fn compare(pool: &deadpool_postgres::Pool, other: &str) -> Result<Vec<String>, BoxError> {
    let client = pool.get().await?;
    let mut differences = Vec::new();
    for t in TABLES {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT * FROM {SCHEMA}.{t} EXCEPT ALL SELECT * FROM {other}.{t}) a) \
                     + (SELECT count(*) FROM (SELECT * FROM {other}.{t} EXCEPT ALL SELECT * FROM {SCHEMA}.{t}) b)"
                ),
                &[],
            )
            .await?
            .get(0);
        if n > 0 {
            differences.push(format!("{t}: {n} rows differ"));
        }
    }
    Ok(differences)
}
