//! MISP's text export (`returnFormat: text`, `/attributes/text/download/<type>`, the cached
//! `text` export).
//!
//! Facts from MISP `app/Lib/Export/TextExport.php`: every attribute's `value` (composite values
//! joined with `|`) is collected once, in first-seen order, and the footer writes them joined by
//! `\n` plus a final `\n`. So the body is `"v1\nv2\n"`, and a lone `"\n"` when nothing matched.
//! The format is restrictive (IDS-flagged attributes of published events unless asked otherwise).
//!
//! The per-type listing (`/attributes/text/download/<type>`, and the cached export's one file
//! per type, `misp.text_<type>.<Org>.txt`) is the same output over attributes the caller has
//! filtered to that type.
//!
//! Writing a value as soon as it is first seen gives the same bytes as MISP's collect-then-join
//! while keeping only the set of seen values.

use std::collections::HashSet;

use crate::record::{Attribute, Event};

/// Streams MISP's text export.
#[derive(Debug, Clone, Default)]
pub struct TextWriter {
    seen: HashSet<String>,
}

impl TextWriter {
    /// A writer with no value seen yet.
    pub fn new() -> TextWriter {
        TextWriter::default()
    }

    /// The text export has no header.
    pub fn begin(&mut self, _out: &mut String) {}

    /// Writes the attribute's value unless an earlier attribute had the same one.
    pub fn push(&mut self, _event: &Event, attribute: &Attribute, out: &mut String) {
        let value = attribute.value();
        if !self.seen.contains(value.as_ref()) {
            out.push_str(&value);
            out.push('\n');
            self.seen.insert(value.into_owned());
        }
    }

    /// Writes the final newline MISP emits when nothing was written.
    pub fn finish(&mut self, out: &mut String) {
        if self.seen.is_empty() {
            out.push('\n');
        }
    }
}
