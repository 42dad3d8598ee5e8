//! MISP's JSON results, streamed: `{"response": [{"Event": …}, …]}` one Event at a time,
//! `{"response": {"Attribute": […]}}` a page of attributes at a time, and `{"response": [{"Object": …}]}`.

use super::query;
use super::stream::Chunks;
use super::{Pages, Search};
use crate::error::ApiError;
use crate::filters::Sql;
use crate::render::{self, ATTRIBUTE_COLUMNS, EVENT_COLUMNS, OBJECT_COLUMNS, ViewOptions};
use crate::warninglists::Annotator;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// Events fetched per round trip (each is then rendered whole).
const EVENT_PAGE: i64 = 50;
/// Attributes fetched per round trip.
const ATTRIBUTE_PAGE: i64 = 2_000;

fn push_json(out: &mut String, v: &Value) {
    // Serialising a `Value` cannot fail.
    out.push_str(&serde_json::to_string(v).unwrap_or_default());
}

/// An attribute object followed by its Event's already serialised context as its last member
/// (`"Event": {...}`): many attributes share a context, which is serialised once per page instead of
/// copied into each.
fn push_json_with_event(out: &mut String, v: &Value, event: Option<&str>) {
    let start = out.len();
    push_json(out, v);
    if let Some(event) = event {
        if out.len() > start + 1 && out.ends_with('}') {
            out.pop();
            if !out.ends_with('{') {
                out.push(',');
            }
            out.push_str("\"Event\": ");
            out.push_str(event);
            out.push('}');
        }
    }
}

/// One page of the Events `search` returns (`page`: a [`Pages`] tail).
async fn event_page(client: &deadpool_postgres::Client, sql: &Sql, page: &str) -> Result<Vec<tokio_postgres::Row>, ApiError> {
    let query = format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE {}{page}", sql.where_clause());
    Ok(client.query(&query, &sql.refs()).await?)
}

/// `events/restSearch` as JSON.
pub async fn write_events(search: &Search, mut chunks: Chunks) -> Result<Chunks, ApiError> {
    let client = search.state.pool.get().await?;
    let sql = search.event_sql();
    let p = &search.params;
    let (deleted, only_deleted) = query::deleted_mode(p);
    let options = ViewOptions {
        deleted,
        only_deleted,
        metadata: p.on("metadata"),
        all_tags: p.on("includeAllTags"),
        no_sightings: !p.on("includeSightings") && p.on("noSightings"),
        to_ids: query::to_ids_filter(p),
        blocked_tags: query::blocked_attribute_tags(p),
        sightings: crate::handlers::support::sighting_settings(&search.state).await?,
    };
    let warnings = search.warnings_view();
    let annotator_parts = crate::handlers::support::warnings_for(&search.state, warnings).await?;
    let mut pages = Pages::new(p, EVENT_PAGE);
    let mut first = true;
    chunks.buf().push_str("{\"response\": [");
    while let Some(page) = pages.next("e.id") {
        let rows = event_page(&client, &sql, &page).await?;
        let Some(last) = rows.last() else { break };
        let more = pages.got(rows.len(), last.get(0));
        for r in &rows {
            let row = render::event_row(r);
            let Some(mut v) = render::event_json(&client, &search.viewer, &search.settings, &row, &options).await? else { continue };
            crate::handlers::sharing_groups::attach(&search.state, &mut v).await?;
            if let Some((matcher, reference)) = &annotator_parts {
                Annotator { matcher, catalog: reference.warninglists.loaded(), view: warnings }.event(&mut v);
            }
            if !first {
                chunks.buf().push_str(", ");
            }
            first = false;
            push_json(chunks.buf(), &v);
            if !chunks.flush_if_full().await {
                return Ok(chunks);
            }
        }
        if !more {
            break;
        }
    }
    chunks.buf().push_str("]}");
    Ok(chunks)
}

/// Context of an attribute's Event (`includeContext`, `includeCorrelations`), by event id.
async fn event_context(client: &deadpool_postgres::Client, event_ids: &[i64]) -> Result<HashMap<i64, Value>, ApiError> {
    let rows = client.query(&format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE e.id = ANY($1)"), &[&event_ids]).await?;
    let parsed: Vec<render::EventRow> = rows.iter().map(render::event_row).collect();
    let mut org_ids: Vec<i64> = parsed.iter().flat_map(|e| [e.access.org_id, e.orgc_id]).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = render::org_shorts(client, &org_ids).await?;
    let rows = render::index_rows(client, &parsed, &orgs).await?;
    Ok(parsed.iter().map(|e| e.id).zip(rows).collect())
}

/// Tags of attributes (`Tag` shape), by attribute id.
async fn attribute_tags(client: &deadpool_postgres::Client, ids: &[i64], all: bool) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
    let rows = client
        .query(
            &format!(
                "SELECT at.attribute_id, {}, at.local, at.relationship_type, t.exportable FROM rm.attribute_tags at \
                 JOIN rm.tags t ON t.id = at.tag_id AND NOT t.deleted WHERE at.attribute_id = ANY($1) ORDER BY t.id",
                render::TAG_COLUMNS
            ),
            &[&ids],
        )
        .await?;
    let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in &rows {
        if !all && !r.get::<_, bool>(14) {
            continue;
        }
        let mut t = render::tag_json(r, 1);
        t["local"] = json!(r.get::<_, bool>(12));
        t["relationship_type"] = json!(r.get::<_, Option<String>>(13));
        out.entry(r.get(0)).or_default().push(t);
    }
    Ok(out)
}

/// Event tags (`Tag` shape, marked inherited), by event id.
async fn inherited_tags(client: &deadpool_postgres::Client, event_ids: &[i64], all: bool) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
    let mut out = HashMap::new();
    for id in event_ids {
        let mut tags = render::event_tags(client, *id, all).await?;
        for t in &mut tags {
            t["inherited"] = json!(1);
        }
        out.insert(*id, tags);
    }
    Ok(out)
}

/// The sightings of a page of attribute rows the viewer may see (sighting policy applied), by
/// attribute id.
async fn visible_sightings(search: &Search, client: &deadpool_postgres::Client, rows: &[tokio_postgres::Row]) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
    let policy = crate::handlers::support::sighting_settings(&search.state).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let sightings = client
        .query(&format!("SELECT {} FROM rm.sightings g WHERE g.attribute_id = ANY($1) ORDER BY g.id", crate::collab::SIGHTING_COLUMNS), &[&ids])
        .await?;
    let mut org_ids: Vec<i64> = sightings.iter().map(|r| r.get(4)).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = crate::collab::orgs(client, &org_ids).await?;
    let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
    let mut events: HashMap<i64, (Option<render::EventRow>, bool)> = HashMap::new();
    for s in &sightings {
        let attribute_id: i64 = s.get(3);
        let Some(row) = rows.iter().find(|r| r.get::<_, i64>(0) == attribute_id) else { continue };
        let event_id: i64 = row.get(2);
        if !events.contains_key(&event_id) {
            let event = render::find_event(client, &event_id.to_string()).await?;
            let reported = crate::collab::org_reported(client, event_id, search.viewer.org_id).await?;
            events.insert(event_id, (event, reported));
        }
        let Some((Some(event), reported)) = events.get(&event_id) else { continue };
        let Some((access, object)) = render::attribute_access(client, attribute_id).await? else { continue };
        if cairn_domain::acl::sighting_visible(&search.viewer, &event.access, &access, object.as_ref(), &search.settings, &policy, s.get(4), *reported) {
            out.entry(attribute_id).or_default().push(crate::collab::sighting_json(s, &orgs));
        }
    }
    Ok(out)
}

/// `attributes/restSearch` as JSON (`bare`: a plain list, as `attributes/index` answers).
pub async fn write_attributes(search: &Search, mut chunks: Chunks, bare: bool) -> Result<Chunks, ApiError> {
    let client = search.state.pool.get().await?;
    let sql = search.attribute_sql();
    let where_clause = sql.where_clause();
    let p = &search.params;
    let include_correlations = p.on("includeCorrelations");
    let include_event_tags = p.on("includeEventTags");
    let all_tags = p.on("includeAllTags");
    let correlation_settings = if include_correlations { Some(crate::handlers::support::correlation_settings(&search.state).await?) } else { None };
    let warnings = search.warnings_view();
    let annotator_parts = crate::handlers::support::warnings_for(&search.state, warnings).await?;
    let mut pages = Pages::new(p, ATTRIBUTE_PAGE);
    let mut first = true;
    chunks.buf().push_str(if bare { "[" } else { "{\"response\": {\"Attribute\": [" });
    while let Some(page) = pages.next("a.id") {
        let query = format!(
            "SELECT {ATTRIBUTE_COLUMNS}, e.uuid FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id \
             WHERE {where_clause}{page}"
        );
        let rows = client.query(&query, &sql.refs()).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let Some(&last) = ids.last() else { break };
        let more = pages.got(rows.len(), last);
        let event_ids: Vec<i64> = rows.iter().map(|r| r.get::<_, i64>(2)).collect::<BTreeSet<_>>().into_iter().collect();
        let mut tags = attribute_tags(&client, &ids, all_tags).await?;
        // MISP puts the Event's metadata on every attribute it returns (PyMISP reads `attribute.Event`).
        let contexts: HashMap<i64, String> =
            event_context(&client, &event_ids).await?.into_iter().map(|(id, v)| (id, serde_json::to_string(&v).unwrap_or_default())).collect();
        let inherited = if include_event_tags { inherited_tags(&client, &event_ids, all_tags).await? } else { HashMap::new() };
        let mut related: HashMap<i64, Vec<Value>> = HashMap::new();
        if let Some(cs) = &correlation_settings {
            let found = crate::correlations::related(&client, &search.viewer, &search.settings, cs, crate::correlations::Scope::Attributes(&ids)).await?;
            for r in found {
                related.entry(r.attribute_id).or_default().push(json!({
                    "id": r.other_attribute_id.to_string(), "event_id": r.other_event_id.to_string(), "type": r.other_type,
                    "value": r.other_value,
                    "Event": {"id": r.event.id.to_string(), "uuid": r.event.uuid, "info": r.event.info, "date": r.event.date,
                              "published": r.event.published, "analysis": r.event.analysis.to_string(),
                              "threat_level_id": r.event.threat_level_id.to_string(), "org_id": r.event.org_id.to_string(),
                              "orgc_id": r.event.orgc_id.to_string(), "distribution": r.event.distribution.to_string(),
                              "timestamp": r.event.timestamp.to_string()},
                }));
            }
        }
        // Pending proposals on these attributes (visible with the attribute itself).
        let mut proposals: HashMap<i64, Vec<Value>> = HashMap::new();
        if p.on("includeProposals") {
            let rows = client
                .query(&format!("SELECT {} FROM rm.shadow_attributes s WHERE s.old_id = ANY($1) AND NOT s.deleted ORDER BY s.id", crate::collab::PROPOSAL_COLUMNS), &[&ids])
                .await?;
            for r in &rows {
                proposals.entry(r.get(4)).or_default().push(crate::collab::proposal_json(r));
            }
        }
        let mut sightings = if p.on("includeSightings") { visible_sightings(search, &client, &rows).await? } else { HashMap::new() };
        let mut page_list = Vec::with_capacity(rows.len());
        let mut page_events = Vec::with_capacity(rows.len());
        for r in &rows {
            let (mut v, _, _) = render::attribute_json(r);
            let id: i64 = r.get(0);
            let event_id: i64 = r.get(2);
            let mut attribute_tags = tags.remove(&id).unwrap_or_default();
            if let Some(inherited) = inherited.get(&event_id) {
                attribute_tags.extend(inherited.iter().cloned());
            }
            v["Tag"] = Value::Array(attribute_tags);
            if p.on("includeEventUuid") {
                v["event_uuid"] = json!(r.get::<_, uuid::Uuid>(18));
            }

            if include_correlations {
                v["RelatedAttribute"] = Value::Array(related.remove(&id).unwrap_or_default());
            }
            if p.on("includeSightings") {
                v["Sighting"] = Value::Array(sightings.remove(&id).unwrap_or_default());
            }
            if p.on("includeProposals") {
                v["ShadowAttribute"] = Value::Array(proposals.remove(&id).unwrap_or_default());
            }
            page_list.push(v);
            page_events.push(event_id);
        }
        if let Some((matcher, reference)) = &annotator_parts {
            Annotator { matcher, catalog: reference.warninglists.loaded(), view: warnings }.attributes(&mut page_list);
        }
        for (v, event_id) in page_list.iter().zip(&page_events) {
            if !first {
                chunks.buf().push_str(", ");
            }
            first = false;
            push_json_with_event(chunks.buf(), v, contexts.get(event_id).map(String::as_str));
        }
        if !chunks.flush_if_full().await {
            return Ok(chunks);
        }
        if !more {
            break;
        }
    }
    chunks.buf().push_str(if bare { "]" } else { "]}}" });
    Ok(chunks)
}

/// `objects/restSearch` as JSON: visible objects of visible Events matching `object_name`,
/// `object_template_uuid`, `uuid`, `eventid`…, each with its visible attributes.
pub async fn write_objects(search: &Search, mut chunks: Chunks) -> Result<Chunks, ApiError> {
    let client = search.state.pool.get().await?;
    let p = &search.params;
    let mut sql = Sql::default();
    crate::acl_sql::events(&mut sql, &search.viewer, &search.settings, "e");
    crate::acl_sql::element(&mut sql, &search.viewer, "e", "o");
    query::event_conditions(&mut sql, p, search.now);
    for (key, column) in [("object_name", "o.name"), ("name", "o.name"), ("meta_category", "o.meta_category")] {
        let t = crate::filters::terms(p.get(key));
        if !t.is_empty() {
            sql.match_terms(&[column], &t, true);
        }
    }
    let templates = query::pipe_terms(p.get("object_template_uuid"));
    if !templates.or.is_empty() {
        let ph = sql.param(templates.or.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect::<Vec<_>>());
        sql.and(format!("o.template_uuid = ANY({ph})"));
    }
    let uuids = query::pipe_terms(p.get("uuid"));
    if !uuids.or.is_empty() {
        let ph = sql.param(uuids.or.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect::<Vec<_>>());
        sql.and(format!("o.uuid = ANY({ph})"));
    }
    let (deleted, only_deleted) = query::deleted_mode(p);
    if only_deleted {
        sql.and("o.deleted".into());
    } else if !deleted {
        sql.and("NOT o.deleted".into());
    }
    let (limit, page) = p.limit_page();
    let mut query = format!(
        "SELECT {OBJECT_COLUMNS}, {EVENT_COLUMNS} FROM rm.objects o JOIN rm.events e ON e.id = o.event_id WHERE {} ORDER BY o.id",
        sql.where_clause()
    );
    if let Some(l) = limit {
        query.push_str(&format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
    }
    let rows = client.query(&query, &sql.refs()).await?;
    chunks.buf().push_str("{\"response\": [");
    let mut first = true;
    for r in &rows {
        let (mut o, access) = render::object_json(r);
        let object_id: i64 = r.get(0);
        let event_id: i64 = r.get(2);
        let event = render::event_row_at(r, 15);
        let stmt = client.prepare_cached(&format!("SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a WHERE a.object_id = $1 ORDER BY a.id")).await?;
        let mut attributes = Vec::new();
        let attribute_rows = client.query(&stmt, &[&object_id]).await?;
        let ids: Vec<i64> = attribute_rows.iter().map(|a| a.get(0)).collect();
        let mut tags = attribute_tags(&client, &ids, false).await?;
        for a in &attribute_rows {
            let (mut v, a_access, _) = render::attribute_json(a);
            let deleted_attribute: bool = a.get(14);
            if !cairn_domain::acl::attribute_visible(&search.viewer, &event.access, &a_access, Some(&access), &search.settings)
                || (deleted_attribute && !deleted && !only_deleted)
            {
                continue;
            }
            v["Tag"] = Value::Array(tags.remove(&a.get::<_, i64>(0)).unwrap_or_default());
            attributes.push(v);
        }
        o["Attribute"] = Value::Array(attributes);
        o["event_id"] = json!(event_id.to_string());
        if !first {
            chunks.buf().push_str(", ");
        }
        first = false;
        push_json(chunks.buf(), &json!({"Object": o}));
        if !chunks.flush_if_full().await {
            return Ok(chunks);
        }
    }
    chunks.buf().push_str("]}");
    Ok(chunks)
}
