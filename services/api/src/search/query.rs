//! restSearch filters as SQL over the read models (`rm.events e`, `rm.attributes a`, `rm.objects o`),
//! with the access rule of [`crate::acl_sql`] always applied. Values are bound parameters, never
//! spliced into the text.
//!
//! What the filters mean follows MISP (misp_features.md §8.2–8.3):
//! - Event scope: an Event matches on its own fields, and on attribute fields when **any visible**
//!   attribute matches; `tags` match the Event's tags or any visible attribute's; `tags` NOT excludes
//!   Events by their own tags and removes attributes carrying them from the output.
//! - Attribute scope: an attribute matches on its own fields and its Event's; `tags` match the
//!   attribute's tags or its Event's; `timestamp` is the attribute's.

use super::params::{Params, Scope};
use crate::acl_sql;
use crate::filters::{self, Sql, Terms};
use cairn_domain::acl::{AccessSettings, Viewer};
use serde_json::Value;

/// Terms from a parameter, with `|`-separated strings (the events index's syntax) split.
pub fn pipe_terms(v: Option<&Value>) -> Terms {
    match v {
        Some(Value::String(s)) if s.contains('|') => {
            filters::terms(Some(&Value::Array(s.split('|').map(|x| Value::String(x.into())).collect())))
        }
        other => filters::terms(other),
    }
}

/// Conditions built with `f` on their own, sharing `sql`'s parameters; returns them joined.
fn nested(sql: &mut Sql, f: impl FnOnce(&mut Sql)) -> String {
    let mut inner = Sql { conditions: Vec::new(), params: std::mem::take(&mut sql.params) };
    f(&mut inner);
    sql.params = inner.params;
    inner.conditions.join(" AND ")
}

/// A time filter on `column`: `>=` one point, or a `[from, to]` range. A value that is not a time
/// (`"5x"`) matches nothing, as in MISP.
fn time_condition(sql: &mut Sql, column: &str, v: Option<&Value>, now: i64, scale: i64) {
    let Some(v) = v else { return };
    match filters::time_range(Some(v), now) {
        Some((None, None)) | None => sql.and("FALSE".into()),
        Some((from, to)) => {
            if let Some(f) = from {
                let ph = sql.param(f.saturating_mul(scale));
                sql.and(format!("{column} >= {ph}"));
            }
            if let Some(t) = to {
                let ph = sql.param(t.saturating_mul(scale));
                sql.and(format!("{column} <= {ph}"));
            }
        }
    }
}

/// A date (`YYYY-MM-DD…`), epoch seconds, or a relative span back from `now`.
fn date_point(v: &Value, now: i64) -> Option<chrono::NaiveDate> {
    match v {
        Value::Number(n) => n.as_f64().and_then(|f| chrono::DateTime::from_timestamp(f as i64, 0)).map(|t| t.date_naive()),
        Value::String(s) => {
            let s = s.trim();
            chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok().or_else(|| {
                let secs = s.parse::<f64>().ok().map(|f| f as i64).or_else(|| filters::relative_seconds(s).and_then(|d| now.checked_sub(d)))?;
                chrono::DateTime::from_timestamp(secs, 0).map(|t| t.date_naive())
            })
        }
        _ => None,
    }
}

/// SQL matching a tag row `t` against names (case-insensitive, `%` patterns) and numeric ids.
fn tag_match(sql: &mut Sql, names: &[String]) -> String {
    let mut exact = Vec::new();
    let mut patterns = Vec::new();
    let mut ids = Vec::new();
    for n in names {
        let lower = n.trim().to_lowercase();
        if let Ok(id) = lower.parse::<i64>() {
            ids.push(id);
        }
        if lower.contains('%') { patterns.push(lower) } else { exact.push(lower) }
    }
    let (e, p, i) = (sql.param(exact), sql.param(patterns), sql.param(ids));
    format!("(lower(t.name) = ANY({e}) OR lower(t.name) LIKE ANY({p}) OR t.id = ANY({i}))")
}

fn event_tagged(m: &str, e: &str) -> String {
    format!("EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = {e}.id AND {m})")
}

fn attribute_tagged(m: &str, a: &str) -> String {
    format!("EXISTS (SELECT 1 FROM rm.attribute_tags at JOIN rm.tags t ON t.id = at.tag_id WHERE at.attribute_id = {a}.id AND {m})")
}

/// Conditions on the Event `e` (its own fields), shared by the index and every restSearch scope.
/// `timestamp` is left to the caller (its meaning depends on the scope).
pub fn event_conditions(sql: &mut Sql, p: &Params, now: i64) {
    let ids = pipe_terms(p.any(&["eventid", "event_id"]));
    if !ids.is_empty() && !ids.or.iter().any(|s| s.eq_ignore_ascii_case("all")) {
        let split = |list: &[String]| -> (Vec<i64>, Vec<uuid::Uuid>) {
            (list.iter().filter_map(|s| s.trim().parse().ok()).collect(), list.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect())
        };
        if !ids.or.is_empty() {
            let (nums, uuids) = split(&ids.or);
            let (n, u) = (sql.param(nums), sql.param(uuids));
            sql.and(format!("(e.id = ANY({n}) OR e.uuid = ANY({u}))"));
        }
        if !ids.not.is_empty() {
            let (nums, uuids) = split(&ids.not);
            let (n, u) = (sql.param(nums), sql.param(uuids));
            sql.and(format!("NOT (e.id = ANY({n}) OR e.uuid = ANY({u}))"));
        }
    }
    for (key, column) in [("event_timestamp", "e.timestamp"), ("publish_timestamp", "e.publish_timestamp"), ("last", "e.publish_timestamp"), ("publishtimestamp", "e.publish_timestamp")] {
        time_condition(sql, column, p.get(key), now, 1);
    }
    for (keys, op) in [(&["from", "datefrom", "date_from"][..], ">="), (&["to", "dateuntil", "date_to"][..], "<=")] {
        if let Some(v) = p.any(keys) {
            match date_point(v, now) {
                Some(d) => {
                    let ph = sql.param(d);
                    sql.and(format!("e.date {op} {ph}"));
                }
                None => sql.and("FALSE".into()),
            }
        }
    }
    if let Some(v) = p.get("date") {
        let (from, to) = match v {
            Value::Array(items) if items.len() == 2 => (date_point(&items[0], now), date_point(&items[1], now)),
            other => (date_point(other, now), None),
        };
        let (from, to) = match (from, to) {
            (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
            pair => pair,
        };
        if from.is_none() && to.is_none() {
            sql.and("FALSE".into());
        }
        for (d, op) in [(from, ">="), (to, "<=")] {
            if let Some(d) = d {
                let ph = sql.param(d);
                sql.and(format!("e.date {op} {ph}"));
            }
        }
    }
    if let Some(published) = p.get("published").filter(|v| !v.is_array()).and_then(|v| crate::body::flag(Some(v))) {
        let ph = sql.param(published);
        sql.and(format!("e.published = {ph}"));
    }
    let info = pipe_terms(p.get("eventinfo"));
    if !info.is_empty() {
        sql.match_terms(&["e.info"], &info, true);
    }
    for (key, column) in [("threat_level_id", "e.threat_level_id"), ("threatlevel", "e.threat_level_id"), ("analysis", "e.analysis"), ("distribution", "e.distribution")] {
        let t = pipe_terms(p.get(key));
        let values: Vec<i16> = t.or.iter().filter_map(|s| s.trim().parse().ok()).collect();
        if !values.is_empty() {
            let ph = sql.param(values);
            sql.and(format!("{column} = ANY({ph})"));
        }
        let not: Vec<i16> = t.not.iter().filter_map(|s| s.trim().parse().ok()).collect();
        if !not.is_empty() {
            let ph = sql.param(not);
            sql.and(format!("NOT ({column} = ANY({ph}))"));
        }
    }
    let orgs = pipe_terms(p.get("org"));
    for (list, negate) in [(&orgs.or, false), (&orgs.not, true)] {
        if list.is_empty() {
            continue;
        }
        let ph = sql.param(list.iter().map(|s| s.trim().to_lowercase()).collect::<Vec<_>>());
        let exists = format!(
            "EXISTS (SELECT 1 FROM rm.organisations og WHERE og.id = e.orgc_id AND (og.id::text = ANY({ph}) OR lower(og.name) = ANY({ph}) OR og.uuid::text = ANY({ph})))"
        );
        sql.and(if negate { format!("NOT {exists}") } else { exists });
    }
}

fn sharing_group_ids(p: &Params) -> Option<(Vec<i64>, Vec<i64>)> {
    let t = pipe_terms(p.any(&["sharinggroup", "sharing_group_id"]));
    if t.is_empty() {
        return None;
    }
    let parse = |v: &Vec<String>| v.iter().filter_map(|s| s.trim().parse::<i64>().ok()).collect::<Vec<i64>>();
    Some((parse(&t.or), parse(&t.not)))
}

/// `sharinggroup` on Events: the Event's own sharing group.
pub fn event_sharing_group(sql: &mut Sql, p: &Params) {
    if let Some((yes, no)) = sharing_group_ids(p) {
        if !yes.is_empty() {
            let ph = sql.param(yes);
            sql.and(format!("(e.distribution = 4 AND e.sharing_group_id = ANY({ph}))"));
        }
        if !no.is_empty() {
            let ph = sql.param(no);
            sql.and(format!("NOT (e.distribution = 4 AND e.sharing_group_id = ANY({ph}))"));
        }
    }
}

/// `sharinggroup` on attributes: their own group, or the Event's when they inherit.
fn attribute_sharing_group(sql: &mut Sql, p: &Params, a: &str) {
    if let Some((yes, no)) = sharing_group_ids(p) {
        let effective = |ph: &str| {
            format!("(({a}.distribution = 4 AND {a}.sharing_group_id = ANY({ph})) OR ({a}.distribution = 5 AND e.distribution = 4 AND e.sharing_group_id = ANY({ph})))")
        };
        if !yes.is_empty() {
            let ph = sql.param(yes);
            sql.and(effective(&ph));
        }
        if !no.is_empty() {
            let ph = sql.param(no);
            sql.and(format!("NOT {}", effective(&ph)));
        }
    }
}

/// One value term against an attribute's value: either half, or the whole `a|b` of a composite.
/// Exact terms use the `lower(value1)` / `lower(value2)` indexes.
fn value_term(sql: &mut Sql, a: &str, term: &str) -> String {
    let v = term.to_lowercase();
    if v.contains('%') {
        let ph = sql.param(v);
        return format!("(lower({a}.value1) LIKE {ph} OR ({a}.value2 <> '' AND lower({a}.value2) LIKE {ph}) OR ({a}.value2 <> '' AND lower({a}.value1 || '|' || {a}.value2) LIKE {ph}))");
    }
    let ph = sql.param(v.clone());
    let mut parts = vec![format!("lower({a}.value1) = {ph}"), format!("({a}.value2 <> '' AND lower({a}.value2) = {ph})")];
    if let Some((left, right)) = v.split_once('|') {
        let (l, r) = (sql.param(left.to_string()), sql.param(right.to_string()));
        parts.push(format!("(lower({a}.value1) = {l} AND lower({a}.value2) = {r})"));
    }
    format!("({})", parts.join(" OR "))
}

fn terms_condition(sql: &mut Sql, t: &Terms, mut one: impl FnMut(&mut Sql, &str) -> String) {
    if !t.or.is_empty() {
        let parts: Vec<String> = t.or.iter().map(|v| one(sql, v)).collect();
        sql.and(format!("({})", parts.join(" OR ")));
    }
    for v in &t.and {
        let c = one(sql, v);
        sql.and(c);
    }
    for v in &t.not {
        let c = one(sql, v);
        sql.and(format!("NOT {c}"));
    }
}

/// The search-all term: `searchall`/`quickFilter` as text, or `value` when `searchall` is just on.
fn search_all_term(p: &Params) -> Option<String> {
    let raw = p.any(&["searchall", "quickFilter", "quickfilter"])?;
    match raw {
        Value::Bool(true) => p.text("value"),
        Value::Bool(false) => None,
        Value::Number(n) if n.as_i64() == Some(1) => p.text("value"),
        Value::Number(_) => None,
        other => {
            let s = crate::body::text(Some(other))?.trim().to_string();
            match s.to_ascii_lowercase().as_str() {
                "" | "0" | "false" => None,
                "1" | "true" => p.text("value"),
                _ => Some(s),
            }
        }
    }
}

/// Conditions on an attribute `a` (its object joined as `o`) from attribute fields. Used for the
/// attribute scope directly and, inside `EXISTS`, for the Event scope.
/// `scope` decides what `timestamp` and `uuid` mean; `searchall_here` whether a search-all term is
/// matched on the attribute (Event-scope JSON matches it at the Event level instead).
fn attribute_field_conditions(sql: &mut Sql, p: &Params, now: i64, (a, o): (&str, &str), scope: Scope, searchall_here: bool) {
    let searchall = search_all_term(p).filter(|_| searchall_here);
    let value_replaced = search_all_term(p).is_some();
    if !value_replaced {
        let values = filters::terms(p.get("value"));
        if !values.is_empty() {
            terms_condition(sql, &values, |sql, v| value_term(sql, a, v));
        }
    }
    for (key, column) in [("value1", "value1"), ("value2", "value2")] {
        let t = filters::terms(p.get(key));
        if !t.is_empty() {
            sql.match_terms(&[&format!("{a}.{column}")], &t, true);
        }
    }
    let mut types = filters::terms(p.get("type"));
    // MISP: searching e-mail sources or destinations also finds the plain `email` type.
    if types.or.iter().any(|t| t == "email-src" || t == "email-dst") && !types.or.iter().any(|t| t == "email") {
        types.or.push("email".into());
    }
    for (t, column) in [(types, format!("{a}.type")), (filters::terms(p.get("category")), format!("{a}.category")), (filters::terms(p.get("object_relation")), format!("{a}.object_relation")), (filters::terms(p.get("comment")), format!("{a}.comment"))] {
        if !t.is_empty() {
            sql.match_terms(&[&column], &t, column.ends_with("comment"));
        }
    }
    if let Some(to_ids) = to_ids_filter(p) {
        let ph = sql.param(to_ids);
        sql.and(format!("{a}.to_ids = {ph}"));
    }
    if scope == Scope::Attribute {
        time_condition(sql, &format!("{a}.timestamp"), p.get("timestamp"), now, 1);
        let uuids = pipe_terms(p.get("uuid"));
        if !uuids.or.is_empty() {
            let ph = sql.param(uuids.or.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect::<Vec<_>>());
            sql.and(format!("{a}.uuid = ANY({ph})"));
        }
    }
    time_condition(sql, &format!("{a}.timestamp"), p.get("attribute_timestamp"), now, 1);
    time_condition(sql, &format!("{a}.first_seen"), p.get("first_seen"), now, 1_000_000);
    time_condition(sql, &format!("{a}.last_seen"), p.get("last_seen"), now, 1_000_000);
    let names = filters::terms(p.get("object_name"));
    if !names.is_empty() {
        sql.match_terms(&[&format!("{o}.name")], &names, true);
    }
    if let Some(term) = searchall {
        let v = term.to_lowercase();
        let ph = sql.param(if v.contains('%') { v } else { format!("%{v}%") });
        let tag = format!("EXISTS (SELECT 1 FROM rm.attribute_tags at JOIN rm.tags t ON t.id = at.tag_id WHERE at.attribute_id = {a}.id AND lower(t.name) LIKE {ph})");
        sql.and(format!("(lower({a}.value1) LIKE {ph} OR lower({a}.value2) LIKE {ph} OR lower({a}.comment) LIKE {ph} OR {tag})"));
    }
}

/// Which attributes the request wants in the first place (`deleted`): (include deleted, only deleted).
pub fn deleted_mode(p: &Params) -> (bool, bool) {
    match p.get("deleted") {
        Some(Value::Array(a)) if a.len() > 1 => (true, false),
        Some(Value::Array(a)) => (false, a.first().and_then(|v| crate::body::flag(Some(v))).unwrap_or(false)),
        Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("only") => (false, true),
            _ => (false, crate::body::flag(Some(v)).unwrap_or(false)),
        },
        None => (false, false),
    }
}

/// `deleted` on attribute `a` of Event `e`: deleted attributes only for the owner org (and site
/// admins), as in MISP.
fn deleted_condition(sql: &mut Sql, p: &Params, viewer: &Viewer, a: &str) {
    let (deleted, only_deleted) = deleted_mode(p);
    let owner_only = if viewer.site_admin || !(deleted || only_deleted) { String::new() } else { format!(" AND e.org_id = {}", sql.param(viewer.org_id)) };
    if only_deleted {
        sql.and(format!("({a}.deleted{owner_only})"));
    } else if deleted {
        sql.and(format!("(NOT {a}.deleted OR ({a}.deleted{owner_only}))"));
    } else {
        sql.and(format!("NOT {a}.deleted"));
    }
}

/// The tags named by `tags`/`tag`, and `event_tags` (Event tags only).
fn tag_terms(p: &Params) -> (Terms, Terms) {
    (filters::terms(p.any(&["tags", "tag"])), filters::terms(p.get("event_tags")))
}

/// Attribute rows `a` (joined with `e` and `o`) a search returns in the line formats and in the
/// attribute scope: the access rule, then every filter. In the Event scope these are the visible
/// attributes of the matching Events, filtered only as MISP filters the attributes inside returned
/// Events (`to_ids`, `deleted`, `tags` NOT).
pub fn attribute_rows(sql: &mut Sql, p: &Params, viewer: &Viewer, settings: &AccessSettings, scope: Scope, now: i64) {
    acl_sql::attributes(sql, viewer, settings);
    sql.and("(o.id IS NULL OR NOT o.deleted OR a.deleted)".into());
    if scope == Scope::Event {
        events(sql, p, viewer, settings, now);
        if let Some(to_ids) = to_ids_filter(p) {
            let ph = sql.param(to_ids);
            sql.and(format!("a.to_ids = {ph}"));
        }
        deleted_condition(sql, p, viewer, "a");
        let blocked = tag_terms(p).0.not;
        if !blocked.is_empty() {
            let m = tag_match(sql, &blocked);
            sql.and(format!("NOT {}", attribute_tagged(&m, "a")));
        }
        return;
    }
    event_conditions(sql, p, now);
    attribute_field_conditions(sql, p, now, ("a", "o"), scope, true);
    attribute_sharing_group(sql, p, "a");
    deleted_condition(sql, p, viewer, "a");
    let (tags, event_tags) = tag_terms(p);
    if !tags.is_empty() {
        terms_condition(sql, &tags, |sql, name| {
            let m = tag_match(sql, &[name.to_string()]);
            format!("({} OR {})", attribute_tagged(&m, "a"), event_tagged(&m, "e"))
        });
    }
    if !event_tags.is_empty() {
        terms_condition(sql, &event_tags, |sql, name| {
            let m = tag_match(sql, &[name.to_string()]);
            event_tagged(&m, "e")
        });
    }
}

/// `timestamp` on the Event (the index and the Event scope).
pub fn event_timestamp(sql: &mut Sql, p: &Params, now: i64) {
    time_condition(sql, "e.timestamp", p.get("timestamp"), now, 1);
}

/// Event scope `uuid`: the Event's uuid, or an Event holding an attribute with it.
fn event_uuid(sql: &mut Sql, p: &Params) {
    let uuids = pipe_terms(p.get("uuid"));
    if !uuids.or.is_empty() {
        let ph = sql.param(uuids.or.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect::<Vec<_>>());
        sql.and(format!("(e.uuid = ANY({ph}) OR EXISTS (SELECT 1 FROM rm.attributes x WHERE x.event_id = e.id AND x.uuid = ANY({ph})))"));
    }
}

/// Events `e` a search returns in the Event scope (JSON, STIX): the access rule, the Event's own
/// filters, and — when attribute filters are given — at least one visible attribute matching them.
pub fn events(sql: &mut Sql, p: &Params, viewer: &Viewer, settings: &AccessSettings, now: i64) {
    acl_sql::events(sql, viewer, settings, "e");
    event_conditions(sql, p, now);
    event_sharing_group(sql, p);
    time_condition(sql, "e.timestamp", p.get("timestamp"), now, 1);
    event_uuid(sql, p);
    let attribute = nested(sql, |s| {
        attribute_field_conditions(s, p, now, ("x", "xo"), Scope::Event, false);
    });
    if !attribute.is_empty() {
        let acl = nested(sql, |s| {
            acl_sql::attributes_as(s, viewer, settings, "e", "x", "xo");
            deleted_condition(s, p, viewer, "x");
        });
        let acl = if acl.is_empty() { "TRUE".to_string() } else { acl };
        sql.and(format!(
            "EXISTS (SELECT 1 FROM rm.attributes x LEFT JOIN rm.objects xo ON xo.id = x.object_id WHERE x.event_id = e.id AND {acl} AND {attribute})"
        ));
    }
    let (tags, event_tags) = tag_terms(p);
    let visible_attribute_tagged = |sql: &mut Sql, m: &str| {
        let acl = nested(sql, |s| {
            acl_sql::attributes_as(s, viewer, settings, "e", "x", "xo");
        });
        let acl = if acl.is_empty() { "TRUE".to_string() } else { acl };
        format!(
            "EXISTS (SELECT 1 FROM rm.attribute_tags at JOIN rm.tags t ON t.id = at.tag_id JOIN rm.attributes x ON x.id = at.attribute_id \
             LEFT JOIN rm.objects xo ON xo.id = x.object_id WHERE at.event_id = e.id AND NOT x.deleted AND {m} AND {acl})"
        )
    };
    if !tags.or.is_empty() {
        let m = tag_match(sql, &tags.or);
        let any_attribute = visible_attribute_tagged(sql, &m);
        sql.and(format!("({} OR {any_attribute})", event_tagged(&m, "e")));
    }
    for name in &tags.and {
        let m = tag_match(sql, std::slice::from_ref(name));
        let any_attribute = visible_attribute_tagged(sql, &m);
        sql.and(format!("({} OR {any_attribute})", event_tagged(&m, "e")));
    }
    if !tags.not.is_empty() {
        let m = tag_match(sql, &tags.not);
        sql.and(format!("NOT {}", event_tagged(&m, "e")));
    }
    if !event_tags.is_empty() {
        terms_condition(sql, &event_tags, |sql, name| {
            let m = tag_match(sql, &[name.to_string()]);
            event_tagged(&m, "e")
        });
    }
    if let Some(term) = search_all_term(p) {
        let v = term.to_lowercase();
        let ph = sql.param(if v.contains('%') { v } else { format!("%{v}%") });
        let inner = nested(sql, |s| {
            acl_sql::attributes_as(s, viewer, settings, "e", "x", "xo");
        });
        let acl = if inner.is_empty() { "TRUE".to_string() } else { inner };
        sql.and(format!(
            "(lower(e.info) LIKE {ph} OR EXISTS (SELECT 1 FROM rm.attributes x LEFT JOIN rm.objects xo ON xo.id = x.object_id WHERE x.event_id = e.id \
             AND NOT x.deleted AND {acl} AND (lower(x.value1) LIKE {ph} OR lower(x.value2) LIKE {ph} OR lower(x.comment) LIKE {ph})) \
             OR EXISTS (SELECT 1 FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id WHERE et.event_id = e.id AND lower(t.name) LIKE {ph}))"
        ));
    }
}

/// Tags whose attributes an Event-scope search leaves out of the Events it returns (`tags` NOT,
/// MISP's `blockedAttributeTags`), lower-cased.
pub fn blocked_attribute_tags(p: &Params) -> Vec<String> {
    tag_terms(p).0.not.iter().map(|t| t.trim().to_lowercase()).collect()
}

/// `to_ids`: 1, 0 or `"exclude"` (= 0); both values (or neither) mean no filter. In the Event scope
/// MISP also applies it to the attributes inside returned Events.
pub fn to_ids_filter(p: &Params) -> Option<bool> {
    let t = filters::terms(p.get("to_ids"));
    let wanted: Vec<bool> = t.or.iter().filter_map(|s| match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" | "exclude" => Some(false),
        _ => None,
    }).collect();
    (wanted.len() == 1).then(|| wanted[0])
}
