//! `/sightings/*`: "we saw this" (0), "false positive" (1) and "expiration" (2) reports on
//! attributes, each a change in the Event's sightings stream (misp_features.md §1.6). Who sees which
//! sightings is MISP's `Plugin.Sightings_policy`, decided by the one access rule.

use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::collab::{self, SIGHTING_COLUMNS};
use crate::commands::{self, CommandMeta};
use crate::error::ApiError;
use crate::filters::Sql;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::{self, ElementRef};
use cairn_domain::sighting::{self, SightingCommand, SightingContext, SightingDraft, SightingState};
use cairn_domain::{acl, stream};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

fn invalid_sighting() -> ApiError {
    ApiError::NotFound("Invalid sighting.".into())
}

/// An organisation id from an id, uuid or name (-1, matching nothing, when unknown).
async fn org_id(state: &AppState, key: &str) -> Result<i64, ApiError> {
    Ok(super::admin::find_org(state, key).await?.map_or(-1, |o| o.id))
}

/// Runs one sightings command on an Event's sightings stream.
async fn execute(state: &AppState, auth: &Authed, event_uuid: uuid::Uuid, name: &'static str, command: SightingCommand) -> Result<Vec<cairn_domain::Change>, ApiError> {
    let (event_state, _) = commands::load(state, event_uuid, event::evolve).await?;
    let viewer = support::viewer(state, auth).await?;
    let access = support::access_settings(state).await?;
    let actor = auth.actor();
    let role = auth.role.clone();
    let now = chrono::Utc::now().timestamp();
    let meta = CommandMeta::new(name, auth.actor());
    let executed = commands::execute(state, &meta, stream::sightings_stream(event_uuid), stream::SIGHTINGS, sighting::evolve, |s: &SightingState| {
        let ctx = SightingContext { actor: &actor, role: &role, now, viewer: &viewer, access };
        Ok((sighting::decide(s, &event_state, &ctx, command.clone()).map_err(|e| super::events::refusal(e, "add the Sighting"))?, ()))
    })
    .await?;
    Ok(executed.changes)
}

/// When the sighting happened: `timestamp` (epoch), or `date` + `time`; `None`: now.
fn sighting_time(v: &Value) -> Option<i64> {
    if let Some(t) = crate::body::int(v.get("timestamp")).filter(|t| *t > 0) {
        return Some(t);
    }
    let date = v.get("date").and_then(Value::as_str)?;
    let time = v.get("time").and_then(Value::as_str).unwrap_or("00:00:00");
    chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S").ok().map(|d| d.and_utc().timestamp())
}

/// The visible, live attributes a `value` (or several) names: (event uuid, attribute id).
async fn attributes_with_values(state: &AppState, auth: &Authed, values: &[String]) -> Result<Vec<(uuid::Uuid, i64)>, ApiError> {
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = Sql::default();
    crate::acl_sql::attributes(&mut sql, &viewer, &settings);
    let lowered: Vec<String> = values.iter().map(|v| v.trim().to_lowercase()).collect();
    let ph = sql.param(lowered);
    sql.and(format!("NOT a.deleted AND (lower(a.value1) = ANY({ph}) OR (a.value2 <> '' AND lower(a.value2) = ANY({ph})))"));
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT e.uuid, a.id FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id \
                 WHERE {} ORDER BY a.id",
                sql.where_clause()
            ),
            &sql.refs(),
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `POST /sightings/add[/{attribute id|uuid}]` with `{"value" | "values" | "id" | "uuid", "source",
/// "type", "timestamp" | "date"+"time"}`: one sighting per attribute (by value: every visible
/// attribute holding it). Answers the last one recorded.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    // PyMISP may send a list (of earlier sightings) with an attribute in the path: no fields then.
    let body = match body {
        Value::Object(_) => crate::body::unwrap(&body, "Sighting").clone(),
        _ => json!({}),
    };
    let sighting_type = match body.get("type") {
        None | Some(Value::Null) => 0,
        Some(v) => crate::body::int(Some(v)).and_then(|t| u8::try_from(t).ok()).ok_or_else(|| ApiError::SaveFailed {
            name: "Could not add the Sighting".into(),
            errors: json!({"type": ["Invalid type. Valid options are: 0 (sighting), 1 (false-positive), 2 (expiration)."]}),
        })?,
    };
    let source = crate::body::text(body.get("source")).unwrap_or_default();
    let date_sighting = sighting_time(&body);
    let target = req.path.args.first().cloned().or_else(|| crate::body::text(body.get("id"))).or_else(|| crate::body::text(body.get("uuid")));
    let targets: Vec<(uuid::Uuid, i64)> = match target {
        Some(key) => {
            let (event_uuid, id) = super::proposals::attribute_event(state, auth, &key).await?;
            vec![(event_uuid, id)]
        }
        None => {
            let mut values: Vec<String> = Vec::new();
            if let Some(v) = crate::body::text(body.get("value")) {
                values.push(v);
            }
            if let Some(Value::Array(list)) = body.get("values") {
                values.extend(list.iter().filter_map(|v| crate::body::text(Some(v))));
            }
            if values.is_empty() {
                return Err(ApiError::SaveFailed {
                    name: "Could not add the Sighting".into(),
                    errors: json!({"value": ["No attribute given: send an attribute id or uuid, or a value."]}),
                });
            }
            attributes_with_values(state, auth, &values).await?
        }
    };
    if targets.is_empty() {
        return Err(ApiError::NotFound("Could not add the Sighting. Reason: No valid attributes found.".into()));
    }
    if !(auth.role.perm_sighting || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let mut by_event: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
    for (e, a) in targets {
        by_event.entry(e).or_default().push(a);
    }
    let total: usize = by_event.values().map(Vec::len).sum();
    let mut ids = crate::commands::allocate_ids(state, "sighting", total).await?.into_iter();
    let mut last = None;
    for (event_uuid, attributes) in by_event {
        let drafts: Vec<SightingDraft> = attributes
            .into_iter()
            .map(|a| SightingDraft {
                id: ids.next().unwrap_or_default(),
                uuid: uuid::Uuid::new_v4(),
                attribute: ElementRef::Id(a),
                sighting_type,
                source: source.clone(),
                date_sighting,
                org_id: None,
            })
            .collect();
        for c in execute(state, auth, event_uuid, "sightings.add", SightingCommand::Add { sightings: drafts }).await? {
            if let cairn_domain::Change::SightingAdded(s) = c {
                last = Some(s.id);
            }
        }
    }
    let id = last.ok_or_else(|| ApiError::SaveFailed { name: "Could not add the Sighting".into(), errors: json!("Nothing was recorded.") })?;
    let found = visible(state, auth, |sql| {
        let ph = sql.param(id);
        sql.and(format!("g.id = {ph}"));
    })
    .await?;
    let v = found.into_iter().next().ok_or_else(|| ApiError::Internal("sighting not recorded".into()))?;
    Ok(json(json!({"Sighting": v})))
}

/// Sightings the caller may see (attribute visible, then the sighting policy), filtered by `filter`
/// on `rm.sightings g` (joined with `e`, `a`, `o`), in id order.
async fn visible(state: &AppState, auth: &Authed, filter: impl FnOnce(&mut Sql)) -> Result<Vec<Value>, ApiError> {
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let policy = support::sighting_settings(state).await?;
    let mut sql = Sql::default();
    crate::acl_sql::attributes(&mut sql, &viewer, &settings);
    filter(&mut sql);
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {SIGHTING_COLUMNS}, {}, a.distribution, a.sharing_group_id, o.distribution, o.sharing_group_id, a.object_id \
                 FROM rm.sightings g JOIN rm.events e ON e.id = g.event_id JOIN rm.attributes a ON a.id = g.attribute_id \
                 LEFT JOIN rm.objects o ON o.id = a.object_id WHERE {} ORDER BY g.id",
                crate::render::EVENT_COLUMNS,
                sql.where_clause()
            ),
            &sql.refs(),
        )
        .await?;
    let mut org_ids: Vec<i64> = rows.iter().map(|r| r.get(4)).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = collab::orgs(&client, &org_ids).await?;
    let mut reported: HashMap<i64, bool> = HashMap::new();
    let base = SIGHTING_COLUMNS.split(',').count();
    let mut out = Vec::new();
    for r in &rows {
        let event = crate::render::event_row_at(r, base);
        let tail = base + 21;
        let a = acl::ElementAccess { distribution: r.get::<_, i16>(tail) as u8, sharing_group_id: r.get(tail + 1) };
        let object_id: i64 = r.get(tail + 4);
        let o = (object_id != 0).then(|| acl::ElementAccess {
            distribution: r.get::<_, Option<i16>>(tail + 2).unwrap_or(0) as u8,
            sharing_group_id: r.get::<_, Option<i64>>(tail + 3).unwrap_or(0),
        });
        let org_reported = match reported.get(&event.id) {
            Some(v) => *v,
            None => {
                let v = collab::org_reported(&client, event.id, viewer.org_id).await?;
                reported.insert(event.id, v);
                v
            }
        };
        if acl::sighting_visible(&viewer, &event.access, &a, o.as_ref(), &settings, &policy, r.get(4), org_reported) {
            out.push(collab::sighting_json(r, &orgs));
        }
    }
    Ok(out)
}

/// `POST /sightings/delete/{id|uuid}`.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().map(|s| s.trim().to_string()).ok_or_else(invalid_sighting)?;
    let found = visible(state, auth, |sql| match uuid::Uuid::parse_str(&key) {
        Ok(u) => {
            let ph = sql.param(u);
            sql.and(format!("g.uuid = {ph}"));
        }
        Err(_) => {
            let ph = sql.param(key.parse::<i64>().unwrap_or(-1));
            sql.and(format!("g.id = {ph}"));
        }
    })
    .await?;
    let s = found.into_iter().next().ok_or_else(invalid_sighting)?;
    let id: i64 = s["id"].as_str().and_then(|x| x.parse().ok()).ok_or_else(invalid_sighting)?;
    let event_uuid = s["event_uuid"].as_str().and_then(|u| uuid::Uuid::parse_str(u).ok()).ok_or_else(invalid_sighting)?;
    execute(state, auth, event_uuid, "sightings.delete", SightingCommand::Delete { id }).await?;
    Ok(support::saved("Sighting successfully deleted.", &req.url, Some(id.to_string())))
}

/// `POST /sightings/listSightings` with `{"context": "event"|"attribute", "id", "org_id"?}` (also
/// `/sightings/listSightings/{id}/{context}[/{org_id}]`).
pub async fn list(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let arg = |i: usize| req.path.args.get(i).cloned();
    let id = crate::body::text(body.get("id")).or_else(|| arg(0)).ok_or_else(|| ApiError::BadRequest("Missing id.".into()))?;
    let context = crate::body::text(body.get("context")).or_else(|| arg(1)).unwrap_or_else(|| "attribute".into());
    let org = match crate::body::text(body.get("org_id")).or_else(|| arg(2)) {
        Some(key) => Some(org_id(state, &key).await?),
        None => None,
    };
    let found = visible(state, auth, |sql| {
        let key = id.trim().to_string();
        let (column, uuid_column) = if context == "event" { ("e.id", "e.uuid") } else { ("a.id", "a.uuid") };
        match uuid::Uuid::parse_str(&key) {
            Ok(u) => {
                let ph = sql.param(u);
                sql.and(format!("{uuid_column} = {ph}"));
            }
            Err(_) => {
                let ph = sql.param(key.parse::<i64>().unwrap_or(-1));
                sql.and(format!("{column} = {ph}"));
            }
        }
        if let Some(org) = org {
            let ph = sql.param(org);
            sql.and(format!("g.org_id = {ph}"));
        }
    })
    .await?;
    Ok(json(Value::Array(found.into_iter().map(|s| json!({"Sighting": s})).collect())))
}

/// `GET|POST /sightings/index[/{event}]`: every sighting the caller may see (of one Event).
pub async fn index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let event = req.path.args.first().and_then(|s| s.trim().parse::<i64>().ok());
    let found = visible(state, auth, |sql| {
        if let Some(e) = event {
            let ph = sql.param(e);
            sql.and(format!("e.id = {ph}"));
        }
    })
    .await?;
    Ok(json(Value::Array(found.into_iter().map(|s| json!({"Sighting": s})).collect())))
}

/// `POST /sightings/restSearch[/{context}]` with `{"id", "context", "type", "from", "to", "last",
/// "org_id", "source", "includeAttribute", "includeEvent"}`: a list of `{"Sighting": {…}}`.
pub async fn rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = crate::search::Params::read(req)?;
    let context = p.text("context").or_else(|| req.path.args.first().cloned()).unwrap_or_default().to_lowercase();
    let now = chrono::Utc::now().timestamp();
    let time = |sql: &mut Sql, key: &str, op: &str| -> bool {
        match p.get(key) {
            None => true,
            Some(v) => match crate::filters::time_point(v, now) {
                Some(t) => {
                    let ph = sql.param(t);
                    sql.and(format!("g.date_sighting {op} {ph}"));
                    true
                }
                None => false,
            },
        }
    };
    let org = match p.text("org_id") {
        Some(key) => Some(org_id(state, &key).await?),
        None => None,
    };
    // `uuid`: one or a list — of Events in the event context (MISP's pull asks for the sightings of
    // the Events it pulled), of attributes in the attribute context, else of sightings.
    let uuids: Vec<uuid::Uuid> = match p.get("uuid") {
        Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str().and_then(|u| uuid::Uuid::parse_str(u.trim()).ok())).collect(),
        Some(v) => v.as_str().and_then(|u| uuid::Uuid::parse_str(u.trim()).ok()).into_iter().collect(),
        None => Vec::new(),
    };
    let mut valid = p.get("uuid").is_none() || !uuids.is_empty();
    let found = visible(state, auth, |sql| {
        if !uuids.is_empty() {
            let column = match context.as_str() {
                "event" => "e.uuid",
                "attribute" => "a.uuid",
                _ => "g.uuid",
            };
            let ph = sql.param(uuids.clone());
            sql.and(format!("{column} = ANY({ph})"));
        }
        if let Some(id) = p.text("id") {
            let column = match context.as_str() {
                "event" => "e.id",
                "attribute" => "a.id",
                _ => "g.id",
            };
            let ph = sql.param(id.parse::<i64>().unwrap_or(-1));
            sql.and(format!("{column} = {ph}"));
        }
        if let Some(t) = p.int("type") {
            let ph = sql.param(t as i16);
            sql.and(format!("g.type = {ph}"));
        }
        if let Some(org) = org {
            let ph = sql.param(org);
            sql.and(format!("g.org_id = {ph}"));
        }
        if let Some(source) = p.text("source") {
            let ph = sql.param(source);
            sql.and(format!("g.source = {ph}"));
        }
        valid &= time(sql, "from", ">=");
        valid &= time(sql, "to", "<=");
        valid &= time(sql, "last", ">=");
        valid &= time(sql, "publish_timestamp", ">=");
    })
    .await?;
    if !valid {
        return Ok(json(json!([])));
    }
    let include_attribute = p.on("includeAttribute");
    let include_event = p.on("includeEvent");
    let client = state.pool.get().await?;
    let mut list = Vec::with_capacity(found.len());
    for mut s in found {
        if include_attribute {
            let id: i64 = s["attribute_id"].as_str().and_then(|x| x.parse().ok()).unwrap_or(0);
            let stmt = client.prepare_cached(&format!("SELECT {} FROM rm.attributes a WHERE a.id = $1", crate::render::ATTRIBUTE_COLUMNS)).await?;
            if let Some(r) = client.query_opt(&stmt, &[&id]).await? {
                s["Attribute"] = crate::render::attribute_json(&r).0;
            }
        }
        if include_event {
            let id = s["event_id"].as_str().unwrap_or_default().to_string();
            if let Some(e) = crate::render::find_event(&client, &id).await? {
                s["Event"] = crate::render::event_summary(&e);
            }
        }
        list.push(json!({"Sighting": s}));
    }
    Ok(json(Value::Array(list)))
}

/// `POST /sightings/filterSightingUuidsForPush/{event}` (sync users): of the sighting uuids a peer
/// offers to push, those already recorded here (MISP's answer: the peer leaves them out).
pub async fn filter_for_push(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_sync || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let offered: Vec<uuid::Uuid> = body
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("Expected a list of sighting uuids.".into()))?
        .iter()
        .filter_map(|v| v.as_str().and_then(|u| uuid::Uuid::parse_str(u.trim()).ok()))
        .collect();
    let client = state.pool.get().await?;
    let known: Vec<String> =
        client.query("SELECT uuid FROM rm.sightings WHERE uuid = ANY($1)", &[&offered]).await?.iter().map(|r| r.get::<_, uuid::Uuid>(0).to_string()).collect();
    Ok(json(json!(known)))
}

/// `POST /sightings/bulkSaveSightings/{event uuid}` (sync users): a peer's sightings of one Event
/// (`[{"uuid", "attribute_uuid", "type", "source", "date_sighting", "Organisation": {"uuid", "name"}}]`),
/// each kept with its reporting organisation; known uuids and attributes this instance does not hold
/// are skipped, as MISP does.
pub async fn bulk_save(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_sync || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let key = req.path.args.first().ok_or_else(super::events::invalid_event)?;
    let (_, event_uuid) = super::events::resolve(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let items = body.as_array().ok_or_else(|| ApiError::BadRequest("Expected a list of sightings.".into()))?;
    let (event_state, _) = commands::load(state, event_uuid, event::evolve).await?;
    let mut drafts = Vec::new();
    for item in items {
        let s = crate::body::unwrap(item, "Sighting");
        let uuid_of = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|u| uuid::Uuid::parse_str(u.trim()).ok());
        let (Some(uuid), Some(attribute)) = (uuid_of(s.get("uuid")), uuid_of(s.get("attribute_uuid"))) else {
            return Err(ApiError::BadRequest("Every sighting needs a uuid and an attribute_uuid.".into()));
        };
        if event_state.attribute_by_uuid(&attribute).is_none_or(|a| a.deleted) {
            continue;
        }
        let org = item.get("Organisation").or_else(|| s.get("Organisation"));
        let org = org.and_then(|o| uuid_of(o.get("uuid"))).map(|uuid| crate::sync::WireOrg { uuid, name: crate::body::text(org.and_then(|o| o.get("name"))).unwrap_or_default() });
        let sighting_type = crate::body::int(s.get("type")).unwrap_or(0);
        let source = crate::body::text(s.get("source")).unwrap_or_default();
        if !(0..=2).contains(&sighting_type) || source.chars().count() > 255 {
            return Err(ApiError::BadRequest("A sighting's type is 0, 1 or 2 and its source at most 255 characters.".into()));
        }
        let date_sighting = crate::body::int(s.get("date_sighting")).filter(|t| *t > 0);
        let draft = SightingDraft { id: 0, uuid, attribute: ElementRef::Uuid(attribute), sighting_type: sighting_type as u8, source, date_sighting, org_id: None };
        drafts.push((draft, org));
    }
    // Ids, and the organisations, once every sighting is known to be well-formed.
    let mut ids = crate::commands::allocate_ids(state, "sighting", drafts.len()).await?.into_iter();
    let mut sightings = Vec::with_capacity(drafts.len());
    for (mut draft, org) in drafts {
        draft.id = ids.next().unwrap_or_default();
        if let Some(o) = org {
            draft.org_id = Some(crate::sync::ensure_org(state, auth, &o).await?);
        }
        sightings.push(draft);
    }
    let drafts = sightings;
    let saved = if drafts.is_empty() {
        0
    } else {
        let changes = execute(state, auth, event_uuid, "sightings.bulk_save", SightingCommand::Add { sightings: drafts }).await?;
        changes.iter().filter(|c| matches!(c, cairn_domain::Change::SightingAdded(_))).count()
    };
    Ok(super::support::saved(&format!("{saved} sightings saved"), &req.url, None))
}
