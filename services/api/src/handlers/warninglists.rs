//! `/warninglists/*`: the misp-warninglists shipped by pymispwarninglists, enabled per instance.

use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::AppState;
use crate::warninglists::Listed;
use axum::response::Response;
use cairn_domain::instance::InstanceCommand;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn invalid() -> ApiError {
    ApiError::NotFound("Invalid Warninglist.".into())
}

async fn enabled(state: &AppState) -> Result<BTreeSet<String>, ApiError> {
    Ok(state.instance.get(&state.pool).await?.warninglists.clone())
}

fn valid_attributes(l: &Listed) -> String {
    if l.info.matching_attributes.is_empty() { "ALL".into() } else { l.info.matching_attributes.join(", ") }
}

fn list_json(l: &Listed, enabled: &BTreeSet<String>) -> Value {
    json!({
        "id": l.id.to_string(), "name": l.info.name, "type": l.info.list_type.as_str(), "description": l.info.description,
        "version": l.info.version.to_string(), "enabled": enabled.contains(&l.key), "default": true,
        "category": l.info.category, "warninglist_entry_count": l.info.entry_count.to_string(),
        "valid_attributes": valid_attributes(l),
    })
}

/// A parameter from the body or the named path parameters.
fn param(req: &Request, body: &Value, name: &str) -> Option<Value> {
    body.get(name).cloned().or_else(|| req.path.named.get(name).map(|v| Value::String(v.clone())))
}

/// `GET /warninglists/index[/value:…][/enabled:0|1]`: `{"Warninglists": [{"Warninglist": …}]}`.
pub async fn index(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let search = crate::body::text(param(req, &body, "value").as_ref()).map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
    let only = crate::body::flag(param(req, &body, "enabled").as_ref());
    let enabled = enabled(state).await?;
    let reference = support::warninglist_catalog(state).await?;
    let list: Vec<Value> = reference
        .warninglists
        .loaded()
        .lists()
        .iter()
        .filter(|l| only.is_none_or(|on| enabled.contains(&l.key) == on))
        .filter(|l| {
            search.as_ref().is_none_or(|s| l.info.name.to_lowercase().contains(s) || l.info.description.to_lowercase().contains(s))
        })
        .map(|l| json!({"Warninglist": list_json(l, &enabled)}))
        .collect();
    Ok(json(json!({"Warninglists": list})))
}

/// `GET /warninglists/view/{id}`: the list with its entries and attribute types.
pub async fn view(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let id: i64 = req.path.args.first().and_then(|s| s.trim().parse().ok()).ok_or_else(invalid)?;
    let reference = support::warninglist_catalog(state).await?;
    let listed = reference.warninglists.loaded().by_id(id).ok_or_else(invalid)?.clone();
    let enabled = enabled(state).await?;
    let catalog = reference.clone();
    let key = listed.clone();
    let entries = tokio::task::spawn_blocking(move || catalog.warninglists.entries(&key))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("warninglist {}: {e}", listed.key)))?;
    let mut v = list_json(&listed, &enabled);
    let wid = listed.id.to_string();
    v["WarninglistEntry"] = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({"id": (i + 1).to_string(), "value": e, "warninglist_id": wid, "comment": null}))
        .collect();
    let types = if listed.info.matching_attributes.is_empty() { vec!["ALL".to_string()] } else { listed.info.matching_attributes.clone() };
    v["WarninglistType"] =
        types.iter().enumerate().map(|(i, t)| json!({"id": (i + 1).to_string(), "type": t, "warninglist_id": wid})).collect();
    Ok(json(json!({"Warninglist": v})))
}

/// Strings or numbers, alone or in a list.
fn many(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| crate::body::text(Some(i))).collect(),
        Some(other) => crate::body::text(Some(other)).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `POST /warninglists/toggleEnable` with `{"id": [..] | n, "name": [..] | "…%", "enabled": bool}`
/// (`enabled` omitted: each list flips). Names match case-insensitively, `%` as a wildcard at
/// either end.
pub async fn toggle_enable(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Warninglist");
    let ids: Vec<i64> = many(body.get("id")).iter().filter_map(|s| s.trim().parse().ok()).collect();
    let names: Vec<String> = many(body.get("name")).into_iter().filter(|n| !n.trim().is_empty()).collect();
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::body::flag(Some(v)).ok_or_else(|| ApiError::BadRequest("enabled must be true or false.".into()))?),
    };
    let reference = support::warninglist_catalog(state).await?;
    let keys: Vec<String> = reference
        .warninglists
        .loaded()
        .lists()
        .iter()
        .filter(|l| {
            ids.contains(&l.id)
                || names.iter().any(|n| cairn_domain::correlation::excluded(n.trim(), &l.info.name.to_lowercase()) || n.trim() == l.key)
        })
        .map(|l| l.key.clone())
        .collect();
    if keys.is_empty() {
        return Err(ApiError::NotFound("Warninglist(s) not found.".into()));
    }
    let count = keys.len();
    support::instance_command(state, auth, "warninglists.toggle_enable", "toggle the warninglist(s)", InstanceCommand::ToggleWarninglists {
        keys,
        enabled,
    })
    .await?;
    let verb = match enabled {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "toggled",
    };
    Ok(json(json!({"saved": true, "success": format!("{count} warninglist(s) {verb}")})))
}

/// `POST /warninglists/checkValue` with a list of values (or one): the enabled lists each value
/// hits, `{"<value>": [{"id", "name", "matched"}]}`; values without hits are left out.
pub async fn check_value(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let values = match &body {
        Value::Array(_) => many(Some(&body)),
        Value::Object(o) => many(o.get("value").or_else(|| o.get("values"))),
        Value::Null => Vec::new(),
        other => many(Some(other)),
    };
    if values.is_empty() {
        return Err(ApiError::BadRequest("No valid values given: send a JSON list of values.".into()));
    }
    let matcher = support::warninglists(state).await?;
    let reference = support::warninglist_catalog(state).await?;
    let catalog = reference.warninglists.loaded();
    let mut out = serde_json::Map::new();
    for value in values {
        let hits = matcher.check_value(value.trim());
        if hits.is_empty() {
            continue;
        }
        let list: Vec<Value> = hits
            .iter()
            .map(|h| json!({"id": catalog.by_key(&h.list).map_or(0, |l| l.id).to_string(), "name": h.name, "matched": h.matched}))
            .collect();
        out.insert(value, Value::Array(list));
    }
    Ok(json(Value::Object(out)))
}

/// `POST /warninglists/update` (site admin): the lists come with the installed package.
///
/// # Errors
/// Forbidden for anyone but a site admin.
pub fn update(auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    Ok(json(json!({"name": "All warninglists are up to date already.", "message": "All warninglists are up to date already.", "url": req.url})))
}
