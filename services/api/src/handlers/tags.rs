//! `/tags/*`: the tag catalogue and attaching tags to Events and Attributes.

use super::events::run;
use super::support::{self, json, saved};
use super::Request;
use crate::auth::Authed;
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::render::TAG_COLUMNS;
use crate::state::AppState;
use cairn_domain::event::{ElementRef, EventCommand, TagInfo, TagTarget};
use cairn_domain::stream;
use cairn_domain::tag::{self, Tag, TagCommand, TagPatch, TagState};
use serde_json::{Value, json};

fn tag_json(t: &Tag) -> Value {
    json!({
        "id": t.id.to_string(), "name": t.name, "colour": t.colour, "exportable": t.exportable,
        "org_id": t.org_id.to_string(), "user_id": t.user_id.to_string(), "hide_tag": t.hide_tag,
        "numerical_value": t.numerical_value.map(|v| v.to_string()), "is_galaxy": t.is_galaxy,
        "is_custom_galaxy": t.is_custom_galaxy, "local_only": t.local_only,
    })
}

fn invalid_tag() -> ApiError {
    ApiError::NotFound("Invalid tag".into())
}

/// `GET /tags/index`: `{"Tag": [...]}` (PyMISP indexes `['Tag']`).
pub async fn index(state: &AppState, _auth: &Authed) -> Result<axum::response::Response, ApiError> {
    let client = state.pool.get().await?;
    let rows = client.query(&format!("SELECT {TAG_COLUMNS} FROM rm.tags t WHERE NOT t.deleted ORDER BY t.id"), &[]).await?;
    let tags: Vec<Value> = rows.iter().map(|r| crate::render::tag_json(r, 0)).collect();
    Ok(json(json!({ "Tag": tags })))
}

/// `GET /tags/view/{id|name}`.
pub async fn view(state: &AppState, _auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_tag)?;
    let tag = support::find_tag(state, key).await?.ok_or_else(invalid_tag)?;
    Ok(json(json!({ "Tag": tag_json(&tag) })))
}

fn patch_from(body: &Value) -> TagPatch {
    use crate::body::{flag, int, text};
    TagPatch {
        name: text(body.get("name")),
        colour: text(body.get("colour")).filter(|c| !c.is_empty()),
        exportable: flag(body.get("exportable")),
        org_id: int(body.get("org_id")),
        user_id: int(body.get("user_id")),
        hide_tag: flag(body.get("hide_tag")),
        numerical_value: body.get("numerical_value").map(|v| crate::body::int(Some(v))),
        local_only: flag(body.get("local_only")),
    }
}

/// `POST /tags/add`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    if !(auth.role.perm_tag_editor || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Tag");
    let name = crate::body::text(body.get("name")).unwrap_or_default();
    tag::validate_name(&name).map_err(|e| super::events::refusal(e, "add Tag"))?;
    if support::find_tag(state, &name).await?.is_some() {
        return Err(ApiError::SaveFailed { name: "Could not add Tag".into(), errors: json!({"name": ["A tag with this name already exists."]}) });
    }
    let patch = patch_from(body);
    let mut t = support::new_tag(&name);
    if let Some(c) = patch.colour {
        t.colour = c;
    }
    t.exportable = patch.exportable.unwrap_or(true);
    t.org_id = patch.org_id.unwrap_or(0);
    t.user_id = patch.user_id.unwrap_or(0);
    t.hide_tag = patch.hide_tag.unwrap_or(false);
    t.numerical_value = patch.numerical_value.flatten();
    t.local_only = patch.local_only.unwrap_or(false);
    let created = support::create_tag(state, auth, t).await?;
    Ok(json(json!({ "Tag": tag_json(&created) })))
}

/// `POST /tags/edit/{id}`.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_tag)?;
    let current = support::find_tag(state, key).await?.ok_or_else(invalid_tag)?;
    let body = crate::body::parse(&req.body)?;
    let patch = patch_from(crate::body::unwrap(&body, "Tag"));
    if let Some(n) = patch.name.as_deref().filter(|n| !n.trim().eq_ignore_ascii_case(&current.name)) {
        if support::find_tag(state, n).await?.is_some() {
            return Err(ApiError::SaveFailed { name: "Could not edit Tag".into(), errors: json!({"name": ["A tag with this name already exists."]}) });
        }
    }
    let meta = CommandMeta::new("tags.edit", auth.actor());
    let role = auth.role.clone();
    let stream_id = support::tag_stream_of(state, current.id).await?;
    commands::execute(state, &meta, stream_id, stream::TAG, tag::evolve, |s: &TagState| {
        Ok((tag::decide(s, &role, TagCommand::Update { patch: patch.clone() }).map_err(|e| super::events::refusal(e, "edit Tag"))?, ()))
    })
    .await?;
    let updated = support::find_tag(state, &current.id.to_string()).await?.ok_or_else(invalid_tag)?;
    Ok(json(json!({ "Tag": tag_json(&updated) })))
}

/// `POST /tags/delete/{id}`.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_tag)?;
    let current = support::find_tag(state, key).await?.ok_or_else(invalid_tag)?;
    let meta = CommandMeta::new("tags.delete", auth.actor());
    let role = auth.role.clone();
    let stream_id = support::tag_stream_of(state, current.id).await?;
    commands::execute(state, &meta, stream_id, stream::TAG, tag::evolve, |s: &TagState| {
        Ok((tag::decide(s, &role, TagCommand::Delete).map_err(|e| super::events::refusal(e, "delete Tag"))?, ()))
    })
    .await?;
    Ok(saved("Tag deleted.", &req.url, Some(current.id.to_string())))
}

/// `POST /tags/search` with `{"tagname": "my%", "strict_tagname": false}`: `[{"Tag": …}]`.
pub async fn search(state: &AppState, _auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let name = crate::body::text(body.get("tagname")).or_else(|| req.path.args.first().cloned()).unwrap_or_default();
    let strict = crate::body::flag(body.get("strict_tagname")).unwrap_or(false);
    let client = state.pool.get().await?;
    // Strict: the exact name; otherwise MISP's LIKE pattern (`%` wildcards).
    let op = if strict { "=" } else { "LIKE" };
    let rows = client
        .query(&format!("SELECT {TAG_COLUMNS} FROM rm.tags t WHERE NOT t.deleted AND lower(t.name) {op} $1 ORDER BY t.id"), &[&name.to_lowercase()])
        .await?;
    let list: Vec<Value> = rows.iter().map(|r| json!({ "Tag": crate::render::tag_json(r, 0) })).collect();
    Ok(json(Value::Array(list)))
}

/// Resolves `uuid` to an Event or an Attribute the caller can see: (event uuid, target, label, id).
async fn target(state: &AppState, auth: &Authed, uuid_text: &str) -> Result<(uuid::Uuid, TagTarget, &'static str, i64), ApiError> {
    let invalid = || ApiError::NotFound("Invalid Target.".into());
    let uuid = uuid::Uuid::parse_str(uuid_text.trim()).map_err(|_| ApiError::SaveFailed {
        name: "Could not attach tag".into(),
        errors: json!("Invalid UUID"),
    })?;
    let client = state.pool.get().await?;
    if let Some(r) = client.query_opt("SELECT id FROM rm.events WHERE uuid = $1", &[&uuid]).await? {
        let id: i64 = r.get(0);
        super::events::resolve(state, auth, &id.to_string()).await.map_err(|_| invalid())?;
        return Ok((uuid, TagTarget::Event, "Event", id));
    }
    if let Some(r) = client.query_opt("SELECT id, event_id FROM rm.attributes WHERE uuid = $1", &[&uuid]).await? {
        let (id, event_id): (i64, i64) = (r.get(0), r.get(1));
        let (_, event_uuid) = super::events::resolve(state, auth, &event_id.to_string()).await.map_err(|_| invalid())?;
        return Ok((event_uuid, TagTarget::Attribute(ElementRef::Id(id)), "Attribute", id));
    }
    Err(invalid())
}

/// `POST /tags/attachTagToObject` with `{"uuid", "tag", "local", "relationship_type"}`.
pub async fn attach(state: &AppState, auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    if !(auth.role.perm_tagger || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let uuid = crate::body::text(body.get("uuid")).unwrap_or_default();
    let tag_key = crate::body::text(body.get("tag")).or_else(|| crate::body::text(body.get("tag_id"))).unwrap_or_default();
    let local = crate::body::flag(body.get("local")).unwrap_or(false);
    let relationship_type = crate::body::text(body.get("relationship_type")).filter(|r| !r.is_empty());
    let (event_uuid, target, label, id) = target(state, auth, &uuid).await?;
    // A new tag name is created only if the attachment is accepted (a refusal leaves no tag behind).
    let planned = if tag_key.is_empty() || tag_key.parse::<i64>().is_ok() {
        support::PlannedTags::default()
    } else {
        support::plan_tags(state, auth, std::slice::from_ref(&tag_key)).await?
    };
    let info = match support::find_tag(state, &tag_key).await? {
        Some(t) => TagInfo { id: t.id, name: t.name.clone(), org_id: t.org_id, user_id: t.user_id, local_only: t.local_only },
        None => planned.map.get(&tag_key.to_lowercase()).cloned().ok_or_else(|| ApiError::NotFound("Invalid Tag.".into()))?,
    };
    let (tag_name, tag_id) = (info.name.clone(), info.id);
    let command = EventCommand::Tag { target, tag: info, local, relationship_type };
    let result = super::events::run_with_tags(state, auth, event_uuid, "tags.attach", "attach Tag", command, planned).await;
    match result {
        Ok(_) => {}
        Err(ApiError::SaveFailed { errors, .. }) => {
            let reason = errors.get("tag").and_then(|t| t.get(0)).cloned().unwrap_or(errors);
            return Err(ApiError::SaveFailed { name: "Failed to attach the tag.".into(), errors: reason });
        }
        Err(e) => return Err(e),
    }
    let scope = if local { "Local" } else { "Global" };
    let message = format!("{scope} tag {tag_name} ({tag_id}) successfully attached to {label}({id}).");
    Ok(saved(&message, &req.url, Some(id.to_string())))
}

/// `POST /tags/removeTagFromObject` with `{"uuid", "tag"}`.
pub async fn remove(state: &AppState, auth: &Authed, req: &Request) -> Result<axum::response::Response, ApiError> {
    if !(auth.role.perm_tagger || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let uuid = crate::body::text(body.get("uuid")).unwrap_or_default();
    let tag_key = crate::body::text(body.get("tag")).or_else(|| crate::body::text(body.get("tag_id"))).unwrap_or_default();
    let (event_uuid, target, label, id) = target(state, auth, &uuid).await?;
    let tag = support::find_tag(state, &tag_key).await?.ok_or_else(|| ApiError::NotFound("Invalid Tag.".into()))?;
    run(state, auth, event_uuid, "tags.remove", "remove Tag", EventCommand::Untag { target, tag_id: tag.id }).await?;
    let message = format!("Global tag {} ({}) successfully removed from {label}({id}).", tag.name, tag.id);
    Ok(saved(&message, &req.url, Some(id.to_string())))
}
