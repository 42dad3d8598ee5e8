//! Collaboration records (proposals, sightings, delegations, threads and posts) in MISP's JSON shapes,
//! read from their read models. Visibility is decided by the callers with the one access rule
//! ([`cairn_domain::acl`]); these functions only read and shape.

use crate::error::ApiError;
use serde_json::{Value, json};
use std::collections::HashMap;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::render::seen;

pub const PROPOSAL_COLUMNS: &str = "s.id, s.uuid, s.event_id, s.event_uuid, s.old_id, s.event_org_id, s.category, s.type, s.value1, \
    s.value2, s.to_ids, s.comment, s.disable_correlation, s.first_seen, s.last_seen, s.proposal_to_delete, s.org_id, s.user_id, \
    s.email, s.timestamp, s.deleted, s.base_revision, s.base_timestamp";

/// A `rm.shadow_attributes` row (as [`PROPOSAL_COLUMNS`]) in MISP's `ShadowAttribute` shape.
pub fn proposal_json(r: &Row) -> Value {
    let value1: String = r.get(8);
    let value2: String = r.get(9);
    let value = if value2.is_empty() { value1 } else { format!("{value1}|{value2}") };
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "old_id": r.get::<_, i64>(4).to_string(),
        "event_id": r.get::<_, i64>(2).to_string(),
        "type": r.get::<_, String>(7),
        "category": r.get::<_, String>(6),
        "value": value,
        "to_ids": r.get::<_, bool>(10),
        "uuid": r.get::<_, uuid::Uuid>(1),
        "event_uuid": r.get::<_, uuid::Uuid>(3),
        "event_org_id": r.get::<_, i64>(5).to_string(),
        "comment": r.get::<_, String>(11),
        "org_id": r.get::<_, i64>(16).to_string(),
        "email": r.get::<_, String>(18),
        "deleted": r.get::<_, bool>(20),
        "proposal_to_delete": r.get::<_, bool>(15),
        "disable_correlation": r.get::<_, bool>(12),
        "timestamp": r.get::<_, i64>(19).to_string(),
        "first_seen": seen(r.get(13)),
        "last_seen": seen(r.get(14)),
        "base_revision": r.get::<_, i64>(21).to_string(),
        "base_timestamp": r.get::<_, i64>(22).to_string(),
    })
}

/// Short organisation records (`{id, name, uuid, local}`) by id.
pub async fn orgs(client: &impl GenericClient, ids: &[i64]) -> Result<HashMap<i64, Value>, ApiError> {
    let stmt = client.prepare_cached("SELECT id, name, uuid, local FROM rm.organisations WHERE id = ANY($1)").await?;
    Ok(client
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            (id, json!({"id": id.to_string(), "name": r.get::<_, String>(1), "uuid": r.get::<_, uuid::Uuid>(2), "local": r.get::<_, bool>(3)}))
        })
        .collect())
}

/// An Event's pending proposals, with their proposing `Org`, keyed by the attribute they change
/// (0: proposals of new attributes).
pub async fn event_proposals(client: &impl GenericClient, event_id: i64) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {PROPOSAL_COLUMNS} FROM rm.shadow_attributes s WHERE s.event_id = $1 AND NOT s.deleted ORDER BY s.id"))
        .await?;
    let rows = client.query(&stmt, &[&event_id]).await?;
    let mut org_ids: Vec<i64> = rows.iter().map(|r| r.get(16)).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = orgs(client, &org_ids).await?;
    let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in &rows {
        let mut v = proposal_json(r);
        v["Org"] = orgs.get(&r.get::<_, i64>(16)).cloned().unwrap_or(Value::Null);
        out.entry(r.get(4)).or_default().push(v);
    }
    Ok(out)
}

pub const SIGHTING_COLUMNS: &str = "g.id, g.uuid, g.event_id, g.attribute_id, g.org_id, g.type, g.source, g.date_sighting, g.attribute_uuid, g.event_uuid";

/// A `rm.sightings` row (as [`SIGHTING_COLUMNS`]) in MISP's `Sighting` shape.
pub fn sighting_json(r: &Row, orgs: &HashMap<i64, Value>) -> Value {
    let org_id: i64 = r.get(4);
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "uuid": r.get::<_, uuid::Uuid>(1),
        "event_id": r.get::<_, i64>(2).to_string(),
        "attribute_id": r.get::<_, i64>(3).to_string(),
        "org_id": org_id.to_string(),
        "type": r.get::<_, i16>(5).to_string(),
        "source": r.get::<_, String>(6),
        "date_sighting": r.get::<_, i64>(7).to_string(),
        "attribute_uuid": r.get::<_, uuid::Uuid>(8),
        "event_uuid": r.get::<_, uuid::Uuid>(9),
        "Organisation": orgs.get(&org_id).cloned().unwrap_or(Value::Null),
    })
}

/// An Event's sightings: (attribute id, sighting org id, JSON), in id order.
pub async fn event_sightings(client: &impl GenericClient, event_id: i64) -> Result<Vec<(i64, i64, Value)>, ApiError> {
    let stmt = client.prepare_cached(&format!("SELECT {SIGHTING_COLUMNS} FROM rm.sightings g WHERE g.event_id = $1 ORDER BY g.id")).await?;
    let rows = client.query(&stmt, &[&event_id]).await?;
    let mut org_ids: Vec<i64> = rows.iter().map(|r| r.get(4)).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = orgs(client, &org_ids).await?;
    Ok(rows.iter().map(|r| (r.get(3), r.get(4), sighting_json(r, &orgs))).collect())
}

/// Whether `org_id` has reported a sighting on the Event (sighting policy 1).
pub async fn org_reported(client: &impl GenericClient, event_id: i64, org_id: i64) -> Result<bool, ApiError> {
    let stmt = client.prepare_cached("SELECT EXISTS (SELECT 1 FROM rm.sightings WHERE event_id = $1 AND org_id = $2)").await?;
    Ok(client.query_one(&stmt, &[&event_id, &org_id]).await?.get(0))
}

pub const DELEGATION_COLUMNS: &str = "d.id, d.event_id, d.org_id, d.requester_org_id, d.message, d.distribution, d.sharing_group_id, d.status, d.event_uuid";

/// A `rm.event_delegations` row (as [`DELEGATION_COLUMNS`]) in MISP's `EventDelegation` shape.
pub fn delegation_json(r: &Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "event_id": r.get::<_, i64>(1).to_string(),
        "org_id": r.get::<_, i64>(2).to_string(),
        "requester_org_id": r.get::<_, i64>(3).to_string(),
        "message": r.get::<_, String>(4),
        "distribution": r.get::<_, i16>(5).to_string(),
        "sharing_group_id": r.get::<_, i64>(6).to_string(),
    })
}

pub const POST_COLUMNS: &str = "p.id, p.thread_id, p.event_id, p.user_id, p.org_id, p.contents, p.post_id, p.date_created, p.date_modified";

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// A `rm.posts` row (as [`POST_COLUMNS`]) in MISP's `Post` shape.
pub fn post_json(r: &Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "thread_id": r.get::<_, i64>(1).to_string(),
        "user_id": r.get::<_, i64>(3).to_string(),
        "org_id": r.get::<_, i64>(4).to_string(),
        "contents": r.get::<_, String>(5),
        "post_id": r.get::<_, i64>(6).to_string(),
        "date_created": date(r.get(7)),
        "date_modified": date(r.get(8)),
    })
}

pub const THREAD_COLUMNS: &str = "t.id, t.event_id, t.title, t.org_id, t.user_id, t.date_created, t.date_modified, t.post_count";

/// A `rm.threads` row (as [`THREAD_COLUMNS`]) in MISP's `Thread` shape.
pub fn thread_json(r: &Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "event_id": r.get::<_, i64>(1).to_string(),
        "title": r.get::<_, String>(2),
        "org_id": r.get::<_, i64>(3).to_string(),
        "user_id": r.get::<_, i64>(4).to_string(),
        "date_created": date(r.get(5)),
        "date_modified": date(r.get(6)),
        "post_count": r.get::<_, i64>(7).to_string(),
        "distribution": "0",
        "sharing_group_id": "0",
    })
}
