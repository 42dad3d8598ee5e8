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
        let client = state.pool.get().await?;
        let row = client.query_one("SELECT instance_uuid FROM rm.instance WHERE id = 1", &[]).await?;
        row.get::<_, Option<uuid::Uuid>>(0).map(|u| u.to_string()).unwrap_or_else(|| "-".into())
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
