//! `/correlation_exclusions/*` and `/correlations/overCorrelations` (site admin).

use super::support::{json, saved};
use super::Request;
use crate::auth::Authed;
use crate::body::text;
use crate::commands::{self};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::instance::{self, CorrelationExclusion, InstanceCommand};
use cairn_domain::stream;
use serde_json::{Value, json};

fn admin(auth: &Authed) -> Result<(), ApiError> {
    if auth.is_site_admin() { Ok(()) } else { Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into())) }
}

fn exclusion_json(e: &CorrelationExclusion) -> Value {
    json!({"CorrelationExclusion": {"id": e.id.to_string(), "value": e.value, "from_json": false, "comment": e.comment}})
}

async fn run(state: &AppState, auth: &Authed, name: &'static str, command: InstanceCommand) -> Result<(), ApiError> {
    super::support::instance_command(state, auth, name, "save CorrelationExclusion", command).await.map(drop)
}

/// Exclusions as recorded in the instance stream (the source of truth; the correlator applies them).
async fn all(state: &AppState) -> Result<Vec<CorrelationExclusion>, ApiError> {
    let (s, _) = commands::load(state, stream::instance_stream(), instance::evolve).await?;
    Ok(s.exclusions.into_values().collect())
}

/// `POST /correlation_exclusions/add` with `{"value", "comment"}`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    admin(auth)?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "CorrelationExclusion");
    let id = commands::allocate_ids(state, "correlation_exclusion", 1).await?.first().copied().unwrap_or_default();
    let exclusion = CorrelationExclusion { id, value: text(v.get("value")).unwrap_or_default(), comment: text(v.get("comment")).unwrap_or_default() };
    run(state, auth, "correlation_exclusions.add", InstanceCommand::AddCorrelationExclusion { exclusion }).await?;
    let saved = all(state).await?.into_iter().find(|e| e.id == id).ok_or_else(|| ApiError::Internal("exclusion not recorded".into()))?;
    Ok(json(exclusion_json(&saved)))
}

/// `GET /correlation_exclusions/index`.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    admin(auth)?;
    Ok(json(Value::Array(all(state).await?.iter().map(exclusion_json).collect())))
}

/// `GET /correlation_exclusions/view/{id}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    admin(auth)?;
    let id: i64 = req.path.args.first().and_then(|s| s.parse().ok()).ok_or_else(|| ApiError::NotFound("Invalid correlation exclusion.".into()))?;
    let e = all(state).await?.into_iter().find(|e| e.id == id).ok_or_else(|| ApiError::NotFound("Invalid correlation exclusion.".into()))?;
    Ok(json(exclusion_json(&e)))
}

/// `POST /correlation_exclusions/delete/{id}`: the value correlates again at once (exclusions apply when
/// correlations are read).
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    admin(auth)?;
    let id: i64 = req.path.args.first().and_then(|s| s.parse().ok()).ok_or_else(|| ApiError::NotFound("Invalid correlation exclusion.".into()))?;
    run(state, auth, "correlation_exclusions.delete", InstanceCommand::DeleteCorrelationExclusion { id }).await?;
    Ok(saved("Correlation exclusion deleted.", &req.url, Some(id.to_string())))
}

/// `POST /correlation_exclusions/clean`: nothing to purge — exclusions are applied when correlations are
/// read, so they are retroactive at once (MISP needs this call to remove existing rows).
pub fn clean(req: &Request) -> Result<Response, ApiError> {
    Ok(saved("Correlations cleaned up.", &req.url, None))
}

/// `GET /correlations/overCorrelations`: keys held by more active attributes than the limit, with counts.
pub async fn over_correlations(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    admin(auth)?;
    let settings = super::support::correlation_settings(state).await?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT h.key, count(*) FROM corr.holders h JOIN corr.events e ON e.id = h.event_id \
             LEFT JOIN corr.objects o ON o.id = h.object_id \
             WHERE NOT h.deleted AND NOT h.disable_correlation AND NOT e.disable_correlation AND (h.object_id = 0 OR NOT o.deleted) \
             GROUP BY h.key HAVING count(*) > $1 ORDER BY count(*) DESC, h.key LIMIT 10000",
            &[&settings.limit],
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"OverCorrelatingValue": {"id": (i + 1).to_string(), "value": r.get::<_, String>(0), "occurrence": r.get::<_, i64>(1).to_string()}}))
        .collect();
    Ok(json(Value::Array(list)))
}
