//! `/sharing_groups/*` (and `/sharingGroups/*`): sharing groups, their organisations and servers.

use super::support::{self, json, saved};
use super::Request;
use crate::auth::Authed;
use crate::body::{flag, int, text};
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::sharing_group::{
    self, SharingGroup, SharingGroupCommand, SharingGroupOrg, SharingGroupPatch, SharingGroupServer, SharingGroupState,
};
use cairn_domain::stream;
use serde_json::{Value, json};
use uuid::Uuid;

fn invalid() -> ApiError {
    ApiError::NotFound("Invalid sharing group.".into())
}

/// (id, uuid) of a live sharing group by id or uuid.
pub(crate) async fn find(state: &AppState, key: &str) -> Result<Option<(i64, Uuid)>, ApiError> {
    let client = state.pool.get().await?;
    let key = key.trim();
    let row = if let Ok(u) = Uuid::parse_str(key) {
        client.query_opt("SELECT id, uuid FROM rm.sharing_groups WHERE uuid = $1 AND NOT deleted", &[&u]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        client.query_opt("SELECT id, uuid FROM rm.sharing_groups WHERE id = $1 AND NOT deleted", &[&id]).await?
    } else {
        client.query_opt("SELECT id, uuid FROM rm.sharing_groups WHERE lower(name) = lower($1) AND NOT deleted", &[&key]).await?
    };
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Whether the caller may see a sharing group: site admin, owner organisation, or member.
async fn may_see(state: &AppState, auth: &Authed, id: i64) -> Result<bool, ApiError> {
    Ok(auth.is_site_admin() || support::usable_sharing_groups(state, auth).await?.contains(&id))
}

/// A sharing group in MISP's shapes: `(SharingGroup, Organisation, SharingGroupOrg[], SharingGroupServer[])`.
pub async fn parts(state: &AppState, id: i64) -> Result<Option<(Value, Value, Vec<Value>, Vec<Value>)>, ApiError> {
    let client = state.pool.get().await?;
    let Some(g) = client
        .query_opt(
            "SELECT id, uuid, name, releasability, description, org_id, org_uuid, active, roaming, local, created, modified \
             FROM rm.sharing_groups WHERE id = $1 AND NOT deleted",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let owner: i64 = g.get(5);
    let datetime = |t: i64| crate::misp::datetime(t);
    let group = json!({
        "id": id.to_string(), "uuid": g.get::<_, Uuid>(1), "name": g.get::<_, String>(2), "releasability": g.get::<_, String>(3),
        "description": g.get::<_, String>(4), "organisation_uuid": g.get::<_, Uuid>(6), "org_id": owner.to_string(),
        "sync_user_id": "0", "active": g.get::<_, bool>(7), "roaming": g.get::<_, bool>(8), "local": g.get::<_, bool>(9),
        "created": datetime(g.get(10)), "modified": datetime(g.get(11)),
    });
    let org_rows = client.query("SELECT org_id, extend FROM rm.sharing_group_orgs WHERE sharing_group_id = $1 ORDER BY org_id", &[&id]).await?;
    let mut org_ids: Vec<i64> = org_rows.iter().map(|r| r.get(0)).collect();
    org_ids.push(owner);
    let orgs = crate::render::org_shorts(&client, &org_ids).await?;
    let sg_orgs: Vec<Value> = org_rows
        .iter()
        .map(|r| {
            let org_id: i64 = r.get(0);
            json!({"id": format!("{id}-{org_id}"), "sharing_group_id": id.to_string(), "org_id": org_id.to_string(),
                   "extend": r.get::<_, bool>(1), "Organisation": orgs.get(&org_id).cloned().unwrap_or(Value::Null)})
        })
        .collect();
    let servers: Vec<Value> = client
        .query("SELECT server_id, all_orgs FROM rm.sharing_group_servers WHERE sharing_group_id = $1 ORDER BY server_id", &[&id])
        .await?
        .iter()
        .map(|r| {
            let server_id: i64 = r.get(0);
            let server = if server_id == 0 {
                json!({"id": "0", "name": "Local instance", "url": state.settings.instance.base_url})
            } else {
                json!({"id": server_id.to_string()})
            };
            json!({"id": format!("{id}-{server_id}"), "sharing_group_id": id.to_string(), "server_id": server_id.to_string(),
                   "all_orgs": r.get::<_, bool>(1), "Server": server})
        })
        .collect();
    Ok(Some((group, orgs.get(&owner).cloned().unwrap_or(Value::Null), sg_orgs, servers)))
}

/// The nested form used inside Events (`Event.SharingGroup`).
pub async fn nested(state: &AppState, id: i64) -> Result<Option<Value>, ApiError> {
    Ok(parts(state, id).await?.map(|(mut g, org, orgs, servers)| {
        g["Organisation"] = org;
        g["SharingGroupOrg"] = Value::Array(orgs);
        g["SharingGroupServer"] = Value::Array(servers);
        g
    }))
}

async fn full(state: &AppState, id: i64) -> Result<Value, ApiError> {
    let (g, org, orgs, servers) = parts(state, id).await?.ok_or_else(invalid)?;
    Ok(json!({"SharingGroup": g, "Organisation": org, "SharingGroupOrg": orgs, "SharingGroupServer": servers}))
}

pub(crate) async fn run(state: &AppState, auth: &Authed, uuid: Uuid, name: &'static str, command: SharingGroupCommand) -> Result<(), ApiError> {
    let meta = CommandMeta::new(name, auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    commands::execute(state, &meta, uuid, stream::SHARING_GROUP, sharing_group::evolve, |s: &SharingGroupState| {
        Ok((sharing_group::decide(s, &actor, &role, command.clone()).map_err(|e| super::events::refusal(e, "save SharingGroup"))?, ()))
    })
    .await?;
    Ok(())
}

async fn org_member(state: &AppState, key: &Value) -> Result<Option<SharingGroupOrg>, ApiError> {
    let Some(k) = text(Some(key)) else { return Ok(None) };
    Ok(super::admin::find_org(state, &k).await?.map(|o| SharingGroupOrg { org_id: o.id, org_uuid: o.uuid, extend: false }))
}

/// `name`, or (taken by another group) `name` with a part of `uuid` appended, as MISP suffixes a
/// captured group's name.
///
/// # Errors
/// Database errors.
pub(crate) async fn free_name(state: &AppState, name: &str, uuid: Uuid) -> Result<String, ApiError> {
    if find(state, name).await?.is_none() {
        return Ok(name.to_string());
    }
    Ok(format!("{name}_{}", &uuid.simple().to_string()[..8]))
}

/// `POST /sharing_groups/add`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_sharing_group || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "SharingGroup");
    let uuid = crate::input::uuid_or_new(v)?;
    let now = chrono::Utc::now().timestamp();
    let id = commands::allocate_ids(state, "sharing_group", 1).await?.first().copied().unwrap_or_default();
    let group = SharingGroup {
        id,
        uuid,
        name: text(v.get("name")).unwrap_or_default(),
        releasability: text(v.get("releasability")).unwrap_or_default(),
        description: text(v.get("description")).unwrap_or_default(),
        org_id: auth.org.id,
        org_uuid: auth.org.uuid,
        active: flag(v.get("active")).unwrap_or(true),
        roaming: flag(v.get("roaming")).unwrap_or(false),
        local: true,
        created: now,
        modified: now,
    };
    if find(state, &group.name).await?.is_some() {
        return Err(ApiError::SaveFailed { name: "The sharing group could not be added.".into(), errors: json!({"name": ["A sharing group with this name already exists."]}) });
    }
    let mut orgs = Vec::new();
    for o in body.get("SharingGroupOrg").or_else(|| v.get("SharingGroupOrg")).and_then(Value::as_array).into_iter().flatten() {
        if let Some(mut m) = org_member(state, o.get("org_id").or_else(|| o.get("org_uuid")).unwrap_or(&Value::Null)).await? {
            m.extend = flag(o.get("extend")).unwrap_or(false);
            orgs.push(m);
        }
    }
    let servers: Vec<SharingGroupServer> = body
        .get("SharingGroupServer")
        .or_else(|| v.get("SharingGroupServer"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| int(s.get("server_id")).map(|server_id| SharingGroupServer { server_id, all_orgs: flag(s.get("all_orgs")).unwrap_or(false) }))
        .collect();
    run(state, auth, uuid, "sharing_groups.add", SharingGroupCommand::Create { group, orgs, servers }).await?;
    Ok(json(full(state, id).await?))
}

/// `POST /sharing_groups/edit/{id|uuid}`.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid) = find(state, req.path.args.first().ok_or_else(invalid)?).await?.ok_or_else(invalid)?;
    if !may_see(state, auth, id).await? {
        return Err(invalid());
    }
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "SharingGroup");
    let patch = SharingGroupPatch {
        name: text(v.get("name")),
        releasability: text(v.get("releasability")),
        description: text(v.get("description")),
        active: flag(v.get("active")),
        roaming: flag(v.get("roaming")),
    };
    run(state, auth, uuid, "sharing_groups.edit", SharingGroupCommand::Update { patch, now: chrono::Utc::now().timestamp() }).await?;
    Ok(json(full(state, id).await?))
}

/// `POST /sharing_groups/delete/{id}`: refused while any Event, Object or Attribute uses the group.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid) = find(state, req.path.args.first().ok_or_else(invalid)?).await?.ok_or_else(invalid)?;
    if !may_see(state, auth, id).await? {
        return Err(invalid());
    }
    let client = state.pool.get().await?;
    let in_use: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM rm.events WHERE distribution = 4 AND sharing_group_id = $1) \
             + (SELECT count(*) FROM rm.attributes WHERE distribution = 4 AND sharing_group_id = $1) \
             + (SELECT count(*) FROM rm.objects WHERE distribution = 4 AND sharing_group_id = $1)",
            &[&id],
        )
        .await?
        .get(0);
    drop(client);
    run(state, auth, uuid, "sharing_groups.delete", SharingGroupCommand::Delete { in_use }).await?;
    Ok(saved("SharingGroup deleted", &req.url, Some(id.to_string())))
}

/// `GET|HEAD /sharing_groups/view/{id|uuid}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, _) = find(state, req.path.args.first().ok_or_else(invalid)?).await?.ok_or_else(invalid)?;
    if !may_see(state, auth, id).await? {
        return Err(invalid());
    }
    if req.method == axum::http::Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(json(full(state, id).await?))
}

/// `GET /sharing_groups/index`: `{"response": [...]}` of the groups the caller may see.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let ids: Vec<i64> = client.query("SELECT id FROM rm.sharing_groups WHERE NOT deleted ORDER BY id", &[]).await?.iter().map(|r| r.get(0)).collect();
    drop(client);
    let usable = support::usable_sharing_groups(state, auth).await?;
    let mut list = Vec::new();
    for id in ids.into_iter().filter(|id| auth.is_site_admin() || usable.contains(id)) {
        let mut v = full(state, id).await?;
        v["editable"] = json!(auth.is_site_admin() || (auth.role.perm_sharing_group && v["SharingGroup"]["org_id"] == json!(auth.org.id.to_string())));
        list.push(v);
    }
    Ok(json(json!({ "response": list })))
}

/// `POST /sharing_groups/addOrg|removeOrg` with `{"sg_id", "org_id", "extend"}` or `/{sg}/{org}`.
pub async fn change_org(state: &AppState, auth: &Authed, req: &Request, add: bool) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let sg_key = req.path.args.first().cloned().or_else(|| text(body.get("sg_id"))).ok_or_else(invalid)?;
    let org_key = req.path.args.get(1).cloned().or_else(|| text(body.get("org_id"))).ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    let (id, uuid) = find(state, &sg_key).await?.ok_or_else(invalid)?;
    if !may_see(state, auth, id).await? {
        return Err(invalid());
    }
    let org = super::admin::find_org(state, &org_key).await?.ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    if add {
        let extend = flag(body.get("extend")).unwrap_or(false) || req.path.named.get("extend").is_some_and(|v| v == "1");
        let member = SharingGroupOrg { org_id: org.id, org_uuid: org.uuid, extend };
        run(state, auth, uuid, "sharing_groups.add_org", SharingGroupCommand::AddOrg { org: member }).await?;
        Ok(saved("Organisation added to the sharing group.", &req.url, Some(id.to_string())))
    } else {
        run(state, auth, uuid, "sharing_groups.remove_org", SharingGroupCommand::RemoveOrg { org_id: org.id }).await?;
        Ok(saved("Organisation removed from the sharing group.", &req.url, Some(id.to_string())))
    }
}

/// `POST /sharing_groups/addServer|removeServer` with `{"sg_id", "server_id", "all_orgs"}`.
pub async fn change_server(state: &AppState, auth: &Authed, req: &Request, add: bool) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let sg_key = req.path.args.first().cloned().or_else(|| text(body.get("sg_id"))).ok_or_else(invalid)?;
    let server_id = req.path.args.get(1).and_then(|s| s.parse().ok()).or_else(|| int(body.get("server_id"))).unwrap_or(0);
    let (id, uuid) = find(state, &sg_key).await?.ok_or_else(invalid)?;
    if !may_see(state, auth, id).await? {
        return Err(invalid());
    }
    if add {
        let all_orgs = flag(body.get("all_orgs")).unwrap_or(false);
        run(state, auth, uuid, "sharing_groups.add_server", SharingGroupCommand::AddServer { server: SharingGroupServer { server_id, all_orgs } }).await?;
        Ok(saved("Server added to the sharing group.", &req.url, Some(id.to_string())))
    } else {
        run(state, auth, uuid, "sharing_groups.remove_server", SharingGroupCommand::RemoveServer { server_id }).await?;
        Ok(saved("Server removed from the sharing group.", &req.url, Some(id.to_string())))
    }
}

/// Adds MISP's `SharingGroup` member to an Event JSON (and its attributes and objects) where the
/// distribution is 4.
///
/// # Errors
/// Database errors.
pub async fn attach(state: &AppState, event: &mut Value) -> Result<(), ApiError> {
    let mut cache: std::collections::HashMap<i64, Option<Value>> = std::collections::HashMap::new();
    async fn lookup(state: &AppState, cache: &mut std::collections::HashMap<i64, Option<Value>>, v: &Value) -> Result<Option<Value>, ApiError> {
        if v.get("distribution").and_then(Value::as_str) != Some("4") {
            return Ok(None);
        }
        let Some(id) = v.get("sharing_group_id").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) else { return Ok(None) };
        if !cache.contains_key(&id) {
            let value = nested(state, id).await?;
            cache.insert(id, value);
        }
        Ok(cache.get(&id).cloned().flatten())
    }
    let Some(e) = event.get_mut("Event") else { return Ok(()) };
    if let Some(sg) = lookup(state, &mut cache, e).await? {
        e["SharingGroup"] = sg;
    }
    for key in ["Attribute", "Object"] {
        if let Some(items) = e.get_mut(key).and_then(Value::as_array_mut) {
            for item in items {
                if let Some(sg) = lookup(state, &mut cache, item).await? {
                    item["SharingGroup"] = sg;
                }
                if let Some(attributes) = item.get_mut("Attribute").and_then(Value::as_array_mut) {
                    for a in attributes {
                        if let Some(sg) = lookup(state, &mut cache, a).await? {
                            a["SharingGroup"] = sg;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
