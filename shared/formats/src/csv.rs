//! MISP's attribute CSV (`returnFormat: csv`).
//!
//! Facts from MISP `app/Lib/Export/CsvExport.php` (2.4.1xx/2.5 shape):
//! - Default columns `uuid,event_id,category,type,value,comment,to_ids,timestamp,object_relation,
//!   attribute_tag` then the object columns `object_uuid,object_name,object_meta-category`.
//! - `includeContext` appends `event_info,event_member_org,event_source_org,event_distribution,
//!   event_threat_level_id,event_analysis,event_date,event_tag,event_timestamp`.
//! - `requested_attributes` replaces the attribute columns and drops the default object columns;
//!   `requested_obj_attributes` picks object columns (each prefixed `object_`).
//! - The header renames `timestamp` to `date` (the values stay the attribute's epoch timestamp —
//!   MISP's "date" column is *not* a date) and turns `-` into `_` (`object_meta_category`). It is
//!   written unquoted, then a newline, even when no row follows; `headerless` drops it.
//! - A field is `1`/`0` for booleans, bare when PHP's `is_numeric` accepts it (ids, timestamps,
//!   values like `443`), `"…"` with `"` doubled otherwise, and `""` when the row has no such
//!   field (no object, no tags, unknown column names).
//! - `attribute_tag` / `event_tag` are the tag names joined by `,`.
//! - Event scope prints `event_threat_level_id` as the level's name (`High`…), Attribute scope as
//!   the number.
//! - The footer is one more newline, so a body always ends with an empty line (`"header\n\n"`
//!   for zero rows, as MISP sends it).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::record::{Attribute, Event, Scope, utc_micros};

/// MISP's default attribute columns (`CsvExport::$default_fields`).
pub const DEFAULT_FIELDS: [&str; 10] = [
    "uuid",
    "event_id",
    "category",
    "type",
    "value",
    "comment",
    "to_ids",
    "timestamp",
    "object_relation",
    "attribute_tag",
];

/// MISP's default object columns (`CsvExport::$default_obj_fields`).
pub const DEFAULT_OBJECT_FIELDS: [&str; 3] = ["object_uuid", "object_name", "object_meta-category"];

/// The event context columns `includeContext` adds (`CsvExport::$event_context_fields`).
pub const EVENT_CONTEXT_FIELDS: [&str; 9] = [
    "event_info",
    "event_member_org",
    "event_source_org",
    "event_distribution",
    "event_threat_level_id",
    "event_analysis",
    "event_date",
    "event_tag",
    "event_timestamp",
];

/// The restSearch parameters the CSV export reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// `requested_attributes`: the attribute columns, in order. `None` = MISP's defaults.
    pub requested_attributes: Option<Vec<String>>,
    /// `requested_obj_attributes`: object columns without the `object_` prefix (`uuid`, `name`,
    /// `meta-category`).
    pub requested_obj_attributes: Option<Vec<String>>,
    /// `includeContext`.
    pub include_context: bool,
    /// `headerless`.
    pub headerless: bool,
    /// Which restSearch produced the rows.
    pub scope: Scope,
}

/// Streams MISP's CSV: `begin`, `push` per attribute, `finish`.
#[derive(Debug, Clone)]
pub struct CsvWriter {
    fields: Vec<String>,
    headerless: bool,
    scope: Scope,
}

impl CsvWriter {
    /// Resolves the column list the way `CsvExport::header` does.
    pub fn new(options: CsvOptions) -> CsvWriter {
        let requested = options.requested_attributes.is_some();
        let mut fields: Vec<String> = match options.requested_attributes {
            Some(fields) => fields,
            None => DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect(),
        };
        match options.requested_obj_attributes {
            Some(object_fields) => {
                fields.extend(object_fields.iter().map(|f| format!("object_{f}")));
            }
            None if !requested => {
                fields.extend(DEFAULT_OBJECT_FIELDS.iter().map(|f| f.to_string()))
            }
            None => {}
        }
        if options.include_context {
            fields.extend(EVENT_CONTEXT_FIELDS.iter().map(|f| f.to_string()));
        }
        CsvWriter {
            fields,
            headerless: options.headerless,
            scope: options.scope,
        }
    }

    /// The column names as they appear in the header line.
    pub fn header_names(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|field| {
                if field == "timestamp" {
                    "date".to_string()
                } else {
                    field.replace('-', "_")
                }
            })
            .collect()
    }

    /// Writes the header line (nothing when `headerless`).
    pub fn begin(&mut self, out: &mut String) {
        if !self.headerless {
            out.push_str(&self.header_names().join(","));
            out.push('\n');
        }
    }

    /// Writes one row.
    pub fn push(&mut self, event: &Event, attribute: &Attribute, out: &mut String) {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_cell(out, field_value(field, event, attribute, self.scope));
        }
        out.push('\n');
    }

    /// Writes MISP's footer (one newline).
    pub fn finish(&mut self, out: &mut String) {
        out.push('\n');
    }
}

/// A field as PHP holds it in the attribute array before `__escapeCSVField`.
enum Cell<'a> {
    /// `isset()` is false: MISP writes `""`.
    Missing,
    Bool(bool),
    Int(i64),
    Text(Cow<'a, str>),
}

fn field_value<'a>(
    field: &str,
    event: &'a Event,
    attribute: &'a Attribute,
    scope: Scope,
) -> Cell<'a> {
    let text = |s: &'a str| Cell::Text(Cow::Borrowed(s));
    let object =
        |value: Option<&'a str>| value.map_or(Cell::Missing, |v| Cell::Text(Cow::Borrowed(v)));
    match field {
        "id" => Cell::Int(attribute.id),
        "uuid" => Cell::Text(Cow::Owned(attribute.uuid.to_string())),
        "event_id" => Cell::Int(attribute.event_id),
        "object_id" => Cell::Int(attribute.object_id),
        "object_relation" => object(attribute.object_relation.as_deref()),
        "category" => text(&attribute.category),
        "type" => text(&attribute.attr_type),
        "value" => Cell::Text(attribute.value()),
        "value1" => text(&attribute.value1),
        "value2" => text(&attribute.value2),
        "to_ids" => Cell::Bool(attribute.to_ids),
        "comment" => text(&attribute.comment),
        "timestamp" => Cell::Int(attribute.timestamp),
        "distribution" => Cell::Int(i64::from(attribute.distribution)),
        "sharing_group_id" => Cell::Int(attribute.sharing_group_id),
        "deleted" => Cell::Bool(attribute.deleted),
        // MISP formats the µs columns as `Y-m-d\TH:i:s.uP`.
        "first_seen" => seen(attribute.first_seen),
        "last_seen" => seen(attribute.last_seen),
        "attribute_tag" if !attribute.tags.is_empty() => {
            Cell::Text(Cow::Owned(attribute.tags.join(",")))
        }
        "object_uuid" => attribute
            .object_uuid
            .map_or(Cell::Missing, |u| Cell::Text(Cow::Owned(u.to_string()))),
        "object_name" => object(attribute.object_name.as_deref()),
        "object_meta-category" => object(attribute.object_meta_category.as_deref()),
        "event_info" => text(&event.info),
        "event_member_org" => text(&event.org_name),
        "event_source_org" => text(&event.orgc_name),
        "event_distribution" => Cell::Int(i64::from(event.distribution)),
        "event_threat_level_id" => match scope {
            Scope::Event => text(event.threat_level_name()),
            Scope::Attribute => Cell::Int(i64::from(event.threat_level_id)),
        },
        "event_analysis" => Cell::Int(i64::from(event.analysis)),
        "event_date" => text(&event.date),
        "event_tag" if !event.tags.is_empty() => Cell::Text(Cow::Owned(event.tags.join(","))),
        "event_timestamp" => Cell::Int(event.timestamp),
        _ => Cell::Missing,
    }
}

fn seen(micros: Option<i64>) -> Cell<'static> {
    match micros {
        Some(micros) => Cell::Text(Cow::Owned(
            utc_micros(micros)
                .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
                .to_string(),
        )),
        None => Cell::Missing,
    }
}

/// `CsvExport::__escapeCSVField`, plus the `""` MISP writes for missing fields.
fn write_cell(out: &mut String, cell: Cell<'_>) {
    match cell {
        Cell::Missing => out.push_str("\"\""),
        Cell::Bool(b) => out.push(if b { '1' } else { '0' }),
        Cell::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Cell::Text(text) if php_is_numeric(&text) => out.push_str(&text),
        Cell::Text(text) => {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        }
    }
}

/// PHP 8's `is_numeric` for strings: optional surrounding whitespace, an optional sign, a
/// decimal number (`1`, `1.`, `.5`, `1.5`) and an optional exponent. No hex, no `inf`/`nan`.
pub(crate) fn php_is_numeric(s: &str) -> bool {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let s = s.trim_start_matches(ws).trim_end_matches(ws);
    let bytes = s.as_bytes();
    let mut i = 0;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_is_numeric_matches_php_8() {
        for yes in [
            "0", "443", "-1", "+1.5", ".5", "1.", "1e5", "1E-3", " 12", "12 ", "\t7\n",
        ] {
            assert!(php_is_numeric(yes), "{yes:?}");
        }
        for no in [
            "", " ", ".", "8.8.8.8", "0x1A", "1e", "AS64496", "inf", "1 2", "--1", "e5",
        ] {
            assert!(!php_is_numeric(no), "{no:?}");
        }
    }

    #[test]
    fn requested_attributes_drop_the_default_object_columns() {
        let writer = CsvWriter::new(CsvOptions {
            requested_attributes: Some(vec!["value".into(), "event_id".into()]),
            include_context: true,
            ..CsvOptions::default()
        });
        assert_eq!(
            writer.header_names()[..3],
            ["value", "event_id", "event_info"]
        );
        assert_eq!(writer.header_names().len(), 2 + EVENT_CONTEXT_FIELDS.len());
    }

    #[test]
    fn header_renames_timestamp_and_dashes() {
        let writer = CsvWriter::new(CsvOptions::default());
        let header = writer.header_names().join(",");
        assert_eq!(
            header,
            "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,\
             object_uuid,object_name,object_meta_category"
        );
    }
}
