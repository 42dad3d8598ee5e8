//! Reading correlations (the correlator's `corr` schema): pairs of active holders sharing a key in
//! different Events, minus excluded and over-correlating keys, with CIDR matches when
//! `MISP.enable_advanced_correlations` is on, and the access rule applied to the other side.

use crate::acl_sql;
use crate::error::ApiError;
use crate::filters::Sql;
use cairn_domain::acl::{AccessSettings, Viewer};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use std::collections::BTreeMap;

/// Correlation settings in force.
#[derive(Clone, Copy, Debug)]
pub struct CorrelationSettings {
    /// `MISP.correlation_limit`: a key held by more active attributes produces no pairs.
    pub limit: i64,
    /// `MISP.enable_advanced_correlations`: CIDR both ways.
    pub advanced: bool,
    /// `MISP.completely_disable_correlation`.
    pub disabled: bool,
    /// `MISP.max_correlations_per_event`.
    pub max_per_event: i64,
}

/// One correlation: an attribute of ours and the other side.
#[derive(Clone, Debug)]
pub struct Related {
    pub attribute_id: i64,
    pub other_attribute_id: i64,
    pub other_event_id: i64,
    pub other_value: String,
    pub other_type: String,
    pub event: RelatedEvent,
}

#[derive(Clone, Debug)]
pub struct RelatedEvent {
    pub id: i64,
    pub uuid: uuid::Uuid,
    pub info: String,
    pub date: String,
    pub threat_level_id: i16,
    pub analysis: i16,
    pub timestamp: i64,
    pub org_id: i64,
    pub orgc_id: i64,
    pub distribution: i16,
    pub published: bool,
}

/// `h` (a holder, with Event `he` and Object `hob`) is active.
fn active(h: &str, he: &str, hob: &str) -> String {
    format!("(NOT {h}.deleted AND NOT {h}.disable_correlation AND NOT {he}.disable_correlation AND ({h}.object_id = 0 OR NOT {hob}.deleted))")
}

/// Which of our holders take part: an Event's, or some attributes'.
pub enum Scope<'a> {
    Event(i64),
    Attributes(&'a [i64]),
}

/// The visible correlations of the holders in `scope`.
///
/// # Errors
/// Database errors.
pub async fn related(
    client: &impl GenericClient,
    viewer: &Viewer,
    access: &AccessSettings,
    settings: &CorrelationSettings,
    scope: Scope<'_>,
) -> Result<Vec<Related>, ApiError> {
    if settings.disabled {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let mine_filter = match scope {
        Scope::Event(id) => format!("m.event_id = {}", sql.param(id)),
        Scope::Attributes(ids) => format!("m.attribute_id = ANY({})", sql.param(ids.to_vec())),
    };
    let limit = sql.param(settings.limit + 1);
    let cap = sql.param(settings.limit);
    let cidr = if settings.advanced {
        " OR (m.ip IS NOT NULL AND p.ip IS NOT NULL AND ( \
           (masklen(m.ip) = CASE family(m.ip) WHEN 4 THEN 32 ELSE 128 END AND masklen(p.ip) < CASE family(p.ip) WHEN 4 THEN 32 ELSE 128 END AND p.ip >> m.ip) \
           OR (masklen(m.ip) < CASE family(m.ip) WHEN 4 THEN 32 ELSE 128 END AND masklen(p.ip) = CASE family(p.ip) WHEN 4 THEN 32 ELSE 128 END AND p.ip << m.ip)))"
    } else {
        ""
    };
    sql.and(mine_filter);
    sql.and(active("m", "me", "mob"));
    sql.and(active("p", "pe", "pob"));
    sql.and("p.event_id <> m.event_id".into());
    // Excluded keys never correlate.
    sql.and("NOT EXISTS (SELECT 1 FROM corr.exclusions x WHERE m.key LIKE x.pattern OR p.key LIKE x.pattern)".into());
    // Over-correlating keys produce no pairs: count up to limit + 1 active holders.
    sql.and(format!(
        "(SELECT count(*) FROM (SELECT 1 FROM corr.holders c JOIN corr.events ce ON ce.id = c.event_id \
         LEFT JOIN corr.objects cob ON cob.id = c.object_id WHERE c.key = m.key AND {} LIMIT {limit}) z) <= {cap}",
        active("c", "ce", "cob")
    ));
    // Both sides must be visible: a correlation through an attribute the viewer may not see would
    // reveal its value.
    acl_sql::attributes_as(&mut sql, viewer, access, "me", "m", "mob");
    acl_sql::attributes_as(&mut sql, viewer, access, "pe", "p", "pob");
    let query = format!(
        "SELECT m.attribute_id, p.attribute_id, p.event_id, p.value, p.type, pe.uuid, pe.info, pe.date, pe.threat_level_id, pe.analysis, \
         pe.timestamp, pe.org_id, pe.orgc_id, pe.distribution, pe.published \
         FROM corr.holders m JOIN corr.events me ON me.id = m.event_id LEFT JOIN corr.objects mob ON mob.id = m.object_id \
         JOIN corr.holders p ON (p.key = m.key{cidr}) JOIN corr.events pe ON pe.id = p.event_id \
         LEFT JOIN corr.objects pob ON pob.id = p.object_id \
         WHERE {} ORDER BY m.attribute_id, p.event_id, p.attribute_id LIMIT {}",
        sql.where_clause(),
        settings.max_per_event.max(1)
    );
    let rows = client.query(&query, &sql.refs()).await?;
    let mut out: Vec<Related> = rows
        .iter()
        .map(|r| Related {
            attribute_id: r.get(0),
            other_attribute_id: r.get(1),
            other_event_id: r.get(2),
            other_value: r.get(3),
            other_type: r.get(4),
            event: RelatedEvent {
                id: r.get(2),
                uuid: r.get(5),
                info: r.get(6),
                date: r.get(7),
                threat_level_id: r.get(8),
                analysis: r.get(9),
                timestamp: r.get(10),
                org_id: r.get(11),
                orgc_id: r.get(12),
                distribution: r.get(13),
                published: r.get(14),
            },
        })
        .collect();
    // A composite attribute may match the same other attribute through both halves.
    out.dedup_by(|a, b| a.attribute_id == b.attribute_id && a.other_attribute_id == b.other_attribute_id);
    Ok(out)
}

/// MISP's `RelatedEvent[]` entries, one per distinct related Event.
pub fn related_events(related: &[Related], orgs: &std::collections::HashMap<i64, Value>) -> Vec<Value> {
    let mut seen = BTreeMap::new();
    for r in related {
        seen.entry(r.other_event_id).or_insert_with(|| &r.event);
    }
    seen.values()
        .map(|e| {
            serde_json::json!({"Event": {
                "id": e.id.to_string(), "date": e.date, "threat_level_id": e.threat_level_id.to_string(), "info": e.info,
                "published": e.published, "uuid": e.uuid, "analysis": e.analysis.to_string(), "timestamp": e.timestamp.to_string(),
                "distribution": e.distribution.to_string(), "org_id": e.org_id.to_string(), "orgc_id": e.orgc_id.to_string(),
                "Org": orgs.get(&e.org_id).cloned().unwrap_or(Value::Null), "Orgc": orgs.get(&e.orgc_id).cloned().unwrap_or(Value::Null),
            }})
        })
        .collect()
}

/// Keys (lower-cased value halves) of `attributes` that are excluded or over-correlating — for MISP's
/// `correlation_exclusion` / `over_correlation` attribute flags.
///
/// # Errors
/// Database errors.
pub async fn flags(client: &impl GenericClient, settings: &CorrelationSettings, attributes: &[i64]) -> Result<(Vec<i64>, Vec<i64>), ApiError> {
    let excluded: Vec<i64> = client
        .query(
            "SELECT DISTINCT h.attribute_id FROM corr.holders h WHERE h.attribute_id = ANY($1) \
             AND EXISTS (SELECT 1 FROM corr.exclusions x WHERE h.key LIKE x.pattern)",
            &[&attributes],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let over: Vec<i64> = client
        .query(
            &format!(
                "SELECT DISTINCT h.attribute_id FROM corr.holders h WHERE h.attribute_id = ANY($1) AND \
                 (SELECT count(*) FROM (SELECT 1 FROM corr.holders c JOIN corr.events ce ON ce.id = c.event_id \
                 LEFT JOIN corr.objects cob ON cob.id = c.object_id WHERE c.key = h.key AND {} LIMIT $2) z) > $3",
                active("c", "ce", "cob")
            ),
            &[&attributes, &(settings.limit + 1), &settings.limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok((excluded, over))
}
