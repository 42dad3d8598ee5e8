//! `/eventDelegations/*`: an organisation hands an org-only Event over to another organisation
//! (misp_features.md §4). The Event keeps its stream, id and uuid: accepting transfers ownership in
//! place (MISP deletes and re-creates it), and applies the requested distribution (MISP ignores it).

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::collab::{self, DELEGATION_COLUMNS};
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::EventCommand;
use cairn_domain::event::collaboration::{INVALID_DELEGATION, NOT_AUTHORISED};
use serde_json::{Value, json};

fn invalid_delegation() -> ApiError {
    ApiError::MethodNotAllowed(INVALID_DELEGATION.into())
}

/// MISP's delegation controller answers refusals with 405, except a missing `perm_delegate` (403).
fn delegation_refusal(e: ApiError) -> ApiError {
    match e {
        ApiError::Forbidden(m) if m == NOT_AUTHORISED => ApiError::MethodNotAllowed(m),
        ApiError::NotFound(m) if m == INVALID_DELEGATION => ApiError::MethodNotAllowed(m),
        ApiError::SaveFailed { name, errors } => ApiError::MethodNotAllowed(
            errors.as_object().and_then(|o| o.values().next()).and_then(|v| v.get(0)).and_then(Value::as_str).map_or(name, str::to_string),
        ),
        other => other,
    }
}

/// A delegation the caller may see (the Event visible, and they are on one side of it, or admin).
async fn find(state: &AppState, auth: &Authed, id: &str) -> Result<(Value, uuid::Uuid, i64), ApiError> {
    let id: i64 = id.trim().parse().map_err(|_| invalid_delegation())?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(&format!("SELECT {DELEGATION_COLUMNS} FROM rm.event_delegations d WHERE d.id = $1 AND d.status = 'pending'"), &[&id])
        .await?
        .ok_or_else(invalid_delegation)?;
    let (org, requester): (i64, i64) = (row.get(2), row.get(3));
    if !(auth.is_site_admin() || auth.org.id == org || auth.org.id == requester) {
        return Err(invalid_delegation());
    }
    resolve(state, auth, &row.get::<_, i64>(1).to_string()).await.map_err(|_| invalid_delegation())?;
    Ok((collab::delegation_json(&row), row.get(8), id))
}

/// `POST /eventDelegations/delegateEvent/{event}` with `{"org_id" (id or uuid), "distribution",
/// "sharing_group_id", "message"}`.
pub async fn delegate(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (event_id, uuid) = resolve(state, auth, key).await?;
    if !auth.role.perm_delegate && !auth.is_site_admin() {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let enabled = super::servers::setting(state, "MISP.delegation").await?.and_then(|v| crate::body::flag(Some(&v))).unwrap_or(true);
    if !enabled {
        return Err(ApiError::MethodNotAllowed("Event delegation is not enabled on this instance.".into()));
    }
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "EventDelegation");
    let org_key = crate::body::text(body.get("org_id")).ok_or_else(|| ApiError::MethodNotAllowed("Invalid organisation.".into()))?;
    let org_id = super::admin::find_org(state, &org_key).await?.ok_or_else(|| ApiError::MethodNotAllowed("Invalid organisation.".into()))?.id;
    let distribution = crate::body::int(body.get("distribution")).unwrap_or(-1);
    let distribution = i8::try_from(distribution).ok().filter(|d| (-1..=4).contains(d)).ok_or_else(|| ApiError::SaveFailed {
        name: "Could not delegate the Event".into(),
        errors: json!({"distribution": ["Invalid distribution."]}),
    })?;
    let sharing_group_id = crate::body::int(body.get("sharing_group_id")).unwrap_or(0);
    let message = crate::body::text(body.get("message")).unwrap_or_default();
    let id = crate::commands::allocate_ids(state, "delegation", 1).await?.first().copied().unwrap_or_default();
    let command = EventCommand::RequestDelegation { id, org_id, distribution, sharing_group_id, message };
    run(state, auth, uuid, "event_delegations.delegate", "delegate the Event", command).await.map_err(delegation_refusal)?;
    let _ = event_id;
    let (v, _, _) = find(state, auth, &id.to_string()).await?;
    Ok(json(json!({"EventDelegation": v})))
}

/// `POST /eventDelegations/acceptDelegation/{id}`: the target organisation takes the Event over.
pub async fn accept(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_delegation)?;
    let (_, uuid, id) = find(state, auth, key).await?;
    run(state, auth, uuid, "event_delegations.accept", "accept the delegation", EventCommand::AcceptDelegation { id })
        .await
        .map_err(delegation_refusal)?;
    Ok(support::saved("Event ownership transferred.", &req.url, Some(id.to_string())))
}

/// `POST /eventDelegations/deleteDelegation/{id}`: either side withdraws the request.
pub async fn discard(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_delegation)?;
    let (_, uuid, id) = find(state, auth, key).await?;
    run(state, auth, uuid, "event_delegations.discard", "delete the delegation", EventCommand::DiscardDelegation { id })
        .await
        .map_err(delegation_refusal)?;
    Ok(support::saved("Delegation request deleted.", &req.url, Some(id.to_string())))
}

/// `GET /eventDelegations/view/{id}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_delegation)?;
    let (v, _, _) = find(state, auth, key).await?;
    Ok(json(json!({"EventDelegation": v})))
}

/// `GET /eventDelegations[/index][/context:pending|issued]`: pending requests to the caller's
/// organisation (`issued`: made by it), with the Event, the target and the requesting organisation.
pub async fn index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let issued = req.path.named.get("context").is_some_and(|c| c == "issued");
    let column = if issued { "d.requester_org_id" } else { "d.org_id" };
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!("SELECT {DELEGATION_COLUMNS} FROM rm.event_delegations d WHERE d.status = 'pending' AND {column} = $1 ORDER BY d.id"),
            &[&auth.org.id],
        )
        .await?;
    let mut org_ids: Vec<i64> = rows.iter().flat_map(|r| [r.get::<_, i64>(2), r.get::<_, i64>(3)]).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = collab::orgs(&client, &org_ids).await?;
    let mut list = Vec::new();
    for r in &rows {
        let Some(event) = crate::render::find_event(&client, &r.get::<_, i64>(1).to_string()).await? else { continue };
        let mut v = collab::delegation_json(r);
        v["Event"] = crate::render::event_summary(&event);
        v["Org"] = orgs.get(&r.get::<_, i64>(2)).cloned().unwrap_or(Value::Null);
        v["RequesterOrg"] = orgs.get(&r.get::<_, i64>(3)).cloned().unwrap_or(Value::Null);
        list.push(json!({"EventDelegation": v}));
    }
    Ok(json(Value::Array(list)))
}
