//! What correlates (misp_features.md §6.1, engines.md §4.1): the keys an attribute contributes and
//! MISP's exclusion patterns. Matching is case-insensitive (as MISP on MySQL): a key is the lower-cased
//! value half.

use crate::event::Attribute;
use crate::types::{is_composite, is_port_composite};

/// MISP's `NON_CORRELATING_TYPES`.
pub const NON_CORRELATING_TYPES: &[&str] = &[
    "comment",
    "http-method",
    "aba-rtn",
    "gender",
    "counter",
    "integer",
    "float",
    "port",
    "nationality",
    "cortex",
    "boolean",
    "anonymised",
];

/// Types whose first half may take part in CIDR correlation.
pub const IP_TYPES: &[&str] = &["ip-src", "ip-dst", "ip-src|port", "ip-dst|port"];

pub fn correlates(attr_type: &str) -> bool {
    !NON_CORRELATING_TYPES.contains(&attr_type)
}

/// One correlating half of an attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// 1 = value1, 2 = value2.
    pub half: i16,
    pub key: String,
    /// The IP or CIDR text for CIDR correlation (first half of IP types only).
    pub ip: Option<String>,
}

/// The keys an attribute contributes: value1, and value2 for composites that are not port types.
pub fn keys(a: &Attribute) -> Vec<Key> {
    if !correlates(&a.attr_type) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2);
    if !a.value1.is_empty() {
        let ip = IP_TYPES.contains(&a.attr_type.as_str()).then(|| a.value1.clone());
        out.push(Key { half: 1, key: a.value1.to_lowercase(), ip });
    }
    if is_composite(&a.attr_type) && !is_port_composite(&a.attr_type) && !a.value2.is_empty() {
        out.push(Key { half: 2, key: a.value2.to_lowercase(), ip: None });
    }
    out
}

/// MISP's exclusion patterns: `%x%` contains, `%x` ends with, `x%` starts with, else exact
/// (case-insensitive).
pub fn excluded(pattern: &str, key: &str) -> bool {
    let p = pattern.to_lowercase();
    let (starts, ends) = (p.starts_with('%'), p.ends_with('%') && p.len() > 1);
    let core = p.trim_start_matches('%').trim_end_matches('%');
    match (starts, ends) {
        (true, true) => key.contains(core),
        (true, false) => key.ends_with(core),
        (false, true) => key.starts_with(core),
        (false, false) => key == p,
    }
}

/// The pattern as a SQL `LIKE` pattern (only MISP's leading/trailing `%` are wildcards).
pub fn like_pattern(pattern: &str) -> String {
    let p = pattern.to_lowercase();
    let starts = p.starts_with('%');
    let ends = p.ends_with('%') && p.len() > 1;
    let core = p.trim_start_matches('%').trim_end_matches('%');
    let escaped = core.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{}{escaped}{}", if starts { "%" } else { "" }, if ends { "%" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn attr(t: &str, v1: &str, v2: &str) -> Attribute {
        Attribute {
            id: 1,
            uuid: Uuid::nil(),
            event_id: 1,
            object_id: 0,
            object_relation: None,
            category: "Other".into(),
            attr_type: t.into(),
            value1: v1.into(),
            value2: v2.into(),
            to_ids: false,
            comment: String::new(),
            distribution: 5,
            sharing_group_id: 0,
            timestamp: 0,
            deleted: false,
            disable_correlation: false,
            first_seen: None,
            last_seen: None,
            tags: vec![],
        }
    }

    #[test]
    fn composites_correlate_on_both_halves_and_port_types_on_the_first() {
        let k = keys(&attr("filename|md5", "Evil.EXE", "d41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(k.iter().map(|x| x.key.as_str()).collect::<Vec<_>>(), vec!["evil.exe", "d41d8cd98f00b204e9800998ecf8427e"]);
        let k = keys(&attr("ip-dst|port", "1.2.3.4", "443"));
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].ip.as_deref(), Some("1.2.3.4"));
        assert!(keys(&attr("comment", "x", "")).is_empty());
        assert!(keys(&attr("port", "443", "")).is_empty());
        assert_eq!(keys(&attr("text", "Hello", "")).len(), 1, "text correlates");
    }

    #[test]
    fn exclusion_patterns_follow_misp() {
        assert!(excluded("%google%", "www.google.com"));
        assert!(excluded("%.local", "host.local") && !excluded("%.local", "host.localx"));
        assert!(excluded("10.%", "10.1.1.1") && !excluded("10.%", "110.1.1.1"));
        assert!(excluded("Exact", "exact") && !excluded("exact", "exactly"));
        assert_eq!(like_pattern("%a_b%"), "%a\\_b%");
        assert_eq!(like_pattern("x"), "x");
    }
}
