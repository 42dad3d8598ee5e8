//! `/users/*` and `/admin/users/*`.

use crate::auth::Authed;
use crate::dispatch::MispPath;
use crate::error::ApiError;
use crate::misp;
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

async fn default_role_id(state: &AppState) -> Result<i64, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_one("SELECT default_role_id FROM rm.instance WHERE id = 1", &[]).await?.get(0))
}

/// `GET /users/view/me` (or the caller's own id): the caller with Role, UserSetting and Organisation.
pub async fn view(state: &AppState, auth: &Authed, path: &MispPath) -> Result<Response, ApiError> {
    let target = path.args.first().map(String::as_str).unwrap_or("me");
    if target != "me" && target != auth.user.id.to_string() {
        // Other users arrive with the user-management issue; until then only the caller is visible.
        return Err(ApiError::NotFound("Invalid user".into()));
    }
    let default_role = default_role_id(state).await?;
    Ok(Json(json!({
        "User": misp::user(&auth.user),
        "Role": misp::role(&auth.role, default_role),
        "UserSetting": [],
        "Organisation": misp::organisation(&auth.org),
    }))
    .into_response())
}
