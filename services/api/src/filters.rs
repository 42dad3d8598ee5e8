//! MISP's search filter syntax, parsed once and turned into SQL with bound parameters.
//!
//! A filter value may be a scalar, a list (OR), or `{"OR": [...], "AND": [...], "NOT": [...]}`; scalars
//! may be `!`-prefixed (NOT) and lists written `a&&b` (AND); `%` makes a LIKE match. Times accept epoch
//! seconds (int or float), relative spans (`5s`, `4m`, `1h`, `7d`, `2w`) and `[from, to]` pairs.

use serde_json::Value;
use tokio_postgres::types::ToSql;

/// A parsed filter: alternatives (OR), all-required (AND) and exclusions (NOT).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    pub or: Vec<String>,
    pub and: Vec<String>,
    pub not: Vec<String>,
}

impl Terms {
    pub fn is_empty(&self) -> bool {
        self.or.is_empty() && self.and.is_empty() && self.not.is_empty()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
        _ => None,
    }
}

fn push_scalar(t: &mut Terms, s: &str) {
    let s = s.trim();
    if s.is_empty() {
        return;
    }
    if s.contains("&&") {
        t.and.extend(s.split("&&").map(|x| x.trim().to_string()).filter(|x| !x.is_empty()));
    } else if let Some(rest) = s.strip_prefix('!') {
        t.not.push(rest.to_string());
    } else {
        t.or.push(s.to_string());
    }
}

/// Parses a filter value in any of MISP's forms.
pub fn terms(v: Option<&Value>) -> Terms {
    let mut t = Terms::default();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => items.iter().filter_map(scalar).for_each(|s| push_scalar(&mut t, &s)),
        Some(Value::Object(m)) => {
            for (key, bucket) in m {
                let list: Vec<String> = match bucket {
                    Value::Array(a) => a.iter().filter_map(scalar).collect(),
                    other => scalar(other).into_iter().collect(),
                };
                match key.to_ascii_uppercase().as_str() {
                    "OR" => t.or.extend(list),
                    "AND" => t.and.extend(list),
                    "NOT" => t.not.extend(list),
                    _ => {}
                }
            }
        }
        Some(other) => {
            if let Some(s) = scalar(other) {
                push_scalar(&mut t, &s);
            }
        }
    }
    t
}

/// Seconds for a relative span like `5s`, `4m`, `1h`, `7d`, `2w`.
pub fn relative_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// One point in time: epoch seconds, a relative span back from `now`, or a date/time text.
pub fn time_point(v: &Value, now: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| f as i64),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(f) = s.parse::<f64>() {
                return Some(f as i64);
            }
            if let Some(delta) = relative_seconds(s) {
                return now.checked_sub(delta);
            }
            crate::input::parse_time_micros(s).map(|m| m.div_euclid(1_000_000))
        }
        _ => None,
    }
}

/// A time filter: a single value means "from"; a pair means `[from, to]`.
pub fn time_range(v: Option<&Value>, now: i64) -> Option<(Option<i64>, Option<i64>)> {
    match v? {
        Value::Null => None,
        Value::Array(items) if items.len() == 2 => {
            let a = time_point(&items[0], now);
            let b = time_point(&items[1], now);
            // MISP accepts the pair in either order for relative spans ("6m","4m").
            match (a, b) {
                (Some(a), Some(b)) if a > b => Some((Some(b), Some(a))),
                (a, b) => Some((a, b)),
            }
        }
        Value::Array(items) if items.len() == 1 => Some((time_point(&items[0], now), None)),
        other => time_point(other, now).map(|t| (Some(t), None)),
    }
}

/// Accumulates SQL conditions and their parameters.
#[derive(Default)]
pub struct Sql {
    pub conditions: Vec<String>,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Adds a parameter and returns its placeholder (`$n`).
    pub fn param(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    pub fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() { "TRUE".into() } else { self.conditions.join(" AND ") }
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// `column` matches the terms: exact or `%` LIKE, case-insensitive when `lower`.
    pub fn match_terms(&mut self, columns: &[&str], t: &Terms, lower: bool) {
        let one = |sql: &mut Sql, value: &str| -> String {
            let like = value.contains('%');
            let v = if lower { value.to_lowercase() } else { value.to_string() };
            let p = sql.param(v);
            let parts: Vec<String> = columns
                .iter()
                .map(|c| {
                    let col = if lower { format!("lower({c})") } else { (*c).to_string() };
                    if like { format!("{col} LIKE {p}") } else { format!("{col} = {p}") }
                })
                .collect();
            format!("({})", parts.join(" OR "))
        };
        if !t.or.is_empty() {
            let parts: Vec<String> = t.or.iter().map(|v| one(self, v)).collect();
            self.and(format!("({})", parts.join(" OR ")));
        }
        for v in &t.and {
            let c = one(self, v);
            self.and(c);
        }
        for v in &t.not {
            let c = one(self, v);
            self.and(format!("NOT {c}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_spans_never_panic_on_hostile_text() {
        // Found by the property tests: a multi-byte last character, and spans beyond i64.
        assert_eq!(relative_seconds("5Ê"), None);
        assert_eq!(relative_seconds("Ê"), None);
        assert_eq!(relative_seconds("99999999999999999w"), None);
        assert_eq!(relative_seconds("2w"), Some(1_209_600));
        assert_eq!(time_point(&json!("9223372036854775807s"), -10), None, "now - span overflows");
    }

    #[test]
    fn every_filter_form_parses() {
        assert_eq!(terms(Some(&json!("a"))).or, vec!["a"]);
        assert_eq!(terms(Some(&json!("!a"))).not, vec!["a"]);
        assert_eq!(terms(Some(&json!("a&&b"))).and, vec!["a", "b"]);
        assert_eq!(terms(Some(&json!(["a", "!b"]))), Terms { or: vec!["a".into()], and: vec![], not: vec!["b".into()] });
        let t = terms(Some(&json!({"OR": ["a"], "NOT": "b", "AND": ["c", "d"]})));
        assert_eq!((t.or.len(), t.not.len(), t.and.len()), (1, 1, 2));
        assert!(terms(None).is_empty());
    }

    #[test]
    fn times_are_absolute_relative_or_ranges() {
        assert_eq!(relative_seconds("5s"), Some(5));
        assert_eq!(relative_seconds("2w"), Some(1_209_600));
        assert_eq!(relative_seconds("7x"), None);
        assert_eq!(time_range(Some(&json!("1h")), 10_000), Some((Some(6_400), None)));
        assert_eq!(time_range(Some(&json!(["6m", "4m"])), 1_000), Some((Some(640), Some(760))));
        assert_eq!(time_range(Some(&json!(1_600_000_000.5)), 0), Some((Some(1_600_000_000), None)));
        assert_eq!(time_range(Some(&json!("1600000000")), 0), Some((Some(1_600_000_000), None)));
    }
}
