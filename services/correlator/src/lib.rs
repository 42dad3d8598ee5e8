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
//! - [`rebuild`]: replay the whole log into a fresh schema with bulk inserts and switch in one
//!   transaction; [`compare`] checks two schemas for equality.

use cairn_domain::Change;
use cairn_domain::correlation;
use cairn_domain::event::Attribute;
use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::{ApplyError, Options, Projector, Runtime};
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

/// Buffered holder rows (consecutive `AttributeAdded` become one multi-row insert).
#[derive(Default)]
struct Pending {
    rows: Vec<(Attribute, correlation::Key)>,
}

async fn flush(c: &impl GenericClient, s: &str, p: &mut Pending) -> Result<(), ApplyError> {
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
    c.execute(
        &format!(
            "INSERT INTO {s}.holders (attribute_id, half, key, event_id, object_id, type, value, distribution, sharing_group_id, \
             deleted, disable_correlation, ip) \
             SELECT a, h, k, e, o, t, v, d, sg, del, dis, ip::inet FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::text[], $8::smallint[], $9::bigint[], $10::bool[], $11::bool[], $12::text[]) \
             AS u(a, h, k, e, o, t, v, d, sg, del, dis, ip) \
             ON CONFLICT (attribute_id, half) DO UPDATE SET key = EXCLUDED.key, event_id = EXCLUDED.event_id, \
             object_id = EXCLUDED.object_id, type = EXCLUDED.type, value = EXCLUDED.value, distribution = EXCLUDED.distribution, \
             sharing_group_id = EXCLUDED.sharing_group_id, deleted = EXCLUDED.deleted, \
             disable_correlation = EXCLUDED.disable_correlation, ip = EXCLUDED.ip"
        ),
        &[&ids, &halves, &keys, &events, &objects, &types, &values, &distributions, &sgs, &deleted, &disabled, &ips],
    )
    .await?;
    Ok(())
}

fn buffer(p: &mut Pending, a: &Attribute) {
    for k in correlation::keys(a) {
        p.rows.push((a.clone(), k));
    }
}

/// Applies changes into the correlation tables of schema `s`.
///
/// # Errors
/// Database errors and undecodable changes.
pub async fn apply_changes(c: &impl GenericClient, s: &str, changes: &[StoredChange]) -> Result<(), ApplyError> {
    let mut p = Pending::default();
    for stored in changes {
        let change = Change::from_record(&stored.change_type, stored.schema_version, &stored.payload)
            .map_err(|e| ApplyError::Invalid(e.to_string()))?;
        if let Change::AttributeAdded(a) = &change {
            buffer(&mut p, a);
            continue;
        }
        flush(c, s, &mut p).await?;
        match &change {
            Change::EventCreated(m) | Change::EventUpdated(m) => {
                c.execute(
                    &format!(
                        "INSERT INTO {s}.events (id, uuid, info, date, threat_level_id, analysis, timestamp, org_id, orgc_id, distribution, \
                         sharing_group_id, published, disable_correlation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                         ON CONFLICT (id) DO UPDATE SET info = $3, date = $4, threat_level_id = $5, analysis = $6, timestamp = $7, \
                         org_id = $8, orgc_id = $9, distribution = $10, sharing_group_id = $11, published = $12, disable_correlation = $13"
                    ),
                    &[
                        &m.id,
                        &m.uuid,
                        &m.info,
                        &m.date,
                        &i16::from(m.threat_level_id),
                        &i16::from(m.analysis),
                        &m.timestamp,
                        &m.org_id,
                        &m.orgc_id,
                        &i16::from(m.distribution),
                        &m.sharing_group_id,
                        &m.published,
                        &m.disable_correlation,
                    ],
                )
                .await?;
            }
            Change::EventTouched { timestamp } => {
                c.execute(&format!("UPDATE {s}.events SET timestamp = $2, published = false WHERE uuid = $1"), &[&stored.stream_id, timestamp])
                    .await?;
            }
            Change::DelegationRequested(d) => {
                c.execute(&format!("UPDATE {s}.events SET delegate_org_id = $2 WHERE uuid = $1"), &[&stored.stream_id, &d.org_id]).await?;
            }
            Change::DelegationAccepted { .. } | Change::DelegationDiscarded { .. } => {
                c.execute(&format!("UPDATE {s}.events SET delegate_org_id = 0 WHERE uuid = $1"), &[&stored.stream_id]).await?;
            }
            Change::EventPublished { .. } => {
                c.execute(&format!("UPDATE {s}.events SET published = true WHERE uuid = $1"), &[&stored.stream_id]).await?;
            }
            Change::EventUnpublished {} => {
                c.execute(&format!("UPDATE {s}.events SET published = false WHERE uuid = $1"), &[&stored.stream_id]).await?;
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
            Change::ObjectAdded(o) | Change::ObjectUpdated(o) => {
                c.execute(
                    &format!(
                        "INSERT INTO {s}.objects (id, event_id, distribution, sharing_group_id, deleted) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (id) DO UPDATE SET distribution = $3, sharing_group_id = $4, deleted = $5"
                    ),
                    &[&o.id, &o.event_id, &i16::from(o.distribution), &o.sharing_group_id, &o.deleted],
                )
                .await?;
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

pub mod rebuild;
pub use rebuild::{compare, rebuild};
