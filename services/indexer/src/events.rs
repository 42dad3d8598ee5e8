//! Event read models: `rm.events`, `rm.event_tags`, `rm.attributes`, `rm.attribute_tags`, `rm.objects`,
//! `rm.object_references`, and `rm.tags`.
//!
//! Consecutive `AttributeAdded` and `EventTouched` changes (an Event with thousands of attributes, or
//! single adds to many Events, each an add and a touch) are buffered and written with one multi-row
//! statement each; any other change flushes the buffer first, so order is preserved (the two never
//! touch the same rows: attributes, and an Event's timestamp).
//! `attribute_count` grows by the attributes a batch adds, and is recounted once per batch for the
//! Events whose attributes a batch updated, deleted or restored.

use cairn_domain::Change;
use cairn_domain::event::{Attribute, EventMeta, Object, ObjectReference, TagLink};
use cairn_eventlog::projector::ApplyError;
use deadpool_postgres::Transaction;
use std::collections::BTreeSet;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

/// Work carried across the changes of one batch.
#[derive(Default)]
pub struct Pending {
    attributes: Vec<Attribute>,
    /// The last touch of each Event (by stream).
    touches: std::collections::HashMap<Uuid, i64>,
    /// Events whose attribute count must be recounted (an attribute updated, deleted or restored).
    touched: BTreeSet<i64>,
    /// Live attributes added per Event (counted without a recount: a single add to an Event of
    /// thousands of attributes must not scan them all).
    added: std::collections::HashMap<i64, i64>,
}

/// An Event's row in `rm.events` (the columns its record sets), as statement parameters in the order
/// of [`EventRow::COLUMNS`]: one mapping for the incremental upsert and the bulk rebuild.
pub(crate) struct EventRow<'a> {
    m: &'a EventMeta,
    date: chrono::NaiveDate,
    levels: [i16; 3],
    sighting_timestamp: i64,
}

impl<'a> EventRow<'a> {
    pub(crate) const COLUMNS: [&'static str; 19] = [
        "id", "uuid", "info", "date", "threat_level_id", "analysis", "distribution", "sharing_group_id", "org_id", "orgc_id", "user_id",
        "published", "publish_timestamp", "timestamp", "sighting_timestamp", "proposal_email_lock", "locked", "disable_correlation",
        "extends_uuid",
    ];
    pub(crate) const TYPES: [Type; 19] = [
        Type::INT8, Type::UUID, Type::TEXT, Type::DATE, Type::INT2, Type::INT2, Type::INT2, Type::INT8, Type::INT8, Type::INT8, Type::INT8,
        Type::BOOL, Type::INT8, Type::INT8, Type::INT8, Type::BOOL, Type::BOOL, Type::BOOL, Type::TEXT,
    ];

    pub(crate) fn new(m: &'a EventMeta, sighting_timestamp: i64) -> Self {
        let date = chrono::NaiveDate::parse_from_str(&m.date, "%Y-%m-%d").unwrap_or_default();
        Self { m, date, levels: [i16::from(m.threat_level_id), i16::from(m.analysis), i16::from(m.distribution)], sighting_timestamp }
    }

    pub(crate) fn values(&self) -> [&(dyn ToSql + Sync); 19] {
        let m = self.m;
        [
            &m.id, &m.uuid, &m.info, &self.date, &self.levels[0], &self.levels[1], &self.levels[2], &m.sharing_group_id, &m.org_id,
            &m.orgc_id, &m.user_id, &m.published, &m.publish_timestamp, &m.timestamp, &self.sighting_timestamp,
            &m.proposal_email_lock, &m.locked, &m.disable_correlation, &m.extends_uuid,
        ]
    }
}

/// An attribute's row in `rm.attributes`, in the order of [`AttributeRow::COLUMNS`].
pub(crate) struct AttributeRow<'a>(&'a Attribute, i16);

impl<'a> AttributeRow<'a> {
    pub(crate) const COLUMNS: [&'static str; 18] = [
        "id", "uuid", "event_id", "object_id", "object_relation", "category", "type", "value1", "value2", "to_ids", "comment",
        "distribution", "sharing_group_id", "timestamp", "deleted", "disable_correlation", "first_seen", "last_seen",
    ];
    pub(crate) const TYPES: [Type; 18] = [
        Type::INT8, Type::UUID, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::BOOL,
        Type::TEXT, Type::INT2, Type::INT8, Type::INT8, Type::BOOL, Type::BOOL, Type::INT8, Type::INT8,
    ];

    pub(crate) fn new(a: &'a Attribute) -> Self {
        Self(a, i16::from(a.distribution))
    }

    pub(crate) fn values(&self) -> [&(dyn ToSql + Sync); 18] {
        let a = self.0;
        [
            &a.id, &a.uuid, &a.event_id, &a.object_id, &a.object_relation, &a.category, &a.attr_type, &a.value1, &a.value2, &a.to_ids,
            &a.comment, &self.1, &a.sharing_group_id, &a.timestamp, &a.deleted, &a.disable_correlation, &a.first_seen, &a.last_seen,
        ]
    }
}

/// An Object's row in `rm.objects`, in the order of [`ObjectRow::COLUMNS`].
pub(crate) struct ObjectRow<'a>(&'a Object, i16);

impl<'a> ObjectRow<'a> {
    pub(crate) const COLUMNS: [&'static str; 15] = [
        "id", "uuid", "event_id", "name", "meta_category", "description", "template_uuid", "template_version", "timestamp",
        "distribution", "sharing_group_id", "comment", "deleted", "first_seen", "last_seen",
    ];
    pub(crate) const TYPES: [Type; 15] = [
        Type::INT8, Type::UUID, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::UUID, Type::TEXT, Type::INT8, Type::INT2,
        Type::INT8, Type::TEXT, Type::BOOL, Type::INT8, Type::INT8,
    ];

    pub(crate) fn new(o: &'a Object) -> Self {
        Self(o, i16::from(o.distribution))
    }

    pub(crate) fn values(&self) -> [&(dyn ToSql + Sync); 15] {
        let o = self.0;
        [
            &o.id, &o.uuid, &o.event_id, &o.name, &o.meta_category, &o.description, &o.template_uuid, &o.template_version, &o.timestamp,
            &self.1, &o.sharing_group_id, &o.comment, &o.deleted, &o.first_seen, &o.last_seen,
        ]
    }
}

/// An Object reference's row in `rm.object_references`, in the order of [`ReferenceRow::COLUMNS`].
pub(crate) struct ReferenceRow<'a>(&'a ObjectReference, i16);

impl<'a> ReferenceRow<'a> {
    pub(crate) const COLUMNS: [&'static str; 12] = [
        "id", "uuid", "event_id", "object_id", "object_uuid", "referenced_uuid", "referenced_id", "referenced_type", "relationship_type",
        "comment", "timestamp", "deleted",
    ];
    pub(crate) const TYPES: [Type; 12] = [
        Type::INT8, Type::UUID, Type::INT8, Type::INT8, Type::UUID, Type::UUID, Type::INT8, Type::INT2, Type::TEXT, Type::TEXT, Type::INT8,
        Type::BOOL,
    ];

    pub(crate) fn new(r: &'a ObjectReference) -> Self {
        Self(r, i16::from(r.referenced_type))
    }

    pub(crate) fn values(&self) -> [&(dyn ToSql + Sync); 12] {
        let r = self.0;
        [
            &r.id, &r.uuid, &r.event_id, &r.object_id, &r.object_uuid, &r.referenced_uuid, &r.referenced_id, &self.1, &r.relationship_type,
            &r.comment, &r.timestamp, &r.deleted,
        ]
    }
}

async fn event_id(tx: &Transaction<'_>, uuid: Uuid) -> Result<Option<i64>, ApplyError> {
    let stmt = tx.prepare_cached("SELECT id FROM rm.events WHERE uuid = $1").await?;
    Ok(tx.query_opt(&stmt, &[&uuid]).await?.map(|r| r.get(0)))
}

async fn flush(tx: &Transaction<'_>, p: &mut Pending) -> Result<(), ApplyError> {
    flush_attributes(tx, p).await?;
    if p.touches.is_empty() {
        return Ok(());
    }
    let (streams, timestamps): (Vec<Uuid>, Vec<i64>) = std::mem::take(&mut p.touches).into_iter().unzip();
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.events e SET timestamp = x.t, published = false FROM unnest($1::uuid[], $2::bigint[]) AS x(u, t) WHERE e.uuid = x.u",
        )
        .await?;
    tx.execute(&stmt, &[&streams, &timestamps]).await?;
    Ok(())
}

async fn flush_attributes(tx: &Transaction<'_>, p: &mut Pending) -> Result<(), ApplyError> {
    if p.attributes.is_empty() {
        return Ok(());
    }
    let a = std::mem::take(&mut p.attributes);
    let ids: Vec<i64> = a.iter().map(|x| x.id).collect();
    let uuids: Vec<Uuid> = a.iter().map(|x| x.uuid).collect();
    let event_ids: Vec<i64> = a.iter().map(|x| x.event_id).collect();
    let object_ids: Vec<i64> = a.iter().map(|x| x.object_id).collect();
    let relations: Vec<Option<&str>> = a.iter().map(|x| x.object_relation.as_deref()).collect();
    let categories: Vec<&str> = a.iter().map(|x| x.category.as_str()).collect();
    let types: Vec<&str> = a.iter().map(|x| x.attr_type.as_str()).collect();
    let value1: Vec<&str> = a.iter().map(|x| x.value1.as_str()).collect();
    let value2: Vec<&str> = a.iter().map(|x| x.value2.as_str()).collect();
    let to_ids: Vec<bool> = a.iter().map(|x| x.to_ids).collect();
    let comments: Vec<&str> = a.iter().map(|x| x.comment.as_str()).collect();
    let distributions: Vec<i16> = a.iter().map(|x| i16::from(x.distribution)).collect();
    let sgs: Vec<i64> = a.iter().map(|x| x.sharing_group_id).collect();
    let timestamps: Vec<i64> = a.iter().map(|x| x.timestamp).collect();
    let deleted: Vec<bool> = a.iter().map(|x| x.deleted).collect();
    let disable: Vec<bool> = a.iter().map(|x| x.disable_correlation).collect();
    let first: Vec<Option<i64>> = a.iter().map(|x| x.first_seen).collect();
    let last: Vec<Option<i64>> = a.iter().map(|x| x.last_seen).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO rm.attributes (id, uuid, event_id, object_id, object_relation, category, type, value1, value2, \
             to_ids, comment, distribution, sharing_group_id, timestamp, deleted, disable_correlation, first_seen, last_seen) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::bool[], $11::text[], $12::smallint[], $13::bigint[], $14::bigint[], $15::bool[], \
             $16::bool[], $17::bigint[], $18::bigint[]) \
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &ids, &uuids, &event_ids, &object_ids, &relations, &categories, &types, &value1, &value2, &to_ids, &comments,
            &distributions, &sgs, &timestamps, &deleted, &disable, &first, &last,
        ],
    )
    .await?;
    let (mut t_attr, mut t_event, mut t_tag, mut t_local, mut t_rel) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for x in &a {
        for t in &x.tags {
            t_attr.push(x.id);
            t_event.push(x.event_id);
            t_tag.push(t.tag_id);
            t_local.push(t.local);
            t_rel.push(t.relationship_type.clone());
        }
    }
    if !t_attr.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO rm.attribute_tags (attribute_id, event_id, tag_id, local, relationship_type) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bool[], $5::text[]) ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&stmt, &[&t_attr, &t_event, &t_tag, &t_local, &t_rel]).await?;
    }
    Ok(())
}

async fn upsert_attribute(tx: &Transaction<'_>, a: &Attribute) -> Result<(), ApplyError> {
    // Parameters in the order of `AttributeRow` (the uuid, Event and Object stay as they are).
    let stmt = tx
        .prepare_typed_cached(
            "UPDATE rm.attributes SET object_relation = $5, category = $6, type = $7, value1 = $8, value2 = $9, to_ids = $10, \
             comment = $11, distribution = $12, sharing_group_id = $13, timestamp = $14, deleted = $15, \
             disable_correlation = $16, first_seen = $17, last_seen = $18 WHERE id = $1",
            &AttributeRow::TYPES,
        )
        .await?;
    tx.execute(&stmt, &AttributeRow::new(a).values()).await?;
    replace_attribute_tags(tx, a.id, a.event_id, &a.tags).await
}

async fn replace_attribute_tags(tx: &Transaction<'_>, attribute_id: i64, event_id: i64, tags: &[TagLink]) -> Result<(), ApplyError> {
    tx.execute("DELETE FROM rm.attribute_tags WHERE attribute_id = $1", &[&attribute_id]).await?;
    for t in tags {
        insert_attribute_tag(tx, attribute_id, event_id, t).await?;
    }
    Ok(())
}

async fn insert_attribute_tag(tx: &Transaction<'_>, attribute_id: i64, event_id: i64, t: &TagLink) -> Result<(), ApplyError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO rm.attribute_tags (attribute_id, event_id, tag_id, local, relationship_type) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (attribute_id, tag_id) DO UPDATE SET local = $4, relationship_type = $5",
        )
        .await?;
    tx.execute(&stmt, &[&attribute_id, &event_id, &t.tag_id, &t.local, &t.relationship_type]).await?;
    Ok(())
}

/// Applies one change of an Event or tag stream (`stream_id` is the Event's uuid for Event changes).
///
/// # Errors
/// Database errors.
pub async fn apply(tx: &Transaction<'_>, stream_id: Uuid, change: &Change, p: &mut Pending) -> Result<(), ApplyError> {
    if let Change::AttributeAdded(a) = change {
        if !a.deleted {
            *p.added.entry(a.event_id).or_default() += 1;
        }
        p.attributes.push(a.clone());
        return Ok(());
    }
    if let Change::EventTouched { timestamp } = change {
        p.touches.insert(stream_id, *timestamp);
        return Ok(());
    }
    flush(tx, p).await?;
    match change {
        Change::TagCreated(t) | Change::TagUpdated(t) => {
            tx.execute(
                "INSERT INTO rm.tags (id, name, colour, exportable, org_id, user_id, hide_tag, numerical_value, is_galaxy, \
                 is_custom_galaxy, local_only, deleted, stream_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12) \
                 ON CONFLICT (id) DO UPDATE SET name = $2, colour = $3, exportable = $4, org_id = $5, user_id = $6, \
                 hide_tag = $7, numerical_value = $8, is_galaxy = $9, is_custom_galaxy = $10, local_only = $11, deleted = false",
                &[
                    &t.id,
                    &t.name,
                    &t.colour,
                    &t.exportable,
                    &t.org_id,
                    &t.user_id,
                    &t.hide_tag,
                    &t.numerical_value,
                    &t.is_galaxy,
                    &t.is_custom_galaxy,
                    &t.local_only,
                    &stream_id,
                ],
            )
            .await?;
        }
        Change::TagDeleted { id } => {
            // MISP removes the tag's links along with it.
            tx.execute("UPDATE rm.tags SET deleted = true WHERE id = $1", &[id]).await?;
            tx.execute("DELETE FROM rm.event_tags WHERE tag_id = $1", &[id]).await?;
            tx.execute("DELETE FROM rm.attribute_tags WHERE tag_id = $1", &[id]).await?;
        }
        Change::EventCreated(m) | Change::EventUpdated(m) => {
            // `sighting_timestamp` is moved by sightings (their own stream, see `collaboration`), not by
            // the Event's record, which keeps the value it was created with: never move it back.
            tx.execute(
                "INSERT INTO rm.events (id, uuid, info, date, threat_level_id, analysis, distribution, sharing_group_id, org_id, \
                 orgc_id, user_id, published, publish_timestamp, timestamp, sighting_timestamp, proposal_email_lock, locked, \
                 disable_correlation, extends_uuid) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                 ON CONFLICT (id) DO UPDATE SET info = $3, date = $4, threat_level_id = $5, analysis = $6, distribution = $7, \
                 sharing_group_id = $8, org_id = $9, orgc_id = $10, user_id = $11, published = $12, publish_timestamp = $13, \
                 timestamp = $14, sighting_timestamp = GREATEST(rm.events.sighting_timestamp, $15), proposal_email_lock = $16, locked = $17, disable_correlation = $18, \
                 extends_uuid = $19",
                &EventRow::new(m, m.sighting_timestamp).values(),
            )
            .await?;
        }
        Change::EventPublished { publish_timestamp } => {
            tx.execute("UPDATE rm.events SET published = true, publish_timestamp = $2 WHERE uuid = $1", &[&stream_id, publish_timestamp])
                .await?;
        }
        Change::EventUnpublished {} => {
            tx.execute("UPDATE rm.events SET published = false WHERE uuid = $1", &[&stream_id]).await?;
        }
        Change::EventDeleted { id } => {
            for table in ["rm.attribute_tags", "rm.attributes", "rm.objects", "rm.object_references", "rm.event_tags"] {
                tx.execute(&format!("DELETE FROM {table} WHERE event_id = $1"), &[id]).await?;
            }
            tx.execute("DELETE FROM rm.events WHERE id = $1", &[id]).await?;
            p.touched.remove(id);
            p.added.remove(id);
        }
        Change::EventTagged(t) => {
            if let Some(eid) = event_id(tx, stream_id).await? {
                tx.execute(
                    "INSERT INTO rm.event_tags (event_id, tag_id, local, relationship_type) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (event_id, tag_id) DO UPDATE SET local = $3, relationship_type = $4",
                    &[&eid, &t.tag_id, &t.local, &t.relationship_type],
                )
                .await?;
            }
        }
        Change::EventUntagged { tag_id, .. } => {
            if let Some(eid) = event_id(tx, stream_id).await? {
                tx.execute("DELETE FROM rm.event_tags WHERE event_id = $1 AND tag_id = $2", &[&eid, tag_id]).await?;
            }
        }
        Change::AttributeUpdated(a) => {
            upsert_attribute(tx, a).await?;
            p.touched.insert(a.event_id);
        }
        Change::AttributeDeleted { id, hard, timestamp } => {
            let event = if *hard {
                tx.execute("DELETE FROM rm.attribute_tags WHERE attribute_id = $1", &[id]).await?;
                tx.query_opt("DELETE FROM rm.attributes WHERE id = $1 RETURNING event_id", &[id]).await?
            } else {
                tx.query_opt("UPDATE rm.attributes SET deleted = true, timestamp = $2 WHERE id = $1 RETURNING event_id", &[id, timestamp])
                    .await?
            };
            if let Some(row) = event {
                p.touched.insert(row.get(0));
            }
        }
        Change::AttributeRestored { id, timestamp } => {
            if let Some(row) =
                tx.query_opt("UPDATE rm.attributes SET deleted = false, timestamp = $2 WHERE id = $1 RETURNING event_id", &[id, timestamp]).await?
            {
                p.touched.insert(row.get(0));
            }
        }
        Change::AttributeTagged { attribute_id, tag } => {
            if let Some(row) = tx.query_opt("SELECT event_id FROM rm.attributes WHERE id = $1", &[attribute_id]).await? {
                insert_attribute_tag(tx, *attribute_id, row.get(0), tag).await?;
            }
        }
        Change::AttributeUntagged { attribute_id, tag_id, .. } => {
            tx.execute("DELETE FROM rm.attribute_tags WHERE attribute_id = $1 AND tag_id = $2", &[attribute_id, tag_id]).await?;
        }
        Change::ObjectAdded(o) | Change::ObjectUpdated(o) => {
            tx.execute(
                "INSERT INTO rm.objects (id, uuid, event_id, name, meta_category, description, template_uuid, template_version, \
                 timestamp, distribution, sharing_group_id, comment, deleted, first_seen, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (id) DO UPDATE SET name = $4, meta_category = $5, description = $6, template_uuid = $7, \
                 template_version = $8, timestamp = $9, distribution = $10, sharing_group_id = $11, comment = $12, \
                 deleted = $13, first_seen = $14, last_seen = $15",
                &ObjectRow::new(o).values(),
            )
            .await?;
        }
        Change::ObjectDeleted { id, hard, timestamp } => {
            if *hard {
                tx.execute("DELETE FROM rm.objects WHERE id = $1", &[id]).await?;
            } else {
                tx.execute("UPDATE rm.objects SET deleted = true, timestamp = $2 WHERE id = $1", &[id, timestamp]).await?;
            }
        }
        Change::ReferenceAdded(r) => {
            tx.execute(
                "INSERT INTO rm.object_references (id, uuid, event_id, object_id, object_uuid, referenced_uuid, referenced_id, \
                 referenced_type, relationship_type, comment, timestamp, deleted) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
                &ReferenceRow::new(r).values(),
            )
            .await?;
        }
        Change::ReferenceDeleted { id, hard, timestamp } => {
            if *hard {
                tx.execute("DELETE FROM rm.object_references WHERE id = $1", &[id]).await?;
            } else {
                tx.execute("UPDATE rm.object_references SET deleted = true, timestamp = $2 WHERE id = $1", &[id, timestamp]).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Ends a batch: writes buffered attributes and recounts the touched Events' attributes.
///
/// # Errors
/// Database errors.
pub async fn finish(tx: &Transaction<'_>, p: &mut Pending) -> Result<(), ApplyError> {
    flush(tx, p).await?;
    let touched = std::mem::take(&mut p.touched);
    let (ids, deltas): (Vec<i64>, Vec<i64>) = std::mem::take(&mut p.added).into_iter().filter(|(id, _)| !touched.contains(id)).unzip();
    if !ids.is_empty() {
        let stmt = tx
            .prepare_cached(
                "UPDATE rm.events e SET attribute_count = e.attribute_count + x.d FROM unnest($1::bigint[], $2::bigint[]) AS x(id, d) WHERE e.id = x.id",
            )
            .await?;
        tx.execute(&stmt, &[&ids, &deltas]).await?;
    }
    if touched.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = touched.into_iter().collect();
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.events e SET attribute_count = \
             (SELECT count(*) FROM rm.attributes a WHERE a.event_id = e.id AND NOT a.deleted) WHERE e.id = ANY($1)",
        )
        .await?;
    tx.execute(&stmt, &[&ids]).await?;
    Ok(())
}
