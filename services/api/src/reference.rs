//! MISP reference data fetched by the scripts from the PyPI packages that ship it (never committed):
//! `describeTypes.json` (served verbatim, and the type catalogue every attribute is checked against)
//! and the misp-objects templates (their required relations), both from pymisp.

use cairn_domain::event::{TemplateBook, TemplateRule};
use cairn_domain::taxonomy::{self, Taxonomy};
use cairn_domain::types::TypeCatalogue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug)]
pub struct Reference {
    /// `describeTypes.json` exactly as pymisp ships it.
    pub describe_types_raw: bytes::Bytes,
    pub catalogue: TypeCatalogue,
    pub templates: TemplateBook,
    /// Raw template definitions by name (for `objectTemplates/*`).
    pub template_definitions: BTreeMap<String, Value>,
    /// The misp-taxonomies, sorted by namespace; a taxonomy's id is its position + 1.
    pub taxonomies: Vec<Taxonomy>,
    /// The misp-warninglists (read on first use).
    pub warninglists: crate::warninglists::Catalog,
}

impl Reference {
    /// A taxonomy by id or namespace.
    pub fn taxonomy(&self, key: &str) -> Option<(i64, &Taxonomy)> {
        let key = key.trim();
        if let Ok(id) = key.parse::<usize>() {
            return self.taxonomies.get(id.checked_sub(1)?).map(|t| (id as i64, t));
        }
        self.taxonomies.iter().enumerate().find(|(_, t)| t.namespace.eq_ignore_ascii_case(key)).map(|(i, t)| (i as i64 + 1, t))
    }

    /// The taxonomy that defines a tag name, if any.
    pub fn taxonomy_of_tag(&self, name: &str) -> Option<&Taxonomy> {
        let namespace = name.split(':').next()?;
        self.taxonomies
            .iter()
            .find(|t| t.namespace.eq_ignore_ascii_case(namespace))
            .filter(|t| t.entries.iter().any(|e| e.tag.eq_ignore_ascii_case(name)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("MISP reference data missing at {path}: run scripts/fetch-data (or set CAIRN_DATA_DIR): {source}")]
    Missing { path: String, source: std::io::Error },
    #[error("invalid reference file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl Reference {
    /// Loads the reference data under `data_dir`.
    ///
    /// # Errors
    /// Missing or unparsable files, with the path and how to fetch them.
    pub fn load(data_dir: &Path) -> Result<Self, ReferenceError> {
        let path = data_dir.join("pymisp/describeTypes.json");
        let raw = std::fs::read(&path)
            .map_err(|source| ReferenceError::Missing { path: path.display().to_string(), source })?;
        let describe_types: Value = serde_json::from_slice(&raw)
            .map_err(|e| ReferenceError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
        let catalogue = TypeCatalogue::from_describe_types(&describe_types)
            .map_err(|reason| ReferenceError::Invalid { path: path.display().to_string(), reason })?;
        let (templates, template_definitions) = load_templates(&data_dir.join("pymisp/misp-objects/objects"));
        let taxonomies = load_taxonomies(&data_dir.join("taxonomies"));
        let warninglists = crate::warninglists::Catalog::new(&data_dir.join("warninglists"), cairn_domain::freetext::Mode::Default);
        Ok(Self { describe_types_raw: raw.into(), catalogue, templates, template_definitions, taxonomies, warninglists })
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

/// Reads every `<name>/definition.json`; unreadable templates are skipped (logged).
fn load_templates(dir: &Path) -> (TemplateBook, BTreeMap<String, Value>) {
    let mut book = TemplateBook::default();
    let mut raw = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "no object templates found");
        return (book, raw);
    };
    for entry in entries.flatten() {
        let path = entry.path().join("definition.json");
        let Ok(text) = std::fs::read(&path) else { continue };
        let Ok(v) = serde_json::from_slice::<Value>(&text) else {
            tracing::warn!(path = %path.display(), "unparsable object template");
            continue;
        };
        let Some(name) = v.get("name").and_then(Value::as_str).map(String::from) else { continue };
        let rule = TemplateRule { name: name.clone(), required: strings(v.get("required")), required_one_of: strings(v.get("requiredOneOf")) };
        if let Some(uuid) = v.get("uuid").and_then(Value::as_str).and_then(|u| uuid::Uuid::parse_str(u).ok()) {
            book.by_uuid.insert(uuid, rule.clone());
        }
        book.by_name.insert(name.clone(), rule);
        raw.insert(name, v);
    }
    (book, raw)
}

/// Reads every `<namespace>/machinetag.json` (skipping unparsable ones), sorted by namespace.
pub fn load_taxonomies(dir: &Path) -> Vec<Taxonomy> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "no taxonomies found");
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path().join("machinetag.json");
        let Ok(text) = std::fs::read(&path) else { continue };
        match serde_json::from_slice::<Value>(&text).map_err(|e| e.to_string()).and_then(|v| taxonomy::parse(&v)) {
            Ok(t) => out.push(t),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "unparsable taxonomy"),
        }
    }
    out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    out
}
