//! What a batch of changes means for the feeds and the cached exports.
//!
//! For every Event a batch touches, and for every audience — `public` (distribution "All
//! communities"), `community` (every organisation here), `org.<uuid>` (each local organisation,
//! sharing groups included) — the Event is rendered exactly as restSearch renders it for that
//! audience, and compared with what the audience last received (`exp.feed_state`):
//!
//! * published and visible, and different from what was sent: an `event` message, plus a `retract`
//!   for each attribute the audience had and no longer sees;
//! * no longer published, deleted, or no longer visible, but sent before: a `retract` of the Event.
//!
//! Sightings of a published Event go as `sighting` messages to the audiences that hold the Event and
//! may see the sighting ([`acl::sighting_visible`]). Messages are written to the outbox in the
//! projector's transaction ([`crate::outbox`] publishes them). The `public` audience also maintains
//! the MISP feed (`exp.misp_feed`), and every touched Event marks the cached exports of the
//! organisations that see it — before or after — stale (`exp.exports.dirty_position`).
//!
//! Unpublished states never leave: an edit unpublishes an Event (as in MISP), which retracts it from
//! the feeds until it is published again.

use cairn_api::search::{self, Params, Requester, Scope, stream};
use cairn_api::state::AppState;
use cairn_domain::acl::{self, AccessSettings, EventAccess, SightingPolicy, SightingSettings, Viewer};
use cairn_domain::sighting::Sighting;
use cairn_domain::{Change, stream as streams};
use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::ApplyError;
use cairn_eventlog::subjects::{Audience, feed_subject};
use deadpool_postgres::Transaction;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// MISP's default NIDS sid base (the cached exports are per organisation, not per user).
pub const DEFAULT_NIDS_SID: i64 = 4_000_000;

/// The read model every render reads.
const INDEXER: &str = "indexer";

fn api(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Invalid(e.to_string())
}

/// What a batch touches.
#[derive(Default)]
struct Batch {
    /// Event uuid → the last position touching it.
    events: BTreeMap<Uuid, i64>,
    /// The first change that may change visibility everywhere (sharing groups, organisations, tags,
    /// instance settings).
    global: Option<i64>,
    sightings: Vec<(i64, Sighting)>,
    last: i64,
}

fn collect(changes: &[StoredChange]) -> Result<Batch, ApplyError> {
    let mut b = Batch::default();
    for stored in changes {
        b.last = stored.position;
        match stored.stream_type.as_str() {
            streams::EVENT => {
                b.events.insert(stored.stream_id, stored.position);
            }
            streams::SIGHTINGS => {
                let change = Change::from_record(&stored.change_type, stored.schema_version, &stored.payload).map_err(api)?;
                if let Change::SightingAdded(s) = change {
                    // Sightings show in the Event's JSON too: the exports holding it change.
                    b.events.insert(s.event_uuid, stored.position);
                    b.sightings.push((stored.position, s));
                }
            }
            streams::SHARING_GROUP | streams::ORGANISATION | streams::TAG | streams::INSTANCE => {
                b.global.get_or_insert(stored.position);
            }
            _ => {}
        }
    }
    Ok(b)
}

/// The audiences of this instance, with the viewer each renders as.
struct Audiences {
    list: Vec<(Audience, Viewer)>,
    /// Local organisations' ids (the views of cached exports).
    orgs: Vec<(i64, Viewer)>,
    access: AccessSettings,
    sightings: SightingSettings,
}

/// Someone with no organisation here and no sharing group: sees distributions 1–3.
fn outsider() -> Viewer {
    Viewer { org_id: 0, site_admin: false, sharing_groups: BTreeSet::new() }
}

async fn audiences(state: &AppState, tx: &Transaction<'_>) -> Result<Audiences, ApplyError> {
    let rows = tx.query("SELECT id, uuid FROM rm.organisations WHERE local AND NOT deleted ORDER BY id", &[]).await?;
    let mut list = vec![(Audience::Public, outsider()), (Audience::Community, outsider())];
    let mut orgs = Vec::new();
    for r in rows {
        let (id, uuid): (i64, Uuid) = (r.get(0), r.get(1));
        let viewer = cairn_api::handlers::support::org_viewer(state, id).await.map_err(api)?;
        list.push((Audience::Org(uuid), viewer.clone()));
        orgs.push((id, viewer));
    }
    let access = cairn_api::handlers::support::access_settings(state).await.map_err(api)?;
    let sightings = cairn_api::handlers::support::sighting_settings(state).await.map_err(api)?;
    Ok(Audiences { list, orgs, access, sightings })
}

/// What a batch needs, read once and only when needed.
struct Cx<'a> {
    state: &'a AppState,
    audiences: Option<Audiences>,
    /// Whether any cached export exists (if none, nothing can go stale).
    exports: bool,
}

impl Cx<'_> {
    async fn audiences(&mut self, tx: &Transaction<'_>) -> Result<&Audiences, ApplyError> {
        if self.audiences.is_none() {
            self.audiences = Some(audiences(self.state, tx).await?);
        }
        Ok(self.audiences.as_ref().expect("just set"))
    }
}

/// Feed messages of this batch, numbered for the outbox.
#[derive(Default)]
struct Outbox {
    /// The next seq to write, read from the outbox on the first message of the batch (most batches
    /// send nothing and need not ask).
    next: Option<i64>,
    /// The last seq this batch wrote.
    written: Option<i64>,
}

impl Outbox {
    async fn push(&mut self, tx: &Transaction<'_>, position: i64, audience: &Audience, kind: &str, uuid: Uuid, payload: &Value) -> Result<(), ApplyError> {
        let next = match self.next {
            Some(n) => n,
            None => tx.query_one("SELECT coalesce(max(seq), 0) + 1 FROM exp.feed_outbox", &[]).await?.get(0),
        };
        let msg_id = format!("{position}:{}:{kind}:{uuid}", audience.token());
        let inserted = tx
            .execute(
                "INSERT INTO exp.feed_outbox (seq, msg_id, subject, payload, position) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (msg_id) DO NOTHING",
                &[&next, &msg_id, &feed_subject(audience, kind), &payload.to_string(), &position],
            )
            .await?;
        if inserted == 1 {
            self.written = Some(next);
            self.next = Some(next + 1);
        } else {
            self.next = Some(next);
        }
        Ok(())
    }
}

/// An Event's row in the indexer's read model.
struct EventRow {
    id: i64,
    access: EventAccess,
}

const EVENT_ROW: &str = "SELECT uuid, id, org_id, distribution, sharing_group_id, published, delegate_org_id FROM rm.events";

fn to_event_row(r: &deadpool_postgres::tokio_postgres::Row) -> EventRow {
    EventRow {
        id: r.get(1),
        access: EventAccess {
            org_id: r.get(2),
            distribution: r.get::<_, i16>(3) as u8,
            sharing_group_id: r.get(4),
            published: r.get(5),
            delegate_org_id: r.get(6),
        },
    }
}

async fn event_row(tx: &Transaction<'_>, uuid: Uuid) -> Result<Option<EventRow>, ApplyError> {
    let stmt = tx.prepare_cached(&format!("{EVENT_ROW} WHERE uuid = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&uuid]).await?.as_ref().map(to_event_row))
}

/// What a batch's Events look like now: their rows and what each audience was last sent, read with
/// one statement each for the whole batch.
#[derive(Default)]
struct Known {
    rows: HashMap<Uuid, EventRow>,
    sent: HashMap<Uuid, HashMap<String, Sent>>,
}

async fn known(tx: &Transaction<'_>, uuids: &[Uuid]) -> Result<Known, ApplyError> {
    let mut known = Known::default();
    let rows = tx.prepare_cached(&format!("{EVENT_ROW} WHERE uuid = ANY($1)")).await?;
    for r in tx.query(&rows, &[&uuids]).await? {
        known.rows.insert(r.get(0), to_event_row(&r));
    }
    let sent = tx.prepare_cached("SELECT event_uuid, audience, digest, attributes FROM exp.feed_state WHERE event_uuid = ANY($1)").await?;
    for r in tx.query(&sent, &[&uuids]).await? {
        known.sent.entry(r.get(0)).or_default().insert(r.get(1), Sent { digest: r.get(2), attributes: r.get(3) });
    }
    Ok(known)
}

/// The Event as restSearch (`eventid`, `noSightings`) answers it for `viewer` (`None`: not visible).
///
/// # Errors
/// Database errors.
pub async fn render(state: &AppState, viewer: &Viewer, event_id: i64) -> Result<Option<Value>, ApplyError> {
    let mut map = Map::new();
    map.insert("eventid".into(), json!(event_id.to_string()));
    map.insert("returnFormat".into(), json!("json"));
    // Sightings travel as their own messages: one must not re-send the whole Event.
    map.insert("noSightings".into(), json!(true));
    let requester = Requester { viewer: viewer.clone(), nids_sid: DEFAULT_NIDS_SID };
    let prepared = search::prepare(state, requester, Params::from_map(map), Scope::Event).await.map_err(api)?;
    let mut buf = Vec::new();
    stream::to_writer(|c| prepared.write(c), &mut buf).await.map_err(api)?;
    let v: Value = serde_json::from_slice(&buf).map_err(api)?;
    Ok(v["response"].get(0).cloned())
}

fn distribution(v: &Value) -> Option<u8> {
    match v.get("distribution")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        _ => None,
    }
}

/// What may leave the instance: the Event as an outsider sees it, without the elements limited to
/// this community (distribution 1–2) and without local context (related Events, proposals).
pub fn public_view(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let shared = |v: &Value| matches!(distribution(v), Some(3 | 5));
    if let Some(e) = doc.get_mut("Event").and_then(Value::as_object_mut) {
        for key in ["RelatedEvent", "ShadowAttribute", "EventReport"] {
            e.remove(key);
        }
        if let Some(Value::Array(list)) = e.get_mut("Attribute") {
            list.retain(shared);
            for a in list.iter_mut() {
                if let Some(a) = a.as_object_mut() {
                    a.remove("ShadowAttribute");
                }
            }
        }
        if let Some(Value::Array(objects)) = e.get_mut("Object") {
            objects.retain(shared);
            for o in objects.iter_mut() {
                if let Some(Value::Array(list)) = o.get_mut("Attribute") {
                    list.retain(shared);
                }
            }
        }
    }
    doc
}

/// The uuids of every attribute in an Event document (in Objects too).
pub fn attribute_uuids(doc: &Value) -> Vec<Uuid> {
    let e = &doc["Event"];
    let top = e["Attribute"].as_array().into_iter().flatten();
    let inner = e["Object"].as_array().into_iter().flatten().flat_map(|o| o["Attribute"].as_array().into_iter().flatten());
    top.chain(inner).filter_map(|a| a["uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok())).collect()
}

fn digest(doc: &Value) -> String {
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

struct Sent {
    digest: String,
    attributes: Vec<Uuid>,
}

/// Applies one batch (inside the projector's transaction).
///
/// # Errors
/// Database errors; [`ApplyError::NotReady`] while the indexer has not reached the batch.
/// Returns the last outbox seq this batch wrote (`None`: it wrote none).
pub async fn apply(state: &AppState, tx: &Transaction<'_>, changes: &[StoredChange]) -> Result<Option<i64>, ApplyError> {
    let mut batch = collect(changes)?;
    if batch.events.is_empty() && batch.global.is_none() {
        return Ok(None);
    }
    if !state.watcher.wait_for(INDEXER, batch.last, Duration::from_secs(10)).await {
        return Err(ApplyError::NotReady(format!("the indexer has not reached position {}", batch.last)));
    }
    if batch.global.is_some() {
        // Visibility may have changed everywhere: read memberships and settings afresh.
        state.sharing_groups.invalidate();
        state.instance.invalidate();
    }
    let exists = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM exp.exports)").await?;
    let exports: bool = tx.query_one(&exists, &[]).await?.get(0);
    let mut cx = Cx { state, audiences: None, exports };
    let mut outbox = Outbox::default();
    if let Some(position) = batch.global {
        tx.execute("UPDATE exp.exports SET dirty_position = coalesce(dirty_position, $1)", &[&position]).await?;
        // Events the feeds hold may have narrowed; Events shared with a sharing group may have widened.
        let rows = tx
            .query(
                "SELECT DISTINCT event_uuid FROM exp.feed_state UNION SELECT uuid FROM rm.events WHERE published AND distribution = 4",
                &[],
            )
            .await?;
        for r in rows {
            batch.events.entry(r.get(0)).or_insert(batch.last);
        }
    }
    let uuids: Vec<Uuid> = batch.events.keys().copied().collect();
    let mut known = if uuids.is_empty() { Known::default() } else { known(tx, &uuids).await? };
    for (&uuid, &position) in &batch.events {
        examine(&mut cx, tx, &mut outbox, &mut known, uuid, position).await?;
    }
    for (position, s) in &batch.sightings {
        sighting(&mut cx, tx, &mut outbox, *position, s).await?;
    }
    Ok(outbox.written)
}

/// Brings every audience's view of one Event up to date, and marks the exports it changes (its row and
/// what was sent of it are taken out of the batch's `known`).
async fn examine(cx: &mut Cx<'_>, tx: &Transaction<'_>, outbox: &mut Outbox, known: &mut Known, uuid: Uuid, position: i64) -> Result<(), ApplyError> {
    let row = known.rows.remove(&uuid);
    let sent = known.sent.remove(&uuid).unwrap_or_default();
    // An unpublished Event no audience holds (the common case while it is edited) concerns no feed.
    let feeds = !sent.is_empty() || row.as_ref().is_some_and(|r| r.access.published);
    if feeds {
        feed_event(cx, tx, outbox, uuid, position, row.as_ref(), sent).await?;
    }
    if cx.exports {
        let audiences = cx.audiences(tx).await?;
        mark_exports(tx, audiences, uuid, row.as_ref(), position).await?;
    }
    Ok(())
}

/// The feeds' part of [`examine`].
async fn feed_event(
    cx: &mut Cx<'_>,
    tx: &Transaction<'_>,
    outbox: &mut Outbox,
    uuid: Uuid,
    position: i64,
    row: Option<&EventRow>,
    mut sent: HashMap<String, Sent>,
) -> Result<(), ApplyError> {
    let state = cx.state;
    let audiences = cx.audiences(tx).await?;
    let mut outsider_doc: Option<Option<Value>> = None;
    for (audience, viewer) in &audiences.list {
        let token = audience.token();
        let previous = sent.remove(&token);
        let visible = row.is_some_and(|r| {
            r.access.published
                && acl::event_visible(viewer, &r.access, &audiences.access)
                && (*audience != Audience::Public || r.access.distribution == 3)
        });
        let doc = match (row, visible) {
            (Some(r), true) => match audience {
                Audience::Org(_) => render(state, viewer, r.id).await?,
                Audience::Community | Audience::Public => {
                    if outsider_doc.is_none() {
                        outsider_doc = Some(render(state, viewer, r.id).await?);
                    }
                    let doc = outsider_doc.clone().flatten();
                    if *audience == Audience::Public { doc.map(|d| public_view(&d)) } else { doc }
                }
            },
            _ => None,
        };
        match doc {
            Some(doc) => {
                let d = digest(&doc);
                if previous.as_ref().is_some_and(|p| p.digest == d) {
                    continue;
                }
                let attributes = attribute_uuids(&doc);
                if let Some(p) = &previous {
                    for gone in p.attributes.iter().filter(|a| !attributes.contains(a)) {
                        let payload = json!({"action": "retract", "Attribute": {"uuid": gone, "event_uuid": uuid}});
                        outbox.push(tx, position, audience, "retract", *gone, &payload).await?;
                    }
                }
                outbox.push(tx, position, audience, "event", uuid, &doc).await?;
                let event_id = row.map_or(0, |r| r.id);
                tx.execute(
                    "INSERT INTO exp.feed_state (audience, event_id, event_uuid, digest, attributes) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (event_id, audience) DO UPDATE SET digest = EXCLUDED.digest, attributes = EXCLUDED.attributes",
                    &[&token, &event_id, &uuid, &d, &attributes],
                )
                .await?;
                if *audience == Audience::Public {
                    let feed = crate::misp_feed::feed_event(&doc);
                    tx.execute(
                        "INSERT INTO exp.misp_feed (event_uuid, event_id, manifest, document, hashes) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (event_uuid) DO UPDATE SET manifest = EXCLUDED.manifest, document = EXCLUDED.document, hashes = EXCLUDED.hashes",
                        &[&uuid, &event_id, &crate::misp_feed::manifest_entry(&feed), &feed.to_string(), &crate::misp_feed::hashes(&feed)],
                    )
                    .await?;
                }
            }
            None => {
                if previous.is_some() {
                    retract(tx, outbox, position, audience, uuid, row).await?;
                }
            }
        }
    }
    // Audiences that are gone (an organisation deleted or no longer local) lose what they had.
    for token in sent.into_keys() {
        if let Some(audience) = Audience::parse(&token) {
            retract(tx, outbox, position, &audience, uuid, row).await?;
        }
    }
    Ok(())
}

async fn retract(tx: &Transaction<'_>, outbox: &mut Outbox, position: i64, audience: &Audience, uuid: Uuid, row: Option<&EventRow>) -> Result<(), ApplyError> {
    let reason = match row {
        None => "deleted",
        Some(r) if !r.access.published => "unpublished",
        Some(_) => "not visible",
    };
    let payload = json!({"action": "retract", "reason": reason, "Event": {"uuid": uuid}});
    outbox.push(tx, position, audience, "retract", uuid, &payload).await?;
    tx.execute("DELETE FROM exp.feed_state WHERE event_uuid = $1 AND audience = $2", &[&uuid, &audience.token()]).await?;
    if *audience == Audience::Public {
        tx.execute("DELETE FROM exp.misp_feed WHERE event_uuid = $1", &[&uuid]).await?;
    }
    Ok(())
}

/// Marks stale the cached exports of every view that sees the Event now or saw it before (the site
/// admins' view always).
async fn mark_exports(tx: &Transaction<'_>, audiences: &Audiences, uuid: Uuid, row: Option<&EventRow>, position: i64) -> Result<(), ApplyError> {
    let now: Vec<i64> = match row {
        Some(r) => audiences.orgs.iter().filter(|(_, v)| acl::event_visible(v, &r.access, &audiences.access)).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let before: Option<Vec<i64>> = tx.query_opt("SELECT orgs FROM exp.event_views WHERE event_uuid = $1", &[&uuid]).await?.map(|r| r.get(0));
    match before {
        Some(before) => {
            let mut views: Vec<i64> = now.iter().chain(&before).copied().collect();
            views.push(0);
            tx.execute("UPDATE exp.exports SET dirty_position = coalesce(dirty_position, $2) WHERE view_org = ANY($1)", &[&views, &position])
                .await?;
        }
        // A new Event, or one last changed while no export existed: who saw it before is unknown.
        None => {
            tx.execute("UPDATE exp.exports SET dirty_position = coalesce(dirty_position, $1)", &[&position]).await?;
        }
    }
    if row.is_some() {
        tx.execute(
            "INSERT INTO exp.event_views (event_uuid, orgs) VALUES ($1, $2) ON CONFLICT (event_uuid) DO UPDATE SET orgs = EXCLUDED.orgs",
            &[&uuid, &now],
        )
        .await?;
    } else {
        tx.execute("DELETE FROM exp.event_views WHERE event_uuid = $1", &[&uuid]).await?;
    }
    Ok(())
}

/// A new sighting, to the audiences that hold its Event and attribute and may see it.
async fn sighting(cx: &mut Cx<'_>, tx: &Transaction<'_>, outbox: &mut Outbox, position: i64, s: &Sighting) -> Result<(), ApplyError> {
    let Some(row) = event_row(tx, s.event_uuid).await? else { return Ok(()) };
    if !row.access.published {
        return Ok(());
    }
    let Some((attribute, object)) = cairn_api::render::attribute_access(tx, s.attribute_id).await.map_err(api)? else { return Ok(()) };
    let mut holders: HashMap<String, Vec<Uuid>> = HashMap::new();
    for r in tx.query("SELECT audience, attributes FROM exp.feed_state WHERE event_uuid = $1", &[&s.event_uuid]).await? {
        holders.insert(r.get(0), r.get(1));
    }
    if holders.is_empty() {
        return Ok(());
    }
    let audiences = cx.audiences(tx).await?;
    let org = tx.query_opt("SELECT uuid, name FROM rm.organisations WHERE id = $1", &[&s.org_id]).await?;
    let organisation = org.map_or(Value::Null, |r| json!({"uuid": r.get::<_, Uuid>(0), "name": r.get::<_, String>(1)}));
    let payload = json!({"Sighting": {
        "uuid": s.uuid, "attribute_uuid": s.attribute_uuid, "event_uuid": s.event_uuid,
        "type": s.sighting_type.to_string(), "source": s.source, "date_sighting": s.date_sighting.to_string(),
        "Organisation": organisation,
    }});
    for (audience, viewer) in &audiences.list {
        let Some(held) = holders.get(&audience.token()) else { continue };
        if !held.contains(&s.attribute_uuid) {
            continue;
        }
        let reported = audiences.sightings.policy == SightingPolicy::SightingReporter
            && tx
                .query_one("SELECT EXISTS (SELECT 1 FROM rm.sightings WHERE event_id = $1 AND org_id = $2)", &[&row.id, &viewer.org_id])
                .await?
                .get::<_, bool>(0);
        let visible = acl::sighting_visible(viewer, &row.access, &attribute, object.as_ref(), &audiences.access, &audiences.sightings, s.org_id, reported);
        if visible {
            outbox.push(tx, position, audience, "sighting", s.uuid, &payload).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_view_keeps_only_what_may_leave() {
        let doc = json!({"Event": {"distribution": "3", "RelatedEvent": [{"Event": {}}],
            "Attribute": [{"uuid": "00000000-0000-0000-0000-000000000001", "distribution": "5"},
                          {"uuid": "00000000-0000-0000-0000-000000000002", "distribution": "1"},
                          {"uuid": "00000000-0000-0000-0000-000000000003", "distribution": "3"}],
            "Object": [{"distribution": "2", "Attribute": [{"uuid": "00000000-0000-0000-0000-000000000004", "distribution": "5"}]},
                       {"distribution": "5", "Attribute": [{"uuid": "00000000-0000-0000-0000-000000000005", "distribution": "2"},
                                                           {"uuid": "00000000-0000-0000-0000-000000000006", "distribution": "5"}]}]}});
        let p = public_view(&doc);
        assert!(p["Event"].get("RelatedEvent").is_none());
        let kept: Vec<u128> = attribute_uuids(&p).iter().map(|u| u.as_u128()).collect();
        assert_eq!(kept, vec![1, 3, 6]);
        assert_eq!(attribute_uuids(&doc).len(), 6);
    }
}
