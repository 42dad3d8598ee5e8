//! Helpers shared by the MISP handlers: the caller as a viewer, the decision context, tag resolution,
//! response shapes.

use crate::auth::Authed;
use crate::commands::{self, CommandMeta};
use crate::error::ApiError;
use crate::input::TagMap;
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use cairn_domain::acl::{AccessSettings, Viewer};
use cairn_domain::event::{Context, TagInfo};
use cairn_domain::stream;
use cairn_domain::tag::{self, Tag, TagCommand, TagState};
use serde_json::Value;
use std::collections::BTreeSet;

/// Sharing groups an organisation belongs to (MISP's `authorizedIds`): listed as a member, or the group
/// lists this instance (server 0) with `all_orgs`.
///
/// # Errors
/// Database errors.
pub async fn member_sharing_groups(state: &AppState, org_id: i64) -> Result<BTreeSet<i64>, ApiError> {
    Ok(state.sharing_groups.get(&state.pool, org_id).await?.member.clone())
}

/// Sharing groups an organisation may assign to data (MISP's `checkIfAuthorised`): members and the
/// owner organisation; site admins may use every group.
///
/// # Errors
/// Database errors.
pub async fn usable_sharing_groups(state: &AppState, auth: &Authed) -> Result<BTreeSet<i64>, ApiError> {
    if auth.is_site_admin() {
        return Ok(state.sharing_groups.all(&state.pool).await?.as_ref().clone());
    }
    Ok(state.sharing_groups.get(&state.pool, auth.org.id).await?.usable.clone())
}

/// The caller as the access rule sees them.
///
/// # Errors
/// Database errors.
pub async fn viewer(state: &AppState, auth: &Authed) -> Result<Viewer, ApiError> {
    if auth.is_site_admin() {
        return Ok(Viewer { org_id: auth.org.id, site_admin: true, sharing_groups: BTreeSet::new() });
    }
    org_viewer(state, auth.org.id).await
}

/// What any (non-admin) user of organisation `org_id` sees: the exporter's views and audiences.
///
/// # Errors
/// Database errors.
pub async fn org_viewer(state: &AppState, org_id: i64) -> Result<Viewer, ApiError> {
    Ok(Viewer { org_id, site_admin: false, sharing_groups: member_sharing_groups(state, org_id).await? })
}

/// Instance settings that change visibility.
///
/// # Errors
/// Database errors.
pub async fn access_settings(state: &AppState) -> Result<AccessSettings, ApiError> {
    let unpublished = crate::handlers::servers::setting(state, "MISP.unpublishedprivate").await?;
    Ok(AccessSettings { unpublished_private: unpublished.and_then(|v| crate::body::flag(Some(&v))).unwrap_or(false) })
}

/// Everything a decision context borrows, owned here for the duration of one request.
pub struct DecisionFacts {
    pub actor: cairn_domain::Actor,
    pub viewer: Viewer,
    pub access: AccessSettings,
    pub sharing_groups: BTreeSet<i64>,
    pub now: i64,
    pub host_org_id: i64,
    pub default_event_distribution: u8,
    pub default_attribute_distribution: u8,
}

/// # Errors
/// Database errors.
pub async fn facts(state: &AppState, auth: &Authed) -> Result<DecisionFacts, ApiError> {
    let setting_u8 = |v: Option<Value>, default: u8| v.and_then(|v| crate::body::int(Some(&v))).and_then(|i| u8::try_from(i).ok()).unwrap_or(default);
    let instance = state.instance.get(&state.pool).await?;
    let event_distribution = crate::handlers::servers::setting(state, "MISP.default_event_distribution").await?;
    let attribute_distribution = crate::handlers::servers::setting(state, "MISP.default_attribute_distribution").await?;
    Ok(DecisionFacts {
        actor: auth.actor(),
        viewer: viewer(state, auth).await?,
        access: access_settings(state).await?,
        sharing_groups: usable_sharing_groups(state, auth).await?,
        now: chrono::Utc::now().timestamp(),
        host_org_id: instance.host_org_id,
        default_event_distribution: setting_u8(event_distribution, state.settings.instance.default_event_distribution),
        default_attribute_distribution: setting_u8(attribute_distribution, state.settings.instance.default_attribute_distribution),
    })
}

impl DecisionFacts {
    pub fn context<'a>(&'a self, state: &'a AppState, auth: &'a Authed) -> Context<'a> {
        Context {
            actor: &self.actor,
            role: &auth.role,
            now: self.now,
            today: chrono::DateTime::from_timestamp(self.now, 0).unwrap_or_default().format("%Y-%m-%d").to_string(),
            catalogue: &state.reference.catalogue,
            templates: &state.reference.templates,
            default_event_distribution: self.default_event_distribution,
            default_attribute_distribution: self.default_attribute_distribution,
            default_threat_level: 4,
            host_org_id: self.host_org_id,
            sharing_groups: &self.sharing_groups,
            viewer: &self.viewer,
            access: self.access,
        }
    }
}

fn tag_info(t: &Tag) -> TagInfo {
    TagInfo { id: t.id, name: t.name.clone(), org_id: t.org_id, user_id: t.user_id, local_only: t.local_only }
}

/// A tag by id or (case-insensitive) name.
///
/// # Errors
/// Database errors.
pub async fn find_tag(state: &AppState, key: &str) -> Result<Option<Tag>, ApiError> {
    let client = state.pool.get().await?;
    let sql = format!("SELECT {} FROM rm.tags t WHERE NOT t.deleted AND ", crate::render::TAG_COLUMNS);
    let row = match key.trim().parse::<i64>() {
        Ok(id) => client.query_opt(&format!("{sql} t.id = $1"), &[&id]).await?,
        Err(_) => client.query_opt(&format!("{sql} lower(t.name) = lower($1) ORDER BY t.id LIMIT 1"), &[&key.trim()]).await?,
    };
    Ok(row.map(|r| Tag {
        id: r.get(0),
        name: r.get(1),
        colour: r.get(2),
        exportable: r.get(3),
        org_id: r.get(4),
        user_id: r.get(5),
        hide_tag: r.get(6),
        numerical_value: r.get(7),
        is_galaxy: r.get(8),
        is_custom_galaxy: r.get(9),
        local_only: r.get(10),
    }))
}

/// Creates a tag through its command path (the caller needs perm_tag_editor).
///
/// # Errors
/// Domain refusals and store errors.
pub async fn create_tag(state: &AppState, auth: &Authed, mut t: Tag) -> Result<Tag, ApiError> {
    t.id = commands::allocate_ids(state, "tag", 1).await?.first().copied().unwrap_or_default();
    let role = auth.role.clone();
    create_tag_as(state, auth, &role, t, "tags.add").await
}

/// Creates a tag on its name-derived stream (so concurrent creations of one name collide); if that
/// stream belongs to a tag that was renamed since, on a fresh stream.
async fn create_tag_as(state: &AppState, auth: &Authed, role: &cairn_domain::role::Role, t: Tag, command: &'static str) -> Result<Tag, ApiError> {
    let meta = CommandMeta::new(command, auth.actor());
    let candidate = t.clone();
    let result = commands::execute(state, &meta, stream::tag_stream(&t.name), stream::TAG, tag::evolve, |s: &TagState| {
        Ok((tag::decide(s, role, TagCommand::Create { tag: candidate.clone() })?, ()))
    })
    .await;
    match result {
        Ok(_) => Ok(t),
        Err(ApiError::SaveFailed { .. }) => {
            if let Some(existing) = find_tag(state, &t.name).await? {
                return Ok(existing); // someone created the same name meanwhile: use theirs
            }
            let meta = CommandMeta::new(command, auth.actor());
            commands::execute(state, &meta, uuid::Uuid::new_v4(), stream::TAG, tag::evolve, |s: &TagState| {
                Ok((tag::decide(s, role, TagCommand::Create { tag: t.clone() })?, ()))
            })
            .await?;
            Ok(t)
        }
        Err(e) => Err(e),
    }
}

/// A new tag record with MISP's defaults.
pub fn new_tag(name: &str) -> Tag {
    Tag {
        id: 0,
        name: name.trim().to_string(),
        colour: tag::default_colour(name.trim()),
        exportable: true,
        org_id: 0,
        user_id: 0,
        hide_tag: false,
        numerical_value: None,
        is_galaxy: tag::is_galaxy_name(name.trim()),
        is_custom_galaxy: false,
        local_only: false,
    }
}

/// Tags a request names, resolved without writing: existing tags, plus the ones the caller may create
/// (tag editors; enabled taxonomies for taggers), with ids reserved. They are created by
/// [`PlannedTags::create`] only once the command they serve is known to be accepted, so a refused
/// request leaves no new tag behind.
#[derive(Debug, Default)]
pub struct PlannedTags {
    pub map: TagMap,
    /// (record, created on the system's behalf from an enabled taxonomy)
    pending: Vec<(Tag, bool)>,
}

impl PlannedTags {
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Creates the reserved tags.
    ///
    /// # Errors
    /// Store errors; 503 (retry) when another request created one of the names meanwhile under another
    /// id (the command's drafts name the reserved id).
    pub async fn create(self, state: &AppState, auth: &Authed) -> Result<(), ApiError> {
        for (t, taxonomy) in self.pending {
            let planned = t.id;
            let created = if taxonomy {
                let admin = cairn_domain::role::default_role(1).ok_or_else(|| ApiError::Internal("admin role missing".into()))?;
                create_tag_as(state, auth, &admin, t, "taxonomies.tag_used").await?
            } else {
                let role = auth.role.clone();
                create_tag_as(state, auth, &role, t, "tags.add").await?
            };
            if created.id != planned {
                return Err(ApiError::Unavailable(format!("tag {:?} was created concurrently", created.name)));
            }
        }
        Ok(())
    }
}

/// Plans the tags `names` (see [`PlannedTags`]).
///
/// # Errors
/// Database errors.
pub async fn plan_tags(state: &AppState, auth: &Authed, names: &[String]) -> Result<PlannedTags, ApiError> {
    let mut planned = PlannedTags::default();
    for name in names {
        let key = name.to_lowercase();
        if planned.map.contains_key(&key) {
            continue;
        }
        let found = match find_tag(state, name).await? {
            Some(t) => Some(t),
            None if auth.role.perm_tag_editor || auth.is_site_admin() => {
                let mut t = new_tag(name);
                t.id = commands::allocate_ids(state, "tag", 1).await?.first().copied().unwrap_or_default();
                tag::validate_name(&t.name).map_err(|e| super::events::refusal(e, "add Tag"))?;
                planned.pending.push((t.clone(), false));
                Some(t)
            }
            None if auth.role.perm_tagger && enabled_taxonomy_tag(state, name).await? => {
                let mut t = taxonomy_tag(state, name);
                t.id = commands::allocate_ids(state, "tag", 1).await?.first().copied().unwrap_or_default();
                planned.pending.push((t.clone(), true));
                Some(t)
            }
            None => None,
        };
        if let Some(t) = found {
            planned.map.insert(key, tag_info(&t));
        }
    }
    Ok(planned)
}

pub fn json(v: Value) -> Response {
    Json(v).into_response()
}

/// MISP's saveSuccess body.
pub fn saved(message: &str, url: &str, id: Option<String>) -> Response {
    json(crate::misp::save_success(message, url, id))
}

/// Whether `name` is a tag of a taxonomy this instance enabled.
///
/// # Errors
/// Database errors.
pub async fn enabled_taxonomy_tag(state: &AppState, name: &str) -> Result<bool, ApiError> {
    let Some(t) = state.reference.taxonomy_of_tag(name) else { return Ok(false) };
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT 1 FROM rm.taxonomies WHERE namespace = $1", &[&t.namespace]).await?.is_some())
}

/// The tag record a taxonomy entry defines (its colour and numerical value).
pub fn taxonomy_tag(state: &AppState, name: &str) -> Tag {
    let mut t = new_tag(name);
    if let Some(entry) = state.reference.taxonomy_of_tag(name).and_then(|tx| tx.entries.iter().find(|e| e.tag.eq_ignore_ascii_case(name))) {
        t.name = entry.tag.clone();
        if let Some(c) = entry.colour.as_ref().filter(|c| c.len() == 7 && c.starts_with('#')) {
            t.colour = c.to_lowercase();
        }
        t.numerical_value = entry.numerical_value;
    }
    t
}

/// The stream of a tag (fixed at creation; a renamed tag keeps it).
///
/// # Errors
/// Database errors; NotFound for an unknown tag.
pub async fn tag_stream_of(state: &AppState, id: i64) -> Result<uuid::Uuid, ApiError> {
    let client = state.pool.get().await?;
    let row = client.query_opt("SELECT stream_id FROM rm.tags WHERE id = $1", &[&id]).await?;
    row.map(|r| r.get(0)).ok_or_else(|| ApiError::NotFound("Invalid tag".into()))
}

/// The correlation settings in force.
///
/// # Errors
/// Database errors.
pub async fn correlation_settings(state: &AppState) -> Result<crate::correlations::CorrelationSettings, ApiError> {
    let int = |v: Option<Value>, d: i64| v.and_then(|v| crate::body::int(Some(&v))).unwrap_or(d);
    let flag = |v: Option<Value>| v.and_then(|v| crate::body::flag(Some(&v))).unwrap_or(false);
    use crate::handlers::servers::setting;
    Ok(crate::correlations::CorrelationSettings {
        limit: int(setting(state, "MISP.correlation_limit").await?, 20),
        advanced: flag(setting(state, "MISP.enable_advanced_correlations").await?),
        disabled: flag(setting(state, "MISP.completely_disable_correlation").await?),
        max_per_event: int(setting(state, "MISP.max_correlations_per_event").await?, 5000),
    })
}

/// Adds `RelatedEvent[]` (and, when `granular`, `RelatedAttribute[]` on each attribute and MISP's
/// `correlation_exclusion` / `over_correlation` flags) to an Event JSON as `viewer` may see them.
///
/// # Errors
/// Database errors.
pub async fn attach_correlations(state: &AppState, viewer: &Viewer, event: &mut Value, events: bool, granular: bool) -> Result<(), ApiError> {
    let Some(e) = event.get_mut("Event") else { return Ok(()) };
    let Some(event_id) = e.get("id").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) else { return Ok(()) };
    let settings = correlation_settings(state).await?;
    let access = access_settings(state).await?;
    let client = state.pool.get().await?;
    let related = crate::correlations::related(&client, viewer, &access, &settings, crate::correlations::Scope::Event(event_id)).await?;
    if events {
        let mut org_ids: Vec<i64> = related.iter().flat_map(|r| [r.event.org_id, r.event.orgc_id]).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let orgs = crate::render::org_shorts(&client, &org_ids).await?;
        e["RelatedEvent"] = Value::Array(crate::correlations::related_events(&related, &orgs));
    }
    if granular {
        let mut by_attribute: std::collections::HashMap<i64, Vec<Value>> = std::collections::HashMap::new();
        for r in &related {
            by_attribute.entry(r.attribute_id).or_default().push(serde_json::json!({
                "id": r.other_attribute_id.to_string(), "value": r.other_value, "org_id": r.event.orgc_id.to_string(),
                "info": r.event.info, "event_id": r.other_event_id.to_string(),
            }));
        }
        let mut ids = Vec::new();
        let mut visit = |a: &mut Value| {
            if let Some(id) = a.get("id").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) {
                ids.push(id);
                a["RelatedAttribute"] = Value::Array(by_attribute.remove(&id).unwrap_or_default());
            }
        };
        for a in e.get_mut("Attribute").and_then(Value::as_array_mut).into_iter().flatten() {
            visit(a);
        }
        for o in e.get_mut("Object").and_then(Value::as_array_mut).into_iter().flatten() {
            for a in o.get_mut("Attribute").and_then(Value::as_array_mut).into_iter().flatten() {
                visit(a);
            }
        }
        let (excluded, over) = crate::correlations::flags(&client, &settings, &ids).await?;
        let mark = |a: &mut Value| {
            if let Some(id) = a.get("id").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) {
                if excluded.contains(&id) {
                    a["correlation_exclusion"] = Value::Bool(true);
                }
                if over.contains(&id) {
                    a["over_correlation"] = Value::Bool(true);
                }
            }
        };
        for a in e.get_mut("Attribute").and_then(Value::as_array_mut).into_iter().flatten() {
            mark(a);
        }
        for o in e.get_mut("Object").and_then(Value::as_array_mut).into_iter().flatten() {
            for a in o.get_mut("Attribute").and_then(Value::as_array_mut).into_iter().flatten() {
                mark(a);
            }
        }
    }
    Ok(())
}

/// The warninglist matcher for the instance's enabled lists and `MISP.warning_for_all`, compiled
/// off the async threads when that set changed.
///
/// # Errors
/// Database errors.
pub async fn warninglists(state: &AppState) -> Result<std::sync::Arc<crate::warninglists::Matcher>, ApiError> {
    let facts = state.instance.get(&state.pool).await?;
    let for_all = crate::body::flag(facts.settings.get("MISP.warning_for_all")).unwrap_or(false);
    if let Some(m) = state.reference.warninglists.cached(&facts.warninglists, for_all) {
        return Ok(m);
    }
    let reference = state.reference.clone();
    let enabled = facts.warninglists.clone();
    tokio::task::spawn_blocking(move || reference.warninglists.matcher(&enabled, for_all))
        .await
        .map_err(|e| ApiError::Internal(format!("warninglist compilation failed: {e}")))
}

/// The warninglist catalogue, read off the async threads on first use.
///
/// # Errors
/// The reading task failed.
pub async fn warninglist_catalog(state: &AppState) -> Result<std::sync::Arc<crate::reference::Reference>, ApiError> {
    let reference = state.reference.clone();
    tokio::task::spawn_blocking(move || {
        reference.warninglists.loaded();
        reference
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading the warninglists failed: {e}")))
}

/// Runs a command on the instance stream; the domain checks the caller's permission. Returns the
/// recorded changes.
///
/// # Errors
/// Refusals (as MISP words them, `action` naming what failed), store errors.
pub async fn instance_command(
    state: &AppState,
    auth: &Authed,
    name: &'static str,
    action: &str,
    command: cairn_domain::instance::InstanceCommand,
) -> Result<Vec<cairn_domain::Change>, ApiError> {
    use cairn_domain::instance::{self, InstanceState};
    let meta = CommandMeta::new(name, auth.actor());
    let role = auth.role.clone();
    let executed = commands::execute(state, &meta, stream::instance_stream(), stream::INSTANCE, instance::evolve, |s: &InstanceState| {
        Ok((instance::decide(s, &role, command.clone()).map_err(|e| super::events::refusal(e, action))?, ()))
    })
    .await?;
    Ok(executed.changes)
}

/// The warninglist matcher and catalogue a read needs for `view`, or `None` when there is nothing
/// to do (the view asks for nothing, or no list is enabled).
///
/// # Errors
/// Database errors.
pub async fn warnings_for(
    state: &AppState,
    view: crate::warninglists::WarningsView,
) -> Result<Option<(std::sync::Arc<crate::warninglists::Matcher>, std::sync::Arc<crate::reference::Reference>)>, ApiError> {
    if !(view.annotate || view.enforce) {
        return Ok(None);
    }
    let matcher = warninglists(state).await?;
    if !matcher.is_active() {
        return Ok(None);
    }
    Ok(Some((matcher, warninglist_catalog(state).await?)))
}

/// `Plugin.Sightings_policy` and the host organisation, for sighting visibility.
///
/// # Errors
/// Database errors.
pub async fn sighting_settings(state: &AppState) -> Result<cairn_domain::acl::SightingSettings, ApiError> {
    let facts = state.instance.get(&state.pool).await?;
    let policy = crate::body::int(facts.settings.get("Plugin.Sightings_policy")).unwrap_or(0);
    Ok(cairn_domain::acl::SightingSettings { policy: cairn_domain::acl::SightingPolicy::from_setting(policy), host_org_id: facts.host_org_id })
}
