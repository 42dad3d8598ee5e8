//! Reading the log: the head, one stream, the whole log by position, commits.

use crate::model::{Head, StoredChange, StoredCommit};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict on stream {stream_id}: expected {expected}, found {actual}")]
    Conflict { stream_id: Uuid, expected: String, actual: String },
    #[error("stream {stream_id} is a {actual}, not a {expected}")]
    WrongStreamType { stream_id: Uuid, expected: String, actual: String },
    #[error("a commit must write at least one change")]
    Empty,
    #[error("the appender is not running")]
    Closed,
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl StoreError {
    /// True for failures a caller may retry as they are (the database was unreachable, the appender restarted).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Pool(_) | Self::Closed)
    }
}

/// The columns [`change_from_row`] reads, in order.
pub const CHANGE_COLUMNS: &str = "position, commit_seq, change_id, stream_id, stream_type, stream_version, \
     change_type, schema_version, payload, metadata, recorded_at, content_hash";

pub fn change_from_row(row: &Row) -> StoredChange {
    StoredChange {
        position: row.get(0),
        commit_seq: row.get(1),
        change_id: row.get(2),
        stream_id: row.get(3),
        stream_type: row.get(4),
        stream_version: row.get(5),
        change_type: row.get(6),
        schema_version: row.get(7),
        payload: row.get(8),
        metadata: row.get(9),
        recorded_at: row.get(10),
        content_hash: row.get(11),
    }
}

fn commit_from_row(row: &Row) -> StoredCommit {
    StoredCommit {
        commit_seq: row.get(0),
        first_position: row.get(1),
        last_position: row.get(2),
        command_id: row.get(3),
        command_type: row.get(4),
        actor: row.get(5),
        committed_at: row.get(6),
        batch_digest: row.get(7),
        chain_hash: row.get(8),
    }
}

const COMMIT_COLUMNS: &str =
    "commit_seq, first_position, last_position, command_id, command_type, actor, committed_at, batch_digest, chain_hash";

/// # Errors
/// Database errors.
pub async fn head(client: &impl GenericClient) -> Result<Head, StoreError> {
    let stmt = client.prepare_cached("SELECT last_position, last_commit, chain_hash FROM es.log_head WHERE id = 1").await?;
    let row = client.query_one(&stmt, &[]).await?;
    Ok(Head { position: row.get(0), commit_seq: row.get(1), chain_hash: row.get(2) })
}

/// Changes with `position > after`, in position order, at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn read_log(client: &impl GenericClient, after: i64, limit: i64) -> Result<Vec<StoredChange>, StoreError> {
    let sql = format!("SELECT {CHANGE_COLUMNS} FROM es.changes WHERE position > $1 ORDER BY position LIMIT $2");
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&after, &limit]).await?.iter().map(change_from_row).collect())
}

/// Changes with `after < position <= until`, in position order.
///
/// # Errors
/// Database errors.
pub async fn read_range(client: &impl GenericClient, after: i64, until: i64) -> Result<Vec<StoredChange>, StoreError> {
    let sql = format!(
        "SELECT {CHANGE_COLUMNS} FROM es.changes WHERE position > $1 AND position <= $2 ORDER BY position"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&after, &until]).await?.iter().map(change_from_row).collect())
}

/// The changes of one stream with `stream_version > after_version`, in order.
///
/// # Errors
/// Database errors.
pub async fn read_stream(
    client: &impl GenericClient,
    stream_id: Uuid,
    after_version: i64,
) -> Result<Vec<StoredChange>, StoreError> {
    let sql = format!(
        "SELECT {CHANGE_COLUMNS} FROM es.changes WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&stream_id, &after_version]).await?.iter().map(change_from_row).collect())
}

/// The changes of one stream up to and including `position`.
///
/// # Errors
/// Database errors.
pub async fn read_stream_until(
    client: &impl GenericClient,
    stream_id: Uuid,
    until_position: i64,
) -> Result<Vec<StoredChange>, StoreError> {
    let sql = format!(
        "SELECT {CHANGE_COLUMNS} FROM es.changes WHERE stream_id = $1 AND position <= $2 ORDER BY stream_version"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&stream_id, &until_position]).await?.iter().map(change_from_row).collect())
}

/// The changes of several streams up to `until_position`, in log order, without their metadata (`{}`):
/// what a projection replays (projectors never read metadata), at about half the decoding cost.
///
/// # Errors
/// Database errors.
pub async fn read_streams_for_replay(client: &impl GenericClient, stream_ids: &[Uuid], until_position: i64) -> Result<Vec<StoredChange>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, schema_version, payload, \
             '{}'::jsonb, recorded_at, content_hash FROM es.changes WHERE stream_id = ANY($1) AND position <= $2 ORDER BY position",
        )
        .await?;
    Ok(client.query(&stmt, &[&stream_ids, &until_position]).await?.iter().map(change_from_row).collect())
}

/// A stream's current version and type, if it exists.
///
/// # Errors
/// Database errors.
pub async fn stream_version(client: &impl GenericClient, stream_id: Uuid) -> Result<Option<(i64, String)>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT (SELECT max(c.stream_version) FROM es.changes c WHERE c.stream_id = s.stream_id), s.stream_type \
             FROM es.streams s WHERE s.stream_id = $1",
        )
        .await?;
    Ok(client.query_opt(&stmt, &[&stream_id]).await?.map(|r| (r.get::<_, Option<i64>>(0).unwrap_or(0), r.get(1))))
}

/// Commits with `commit_seq > after`, in order, at most `limit`.
///
/// # Errors
/// Database errors.
pub async fn read_commits(client: &impl GenericClient, after: i64, limit: i64) -> Result<Vec<StoredCommit>, StoreError> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM es.commits WHERE commit_seq > $1 ORDER BY commit_seq LIMIT $2");
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &[&after, &limit]).await?.iter().map(commit_from_row).collect())
}

/// The commit that recorded a command id, if any.
///
/// # Errors
/// Database errors.
pub async fn commit_by_command(client: &impl GenericClient, command_id: Uuid) -> Result<Option<StoredCommit>, StoreError> {
    let sql = format!("SELECT {COMMIT_COLUMNS} FROM es.commits WHERE command_id = $1");
    Ok(client.query_opt(&sql, &[&command_id]).await?.as_ref().map(commit_from_row))
}
