//! The MISP feed format (misp_features.md §9.2): an Event reduced to the feed fields, its
//! `manifest.json` entry and its `hashes.csv` lines. Input is the Event as the `public` audience sees
//! it (MISP JSON, as restSearch renders it).

use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

const EVENT_FIELDS: &[&str] =
    &["uuid", "info", "threat_level_id", "analysis", "timestamp", "publish_timestamp", "published", "date", "extends_uuid", "protected"];
const ATTRIBUTE_FIELDS: &[&str] = &[
    "uuid",
    "value",
    "category",
    "type",
    "comment",
    "data",
    "deleted",
    "timestamp",
    "to_ids",
    "disable_correlation",
    "first_seen",
    "last_seen",
    "object_relation",
];
const OBJECT_FIELDS: &[&str] = &[
    "name",
    "meta-category",
    "description",
    "template_uuid",
    "template_version",
    "uuid",
    "timestamp",
    "comment",
    "first_seen",
    "last_seen",
    "deleted",
];
const REFERENCE_FIELDS: &[&str] = &["uuid", "timestamp", "relationship_type", "comment", "object_uuid", "referenced_uuid"];
const TAG_FIELDS: &[&str] = &["name", "colour", "local", "relationship_type"];

fn pick(v: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        if let Some(x) = v.get(*f).filter(|x| !x.is_null()) {
            out.insert((*f).to_string(), x.clone());
        }
    }
    out
}

/// Shareable tags only: local tags never leave the instance.
fn tags(v: &Value) -> Vec<Value> {
    v.get("Tag")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter(|t| !t.get("local").is_some_and(|l| l.as_bool() == Some(true) || l.as_str() == Some("1")))
                .filter(|t| t.get("exportable").is_none_or(|e| e.as_bool() != Some(false)))
                .map(|t| Value::Object(pick(t, TAG_FIELDS)))
                .collect()
        })
        .unwrap_or_default()
}

fn attribute(a: &Value) -> Value {
    let mut out = pick(a, ATTRIBUTE_FIELDS);
    let t = tags(a);
    if !t.is_empty() {
        out.insert("Tag".into(), Value::Array(t));
    }
    Value::Object(out)
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// The Event (`{"Event": {...}}` or the inner object) reduced to the feed fields.
pub fn feed_event(doc: &Value) -> Value {
    let e = doc.get("Event").unwrap_or(doc);
    let mut out = pick(e, EVENT_FIELDS);
    if let Some(orgc) = e.get("Orgc") {
        out.insert("Orgc".into(), Value::Object(pick(orgc, &["name", "uuid"])));
    }
    out.insert("Tag".into(), Value::Array(tags(e)));
    out.insert("Attribute".into(), Value::Array(list(e, "Attribute").map(attribute).collect()));
    let objects: Vec<Value> = list(e, "Object")
        .map(|o| {
            let mut m = pick(o, OBJECT_FIELDS);
            m.insert("Attribute".into(), Value::Array(list(o, "Attribute").map(attribute).collect()));
            m.insert("ObjectReference".into(), Value::Array(list(o, "ObjectReference").map(|r| Value::Object(pick(r, REFERENCE_FIELDS))).collect()));
            Value::Object(m)
        })
        .collect();
    out.insert("Object".into(), Value::Array(objects));
    json!({"Event": Value::Object(out)})
}

/// The Event's `manifest.json` entry (keyed by its uuid in the manifest).
pub fn manifest_entry(feed: &Value) -> Value {
    let e = &feed["Event"];
    let mut out = pick(e, &["info", "date", "analysis", "threat_level_id", "timestamp"]);
    out.insert("Orgc".into(), e.get("Orgc").cloned().unwrap_or(Value::Null));
    out.insert("Tag".into(), e.get("Tag").cloned().unwrap_or_else(|| json!([])));
    Value::Object(out)
}

/// `hashes.csv` for the Event: the md5 of every attribute value (composite values: of each part).
pub fn hashes(feed: &Value) -> Vec<String> {
    let e = &feed["Event"];
    let attributes = list(e, "Attribute").chain(list(e, "Object").flat_map(|o| list(o, "Attribute")));
    let mut out = Vec::new();
    for a in attributes {
        let Some(value) = a.get("value").and_then(Value::as_str) else { continue };
        let t = a.get("type").and_then(Value::as_str).unwrap_or_default();
        let parts: Vec<&str> = if cairn_domain::types::is_composite(t) { value.splitn(2, '|').collect() } else { vec![value] };
        for p in parts {
            out.push(hex::encode(Md5::digest(p.as_bytes())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_fields_only_and_local_tags_stay_home() {
        let doc = json!({"Event": {"id": "4", "uuid": "u", "info": "i", "org_id": "1", "distribution": "3", "published": true,
            "Orgc": {"id": "2", "name": "CERT", "uuid": "o"},
            "Tag": [{"name": "tlp:clear", "colour": "#fff", "local": false, "id": "9"}, {"name": "mine", "local": true}],
            "Attribute": [{"id": "7", "uuid": "a", "type": "ip-dst|port", "value": "1.2.3.4|80", "event_id": "4", "to_ids": true}],
            "Object": [{"id": "3", "uuid": "ob", "name": "file", "Attribute": [{"uuid": "b", "type": "md5", "value": "x", "object_relation": "md5"}],
                        "ObjectReference": [{"id": "1", "uuid": "r", "referenced_uuid": "a", "relationship_type": "rel"}]}]}});
        let f = feed_event(&doc);
        let e = &f["Event"];
        assert!(e.get("id").is_none() && e.get("org_id").is_none() && e.get("distribution").is_none());
        assert_eq!(e["Orgc"], json!({"name": "CERT", "uuid": "o"}));
        assert_eq!(e["Tag"], json!([{"name": "tlp:clear", "colour": "#fff", "local": false}]));
        assert_eq!(e["Attribute"][0], json!({"uuid": "a", "type": "ip-dst|port", "value": "1.2.3.4|80", "to_ids": true}));
        assert_eq!(e["Object"][0]["Attribute"][0]["object_relation"], "md5");
        assert!(e["Object"][0]["ObjectReference"][0].get("id").is_none());
        let h = hashes(&f);
        assert_eq!(h.len(), 3, "two halves of the composite and the object's md5");
        assert_eq!(h[0], hex::encode(Md5::digest(b"1.2.3.4")));
        assert_eq!(manifest_entry(&f)["Orgc"]["name"], "CERT");
    }
}
