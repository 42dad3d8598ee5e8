//! MISP's JSON typing: ids and numbers as strings, flags as booleans, dates as MISP formats them.
//! Every response body that mimics a MISP model is rendered here, in one place.

use cairn_domain::organisation::Organisation;
use cairn_domain::role::{FLAGS, Role};
use cairn_domain::user::User;
use serde_json::{Map, Value, json};

/// MISP's datetime text (`YYYY-MM-DD HH:MM:SS`, UTC) for epoch seconds.
pub fn datetime(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn organisation(o: &Organisation) -> Value {
    json!({
        "id": o.id.to_string(),
        "name": o.name,
        "date_created": datetime(o.date_created),
        "date_modified": datetime(o.date_modified),
        "description": o.description,
        "type": o.org_type,
        "nationality": o.nationality,
        "sector": o.sector,
        "created_by": o.created_by.to_string(),
        "uuid": o.uuid,
        "contacts": o.contacts,
        "local": o.local,
        "restricted_to_domain": o.restricted_to_domain,
        "landingpage": if o.landingpage.is_empty() { Value::Null } else { Value::String(o.landingpage.clone()) },
    })
}

/// The short organisation form used inside Events (`Org`, `Orgc`).
pub fn organisation_short(o: &Organisation) -> Value {
    json!({"id": o.id.to_string(), "name": o.name, "uuid": o.uuid, "local": o.local})
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id.to_string(),
        "org_id": u.org_id.to_string(),
        "server_id": "0",
        "email": u.email,
        "autoalert": u.autoalert,
        "invited_by": u.invited_by.to_string(),
        "gpgkey": if u.gpgkey.is_empty() { Value::Null } else { Value::String(u.gpgkey.clone()) },
        "certif_public": u.certif_public,
        "nids_sid": u.nids_sid.to_string(),
        "termsaccepted": u.termsaccepted,
        "newsread": "0",
        "role_id": u.role_id.to_string(),
        "change_pw": u.change_pw,
        "contactalert": u.contactalert,
        "disabled": u.disabled,
        "expiration": u.expiration.map(datetime),
        "current_login": "0",
        "last_login": "0",
        "last_api_access": "0",
        "force_logout": false,
        "date_created": u.date_created.to_string(),
        "date_modified": u.date_modified.to_string(),
        "last_pw_change": u.date_created.to_string(),
        "notification_daily": false,
        "notification_weekly": false,
        "notification_monthly": false,
        "totp": "*****",
        "hotp_counter": null,
        "password": "*****",
    })
}

pub fn role(r: &Role, default_role_id: i64) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id.to_string()));
    m.insert("name".into(), json!(r.name));
    m.insert("created".into(), json!("2024-01-01 00:00:00"));
    m.insert("modified".into(), json!("2024-01-01 00:00:00"));
    for f in FLAGS {
        m.insert((*f).into(), json!(r.flag(f).unwrap_or(false)));
    }
    m.insert("default_role".into(), json!(r.id == default_role_id));
    m.insert("memory_limit".into(), json!(r.memory_limit));
    m.insert("max_execution_time".into(), json!(r.max_execution_time));
    m.insert("restricted_to_site_admin".into(), json!(r.restricted_to_site_admin));
    m.insert("enforce_rate_limit".into(), json!(r.enforce_rate_limit));
    m.insert("rate_limit_count".into(), json!(r.rate_limit_count.to_string()));
    m.insert("permission".into(), json!(r.permission().to_string()));
    m.insert("permission_description".into(), json!(r.permission_description()));
    Value::Object(m)
}

/// MISP's saveSuccess body.
pub fn save_success(message: &str, url: &str, id: Option<String>) -> Value {
    let mut v = json!({"saved": true, "success": true, "name": message, "message": message, "url": url});
    if let Some(id) = id {
        v["id"] = json!(id);
    }
    v
}
