//! `/attributes/*`: add, edit, delete, restore, view, index, describeTypes.

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::dispatch::MispPath;
use crate::error::ApiError;
use crate::input;
use crate::render;
use crate::state::AppState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_domain::Change;
use cairn_domain::event::{ElementRef, EventCommand, IdPool};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// `GET /attributes/describeTypes.json`: pymisp's `describeTypes.json`, byte for byte.
pub fn describe_types(state: &AppState, _path: &MispPath) -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "application/json")], state.reference.describe_types_raw.clone()).into_response())
}

/// MISP's refusal of an attribute on an enabled warninglist when `enforceWarninglist` is set.
pub const TRIPS_WARNINGLIST: &str = "Attribute could not be saved as it trips over a warninglist and enforceWarninglist is enforced";

fn invalid_attribute() -> ApiError {
    ApiError::NotFound("Invalid attribute".into())
}

/// The Event (id, uuid) holding an attribute, if the caller can see it.
async fn owner_event(state: &AppState, auth: &Authed, key: &str) -> Result<(i64, uuid::Uuid, ElementRef), ApiError> {
    let client = state.pool.get().await?;
    let key = key.trim();
    let row = if let Ok(u) = uuid::Uuid::parse_str(key) {
        client.query_opt("SELECT id, event_id FROM rm.attributes WHERE uuid = $1", &[&u]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        client.query_opt("SELECT id, event_id FROM rm.attributes WHERE id = $1", &[&id]).await?
    } else {
        None
    };
    let row = row.ok_or_else(invalid_attribute)?;
    let (attribute_id, event_id): (i64, i64) = (row.get(0), row.get(1));
    let (id, uuid) = resolve(state, auth, &event_id.to_string()).await.map_err(|_| invalid_attribute())?;
    Ok((id, uuid, ElementRef::Id(attribute_id)))
}

async fn render_attribute(state: &AppState, auth: &Authed, id: i64, deleted: bool) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    render::attribute_view(&client, &support::viewer(state, auth).await?, &settings, &id.to_string(), deleted).await?.ok_or_else(invalid_attribute)
}

/// Ids of the attributes a decision added or touched, in order.
fn touched_attributes(changes: &[Change]) -> Vec<i64> {
    let mut out = Vec::new();
    for c in changes {
        if let Change::AttributeAdded(a) | Change::AttributeUpdated(a) = c {
            if !out.contains(&a.id) {
                out.push(a.id);
            }
        }
    }
    out
}

/// `POST /attributes/add/{event}[/breakOnDuplicate:0]` with one attribute or a list.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (_, uuid) = resolve(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let list: Vec<Value> = match &body {
        Value::Array(items) => items.clone(),
        other => vec![crate::body::unwrap(other, "Attribute").clone()],
    };
    if list.is_empty() {
        return Err(ApiError::SaveFailed { name: "Could not add Attribute".into(), errors: json!({"Attribute": ["No attributes given."]}) });
    }
    // `enforceWarninglist` (per attribute, or as a named parameter): refuse values on an enabled list.
    let enforce_all = req.path.named.get("enforceWarninglist").is_some_and(|v| v == "1" || v == "true");
    let mut refused: Vec<(String, cairn_domain::DomainError)> = Vec::new();
    let mut kept: Vec<usize> = (0..list.len()).collect();
    if enforce_all || list.iter().any(|a| crate::body::flag(crate::body::unwrap(a, "Attribute").get("enforceWarninglist")) == Some(true)) {
        let matcher = support::warninglists(state).await?;
        kept.retain(|&i| {
            let a = crate::body::unwrap(&list[i], "Attribute");
            let enforced = enforce_all || crate::body::flag(a.get("enforceWarninglist")) == Some(true);
            let field = |n: &str| a.get(n).and_then(Value::as_str).unwrap_or_default();
            let hit = enforced && !matcher.check_all(field("type"), field("value").trim()).is_empty();
            if hit {
                refused.push((format!("attribute_{i}"), cairn_domain::DomainError::Conflict(TRIPS_WARNINGLIST.into())));
            }
            !hit
        });
        if kept.is_empty() {
            return Err(ApiError::SaveFailed { name: "Could not add Attribute".into(), errors: json!(TRIPS_WARNINGLIST) });
        }
    }
    let requested = list.len();
    let list: Vec<Value> = kept.iter().map(|&i| list[i].clone()).collect();
    let mut names = Vec::new();
    for a in &list {
        input::tag_names(a, &mut names);
    }
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut drafts = list.iter().map(|a| input::attribute_draft(a, &tags.map)).collect::<Result<Vec<_>, _>>()?;
    let facts = crate::regexps::load(state).await?;
    drafts.iter_mut().try_for_each(|d| crate::regexps::apply_attribute(&facts.regexps, d))?;
    let break_on_duplicate = req.path.named.get("breakOnDuplicate").is_none_or(|v| v != "0" && v != "false");
    let ids = IdPool {
        attributes: VecDeque::from(crate::commands::allocate_ids(state, "attribute", drafts.len()).await?),
        ..Default::default()
    };
    let command = EventCommand::AddAttributes { drafts, break_on_duplicate, ids };
    let mut executed = super::events::run_with_tags(state, auth, uuid, "attributes.add", "add Attribute", command, tags).await?;
    // Errors name attributes by their position in the request.
    for (k, _) in &mut executed.extra {
        if let Some(j) = k.strip_prefix("attribute_").and_then(|j| j.parse::<usize>().ok()) {
            *k = format!("attribute_{}", kept.get(j).copied().unwrap_or(j));
        }
    }
    executed.extra.extend(refused);
    let added = touched_attributes(&executed.changes);
    let mut rendered = Vec::new();
    for id in &added {
        // An untagged attribute is answered from the change just recorded (no read needed).
        let recorded = executed.changes.iter().rev().find_map(|c| match c {
            Change::AttributeAdded(a) | Change::AttributeUpdated(a) if a.id == *id && a.tags.is_empty() => Some(a),
            _ => None,
        });
        match recorded {
            Some(a) => {
                let mut v = render::attribute_model_json(a);
                v["Tag"] = json!([]);
                rendered.push(v);
            }
            None => rendered.push(render_attribute(state, auth, *id, false).await?),
        }
    }
    if requested == 1 || rendered.len() == 1 && executed.extra.is_empty() {
        let attribute = rendered.into_iter().next().ok_or_else(|| ApiError::Internal("no attribute recorded".into()))?;
        return Ok(json(json!({ "Attribute": attribute })));
    }
    let mut response = json!({ "Attribute": rendered });
    if !executed.extra.is_empty() {
        let mut errors = serde_json::Map::new();
        for (k, e) in &executed.extra {
            let v = match e {
                cairn_domain::DomainError::Invalid { field, reason } => json!({ field: [reason] }),
                cairn_domain::DomainError::Conflict(m) => json!(m),
                other => json!(other.to_string()),
            };
            errors.insert(k.clone(), v);
        }
        response["errors"] = Value::Object(errors);
    }
    Ok(json(response))
}

/// `POST /attributes/edit/{id|uuid}`.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let (_, uuid, target) = owner_event(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let inner = crate::body::unwrap(&body, "Attribute");
    let mut names = Vec::new();
    input::tag_names(inner, &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut draft = input::attribute_draft(inner, &tags.map)?;
    crate::regexps::apply_attribute(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let command = EventCommand::EditAttribute { target: target.clone(), draft };
    super::events::run_with_tags(state, auth, uuid, "attributes.edit", "edit Attribute", command, tags).await?;
    let ElementRef::Id(id) = target else { return Err(invalid_attribute()) };
    Ok(json(json!({ "Attribute": render_attribute(state, auth, id, true).await? })))
}

/// `POST /attributes/delete/{id|uuid}[/1]` with `{"hard": 1}` for a hard delete.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let (_, uuid, target) = owner_event(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let hard = crate::body::flag(body.get("hard")).unwrap_or(false)
        || req.path.args.get(1).is_some_and(|a| a == "1" || a == "true")
        || req.path.named.get("hard").is_some_and(|v| v == "1" || v == "true");
    run(state, auth, uuid, "attributes.delete", "delete Attribute", EventCommand::DeleteAttribute { target, hard }).await?;
    Ok(json(json!({"message": "Attribute deleted."})))
}

/// `POST /attributes/restore/{id|uuid}`.
pub async fn restore(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let (_, uuid, target) = owner_event(state, auth, key).await?;
    run(state, auth, uuid, "attributes.restore", "restore Attribute", EventCommand::RestoreAttribute { target: target.clone() }).await?;
    let ElementRef::Id(id) = target else { return Err(invalid_attribute()) };
    Ok(json(json!({ "Attribute": render_attribute(state, auth, id, true).await? })))
}

/// `GET|HEAD /attributes/view/{id|uuid}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    let attribute = render::attribute_view(&client, &support::viewer(state, auth).await?, &settings, key, false).await?.ok_or_else(invalid_attribute)?;
    if req.method == axum::http::Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(json(json!({ "Attribute": attribute })))
}
