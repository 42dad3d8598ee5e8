//! `/servers/*`: the version handshake and instance settings.

use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The MISP version Cairn speaks (pure dotted integers: PyMISP parses them as ints).
pub const MISP_VERSION: &str = "2.5.34";
pub const PYMISP_RECOMMENDED: &str = "2.5.34.4";

pub async fn get_version(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    let instance_uuid = if auth.role.perm_sync || auth.is_site_admin() {
        state.instance.get(&state.pool).await?.instance_uuid.map_or_else(|| "-".into(), |u| u.to_string())
    } else {
        "-".into()
    };
    Ok(Json(json!({
        "version": MISP_VERSION,
        "pymisp_recommended_version": PYMISP_RECOMMENDED,
        "perm_sync": auth.role.perm_sync,
        "perm_sighting": auth.role.perm_sighting,
        "perm_galaxy_editor": auth.role.perm_galaxy_editor,
        "perm_analyst_data": auth.role.perm_analyst_data,
        "uuid": instance_uuid,
        "request_encoding": [],
        "filter_sightings": true,
        "cairn": env!("CARGO_PKG_VERSION"),
    }))
    .into_response())
}

pub fn get_pymisp_version() -> Result<Response, ApiError> {
    Ok(Json(json!({"version": PYMISP_RECOMMENDED})).into_response())
}

/// MISP settings Cairn knows, with the value a fresh MISP has (the live suite reads some of them).
pub fn default_setting(state: &AppState, name: &str) -> Option<serde_json::Value> {
    let i = &state.settings.instance;
    Some(match name {
        "MISP.default_event_distribution" => json!(i.default_event_distribution),
        "MISP.default_attribute_distribution" => json!(i.default_attribute_distribution),
        "MISP.background_jobs" => json!(true),
        "MISP.delegation" => json!(true),
        "MISP.live" => json!(true),
        "MISP.max_correlations_per_event" => json!(5000),
        "MISP.correlation_limit" => json!(20),
        "MISP.enable_advanced_correlations" => json!(false),
        "MISP.unpublishedprivate" => json!(false),
        "MISP.host_org_id" => json!(1),
        "MISP.baseurl" => json!(i.base_url),
        "Security.allow_self_registration" => json!(false),
        "debug" => json!(0),
        _ => return None,
    })
}

/// The current value of a setting: the last recorded change, else the default.
///
/// # Errors
/// Database errors.
pub async fn setting(state: &AppState, name: &str) -> Result<Option<serde_json::Value>, ApiError> {
    let facts = state.instance.get(&state.pool).await?;
    Ok(facts.settings.get(name).cloned().or_else(|| default_setting(state, name)))
}

/// `GET /servers/getSetting/{name}` (site admin).
pub async fn get_setting(state: &AppState, auth: &Authed, path: &crate::dispatch::MispPath) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let name = path.args.first().ok_or_else(|| ApiError::NotFound("Invalid setting.".into()))?;
    let value = setting(state, name).await?.ok_or_else(|| ApiError::NotFound("Invalid setting.".into()))?;
    Ok(Json(json!({"setting": name, "value": value})).into_response())
}

/// `POST /servers/serverSettingsEdit/{name}` with `{"value": …, "force": …}` (site admin): recorded as
/// a change of the instance stream.
pub async fn settings_edit(state: &AppState, auth: &Authed, req: &crate::handlers::Request) -> Result<Response, ApiError> {
    use cairn_domain::instance::InstanceCommand;
    if !auth.is_site_admin() {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let name = req.path.args.first().cloned().ok_or_else(|| ApiError::NotFound("Invalid setting.".into()))?;
    let body = crate::body::parse(&req.body)?;
    let value = body.get("value").cloned().ok_or_else(|| ApiError::SaveFailed {
        name: "Could not edit the setting".into(),
        errors: json!({"value": ["Mandatory field not set."]}),
    })?;
    super::support::instance_command(state, auth, "servers.settings_edit", "edit the setting", InstanceCommand::ChangeSetting { name: name.clone(), value }).await?;
    Ok(Json(json!({"name": "Field updated", "message": "Field updated", "url": req.url})).into_response())
}

fn site_admin_only(auth: &Authed) -> Result<(), ApiError> {
    if auth.is_site_admin() { Ok(()) } else { Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into())) }
}

fn invalid_server() -> ApiError {
    ApiError::NotFound("Invalid server".into())
}

/// MISP's rules columns are JSON text.
fn rules_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A server as MISP shows it (`authkey` never leaves the instance).
fn server_json(s: &cairn_domain::server::Server) -> serde_json::Value {
    json!({
        "id": s.id.to_string(), "name": s.name, "url": s.url, "authkey": "", "org_id": s.org_id.to_string(),
        "remote_org_id": s.remote_org_id.to_string(), "push": s.push, "pull": s.pull, "push_sightings": s.push_sightings,
        "push_galaxy_clusters": false, "pull_galaxy_clusters": false, "push_analyst_data": false, "pull_analyst_data": false,
        "internal": s.internal, "unpublish_event": s.unpublish_event, "publish_without_email": s.publish_without_email,
        "self_signed": s.self_signed, "skip_proxy": s.skip_proxy, "caching_enabled": s.caching_enabled,
        "remove_missing_tags": s.remove_missing_tags, "priority": s.priority.to_string(), "lastpulledid": null, "lastpushedid": null,
        "push_rules": rules_text(&s.push_rules), "pull_rules": rules_text(&s.pull_rules), "cert_file": null, "client_cert_file": null,
    })
}

async fn server_by_arg(state: &AppState, req: &crate::handlers::Request) -> Result<cairn_domain::server::Server, ApiError> {
    let id: i64 = req.path.args.first().and_then(|a| a.parse().ok()).ok_or_else(invalid_server)?;
    crate::sync::servers(state).await?.remove(&id).ok_or_else(invalid_server)
}

/// `GET /servers/index` (site admin).
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    site_admin_only(auth)?;
    let mut out = Vec::new();
    for s in crate::sync::servers(state).await?.values() {
        let org = super::admin::find_org(state, &s.org_id.to_string()).await?;
        let remote = super::admin::find_org(state, &s.remote_org_id.to_string()).await?;
        let cursor = crate::sync::cursor(state, s.id).await?;
        out.push(json!({
            "Server": server_json(s),
            "Organisation": org.as_ref().map(crate::misp::organisation_short),
            "RemoteOrg": remote.as_ref().map(crate::misp::organisation_short),
            "Cairn": {"feed_position": cursor},
        }));
    }
    Ok(Json(serde_json::Value::Array(out)).into_response())
}

/// Applies a `servers/add|edit` body to `base`.
async fn server_from(state: &AppState, v: &serde_json::Value, mut s: cairn_domain::server::Server) -> Result<cairn_domain::server::Server, ApiError> {
    use crate::body::{flag, int, text};
    if let Some(x) = text(v.get("name")) {
        s.name = x.trim().to_string();
    }
    if let Some(x) = text(v.get("url")) {
        s.url = x.trim().trim_end_matches('/').to_string();
    }
    for (field, key) in [("org_id", &mut s.org_id), ("remote_org_id", &mut s.remote_org_id)] {
        let Some(given) = v.get(field).and_then(|x| text(Some(x))) else { continue };
        let org = super::admin::find_org(state, &given).await?.ok_or_else(|| ApiError::SaveFailed {
            name: "The server could not be saved.".into(),
            errors: json!({field: ["Invalid organisation."]}),
        })?;
        *key = org.id;
    }
    let flags = [
        ("push", &mut s.push),
        ("pull", &mut s.pull),
        ("push_sightings", &mut s.push_sightings),
        ("internal", &mut s.internal),
        ("unpublish_event", &mut s.unpublish_event),
        ("publish_without_email", &mut s.publish_without_email),
        ("self_signed", &mut s.self_signed),
        ("skip_proxy", &mut s.skip_proxy),
        ("caching_enabled", &mut s.caching_enabled),
        ("remove_missing_tags", &mut s.remove_missing_tags),
    ];
    for (name, slot) in flags {
        if let Some(b) = flag(v.get(name)) {
            *slot = b;
        }
    }
    if let Some(p) = int(v.get("priority")) {
        s.priority = p;
    }
    for (name, slot) in [("push_rules", &mut s.push_rules), ("pull_rules", &mut s.pull_rules)] {
        match v.get(name) {
            Some(serde_json::Value::String(t)) if t.trim().is_empty() => *slot = json!({}),
            Some(serde_json::Value::String(t)) => {
                *slot = serde_json::from_str(t).map_err(|_| ApiError::SaveFailed {
                    name: "The server could not be saved.".into(),
                    errors: json!({name: ["Rules must be JSON."]}),
                })?;
            }
            Some(o @ serde_json::Value::Object(_)) => *slot = o.clone(),
            _ => {}
        }
    }
    Ok(s)
}

/// `authkey` of a `servers/add|edit` body: MISP's 40 characters (or Cairn's keys, also 40).
fn authkey(v: &serde_json::Value) -> Result<Option<String>, ApiError> {
    let Some(k) = crate::body::text(v.get("authkey")).map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) else { return Ok(None) };
    if k.len() != 40 || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::SaveFailed { name: "The server could not be saved.".into(), errors: json!({"authkey": ["An authkey is 40 letters and digits."]}) });
    }
    Ok(Some(k))
}

/// `POST /servers/add` (site admin): `url`, `name`, `authkey` (the sync user's key on the peer) and
/// `remote_org_id` (the local record of the organisation that runs the peer) are required.
pub async fn add(state: &AppState, auth: &Authed, req: &crate::handlers::Request) -> Result<Response, ApiError> {
    use cairn_domain::instance::InstanceCommand;
    site_admin_only(auth)?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Server");
    let key = authkey(v)?.ok_or_else(|| ApiError::SaveFailed { name: "The server could not be saved.".into(), errors: json!({"authkey": ["Mandatory field not set."]}) })?;
    let id = crate::commands::allocate_ids(state, "server", 1).await?.first().copied().unwrap_or_default();
    let base = cairn_domain::server::Server { id, org_id: auth.org.id, push_rules: json!({}), pull_rules: json!({}), ..Default::default() };
    let mut server = server_from(state, v, base).await?;
    if server.name.is_empty() {
        server.name.clone_from(&server.url);
    }
    cairn_domain::server::validate(&server).map_err(|e| super::events::refusal(e, "save the server"))?;
    // The key first (outside the log): a refused command leaves an unused row, never a server without key.
    crate::sync::store_key(state, id, &key).await?;
    super::support::instance_command(state, auth, "servers.add", "save the server", InstanceCommand::PutServer { server: server.clone() }).await?;
    Ok(Json(json!({"Server": server_json(&server)})).into_response())
}

/// `POST /servers/edit/{id}` (site admin).
pub async fn edit(state: &AppState, auth: &Authed, req: &crate::handlers::Request) -> Result<Response, ApiError> {
    use cairn_domain::instance::InstanceCommand;
    site_admin_only(auth)?;
    let current = server_by_arg(state, req).await?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Server");
    let key = authkey(v)?;
    let server = server_from(state, v, current).await?;
    cairn_domain::server::validate(&server).map_err(|e| super::events::refusal(e, "save the server"))?;
    super::support::instance_command(state, auth, "servers.edit", "save the server", InstanceCommand::PutServer { server: server.clone() }).await?;
    if let Some(k) = key {
        crate::sync::store_key(state, server.id, &k).await?;
    }
    Ok(Json(json!({"Server": server_json(&server)})).into_response())
}

/// `POST /servers/delete/{id}` (site admin).
pub async fn delete(state: &AppState, auth: &Authed, req: &crate::handlers::Request) -> Result<Response, ApiError> {
    use cairn_domain::instance::InstanceCommand;
    site_admin_only(auth)?;
    let server = server_by_arg(state, req).await?;
    super::support::instance_command(state, auth, "servers.delete", "delete the server", InstanceCommand::DeleteServer { id: server.id }).await?;
    Ok(super::support::saved("Server deleted", &req.url, Some(server.id.to_string())))
}

/// `POST /servers/pull/{id}[/{technique}]` (site admin): reads the server's feed up to its head now.
pub async fn pull(state: &AppState, auth: &Authed, req: &crate::handlers::Request) -> Result<Response, ApiError> {
    site_admin_only(auth)?;
    let server = server_by_arg(state, req).await?;
    if !server.pull {
        return Err(ApiError::SaveFailed { name: "Pull failed.".into(), errors: json!({"pull": ["Pulling is not enabled for this server."]}) });
    }
    let report = crate::sync::pull(state, &server).await?;
    Ok(Json(crate::sync::report_json(&server, &report)).into_response())
}
