//! The audit trail, read straight from the log (`/audit/...`, native routes):
//!
//! * `audit/log` — the log by position (keyset: `after`, `limit` ≤ 10,000) with filters `stream_type`,
//!   `change_type`, `actor` (user id or e-mail), `org` (the actor's organisation id), `from`/`to`
//!   (recorded time, RFC 3339 or epoch seconds); JSON, or JSON lines with `format: ndjson`;
//! * `audit/history/{stream uuid | Event id}` — every change of one stream, with a readable diff of each
//!   updated record against its previous version;
//! * `audit/event/{event}` with `version`, `position` or `time` — the Event in MISP JSON as it was then,
//!   access rules applied for the caller; `audit/diff/{event}` with `from`/`to` versions;
//! * `audit/verify` — the hash chain recomputed (`cairnctl verify`);
//! * `audit/checkpoints[/latest]` — the signed checkpoints of the chain head.
//!
//! Parameters are named (`/after:100`), query-string or body fields. Access: perm_audit (site admins see
//! everything; other auditors see their organisation's own actions, and of an Event's history what the
//! access rule lets them see of the Event as it was at each change — [`event::audit::change_visible`]).
//! Every answered audit query is itself recorded (`audit.queried`, a stream per user).

use super::Request;
use super::support::{self, json};
use crate::auth::Authed;
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::render::{self, ViewOptions};
use crate::state::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_domain::event::{self, EventState};
use cairn_domain::{Change, stream};
use cairn_eventlog::StoredChange;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

const MAX_LIMIT: i64 = 10_000;

fn may_audit(auth: &Authed) -> Result<(), ApiError> {
    if auth.is_site_admin() || auth.role.perm_audit { Ok(()) } else { Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into())) }
}

fn invalid_stream() -> ApiError {
    ApiError::NotFound("Invalid stream.".into())
}

/// A parameter from the path (`/name:value`), the query string or the body.
pub(crate) fn param(req: &Request, body: &Value, name: &str) -> Option<String> {
    req.path.named.get(name).cloned().or_else(|| crate::body::text(body.get(name))).filter(|v| !v.trim().is_empty())
}

pub(crate) fn int_param(req: &Request, body: &Value, name: &str) -> Result<Option<i64>, ApiError> {
    param(req, body, name).map(|v| v.trim().parse::<i64>().map_err(|_| ApiError::BadRequest(format!("{name} must be an integer.")))).transpose()
}

/// RFC 3339 or epoch seconds.
fn time_param(req: &Request, body: &Value, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(v) = param(req, body, name) else { return Ok(None) };
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return chrono::DateTime::from_timestamp(secs, 0).map(Some).ok_or_else(|| ApiError::BadRequest(format!("{name} is out of range.")));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|_| ApiError::BadRequest(format!("{name} must be RFC 3339 (2024-01-31T12:00:00Z) or epoch seconds.")))
}

/// Records an answered audit query in the caller's audit stream.
async fn record(state: &AppState, auth: &Authed, route: &str, params: Value) -> Result<(), ApiError> {
    let meta = CommandMeta::new("audit.query", auth.actor());
    let change = Change::AuditQueried { route: route.to_string(), params };
    commands::execute(state, &meta, stream::audit_stream(auth.user.uuid), stream::AUDIT, |s: (), _: &Change| s, |_: &()| Ok((vec![change.clone()], ())))
        .await
        .map(drop)
}

fn actor_org(c: &StoredChange) -> Option<i64> {
    c.metadata["actor"]["org_id"].as_i64()
}

/// One change as the audit trail shows it.
fn line(c: &StoredChange, diff: Option<Value>) -> Value {
    let actor = &c.metadata["actor"];
    let mut v = json!({
        "position": c.position, "commit": c.commit_seq, "recorded_at": c.recorded_at,
        "stream_id": c.stream_id, "stream_type": c.stream_type, "stream_version": c.stream_version,
        "change_type": c.change_type, "schema_version": c.schema_version,
        "command": c.metadata["command_type"], "command_id": c.metadata["command_id"],
        "actor": {"user_id": actor["user_id"], "email": actor["email"], "org_id": actor["org_id"], "via": actor["via"]},
        "payload": c.payload,
    });
    if let Some(d) = diff {
        v["diff"] = d;
    }
    v
}

/// `{field: {"from", "to"}}` for the top-level fields two records disagree on.
fn field_diff(before: &Value, after: &Value, skip: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return out };
    for (k, new) in a {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let old = b.get(k).unwrap_or(&Value::Null);
        if old != new {
            out.insert(k.clone(), json!({"from": old, "to": new}));
        }
    }
    for (k, old) in b {
        if !a.contains_key(k) && !skip.contains(&k.as_str()) {
            out.insert(k.clone(), json!({"from": old, "to": Value::Null}));
        }
    }
    out
}

/// Readable diffs of `*.updated` changes against the record they replace, in stream order: the
/// previous record of the same kind and id is the last `*.created|added|updated` payload seen.
struct Differ {
    last: HashMap<(String, String), Value>,
}

impl Differ {
    fn new() -> Self {
        Self { last: HashMap::new() }
    }

    fn diff(&mut self, c: &StoredChange) -> Option<Value> {
        let (kind, fact) = c.change_type.rsplit_once('.')?;
        if !matches!(fact, "created" | "added" | "updated") || !c.payload.is_object() {
            return None;
        }
        let key = (kind.to_string(), c.payload.get("id").map(Value::to_string).unwrap_or_default());
        let previous = self.last.insert(key, c.payload.clone());
        (fact == "updated").then(|| Value::Object(previous.map(|p| field_diff(&p, &c.payload, &[])).unwrap_or_default()))
    }
}

/// `GET /audit/log`.
pub async fn log(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let body = crate::body::parse(&req.body)?;
    let after = int_param(req, &body, "after")?.unwrap_or(0).max(0);
    let limit = int_param(req, &body, "limit")?.unwrap_or(1_000).clamp(1, MAX_LIMIT);
    let mut sql = crate::filters::Sql::default();
    let p = sql.param(after);
    sql.and(format!("position > {p}"));
    if let Some(t) = param(req, &body, "stream_type") {
        let p = sql.param(t);
        sql.and(format!("stream_type = {p}"));
    }
    if let Some(t) = param(req, &body, "change_type") {
        let p = sql.param(t);
        sql.and(format!("change_type = {p}"));
    }
    if let Some(a) = param(req, &body, "actor") {
        match a.trim().parse::<i64>() {
            Ok(id) => {
                let p = sql.param(id);
                sql.and(format!("(metadata->'actor'->>'user_id')::bigint = {p}"));
            }
            Err(_) => {
                let p = sql.param(a.to_lowercase());
                sql.and(format!("lower(metadata->'actor'->>'email') = {p}"));
            }
        }
    }
    // Auditors other than site admins see their organisation's own actions.
    let own = (!auth.is_site_admin()).then_some(auth.user.org_id);
    for org in [int_param(req, &body, "org")?, own].into_iter().flatten() {
        let p = sql.param(org);
        sql.and(format!("(metadata->'actor'->>'org_id')::bigint = {p}"));
    }
    for (name, op) in [("from", ">="), ("to", "<=")] {
        if let Some(t) = time_param(req, &body, name)? {
            let p = sql.param(t);
            sql.and(format!("recorded_at {op} {p}"));
        }
    }
    let query = format!(
        "SELECT {} FROM es.changes WHERE {} ORDER BY position LIMIT {limit}",
        cairn_eventlog::store::CHANGE_COLUMNS,
        sql.where_clause()
    );
    let client = state.pool.get().await?;
    let rows = client.query(&query, &sql.refs()).await?;
    let changes: Vec<StoredChange> = rows.iter().map(cairn_eventlog::store::change_from_row).collect();
    let head = cairn_eventlog::store::head(&client).await?.position;
    drop(client);
    let next_after = if changes.len() as i64 == limit { changes.last().map(|c| c.position) } else { None };
    let params = json!({"after": after, "limit": limit, "filters": req.path.named});
    record(state, auth, "audit/log", params).await?;
    let lines: Vec<Value> = changes.iter().map(|c| line(c, None)).collect();
    respond(req, &body, json!({"changes": lines, "next_after": next_after, "head": head}))
}

/// JSON, or JSON lines (`format: ndjson`): one change per line, then `{"next_after", "head"}`.
fn respond(req: &Request, body: &Value, answer: Value) -> Result<Response, ApiError> {
    if param(req, body, "format").is_some_and(|f| f.eq_ignore_ascii_case("ndjson")) {
        let mut out = String::new();
        for c in answer["changes"].as_array().into_iter().flatten() {
            out.push_str(&c.to_string());
            out.push('\n');
        }
        let mut tail = answer.clone();
        if let Some(m) = tail.as_object_mut() {
            m.remove("changes");
        }
        out.push_str(&tail.to_string());
        out.push('\n');
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response());
    }
    Ok(json(answer))
}

/// The stream a history request names: a uuid, or an Event id (its stream).
async fn stream_of(state: &AppState, key: &str) -> Result<(Uuid, String), ApiError> {
    let client = state.pool.get().await?;
    let uuid = match Uuid::parse_str(key.trim()) {
        Ok(u) => u,
        Err(_) => {
            let id: i64 = key.trim().parse().map_err(|_| invalid_stream())?;
            client.query_opt("SELECT uuid FROM rm.events WHERE id = $1", &[&id]).await?.map(|r| r.get(0)).ok_or_else(invalid_stream)?
        }
    };
    let (_, stream_type) = cairn_eventlog::store::stream_version(&client, uuid).await?.ok_or_else(invalid_stream)?;
    Ok((uuid, stream_type))
}

/// `GET /audit/history/{stream}`.
pub async fn history(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let body = crate::body::parse(&req.body)?;
    let key = req.path.args.first().ok_or_else(invalid_stream)?;
    let (uuid, stream_type) = stream_of(state, key).await?;
    let client = state.pool.get().await?;
    let changes = cairn_eventlog::store::read_stream(&client, uuid, 0).await?;
    drop(client);
    let own = |c: &StoredChange| actor_org(c) == Some(auth.user.org_id);
    let mut differ = Differ::new();
    let mut lines = Vec::new();
    if stream_type == stream::EVENT {
        let viewer = support::viewer(state, auth).await?;
        let settings = support::access_settings(state).await?;
        let decoded: Vec<Change> = changes
            .iter()
            .map(|c| Change::from_record(&c.change_type, c.schema_version, &c.payload).map_err(ApiError::internal))
            .collect::<Result<_, _>>()?;
        let now = decoded.iter().fold(EventState::default(), event::evolve);
        let mut folded = EventState::default();
        for (c, change) in changes.iter().zip(&decoded) {
            let next = event::evolve(folded.clone(), change);
            let diff = differ.diff(c);
            // Judged by the access rule only (not "my organisation did it"), then and now: an Event's
            // content stays with those who may see it, whoever wrote it.
            if event::audit::change_visible(&viewer, &settings, &folded, &next, change) && event::audit::change_visible_now(&viewer, &settings, &now, change) {
                lines.push(line(c, diff));
            }
            folded = next;
        }
    } else {
        for c in &changes {
            let diff = differ.diff(c);
            if auth.is_site_admin() || own(c) {
                lines.push(line(c, diff));
            }
        }
    }
    // Nothing to show: the stream does not exist for this caller.
    if lines.is_empty() {
        return Err(invalid_stream());
    }
    record(state, auth, "audit/history", json!({"stream": uuid})).await?;
    respond(req, &body, json!({"stream_id": uuid, "stream_type": stream_type, "changes": lines}))
}

/// The Event's stream and the log position a request's `version`, `position` or `time` names (the
/// newest when none is given).
async fn event_point(state: &AppState, uuid: Uuid, version: Option<i64>, position: Option<i64>, time: Option<chrono::DateTime<chrono::Utc>>) -> Result<i64, ApiError> {
    let client = state.pool.get().await?;
    let not_yet = || ApiError::NotFound("The Event did not exist at that point.".into());
    let row = if let Some(v) = version {
        client.query_opt("SELECT position FROM es.changes WHERE stream_id = $1 AND stream_version = $2", &[&uuid, &v]).await?
    } else if let Some(p) = position {
        client.query_opt("SELECT max(position) FROM es.changes WHERE stream_id = $1 AND position <= $2 HAVING count(*) > 0", &[&uuid, &p]).await?
    } else if let Some(t) = time {
        client.query_opt("SELECT max(position) FROM es.changes WHERE stream_id = $1 AND recorded_at <= $2 HAVING count(*) > 0", &[&uuid, &t]).await?
    } else {
        client.query_opt("SELECT max(position) FROM es.changes WHERE stream_id = $1 HAVING count(*) > 0", &[&uuid]).await?
    };
    row.map(|r| r.get::<_, i64>(0)).ok_or_else(not_yet)
}

/// An Event's stream from a path argument (id of a live Event, or the uuid of any), if the Event as it
/// is now (deleted or not) is visible to the caller: its past is not shown to those who may not see it
/// today.
async fn event_stream(state: &AppState, auth: &Authed, key: &str) -> Result<Uuid, ApiError> {
    let uuid = match stream_of(state, key).await {
        Ok((uuid, t)) if t == stream::EVENT => uuid,
        _ => return Err(super::events::invalid_event()),
    };
    if !auth.is_site_admin() {
        let (now, _) = commands::load(state, uuid, event::evolve).await?;
        let viewer = support::viewer(state, auth).await?;
        let settings = support::access_settings(state).await?;
        if !now.access().is_some_and(|a| cairn_domain::acl::event_visible(&viewer, &a, &settings)) {
            return Err(super::events::invalid_event());
        }
    }
    Ok(uuid)
}

/// Read-model tables holding an Event's rows (by `event_id`), emptied and rebuilt inside the as-of
/// transaction.
const EVENT_TABLES: [&str; 10] = [
    "rm.attributes",
    "rm.objects",
    "rm.object_references",
    "rm.event_tags",
    "rm.attribute_tags",
    "rm.shadow_attributes",
    "rm.event_delegations",
    "rm.threads",
    "rm.posts",
    "rm.sightings",
];

/// The Event as the caller would have seen it at log position `until`: its changes up to there (and
/// its sightings') are projected by the indexer — the code that builds the live view — inside a
/// transaction that is rolled back, and rendered by the live view's renderer. The two can therefore
/// not disagree; other readers never see the temporary rows.
pub async fn as_of_view(state: &AppState, auth: &Authed, uuid: Uuid, until: i64, force_replay: bool) -> Result<Value, ApiError> {
    let started = std::time::Instant::now();
    let streams = [uuid, stream::sightings_stream(uuid)];
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let options = ViewOptions { sightings: support::sighting_settings(state).await?, ..Default::default() };
    let mut client = state.pool.get().await?;
    // Nothing happened to the Event after `until` and the indexer has applied it: the live read model
    // is the Event as of `until`.
    let row = client
        .query_one(
            "SELECT (SELECT max(position) FROM es.changes WHERE stream_id = ANY($1)), \
             (SELECT position FROM es.projector_checkpoints WHERE projector = $2)",
            &[&streams.as_slice(), &cairn_indexer::NAME],
        )
        .await?;
    let (last, indexed): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
    if let (Some(last), Some(indexed), false) = (last, indexed, force_replay) {
        if last <= until && indexed >= last {
            let view = match render::find_event(&client, &uuid.to_string()).await? {
                Some(row) => render::event_json(&client, &viewer, &settings, &row, &options).await?,
                None => None,
            };
            drop(client);
            let mut view = view.ok_or_else(|| ApiError::NotFound("The Event was deleted or not visible to you at that point.".into()))?;
            super::sharing_groups::attach(state, &mut view).await?;
            tracing::debug!(%uuid, until, live = true, rendered_ms = started.elapsed().as_millis() as u64, "as-of view");
            return Ok(view);
        }
    }
    // Decoded from the payloads' text in one pass (no JSON tree per change: thousands of attributes).
    let mut changes: Vec<(Uuid, Change)> = Vec::new();
    cairn_eventlog::bulk::read_streams(&client, &streams, until, |row| {
        changes.push((row.stream_id, Change::from_json(row.change_type, row.schema_version, row.payload)?));
        Ok(())
    })
    .await
    .map_err(ApiError::internal)?;
    let event_id = changes
        .iter()
        .find_map(|(_, c)| match c {
            Change::EventCreated(m) => Some(m.id),
            _ => None,
        })
        .ok_or_else(|| ApiError::NotFound("The Event did not exist at that point.".into()))?;
    let read = started.elapsed();
    let tx = client.transaction().await?;
    tx.execute("DELETE FROM rm.events WHERE id = $1", &[&event_id]).await?;
    for table in EVENT_TABLES {
        tx.execute(&format!("DELETE FROM {table} WHERE event_id = $1"), &[&event_id]).await?;
    }
    cairn_indexer::apply_changes(&tx, &changes).await.map_err(ApiError::internal)?;
    let projected = started.elapsed();
    let row = render::find_event(&tx, &event_id.to_string()).await?;
    let view = match row {
        Some(row) => render::event_json(&tx, &viewer, &settings, &row, &options).await?,
        None => None,
    };
    tx.rollback().await?;
    tracing::debug!(%uuid, until, changes = changes.len(), read_ms = read.as_millis() as u64, projected_ms = projected.as_millis() as u64,
        rendered_ms = started.elapsed().as_millis() as u64, "as-of view");
    let mut view = view.ok_or_else(|| ApiError::NotFound("The Event was deleted or not visible to you at that point.".into()))?;
    super::sharing_groups::attach(state, &mut view).await?;
    Ok(view)
}

/// `GET /audit/event/{event}` with `version`, `position` or `time`: the Event as it was then.
pub async fn event_as_of(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let body = crate::body::parse(&req.body)?;
    let uuid = event_stream(state, auth, req.path.args.first().ok_or_else(super::events::invalid_event)?).await?;
    let version = int_param(req, &body, "version")?;
    let position = int_param(req, &body, "position")?;
    let time = time_param(req, &body, "time")?;
    let until = event_point(state, uuid, version, position, time).await?;
    // `replay: 1` always projects the changes (never the live read model): for checks of that path.
    let force = param(req, &body, "replay").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let mut view = as_of_view(state, auth, uuid, until, force).await?;
    view["as_of"] = json!({"position": until, "version": version});
    record(state, auth, "audit/event", json!({"event": uuid, "position": until})).await?;
    Ok(json(view))
}

fn by_uuid(list: &Value) -> BTreeMap<String, Value> {
    list.as_array().into_iter().flatten().filter_map(|v| Some((v["uuid"].as_str()?.to_string(), v.clone()))).collect()
}

fn all_attributes(event: &Value) -> Value {
    let mut out: Vec<Value> = event["Attribute"].as_array().cloned().unwrap_or_default();
    for o in event["Object"].as_array().into_iter().flatten() {
        out.extend(o["Attribute"].as_array().cloned().unwrap_or_default());
    }
    Value::Array(out)
}

fn list_diff(before: &Value, after: &Value, nested: &[&str]) -> Value {
    let (b, a) = (by_uuid(before), by_uuid(after));
    let summary = |v: &Value| {
        let mut s = Map::new();
        for k in ["uuid", "id", "type", "category", "value", "name", "object_relation"] {
            if let Some(x) = v.get(k) {
                s.insert(k.into(), x.clone());
            }
        }
        Value::Object(s)
    };
    let added: Vec<Value> = a.iter().filter(|(k, _)| !b.contains_key(*k)).map(|(_, v)| summary(v)).collect();
    let removed: Vec<Value> = b.iter().filter(|(k, _)| !a.contains_key(*k)).map(|(_, v)| summary(v)).collect();
    let changed: Vec<Value> = a
        .iter()
        .filter_map(|(k, new)| {
            let fields = field_diff(b.get(k)?, new, nested);
            (!fields.is_empty()).then(|| json!({"uuid": k, "changes": fields}))
        })
        .collect();
    json!({"added": added, "removed": removed, "changed": changed})
}

fn tag_names(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(String::from)).collect()
}

/// What changed between two renderings of an Event.
pub fn view_diff(before: &Value, after: &Value) -> Value {
    let (b, a) = (&before["Event"], &after["Event"]);
    let lists = ["Attribute", "Object", "Tag", "ShadowAttribute", "RelatedEvent", "Galaxy", "EventReport", "CryptographicKey", "Org", "Orgc", "SharingGroup"];
    let (bt, at) = (tag_names(&b["Tag"]), tag_names(&a["Tag"]));
    json!({
        "Event": field_diff(b, a, &lists),
        "Attribute": list_diff(&all_attributes(b), &all_attributes(a), &["Tag", "ShadowAttribute", "Sighting", "Galaxy"]),
        "Object": list_diff(&b["Object"], &a["Object"], &["Attribute", "ObjectReference"]),
        "Tag": {"added": at.iter().filter(|t| !bt.contains(t)).collect::<Vec<_>>(), "removed": bt.iter().filter(|t| !at.contains(t)).collect::<Vec<_>>()},
    })
}

/// `GET /audit/diff/{event}` with `from` and `to` stream versions.
pub async fn event_diff(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let body = crate::body::parse(&req.body)?;
    let uuid = event_stream(state, auth, req.path.args.first().ok_or_else(super::events::invalid_event)?).await?;
    let from = int_param(req, &body, "from")?.ok_or_else(|| ApiError::BadRequest("from (a stream version) is required.".into()))?;
    let to = int_param(req, &body, "to")?;
    let (p_from, p_to) = (event_point(state, uuid, Some(from), None, None).await?, event_point(state, uuid, to, None, None).await?);
    let before = as_of_view(state, auth, uuid, p_from, false).await?;
    let after = as_of_view(state, auth, uuid, p_to, false).await?;
    record(state, auth, "audit/diff", json!({"event": uuid, "from": p_from, "to": p_to})).await?;
    Ok(json(json!({"from": {"version": from, "position": p_from}, "to": {"version": to, "position": p_to}, "diff": view_diff(&before, &after)})))
}

/// `GET /audit/verify`: the whole chain recomputed.
pub async fn verify(state: &AppState, auth: &Authed, _req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let client = state.pool.get().await?;
    let answer = match cairn_eventlog::verify::verify(&client, |_, _| {}).await {
        Ok(report) => json!({"valid": true, "commits": report.commits, "changes": report.changes, "head": report.head}),
        Err(cairn_eventlog::verify::VerifyError::BadCommit { commit_seq, reason }) => {
            json!({"valid": false, "commit": commit_seq, "reason": reason})
        }
        Err(cairn_eventlog::verify::VerifyError::BadHead(reason)) => json!({"valid": false, "reason": reason}),
        Err(e) => return Err(ApiError::internal(e)),
    };
    drop(client);
    record(state, auth, "audit/verify", json!({})).await?;
    Ok(json(answer))
}

/// `GET /audit/checkpoints[/latest]`: the signed checkpoints of the chain head, newest first (`limit`,
/// default 100), each with its signed text, signature and public key (docs/operations.md explains how
/// a partner checks one later).
pub async fn checkpoints(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    may_audit(auth)?;
    let body = crate::body::parse(&req.body)?;
    let latest = req.path.args.first().is_some_and(|a| a == "latest");
    let limit = if latest { 1 } else { int_param(req, &body, "limit")?.unwrap_or(100).clamp(1, MAX_LIMIT) };
    let client = state.pool.get().await?;
    let list = cairn_eventlog::checkpoint::list(&client, limit).await.map_err(ApiError::internal)?;
    drop(client);
    record(state, auth, "audit/checkpoints", json!({"limit": limit})).await?;
    if latest {
        let c = list.into_iter().next().ok_or_else(|| ApiError::NotFound("No checkpoint has been signed (CAIRN_CHECKPOINT_KEY_FILE).".into()))?;
        return Ok(json(serde_json::to_value(c).map_err(ApiError::internal)?));
    }
    Ok(json(json!({"checkpoints": list})))
}
