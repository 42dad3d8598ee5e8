//! Enrichment routes (MISP's names): `attributes/enrich/{attribute}` and `events/enrichEvent/{event}`
//! (PyMISP's `enrich_attribute`/`enrich_event`, body `{"<module>": true, …}`) run expansion modules
//! and add what they return in one commit; `events/queryEnrichment/{attribute}/{module}` previews the
//! candidate attributes/objects without saving, and `events/handleModuleResults/{event}` adds a
//! (reviewed) preview in one commit; `attributes/hoverEnrichment/{attribute}` runs the enabled hover
//! modules; `modules/index` lists what the misp-modules server offers and what is enabled.
//!
//! Reads go through the ACL'd attribute and Event views; writes through the Event's command path
//! (`events::merge`), so a caller who may not modify the Event is refused and nothing is written.

use super::events::{invalid_event, merge, resolve};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::enrichment::{self, Config, Module};
use crate::error::ApiError;
use crate::input;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::{self, EventState};
use serde_json::{Value, json};

fn invalid_attribute() -> ApiError {
    ApiError::NotFound("Invalid attribute".into())
}

/// Module names a request asks for: `{"dns": true, "hover": false}` (PyMISP) or `{"modules": [...]}`.
fn requested(body: &Value, path_module: Option<&String>) -> Vec<String> {
    let mut out: Vec<String> = path_module.into_iter().cloned().collect();
    if let Some(list) = body.get("modules").and_then(Value::as_array) {
        out.extend(list.iter().filter_map(|m| m.as_str().map(String::from)));
    }
    if let Some(m) = body.as_object() {
        for (k, v) in m {
            if !matches!(k.as_str(), "modules" | "preview") && crate::body::flag(Some(v)) == Some(true) {
                out.push(k.clone());
            }
        }
    }
    out.dedup();
    out
}

/// The requested modules, each known to the server, enabled here and of `kind`.
async fn pick(config: &Config, names: &[String], kind: &str) -> Result<Vec<Module>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::BadRequest("No module requested: send {\"<module name>\": true}.".into()));
    }
    let offered = enrichment::modules(config).await?;
    let mut out = Vec::new();
    for name in names {
        let m = offered.iter().find(|m| &m.name == name).ok_or_else(|| ApiError::BadRequest(format!("Unknown module {name:?}.")))?;
        if !config.module_enabled(name) {
            return Err(ApiError::BadRequest(format!("Module {name:?} is not enabled (Plugin.Enrichment_{name}_enabled).")));
        }
        if !m.is(kind) {
            return Err(ApiError::BadRequest(format!("Module {name:?} is not an {kind} module.")));
        }
        out.push(m.clone());
    }
    Ok(out)
}

/// Does the Event hold an attribute or Object with this uuid?
fn in_event(current: &EventState, uuid: &str) -> bool {
    uuid::Uuid::parse_str(uuid).ok().is_some_and(|u| current.attribute_by_uuid(&u).is_some() || current.object_by_uuid(&u).is_some())
}

/// Runs `modules` on each attribute that fits them and gathers what is new for the Event.
async fn run_modules(config: &Config, modules: &[Module], attributes: &[Value], current: &EventState) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let known = |u: &str| in_event(current, u);
    let (mut attrs, mut objects) = (Vec::new(), Vec::new());
    for a in attributes {
        let attr_type = a["type"].as_str().unwrap_or_default();
        for m in modules.iter().filter(|m| m.takes(attr_type)) {
            let results = enrichment::query(config, m, a).await?;
            let (new_attrs, new_objects) = enrichment::to_misp(&results, &known);
            attrs.extend(new_attrs);
            objects.extend(new_objects);
        }
    }
    Ok((attrs, objects))
}

/// Adds module results to the Event in one commit; answers what was added.
async fn save(state: &AppState, auth: &Authed, event_uuid: uuid::Uuid, event_id: i64, attrs: Vec<Value>, objects: Vec<Value>, url: &str) -> Result<Response, ApiError> {
    if attrs.is_empty() && objects.is_empty() {
        let mut answer = crate::misp::save_success("Enrichment found nothing new.", url, Some(event_id.to_string()));
        answer["attributes_added"] = json!(0);
        answer["objects_added"] = json!(0);
        return Ok(json(answer));
    }
    let body = json!({"Event": {"Attribute": attrs, "Object": objects}});
    let mut names = Vec::new();
    input::tag_names(input::event_body(&body), &mut names);
    let tags = support::plan_tags(state, auth, &names).await?;
    let draft = input::event_draft(&body, &tags.map)?;
    let executed = merge(state, auth, event_uuid, draft, tags, "enrichment.add_results", "add the enrichment results").await?;
    let added = |f: fn(&cairn_domain::Change) -> bool| executed.changes.iter().filter(|c| f(c)).count();
    let attributes_added = added(|c| matches!(c, cairn_domain::Change::AttributeAdded(a) if a.object_id == 0));
    let objects_added = added(|c| matches!(c, cairn_domain::Change::ObjectAdded(_)));
    let mut answer = crate::misp::save_success(
        &format!("Enrichment added {attributes_added} attribute(s) and {objects_added} object(s)."),
        url,
        Some(event_id.to_string()),
    );
    answer["attributes_added"] = json!(attributes_added);
    answer["objects_added"] = json!(objects_added);
    if !executed.extra.is_empty() {
        answer["errors"] = json!(executed.extra.iter().map(|(k, e)| json!({k.clone(): e.to_string()})).collect::<Vec<_>>());
    }
    Ok(json(answer))
}

/// An attribute the caller may see (through the ACL'd attribute view) and its Event (id, uuid).
async fn visible_attribute(state: &AppState, auth: &Authed, key: &str) -> Result<(Value, i64, uuid::Uuid), ApiError> {
    let client = state.pool.get().await?;
    let settings = support::access_settings(state).await?;
    let viewer = support::viewer(state, auth).await?;
    let view = crate::render::attribute_view(&client, &viewer, &settings, key.trim(), false).await?.ok_or_else(invalid_attribute)?;
    drop(client);
    let attribute = view.get("Attribute").cloned().unwrap_or(view);
    let event_key = attribute["event_id"].as_str().ok_or_else(invalid_attribute)?.to_string();
    let (event_id, event_uuid) = resolve(state, auth, &event_key).await.map_err(|_| invalid_attribute())?;
    Ok((attribute, event_id, event_uuid))
}

/// `POST /attributes/enrich/{attribute}` with `{"<module>": true}`: runs the expansion modules on the
/// attribute and adds the results (`"preview": true`: answers them without adding).
pub async fn enrich_attribute(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (attribute, event_id, event_uuid) = visible_attribute(state, auth, req.path.args.first().ok_or_else(invalid_attribute)?).await?;
    let body = crate::body::parse(&req.body)?;
    let config = Config::load(state).await?;
    let modules = pick(&config, &requested(&body, None), "expansion").await?;
    let attr_type = attribute["type"].as_str().unwrap_or_default();
    if !modules.iter().any(|m| m.takes(attr_type)) {
        return Err(ApiError::BadRequest(format!("None of the requested modules takes attributes of type {attr_type:?}.")));
    }
    let (current, _) = crate::commands::load(state, event_uuid, event::evolve).await?;
    let (attrs, objects) = run_modules(&config, &modules, std::slice::from_ref(&attribute), &current).await?;
    if crate::body::flag(body.get("preview")).unwrap_or(false) {
        return Ok(json(json!({"results": {"Attribute": attrs, "Object": objects}})));
    }
    save(state, auth, event_uuid, event_id, attrs, objects, &req.url).await
}

/// `POST /events/queryEnrichment/{attribute}/{module}`: the preview of one module's results.
pub async fn query_enrichment(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (attribute, _, event_uuid) = visible_attribute(state, auth, req.path.args.first().ok_or_else(invalid_attribute)?).await?;
    let body = crate::body::parse(&req.body)?;
    let config = Config::load(state).await?;
    let modules = pick(&config, &requested(&body, req.path.args.get(1)), "expansion").await?;
    let (current, _) = crate::commands::load(state, event_uuid, event::evolve).await?;
    let (attrs, objects) = run_modules(&config, &modules, std::slice::from_ref(&attribute), &current).await?;
    Ok(json(json!({"results": {"Attribute": attrs, "Object": objects}})))
}

/// `POST /events/handleModuleResults/{event}` with `{"Attribute": [...], "Object": [...]}` (or a
/// preview's `{"results": {...}}`): adds them in one commit.
pub async fn handle_module_results(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (event_id, event_uuid) = resolve(state, auth, req.path.args.first().ok_or_else(invalid_event)?).await?;
    let body = crate::body::parse(&req.body)?;
    let results = body.get("results").unwrap_or(&body);
    let (current, _) = crate::commands::load(state, event_uuid, event::evolve).await?;
    let (attrs, objects) = enrichment::to_misp(results, &|u| in_event(&current, u));
    if attrs.is_empty() && objects.is_empty() {
        return Err(ApiError::SaveFailed {
            name: "Could not add the module results".into(),
            errors: json!({"results": ["Nothing to add: send {\"Attribute\": [...], \"Object\": [...]}."]}),
        });
    }
    save(state, auth, event_uuid, event_id, attrs, objects, &req.url).await
}

/// `POST /events/enrichEvent/{event}` with `{"<module>": true}`: every attribute of the Event (object
/// attributes included) that a requested module takes, enriched and added in one commit.
pub async fn enrich_event(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (event_id, event_uuid) = resolve(state, auth, req.path.args.first().ok_or_else(invalid_event)?).await?;
    let body = crate::body::parse(&req.body)?;
    let config = Config::load(state).await?;
    let modules = pick(&config, &requested(&body, None), "expansion").await?;
    let (current, _) = crate::commands::load(state, event_uuid, event::evolve).await?;
    // The attributes as the caller sees them (the ACL'd Event view), not the whole stream.
    let view = super::events::render_event(
        state,
        auth,
        &event_uuid.to_string(),
        &crate::render::ViewOptions::default(),
        super::events::CorrelationView::default(),
        crate::warninglists::WarningsView::default(),
    )
    .await?;
    let mut attributes: Vec<Value> = view["Event"]["Attribute"].as_array().cloned().unwrap_or_default();
    for o in view["Event"]["Object"].as_array().into_iter().flatten() {
        attributes.extend(o["Attribute"].as_array().cloned().unwrap_or_default());
    }
    let (attrs, objects) = run_modules(&config, &modules, &attributes, &current).await?;
    save(state, auth, event_uuid, event_id, attrs, objects, &req.url).await
}

/// `GET /attributes/hoverEnrichment/{attribute}`: every enabled hover module that takes the type
/// (`Plugin.Enrichment_hover_enable` must not be off), results per module, nothing saved.
pub async fn hover(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (attribute, _, event_uuid) = visible_attribute(state, auth, req.path.args.first().ok_or_else(invalid_attribute)?).await?;
    let config = Config::load(state).await?;
    if super::servers::setting(state, "Plugin.Enrichment_hover_enable").await?.is_some_and(|v| crate::body::flag(Some(&v)) == Some(false)) {
        return Err(ApiError::BadRequest("Hover enrichment is disabled (Plugin.Enrichment_hover_enable).".into()));
    }
    let attr_type = attribute["type"].as_str().unwrap_or_default();
    let (current, _) = crate::commands::load(state, event_uuid, event::evolve).await?;
    let mut out = serde_json::Map::new();
    for m in enrichment::modules(&config).await?.iter().filter(|m| m.is("hover") && m.takes(attr_type) && config.module_enabled(&m.name)) {
        let (attrs, objects) = run_modules(&config, std::slice::from_ref(m), std::slice::from_ref(&attribute), &current).await?;
        out.insert(m.name.clone(), json!({"Attribute": attrs, "Object": objects}));
    }
    Ok(json(json!({"results": out})))
}

/// `GET /modules/index`: the modules the misp-modules server offers, with `enabled` as configured here.
pub async fn modules_index(state: &AppState, _auth: &Authed) -> Result<Response, ApiError> {
    let config = Config::load(state).await?;
    let list: Vec<Value> = enrichment::modules(&config)
        .await?
        .into_iter()
        .map(|m| {
            let mut v = m.raw.clone();
            v["enabled"] = json!(config.module_enabled(&m.name));
            v
        })
        .collect();
    Ok(json(json!({"modules": list})))
}
