//! `events/index` and the `restSearch` entry points (the search itself lives in [`crate::search`]).

use super::support::{self, json};
use super::Request;
use crate::acl_sql;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::filters::Sql;
use crate::render::{self, EVENT_COLUMNS};
use crate::search::{self, Params, Scope, query};
use crate::state::AppState;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};

fn with_count(mut response: Response, count: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        response.headers_mut().insert("X-Result-Count", v);
    }
    response
}

/// `GET|POST /events/index`: flat Event rows, with `X-Result-Count`.
pub async fn index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = Params::read(req)?;
    let now = chrono::Utc::now().timestamp();
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = Sql::default();
    acl_sql::events(&mut sql, &viewer, &settings, "e");
    query::event_conditions(&mut sql, &p, now);
    query::event_timestamp(&mut sql, &p, now);
    query::event_sharing_group(&mut sql, &p);
    let search = p.get("all").or_else(|| p.get("searchall")).or_else(|| p.get("quickfilter")).and_then(Value::as_str).map(str::to_lowercase);
    if let Some(s) = search.filter(|s| !s.is_empty()) {
        let ph = sql.param(format!("%{s}%"));
        sql.and(format!(
            "(lower(e.info) LIKE {ph} OR e.uuid::text LIKE {ph} OR EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND NOT x.deleted \
             AND (lower(x.value1) LIKE {ph} OR lower(x.value2) LIKE {ph} OR lower(x.comment) LIKE {ph})) \
             OR EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = e.id AND lower(t.name) LIKE {ph}))"
        ));
    }
    let tags = query::pipe_terms(p.get("tags").or_else(|| p.get("tag")));
    for (terms, negate) in [(&tags.or, false), (&tags.not, true)] {
        if terms.is_empty() {
            continue;
        }
        let ph = sql.param(terms.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>());
        let exists = format!(
            "EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = e.id AND (lower(t.name) = ANY({ph}) OR t.id::text = ANY({ph})))"
        );
        sql.and(if negate { format!("NOT {exists}") } else { exists });
    }
    if let Some(v) = p.get("attribute").or_else(|| p.get("value")).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        let ph = sql.param(format!("%{}%", v.to_lowercase()));
        sql.and(format!(
            "EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND NOT x.deleted AND (lower(x.value1) LIKE {ph} OR lower(x.value2) LIKE {ph}))"
        ));
    }
    // `hasproposal`: Events with (1) or without (0) pending proposals.
    if let Some(has) = p.flag("hasproposal") {
        let exists = "EXISTS (SELECT 1 FROM rm.shadow_attributes s WHERE s.event_id = e.id AND NOT s.deleted)";
        sql.and(if has { exists.to_string() } else { format!("NOT {exists}") });
    }
    let client = state.pool.get().await?;
    let where_clause = sql.where_clause();
    let count: i64 = client.query_one(&format!("SELECT count(*) FROM rm.events e WHERE {where_clause}"), &sql.refs()).await?.get(0);
    let sort_column = match p.get("sort").and_then(Value::as_str).unwrap_or("id") {
        "info" => "e.info",
        "date" => "e.date",
        "timestamp" => "e.timestamp",
        "publish_timestamp" => "e.publish_timestamp",
        "threat_level_id" => "e.threat_level_id",
        "analysis" => "e.analysis",
        "distribution" => "e.distribution",
        "attribute_count" => "e.attribute_count",
        "uuid" => "e.uuid",
        _ => "e.id",
    };
    let desc = p.get("direction").and_then(Value::as_str).is_some_and(|d| d.eq_ignore_ascii_case("desc"))
        || crate::body::flag(p.get("desc")).unwrap_or(false);
    let (limit, page) = p.limit_page();
    let mut query = format!("SELECT {EVENT_COLUMNS} FROM rm.events e WHERE {where_clause} ORDER BY {sort_column} {}, e.id", if desc { "DESC" } else { "ASC" });
    if let Some(l) = limit {
        query.push_str(&format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
    }
    let rows = client.query(&query, &sql.refs()).await?;
    let events: Vec<render::EventRow> = rows.iter().map(render::event_row).collect();
    let mut org_ids: Vec<i64> = events.iter().flat_map(|e| [e.access.org_id, e.orgc_id]).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs = render::org_shorts(&client, &org_ids).await?;
    let minimal = crate::body::flag(p.get("minimal")).unwrap_or(false);
    let mut list = render::index_rows(&client, &events, &orgs).await?;
    if minimal {
        list = list
            .into_iter()
            .map(|row| {
                json!({"id": row["id"], "timestamp": row["timestamp"], "sighting_timestamp": row["sighting_timestamp"],
                       "published": row["published"], "uuid": row["uuid"], "orgc_uuid": row["Orgc"]["uuid"]})
            })
            .collect();
    }
    Ok(with_count(json(Value::Array(list)), count))
}


/// `POST /events/restSearch`.
pub async fn events_rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    search::respond(state, auth, Params::from_request(req, Scope::Event)?, Scope::Event).await
}

/// `POST /attributes/restSearch`.
pub async fn attributes_rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    search::respond(state, auth, Params::from_request(req, Scope::Attribute)?, Scope::Attribute).await
}

/// `POST /objects/restSearch`.
pub async fn objects_rest_search(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    search::respond(state, auth, Params::from_request(req, Scope::Object)?, Scope::Object).await
}

/// One of MISP's export routes from before restSearch, and how its path maps onto restSearch.
struct Legacy {
    scope: Scope,
    format: &'static str,
    /// Path arguments to skip (`download`, a flavour already folded into `format`).
    skip: usize,
    /// The names of the positional arguments that follow.
    names: &'static [&'static str],
    /// `to_ids = 1` and `published = 1` unless a named argument (`ignore`, `allowNonIDS`…) lifts it.
    restrictive: bool,
}

/// MISP's legacy export routes (misp_features.md §8.4), with their positional parameters.
fn legacy_route(controller: &str, action: &str, args: &[String]) -> Option<Legacy> {
    let first = args.first().map(|s| s.to_ascii_lowercase());
    Some(match (controller, action) {
        // These filter the rows by type/category, as MISP's old exporters did: the attribute scope.
        ("events", "csv") => Legacy {
            scope: Scope::Attribute,
            format: "csv",
            skip: 1,
            names: &["eventid", "ignore", "tags", "category", "type", "includeContext", "from", "to", "last", "headerless", "enforceWarninglist", "value", "timestamp"],
            restrictive: true,
        },
        ("events", "nids") => Legacy {
            scope: Scope::Attribute,
            format: if first.as_deref() == Some("snort") { "snort" } else { "suricata" },
            skip: 2,
            names: &["eventid", "frame", "tags", "from", "to", "last", "type", "enforceWarninglist", "includeAllTags"],
            restrictive: true,
        },
        ("events", "hids") => Legacy {
            scope: Scope::Attribute,
            format: "hashes",
            skip: 2,
            names: &["tags", "from", "to", "last", "enforceWarninglist"],
            restrictive: true,
        },
        ("events", "stix2") => Legacy { scope: Scope::Event, format: "stix2", skip: 1, names: &["eventid", "withAttachments", "tags", "from", "to", "last"], restrictive: false },
        ("attributes", "text") => Legacy {
            scope: Scope::Attribute,
            format: "text",
            skip: 1,
            names: &["type", "tags", "eventid", "allowNonIDS", "from", "to", "last", "enforceWarninglist", "allowNotPublished"],
            restrictive: true,
        },
        ("attributes", "rpz") => Legacy {
            scope: Scope::Attribute,
            format: "rpz",
            skip: 1,
            names: &["tags", "eventid", "from", "to", "policy", "walled_garden", "ns", "email", "serial", "refresh", "retry", "expiry", "minimum_ttl", "ttl", "enforceWarninglist", "ns_alt"],
            restrictive: true,
        },
        ("attributes", "bro") => Legacy {
            scope: Scope::Attribute,
            format: "bro",
            skip: 1,
            names: &["bro_type", "tags", "eventid", "from", "to", "last", "enforceWarninglist"],
            restrictive: true,
        },
        _ => return None,
    })
}

/// The legacy export routes (`/events/csv/download/…`, `/events/nids/suricata/download/…`,
/// `/events/hids/md5/download/…`, `/attributes/text/download/{type}/…`, `/attributes/rpz/download/…`,
/// `/attributes/bro/download/{type}/…`), answered by restSearch.
pub async fn legacy(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = &req.path;
    let route = legacy_route(&p.controller, &p.action, &p.args).ok_or_else(crate::unknown_route)?;
    let mut params = Params::read(req)?;
    for (name, arg) in route.names.iter().zip(p.args.iter().skip(route.skip)) {
        let arg = arg.trim();
        if matches!(arg.to_ascii_lowercase().as_str(), "" | "null" | "false" | "0" | "all") {
            continue;
        }
        let value = if arg.contains("&&") || arg.contains("||") {
            Value::Array(arg.split("||").flat_map(|s| s.split("&&")).map(|s| Value::String(s.to_string())).collect())
        } else {
            Value::String(arg.to_string())
        };
        if !params.contains(name) {
            params.set(name, value);
        }
    }
    if route.format == "hashes" {
        // `/events/hids/{md5|sha1|sha256}`: the hash type chooses the attribute types.
        let kind = p.args.first().map(|s| s.to_ascii_lowercase()).unwrap_or_else(|| "md5".into());
        params.set("type", json!([kind.clone(), format!("filename|{kind}")]));
    }
    if route.format == "bro" {
        if let Some(t) = params.text("bro_type") {
            params.set("bro_type", json!(t));
        }
    }
    let lifted = params.on("ignore") || params.on("allowNonIDS");
    if route.restrictive && !lifted {
        if !params.contains("to_ids") {
            params.set("to_ids", json!(1));
        }
        if !params.contains("published") {
            params.set("published", if params.on("allowNotPublished") { json!([0, 1]) } else { json!(1) });
        }
    } else {
        params.set("ignore", json!(1));
    }
    params.set("returnFormat", json!(route.format));
    search::respond(state, auth, params, route.scope).await
}
