//! `admin/regexp/*`: MISP's "Import Regexp" rules (site admins and perm_regexp_access).

use super::support::{json, saved};
use super::Request;
use crate::auth::Authed;
use crate::body::text;
use crate::commands::{self};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::instance::{InstanceCommand, Regexp};
use serde_json::{Value, json};

fn may(auth: &Authed) -> Result<(), ApiError> {
    if auth.is_site_admin() || auth.role.perm_regexp_access { Ok(()) } else { Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into())) }
}

fn regexp_json(r: &Regexp) -> Value {
    json!({"Regexp": {"id": r.id.to_string(), "regexp": r.regexp, "replacement": r.replacement, "type": r.attr_type}})
}

async fn put(state: &AppState, auth: &Authed, r: Regexp, name: &'static str) -> Result<(), ApiError> {
    let valid = crate::regexps::compile(&r).is_some();
    super::support::instance_command(state, auth, name, "save Regexp", InstanceCommand::PutRegexp { regexp: r, valid }).await.map(drop)
}

async fn find(state: &AppState, id: i64) -> Result<Regexp, ApiError> {
    let client = state.pool.get().await?;
    let r = client
        .query_opt("SELECT id, regexp, replacement, type FROM rm.regexps WHERE id = $1", &[&id])
        .await?
        .ok_or_else(|| ApiError::NotFound("Invalid regexp".into()))?;
    Ok(Regexp { id: r.get(0), regexp: r.get(1), replacement: r.get(2), attr_type: r.get(3) })
}

/// `POST /admin/regexp/add` with `{"regexp", "replacement", "type"}` (type defaults to `ALL`).
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may(auth)?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Regexp");
    let id = commands::allocate_ids(state, "regexp", 1).await?.first().copied().unwrap_or_default();
    let r = Regexp {
        id,
        regexp: text(v.get("regexp")).unwrap_or_default(),
        replacement: text(v.get("replacement")).unwrap_or_default(),
        attr_type: text(v.get("type")).filter(|t| !t.is_empty()).unwrap_or_else(|| "ALL".into()),
    };
    put(state, auth, r.clone(), "regexp.add").await?;
    Ok(json(regexp_json(&r)))
}

/// `POST /admin/regexp/edit/{id}`.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may(auth)?;
    let id: i64 = req.path.args.first().and_then(|s| s.parse().ok()).ok_or_else(|| ApiError::NotFound("Invalid regexp".into()))?;
    let mut r = find(state, id).await?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Regexp");
    if let Some(x) = text(v.get("regexp")) {
        r.regexp = x;
    }
    if let Some(x) = text(v.get("replacement")) {
        r.replacement = x;
    }
    if let Some(x) = text(v.get("type")).filter(|t| !t.is_empty()) {
        r.attr_type = x;
    }
    put(state, auth, r.clone(), "regexp.edit").await?;
    Ok(json(regexp_json(&r)))
}

/// `POST /admin/regexp/delete/{id}`.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may(auth)?;
    let id: i64 = req.path.args.first().and_then(|s| s.parse().ok()).ok_or_else(|| ApiError::NotFound("Invalid regexp".into()))?;
    find(state, id).await?;
    super::support::instance_command(state, auth, "regexp.delete", "delete Regexp", InstanceCommand::DeleteRegexp { id }).await?;
    Ok(saved("Regexp deleted.", &req.url, Some(id.to_string())))
}

/// `GET /admin/regexp/index`.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    may(auth)?;
    let client = state.pool.get().await?;
    let rows = client.query("SELECT id, regexp, replacement, type FROM rm.regexps ORDER BY id", &[]).await?;
    Ok(json(Value::Array(
        rows.iter().map(|r| regexp_json(&Regexp { id: r.get(0), regexp: r.get(1), replacement: r.get(2), attr_type: r.get(3) })).collect(),
    )))
}
