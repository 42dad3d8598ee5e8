//! `cairnctl freetext`: the freetext importer on standard input, without a server. Prints a JSON
//! array of candidates, `{"value", "type", "types", "default_type", "category", "to_ids", "comment"}`
//! (the shape the corpus scorer `evaluate.py --cmd` reads).

use cairn_domain::freetext::{self, Mode, Options};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The warninglists folder: `<data dir>/warninglists`, or, when the configured data dir is relative
/// and missing (cairnctl run from elsewhere), the repository's `.local/data` next to the binary.
fn warninglists_dir(data_dir: &Path) -> PathBuf {
    let configured = data_dir.join("warninglists");
    if configured.is_dir() || data_dir.is_absolute() {
        return configured;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().map(|a| a.join(".local/data/warninglists")).find(|d| d.is_dir()))
        .unwrap_or(configured)
}

pub(crate) fn run(data_dir: &Path, compat: bool) -> Result<(), crate::BoxError> {
    let mode = if compat { Mode::Compat } else { Mode::Default };
    let (tlds, vendors) = cairn_api::warninglists::freetext_lists(&warninglists_dir(data_dir), mode);
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    let mut found = freetext::extract_with(&input, &Options { mode, tlds: &tlds, security_vendor_domains: &vendors });
    if let Ok(reference) = cairn_api::reference::Reference::load(data_dir) {
        freetext::apply_catalogue(&mut found, &reference.catalogue);
    }
    let rows: Vec<serde_json::Value> = found
        .iter()
        .map(|c| {
            serde_json::json!({"value": c.value, "type": c.default_type, "types": c.types, "default_type": c.default_type,
                               "category": c.category, "to_ids": c.to_ids, "comment": c.comment})
        })
        .collect();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &rows)?;
    writeln!(out)?;
    Ok(())
}
