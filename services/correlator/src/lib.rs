//! The correlator: a read model of which attributes share a value across Events (MISP's correlation
//! engine, misp_features.md §6), maintained incrementally from the log and rebuildable from zero.
//!
//! # Layout
//! - [`Correlator`]: the projector. It keeps, in schema `corr`, one row per correlating half of every
//!   attribute (`holders`: key, Event, Object, its own distribution, deleted / disabled flags) plus the
//!   access fields of Events and Objects and the exclusion list. Pairs, over-correlation (a key held by
//!   more than `MISP.correlation_limit` active attributes produces no pairs), exclusions and access are
//!   decided when correlations are read (the API's `correlations` module), so every rule is exact at any
//!   moment and incremental state equals a rebuild by construction.
//! - [`bulk`]: the tables written from a folded log, one `COPY` each; [`rebuild`]: a fresh schema,
//!   compared with the live one and switched in one transaction.

use cairn_domain::Change;
use cairn_domain::correlation;
use cairn_domain::event::{Attribute, EventMeta, Object};
use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::{ApplyError, Options, Projector, Runtime, decode_batch};
use cairn_platform::{Settings, Shutdown, connect};
use deadpool_postgres::GenericClient;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The projector name (checkpoint key and JetStream durable).
pub const NAME: &str = "correlator";
/// The live schema.
pub const SCHEMA: &str = "corr";

/// The correlation projector, writing into `schema`.
#[derive(Debug, Clone)]
pub struct Correlator {
    pub schema: String,
}

impl Default for Correlator {
    fn default() -> Self {
        Self { schema: SCHEMA.into() }
    }
}

impl Projector for Correlator {
    fn name(&self) -> &str {
        NAME
    }

    async fn apply(&self, tx: &deadpool_postgres::Transaction<'_>, changes: &[StoredChange]) -> Result<(), ApplyError> {
        apply_changes(tx, &self.schema, changes).await
    }
}

/// Applies stored changes into the correlation tables of schema `s`.
///
/// # Errors
/// Database errors and undecodable changes.
pub async fn apply_changes(c: &impl GenericClient, s: &str, changes: &[StoredChange]) -> Result<(), ApplyError> {
    apply_decoded(c, s, &decode_batch(changes, Change::from_record)?).await
}

/// Buffered upserts: consecutive `AttributeAdded`, `EventCreated`/`EventUpdated`, `EventTouched` and
/// `ObjectAdded`/`ObjectUpdated` become one multi-row statement per table (a rebuild replays 50k
/// Events in a few dozen statements instead of 100k). The three tables do not depend on each other,
/// so their order does not matter; within a table the last record of an id wins, which is what
/// applying them one by one leaves. Any other change flushes the buffers first.
#[derive(Default)]
struct Pending {
    rows: Vec<(Attribute, correlation::Key)>,
    /// The last touch of each Event (by stream) not folded into a buffered record.
    touches: std::collections::HashMap<uuid::Uuid, i64>,
    events: Vec<EventMeta>,
    event_slots: std::collections::HashMap<i64, usize>,
    objects: Vec<Object>,
    object_slots: std::collections::HashMap<i64, usize>,
}

impl Pending {
    fn event(&mut self, m: &EventMeta) {
        // The record replaces the Event's timestamp and published flag: an earlier touch is moot.
        self.touches.remove(&m.uuid);
        match self.event_slots.get(&m.id) {
            Some(&i) => self.events[i] = m.clone(),
            None => {
                self.event_slots.insert(m.id, self.events.len());
                self.events.push(m.clone());
            }
        }
    }

    /// A touch moves the timestamp and unpublishes: into the buffered record if there is one.
    fn touch(&mut self, stream_id: uuid::Uuid, timestamp: i64) {
        match self.events.iter_mut().find(|m| m.uuid == stream_id) {
            Some(m) => {
                m.timestamp = timestamp;
                m.published = false;
            }
            None => {
                self.touches.insert(stream_id, timestamp);
            }
        }
    }

    fn object(&mut self, o: &Object) {
        match self.object_slots.get(&o.id) {
            Some(&i) => self.objects[i] = o.clone(),
            None => {
                self.object_slots.insert(o.id, self.objects.len());
                self.objects.push(o.clone());
            }
        }
    }
}

async fn flush(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
    flush_events(c, s, p).await?;
    flush_touches(c, s, p).await?;
    flush_objects(c, s, p).await?;
    flush_holders(c, s, p).await
}

async fn flush_touches(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
    if p.touches.is_empty() {
        return Ok(());
    }
    let (streams, timestamps): (Vec<uuid::Uuid>, Vec<i64>) = std::mem::take(&mut p.touches).into_iter().unzip();
    let stmt = c
        .prepare_cached(&format!(
            "UPDATE {s}.events e SET timestamp = x.t, published = false FROM unnest($1::uuid[], $2::bigint[]) AS x(u, t) WHERE e.uuid = x.u"
        ))
        .await?;
    c.execute(&stmt, &[&streams, &timestamps]).await?;
    Ok(())
}

async fn flush_events(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
    if p.events.is_empty() {
        return Ok(());
    }
    p.event_slots.clear();
    let events = std::mem::take(&mut p.events);
    let ids: Vec<i64> = events.iter().map(|m| m.id).collect();
    let uuids: Vec<uuid::Uuid> = events.iter().map(|m| m.uuid).collect();
    let infos: Vec<&str> = events.iter().map(|m| m.info.as_str()).collect();
    let dates: Vec<&str> = events.iter().map(|m| m.date.as_str()).collect();
    let levels: Vec<i16> = events.iter().map(|m| i16::from(m.threat_level_id)).collect();
    let analyses: Vec<i16> = events.iter().map(|m| i16::from(m.analysis)).collect();
    let timestamps: Vec<i64> = events.iter().map(|m| m.timestamp).collect();
    let orgs: Vec<i64> = events.iter().map(|m| m.org_id).collect();
    let orgcs: Vec<i64> = events.iter().map(|m| m.orgc_id).collect();
    let distributions: Vec<i16> = events.iter().map(|m| i16::from(m.distribution)).collect();
    let sgs: Vec<i64> = events.iter().map(|m| m.sharing_group_id).collect();
    let published: Vec<bool> = events.iter().map(|m| m.published).collect();
    let disabled: Vec<bool> = events.iter().map(|m| m.disable_correlation).collect();
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO {s}.events (id, uuid, info, date, threat_level_id, analysis, timestamp, org_id, orgc_id, distribution, \
             sharing_group_id, published, disable_correlation) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::smallint[], $7::bigint[], \
             $8::bigint[], $9::bigint[], $10::smallint[], $11::bigint[], $12::bool[], $13::bool[]) \
             ON CONFLICT (id) DO UPDATE SET info = EXCLUDED.info, date = EXCLUDED.date, threat_level_id = EXCLUDED.threat_level_id, \
             analysis = EXCLUDED.analysis, timestamp = EXCLUDED.timestamp, org_id = EXCLUDED.org_id, orgc_id = EXCLUDED.orgc_id, \
             distribution = EXCLUDED.distribution, sharing_group_id = EXCLUDED.sharing_group_id, published = EXCLUDED.published, \
             disable_correlation = EXCLUDED.disable_correlation"
        ))
        .await?;
    c.execute(&stmt, &[&ids, &uuids, &infos, &dates, &levels, &analyses, &timestamps, &orgs, &orgcs, &distributions, &sgs, &published, &disabled]).await?;
    Ok(())
}

async fn flush_objects(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
    if p.objects.is_empty() {
        return Ok(());
    }
    p.object_slots.clear();
    let objects = std::mem::take(&mut p.objects);
    let ids: Vec<i64> = objects.iter().map(|o| o.id).collect();
    let events: Vec<i64> = objects.iter().map(|o| o.event_id).collect();
    let distributions: Vec<i16> = objects.iter().map(|o| i16::from(o.distribution)).collect();
    let sgs: Vec<i64> = objects.iter().map(|o| o.sharing_group_id).collect();
    let deleted: Vec<bool> = objects.iter().map(|o| o.deleted).collect();
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO {s}.objects (id, event_id, distribution, sharing_group_id, deleted) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::bigint[], $5::bool[]) \
             ON CONFLICT (id) DO UPDATE SET distribution = EXCLUDED.distribution, sharing_group_id = EXCLUDED.sharing_group_id, \
             deleted = EXCLUDED.deleted"
        ))
        .await?;
    c.execute(&stmt, &[&ids, &events, &distributions, &sgs, &deleted]).await?;
    Ok(())
}

async fn flush_holders(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
    if p.rows.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(&mut p.rows);
    let ids: Vec<i64> = rows.iter().map(|(a, _)| a.id).collect();
    let halves: Vec<i16> = rows.iter().map(|(_, k)| k.half).collect();
    let keys: Vec<&str> = rows.iter().map(|(_, k)| k.key.as_str()).collect();
    let events: Vec<i64> = rows.iter().map(|(a, _)| a.event_id).collect();
    let objects: Vec<i64> = rows.iter().map(|(a, _)| a.object_id).collect();
    let types: Vec<&str> = rows.iter().map(|(a, _)| a.attr_type.as_str()).collect();
    let values: Vec<String> = rows.iter().map(|(a, _)| a.value()).collect();
    let distributions: Vec<i16> = rows.iter().map(|(a, _)| i16::from(a.distribution)).collect();
    let sgs: Vec<i64> = rows.iter().map(|(a, _)| a.sharing_group_id).collect();
    let deleted: Vec<bool> = rows.iter().map(|(a, _)| a.deleted).collect();
    let disabled: Vec<bool> = rows.iter().map(|(a, _)| a.disable_correlation).collect();
    let ips: Vec<Option<&str>> = rows.iter().map(|(_, k)| k.ip.as_deref()).collect();
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO {s}.holders (attribute_id, half, key, event_id, object_id, type, value, distribution, sharing_group_id, \
             deleted, disable_correlation, ip) \
             SELECT a, h, k, e, o, t, v, d, sg, del, dis, ip::inet FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::text[], $8::smallint[], $9::bigint[], $10::bool[], $11::bool[], $12::text[]) \
             AS u(a, h, k, e, o, t, v, d, sg, del, dis, ip) \
             ON CONFLICT (attribute_id, half) DO UPDATE SET key = EXCLUDED.key, event_id = EXCLUDED.event_id, \
             object_id = EXCLUDED.object_id, type = EXCLUDED.type, value = EXCLUDED.value, distribution = EXCLUDED.distribution, \
             sharing_group_id = EXCLUDED.sharing_group_id, deleted = EXCLUDED.deleted, \
             disable_correlation = EXCLUDED.disable_correlation, ip = EXCLUDED.ip"
        ))
        .await?;
    c.execute(&stmt, &[&ids, &halves, &keys, &events, &objects, &types, &values, &distributions, &sgs, &deleted, &disabled, &ips]).await?;
    Ok(())
}

fn buffer(p: &mut Pending, a: &Attribute) {
    for k in correlation::keys(a) {
        p.rows.push((a.clone(), k));
    }
}

/// Applies decoded changes `(stream id, change)` into the correlation tables of schema `s`.
///
/// # Errors
/// Database errors.
pub async fn apply_decoded(c: &impl GenericClient, s: &str, changes: &[(uuid::Uuid, Change)]) -> Result<(), ApplyError> {
    let mut p = Pending::default();
    for (stream_id, change) in changes {
        let buffered = match change {
            Change::AttributeAdded(a) => {
                buffer(&mut p, a);
                true
            }
            Change::EventCreated(m) | Change::EventUpdated(m) => {
                p.event(m);
                true
            }
            Change::ObjectAdded(o) | Change::ObjectUpdated(o) => {
                p.object(o);
                true
            }
            Change::EventTouched { timestamp } => {
                p.touch(*stream_id, *timestamp);
                true
            }
            _ => false,
        };
        if buffered {
            continue;
        }
        flush(c, s, &mut p).await?;
        match change {
            Change::DelegationRequested(d) => {
                c.execute(&format!("UPDATE {s}.events SET delegate_org_id = $2 WHERE uuid = $1"), &[stream_id, &d.org_id]).await?;
            }
            Change::DelegationAccepted { .. } | Change::DelegationDiscarded { .. } => {
                c.execute(&format!("UPDATE {s}.events SET delegate_org_id = 0 WHERE uuid = $1"), &[stream_id]).await?;
            }
            Change::EventPublished { .. } => {
                c.execute(&format!("UPDATE {s}.events SET published = true WHERE uuid = $1"), &[stream_id]).await?;
            }
            Change::EventUnpublished {} => {
                c.execute(&format!("UPDATE {s}.events SET published = false WHERE uuid = $1"), &[stream_id]).await?;
            }
            Change::EventDeleted { id } => {
                c.execute(&format!("DELETE FROM {s}.holders WHERE event_id = $1"), &[id]).await?;
                c.execute(&format!("DELETE FROM {s}.objects WHERE event_id = $1"), &[id]).await?;
                c.execute(&format!("DELETE FROM {s}.events WHERE id = $1"), &[id]).await?;
            }
            Change::AttributeUpdated(a) => {
                // Keys may have changed (value or type): replace the attribute's rows.
                c.execute(&format!("DELETE FROM {s}.holders WHERE attribute_id = $1"), &[&a.id]).await?;
                buffer(&mut p, a);
                flush(c, s, &mut p).await?;
            }
            Change::AttributeDeleted { id, hard: true, .. } => {
                c.execute(&format!("DELETE FROM {s}.holders WHERE attribute_id = $1"), &[id]).await?;
            }
            Change::AttributeDeleted { id, hard: false, .. } => {
                c.execute(&format!("UPDATE {s}.holders SET deleted = true WHERE attribute_id = $1"), &[id]).await?;
            }
            Change::AttributeRestored { id, .. } => {
                c.execute(&format!("UPDATE {s}.holders SET deleted = false WHERE attribute_id = $1"), &[id]).await?;
            }
            Change::ObjectDeleted { id, hard: true, .. } => {
                c.execute(&format!("DELETE FROM {s}.objects WHERE id = $1"), &[id]).await?;
            }
            Change::ObjectDeleted { id, hard: false, .. } => {
                c.execute(&format!("UPDATE {s}.objects SET deleted = true WHERE id = $1"), &[id]).await?;
            }
            Change::CorrelationExclusionAdded(e) => {
                c.execute(
                    &format!(
                        "INSERT INTO {s}.exclusions (id, value, pattern, comment) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET value = $2, pattern = $3, comment = $4"
                    ),
                    &[&e.id, &e.value, &correlation::like_pattern(&e.value), &e.comment],
                )
                .await?;
            }
            Change::CorrelationExclusionDeleted { id } => {
                c.execute(&format!("DELETE FROM {s}.exclusions WHERE id = $1"), &[id]).await?;
            }
            _ => {}
        }
    }
    flush(c, s, &mut p).await
}

/// Runs the correlator until shutdown.
///
/// # Errors
/// An unusable database URL, or the database unreachable at start.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await.ok();
    let runtime = Runtime::new(Correlator::default(), pool, nats, Options::from_settings(&settings.projector)).await?;
    runtime.run(shutdown).await;
    Ok(())
}

pub mod bulk;
pub mod rebuild;
