//! MISP's JSON path: when the text starts with `{`, every scalar of the document is a candidate,
//! in document order. Booleans, integers, `null`, `""` and `"0"` are skipped (PHP's `is_bool`,
//! `is_int`, `empty`); floats are kept as PHP would print them.
//!
//! The document is walked with a serde visitor rather than parsed into a `Value`, so key order is
//! the document's (serde_json's map may sort keys) and nothing is built that is not needed.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The string leaves of a JSON document in order, or `None` when it is not valid JSON (MISP then
/// treats the input as text).
pub(crate) fn leaves(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    Leaves(&mut out).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(out)
}

struct Leaves<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Leaves<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaves<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        // PHP decodes integers beyond i64 as floats, which are kept.
        if i64::try_from(v).is_err() {
            self.0.push(php_float(v as f64));
        }
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        if v != 0.0 {
            self.0.push(php_float(v));
        }
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if !v.is_empty() && v != "0" {
            self.0.push(v.to_string());
        }
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        if !v.is_empty() && v != "0" {
            self.0.push(v);
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Leaves(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(Leaves(&mut *self.0))?;
        }
        Ok(())
    }
}

/// A float the way PHP 8 prints it (shortest round-trip form; whole numbers without `.0`).
fn php_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_come_in_document_order_without_ints_bools_or_empties() {
        let doc = r#"{"z": "first", "a": {"n": 5, "b": true, "s": "second", "e": "", "zero": "0"}, "l": ["third", null, 1.5]}"#;
        assert_eq!(leaves(doc), Some(vec!["first".into(), "second".into(), "third".into(), "1.5".into()]));
    }

    #[test]
    fn invalid_json_is_none() {
        assert_eq!(leaves("{not json"), None);
        assert_eq!(leaves("{} trailing"), None);
    }
}
