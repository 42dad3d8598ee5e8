//! Rebuilding the correlation read model from zero, side by side: [`prepare`] a fresh schema, fill it
//! from the log (`cairnctl rebuild` does it in bulk, [`crate::bulk`]), then [`switch`]: in one
//! transaction holding the live projector's checkpoint lock, bring the rebuilt tables to the live
//! checkpoint, [`compare`] them with the live ones and put them in the live ones' place, so the live
//! projector resumes exactly where it was, on the rebuilt rows.

use crate::{BoxError, NAME, SCHEMA, apply_changes};
use cairn_eventlog::store;
use deadpool_postgres::GenericClient;

/// The schema a rebuild fills.
pub const TARGET: &str = "corr_rebuild";
/// The correlator's tables.
pub const TABLES: &[&str] = &["events", "objects", "holders", "exclusions"];

/// Creates the tables of `schema` afresh (dropping an earlier, unfinished rebuild's).
///
/// # Errors
/// Database errors.
pub async fn prepare(client: &impl GenericClient, schema: &str) -> Result<(), BoxError> {
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await?;
    client.execute("SELECT es.create_correlation_tables($1)", &[&schema]).await?;
    Ok(())
}

/// Replaces the live tables with the rebuilt ones in [`TARGET`] (filled up to `reached`). Returns the
/// live checkpoint the rebuilt tables were brought to, and how they differed from the live ones there
/// (empty: equal).
///
/// # Errors
/// Database errors and undecodable changes; a live correlator behind `reached`.
pub async fn switch(client: &mut deadpool_postgres::Object, reached: i64) -> Result<(i64, Vec<String>), BoxError> {
    let tx = client.transaction().await?;
    // Holding the checkpoint row stops the live correlator between two of its batches.
    let live: i64 = tx
        .query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1 FOR UPDATE", &[&NAME])
        .await?
        .map_or(0, |r| r.get(0));
    if live < reached {
        return Err(format!("the live correlator is at {live}, behind the rebuilt position {reached}: run it first").into());
    }
    let tail = store::read_range(&tx, reached, live).await?;
    apply_changes(&tx, TARGET, &tail).await.map_err(|e| format!("catching up: {e}"))?;
    let differences = compare(&tx, TARGET).await?;
    tx.batch_execute(&TABLES.iter().map(|t| format!("ANALYZE {TARGET}.{t};")).collect::<String>()).await?;
    // The rebuilt tables take the live ones' place (same names, indexes and constraints).
    for t in TABLES {
        tx.batch_execute(&format!("DROP TABLE {SCHEMA}.{t}; ALTER TABLE {TARGET}.{t} SET SCHEMA {SCHEMA}")).await?;
    }
    // The live correlator's checkpoint stays where it was: the swapped-in tables are at it.
    tx.commit().await?;
    client.batch_execute(&format!("DROP SCHEMA {TARGET} CASCADE")).await?;
    Ok((live, differences))
}

/// Rows that differ between the live schema and `other` (empty: equal), table by table.
///
/// # Errors
/// Database errors.
pub async fn compare(client: &impl GenericClient, other: &str) -> Result<Vec<String>, BoxError> {
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
            differences.push(format!("corr.{t}: {n} rows differ"));
        }
    }
    Ok(differences)
}
