//! Property tests of the parsers hostile requests reach in the API: restSearch filters turned into SQL
//! and the MISP JSON reader. Any JSON answers (a query, a draft or a refusal) without panicking, and the
//! SQL never names a parameter it does not bind. `PROPTEST_CASES` sets the number of cases.

use crate::filters::Sql;
use crate::input::{self, TagMap};
use crate::search::{Params, Scope, query};
use cairn_domain::acl::{AccessSettings, Viewer};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,24}".prop_map(Value::String),
        "(-?[0-9]{1,12}[smhdw]?|[0-9]{4}-[0-9]{2}-[0-9]{2}|!?[a-z%:=\"|]{0,12})".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_|]{1,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// restSearch's filter names (MISP's), with hostile values.
const KEYS: &[&str] = &[
    "value", "type", "category", "org", "tags", "event_tags", "eventid", "uuid", "timestamp", "publish_timestamp", "last", "from",
    "to", "date", "limit", "page", "to_ids", "deleted", "published", "searchall", "object_name", "object_relation", "sharinggroup",
    "threat_level_id", "analysis", "distribution", "includeEventTags", "enforceWarninglist", "returnFormat", "attribute_timestamp",
    "event_timestamp", "first_seen", "last_seen", "quickFilter", "eventinfo", "includeDecayScore", "withAttachments", "metadata",
    "includeProposals", "requested_attributes", "order", "sort", "direction", "minimal", "hasproposal",
];

/// The largest `$n` a condition names.
fn max_placeholder(sql: &Sql) -> usize {
    let mut max = 0;
    for c in &sql.conditions {
        let bytes = c.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let digits: String = c[i + 1..].chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<usize>() {
                    max = max.max(n);
                }
                i += 1 + digits.len();
            } else {
                i += 1;
            }
        }
    }
    max
}

proptest! {
    #[test]
    fn rest_search_filters_build_bound_sql_for_any_json(filters in prop::collection::btree_map(prop::sample::select(KEYS), json_value(), 0..8)) {
        let params = Params::from_map(filters.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<String, Value>>());
        let viewer = Viewer { org_id: 2, site_admin: false, sharing_groups: [1].into_iter().collect() };
        let settings = AccessSettings::default();
        for scope in [Scope::Event, Scope::Attribute, Scope::Object] {
            let mut sql = Sql::default();
            query::attribute_rows(&mut sql, &params, &viewer, &settings, scope, 1_700_000_000);
            prop_assert!(max_placeholder(&sql) <= sql.params.len(), "{:?} names ${} with {} bound", sql.conditions, max_placeholder(&sql), sql.params.len());
        }
        let mut sql = Sql::default();
        query::events(&mut sql, &params, &viewer, &settings, 1_700_000_000);
        prop_assert!(max_placeholder(&sql) <= sql.params.len());
    }

    #[test]
    fn the_misp_json_reader_answers_any_json(v in json_value()) {
        let tags = TagMap::new();
        let _ = input::event_draft(&v, &tags);
        let _ = input::attribute_draft(&v, &tags);
        let _ = input::object_draft(&v, &tags);
        let mut names = Vec::new();
        input::tag_names(&v, &mut names);
    }

    #[test]
    fn the_misp_json_reader_answers_event_shaped_json(info in json_value(), attributes in prop::collection::vec(json_value(), 0..6),
                                                      fields in prop::collection::btree_map(prop::sample::select(&["type", "value", "category", "to_ids", "distribution", "sharing_group_id", "first_seen", "last_seen", "timestamp", "uuid", "Tag", "deleted", "object_relation"][..]), json_value(), 0..8)) {
        let attribute: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let event = json!({"Event": {"info": info, "date": attributes.first().cloned().unwrap_or(Value::Null), "Attribute": [attribute.clone()],
                                     "Object": [{"name": "file", "Attribute": attributes, "ObjectReference": [attribute]}]}});
        let tags = TagMap::new();
        let _ = input::event_draft(&event, &tags);
    }
}
