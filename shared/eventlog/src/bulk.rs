//! Bulk reads of the log and bulk writes of read-model tables, for rebuilds from zero.
//!
//! - [`read_log`]: the log up to a position in one binary `COPY`, without the metadata and hashes a
//!   projector batch carries, whole or in [`Part`]s read side by side.
//! - [`Indexes`]: a table set's indexes and key constraints taken off before a bulk load and built
//!   again after it (PostgreSQL builds an index from sorted rows far faster than it maintains one
//!   row by row).
//! - [`Copy`]: a binary `COPY … FROM STDIN` into a table, in large chunks.

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{CopyInSink, GenericClient, Transaction};
use uuid::Uuid;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A [`LogRow`] from a row of the bulk reads' six columns (position, stream id, stream type, change
/// type, schema version, payload text), with `?` on each.
macro_rules! log_row {
    ($row:expr) => {
        LogRow {
            position: $row.try_get(0)?,
            stream_id: $row.try_get(1)?,
            stream_type: $row.try_get(2)?,
            change_type: $row.try_get(3)?,
            schema_version: $row.try_get(4)?,
            payload: $row.try_get(5)?,
        }
    };
}

/// One change of the log as a bulk read sees it.
pub struct LogRow<'a> {
    pub position: i64,
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub change_type: &'a str,
    pub schema_version: i16,
    /// The payload's JSON text.
    pub payload: &'a str,
}

/// Which Event streams a [`read_log`] reads: part `index` of `of` equal ranges of stream ids (the
/// changes of every other stream type come in every part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    pub of: u32,
}

impl Part {
    /// `(first id, first id of the next part)`; `None` past the end.
    fn bounds(self) -> (Uuid, Option<Uuid>) {
        let width = u128::MAX / u128::from(self.of.max(1));
        let at = |i: u32| Uuid::from_u128(width * u128::from(i));
        (at(self.index), (self.index + 1 < self.of).then(|| at(self.index + 1)))
    }
}

/// Calls `each` for every change with `after < position <= until` of the streams of `part`, in
/// position order, read in `client`'s transaction (a snapshot, when the caller compares with other
/// tables, or several readers share one). Returns how many were read.
///
/// # Errors
/// Database errors, and whatever `each` returns.
pub async fn read_log(
    client: &tokio_postgres::Transaction<'_>,
    after: i64,
    until: i64,
    part: Part,
    mut each: impl FnMut(LogRow<'_>) -> Result<(), BoxError>,
) -> Result<u64, BoxError> {
    let (first, next) = part.bounds();
    let next = next.map_or_else(String::new, |n| format!(" AND stream_id < '{n}'"));
    let sql = format!(
        "COPY (SELECT position, stream_id, stream_type, change_type, schema_version, payload::text FROM es.changes \
         WHERE position > {after} AND position <= {until} AND (stream_type <> 'event' OR (stream_id >= '{first}'{next})) \
         ORDER BY position) TO STDOUT (FORMAT binary)"
    );
    let stream = BinaryCopyOutStream::new(
        client.copy_out(&sql).await?,
        &[Type::INT8, Type::UUID, Type::TEXT, Type::TEXT, Type::INT2, Type::TEXT],
    );
    futures::pin_mut!(stream);
    let mut read = 0;
    while let Some(row) = stream.next().await {
        let row = row?;
        each(log_row!(row))?;
        read += 1;
    }
    Ok(read)
}

/// Calls `each` for every change of `streams` up to position `until`, in position order (an Event
/// and its sightings replayed as of a point). Returns how many were read.
///
/// # Errors
/// Database errors, and whatever `each` returns.
pub async fn read_streams(
    client: &impl deadpool_postgres::GenericClient,
    streams: &[Uuid],
    until: i64,
    mut each: impl FnMut(LogRow<'_>) -> Result<(), BoxError>,
) -> Result<u64, BoxError> {
    let statement = client
        .prepare_cached(
            "SELECT position, stream_id, stream_type, change_type, schema_version, payload::text FROM es.changes \
             WHERE stream_id = ANY($1) AND position <= $2 ORDER BY position",
        )
        .await?;
    let rows = client.query(&statement, &[&streams, &until]).await?;
    for row in &rows {
        each(log_row!(row))?;
    }
    Ok(rows.len() as u64)
}

/// The indexes and primary-key / unique constraints of some tables, as SQL that builds them again.
#[derive(Debug, Default)]
pub struct Indexes {
    /// `(table, statement, weight)`: index builds, run side by side.
    builds: Vec<(String, String, u64)>,
    /// Statements run after every build (a constraint taking over its index).
    attach: Vec<String>,
}

/// How much more an index method costs to build than a plain b-tree, roughly (measured here on the
/// correlation table: GiST inserts one row at a time, hash and expression indexes hash or evaluate).
fn weight(definition: &str) -> u64 {
    if definition.contains("USING gist") {
        8
    } else if definition.contains("USING hash") {
        3
    } else if definition.contains("lower(") {
        2
    } else {
        1
    }
}

impl Indexes {
    /// Drops every index and key constraint of `tables` (schema-qualified names), remembering them.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_off(client: &impl GenericClient, tables: &[String]) -> Result<Self, BoxError> {
        let (mut drop, mut taken) = (Vec::new(), Self::default());
        for table in tables {
            let constraints = client
                .query(
                    "SELECT conname::text, pg_get_constraintdef(oid), contype::text FROM pg_constraint \
                     WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u') ORDER BY contype, conname",
                    &[table],
                )
                .await?;
            for c in &constraints {
                let (name, definition, kind): (String, String, String) = (c.get(0), c.get(1), c.get(2));
                drop.push(format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""));
                let keyword = if kind == "p" { "PRIMARY KEY" } else { "UNIQUE" };
                match definition.strip_prefix(keyword).map(str::trim) {
                    // Built like any unique index, then taken over by the constraint.
                    Some(columns) if columns.starts_with('(') && columns.ends_with(')') => {
                        taken.builds.push((table.clone(), format!("CREATE UNIQUE INDEX \"{name}\" ON {table} {columns}"), 1));
                        taken.attach.push(format!("ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {keyword} USING INDEX \"{name}\""));
                    }
                    _ => taken.attach.push(format!("ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {definition}")),
                }
            }
            let indexes = client
                .query(
                    "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
                     WHERE i.indrelid = $1::text::regclass \
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
                    &[table],
                )
                .await?;
            for i in &indexes {
                let (name, definition): (String, String) = (i.get(0), i.get(1));
                // regclass text is qualified unless the schema is on the search path: qualify it from the table.
                let qualified = match (name.contains('.'), table.split_once('.')) {
                    (false, Some((schema, _))) => format!("{schema}.{name}"),
                    _ => name,
                };
                drop.push(format!("DROP INDEX {qualified}"));
                let w = weight(&definition);
                taken.builds.push((table.clone(), definition, w));
            }
        }
        for statement in &drop {
            client.batch_execute(statement).await?;
        }
        Ok(taken)
    }

    /// Builds the indexes again, side by side on `clients` (connections to the tables' database),
    /// the costliest first (weight by method times table size), then attaches the constraints.
    ///
    /// # Errors
    /// Database errors (a key constraint the loaded rows violate, for one).
    pub async fn restore(self, clients: &[&tokio_postgres::Client]) -> Result<(), BoxError> {
        let first = clients.first().ok_or("no connection to build indexes on")?;
        let mut builds = Vec::with_capacity(self.builds.len());
        for (table, statement, w) in self.builds {
            let size: i64 = first.query_one("SELECT pg_relation_size($1::text::regclass)", &[&table]).await?.get(0);
            builds.push((u64::try_from(size).unwrap_or(0).max(1) * w, statement));
        }
        builds.sort_by_key(|b| std::cmp::Reverse(b.0));
        let queue = std::sync::Mutex::new(builds.into_iter().map(|(_, s)| s).collect::<std::collections::VecDeque<_>>());
        let queue = &queue;
        futures::future::try_join_all(clients.iter().map(|client| async move {
            // The builds run side by side already: no parallel workers of their own.
            client.batch_execute("SET maintenance_work_mem = '512MB'; SET max_parallel_maintenance_workers = 0").await?;
            loop {
                let next = queue.lock().map_err(|_| "index queue poisoned")?.pop_front();
                let Some(statement) = next else { return Ok::<_, BoxError>(()) };
                client.batch_execute(&statement).await?;
            }
        }))
        .await?;
        for statement in &self.attach {
            first.batch_execute(statement).await?;
        }
        Ok(())
    }
}

/// A binary `COPY` into one table, sent in large chunks.
pub struct Copy {
    sink: std::pin::Pin<Box<CopyInSink<bytes::Bytes>>>,
    types: Vec<Type>,
    buf: BytesMut,
    rows: u64,
}

/// Bytes buffered before a chunk is sent.
const CHUNK: usize = 1 << 20;

impl Copy {
    /// Starts `COPY table (columns) FROM STDIN (FREEZE)` in `tx`; `types` are the columns' types, in
    /// order. The rows are written frozen (no hint bits to set, no vacuum to run when they are first
    /// read), which PostgreSQL allows only into a table created or truncated in `tx`.
    ///
    /// # Errors
    /// Database errors (a table `tx` did not empty, for one).
    pub async fn start(tx: &Transaction<'_>, table: &str, columns: &[&str], types: &[Type]) -> Result<Self, BoxError> {
        let sink = tx.copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary, FREEZE)", columns.join(", "))).await?;
        let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        // Signature, flags, header extension length.
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
        Ok(Self { sink: Box::pin(sink), types: types.to_vec(), buf, rows: 0 })
    }

    /// Writes one row (values in the order of the columns).
    ///
    /// # Errors
    /// Database errors, and values that do not match the column types.
    pub async fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), BoxError> {
        if values.len() != self.types.len() {
            return Err(format!("{} values for {} columns", values.len(), self.types.len()).into());
        }
        self.buf.put_i16(values.len() as i16);
        for (value, ty) in values.iter().zip(&self.types) {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let length = match value.to_sql_checked(ty, &mut self.buf)? {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)?,
            };
            self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        self.rows += 1;
        if self.buf.len() >= CHUNK {
            self.sink.send(self.buf.split().freeze()).await?;
        }
        Ok(())
    }

    /// Ends the `COPY`; returns the rows written.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish(mut self) -> Result<u64, BoxError> {
        self.buf.put_i16(-1);
        self.sink.send(self.buf.split().freeze()).await?;
        self.sink.as_mut().finish().await?;
        Ok(self.rows)
    }
}
