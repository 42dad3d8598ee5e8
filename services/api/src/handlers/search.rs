//! `events/index` and `restSearch` (JSON) over the read models, with the access rule in SQL.

use super::support::{self, json};
use super::Request;
use crate::acl_sql;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::filters::{self, Sql, Terms};
use crate::render::{self, ATTRIBUTE_COLUMNS, EVENT_COLUMNS, ViewOptions};
use crate::state::AppState;
use crate::warninglists::{Annotator, WarningsView};
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Map, Value, json};

/// Request parameters from a JSON body (optionally `{"request": …}`) and CakePHP named params.
pub fn params(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "request").clone();
    let mut m = match body {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(ApiError::BadRequest("The search parameters must be a JSON object.".into())),
    };
    for (k, v) in &req.path.named {
        m.entry(k.clone()).or_insert_with(|| Value::String(v.clone()));
    }
    Ok(m)
}

fn pipe_terms(v: Option<&Value>) -> Terms {
    // events/index takes `|`-separated strings
    match v {
        Some(Value::String(s)) if s.contains('|') => filters::terms(Some(&Value::Array(s.split('|').map(|x| Value::String(x.into())).collect()))),
        other => filters::terms(other),
    }
}

fn with_count(mut response: Response, count: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        response.headers_mut().insert("X-Result-Count", v);
    }
    response
}

fn limit_page(p: &Map<String, Value>) -> (Option<i64>, i64) {
    let limit = crate::body::int(p.get("limit")).filter(|l| *l > 0);
    let page = crate::body::int(p.get("page")).filter(|p| *p > 0).unwrap_or(1);
    (limit, page)
}

/// Conditions on `rm.events e` shared by the index and restSearch.
fn event_conditions(sql: &mut Sql, p: &Map<String, Value>, now: i64) {
    let ids = pipe_terms(p.get("eventid").or_else(|| p.get("event_id")));
    if !ids.is_empty() {
        let (uuids, nums): (Vec<String>, Vec<String>) = ids.or.iter().cloned().partition(|s| uuid::Uuid::parse_str(s).is_ok());
        let mut alternatives = Vec::new();
        if !nums.is_empty() {
            let v: Vec<i64> = nums.iter().filter_map(|s| s.parse().ok()).collect();
            let ph = sql.param(v);
            alternatives.push(format!("e.id = ANY({ph})"));
        }
        if !uuids.is_empty() {
            let v: Vec<uuid::Uuid> = uuids.iter().filter_map(|s| uuid::Uuid::parse_str(s).ok()).collect();
            let ph = sql.param(v);
            alternatives.push(format!("e.uuid = ANY({ph})"));
        }
        if !alternatives.is_empty() {
            sql.and(format!("({})", alternatives.join(" OR ")));
        }
        for n in &ids.not {
            if let Ok(id) = n.parse::<i64>() {
                let ph = sql.param(id);
                sql.and(format!("e.id <> {ph}"));
            }
        }
    }
    if let Some(u) = p.get("uuid").and_then(Value::as_str).and_then(|s| uuid::Uuid::parse_str(s.trim()).ok()) {
        let ph = sql.param(u);
        sql.and(format!("(e.uuid = {ph} OR EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND x.uuid = {ph}))"));
    }
    for (key, column) in [("timestamp", "e.timestamp"), ("event_timestamp", "e.timestamp"), ("publish_timestamp", "e.publish_timestamp"), ("last", "e.publish_timestamp"), ("publishtimestamp", "e.publish_timestamp")] {
        if let Some((from, to)) = filters::time_range(p.get(key), now) {
            if let Some(f) = from {
                let ph = sql.param(f);
                sql.and(format!("{column} >= {ph}"));
            }
            if let Some(t) = to {
                let ph = sql.param(t);
                sql.and(format!("{column} <= {ph}"));
            }
        }
    }
    for (key, op) in [("from", ">="), ("datefrom", ">="), ("to", "<="), ("dateuntil", "<=")] {
        if let Some(v) = p.get(key) {
            let date = match v {
                Value::Number(n) => n.as_f64().and_then(|f| chrono::DateTime::from_timestamp(f as i64, 0)).map(|t| t.date_naive()),
                Value::String(s) => chrono::NaiveDate::parse_from_str(s.trim().get(..10).unwrap_or(""), "%Y-%m-%d").ok(),
                _ => None,
            };
            if let Some(d) = date {
                let ph = sql.param(d);
                sql.and(format!("e.date {op} {ph}"));
            }
        }
    }
    if let Some(published) = p.get("published").filter(|v| !v.is_array()).and_then(|v| crate::body::flag(Some(v))) {
        let ph = sql.param(published);
        sql.and(format!("e.published = {ph}"));
    }
    let info = pipe_terms(p.get("eventinfo"));
    if !info.is_empty() {
        sql.match_terms(&["e.info"], &info, true);
    }
    for (key, column) in [("threat_level_id", "e.threat_level_id"), ("threatlevel", "e.threat_level_id"), ("analysis", "e.analysis"), ("distribution", "e.distribution")] {
        let t = pipe_terms(p.get(key));
        let values: Vec<i16> = t.or.iter().filter_map(|s| s.parse().ok()).collect();
        if !values.is_empty() {
            let ph = sql.param(values);
            sql.and(format!("{column} = ANY({ph})"));
        }
        let not: Vec<i16> = t.not.iter().filter_map(|s| s.parse().ok()).collect();
        if !not.is_empty() {
            let ph = sql.param(not);
            sql.and(format!("NOT ({column} = ANY({ph}))"));
        }
    }
    let orgs = pipe_terms(p.get("org"));
    if !orgs.is_empty() {
        let ors: Vec<String> = orgs.or.iter().map(|s| s.to_lowercase()).collect();
        if !ors.is_empty() {
            let ph = sql.param(ors);
            sql.and(format!(
                "EXISTS (SELECT 1 FROM rm.organisations og WHERE og.id = e.orgc_id AND (og.id::text = ANY({ph}) OR lower(og.name) = ANY({ph}) OR og.uuid::text = ANY({ph})))"
            ));
        }
        let nots: Vec<String> = orgs.not.iter().map(|s| s.to_lowercase()).collect();
        if !nots.is_empty() {
            let ph = sql.param(nots);
            sql.and(format!(
                "NOT EXISTS (SELECT 1 FROM rm.organisations og WHERE og.id = e.orgc_id AND (og.id::text = ANY({ph}) OR lower(og.name) = ANY({ph}) OR og.uuid::text = ANY({ph})))"
            ));
        }
    }
}

fn sharing_group_ids(p: &Map<String, Value>) -> Option<(Vec<i64>, Vec<i64>)> {
    let t = pipe_terms(p.get("sharinggroup").or_else(|| p.get("sharing_group_id")));
    if t.is_empty() {
        return None;
    }
    let parse = |v: &Vec<String>| v.iter().filter_map(|s| s.parse::<i64>().ok()).collect::<Vec<i64>>();
    Some((parse(&t.or), parse(&t.not)))
}

/// `sharinggroup` on Events: the Event's own sharing group.
fn event_sharing_group(sql: &mut Sql, p: &Map<String, Value>) {
    if let Some((yes, no)) = sharing_group_ids(p) {
        if !yes.is_empty() {
            let ph = sql.param(yes);
            sql.and(format!("(e.distribution = 4 AND e.sharing_group_id = ANY({ph}))"));
        }
        if !no.is_empty() {
            let ph = sql.param(no);
            sql.and(format!("NOT (e.distribution = 4 AND e.sharing_group_id = ANY({ph}))"));
        }
    }
}

/// `sharinggroup` on Attributes: their own group, or the Event's when they inherit.
fn attribute_sharing_group(sql: &mut Sql, p: &Map<String, Value>) {
    if let Some((yes, no)) = sharing_group_ids(p) {
        let effective = |ph: &str| {
            format!("((a.distribution = 4 AND a.sharing_group_id = ANY({ph})) OR (a.distribution = 5 AND e.distribution = 4 AND e.sharing_group_id = ANY({ph})))")
        };
        if !yes.is_empty() {
            let ph = sql.param(yes);
            sql.and(effective(&ph));
        }
        if !no.is_empty() {
            let ph = sql.param(no);
            sql.and(format!("NOT {}", effective(&ph)));
        }
    }
}

/// `GET|POST /events/index`: flat Event rows, with `X-Result-Count`.
pub async fn index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = params(req)?;
    let now = chrono::Utc::now().timestamp();
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = Sql::default();
    acl_sql::events(&mut sql, &viewer, &settings, "e");
    event_conditions(&mut sql, &p, now);
    event_sharing_group(&mut sql, &p);
    let search = p.get("all").or_else(|| p.get("searchall")).or_else(|| p.get("quickfilter")).and_then(Value::as_str).map(str::to_lowercase);
    if let Some(s) = search.filter(|s| !s.is_empty()) {
        let ph = sql.param(format!("%{s}%"));
        sql.and(format!(
            "(lower(e.info) LIKE {ph} OR e.uuid::text LIKE {ph} OR EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND NOT x.deleted \
             AND (lower(x.value1) LIKE {ph} OR lower(x.value2) LIKE {ph} OR lower(x.comment) LIKE {ph})) \
             OR EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = e.id AND lower(t.name) LIKE {ph}))"
        ));
    }
    let tags = pipe_terms(p.get("tags").or_else(|| p.get("tag")));
    for (terms, negate) in [(&tags.or, false), (&tags.not, true)] {
        if terms.is_empty() {
            continue;
        }
        let ph = sql.param(terms.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>());
        let exists = format!(
            "EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = e.id AND (lower(t.name) = ANY({ph}) OR t.id::text = ANY({ph})))"
        );
        sql.and(if negate { format!("NOT {exists}") } else { exists });
    }
    if let Some(v) = p.get("attribute").or_else(|| p.get("value")).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        let ph = sql.param(format!("%{}%", v.to_lowercase()));
        sql.and(format!(
            "EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND NOT x.deleted AND (lower(x.value1) LIKE {ph} OR lower(x.value2) LIKE {ph}))"
        ));
    }
    let client = state.pool.get().await?;
    let where_clause = sql.where_clause();
    let count: i64 = client.query_one(&format!("SELECT count(*) FROM rm.events e WHERE {where_clause}"), &sql.refs()).await?.get(0);
    let sort_column = match p.get("sort").and_then(Value::as_str).unwrap_or("id") {
        "info" => "e.info",
        "date" => "e.date",
        "timestamp" => "e.timestamp",
        "publish_timestamp" => "e.publish_timestamp",
        "threat_level_id" => "e.threat_level_id",
        "analysis" => "e.analysis",
        "distribution" => "e.distribution",
        "attribute_count" => "e.attribute_count",
        "uuid" => "e.uuid",
        _ => "e.id",
    };
    let desc = p.get("direction").and_then(Value::as_str).is_some_and(|d| d.eq_ignore_ascii_case("desc"))
        || crate::body::flag(p.get("desc")).unwrap_or(false);
    let (limit, page) = limit_page(&p);
    let mut query = format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE {where_clause} ORDER BY {sort_column} {}, e.id", if desc { "DESC" } else { "ASC" });
    if let Some(l) = limit {
        query.push_str(&format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
    }
    let rows = client.query(&query, &sql.refs()).await?;
    let events: Vec<render::EventRow> = rows.iter().map(render::event_row).collect();
    let mut org_ids: Vec<i64> = events.iter().flat_map(|e| [e.access.org_id, e.orgc_id]).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = render::org_shorts(&client, &org_ids).await?;
    let minimal = crate::body::flag(p.get("minimal")).unwrap_or(false);
    let mut list = Vec::with_capacity(events.len());
    for e in &events {
        if minimal {
            let row = render::index_row(&client, e, &orgs).await?;
            list.push(json!({"id": row["id"], "timestamp": row["timestamp"], "sighting_timestamp": row["sighting_timestamp"],
                             "published": row["published"], "uuid": row["uuid"], "orgc_uuid": row["Orgc"]["uuid"]}));
        } else {
            list.push(render::index_row(&client, e, &orgs).await?);
        }
    }
    Ok(with_count(json(Value::Array(list)), count))
}

fn deleted_mode(p: &Map<String, Value>) -> (bool, bool) {
    // (include deleted, only deleted)
    match p.get("deleted") {
        Some(Value::Array(a)) if a.len() > 1 => (true, false),
        Some(Value::Array(a)) => (false, a.first().and_then(|v| crate::body::flag(Some(v))).unwrap_or(false)),
        Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("only") => (false, true),
            _ => (false, crate::body::flag(Some(v)).unwrap_or(false)),
        },
        None => (false, false),
    }
}

/// Conditions on `rm.attributes a` (joined with `e` and `o`).
fn attribute_conditions(sql: &mut Sql, p: &Map<String, Value>, now: i64) {
    let values = filters::terms(p.get("value"));
    if !values.is_empty() {
        sql.match_terms(&["a.value1", "a.value2", "(a.value1 || '|' || a.value2)"], &values, true);
    }
    for (key, column) in [("type", "a.type"), ("category", "a.category"), ("object_relation", "a.object_relation")] {
        let t = filters::terms(p.get(key));
        if !t.is_empty() {
            sql.match_terms(&[column], &t, false);
        }
    }
    if let Some(to_ids) = p.get("to_ids").and_then(|v| crate::body::flag(Some(v))) {
        let ph = sql.param(to_ids);
        sql.and(format!("a.to_ids = {ph}"));
    }
    if let Some((from, to)) = filters::time_range(p.get("attribute_timestamp"), now) {
        if let Some(f) = from {
            let ph = sql.param(f);
            sql.and(format!("a.timestamp >= {ph}"));
        }
        if let Some(t) = to {
            let ph = sql.param(t);
            sql.and(format!("a.timestamp <= {ph}"));
        }
    }
}

/// `includeWarninglistHits` and `enforceWarninglist`.
fn warnings_view(p: &Map<String, Value>) -> WarningsView {
    WarningsView {
        annotate: crate::body::flag(p.get("includeWarninglistHits")).unwrap_or(false),
        enforce: crate::body::flag(p.get("enforceWarninglist")).unwrap_or(false),
    }
}

/// `POST /events/restSearch` (JSON): `{"response": [{"Event": …}]}`.
pub async fn events_rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = params(req)?;
    let now = chrono::Utc::now().timestamp();
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = Sql::default();
    acl_sql::events(&mut sql, &viewer, &settings, "e");
    event_conditions(&mut sql, &p, now);
    event_sharing_group(&mut sql, &p);
    let mut attr = Sql::default();
    attr.params = std::mem::take(&mut sql.params);
    attribute_conditions(&mut attr, &p, now);
    sql.params = std::mem::take(&mut attr.params);
    if !attr.conditions.is_empty() {
        sql.and(format!("EXISTS (SELECT 1 FROM rm.attributes a WHERE a.event_id = e.id AND {})", attr.where_clause()));
    }
    let (limit, page) = limit_page(&p);
    let mut query = format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE {} ORDER BY e.id", sql.where_clause());
    if let Some(l) = limit {
        query.push_str(&format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
    }
    let client = state.pool.get().await?;
    let rows = client.query(&query, &sql.refs()).await?;
    let (deleted, only_deleted) = deleted_mode(&p);
    let options = ViewOptions {
        deleted,
        only_deleted,
        metadata: crate::body::flag(p.get("metadata")).unwrap_or(false),
        ..Default::default()
    };
    let mut list = Vec::new();
    for r in &rows {
        let row = render::event_row(r);
        if let Some(mut v) = render::event_json(&client, &viewer, &settings, &row, &options).await? {
            super::sharing_groups::attach(state, &mut v).await?;
            list.push(v);
        }
    }
    let warnings = warnings_view(&p);
    if let Some((matcher, reference)) = support::warnings_for(state, warnings).await? {
        let annotator = Annotator { matcher: &matcher, catalog: reference.warninglists.loaded(), view: warnings };
        list.iter_mut().for_each(|e| annotator.event(e));
    }
    let count = list.len() as i64;
    Ok(with_count(json(json!({ "response": list })), count))
}

/// `POST /attributes/restSearch` (JSON): `{"response": {"Attribute": [...]}}`.
pub async fn attributes_rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = params(req)?;
    let now = chrono::Utc::now().timestamp();
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = Sql::default();
    acl_sql::attributes(&mut sql, &viewer, &settings);
    // Event-level filters apply to the attribute's Event; `timestamp` is the attribute's own.
    let mut event_params = p.clone();
    let attribute_time = event_params.remove("timestamp");
    event_conditions(&mut sql, &event_params, now);
    attribute_conditions(&mut sql, &p, now);
    attribute_sharing_group(&mut sql, &p);
    if let Some((from, to)) = filters::time_range(attribute_time.as_ref(), now) {
        if let Some(f) = from {
            let ph = sql.param(f);
            sql.and(format!("a.timestamp >= {ph}"));
        }
        if let Some(t) = to {
            let ph = sql.param(t);
            sql.and(format!("a.timestamp <= {ph}"));
        }
    }
    let (deleted, only_deleted) = deleted_mode(&p);
    let owner_only = if viewer.site_admin || !(deleted || only_deleted) { String::new() } else { format!(" AND e.org_id = {}", sql.param(viewer.org_id)) };
    if only_deleted {
        sql.and(format!("(a.deleted{owner_only})"));
    } else if deleted {
        sql.and(format!("(NOT a.deleted OR (a.deleted{owner_only}))"));
    } else {
        sql.and("NOT a.deleted".into());
    }
    let tags = filters::terms(p.get("tags"));
    for (terms, negate) in [(&tags.or, false), (&tags.not, true)] {
        if terms.is_empty() {
            continue;
        }
        let ph = sql.param(terms.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>());
        let exists = format!(
            "EXISTS (SELECT 1 FROM rm.attribute_tags at JOIN rm.tags t ON t.id = at.tag_id WHERE at.attribute_id = a.id \
             AND (lower(t.name) LIKE ANY({ph}) OR t.id::text = ANY({ph})))"
        );
        sql.and(if negate { format!("NOT {exists}") } else { exists });
    }
    let (limit, page) = limit_page(&p);
    let mut query = format!(
        "SELECT {ATTRIBUTE_COLUMNS} FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id \
         LEFT JOIN rm.objects o ON o.id = a.object_id WHERE {} ORDER BY a.id",
        sql.where_clause()
    );
    if let Some(l) = limit {
        query.push_str(&format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
    }
    let client = state.pool.get().await?;
    let rows = client.query(&query, &sql.refs()).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let tag_rows = client
        .query(
            &format!(
                "SELECT at.attribute_id, {} , at.local, at.relationship_type FROM rm.attribute_tags at \
                 JOIN rm.tags t ON t.id = at.tag_id AND NOT t.deleted WHERE at.attribute_id = ANY($1) AND t.exportable ORDER BY t.id",
                render::TAG_COLUMNS
            ),
            &[&ids],
        )
        .await?;
    let mut tags_by: std::collections::HashMap<i64, Vec<Value>> = std::collections::HashMap::new();
    for r in &tag_rows {
        let mut t = render::tag_json(r, 1);
        t["local"] = json!(r.get::<_, bool>(12));
        t["relationship_type"] = json!(r.get::<_, Option<String>>(13));
        tags_by.entry(r.get(0)).or_default().push(t);
    }
    let include_context = crate::body::flag(p.get("includeContext")).unwrap_or(false);
    let include_correlations = crate::body::flag(p.get("includeCorrelations")).unwrap_or(false);
    let mut events: std::collections::HashMap<i64, Value> = std::collections::HashMap::new();
    if include_context || include_correlations {
        let event_ids: Vec<i64> = rows.iter().map(|r| r.get::<_, i64>(2)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let event_rows = client.query(&format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE e.id = ANY($1)"), &[&event_ids]).await?;
        let parsed: Vec<render::EventRow> = event_rows.iter().map(render::event_row).collect();
        let mut org_ids: Vec<i64> = parsed.iter().flat_map(|e| [e.access.org_id, e.orgc_id]).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let orgs = render::org_shorts(&client, &org_ids).await?;
        for e in &parsed {
            events.insert(e.id, render::index_row(&client, e, &orgs).await?);
        }
    }
    let mut related: std::collections::HashMap<i64, Vec<Value>> = std::collections::HashMap::new();
    if include_correlations {
        let correlation_settings = support::correlation_settings(state).await?;
        let found = crate::correlations::related(&client, &viewer, &settings, &correlation_settings, crate::correlations::Scope::Attributes(&ids)).await?;
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
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        let (mut v, _, _) = render::attribute_json(r);
        let id: i64 = r.get(0);
        v["Tag"] = Value::Array(tags_by.remove(&id).unwrap_or_default());
        if include_context || include_correlations {
            if let Some(e) = events.get(&r.get::<_, i64>(2)) {
                v["Event"] = e.clone();
            }
        }
        if include_correlations {
            v["RelatedAttribute"] = Value::Array(related.remove(&id).unwrap_or_default());
        }
        list.push(v);
    }
    let warnings = warnings_view(&p);
    if let Some((matcher, reference)) = support::warnings_for(state, warnings).await? {
        Annotator { matcher: &matcher, catalog: reference.warninglists.loaded(), view: warnings }.attributes(&mut list);
    }
    let count = list.len() as i64;
    Ok(with_count(json(json!({ "response": { "Attribute": list } })), count))
}
