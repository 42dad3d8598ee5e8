//! `/events/*`: add, view, edit, delete, publish, unpublish, index, addTag.

use super::support::{self, json, saved};
use super::Request;
use crate::auth::Authed;
use crate::commands::{self, CommandMeta};
use crate::error::ApiError;
use crate::input;
use crate::render::{self, ViewOptions};
use crate::state::AppState;
use crate::warninglists::{Annotator, WarningsView};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::event::{self, EventCommand, EventState, IdPool};
use cairn_domain::{DomainError, stream};
use serde_json::{Value, json};
use std::collections::VecDeque;

pub fn invalid_event() -> ApiError {
    ApiError::NotFound("Invalid event.".into())
}

fn named_flag(req: &Request, name: &str) -> bool {
    req.path.named.get(name).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Ids for the records a draft may create.
async fn id_pool(state: &AppState, attributes: usize, objects: usize, references: usize) -> Result<IdPool, ApiError> {
    Ok(IdPool {
        attributes: VecDeque::from(commands::allocate_ids(state, "attribute", attributes).await?),
        objects: VecDeque::from(commands::allocate_ids(state, "object", objects).await?),
        references: VecDeque::from(commands::allocate_ids(state, "object_reference", references).await?),
    })
}

/// Domain refusals of Event commands, mapped to MISP's shapes.
pub fn refusal(e: DomainError, action: &str) -> ApiError {
    match e {
        DomainError::Invalid { field, reason } => {
            ApiError::SaveFailed { name: format!("Could not {action}"), errors: json!({ field: [reason] }) }
        }
        DomainError::AlreadyExists(m) => ApiError::NotFound(m),
        DomainError::Conflict(m) => ApiError::MethodNotAllowed(m),
        other => other.into(),
    }
}

fn errors_json(errors: &[(String, DomainError)]) -> Value {
    let mut m = serde_json::Map::new();
    for (key, e) in errors {
        let v = match e {
            DomainError::Invalid { field, reason } => json!({ field: [reason] }),
            other => json!(other.to_string()),
        };
        m.insert(key.clone(), v);
    }
    Value::Object(m)
}

/// Which correlations an Event view carries (MISP: `RelatedEvent` unless `includeEventCorrelations: 0`;
/// `RelatedAttribute` with `includeGranularCorrelations: 1`).
#[derive(Clone, Copy, Debug, Default)]
pub struct CorrelationView {
    pub events: bool,
    pub granular: bool,
}

/// Renders an Event as the caller sees it (after a write: read-your-writes already waited).
pub(crate) async fn render_event(
    state: &AppState,
    auth: &Authed,
    key: &str,
    options: &ViewOptions,
    correlations: CorrelationView,
    warnings: WarningsView,
) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    let Some(row) = render::find_event(&client, key).await? else { return Err(invalid_event()) };
    let viewer = support::viewer(state, auth).await?;
    let options = ViewOptions { sightings: support::sighting_settings(state).await?, ..options.clone() };
    let mut event = render::event_json(&client, &viewer, &settings, &row, &options).await?.ok_or_else(invalid_event)?;
    drop(client);
    super::sharing_groups::attach(state, &mut event).await?;
    if correlations.events || correlations.granular {
        support::attach_correlations(state, &viewer, &mut event, correlations.events, correlations.granular && !options.metadata).await?;
    }
    if let Some((matcher, reference)) = support::warnings_for(state, warnings).await? {
        Annotator { matcher: &matcher, catalog: reference.warninglists.loaded(), view: warnings }.event(&mut event);
    }
    Ok(event)
}

/// The answer to an Event write: the Event as the caller now sees it (`/metadata:1`: without its
/// content), with the per-element `errors` of a partly accepted request.
async fn written_event(state: &AppState, auth: &Authed, req: &Request, uuid: uuid::Uuid, errors: &[(String, DomainError)]) -> Result<Response, ApiError> {
    let options = ViewOptions { metadata: named_flag(req, "metadata"), ..Default::default() };
    let mut view = render_event(state, auth, &uuid.to_string(), &options, CorrelationView::default(), WarningsView::default()).await?;
    if !errors.is_empty() {
        view["errors"] = errors_json(errors);
    }
    Ok(json(view))
}

/// `POST /events/add[/metadata:1]`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.role.perm_add {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let mut names = Vec::new();
    input::tag_names(input::event_body(&body), &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut draft = input::event_draft(&body, &tags.map)?;
    draft.orgc_id = pushed_creator(state, auth, &body).await?;
    crate::regexps::apply_event(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    let (a, o, r) = draft.ids_needed();
    let ids = id_pool(state, a, o, r).await?;
    let event_id = commands::allocate_ids(state, "event", 1).await?.first().copied().unwrap_or_default();
    if tags.is_pending() {
        let command = EventCommand::Create { id: event_id, draft: draft.clone(), ids: ids.clone() };
        dry_run(state, auth, &EventState::default(), command, "add Event").await?;
        tags.create(state, auth).await?;
    }
    let facts = support::facts(state, auth).await?;
    let ctx = facts.context(state, auth);
    let meta = CommandMeta::new("events.add", auth.actor());
    let uuid = draft.uuid;
    let executed = commands::execute(state, &meta, uuid, stream::EVENT, event::evolve, |s: &EventState| {
        let d = event::decide(s, &ctx, EventCommand::Create { id: event_id, draft: draft.clone(), ids: ids.clone() })
            .map_err(|e| refusal(e, "add Event"))?;
        Ok((d.changes, d.errors))
    })
    .await?;
    written_event(state, auth, req, uuid, &executed.extra).await
}

/// The creator organisation (`Orgc`) a sync user's push names, known here by uuid or recorded now
/// (MISP keeps the creator of pushed Events); `None` for other users and pushes without one.
async fn pushed_creator(state: &AppState, auth: &Authed, body: &serde_json::Value) -> Result<Option<i64>, ApiError> {
    if !auth.role.perm_sync {
        return Ok(None);
    }
    let orgc = &input::event_body(body)["Orgc"];
    let Some(uuid) = orgc.get("uuid").and_then(serde_json::Value::as_str).and_then(|u| uuid::Uuid::parse_str(u.trim()).ok()) else { return Ok(None) };
    let name = crate::body::text(orgc.get("name")).unwrap_or_default();
    crate::sync::ensure_org(state, auth, &crate::sync::WireOrg { uuid, name }).await.map(Some)
}

/// `GET|POST|HEAD /events/view/{id|uuid}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let body = crate::body::parse(&req.body)?;
    let deleted = match body.get("deleted") {
        Some(Value::Array(a)) => !a.is_empty(),
        other => crate::body::flag(other).unwrap_or(false),
    } || named_flag(req, "deleted");
    let options = ViewOptions {
        deleted,
        metadata: crate::body::flag(body.get("metadata")).unwrap_or(false) || named_flag(req, "metadata"),
        no_sightings: named_flag(req, "noSightings") || crate::body::flag(body.get("noSightings")).unwrap_or(false),
        ..Default::default()
    };
    if req.method == axum::http::Method::HEAD {
        render_event(state, auth, key, &ViewOptions { metadata: true, ..options }, CorrelationView::default(), WarningsView::default()).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let option = |name: &str| crate::body::flag(body.get(name)).or_else(|| req.path.named.get(name).map(|v| v == "1" || v == "true"));
    let correlations = CorrelationView {
        events: option("includeEventCorrelations").unwrap_or(true),
        granular: option("includeGranularCorrelations").unwrap_or(false),
    };
    // MISP's event view always shows warninglist hits; `enforceWarninglist` drops the attributes.
    let warnings = WarningsView { annotate: option("includeWarninglistHits").unwrap_or(true), enforce: option("enforceWarninglist").unwrap_or(false) };
    let view = render_event(state, auth, key, &options, correlations, warnings).await?;
    Ok(json(view))
}

/// The Event a path argument names, if visible to the caller: (id, uuid).
pub async fn resolve(state: &AppState, auth: &Authed, key: &str) -> Result<(i64, uuid::Uuid), ApiError> {
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    let row = render::find_event(&client, key).await?.ok_or_else(invalid_event)?;
    if !cairn_domain::acl::event_visible(&support::viewer(state, auth).await?, &row.access, &settings) {
        return Err(invalid_event());
    }
    Ok((row.id, row.uuid))
}

/// Runs one Event command and returns what it decided.
pub async fn run(
    state: &AppState,
    auth: &Authed,
    uuid: uuid::Uuid,
    command_type: &'static str,
    action: &str,
    command: EventCommand,
) -> Result<commands::Executed<Vec<(String, DomainError)>>, ApiError> {
    let facts = support::facts(state, auth).await?;
    let ctx = facts.context(state, auth);
    let meta = CommandMeta::new(command_type, auth.actor());
    let author = auth.user.id;
    let executed = commands::execute(state, &meta, uuid, stream::EVENT, event::evolve, |s: &EventState| {
        let d = event::decide(s, &ctx, command.clone()).map_err(|e| refusal(e, action))?;
        let notifications = crate::notify::for_changes(s, &d.changes, author);
        Ok((d.changes, (d.errors, notifications)))
    })
    .await?;
    let (errors, notifications) = executed.extra;
    crate::notify::publish(state, uuid, &auth.actor(), notifications).await?;
    Ok(commands::Executed { receipt: executed.receipt, changes: executed.changes, extra: errors })
}

/// Runs one Event command whose drafts name `tags`: when some of those tags are still to be created,
/// the command is first decided without writing, and a refusal answers before any tag exists.
///
/// # Errors
/// As [`run`].
pub async fn run_with_tags(
    state: &AppState,
    auth: &Authed,
    uuid: uuid::Uuid,
    command_type: &'static str,
    action: &str,
    command: EventCommand,
    tags: support::PlannedTags,
) -> Result<commands::Executed<Vec<(String, DomainError)>>, ApiError> {
    if tags.is_pending() {
        let (current, _) = commands::load(state, uuid, event::evolve).await?;
        dry_run(state, auth, &current, command.clone(), action).await?;
        tags.create(state, auth).await?;
    }
    run(state, auth, uuid, command_type, action, command).await
}

/// Decides `command` on `current` without writing anything; its refusal, if any.
async fn dry_run(state: &AppState, auth: &Authed, current: &EventState, command: EventCommand, action: &str) -> Result<(), ApiError> {
    let facts = support::facts(state, auth).await?;
    let ctx = facts.context(state, auth);
    event::decide(current, &ctx, command).map(drop).map_err(|e| refusal(e, action))
}

/// `POST /events/edit/{id|uuid}[/metadata:1]`: merge by uuid with MISP's timestamp rules.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (_, uuid) = resolve(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let mut names = Vec::new();
    input::tag_names(input::event_body(&body), &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let mut draft = input::event_draft(&body, &tags.map)?;
    draft.uuid = uuid;
    // extends_uuid may name an Event by id: MISP converts it to the uuid.
    if let Some(ext) = draft.extends_uuid.clone().filter(|e| !e.is_empty() && uuid::Uuid::parse_str(e).is_err()) {
        let client = state.pool.get().await?;
        draft.extends_uuid = Some(render::find_event(&client, &ext).await?.map(|r| r.uuid.to_string()).unwrap_or(ext));
    }
    let executed = merge(state, auth, uuid, draft, tags, "events.edit", "edit Event").await?;
    written_event(state, auth, req, uuid, &executed.extra).await
}

/// Merges `draft` into the Event `uuid` in one commit (MISP's edit rules: new elements are added,
/// known ones follow the timestamp rule, tags are attached): `events/edit`, template population and
/// enrichment results all go through here. The import regexps apply first.
///
/// # Errors
/// Refusals of the Event aggregate; database errors.
pub async fn merge(
    state: &AppState,
    auth: &Authed,
    uuid: uuid::Uuid,
    mut draft: event::EventDraft,
    tags: support::PlannedTags,
    command_type: &'static str,
    action: &str,
) -> Result<commands::Executed<Vec<(String, DomainError)>>, ApiError> {
    crate::regexps::apply_event(&crate::regexps::load(state).await?.regexps, &mut draft)?;
    draft.uuid = uuid;
    // Allocate ids only for elements the Event does not have yet.
    let (current, _) = commands::load(state, uuid, event::evolve).await?;
    let new_attributes = draft
        .attributes
        .iter()
        .chain(draft.objects.iter().flat_map(|o| o.attributes.iter()))
        .filter(|a| current.attribute_by_uuid(&a.uuid).is_none())
        .count();
    let new_objects = draft.objects.iter().filter(|o| current.object_by_uuid(&o.uuid).is_none()).count();
    let new_refs = draft.objects.iter().flat_map(|o| o.references.iter()).filter(|r| !current.reference_ids.contains_key(&r.uuid)).count();
    let ids = id_pool(state, new_attributes, new_objects, new_refs).await?;
    run_with_tags(state, auth, uuid, command_type, action, EventCommand::Edit { draft, ids }, tags).await
}

/// `POST /events/delete/{id|uuid}`.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (id, uuid) = resolve(state, auth, key).await?;
    run(state, auth, uuid, "events.delete", "delete Event", EventCommand::Delete).await?;
    Ok(saved("Event deleted.", &req.url, Some(id.to_string())))
}

/// `POST /events/publish/{id}` (and `events/alert/{id}`).
pub async fn publish(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (id, uuid) = resolve(state, auth, key).await?;
    run(state, auth, uuid, "events.publish", "publish Event", EventCommand::Publish).await?;
    let background = crate::handlers::servers::setting(state, "MISP.background_jobs").await?;
    let message = if background.and_then(|v| crate::body::flag(Some(&v))).unwrap_or(false) {
        "Job queued"
    } else {
        "Event published without alerts"
    };
    Ok(saved(message, &req.url, Some(id.to_string())))
}

/// `POST /events/unpublish/{id}`.
pub async fn unpublish(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (id, uuid) = resolve(state, auth, key).await?;
    run(state, auth, uuid, "events.unpublish", "unpublish Event", EventCommand::Unpublish).await?;
    Ok(saved("Event unpublished.", &req.url, Some(id.to_string())))
}

/// `POST /events/addTag/{event_id}/{tag_id|name}` (or the ids in the body).
pub async fn add_tag(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let key = req.path.args.first().cloned().or_else(|| crate::body::text(body.get("event"))).ok_or_else(invalid_event)?;
    let tag_key = req.path.args.get(1).cloned().or_else(|| crate::body::text(body.get("tag"))).ok_or_else(|| ApiError::NotFound("Invalid Tag.".into()))?;
    let (id, uuid) = resolve(state, auth, &key).await?;
    let tag = support::find_tag(state, &tag_key).await?.ok_or_else(|| ApiError::NotFound("Invalid Tag.".into()))?;
    let local = crate::body::flag(body.get("local")).unwrap_or(false) || named_flag(req, "local");
    let info = cairn_domain::event::TagInfo { id: tag.id, name: tag.name.clone(), org_id: tag.org_id, user_id: tag.user_id, local_only: tag.local_only };
    run(
        state,
        auth,
        uuid,
        "events.add_tag",
        "attach Tag",
        EventCommand::Tag { target: cairn_domain::event::TagTarget::Event, tag: info, local, relationship_type: None },
    )
    .await?;
    Ok(saved("Tag(s) added.", &req.url, Some(id.to_string())))
}

/// `POST /events/contact/{id}` with `{"message", "creator_only"}`: writes to the Event's reporter. The
/// contact is recorded in the Event's history and delivered on the reporting organisation's
/// notification subject (no mail server needed).
pub async fn contact(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (_, uuid) = resolve(state, auth, key).await?;
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Event");
    let message = crate::body::text(body.get("message")).filter(|m| !m.trim().is_empty()).ok_or_else(|| ApiError::SaveFailed {
        name: "Could not contact the reporter".into(),
        errors: json!({"message": ["The message is empty."]}),
    })?;
    let creator_only = crate::body::flag(body.get("creator_only")).unwrap_or(false);
    run(state, auth, uuid, "events.contact", "contact the reporter", EventCommand::ContactReporter { message, creator_only }).await?;
    Ok(saved("Email sent to the reporter.", &req.url, None))
}

/// `POST /events/filterEventIdsForPush` (sync users): of the Events a peer offers to push
/// (`[{"Event": {"uuid", "timestamp"}}]`), the uuids this instance wants — unknown here, or newer
/// than the copy here.
pub async fn filter_for_push(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_sync || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let offered: Vec<(uuid::Uuid, i64)> = body
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("Expected a list of {\"Event\": {\"uuid\", \"timestamp\"}}.".into()))?
        .iter()
        .filter_map(|e| {
            let e = crate::body::unwrap(e, "Event");
            let uuid = e.get("uuid").and_then(serde_json::Value::as_str).and_then(|u| uuid::Uuid::parse_str(u.trim()).ok())?;
            Some((uuid, crate::body::int(e.get("timestamp")).unwrap_or(0)))
        })
        .collect();
    let uuids: Vec<uuid::Uuid> = offered.iter().map(|o| o.0).collect();
    let client = state.pool.get().await?;
    let here: std::collections::HashMap<uuid::Uuid, i64> =
        client.query("SELECT uuid, timestamp FROM rm.events WHERE uuid = ANY($1)", &[&uuids]).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let wanted: Vec<String> = offered.iter().filter(|(u, t)| here.get(u).is_none_or(|local| local < t)).map(|(u, _)| u.to_string()).collect();
    Ok(json(serde_json::json!(wanted)))
}
