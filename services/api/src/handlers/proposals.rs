//! `/shadowAttributes/*`: proposals to add, change or delete an attribute of someone else's Event,
//! and their acceptance or discarding by the Event's owners (misp_features.md §3).
//!
//! Beyond MISP: a proposal remembers the attribute revision it was based on; accepting it after the
//! attribute changed answers 409 with both versions instead of overwriting the newer edit.

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::collab::{self, PROPOSAL_COLUMNS};
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::acl;
use cairn_domain::event::{ElementRef, EventCommand, IdPool};
use serde_json::{Value, json};
use std::collections::VecDeque;

fn invalid_proposal() -> ApiError {
    ApiError::NotFound("Invalid proposal.".into())
}

fn invalid_attribute() -> ApiError {
    ApiError::NotFound("Invalid attribute".into())
}

/// The Event uuid of a visible attribute, and the attribute's id.
pub async fn attribute_event(state: &AppState, auth: &Authed, key: &str) -> Result<(uuid::Uuid, i64), ApiError> {
    let client = state.pool.get().await?;
    let key = key.trim();
    let row = match uuid::Uuid::parse_str(key) {
        Ok(u) => client.query_opt("SELECT id, event_id FROM rm.attributes WHERE uuid = $1", &[&u]).await?,
        Err(_) => match key.parse::<i64>() {
            Ok(id) => client.query_opt("SELECT id, event_id FROM rm.attributes WHERE id = $1", &[&id]).await?,
            Err(_) => None,
        },
    };
    let row = row.ok_or_else(invalid_attribute)?;
    let (_, uuid) = resolve(state, auth, &row.get::<_, i64>(1).to_string()).await.map_err(|_| invalid_attribute())?;
    Ok((uuid, row.get(0)))
}

/// A proposal as MISP renders it, with its `Org` (and `Event` summary when asked), if the caller
/// may see it: its Event, and for an edit or deletion the attribute it targets.
async fn visible_proposal(state: &AppState, auth: &Authed, id: i64, with_event: bool) -> Result<Option<Value>, ApiError> {
    let client = state.pool.get().await?;
    let Some(r) = client.query_opt(&format!("SELECT {PROPOSAL_COLUMNS} FROM rm.shadow_attributes s WHERE s.id = $1"), &[&id]).await? else {
        return Ok(None);
    };
    let event_id: i64 = r.get(2);
    let old_id: i64 = r.get(4);
    let Some(event) = crate::render::find_event(&client, &event_id.to_string()).await? else { return Ok(None) };
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let target = if old_id == 0 {
        None
    } else {
        let Some(a) = crate::render::attribute_access(&client, old_id).await? else { return Ok(None) };
        Some(a)
    };
    let visible = match &target {
        None => acl::proposal_visible(&viewer, &event.access, None, &settings),
        Some((a, o)) => acl::proposal_visible(&viewer, &event.access, Some((a, o.as_ref())), &settings),
    };
    if !visible {
        return Ok(None);
    }
    let mut v = collab::proposal_json(&r);
    let orgs = collab::orgs(&client, &[r.get::<_, i64>(16)]).await?;
    v["Org"] = orgs.into_values().next().unwrap_or(Value::Null);
    if with_event {
        let e = crate::render::event_summary(&event);
        v["Event"] = e;
    }
    Ok(Some(v))
}

async fn respond_with(state: &AppState, auth: &Authed, id: i64) -> Result<Response, ApiError> {
    let v = visible_proposal(state, auth, id, false).await?.ok_or_else(|| ApiError::Internal("proposal not recorded".into()))?;
    Ok(json(json!({"ShadowAttribute": v})))
}

fn body_attribute(req: &Request) -> Result<Value, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let inner = match &body {
        Value::Object(m) if m.contains_key("ShadowAttribute") => m["ShadowAttribute"].clone(),
        other => crate::body::unwrap(other, "Attribute").clone(),
    };
    Ok(inner)
}

/// `POST /shadowAttributes/add/{event}`: propose a new attribute.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (_, uuid) = resolve(state, auth, key).await?;
    let body = body_attribute(req)?;
    let mut draft = crate::input::attribute_draft(&body, &crate::input::TagMap::new())?;
    crate::regexps::apply_attribute(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let id = allocate(state).await?;
    run(state, auth, uuid, "shadow_attributes.add", "add the proposal", EventCommand::ProposeAttribute { id, draft }).await?;
    respond_with(state, auth, id).await
}

async fn allocate(state: &AppState) -> Result<i64, ApiError> {
    crate::commands::allocate_ids(state, "proposal", 1).await?.first().copied().ok_or_else(|| ApiError::Internal("no proposal id".into()))
}

/// `POST /shadowAttributes/edit/{attribute}`: propose changes to an attribute.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let (uuid, attribute_id) = attribute_event(state, auth, key).await?;
    let body = body_attribute(req)?;
    let mut draft = crate::input::attribute_draft(&body, &crate::input::TagMap::new())?;
    crate::regexps::apply_attribute(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let id = allocate(state).await?;
    let command = EventCommand::ProposeEdit { id, target: ElementRef::Id(attribute_id), draft };
    run(state, auth, uuid, "shadow_attributes.edit", "edit the proposal", command).await?;
    respond_with(state, auth, id).await
}

/// `POST /shadowAttributes/delete/{attribute}`: propose deleting an attribute.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_attribute)?;
    let (uuid, attribute_id) = attribute_event(state, auth, key).await?;
    let id = allocate(state).await?;
    let command = EventCommand::ProposeDeletion { id, target: ElementRef::Id(attribute_id) };
    run(state, auth, uuid, "shadow_attributes.delete", "save the proposal", command).await?;
    Ok(json(json!({"saved": true, "success": "The proposal to delete the attribute has been saved", "id": id.to_string()})))
}

/// `GET /shadowAttributes/view/{id}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let id: i64 = req.path.args.first().and_then(|s| s.trim().parse().ok()).ok_or_else(invalid_proposal)?;
    let v = visible_proposal(state, auth, id, false).await?.ok_or_else(invalid_proposal)?;
    Ok(json(json!({"ShadowAttribute": v})))
}

/// `GET /shadowAttributes/index[/{event}]`: pending proposals to the caller's organisation's Events
/// or made by it (all for a site admin), in id order.
pub async fn index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let event_filter = match req.path.args.first().or(req.path.named.get("eventId")) {
        Some(key) => Some(resolve(state, auth, key).await?.0),
        None => None,
    };
    let org = auth.org.id;
    let admin = auth.is_site_admin();
    let rows = client
        .query(
            "SELECT s.id FROM rm.shadow_attributes s WHERE NOT s.deleted AND ($1 OR s.event_org_id = $2 OR s.org_id = $2) \
             AND ($3::bigint IS NULL OR s.event_id = $3) ORDER BY s.id",
            &[&admin, &org, &event_filter],
        )
        .await?;
    drop(client);
    let mut list = Vec::new();
    for r in rows {
        if let Some(v) = visible_proposal(state, auth, r.get(0), true).await? {
            list.push(json!({"ShadowAttribute": v}));
        }
    }
    Ok(json(Value::Array(list)))
}

/// The Event stream a visible proposal belongs to.
async fn proposal_event(state: &AppState, auth: &Authed, req: &Request) -> Result<(i64, uuid::Uuid), ApiError> {
    let id: i64 = req.path.args.first().and_then(|s| s.trim().parse().ok()).ok_or_else(invalid_proposal)?;
    if visible_proposal(state, auth, id, false).await?.is_none() {
        return Err(invalid_proposal());
    }
    let client = state.pool.get().await?;
    let row = client.query_one("SELECT event_uuid FROM rm.shadow_attributes WHERE id = $1", &[&id]).await?;
    Ok((id, row.get(0)))
}

/// `POST /shadowAttributes/accept/{id}`: the attribute change and the proposal's resolution in one
/// commit; 409 with both versions when the attribute changed since the proposal was made.
pub async fn accept(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid) = proposal_event(state, auth, req).await?;
    let ids = IdPool { attributes: VecDeque::from(crate::commands::allocate_ids(state, "attribute", 1).await?), ..Default::default() };
    run(state, auth, uuid, "shadow_attributes.accept", "accept the proposal", EventCommand::AcceptProposal { id, ids }).await?;
    Ok(support::saved("Proposed change accepted.", &req.url, Some(id.to_string())))
}

/// `POST /shadowAttributes/discard/{id}`.
pub async fn discard(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid) = proposal_event(state, auth, req).await?;
    run(state, auth, uuid, "shadow_attributes.discard", "discard the proposal", EventCommand::DiscardProposal { id }).await?;
    Ok(support::saved("Proposal discarded.", &req.url, Some(id.to_string())))
}
