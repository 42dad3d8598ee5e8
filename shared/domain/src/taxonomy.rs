//! MISP taxonomies (misp-taxonomies `machinetag.json`, shipped by the pytaxonomies package): parsing and
//! the machine-tag names they define (`tlp:green`, `circl:incident-classification="phishing"`).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct TaxonomyEntry {
    /// The tag name this entry defines.
    pub tag: String,
    pub expanded: String,
    pub colour: Option<String>,
    pub numerical_value: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Taxonomy {
    pub namespace: String,
    pub description: String,
    pub version: i64,
    pub exclusive: bool,
    pub entries: Vec<TaxonomyEntry>,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Parses one `machinetag.json`.
///
/// # Errors
/// A document without a namespace or predicates.
pub fn parse(v: &Value) -> Result<Taxonomy, String> {
    let namespace = text(v.get("namespace"));
    if namespace.is_empty() {
        return Err("taxonomy without namespace".into());
    }
    let predicates = v.get("predicates").and_then(Value::as_array).ok_or("taxonomy without predicates")?;
    let values = v.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut entries = Vec::new();
    for p in predicates {
        let predicate = text(p.get("value"));
        if predicate.is_empty() {
            continue;
        }
        let listed = values.iter().find(|x| x.get("predicate").and_then(Value::as_str) == Some(predicate.as_str()));
        match listed.and_then(|x| x.get("entry")).and_then(Value::as_array) {
            Some(list) if !list.is_empty() => {
                for e in list {
                    let value = text(e.get("value"));
                    entries.push(TaxonomyEntry {
                        tag: format!("{namespace}:{predicate}=\"{value}\""),
                        expanded: text(e.get("expanded")).chars().take(1000).collect(),
                        colour: e.get("colour").and_then(Value::as_str).map(String::from),
                        numerical_value: e.get("numerical_value").and_then(Value::as_i64),
                    });
                }
            }
            _ => entries.push(TaxonomyEntry {
                tag: format!("{namespace}:{predicate}"),
                expanded: text(p.get("expanded")),
                colour: p.get("colour").and_then(Value::as_str).map(String::from),
                numerical_value: p.get("numerical_value").and_then(Value::as_i64),
            }),
        }
    }
    Ok(Taxonomy {
        namespace,
        description: text(v.get("description")),
        version: v.get("version").and_then(Value::as_i64).unwrap_or(1),
        exclusive: v.get("exclusive").and_then(Value::as_bool).unwrap_or(false),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predicates_without_values_are_tags_and_values_are_qualified() {
        let t = parse(&json!({"namespace": "circl", "version": 6, "predicates": [
            {"value": "incident-classification", "expanded": "Incident"},
            {"value": "significant", "expanded": "Significant", "colour": "#ff0000"}],
            "values": [{"predicate": "incident-classification", "entry": [
                {"value": "phishing", "expanded": "Phishing"}, {"value": "scam", "expanded": "Scam"}]}]}))
        .expect("parses");
        let tags: Vec<&str> = t.entries.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(tags, vec!["circl:incident-classification=\"phishing\"", "circl:incident-classification=\"scam\"", "circl:significant"]);
        assert_eq!(t.entries[2].colour.as_deref(), Some("#ff0000"));
        assert!(parse(&json!({"predicates": []})).is_err());
    }
}
