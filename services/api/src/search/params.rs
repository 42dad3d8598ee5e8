//! restSearch parameters from every place MISP reads them: a JSON body (optionally `{"request": …}`),
//! CakePHP named parameters (`/key:value`, `||` between list items) and ordered URL parameters
//! (`/attributes/restSearch/json/<value>/<type>/…`, in the order of MISP's `RestSearchComponent`).

use crate::error::ApiError;
use crate::handlers::Request;
use serde_json::{Map, Value};

/// Which controller is searched: it decides what `timestamp`, `uuid` and `tags` mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Event,
    Attribute,
    Object,
}

/// The order of positional URL parameters (MISP's `paramArray`).
const EVENT_ORDER: &[&str] = &[
    "returnFormat", "value", "type", "category", "org", "tags", "searchall", "from", "to", "last", "eventid", "withAttachments",
    "metadata", "uuid", "publish_timestamp", "timestamp", "published", "enforceWarninglist", "sgReferenceOnly", "limit", "page",
    "requested_attributes", "includeContext", "headerless", "includeWarninglistHits", "attackGalaxy", "deleted", "excludeLocalTags",
    "date", "includeSightingdb", "tag", "object_relation",
];
const ATTRIBUTE_ORDER: &[&str] = &[
    "returnFormat", "value", "type", "category", "org", "tags", "from", "to", "last", "eventid", "withAttachments", "uuid",
    "publish_timestamp", "published", "timestamp", "enforceWarninglist", "to_ids", "deleted", "includeEventUuid", "event_timestamp",
    "threat_level_id", "includeEventTags", "includeProposals", "returnFormat", "limit", "page", "requested_attributes",
    "includeContext", "headerless", "includeWarninglistHits", "attackGalaxy", "object_relation", "includeSightings",
    "includeCorrelations", "includeDecayScore", "decayingModel", "excludeDecayed", "modelOverrides", "includeFullModel", "score",
    "attribute_timestamp", "first_seen", "last_seen",
];

/// The parameters of one search.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: Map<String, Value>,
}

impl Params {
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { map }
    }

    /// Reads the body, the named and the positional parameters (the body wins over the path).
    ///
    /// # Errors
    /// Malformed JSON, a body that is not an object, or a GET without any parameter (MISP: 400).
    pub fn from_request(req: &Request, scope: Scope) -> Result<Self, ApiError> {
        let mut params = Self::read(req)?;
        let order = if scope == Scope::Event { EVENT_ORDER } else { ATTRIBUTE_ORDER };
        for (name, arg) in order.iter().zip(&req.path.args) {
            let arg = arg.trim();
            if matches!(arg, "" | "null" | "0" | "false") {
                continue;
            }
            let value = if arg.contains("||") {
                Value::Array(arg.split("||").map(|s| Value::String(s.to_string())).collect())
            } else {
                Value::String(arg.to_string())
            };
            params.map.entry((*name).to_string()).or_insert(value);
        }
        if req.method == axum::http::Method::GET && params.map.is_empty() {
            return Err(ApiError::BadRequest("Either specify the search terms in the url, or POST a json with the filter parameters.".into()));
        }
        Ok(params)
    }

    /// The body and the named parameters only (`events/index`).
    ///
    /// # Errors
    /// Malformed JSON, or a body that is not an object.
    pub fn read(req: &Request) -> Result<Self, ApiError> {
        let body = crate::body::parse(&req.body)?;
        let body = crate::body::unwrap(&body, "request").clone();
        let mut map = match body {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return Err(ApiError::BadRequest("The search parameters must be a JSON object.".into())),
        };
        for (k, v) in &req.path.named {
            let value = if v.contains("||") {
                Value::Array(v.split("||").map(|s| Value::String(s.to_string())).collect())
            } else {
                Value::String(v.clone())
            };
            map.entry(k.clone()).or_insert(value);
        }
        Ok(Self { map })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The first present of several spellings.
    pub fn any(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().find_map(|k| self.get(k))
    }

    pub fn flag(&self, key: &str) -> Option<bool> {
        crate::body::flag(self.get(key))
    }

    /// A flag that is on only when given and true.
    pub fn on(&self, key: &str) -> bool {
        self.flag(key).unwrap_or(false)
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        crate::body::int(self.get(key))
    }

    pub fn text(&self, key: &str) -> Option<String> {
        crate::body::text(self.get(key)).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_string(), value);
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// `returnFormat` (lower case; `json` when absent; MISP's `download` is `json`).
    pub fn return_format(&self) -> String {
        let f = self.text("returnFormat").unwrap_or_else(|| "json".into()).to_ascii_lowercase();
        if f == "download" { "json".into() } else { f }
    }

    /// MISP's defaults for restrictive formats: `to_ids = 1` and `published = 1` unless given (or
    /// `ignore` is set).
    pub fn apply_restrictive_defaults(&mut self) {
        if self.on("ignore") {
            return;
        }
        if !self.contains("to_ids") {
            self.set("to_ids", Value::from(1));
        }
        if !self.contains("published") {
            self.set("published", Value::from(1));
        }
    }

    /// `limit`/`page` (page counts from 1).
    pub fn limit_page(&self) -> (Option<i64>, i64) {
        let limit = self.int("limit").filter(|l| *l > 0);
        let page = self.int("page").filter(|p| *p > 0).unwrap_or(1);
        (limit, page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictive_defaults_respect_given_values_and_ignore() {
        let mut p = Params::default();
        p.apply_restrictive_defaults();
        assert_eq!((p.flag("to_ids"), p.flag("published")), (Some(true), Some(true)));
        let mut p = Params::from_map(serde_json::json!({"to_ids": [0, 1]}).as_object().cloned().unwrap_or_default());
        p.apply_restrictive_defaults();
        assert_eq!(p.get("to_ids"), Some(&serde_json::json!([0, 1])));
        let mut p = Params::from_map(serde_json::json!({"ignore": 1}).as_object().cloned().unwrap_or_default());
        p.apply_restrictive_defaults();
        assert!(!p.contains("to_ids"));
    }

    #[test]
    fn return_format_defaults_to_json() {
        assert_eq!(Params::default().return_format(), "json");
        let p = Params::from_map(serde_json::json!({"returnFormat": "CSV"}).as_object().cloned().unwrap_or_default());
        assert_eq!(p.return_format(), "csv");
    }
}
