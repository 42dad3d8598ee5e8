//! `/taxonomies/*`: the misp-taxonomies shipped by pytaxonomies, enabled per instance.

use super::support::{self, json, saved};
use super::Request;
use crate::auth::Authed;
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::instance::InstanceCommand;
use cairn_domain::taxonomy::Taxonomy;
use serde_json::{Value, json};
use std::collections::HashMap;

fn invalid() -> ApiError {
    ApiError::NotFound("Invalid taxonomy.".into())
}

async fn enabled(state: &AppState) -> Result<HashMap<String, bool>, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query("SELECT namespace, required FROM rm.taxonomies", &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn taxonomy_json(id: i64, t: &Taxonomy, enabled: &HashMap<String, bool>) -> Value {
    json!({
        "id": id.to_string(), "namespace": t.namespace, "description": t.description, "version": t.version.to_string(),
        "enabled": enabled.contains_key(&t.namespace), "exclusive": t.exclusive,
        "required": enabled.get(&t.namespace).copied().unwrap_or(false), "highlighted": false,
    })
}

/// `GET /taxonomies/index`.
pub async fn index(state: &AppState, _auth: &Authed) -> Result<Response, ApiError> {
    let enabled = enabled(state).await?;
    let client = state.pool.get().await?;
    let existing: Vec<String> = client.query("SELECT lower(name) FROM rm.tags WHERE NOT deleted", &[]).await?.iter().map(|r| r.get(0)).collect();
    let list: Vec<Value> = state
        .reference
        .taxonomies
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let current = t.entries.iter().filter(|e| existing.contains(&e.tag.to_lowercase())).count();
            json!({"Taxonomy": taxonomy_json(i as i64 + 1, t, &enabled), "total_count": t.entries.len(), "current_count": current})
        })
        .collect();
    Ok(json(Value::Array(list)))
}

/// `GET /taxonomies/view/{id|namespace}`.
pub async fn view(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid)?;
    let (id, t) = state.reference.taxonomy(key).ok_or_else(invalid)?;
    let enabled = enabled(state).await?;
    let mut entries = Vec::new();
    for e in &t.entries {
        let existing = support::find_tag(state, &e.tag).await?;
        entries.push(json!({
            "tag": e.tag, "expanded": e.expanded, "exclusive_predicate": false, "description": "",
            "numerical_value": e.numerical_value,
            "existing_tag": existing.map(|t| json!({"Tag": {"id": t.id.to_string(), "name": t.name, "colour": t.colour, "hide_tag": t.hide_tag}})).unwrap_or(json!(false)),
            "events": 0, "attributes": 0,
        }));
    }
    Ok(json(json!({"Taxonomy": taxonomy_json(id, t, &enabled), "entries": entries})))
}

async fn instance_command(state: &AppState, auth: &Authed, name: &'static str, command: InstanceCommand) -> Result<(), ApiError> {
    support::instance_command(state, auth, name, "save Taxonomy", command).await.map(drop)
}

/// `POST /taxonomies/enable/{id}`.
pub async fn enable(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, t) = state.reference.taxonomy(req.path.args.first().ok_or_else(invalid)?).ok_or_else(invalid)?;
    instance_command(state, auth, "taxonomies.enable", InstanceCommand::EnableTaxonomy { namespace: t.namespace.clone() }).await?;
    Ok(saved("Taxonomy enabled", &req.url, Some(id.to_string())))
}

/// `POST /taxonomies/disable/{id}` (and `disableTag`, which MISP calls first: it hides the tags).
pub async fn disable(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, t) = state.reference.taxonomy(req.path.args.first().ok_or_else(invalid)?).ok_or_else(invalid)?;
    if req.path.action == "disable_tag" {
        return Ok(saved("Tags disabled", &req.url, Some(id.to_string())));
    }
    instance_command(state, auth, "taxonomies.disable", InstanceCommand::DisableTaxonomy { namespace: t.namespace.clone() }).await?;
    Ok(saved("Taxonomy disabled", &req.url, Some(id.to_string())))
}

/// `POST /taxonomies/toggleRequired/{id}` with `{"Taxonomy": {"required": bool}}`.
pub async fn toggle_required(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, t) = state.reference.taxonomy(req.path.args.first().ok_or_else(invalid)?).ok_or_else(invalid)?;
    let body = crate::body::parse(&req.body)?;
    let current = enabled(state).await?.get(&t.namespace).copied().unwrap_or(false);
    let required = crate::body::flag(crate::body::unwrap(&body, "Taxonomy").get("required")).unwrap_or(!current);
    instance_command(state, auth, "taxonomies.enable", InstanceCommand::EnableTaxonomy { namespace: t.namespace.clone() }).await?;
    instance_command(state, auth, "taxonomies.toggle_required", InstanceCommand::SetTaxonomyRequired { namespace: t.namespace.clone(), required }).await?;
    Ok(saved("Taxonomy toggleRequireded", &req.url, Some(id.to_string())))
}

/// `POST /taxonomies/addTag/{id}`: creates every tag of the taxonomy (site admin).
pub async fn add_tags(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let (id, t) = state.reference.taxonomy(req.path.args.first().ok_or_else(invalid)?).ok_or_else(invalid)?;
    for e in &t.entries {
        if support::find_tag(state, &e.tag).await?.is_none() {
            support::create_tag(state, auth, support::taxonomy_tag(state, &e.tag)).await?;
        }
    }
    let mut r = crate::misp::save_success("The tag(s) has been saved.", &req.url, Some(id.to_string()));
    r["name"] = json!("The tag(s) has been saved.");
    Ok(json(r))
}

/// `POST /taxonomies/update`: the taxonomies come with the installed package.
pub fn update(req: &Request) -> Result<Response, ApiError> {
    Ok(saved("All taxonomy libraries are up to date already.", &req.url, None))
}
