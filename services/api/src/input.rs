//! MISP's loose Event/Attribute/Object JSON → domain drafts. Everything the wire can say is read here
//! (wrappers, numeric strings, flags, dates, `first_seen` formats, tags by name); nothing else in the
//! API touches raw request JSON of these entities.

use crate::body::{flag, int, text};
use crate::error::ApiError;
use cairn_domain::event::{AttributeDraft, EventDraft, ObjectDraft, ReferenceDraft, TagDraft, TagInfo};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Tags resolved by lower-cased name.
pub type TagMap = HashMap<String, TagInfo>;

fn bad(field: &str, reason: &str) -> ApiError {
    ApiError::SaveFailed { name: "Could not save".into(), errors: json!({ field: [reason] }) }
}

/// A uuid member: the client's (validated) or a fresh one.
pub fn uuid_or_new(v: &Value) -> Result<Uuid, ApiError> {
    match v.get("uuid").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Uuid::parse_str(s).map_err(|_| bad("uuid", "Invalid UUID.")),
        None => Ok(Uuid::new_v4()),
    }
}

fn small(v: Option<&Value>, field: &str) -> Result<Option<u8>, ApiError> {
    match int(v) {
        None => match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(_) => Err(bad(field, "Invalid value.")),
        },
        Some(i) => u8::try_from(i).map(Some).map_err(|_| bad(field, "Invalid value.")),
    }
}

/// `first_seen` / `last_seen`: ISO-8601 (with or without offset and fraction), a date, or epoch seconds
/// (float). Returns microseconds; `Some(None)` when explicitly null/empty.
pub fn seen(v: Option<&Value>, field: &str) -> Result<Option<Option<i64>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let micros = match v {
        Value::Null => return Ok(Some(None)),
        Value::Number(n) => n.as_f64().map(|f| if f.abs() < 1e11 { (f * 1e6).round() as i64 } else { f as i64 }),
        Value::String(s) if s.trim().is_empty() => return Ok(Some(None)),
        Value::String(s) => parse_time_micros(s.trim()),
        _ => None,
    };
    micros.map(|m| Some(Some(m))).ok_or_else(|| bad(field, "Invalid date or time."))
}

/// Parses the time formats MISP accepts into microseconds since the epoch.
pub fn parse_time_micros(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
            return Some(t.timestamp_micros());
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
        }
    }
    s.parse::<f64>().ok().map(|f| if f.abs() < 1e11 { (f * 1e6).round() as i64 } else { f as i64 })
}

/// An Event `date`: `YYYY-MM-DD` (a full timestamp keeps its date; epoch seconds are converted).
pub fn event_date(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let s = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().and_then(|f| chrono::DateTime::from_timestamp(f as i64, 0)).map(|t| t.format("%Y-%m-%d").to_string()),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .ok()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .or_else(|| parse_time_micros(s).and_then(chrono::DateTime::from_timestamp_micros).map(|t| t.format("%Y-%m-%d").to_string()))
        }
        _ => None,
    };
    s.map(Some).ok_or_else(|| bad("date", "Invalid date (expected YYYY-MM-DD)."))
}

fn analysis(v: Option<&Value>) -> Result<Option<u8>, ApiError> {
    if let Some(Value::String(s)) = v {
        match s.trim().to_ascii_lowercase().as_str() {
            "initial" => return Ok(Some(0)),
            "ongoing" => return Ok(Some(1)),
            "completed" => return Ok(Some(2)),
            _ => {}
        }
    }
    small(v, "analysis")
}

fn items<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    match v.get(key) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

/// A tag mention: `{"name": …}`, `{"Tag": {"name": …}}` (EventTag/AttributeTag shapes) or a plain string.
struct TagMention {
    name: String,
    local: bool,
    relationship_type: Option<String>,
    deleted: bool,
}

fn tag_mentions(v: &Value) -> Vec<TagMention> {
    let mut out = Vec::new();
    for key in ["Tag", "EventTag", "AttributeTag"] {
        for t in items(v, key) {
            let (inner, outer) = match t.get("Tag") {
                Some(inner) if inner.is_object() => (inner, t),
                _ => (t, t),
            };
            let name = match inner {
                Value::String(s) => Some(s.clone()),
                _ => text(inner.get("name")),
            };
            let Some(name) = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else { continue };
            out.push(TagMention {
                name,
                local: flag(outer.get("local")).or_else(|| flag(inner.get("local"))).unwrap_or(false),
                relationship_type: text(outer.get("relationship_type")).filter(|r| !r.is_empty()),
                deleted: flag(outer.get("deleted")).or_else(|| flag(inner.get("deleted"))).unwrap_or(false),
            });
        }
    }
    out
}

/// Every tag name an Event/Attribute/Object payload mentions (to resolve before building drafts).
pub fn tag_names(v: &Value, out: &mut Vec<String>) {
    out.extend(tag_mentions(v).into_iter().map(|m| m.name));
    for key in ["Attribute", "Object", "ShadowAttribute"] {
        for item in items(v, key) {
            tag_names(item, out);
        }
    }
}

fn tag_drafts(v: &Value, tags: &TagMap) -> Vec<TagDraft> {
    tag_mentions(v)
        .into_iter()
        .filter_map(|m| {
            tags.get(&m.name.to_lowercase()).map(|tag| TagDraft {
                tag: tag.clone(),
                local: m.local,
                relationship_type: m.relationship_type,
                deleted: m.deleted,
            })
        })
        .collect()
}

/// `value`, or `value1` (+ `|value2`).
fn attribute_value(v: &Value) -> Option<String> {
    if let Some(value) = text(v.get("value")) {
        return Some(value);
    }
    let v1 = text(v.get("value1"))?;
    match text(v.get("value2")).filter(|s| !s.is_empty()) {
        Some(v2) => Some(format!("{v1}|{v2}")),
        None => Some(v1),
    }
}

/// # Errors
/// Malformed uuids, numbers or dates (400-class MISP saveFail).
pub fn attribute_draft(v: &Value, tags: &TagMap) -> Result<AttributeDraft, ApiError> {
    let v = crate::body::unwrap(v, "Attribute");
    if !v.is_object() {
        return Err(bad("Attribute", "An attribute must be a JSON object."));
    }
    Ok(AttributeDraft {
        uuid: uuid_or_new(v)?,
        id: int(v.get("id")),
        attr_type: text(v.get("type")),
        category: text(v.get("category")),
        value: attribute_value(v),
        to_ids: flag(v.get("to_ids")),
        comment: text(v.get("comment")),
        distribution: small(v.get("distribution"), "distribution")?,
        sharing_group_id: int(v.get("sharing_group_id")),
        disable_correlation: flag(v.get("disable_correlation")),
        first_seen: seen(v.get("first_seen"), "first_seen")?,
        last_seen: seen(v.get("last_seen"), "last_seen")?,
        object_relation: text(v.get("object_relation")).filter(|r| !r.is_empty()),
        deleted: flag(v.get("deleted")),
        timestamp: int(v.get("timestamp")),
        tags: tag_drafts(v, tags),
    })
}

/// # Errors
/// As [`attribute_draft`].
pub fn reference_draft(v: &Value) -> Result<ReferenceDraft, ApiError> {
    let v = crate::body::unwrap(v, "ObjectReference");
    let uuid_of = |key: &str| -> Result<Option<Uuid>, ApiError> {
        match v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Uuid::parse_str(s).map(Some).map_err(|_| bad(key, "Invalid UUID.")),
            None => Ok(None),
        }
    };
    Ok(ReferenceDraft {
        uuid: uuid_or_new(v)?,
        object_uuid: uuid_of("object_uuid")?,
        referenced_uuid: uuid_of("referenced_uuid")?,
        relationship_type: text(v.get("relationship_type")),
        comment: text(v.get("comment")),
        deleted: flag(v.get("deleted")),
        timestamp: int(v.get("timestamp")),
    })
}

/// # Errors
/// As [`attribute_draft`].
pub fn object_draft(v: &Value, tags: &TagMap) -> Result<ObjectDraft, ApiError> {
    let v = crate::body::unwrap(v, "Object");
    if !v.is_object() {
        return Err(bad("Object", "An object must be a JSON object."));
    }
    let template_uuid = match v.get("template_uuid").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| bad("template_uuid", "Invalid UUID."))?),
        None => None,
    };
    Ok(ObjectDraft {
        uuid: uuid_or_new(v)?,
        id: int(v.get("id")),
        name: text(v.get("name")),
        meta_category: text(v.get("meta-category")).or_else(|| text(v.get("meta_category"))),
        description: text(v.get("description")),
        template_uuid,
        template_version: text(v.get("template_version")),
        comment: text(v.get("comment")),
        distribution: small(v.get("distribution"), "distribution")?,
        sharing_group_id: int(v.get("sharing_group_id")),
        first_seen: seen(v.get("first_seen"), "first_seen")?,
        last_seen: seen(v.get("last_seen"), "last_seen")?,
        deleted: flag(v.get("deleted")),
        timestamp: int(v.get("timestamp")),
        attributes: items(v, "Attribute").into_iter().map(|a| attribute_draft(a, tags)).collect::<Result<_, _>>()?,
        references: items(v, "ObjectReference").into_iter().map(reference_draft).collect::<Result<_, _>>()?,
    })
}

/// The Event object of a request body (`{"Event": …}`, `{"request": …}`, or bare).
pub fn event_body(v: &Value) -> &Value {
    let v = crate::body::unwrap(v, "request");
    crate::body::unwrap(v, "Event")
}

/// # Errors
/// As [`attribute_draft`].
pub fn event_draft(v: &Value, tags: &TagMap) -> Result<EventDraft, ApiError> {
    let v = event_body(v);
    if !v.is_object() {
        return Err(bad("Event", "An Event must be a JSON object."));
    }
    Ok(EventDraft {
        uuid: uuid_or_new(v)?,
        info: text(v.get("info")),
        date: event_date(v.get("date"))?,
        threat_level_id: small(v.get("threat_level_id"), "threat_level_id")?,
        analysis: analysis(v.get("analysis"))?,
        distribution: small(v.get("distribution"), "distribution")?,
        sharing_group_id: int(v.get("sharing_group_id")),
        published: flag(v.get("published")),
        disable_correlation: flag(v.get("disable_correlation")),
        extends_uuid: text(v.get("extends_uuid")).map(|s| s.trim().to_lowercase()),
        timestamp: int(v.get("timestamp")),
        publish_timestamp: int(v.get("publish_timestamp")),
        orgc_id: None,
        locked: flag(v.get("locked")),
        attributes: items(v, "Attribute").into_iter().map(|a| attribute_draft(a, tags)).collect::<Result<_, _>>()?,
        objects: items(v, "Object").into_iter().map(|o| object_draft(o, tags)).collect::<Result<_, _>>()?,
        tags: tag_drafts(v, tags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_values_in_every_format_pymisp_sends() {
        assert_eq!(parse_time_micros("2020-01-04T12:30:34.323242+08:00"), Some(1_578_112_234_323_242));
        assert_eq!(parse_time_micros("2020-01-03T00:00:00+01:00"), Some(1_578_006_000_000_000));
        assert_eq!(parse_time_micros("2020-01-03"), Some(1_578_009_600_000_000));
        assert_eq!(parse_time_micros("1580147259.268763"), Some(1_580_147_259_268_763));
        assert_eq!(seen(Some(&json!(1580147300)), "x").expect("ok"), Some(Some(1_580_147_300_000_000)));
        assert!(seen(Some(&json!("not a date")), "x").is_err());
        assert_eq!(seen(Some(&Value::Null), "x").expect("ok"), Some(None));
    }

    #[test]
    fn event_dates_and_analysis_words() {
        assert_eq!(event_date(Some(&json!("2018-09-01"))).expect("ok").as_deref(), Some("2018-09-01"));
        assert_eq!(event_date(Some(&json!("2018-09-01T10:00:00+02:00"))).expect("ok").as_deref(), Some("2018-09-01"));
        assert!(event_date(Some(&json!("Aug 18"))).is_err());
        assert_eq!(analysis(Some(&json!("Completed"))).expect("ok"), Some(2));
        assert_eq!(analysis(Some(&json!("1"))).expect("ok"), Some(1));
    }

    #[test]
    fn drafts_read_wrapped_and_loose_payloads() {
        let mut tags = TagMap::new();
        tags.insert("tlp:green".into(), TagInfo { id: 3, name: "tlp:green".into(), org_id: 0, user_id: 0, local_only: false });
        let body = json!({"Event": {"info": "x", "distribution": "0", "threat_level_id": 3,
            "Tag": [{"name": "TLP:GREEN"}, {"name": "unknown"}],
            "Attribute": [{"type": "ip-dst", "value1": "1.2.3.4", "value2": "80", "to_ids": "1", "deleted": false}],
            "Object": [{"name": "file", "meta-category": "file", "Attribute": [{"type": "filename", "value": "a", "object_relation": "filename"}]}]}});
        let d = event_draft(&body, &tags).expect("parses");
        assert_eq!(d.distribution, Some(0));
        assert_eq!(d.tags.len(), 1, "unknown tags are dropped");
        assert_eq!(d.attributes[0].value.as_deref(), Some("1.2.3.4|80"));
        assert_eq!(d.attributes[0].to_ids, Some(true));
        assert_eq!(d.objects[0].meta_category.as_deref(), Some("file"));
        assert!(event_draft(&json!({"uuid": "not-a-uuid"}), &tags).is_err());
        let mut names = Vec::new();
        tag_names(&body["Event"], &mut names);
        assert_eq!(names, vec!["TLP:GREEN", "unknown"]);
    }
}
