//! The Event tables written from a folded log ([`Fold`]): one binary `COPY` per table, into tables
//! whose indexes the caller took off ([`cairn_eventlog::bulk::Indexes`]). The rows are those the
//! incremental `events` and `collaboration` code leaves for the same log: `cairnctl rebuild`
//! compares the two.

use cairn_domain::event::fold::Fold;
use cairn_eventlog::bulk::{BoxError, Copy};
use tokio_postgres::Transaction;
use crate::events::{AttributeRow, EventRow, ObjectRow, ReferenceRow};
use tokio_postgres::types::{ToSql, Type};

/// The tables [`write`] fills (every other indexer table is written by the incremental code).
pub const TABLES: &[&str] = &["events", "event_tags", "attributes", "attribute_tags", "objects", "object_references"];

/// Writes the live Events of `fold` into `{schema}.events`, `event_tags`, `attributes`,
/// `attribute_tags`, `objects` and `object_references`, in id order. Returns the rows written.
///
/// # Errors
/// Database errors.
pub async fn write(tx: &Transaction<'_>, schema: &str, fold: &Fold) -> Result<u64, BoxError> {
    let live = fold.live_in_order();
    let mut rows = 0;

    let (columns, types) = ([&EventRow::COLUMNS[..], &["attribute_count", "delegate_org_id"]].concat(), [&EventRow::TYPES[..], &[Type::INT8, Type::INT8]].concat());
    let mut events = Copy::start(tx, &format!("{schema}.events"), &columns, &types).await?;
    for f in &live {
        let (event, count, delegate) = (EventRow::new(f.meta, f.sighting_timestamp), f.attribute_count(), f.delegate_org_id());
        let mut values = event.values().to_vec();
        values.extend([&count as &(dyn ToSql + Sync), &delegate]);
        events.row(&values).await?;
    }
    rows += events.finish().await?;

    let tag_columns = ["local", "relationship_type"];
    let mut event_tags = Copy::start(
        tx,
        &format!("{schema}.event_tags"),
        &["event_id", "tag_id", tag_columns[0], tag_columns[1]],
        &[Type::INT8, Type::INT8, Type::BOOL, Type::TEXT],
    )
    .await?;
    for f in &live {
        for t in &f.state.tags {
            event_tags.row(&[&f.meta.id, &t.tag_id, &t.local, &t.relationship_type]).await?;
        }
    }
    rows += event_tags.finish().await?;

    let mut attributes = Copy::start(tx, &format!("{schema}.attributes"), &AttributeRow::COLUMNS, &AttributeRow::TYPES).await?;
    for f in &live {
        for a in f.state.attributes.values() {
            attributes.row(&AttributeRow::new(a).values()).await?;
        }
    }
    rows += attributes.finish().await?;

    let mut attribute_tags = Copy::start(
        tx,
        &format!("{schema}.attribute_tags"),
        &["attribute_id", "event_id", "tag_id", tag_columns[0], tag_columns[1]],
        &[Type::INT8, Type::INT8, Type::INT8, Type::BOOL, Type::TEXT],
    )
    .await?;
    for f in &live {
        for a in f.state.attributes.values() {
            for t in &a.tags {
                attribute_tags.row(&[&a.id, &a.event_id, &t.tag_id, &t.local, &t.relationship_type]).await?;
            }
        }
    }
    rows += attribute_tags.finish().await?;

    let mut objects = Copy::start(tx, &format!("{schema}.objects"), &ObjectRow::COLUMNS, &ObjectRow::TYPES).await?;
    for f in &live {
        for o in f.state.objects.values() {
            objects.row(&ObjectRow::new(o).values()).await?;
        }
    }
    rows += objects.finish().await?;

    let mut references = Copy::start(tx, &format!("{schema}.object_references"), &ReferenceRow::COLUMNS, &ReferenceRow::TYPES).await?;
    for f in &live {
        for r in f.state.references.values() {
            references.row(&ReferenceRow::new(r).values()).await?;
        }
    }
    rows += references.finish().await?;
    Ok(rows)
}
