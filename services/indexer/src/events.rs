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
use cairn_domain::event::{Attribute, TagLink};
use cairn_eventlog::projector::ApplyError;
use deadpool_postgres::Transaction;
use std::collections::BTreeSet;
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

/// The `date` column of an Event's row.
pub(crate) fn event_date(m: &cairn_domain::event::EventMeta) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(&m.date, "%Y-%m-%d").unwrap_or_default()
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
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.attributes SET object_relation = $2, category = $3, type = $4, value1 = $5, value2 = $6, to_ids = $7, \
             comment = $8, distribution = $9, sharing_group_id = $10, timestamp = $11, deleted = $12, \
             disable_correlation = $13, first_seen = $14, last_seen = $15 WHERE id = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &a.id,
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
        ],
    )
    .await?;
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
            let date = event_date(m);
            tx.execute(
                "INSERT INTO rm.events (id, uuid, info, date, threat_level_id, analysis, distribution, sharing_group_id, org_id, \
                 orgc_id, user_id, published, publish_timestamp, timestamp, sighting_timestamp, proposal_email_lock, locked, \
                 disable_correlation, extends_uuid) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                 ON CONFLICT (id) DO UPDATE SET info = $3, date = $4, threat_level_id = $5, analysis = $6, distribution = $7, \
                 sharing_group_id = $8, org_id = $9, orgc_id = $10, user_id = $11, published = $12, publish_timestamp = $13, \
                 timestamp = $14, sighting_timestamp = GREATEST(rm.events.sighting_timestamp, $15), proposal_email_lock = $16, locked = $17, disable_correlation = $18, \
                 extends_uuid = $19",
                &[
                    &m.id,
                    &m.uuid,
                    &m.info,
                    &date,
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
                    &m.sighting_timestamp,
                    &m.proposal_email_lock,
                    &m.locked,
                    &m.disable_correlation,
                    &m.extends_uuid,
                ],
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
                &[
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
                ],
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
                &[
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
                ],
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
        tx.execute(
            "UPDATE rm.events e SET attribute_count = e.attribute_count + x.d FROM unnest($1::bigint[], $2::bigint[]) AS x(id, d) WHERE e.id = x.id",
            &[&ids, &deltas],
        )
        .await?;
    }
    if touched.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = touched.into_iter().collect();
    tx.execute(
        "UPDATE rm.events e SET attribute_count = \
         (SELECT count(*) FROM rm.attributes a WHERE a.event_id = e.id AND NOT a.deleted) WHERE e.id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(())
}
