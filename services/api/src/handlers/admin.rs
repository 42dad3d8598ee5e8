//! Organisations, users, roles and API keys (`admin/organisations/*`, `admin/users/*`, `roles/*`,
//! `auth_keys/*`): what PyMISP's live suite needs in its setUpClass and what an operator expects.

use super::support::{json, saved};
use super::Request;
use crate::auth::Authed;
use crate::body::{flag, int, text};
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::misp;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::instance::InstanceCommand;
use cairn_domain::organisation::{self, Organisation, OrganisationCommand, OrganisationPatch, OrganisationState};
use cairn_domain::role::Role;
use cairn_domain::stream;
use cairn_domain::user::{self, User, UserCommand, UserPatch, UserState};
use serde_json::{Value, json};
use uuid::Uuid;

fn forbidden() -> ApiError {
    ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into())
}

fn refusal(e: cairn_domain::DomainError, action: &str) -> ApiError {
    super::events::refusal(e, action)
}

// ---------- organisations ----------

/// An organisation by id, uuid or name (deleted ones excluded).
pub async fn find_org(state: &AppState, key: &str) -> Result<Option<Organisation>, ApiError> {
    let client = state.pool.get().await?;
    let key = key.trim();
    let row = if let Ok(u) = Uuid::parse_str(key) {
        client.query_opt("SELECT doc FROM rm.organisations WHERE uuid = $1 AND NOT deleted", &[&u]).await?
    } else if let Ok(id) = key.parse::<i64>() {
        client.query_opt("SELECT doc FROM rm.organisations WHERE id = $1 AND NOT deleted", &[&id]).await?
    } else {
        client.query_opt("SELECT doc FROM rm.organisations WHERE lower(name) = lower($1) AND NOT deleted ORDER BY id LIMIT 1", &[&key]).await?
    };
    row.map(|r| serde_json::from_value(r.get(0)).map_err(ApiError::internal)).transpose()
}

fn org_patch(v: &Value) -> OrganisationPatch {
    OrganisationPatch {
        name: text(v.get("name")),
        description: text(v.get("description")),
        org_type: text(v.get("type")),
        nationality: text(v.get("nationality")),
        sector: text(v.get("sector")),
        contacts: text(v.get("contacts")),
        local: flag(v.get("local")),
        restricted_to_domain: v.get("restricted_to_domain").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()),
        landingpage: text(v.get("landingpage")),
    }
}

/// `POST /admin/organisations/add`.
pub async fn org_add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Organisation");
    let name = text(v.get("name")).unwrap_or_default();
    if !name.trim().is_empty() && find_org(state, &name).await?.is_some() {
        return Err(ApiError::SaveFailed {
            name: "The organisation could not be added.".into(),
            errors: json!({"name": ["An organisation with this name already exists."]}),
        });
    }
    let uuid = crate::input::uuid_or_new(v)?;
    let org = create_org_with(state, auth, uuid, name.trim(), org_patch(v)).await?;
    Ok(json(json!({ "Organisation": misp::organisation(&org) })))
}

/// Records an organisation known from elsewhere (a peer's, named in what sync brings): created on
/// the instance's behalf — MISP's sync users create the organisations they name — and recorded as
/// `auth`'s.
///
/// # Errors
/// Domain refusals and store errors.
pub async fn create_org(state: &AppState, auth: &Authed, uuid: Uuid, name: &str, local: bool) -> Result<Organisation, ApiError> {
    let mut on_behalf = auth.clone();
    on_behalf.role = cairn_domain::role::default_role(1).ok_or_else(|| ApiError::Internal("admin role missing".into()))?;
    create_org_with(state, &on_behalf, uuid, name, OrganisationPatch { local: Some(local), ..OrganisationPatch::default() }).await
}

async fn create_org_with(state: &AppState, auth: &Authed, uuid: Uuid, name: &str, p: OrganisationPatch) -> Result<Organisation, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let id = commands::allocate_ids(state, "organisation", 1).await?.first().copied().unwrap_or_default();
    let org = Organisation {
        id,
        uuid,
        name: name.to_string(),
        description: p.description.unwrap_or_default(),
        org_type: p.org_type.unwrap_or_default(),
        nationality: p.nationality.unwrap_or_default(),
        sector: p.sector.unwrap_or_default(),
        contacts: p.contacts.unwrap_or_default(),
        local: p.local.unwrap_or(true),
        restricted_to_domain: p.restricted_to_domain.unwrap_or_default(),
        landingpage: p.landingpage.unwrap_or_default(),
        created_by: auth.user.id,
        date_created: now,
        date_modified: now,
    };
    let meta = CommandMeta::new("organisations.add", auth.actor());
    let role = auth.role.clone();
    commands::execute(state, &meta, uuid, stream::ORGANISATION, organisation::evolve, |s: &OrganisationState| {
        Ok((organisation::decide(s, &role, OrganisationCommand::Create { organisation: org.clone() }).map_err(|e| refusal(e, "add Organisation"))?, ()))
    })
    .await?;
    Ok(org)
}

/// `POST /admin/organisations/edit/{id|uuid}`.
pub async fn org_edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    let current = find_org(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    let body = crate::body::parse(&req.body)?;
    let patch = org_patch(crate::body::unwrap(&body, "Organisation"));
    let meta = CommandMeta::new("organisations.edit", auth.actor());
    let role = auth.role.clone();
    let now = chrono::Utc::now().timestamp();
    commands::execute(state, &meta, current.uuid, stream::ORGANISATION, organisation::evolve, |s: &OrganisationState| {
        Ok((organisation::decide(s, &role, OrganisationCommand::Update { patch: patch.clone(), now }).map_err(|e| refusal(e, "edit Organisation"))?, ()))
    })
    .await?;
    let updated = find_org(state, &current.id.to_string()).await?.ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    Ok(json(json!({ "Organisation": misp::organisation(&updated) })))
}

/// `POST /admin/organisations/delete/{id|uuid}`.
pub async fn org_delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    let current = find_org(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    if current.id == auth.org.id {
        return Err(ApiError::SaveFailed { name: "You cannot delete your own organisation.".into(), errors: json!("own organisation") });
    }
    let client = state.pool.get().await?;
    let users: i64 = client.query_one("SELECT count(*) FROM rm.users WHERE org_id = $1 AND NOT deleted", &[&current.id]).await?.get(0);
    if users > 0 {
        return Err(ApiError::SaveFailed {
            name: "Organisation could not be deleted: it still has users.".into(),
            errors: json!({"users": [format!("{users} user(s) belong to this organisation.")]}),
        });
    }
    let meta = CommandMeta::new("organisations.delete", auth.actor());
    let role = auth.role.clone();
    commands::execute(state, &meta, current.uuid, stream::ORGANISATION, organisation::evolve, |s: &OrganisationState| {
        Ok((organisation::decide(s, &role, OrganisationCommand::Delete).map_err(|e| refusal(e, "delete Organisation"))?, ()))
    })
    .await?;
    Ok(saved("Organisation deleted", &req.url, Some(current.id.to_string())))
}

/// `GET /organisations/index[/scope:local|all][/searchall:X]`.
pub async fn org_index(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let scope = req.path.named.get("scope").map(String::as_str).unwrap_or("local");
    let search = req.path.named.get("searchall").map(|s| format!("%{}%", s.to_lowercase()));
    let rows = client
        .query(
            "SELECT doc FROM rm.organisations WHERE NOT deleted AND ($1 = 'all' OR local) \
             AND ($2::text IS NULL OR lower(name) LIKE $2 OR lower(doc->>'description') LIKE $2 OR uuid::text LIKE $2) ORDER BY id",
            &[&scope, &search],
        )
        .await?;
    let mut list = Vec::new();
    for r in rows {
        let org: Organisation = serde_json::from_value(r.get(0)).map_err(ApiError::internal)?;
        list.push(json!({ "Organisation": misp::organisation(&org) }));
    }
    Ok(json(Value::Array(list)))
}

/// `GET /organisations/view/{id|uuid}`.
pub async fn org_view(state: &AppState, _auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    let org = find_org(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid organisation".into()))?;
    Ok(json(json!({ "Organisation": misp::organisation(&org) })))
}

// ---------- users ----------

async fn find_user(state: &AppState, key: &str) -> Result<Option<User>, ApiError> {
    let client = state.pool.get().await?;
    let row = match key.trim().parse::<i64>() {
        Ok(id) => client.query_opt("SELECT doc FROM rm.users WHERE id = $1 AND NOT deleted", &[&id]).await?,
        Err(_) => client.query_opt("SELECT doc FROM rm.users WHERE lower(email) = lower($1) AND NOT deleted", &[&key.trim()]).await?,
    };
    row.map(|r| serde_json::from_value(r.get(0)).map_err(ApiError::internal)).transpose()
}

/// A role by id: MISP's defaults or one added with `admin/roles/add`.
async fn role_by_id(state: &AppState, id: i64) -> Result<Option<cairn_domain::role::Role>, ApiError> {
    Ok(state.instance.get(&state.pool).await?.role(id))
}

async fn default_role_id(state: &AppState) -> Result<i64, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_one("SELECT default_role_id FROM rm.instance WHERE id = 1", &[]).await?.get(0))
}

async fn user_json(state: &AppState, u: &User) -> Result<Value, ApiError> {
    let org = find_org(state, &u.org_id.to_string()).await?;
    let role = role_by_id(state, u.role_id).await?;
    let default = default_role_id(state).await?;
    Ok(json!({
        "User": misp::user(u),
        "Role": role.map(|r| misp::role(&r, default)).unwrap_or(Value::Null),
        "Organisation": org.map(|o| misp::organisation(&o)).unwrap_or(Value::Null),
    }))
}

/// `POST /admin/users/add`: creates the user and an API key, returned once as `authkey`.
pub async fn user_add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.is_site_admin() || auth.role.perm_admin) {
        return Err(forbidden());
    }
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "User");
    let email = text(v.get("email")).unwrap_or_default().trim().to_string();
    user::validate_email(&email).map_err(|e| refusal(e, "add User"))?;
    if find_user(state, &email).await?.is_some() {
        return Err(ApiError::SaveFailed { name: "The user could not be saved.".into(), errors: json!({"email": ["An account with this email address already exists."]}) });
    }
    let org = match text(v.get("org_id")) {
        Some(k) if !k.is_empty() => find_org(state, &k).await?.ok_or_else(|| ApiError::SaveFailed {
            name: "The user could not be saved.".into(),
            errors: json!({"org_id": ["Invalid organisation."]}),
        })?,
        _ => auth.org.clone(),
    };
    let role_id = match int(v.get("role_id")) {
        Some(r) => r,
        None => default_role_id(state).await?,
    };
    if role_by_id(state, role_id).await?.is_none() {
        return Err(ApiError::SaveFailed { name: "The user could not be saved.".into(), errors: json!({"role_id": ["Invalid role."]}) });
    }
    let now = chrono::Utc::now().timestamp();
    let ids = commands::allocate_ids(state, "user_account", 1).await?;
    let key_ids = commands::allocate_ids(state, "auth_key", 1).await?;
    let u = User {
        id: ids.first().copied().unwrap_or_default(),
        uuid: Uuid::new_v4(),
        org_id: org.id,
        org_uuid: org.uuid,
        email,
        role_id,
        autoalert: flag(v.get("autoalert")).unwrap_or(false),
        contactalert: flag(v.get("contactalert")).unwrap_or(false),
        disabled: flag(v.get("disabled")).unwrap_or(false),
        expiration: None,
        nids_sid: int(v.get("nids_sid")).unwrap_or(4_000_000),
        gpgkey: text(v.get("gpgkey")).unwrap_or_default(),
        certif_public: text(v.get("certif_public")).unwrap_or_default(),
        termsaccepted: flag(v.get("termsaccepted")).unwrap_or(false),
        change_pw: flag(v.get("change_pw")).unwrap_or(false),
        invited_by: auth.user.id,
        date_created: now,
        date_modified: now,
    };
    let key = crate::keys::generate();
    let record = crate::keys::record(key_ids.first().copied().unwrap_or_default(), Uuid::new_v4(), u.id, &key, now);
    let meta = CommandMeta::new("users.add", auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    commands::execute(state, &meta, u.uuid, stream::USER, user::evolve, |s: &UserState| {
        Ok((user::decide(s, &actor, &role, UserCommand::Create { user: u.clone(), key: record.clone() }).map_err(|e| refusal(e, "add User"))?, ()))
    })
    .await?;
    let mut out = user_json(state, &u).await?;
    out["User"]["authkey"] = json!(key);
    Ok(json(out))
}

/// `POST /admin/users/edit/{id}` and `/users/edit/{id}`.
pub async fn user_edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    let current = find_user(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "User");
    let org = match text(v.get("org_id")) {
        Some(k) if !k.is_empty() => Some(find_org(state, &k).await?.ok_or_else(|| ApiError::SaveFailed {
            name: "The user could not be saved.".into(),
            errors: json!({"org_id": ["Invalid organisation."]}),
        })?),
        _ => None,
    };
    let role_id = int(v.get("role_id"));
    let new_role = match role_id {
        Some(id) => role_by_id(state, id).await?,
        None => None,
    };
    if role_id.is_some() && new_role.is_none() {
        return Err(ApiError::SaveFailed { name: "The user could not be saved.".into(), errors: json!({"role_id": ["Invalid role."]}) });
    }
    let patch = UserPatch {
        email: text(v.get("email")),
        org: org.map(|o| (o.id, o.uuid)),
        role_id,
        autoalert: flag(v.get("autoalert")),
        contactalert: flag(v.get("contactalert")),
        disabled: flag(v.get("disabled")),
        expiration: None,
        nids_sid: int(v.get("nids_sid")),
        gpgkey: text(v.get("gpgkey")),
        certif_public: text(v.get("certif_public")),
        termsaccepted: flag(v.get("termsaccepted")),
        change_pw: flag(v.get("change_pw")),
    };
    let meta = CommandMeta::new("users.edit", auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    let now = chrono::Utc::now().timestamp();
    commands::execute(state, &meta, current.uuid, stream::USER, user::evolve, |s: &UserState| {
        let cmd = UserCommand::Update { patch: patch.clone(), new_role: new_role.clone(), now };
        Ok((user::decide(s, &actor, &role, cmd).map_err(|e| refusal(e, "edit User"))?, ()))
    })
    .await?;
    let updated = find_user(state, &current.id.to_string()).await?.ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    Ok(json(user_json(state, &updated).await?))
}

/// `POST /admin/users/delete/{id}`.
pub async fn user_delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    let current = find_user(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    let meta = CommandMeta::new("users.delete", auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    commands::execute(state, &meta, current.uuid, stream::USER, user::evolve, |s: &UserState| {
        Ok((user::decide(s, &actor, &role, UserCommand::Delete).map_err(|e| refusal(e, "delete User"))?, ()))
    })
    .await?;
    Ok(saved("User deleted.", &req.url, Some(current.id.to_string())))
}

/// `GET /admin/users/index[/value:X][/searchorg:N]` (org admins see their organisation's users).
pub async fn user_index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.is_site_admin() || auth.role.perm_admin) {
        return Err(forbidden());
    }
    let client = state.pool.get().await?;
    let org_filter: Option<i64> = if auth.is_site_admin() { req.path.named.get("searchorg").and_then(|s| s.parse().ok()) } else { Some(auth.org.id) };
    let value = req.path.named.get("value").map(|s| format!("%{}%", s.to_lowercase()));
    let rows = client
        .query(
            "SELECT doc FROM rm.users WHERE NOT deleted AND ($1::bigint IS NULL OR org_id = $1) \
             AND ($2::text IS NULL OR lower(email) LIKE $2) ORDER BY id",
            &[&org_filter, &value],
        )
        .await?;
    let mut list = Vec::new();
    for r in rows {
        let u: User = serde_json::from_value(r.get(0)).map_err(ApiError::internal)?;
        list.push(user_json(state, &u).await?);
    }
    Ok(json(Value::Array(list)))
}

/// `GET /users/view/{me|id}` and `/admin/users/view/{id}`.
pub async fn user_view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let target = req.path.args.first().map(String::as_str).unwrap_or("me");
    if target == "me" || target == auth.user.id.to_string() {
        let default = default_role_id(state).await?;
        return Ok(json(json!({
            "User": misp::user(&auth.user),
            "Role": misp::role(&auth.role, default),
            "UserSetting": [],
            "Organisation": misp::organisation(&auth.org),
        })));
    }
    let u = find_user(state, target).await?.ok_or_else(|| ApiError::NotFound("Invalid user".into()))?;
    if !(auth.is_site_admin() || (auth.role.perm_admin && u.org_id == auth.org.id)) {
        return Err(ApiError::NotFound("Invalid user".into()));
    }
    Ok(json(user_json(state, &u).await?))
}

/// `POST /auth_keys/add/{user_id}`: a new key for a user, returned once as `authkey_raw`.
pub async fn auth_key_add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if auth.read_only_key {
        return Err(forbidden());
    }
    let key = req.path.args.first().map(String::as_str).unwrap_or("me");
    let target = if key == "me" { auth.user.clone() } else { find_user(state, key).await?.ok_or_else(|| ApiError::NotFound("Invalid user".into()))? };
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "AuthKey");
    let now = chrono::Utc::now().timestamp();
    let clear = crate::keys::generate();
    let mut record = crate::keys::record(commands::allocate_ids(state, "auth_key", 1).await?.first().copied().unwrap_or_default(), Uuid::new_v4(), target.id, &clear, now);
    record.comment = text(v.get("comment")).unwrap_or_default();
    record.read_only = flag(v.get("read_only")).unwrap_or(false);
    record.expiration = int(v.get("expiration")).filter(|e| *e > 0);
    // MISP's `allowed_ips`: addresses or CIDR ranges, as a list or one per line.
    let allowed: Vec<String> = match v.get("allowed_ips") {
        Some(Value::Array(a)) => a.iter().filter_map(|x| text(Some(x))).collect(),
        Some(other) => text(Some(other)).map(|t| t.split(['\n', ',', ' ']).map(str::to_string).collect()).unwrap_or_default(),
        None => Vec::new(),
    };
    let allowed: Vec<String> = allowed.into_iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect();
    if let Err(bad) = cairn_domain::warninglist::Networks::parse(allowed.iter().map(String::as_str)) {
        let reasons: Vec<String> = bad.iter().map(|b| format!("{b:?} is not an IP address or CIDR range.")).collect();
        return Err(ApiError::SaveFailed { name: "Could not add AuthKey".into(), errors: json!({ "allowed_ips": reasons }) });
    }
    record.allowed_ips = allowed;
    let meta = CommandMeta::new("auth_keys.add", auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    commands::execute(state, &meta, target.uuid, stream::USER, user::evolve, |s: &UserState| {
        Ok((user::decide(s, &actor, &role, UserCommand::AddAuthKey { key: record.clone() }).map_err(|e| refusal(e, "add AuthKey"))?, ()))
    })
    .await?;
    Ok(json(json!({"AuthKey": {
        "id": record.id.to_string(), "uuid": record.uuid, "authkey_start": record.key_start, "authkey_end": record.key_end,
        "created": record.created.to_string(), "expiration": record.expiration.unwrap_or(0).to_string(), "read_only": record.read_only,
        "comment": record.comment, "user_id": target.id.to_string(), "allowed_ips": record.allowed_ips, "authkey_raw": clear,
    }})))
}

// ---------- roles ----------

/// `GET /roles/index`.
pub async fn roles_index(state: &AppState, _auth: &Authed) -> Result<Response, ApiError> {
    let default = default_role_id(state).await?;
    let facts = state.instance.get(&state.pool).await?;
    Ok(json(Value::Array(facts.all_roles().iter().map(|r| json!({ "Role": misp::role(r, default) })).collect())))
}

/// `POST /admin/roles/set_default/{id}`.
pub async fn roles_set_default(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let id = role_arg(req)?;
    let target = role_by_id(state, id).await?.ok_or_else(|| ApiError::NotFound("Invalid role".into()))?;
    super::support::instance_command(state, auth, "roles.set_default", "set the default role", InstanceCommand::SetDefaultRole { role: target }).await?;
    Ok(saved("Default role set.", &req.url, Some(id.to_string())))
}

/// A role from a request body (`{"Role": {...}}` or flat): `name`, every `perm_*` flag, or MISP's
/// `permission` shorthand (0 read only, 1 manage own, 2 manage org, 3 publish) for the four write flags.
fn role_from(v: &Value, mut role: Role) -> Role {
    if let Some(n) = text(v.get("name")) {
        role.name = n.trim().to_string();
    }
    if let Some(p) = int(v.get("permission")) {
        let p = p.clamp(0, 3);
        role.perm_add = p >= 1;
        role.perm_modify = p >= 1;
        role.perm_modify_org = p >= 2;
        role.perm_publish = p >= 3;
    }
    for f in cairn_domain::role::FLAGS {
        if let Some(b) = flag(v.get(*f)) {
            role.set_flag(f, b);
        }
    }
    for (field, target) in [("memory_limit", &mut role.memory_limit), ("max_execution_time", &mut role.max_execution_time)] {
        if let Some(x) = text(v.get(field)) {
            *target = x.trim().chars().take(32).collect();
        }
    }
    if let Some(b) = flag(v.get("enforce_rate_limit")) {
        role.enforce_rate_limit = b;
    }
    if let Some(n) = int(v.get("rate_limit_count")) {
        role.rate_limit_count = n.max(0);
    }
    if let Some(b) = flag(v.get("restricted_to_site_admin")) {
        role.restricted_to_site_admin = b;
    }
    role
}

/// Records `base` with the request's fields over it, and answers the role.
async fn put_role(state: &AppState, auth: &Authed, req: &Request, base: Role, command: &'static str, action: &str) -> Result<Response, ApiError> {
    let body = crate::body::parse(&req.body)?;
    let role = role_from(crate::body::unwrap(&body, "Role"), base);
    super::support::instance_command(state, auth, command, action, InstanceCommand::PutRole { role: role.clone() }).await?;
    let default = default_role_id(state).await?;
    Ok(json(json!({"Role": misp::role(&role, default)})))
}

fn role_arg(req: &Request) -> Result<i64, ApiError> {
    req.path.args.first().and_then(|s| s.parse().ok()).ok_or_else(|| ApiError::NotFound("Invalid role".into()))
}

/// `POST /admin/roles/add` (site admin).
pub async fn roles_add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    // Role ids continue after the largest in use (the six defaults hold 1–6).
    let facts = state.instance.get(&state.pool).await?;
    let mut base = Role::none(facts.all_roles().iter().map(|r| r.id).max().unwrap_or(6) + 1, "");
    base.perm_auth = true;
    put_role(state, auth, req, base, "roles.add", "add the role").await
}

/// `POST /admin/roles/edit/{id}` (site admin; MISP's six defaults cannot be changed).
pub async fn roles_edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let current = role_by_id(state, role_arg(req)?).await?.ok_or_else(|| ApiError::NotFound("Invalid role".into()))?;
    put_role(state, auth, req, current, "roles.edit", "edit the role").await
}

/// `POST /admin/roles/delete/{id}` (site admin; refused while a user has the role).
pub async fn roles_delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !auth.is_site_admin() {
        return Err(forbidden());
    }
    let id = role_arg(req)?;
    let client = state.pool.get().await?;
    let in_use: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM rm.users WHERE NOT deleted AND (doc->>'role_id')::bigint = $1)", &[&id])
        .await?
        .get(0);
    drop(client);
    if in_use {
        return Err(ApiError::SaveFailed { name: "Could not delete the role".into(), errors: json!({"id": ["Users still have this role."]}) });
    }
    super::support::instance_command(state, auth, "roles.delete", "delete the role", InstanceCommand::DeleteRole { id }).await?;
    Ok(saved("Role deleted.", &req.url, Some(id.to_string())))
}
