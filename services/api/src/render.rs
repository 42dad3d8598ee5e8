//! Read-model rows → MISP's Event JSON (`JSONConverterTool` shapes, pymisp_contract.md §5.1.1), with the
//! access rule applied to every element. Queries for one Event are a handful of indexed selects; the
//! JSON is assembled here.

use crate::error::ApiError;
use cairn_domain::acl::{self, AccessSettings, ElementAccess, EventAccess, Viewer};
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// MISP's `first_seen`/`last_seen` text: ISO-8601 with microseconds and offset.
pub fn seen(micros: Option<i64>) -> Value {
    match micros.and_then(chrono::DateTime::from_timestamp_micros) {
        Some(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()),
        None => Value::Null,
    }
}

/// How an Event is rendered.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// Include soft-deleted attributes and objects.
    pub deleted: bool,
    /// Only soft-deleted ones (restSearch `deleted: 1`).
    pub only_deleted: bool,
    /// Omit Attribute/Object (metadata only).
    pub metadata: bool,
    /// Include non-exportable tags.
    pub all_tags: bool,
    /// Omit `Sighting` lists.
    pub no_sightings: bool,
    /// Only attributes with this IDS flag (restSearch `to_ids` in the Event scope).
    pub to_ids: Option<bool>,
    /// Leave out attributes carrying one of these tags (lower-cased names, `%` at either end as a
    /// wildcard): restSearch `tags` NOT in the Event scope.
    pub blocked_tags: Vec<String>,
    /// Which sightings of other organisations the viewer sees (`Plugin.Sightings_policy`).
    pub sightings: cairn_domain::acl::SightingSettings,
}

/// The access-relevant columns of an `rm.events` row plus what rendering needs.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: i64,
    pub uuid: Uuid,
    pub access: EventAccess,
    pub orgc_id: i64,
    pub user_id: i64,
    row: Value,
}

pub const EVENT_COLUMNS: &str = "e.id, e.uuid, e.info, e.date::text, e.threat_level_id, e.analysis, e.distribution, \
    e.sharing_group_id, e.org_id, e.orgc_id, e.user_id, e.published, e.publish_timestamp, e.timestamp, \
    e.sighting_timestamp, e.proposal_email_lock, e.locked, e.disable_correlation, e.extends_uuid, e.attribute_count, \
    e.delegate_org_id";

pub fn event_row(r: &Row) -> EventRow {
    event_row_at(r, 0)
}

/// [`event_row`] for a row whose [`EVENT_COLUMNS`] start at column `o`.
pub fn event_row_at(r: &Row, o: usize) -> EventRow {
    let id: i64 = r.get(o);
    let uuid: Uuid = r.get(o + 1);
    let distribution: i16 = r.get(o + 6);
    let sg: i64 = r.get(o + 7);
    let org_id: i64 = r.get(o + 8);
    let orgc_id: i64 = r.get(o + 9);
    let user_id: i64 = r.get(o + 10);
    let published: bool = r.get(o + 11);
    let row = json!({
        "id": id.to_string(),
        "orgc_id": orgc_id.to_string(),
        "org_id": org_id.to_string(),
        "date": r.get::<_, String>(o + 3),
        "threat_level_id": r.get::<_, i16>(o + 4).to_string(),
        "info": r.get::<_, String>(o + 2),
        "published": published,
        "uuid": uuid,
        "attribute_count": r.get::<_, i64>(o + 19).to_string(),
        "analysis": r.get::<_, i16>(o + 5).to_string(),
        "timestamp": r.get::<_, i64>(o + 13).to_string(),
        "distribution": distribution.to_string(),
        "proposal_email_lock": r.get::<_, bool>(o + 15),
        "locked": r.get::<_, bool>(o + 16),
        "publish_timestamp": r.get::<_, i64>(o + 12).to_string(),
        "sharing_group_id": sg.to_string(),
        "disable_correlation": r.get::<_, bool>(o + 17),
        "extends_uuid": r.get::<_, String>(o + 18),
        "protected": Value::Null,
        "sighting_timestamp": r.get::<_, i64>(o + 14).to_string(),
    });
    EventRow {
        id,
        uuid,
        access: EventAccess { org_id, distribution: distribution as u8, sharing_group_id: sg, published, delegate_org_id: r.get(o + 20) },
        orgc_id,
        user_id,
        row,
    }
}

/// The Event's own fields (MISP's `Event` summary on proposals, sightings, delegations).
pub fn event_summary(event: &EventRow) -> Value {
    event.row.clone()
}

/// The access fields of an attribute and of its Object (if any): `None` when missing.
///
/// # Errors
/// Database errors.
pub async fn attribute_access(client: &impl GenericClient, id: i64) -> Result<Option<(ElementAccess, Option<ElementAccess>)>, ApiError> {
    let stmt = client
        .prepare_cached(
            "SELECT a.distribution, a.sharing_group_id, o.distribution, o.sharing_group_id, a.object_id FROM rm.attributes a \
             LEFT JOIN rm.objects o ON o.id = a.object_id WHERE a.id = $1",
        )
        .await?;
    let Some(r) = client.query_opt(&stmt, &[&id]).await? else { return Ok(None) };
    let a = ElementAccess { distribution: r.get::<_, i16>(0) as u8, sharing_group_id: r.get(1) };
    let object_id: i64 = r.get(4);
    if object_id == 0 {
        return Ok(Some((a, None)));
    }
    let Some(d) = r.get::<_, Option<i16>>(2) else { return Ok(None) };
    Ok(Some((a, Some(ElementAccess { distribution: d as u8, sharing_group_id: r.get::<_, Option<i64>>(3).unwrap_or(0) }))))
}

/// Finds an Event by numeric id or uuid.
///
/// # Errors
/// Database errors.
pub async fn find_event(client: &impl GenericClient, key: &str) -> Result<Option<EventRow>, ApiError> {
    let key = key.trim();
    let row = if let Ok(uuid) = Uuid::parse_str(key) {
        let stmt = client.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE e.uuid = $1")).await?;
        client.query_opt(&stmt, &[&uuid]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        let stmt = client.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE e.id = $1")).await?;
        client.query_opt(&stmt, &[&id]).await?
    } else {
        None
    };
    Ok(row.as_ref().map(event_row))
}

/// Organisations by id, rendered in the short form used inside Events.
pub async fn org_shorts(client: &impl GenericClient, ids: &[i64]) -> Result<HashMap<i64, Value>, ApiError> {
    let stmt = client.prepare_cached("SELECT id, doc FROM rm.organisations WHERE id = ANY($1)").await?;
    let mut out = HashMap::new();
    for r in client.query(&stmt, &[&ids]).await? {
        let doc: Value = r.get(1);
        let local = doc.get("local").and_then(Value::as_bool).unwrap_or(true);
        out.insert(
            r.get::<_, i64>(0),
            json!({"id": r.get::<_, i64>(0).to_string(), "name": doc["name"], "uuid": doc["uuid"], "local": local}),
        );
    }
    Ok(out)
}

pub const TAG_COLUMNS: &str = "t.id, t.name, t.colour, t.exportable, t.org_id, t.user_id, t.hide_tag, t.numerical_value, \
    t.is_galaxy, t.is_custom_galaxy, t.local_only";

/// A tag row (first 11 columns as [`TAG_COLUMNS`]) in MISP's `Tag` shape.
pub fn tag_json(r: &Row, offset: usize) -> Value {
    json!({
        "id": r.get::<_, i64>(offset).to_string(),
        "name": r.get::<_, String>(offset + 1),
        "colour": r.get::<_, String>(offset + 2),
        "exportable": r.get::<_, bool>(offset + 3),
        "org_id": r.get::<_, i64>(offset + 4).to_string(),
        "user_id": r.get::<_, i64>(offset + 5).to_string(),
        "hide_tag": r.get::<_, bool>(offset + 6),
        "numerical_value": r.get::<_, Option<i64>>(offset + 7).map(|v| v.to_string()),
        "is_galaxy": r.get::<_, bool>(offset + 8),
        "is_custom_galaxy": r.get::<_, bool>(offset + 9),
        "local_only": r.get::<_, bool>(offset + 10),
    })
}

fn linked_tag(r: &Row) -> (Value, bool) {
    let mut tag = tag_json(r, 1);
    let local: bool = r.get(12);
    tag["local"] = json!(local);
    tag["relationship_type"] = json!(r.get::<_, Option<String>>(13));
    let exportable: bool = r.get(4);
    (tag, exportable)
}

pub const ATTRIBUTE_COLUMNS: &str = "a.id, a.uuid, a.event_id, a.object_id, a.object_relation, a.category, a.type, a.value1, \
    a.value2, a.to_ids, a.comment, a.distribution, a.sharing_group_id, a.timestamp, a.deleted, a.disable_correlation, \
    a.first_seen, a.last_seen";

/// An `rm.attributes` row in MISP's Attribute shape (without nested lists), and its access fields.
pub fn attribute_json(r: &Row) -> (Value, ElementAccess, i64) {
    let a = cairn_domain::event::Attribute {
        id: r.get(0),
        uuid: r.get(1),
        event_id: r.get(2),
        object_id: r.get(3),
        object_relation: r.get(4),
        category: r.get(5),
        attr_type: r.get(6),
        value1: r.get(7),
        value2: r.get(8),
        to_ids: r.get(9),
        comment: r.get(10),
        distribution: r.get::<_, i16>(11) as u8,
        sharing_group_id: r.get(12),
        timestamp: r.get(13),
        deleted: r.get(14),
        disable_correlation: r.get(15),
        first_seen: r.get(16),
        last_seen: r.get(17),
        tags: Vec::new(),
    };
    (attribute_model_json(&a), ElementAccess { distribution: a.distribution, sharing_group_id: a.sharing_group_id }, a.object_id)
}

/// An attribute in MISP's Attribute shape (without nested lists), from the domain record (a read
/// model row or a change just recorded).
pub fn attribute_model_json(a: &cairn_domain::event::Attribute) -> Value {
    json!({
        "id": a.id.to_string(),
        "type": a.attr_type,
        "category": a.category,
        "to_ids": a.to_ids,
        "uuid": a.uuid,
        "event_id": a.event_id.to_string(),
        "distribution": a.distribution.to_string(),
        "timestamp": a.timestamp.to_string(),
        "comment": a.comment,
        "sharing_group_id": a.sharing_group_id.to_string(),
        "deleted": a.deleted,
        "disable_correlation": a.disable_correlation,
        "object_id": a.object_id.to_string(),
        "object_relation": a.object_relation,
        "first_seen": seen(a.first_seen),
        "last_seen": seen(a.last_seen),
        "value": a.value(),
    })
}

pub const OBJECT_COLUMNS: &str = "o.id, o.uuid, o.event_id, o.name, o.meta_category, o.description, o.template_uuid, \
    o.template_version, o.timestamp, o.distribution, o.sharing_group_id, o.comment, o.deleted, o.first_seen, o.last_seen";

pub fn object_json(r: &Row) -> (Value, ElementAccess) {
    let distribution: i16 = r.get(9);
    let sg: i64 = r.get(10);
    let v = json!({
        "id": r.get::<_, i64>(0).to_string(),
        "name": r.get::<_, String>(3),
        "meta-category": r.get::<_, String>(4),
        "description": r.get::<_, String>(5),
        "template_uuid": r.get::<_, Option<Uuid>>(6),
        "template_version": r.get::<_, String>(7),
        "event_id": r.get::<_, i64>(2).to_string(),
        "uuid": r.get::<_, Uuid>(1),
        "timestamp": r.get::<_, i64>(8).to_string(),
        "distribution": distribution.to_string(),
        "sharing_group_id": sg.to_string(),
        "comment": r.get::<_, String>(11),
        "deleted": r.get::<_, bool>(12),
        "first_seen": seen(r.get(13)),
        "last_seen": seen(r.get(14)),
    });
    (v, ElementAccess { distribution: distribution as u8, sharing_group_id: sg })
}

fn reference_json(r: &Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "uuid": r.get::<_, Uuid>(1),
        "timestamp": r.get::<_, i64>(10).to_string(),
        "object_id": r.get::<_, i64>(3).to_string(),
        "event_id": r.get::<_, i64>(2).to_string(),
        "source_uuid": r.get::<_, Uuid>(4),
        "object_uuid": r.get::<_, Uuid>(4),
        "referenced_uuid": r.get::<_, Uuid>(5),
        "referenced_id": r.get::<_, i64>(6).to_string(),
        "referenced_type": r.get::<_, i16>(7).to_string(),
        "relationship_type": r.get::<_, String>(8),
        "comment": r.get::<_, String>(9),
        "deleted": r.get::<_, bool>(11),
    })
}

/// Tags of the given attributes (or of all attributes of an Event), keyed by attribute id.
async fn attribute_tags(
    client: &impl GenericClient,
    event_id: i64,
    all_tags: bool,
) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT at.attribute_id, {TAG_COLUMNS}, at.local, at.relationship_type FROM rm.attribute_tags at \
             JOIN rm.tags t ON t.id = at.tag_id AND NOT t.deleted WHERE at.event_id = $1 ORDER BY at.attribute_id, t.id"
        ))
        .await?;
    let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in client.query(&stmt, &[&event_id]).await? {
        let (tag, exportable) = linked_tag(&r);
        if exportable || all_tags {
            out.entry(r.get(0)).or_default().push(tag);
        }
    }
    Ok(out)
}

/// Event tags in MISP's `Tag` shape.
pub async fn event_tags(client: &impl GenericClient, event_id: i64, all_tags: bool) -> Result<Vec<Value>, ApiError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT et.event_id, {TAG_COLUMNS}, et.local, et.relationship_type FROM rm.event_tags et \
             JOIN rm.tags t ON t.id = et.tag_id AND NOT t.deleted WHERE et.event_id = $1 ORDER BY t.id"
        ))
        .await?;
    Ok(client
        .query(&stmt, &[&event_id])
        .await?
        .iter()
        .map(linked_tag)
        .filter(|(_, exportable)| *exportable || all_tags)
        .map(|(t, _)| t)
        .collect())
}

/// Whether a rendered tag is one of `blocked` (lower-cased names or `%` patterns).
fn blocked(blocked: &[String], tag: &Value) -> bool {
    let name = tag.get("name").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    blocked.iter().any(|b| cairn_domain::correlation::excluded(b, &name))
}

fn include_deleted(options: &ViewOptions, deleted: bool) -> bool {
    if options.only_deleted {
        deleted
    } else {
        options.deleted || !deleted
    }
}

/// The whole Event as `viewer` may see it (`None`: invisible or missing — callers answer 404).
///
/// # Errors
/// Database errors.
pub async fn event_json(
    client: &impl GenericClient,
    viewer: &Viewer,
    settings: &AccessSettings,
    event: &EventRow,
    options: &ViewOptions,
) -> Result<Option<Value>, ApiError> {
    if !acl::event_visible(viewer, &event.access, settings) {
        return Ok(None);
    }
    let mut e = event.row.as_object().cloned().unwrap_or_default();
    let orgs = org_shorts(client, &[event.access.org_id, event.orgc_id]).await?;
    e.insert("Org".into(), orgs.get(&event.access.org_id).cloned().unwrap_or(Value::Null));
    e.insert("Orgc".into(), orgs.get(&event.orgc_id).cloned().unwrap_or(Value::Null));
    // Deleted attributes are visible only to the owner organisation (and site admins).
    let owner = viewer.site_admin || viewer.org_id == event.access.org_id;
    let options = if owner { options.clone() } else { ViewOptions { deleted: false, only_deleted: false, ..options.clone() } };
    let mut new_attribute_proposals = Vec::new();
    if !options.metadata {
        let stmt = client
            .prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM rm.objects o WHERE o.event_id = $1 ORDER BY o.id"))
            .await?;
        let mut objects: Vec<(i64, Map<String, Value>, ElementAccess, bool)> = Vec::new();
        for r in client.query(&stmt, &[&event.id]).await? {
            let (v, access) = object_json(&r);
            let deleted: bool = r.get(12);
            if acl::object_visible(viewer, &event.access, &access, settings) {
                objects.push((r.get(0), v.as_object().cloned().unwrap_or_default(), access, deleted));
            }
        }
        let object_access: HashMap<i64, ElementAccess> = objects.iter().map(|(id, _, a, _)| (*id, *a)).collect();
        let mut tags = attribute_tags(client, event.id, options.all_tags).await?;
        let mut proposals = crate::collab::event_proposals(client, event.id).await?;
        let mut sightings: HashMap<i64, Vec<(i64, Value)>> = HashMap::new();
        if !options.no_sightings {
            for (attribute_id, org_id, s) in crate::collab::event_sightings(client, event.id).await? {
                sightings.entry(attribute_id).or_default().push((org_id, s));
            }
        }
        new_attribute_proposals = proposals.remove(&0).unwrap_or_default();
        let reported = options.sightings.policy == cairn_domain::acl::SightingPolicy::SightingReporter
            && !sightings.is_empty()
            && crate::collab::org_reported(client, event.id, viewer.org_id).await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a WHERE a.event_id = $1 ORDER BY a.id"))
            .await?;
        let mut standalone = Vec::new();
        let mut by_object: HashMap<i64, Vec<Value>> = HashMap::new();
        for r in client.query(&stmt, &[&event.id]).await? {
            let (mut v, access, object_id) = attribute_json(&r);
            let deleted: bool = r.get(14);
            let object = if object_id == 0 {
                None
            } else {
                match object_access.get(&object_id) {
                    Some(a) => Some(a),
                    None => continue, // invisible object: its attributes go with it
                }
            };
            if !acl::attribute_visible(viewer, &event.access, &access, object, settings) || !include_deleted(&options, deleted) {
                continue;
            }
            if options.to_ids.is_some_and(|wanted| r.get::<_, bool>(9) != wanted) {
                continue;
            }
            let id: i64 = r.get(0);
            let attribute_tags = tags.remove(&id).unwrap_or_default();
            if !options.blocked_tags.is_empty() && attribute_tags.iter().any(|t| blocked(&options.blocked_tags, t)) {
                continue;
            }
            v["Tag"] = Value::Array(attribute_tags);
            v["Galaxy"] = json!([]);
            v["ShadowAttribute"] = Value::Array(proposals.remove(&id).unwrap_or_default());
            if !options.no_sightings {
                let visible: Vec<Value> = sightings
                    .remove(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(org_id, _)| acl::sighting_visible(viewer, &event.access, &access, object, settings, &options.sightings, *org_id, reported))
                    .map(|(_, s)| s)
                    .collect();
                v["Sighting"] = Value::Array(visible);
            }
            if object_id == 0 {
                standalone.push(v);
            } else {
                by_object.entry(object_id).or_default().push(v);
            }
        }
        let stmt = client
            .prepare_cached(
                "SELECT id, uuid, event_id, object_id, object_uuid, referenced_uuid, referenced_id, referenced_type, \
                 relationship_type, comment, timestamp, deleted FROM rm.object_references WHERE event_id = $1 ORDER BY id",
            )
            .await?;
        let mut refs: HashMap<i64, Vec<Value>> = HashMap::new();
        for r in client.query(&stmt, &[&event.id]).await? {
            let deleted: bool = r.get(11);
            if include_deleted(&options, deleted) && !(options.only_deleted && !deleted) {
                refs.entry(r.get(3)).or_default().push(reference_json(&r));
            }
        }
        let mut object_list = Vec::new();
        for (id, mut o, _, deleted) in objects {
            let attributes = by_object.remove(&id).unwrap_or_default();
            if !include_deleted(&options, deleted) && !(options.only_deleted && !attributes.is_empty()) {
                continue;
            }
            o.insert("ObjectReference".into(), Value::Array(refs.remove(&id).unwrap_or_default()));
            o.insert("Attribute".into(), Value::Array(attributes));
            object_list.push(Value::Object(o));
        }
        e.insert("Attribute".into(), Value::Array(standalone));
        e.insert("Object".into(), Value::Array(object_list));
    }
    // Proposals of new attributes (those of existing ones sit on their attribute).
    e.insert("ShadowAttribute".into(), Value::Array(new_attribute_proposals));
    e.insert("RelatedEvent".into(), json!([]));
    e.insert("Galaxy".into(), json!([]));
    e.insert("EventReport".into(), json!([]));
    e.insert("CryptographicKey".into(), json!([]));
    e.insert("Tag".into(), Value::Array(event_tags(client, event.id, options.all_tags).await?));
    Ok(Some(json!({ "Event": Value::Object(e) })))
}

/// Flat rows of `events/index` (no Attribute/Object; `EventTag` with exportable tags), in the order
/// given: one query for all their tags.
///
/// # Errors
/// Database errors.
pub async fn index_rows(client: &impl GenericClient, events: &[EventRow], orgs: &HashMap<i64, Value>) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let stmt = client
        .prepare_cached(&format!(
            "SELECT et.event_id, {TAG_COLUMNS}, et.local, et.relationship_type FROM rm.event_tags et \
             JOIN rm.tags t ON t.id = et.tag_id AND NOT t.deleted WHERE et.event_id = ANY($1) ORDER BY et.event_id, t.id"
        ))
        .await?;
    let mut tags: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in client.query(&stmt, &[&ids]).await? {
        let (t, exportable) = linked_tag(&r);
        if exportable {
            tags.entry(r.get(0)).or_default().push(t);
        }
    }
    Ok(events.iter().map(|e| index_row(e, orgs, tags.remove(&e.id).unwrap_or_default())).collect())
}

/// One flat row of `events/index` with its (exportable) tags.
fn index_row(event: &EventRow, orgs: &HashMap<i64, Value>, tags: Vec<Value>) -> Value {
    let mut e = event.row.as_object().cloned().unwrap_or_default();
    e.insert("Org".into(), orgs.get(&event.access.org_id).cloned().unwrap_or(Value::Null));
    e.insert("Orgc".into(), orgs.get(&event.orgc_id).cloned().unwrap_or(Value::Null));
    let event_tags: Vec<Value> = tags
        .into_iter()
        .map(|t| {
            json!({"id": t["id"], "event_id": event.id.to_string(), "tag_id": t["id"], "local": t["local"],
                   "relationship_type": t["relationship_type"],
                   "Tag": {"id": t["id"], "name": t["name"], "colour": t["colour"], "is_galaxy": t["is_galaxy"]}})
        })
        .collect();
    e.insert("EventTag".into(), Value::Array(event_tags));
    Value::Object(e)
}

/// Renders a standalone attribute (`attributes/view`, `attributes/add` responses) with its tags.
pub async fn attribute_view(
    client: &impl GenericClient,
    viewer: &Viewer,
    settings: &AccessSettings,
    key: &str,
    include_deleted_rows: bool,
) -> Result<Option<Value>, ApiError> {
    let key = key.trim();
    let row = if let Ok(uuid) = Uuid::parse_str(key) {
        let stmt = client.prepare_cached(&format!("SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a WHERE a.uuid = $1")).await?;
        client.query_opt(&stmt, &[&uuid]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        let stmt = client.prepare_cached(&format!("SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a WHERE a.id = $1")).await?;
        client.query_opt(&stmt, &[&id]).await?
    } else {
        None
    };
    let Some(row) = row else { return Ok(None) };
    let (mut v, access, object_id) = attribute_json(&row);
    let deleted: bool = row.get(14);
    let event_id: i64 = row.get(2);
    let Some(event) = find_event(client, &event_id.to_string()).await? else { return Ok(None) };
    let object = if object_id == 0 {
        None
    } else {
        let stmt = client.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM rm.objects o WHERE o.id = $1")).await?;
        client.query_opt(&stmt, &[&object_id]).await?.map(|r| object_json(&r).1)
    };
    if object_id != 0 && object.is_none() {
        return Ok(None);
    }
    if !acl::attribute_visible(viewer, &event.access, &access, object.as_ref(), settings) {
        return Ok(None);
    }
    let owner = viewer.site_admin || viewer.org_id == event.access.org_id;
    if deleted && !(include_deleted_rows && owner) {
        return Ok(None);
    }
    let id: i64 = row.get(0);
    let stmt = client
        .prepare_cached(&format!(
            "SELECT at.attribute_id, {TAG_COLUMNS}, at.local, at.relationship_type FROM rm.attribute_tags at \
             JOIN rm.tags t ON t.id = at.tag_id AND NOT t.deleted WHERE at.attribute_id = $1 ORDER BY t.id"
        ))
        .await?;
    let tags: Vec<Value> =
        client.query(&stmt, &[&id]).await?.iter().map(linked_tag).filter(|(_, e)| *e).map(|(t, _)| t).collect();
    v["Tag"] = Value::Array(tags);
    Ok(Some(v))
}

/// Renders one Object with its (visible) attributes and references.
pub async fn object_view(
    client: &impl GenericClient,
    viewer: &Viewer,
    settings: &AccessSettings,
    key: &str,
    deleted: bool,
) -> Result<Option<Value>, ApiError> {
    let key = key.trim();
    let row = if let Ok(uuid) = Uuid::parse_str(key) {
        let stmt = client.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM rm.objects o WHERE o.uuid = $1")).await?;
        client.query_opt(&stmt, &[&uuid]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        let stmt = client.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM rm.objects o WHERE o.id = $1")).await?;
        client.query_opt(&stmt, &[&id]).await?
    } else {
        None
    };
    let Some(row) = row else { return Ok(None) };
    let (v, access) = object_json(&row);
    let object_deleted: bool = row.get(12);
    let event_id: i64 = row.get(2);
    let Some(event) = find_event(client, &event_id.to_string()).await? else { return Ok(None) };
    if !acl::object_visible(viewer, &event.access, &access, settings) {
        return Ok(None);
    }
    let owner = viewer.site_admin || viewer.org_id == event.access.org_id;
    if object_deleted && !(deleted && owner) {
        return Ok(None);
    }
    let id: i64 = row.get(0);
    let options = ViewOptions { deleted: deleted && owner, ..Default::default() };
    let mut tags = attribute_tags(client, event_id, false).await?;
    let stmt = client
        .prepare_cached(&format!("SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a WHERE a.object_id = $1 ORDER BY a.id"))
        .await?;
    let mut attributes = Vec::new();
    for r in client.query(&stmt, &[&id]).await? {
        let (mut a, a_access, _) = attribute_json(&r);
        let a_deleted: bool = r.get(14);
        if !acl::attribute_visible(viewer, &event.access, &a_access, Some(&access), settings) || !include_deleted(&options, a_deleted) {
            continue;
        }
        a["Tag"] = Value::Array(tags.remove(&r.get::<_, i64>(0)).unwrap_or_default());
        attributes.push(a);
    }
    let stmt = client
        .prepare_cached(
            "SELECT id, uuid, event_id, object_id, object_uuid, referenced_uuid, referenced_id, referenced_type, \
             relationship_type, comment, timestamp, deleted FROM rm.object_references WHERE object_id = $1 ORDER BY id",
        )
        .await?;
    let refs: Vec<Value> = client
        .query(&stmt, &[&id])
        .await?
        .iter()
        .filter(|r| include_deleted(&options, r.get(11)))
        .map(reference_json)
        .collect();
    let mut o = v.as_object().cloned().unwrap_or_default();
    o.insert("Attribute".into(), Value::Array(attributes));
    o.insert("ObjectReference".into(), Value::Array(refs));
    Ok(Some(Value::Object(o)))
}

