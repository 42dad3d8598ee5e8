//! MISP's attribute type catalogue: the types, the categories, each type's sane defaults
//! (`default_category`, `to_ids`) and which types each category allows.
//!
//! Decisions:
//! - The catalogue is **data, not code**: it is built from PyMISP's `describeTypes.json` (the file the
//!   API also serves verbatim), so the table Cairn checks attributes against and the one clients read
//!   can never drift apart. The crate stays pure: the caller reads the file and hands over its JSON.
//! - Loading is strict. Every type needs a sane default, every default category and every mapped
//!   category must be a known category, and every mapped type a known type. A broken file fails at
//!   startup instead of letting attributes through with half a definition.
//! - Which types are *composite* is not in the file. MISP derives it from the name (any type with a
//!   `|`) plus the hard-coded `malware-sample` (`MispAttribute::getCompositeTypes`); [`is_composite`]
//!   does the same, so it needs no catalogue.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// A type's defaults when an attribute arrives without `category` or `to_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SaneDefault {
    category: String,
    to_ids: bool,
}

/// The attribute types and categories of `describeTypes.json`, with lookups.
#[derive(Debug, Clone)]
pub struct TypeCatalogue {
    /// Types in file order.
    types: Vec<String>,
    /// Categories in file order.
    categories: Vec<String>,
    /// One entry per type (loading checks it).
    defaults: HashMap<String, SaneDefault>,
    /// Category → allowed types, in file order.
    category_types: HashMap<String, Vec<String>>,
}

impl TypeCatalogue {
    /// Builds the catalogue from `describeTypes.json`: either the whole file (`{"result": {...}}`) or
    /// the inner object with `types`, `categories`, `sane_defaults` and `category_type_mappings`.
    ///
    /// # Errors
    /// A human-readable reason when a member is missing or has the wrong shape, when a type or
    /// category is listed twice, when a type has no sane default, or when a default or a mapping
    /// names an unknown type or category.
    pub fn from_describe_types(v: &Value) -> Result<Self, String> {
        let root = v.get("result").unwrap_or(v);
        let types = string_list(root, "types")?;
        let categories = string_list(root, "categories")?;
        let known_types: HashSet<&str> = types.iter().map(String::as_str).collect();
        let known_categories: HashSet<&str> = categories.iter().map(String::as_str).collect();

        let sane = root
            .get("sane_defaults")
            .and_then(Value::as_object)
            .ok_or("describeTypes: \"sane_defaults\" must be an object")?;
        let mut defaults = HashMap::with_capacity(types.len());
        for (t, d) in sane {
            if !known_types.contains(t.as_str()) {
                return Err(format!("describeTypes: sane default for unknown type \"{t}\""));
            }
            let category = d
                .get("default_category")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("describeTypes: type \"{t}\" has no default_category"))?;
            if !known_categories.contains(category) {
                return Err(format!("describeTypes: type \"{t}\" defaults to unknown category \"{category}\""));
            }
            let to_ids = d
                .get("to_ids")
                .and_then(flag)
                .ok_or_else(|| format!("describeTypes: type \"{t}\" has no to_ids 0/1"))?;
            defaults.insert(t.clone(), SaneDefault { category: category.to_string(), to_ids });
        }
        if let Some(t) = types.iter().find(|t| !defaults.contains_key(t.as_str())) {
            return Err(format!("describeTypes: type \"{t}\" has no sane default"));
        }

        let mappings = root
            .get("category_type_mappings")
            .and_then(Value::as_object)
            .ok_or("describeTypes: \"category_type_mappings\" must be an object")?;
        let mut category_types = HashMap::with_capacity(mappings.len());
        for (c, list) in mappings {
            if !known_categories.contains(c.as_str()) {
                return Err(format!("describeTypes: mapping for unknown category \"{c}\""));
            }
            let list = list
                .as_array()
                .ok_or_else(|| format!("describeTypes: mapping of \"{c}\" must be an array"))?;
            let mut allowed = Vec::with_capacity(list.len());
            for t in list {
                let t = t
                    .as_str()
                    .ok_or_else(|| format!("describeTypes: mapping of \"{c}\" holds a non-string"))?;
                if !known_types.contains(t) {
                    return Err(format!("describeTypes: category \"{c}\" maps unknown type \"{t}\""));
                }
                allowed.push(t.to_string());
            }
            category_types.insert(c.clone(), allowed);
        }

        Ok(Self { types, categories, defaults, category_types })
    }

    /// Whether `t` is a known attribute type (case-sensitive, as in MISP: `AS`, `named pipe`).
    pub fn is_type(&self, t: &str) -> bool {
        self.defaults.contains_key(t)
    }

    /// Whether `c` is a known category (case-sensitive).
    pub fn is_category(&self, c: &str) -> bool {
        self.categories.iter().any(|x| x == c)
    }

    /// The types, in file order.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(String::as_str)
    }

    /// The categories, in file order.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(String::as_str)
    }

    /// The types `category` allows, in file order (none for an unknown category).
    pub fn category_types(&self, category: &str) -> impl Iterator<Item = &str> {
        self.category_types.get(category).into_iter().flatten().map(String::as_str)
    }

    /// The category an attribute of type `t` gets when none is given; `None` for an unknown type.
    pub fn default_category(&self, t: &str) -> Option<&str> {
        self.defaults.get(t).map(|d| d.category.as_str())
    }

    /// The IDS flag an attribute of type `t` gets when none is given; `false` for an unknown type.
    pub fn default_to_ids(&self, t: &str) -> bool {
        self.defaults.get(t).is_some_and(|d| d.to_ids)
    }

    /// Whether `category` allows type `t` (MISP's `validateTypeValue`).
    pub fn category_allows(&self, category: &str, t: &str) -> bool {
        self.category_types(category).any(|x| x == t)
    }
}

/// Composite types: every type containing `|`, plus `malware-sample` (stored as `filename|md5`).
/// Their value must hold exactly one `|` and is stored split into `value1`/`value2`.
pub fn is_composite(t: &str) -> bool {
    t.contains('|') || t == "malware-sample"
}

/// Types whose second half is a port: they correlate on the first half only
/// (MISP's `PRIMARY_ONLY_CORRELATING_TYPES`).
pub fn is_port_composite(t: &str) -> bool {
    matches!(t, "ip-src|port" | "ip-dst|port" | "hostname|port")
}

/// A JSON array of strings without duplicates.
fn string_list(root: &Value, key: &str) -> Result<Vec<String>, String> {
    let items = root
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("describeTypes: \"{key}\" must be an array"))?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for item in items {
        let s = item.as_str().ok_or_else(|| format!("describeTypes: \"{key}\" holds a non-string"))?;
        if !seen.insert(s) {
            return Err(format!("describeTypes: \"{s}\" is listed twice in \"{key}\""));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// MISP's loose 0/1 flag: an integer (the file uses these), a boolean or a digit string.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A cut-down describeTypes.json with the real shape and real rows.
    fn fixture() -> Value {
        json!({"result": {
            "sane_defaults": {
                "md5": {"default_category": "Payload delivery", "to_ids": 1},
                "ip-dst": {"default_category": "Network activity", "to_ids": 1},
                "AS": {"default_category": "Network activity", "to_ids": 0},
                "comment": {"default_category": "Other", "to_ids": 0},
                "filename|md5": {"default_category": "Payload delivery", "to_ids": 1},
                "link": {"default_category": "External analysis", "to_ids": 0}
            },
            "types": ["md5", "ip-dst", "AS", "comment", "filename|md5", "link"],
            "categories": ["Payload delivery", "Network activity", "External analysis", "Other"],
            "category_type_mappings": {
                "Payload delivery": ["md5", "filename|md5", "comment", "link"],
                "Network activity": ["ip-dst", "AS", "comment", "link"],
                "External analysis": ["md5", "ip-dst", "comment", "link"],
                "Other": ["comment"]
            }
        }})
    }

    fn catalogue() -> TypeCatalogue {
        match TypeCatalogue::from_describe_types(&fixture()) {
            Ok(c) => c,
            Err(e) => panic!("fixture must load: {e}"),
        }
    }

    fn load_error(v: Value) -> String {
        match TypeCatalogue::from_describe_types(&v) {
            Ok(_) => panic!("expected a load error"),
            Err(e) => e,
        }
    }

    #[test]
    fn types_and_categories_are_listed_in_file_order() {
        let c = catalogue();
        assert_eq!(c.types().collect::<Vec<_>>(), ["md5", "ip-dst", "AS", "comment", "filename|md5", "link"]);
        assert_eq!(
            c.categories().collect::<Vec<_>>(),
            ["Payload delivery", "Network activity", "External analysis", "Other"]
        );
    }

    #[test]
    fn the_inner_object_loads_like_the_whole_file() {
        let inner = fixture()["result"].clone();
        let c = TypeCatalogue::from_describe_types(&inner).map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.types().count()), Ok(6));
    }

    #[test]
    fn known_types_and_categories_are_recognised_case_sensitively() {
        let c = catalogue();
        assert!(c.is_type("AS"));
        assert!(!c.is_type("as"));
        assert!(!c.is_type("sha256"));
        assert!(c.is_category("Network activity"));
        assert!(!c.is_category("network activity"));
    }

    #[test]
    fn sane_defaults_give_the_category_and_ids_flag() {
        let c = catalogue();
        assert_eq!(c.default_category("md5"), Some("Payload delivery"));
        assert!(c.default_to_ids("md5"));
        assert_eq!(c.default_category("AS"), Some("Network activity"));
        assert!(!c.default_to_ids("AS"));
        assert_eq!(c.default_category("link"), Some("External analysis"));
        assert!(!c.default_to_ids("link"));
    }

    #[test]
    fn an_unknown_type_has_no_default_category_and_no_ids_flag() {
        let c = catalogue();
        assert_eq!(c.default_category("nope"), None);
        assert!(!c.default_to_ids("nope"));
    }

    #[test]
    fn a_category_allows_only_its_mapped_types() {
        let c = catalogue();
        assert!(c.category_allows("Network activity", "ip-dst"));
        assert!(c.category_allows("External analysis", "md5"));
        assert!(!c.category_allows("Other", "md5"));
        assert!(!c.category_allows("Payload delivery", "ip-dst"));
        assert!(!c.category_allows("Nope", "comment"));
        assert_eq!(c.category_types("Network activity").collect::<Vec<_>>(), ["ip-dst", "AS", "comment", "link"]);
    }

    #[test]
    fn to_ids_accepts_booleans_and_digit_strings() {
        let mut v = fixture();
        v["result"]["sane_defaults"]["md5"]["to_ids"] = json!(false);
        v["result"]["sane_defaults"]["AS"]["to_ids"] = json!("1");
        let c = TypeCatalogue::from_describe_types(&v).map_err(|e| e.to_string());
        assert_eq!(c.map(|c| (c.default_to_ids("md5"), c.default_to_ids("AS"))), Ok((false, true)));
    }

    #[test]
    fn a_missing_types_array_is_refused() {
        let mut v = fixture();
        v["result"].as_object_mut().map(|o| o.remove("types"));
        assert!(load_error(v).contains("\"types\" must be an array"));
    }

    #[test]
    fn a_type_without_sane_default_is_refused() {
        let mut v = fixture();
        v["result"]["sane_defaults"].as_object_mut().map(|o| o.remove("link"));
        assert!(load_error(v).contains("\"link\" has no sane default"));
    }

    #[test]
    fn a_default_in_an_unknown_category_is_refused() {
        let mut v = fixture();
        v["result"]["sane_defaults"]["md5"]["default_category"] = json!("Payload");
        assert!(load_error(v).contains("unknown category \"Payload\""));
    }

    #[test]
    fn a_to_ids_other_than_zero_or_one_is_refused() {
        let mut v = fixture();
        v["result"]["sane_defaults"]["md5"]["to_ids"] = json!(2);
        assert!(load_error(v).contains("\"md5\" has no to_ids"));
    }

    #[test]
    fn a_mapping_to_an_unknown_type_is_refused() {
        let mut v = fixture();
        v["result"]["category_type_mappings"]["Other"] = json!(["comment", "sha256"]);
        assert!(load_error(v).contains("unknown type \"sha256\""));
    }

    #[test]
    fn a_mapping_for_an_unknown_category_is_refused() {
        let mut v = fixture();
        v["result"]["category_type_mappings"]["Misc"] = json!(["comment"]);
        assert!(load_error(v).contains("unknown category \"Misc\""));
    }

    #[test]
    fn a_type_listed_twice_is_refused() {
        let mut v = fixture();
        v["result"]["types"] = json!(["md5", "ip-dst", "AS", "comment", "filename|md5", "link", "md5"]);
        assert!(load_error(v).contains("\"md5\" is listed twice"));
    }

    #[test]
    fn composite_types_are_the_piped_ones_and_malware_sample() {
        for t in ["filename|md5", "domain|ip", "regkey|value", "ip-dst|port", "hostname|port", "malware-sample"] {
            assert!(is_composite(t), "{t}");
        }
        for t in ["md5", "filename", "attachment", "ip-dst", "text"] {
            assert!(!is_composite(t), "{t}");
        }
    }

    #[test]
    fn only_the_three_port_composites_correlate_on_their_first_half() {
        for t in ["ip-src|port", "ip-dst|port", "hostname|port"] {
            assert!(is_port_composite(t), "{t}");
        }
        for t in ["domain|ip", "filename|md5", "port", "ip-dst"] {
            assert!(!is_port_composite(t), "{t}");
        }
    }
}
