//! MISP's loosely typed request bodies, absorbed in one place: ids and numbers as strings or numbers,
//! flags as booleans, 0/1 or "0"/"1", objects optionally wrapped (`{"Event": {…}}`).

use crate::error::ApiError;
use serde_json::{Map, Value};

/// Parses a JSON body; an empty body is `{}`. Anything else that is not JSON is a 400.
///
/// # Errors
/// Malformed JSON.
pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("Invalid JSON in the request body: {e}")))
}

/// The object itself, or its `wrapper` member when the client wrapped it (`{"User": {...}}`).
pub fn unwrap<'a>(v: &'a Value, wrapper: &str) -> &'a Value {
    match v.get(wrapper) {
        Some(inner) if inner.is_object() => inner,
        _ => v,
    }
}

/// An integer given as a number or a numeric string.
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A flag given as a boolean, 0/1 or "0"/"1"/"true"/"false".
pub fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => Some(true),
            "0" | "false" | "off" | "no" | "" => Some(false),
            _ => None,
        },
        Value::Null => None,
        _ => None,
    }
}

/// A string member (numbers are accepted and rendered).
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_values_are_read_as_misp_clients_send_them() {
        assert_eq!(int(Some(&json!("12"))), Some(12));
        assert_eq!(int(Some(&json!(12))), Some(12));
        assert_eq!(int(Some(&json!("x"))), None);
        assert_eq!(flag(Some(&json!("1"))), Some(true));
        assert_eq!(flag(Some(&json!(0))), Some(false));
        assert_eq!(flag(Some(&json!(true))), Some(true));
        assert_eq!(flag(Some(&json!("maybe"))), None);
        assert_eq!(unwrap(&json!({"User": {"a": 1}}), "User"), &json!({"a": 1}));
        assert_eq!(unwrap(&json!({"a": 1}), "User"), &json!({"a": 1}));
        assert!(parse(b"{not json").is_err());
        assert_eq!(parse(b"  ").expect("empty"), json!({}));
    }
}
