//! The Event tables written from a folded log ([`Fold`]): one binary `COPY` per table, into tables
//! whose indexes the caller took off ([`cairn_eventlog::bulk::Indexes`]). The rows are those the
//! incremental `events` and `collaboration` code leaves for the same log: `cairnctl rebuild`
//! compares the two.

use cairn_domain::event::fold::Fold;
use cairn_eventlog::bulk::{BoxError, Copy};
use tokio_postgres::Client;
use tokio_postgres::types::Type;

/// The tables [`write`] fills (every other indexer table is written by the incremental code).
pub const TABLES: &[&str] = &["events", "event_tags", "attributes", "attribute_tags", "objects", "object_references"];

/// Writes the live Events of `fold` into `{schema}.events`, `event_tags`, `attributes`,
/// `attribute_tags`, `objects` and `object_references`, in id order. Returns the rows written.
///
/// # Errors
/// Database errors.
pub async fn write(client: &Client, schema: &str, fold: &Fold) -> Result<u64, BoxError> {
    let mut live: Vec<_> = fold.live().collect();
    live.sort_unstable_by_key(|f| f.meta.id);
    let mut rows = 0;

    let mut events = Copy::start(
        client,
        &format!("{schema}.events"),
        &[
            "id", "uuid", "info", "date", "threat_level_id", "analysis", "distribution", "sharing_group_id", "org_id", "orgc_id",
            "user_id", "published", "publish_timestamp", "timestamp", "sighting_timestamp", "proposal_email_lock", "locked",
            "disable_correlation", "extends_uuid", "attribute_count", "delegate_org_id",
        ],
        &[
            Type::INT8, Type::UUID, Type::TEXT, Type::DATE, Type::INT2, Type::INT2, Type::INT2, Type::INT8, Type::INT8, Type::INT8,
            Type::INT8, Type::BOOL, Type::INT8, Type::INT8, Type::INT8, Type::BOOL, Type::BOOL, Type::BOOL, Type::TEXT, Type::INT8,
            Type::INT8,
        ],
    )
    .await?;
    for f in &live {
        let m = f.meta;
        events
            .row(&[
                &m.id,
                &m.uuid,
                &m.info,
                &crate::events::event_date(m),
                &i16::from(m.threat_level_id),
                &i16::from(m.analysis),
                &i16::from(m.distribution),
                &m.sharing_group_id,
                &m.org_id,
                &m.orgc_id,
                &m.user_id,
                &m.published,
                &m.publish_timestamp,
                &m.timestamp,
                &f.sighting_timestamp,
                &m.proposal_email_lock,
                &m.locked,
                &m.disable_correlation,
                &m.extends_uuid,
                &f.attribute_count(),
                &f.delegate_org_id(),
            ])
            .await?;
    }
    rows += events.finish().await?;

    let tag_columns = ["local", "relationship_type"];
    let mut event_tags = Copy::start(
        client,
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

    let mut attributes = Copy::start(
        client,
        &format!("{schema}.attributes"),
        &[
            "id", "uuid", "event_id", "object_id", "object_relation", "category", "type", "value1", "value2", "to_ids", "comment",
            "distribution", "sharing_group_id", "timestamp", "deleted", "disable_correlation", "first_seen", "last_seen",
        ],
        &[
            Type::INT8, Type::UUID, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::BOOL,
            Type::TEXT, Type::INT2, Type::INT8, Type::INT8, Type::BOOL, Type::BOOL, Type::INT8, Type::INT8,
        ],
    )
    .await?;
    for f in &live {
        for a in f.state.attributes.values() {
            attributes
                .row(&[
                    &a.id,
                    &a.uuid,
                    &a.event_id,
                    &a.object_id,
                    &a.object_relation,
                    &a.category,
                    &a.attr_type,
                    &a.value1,
                    &a.value2,
                    &a.to_ids,
                    &a.comment,
                    &i16::from(a.distribution),
                    &a.sharing_group_id,
                    &a.timestamp,
                    &a.deleted,
                    &a.disable_correlation,
                    &a.first_seen,
                    &a.last_seen,
                ])
                .await?;
        }
    }
    rows += attributes.finish().await?;

    let mut attribute_tags = Copy::start(
        client,
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

    let mut objects = Copy::start(
        client,
        &format!("{schema}.objects"),
        &[
            "id", "uuid", "event_id", "name", "meta_category", "description", "template_uuid", "template_version", "timestamp",
            "distribution", "sharing_group_id", "comment", "deleted", "first_seen", "last_seen",
        ],
        &[
            Type::INT8, Type::UUID, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::UUID, Type::TEXT, Type::INT8, Type::INT2,
            Type::INT8, Type::TEXT, Type::BOOL, Type::INT8, Type::INT8,
        ],
    )
    .await?;
    for f in &live {
        for o in f.state.objects.values() {
            objects
                .row(&[
                    &o.id,
                    &o.uuid,
                    &o.event_id,
                    &o.name,
                    &o.meta_category,
                    &o.description,
                    &o.template_uuid,
                    &o.template_version,
                    &o.timestamp,
                    &i16::from(o.distribution),
                    &o.sharing_group_id,
                    &o.comment,
                    &o.deleted,
                    &o.first_seen,
                    &o.last_seen,
                ])
                .await?;
        }
    }
    rows += objects.finish().await?;

    let mut references = Copy::start(
        client,
        &format!("{schema}.object_references"),
        &[
            "id", "uuid", "event_id", "object_id", "object_uuid", "referenced_uuid", "referenced_id", "referenced_type",
            "relationship_type", "comment", "timestamp", "deleted",
        ],
        &[
            Type::INT8, Type::UUID, Type::INT8, Type::INT8, Type::UUID, Type::UUID, Type::INT8, Type::INT2, Type::TEXT, Type::TEXT,
            Type::INT8, Type::BOOL,
        ],
    )
    .await?;
    for f in &live {
        for r in f.state.references.values() {
            references
                .row(&[
                    &r.id,
                    &r.uuid,
                    &r.event_id,
                    &r.object_id,
                    &r.object_uuid,
                    &r.referenced_uuid,
                    &r.referenced_id,
                    &i16::from(r.referenced_type),
                    &r.relationship_type,
                    &r.comment,
                    &r.timestamp,
                    &r.deleted,
                ])
                .await?;
        }
    }
    rows += references.finish().await?;
    Ok(rows)
}
