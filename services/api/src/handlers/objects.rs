//! `/objects/*`, `/objectReferences/*`, `/objectTemplates/*`.

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::input;
use crate::render;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::Change;
use cairn_domain::event::{ElementRef, EventCommand, IdPool};
use serde_json::{Value, json};
use std::collections::VecDeque;

fn invalid_object() -> ApiError {
    ApiError::NotFound("Invalid object.".into())
}

async fn owner_event(state: &AppState, auth: &Authed, key: &str) -> Result<(uuid::Uuid, i64), ApiError> {
    let client = state.pool.get().await?;
    let key = key.trim();
    let row = if let Ok(u) = uuid::Uuid::parse_str(key) {
        client.query_opt("SELECT id, event_id FROM rm.objects WHERE uuid = $1", &[&u]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        client.query_opt("SELECT id, event_id FROM rm.objects WHERE id = $1", &[&id]).await?
    } else {
        None
    };
    let row = row.ok_or_else(invalid_object)?;
    let (object_id, event_id): (i64, i64) = (row.get(0), row.get(1));
    let (_, uuid) = resolve(state, auth, &event_id.to_string()).await.map_err(|_| invalid_object())?;
    Ok((uuid, object_id))
}

async fn render_object(state: &AppState, auth: &Authed, id: i64, deleted: bool) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    render::object_view(&client, &support::viewer(state, auth).await?, &settings, &id.to_string(), deleted).await?.ok_or_else(invalid_object)
}

async fn pool_for(state: &AppState, attributes: usize, objects: usize, references: usize) -> Result<IdPool, ApiError> {
    Ok(IdPool {
        attributes: VecDeque::from(crate::commands::allocate_ids(state, "attribute", attributes).await?),
        objects: VecDeque::from(crate::commands::allocate_ids(state, "object", objects).await?),
        references: VecDeque::from(crate::commands::allocate_ids(state, "object_reference", references).await?),
    })
}

/// `POST /objects/add/{event}[/breakOnDuplicate:1]`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (_, uuid) = resolve(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let mut names = Vec::new();
    input::tag_names(crate::body::unwrap(&body, "Object"), &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut draft = input::object_draft(&body, &tags.map)?;
    crate::regexps::apply_object(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let ids = pool_for(state, draft.attributes.len(), 1, draft.references.len()).await?;
    let break_on_duplicate = req.path.named.get("breakOnDuplicate").is_some_and(|v| v == "1" || v == "true");
    let command = EventCommand::AddObject { draft, break_on_duplicate, ids };
    let executed = super::events::run_with_tags(state, auth, uuid, "objects.add", "add Object", command, tags).await?;
    let id = executed
        .changes
        .iter()
        .find_map(|c| if let Change::ObjectAdded(o) = c { Some(o.id) } else { None })
        .ok_or_else(|| ApiError::Internal("no object recorded".into()))?;
    Ok(json(json!({ "Object": render_object(state, auth, id, false).await? })))
}

/// `POST /objects/edit/{id|uuid}`: merges attributes by uuid, adds new ones.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_object)?;
    let (uuid, object_id) = owner_event(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let mut names = Vec::new();
    input::tag_names(crate::body::unwrap(&body, "Object"), &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut draft = input::object_draft(&body, &tags.map)?;
    crate::regexps::apply_object(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let (current, _) = crate::commands::load(state, uuid, cairn_domain::event::evolve).await?;
    let new_attributes = draft.attributes.iter().filter(|a| current.attribute_by_uuid(&a.uuid).is_none()).count();
    let new_refs = draft.references.iter().filter(|r| !current.reference_ids.contains_key(&r.uuid)).count();
    let ids = pool_for(state, new_attributes, 0, new_refs).await?;
    let command = EventCommand::EditObject { target: ElementRef::Id(object_id), draft, ids };
    super::events::run_with_tags(state, auth, uuid, "objects.edit", "edit Object", command, tags).await?;
    // An edit may soft-delete the object: show it as the owner sees it, deleted parts included.
    Ok(json(json!({ "Object": render_object(state, auth, object_id, true).await? })))
}

/// `POST /objects/delete/{id|uuid}[/hard]` with `{"hard": 1}` for a hard delete.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_object)?;
    let (uuid, object_id) = owner_event(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let hard = crate::body::flag(body.get("hard")).unwrap_or(false)
        || req.path.args.get(1).is_some_and(|a| a == "1" || a == "true" || a == "hard")
        || req.path.named.get("hard").is_some_and(|v| v == "1" || v == "true");
    run(state, auth, uuid, "objects.delete", "delete Object", EventCommand::DeleteObject { target: ElementRef::Id(object_id), hard }).await?;
    Ok(json(json!({"saved": true, "success": true, "name": "Object deleted", "message": "Object deleted", "url": req.url})))
}

/// `GET|HEAD /objects/view/{id|uuid}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_object)?;
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    let object = render::object_view(&client, &support::viewer(state, auth).await?, &settings, key, false).await?.ok_or_else(invalid_object)?;
    if req.method == axum::http::Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(json(json!({ "Object": object })))
}

/// `POST /objectReferences/add[/{object}]`.
pub async fn add_reference(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let inner = crate::body::unwrap(&body, "ObjectReference");
    let object_key = req
        .path
        .args
        .first()
        .cloned()
        .or_else(|| crate::body::text(inner.get("object_uuid")))
        .or_else(|| crate::body::text(inner.get("object_id")))
        .ok_or_else(invalid_object)?;
    let (uuid, object_id) = owner_event(state, auth, &object_key).await?;
    let draft = input::reference_draft(inner)?;
    let ids = pool_for(state, 0, 0, 1).await?;
    let executed =
        run(state, auth, uuid, "object_references.add", "add ObjectReference", EventCommand::AddReference { object: ElementRef::Id(object_id), draft, ids }).await?;
    let reference = executed.changes.iter().find_map(|c| if let Change::ReferenceAdded(r) = c { Some(r.clone()) } else { None });
    let Some(r) = reference else { return Ok(json(json!({"ObjectReference": inner}))) };
    Ok(json(json!({"ObjectReference": {
        "id": r.id.to_string(), "uuid": r.uuid, "timestamp": r.timestamp.to_string(), "object_id": r.object_id.to_string(),
        "event_id": r.event_id.to_string(), "source_uuid": r.object_uuid, "object_uuid": r.object_uuid,
        "referenced_uuid": r.referenced_uuid, "referenced_id": r.referenced_id.to_string(),
        "referenced_type": r.referenced_type.to_string(), "relationship_type": r.relationship_type, "comment": r.comment,
        "deleted": r.deleted}})))
}

/// `POST /objectReferences/delete/{id|uuid}[/true]`.
pub async fn delete_reference(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid object reference.".into()))?;
    let client = state.pool.get().await?;
    let row = match key.parse::<i64>() {
        Ok(id) => client.query_opt("SELECT id, event_id FROM rm.object_references WHERE id = $1", &[&id]).await?,
        Err(_) => match uuid::Uuid::parse_str(key) {
            Ok(u) => client.query_opt("SELECT id, event_id FROM rm.object_references WHERE uuid = $1", &[&u]).await?,
            Err(_) => None,
        },
    }
    .ok_or_else(|| ApiError::NotFound("Invalid object reference.".into()))?;
    let (rid, event_id): (i64, i64) = (row.get(0), row.get(1));
    let (_, uuid) = resolve(state, auth, &event_id.to_string()).await?;
    let body = crate::body::parse(&req.body)?;
    let hard = req.path.args.get(1).is_some_and(|a| a == "1" || a == "true") || crate::body::flag(body.get("hard")).unwrap_or(false);
    run(state, auth, uuid, "object_references.delete", "delete ObjectReference", EventCommand::DeleteReference { target: ElementRef::Id(rid), hard }).await?;
    Ok(json(json!({"saved": true, "success": true, "name": "ObjectReference deleted", "message": "ObjectReference deleted", "url": req.url})))
}

/// `GET /objectTemplates/index`.
pub fn templates_index(state: &AppState) -> Result<Response, ApiError> {
    let list: Vec<Value> = state
        .reference
        .template_definitions
        .values()
        .enumerate()
        .map(|(i, t)| {
            json!({"ObjectTemplate": {"id": (i + 1).to_string(), "uuid": t["uuid"], "name": t["name"], "version": t["version"].to_string(),
                   "description": t["description"], "meta-category": t["meta-category"], "active": true, "fixed": true}})
        })
        .collect();
    Ok(json(Value::Array(list)))
}

/// `GET /objectTemplates/getRaw/{name|uuid}`.
pub fn templates_get_raw(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid object template.".into()))?;
    let found = state.reference.template_definitions.get(key.as_str()).or_else(|| {
        state.reference.template_definitions.values().find(|t| t.get("uuid").and_then(Value::as_str) == Some(key.as_str()))
    });
    found.cloned().map(json).ok_or_else(|| ApiError::NotFound("Invalid object template.".into()))
}
