//! MISP reference data fetched by the scripts from the PyPI packages that ship it (never committed):
//! `describeTypes.json` from pymisp, served verbatim.

use std::path::Path;

#[derive(Debug)]
pub struct Reference {
    /// `describeTypes.json` exactly as pymisp ships it.
    pub describe_types_raw: bytes::Bytes,
    pub describe_types: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("MISP reference data missing at {path}: run scripts/fetch-data (or set CAIRN_DATA_DIR): {source}")]
    Missing { path: String, source: std::io::Error },
    #[error("invalid reference file {path}: {source}")]
    Invalid { path: String, source: serde_json::Error },
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
        let describe_types = serde_json::from_slice(&raw)
            .map_err(|source| ReferenceError::Invalid { path: path.display().to_string(), source })?;
        Ok(Self { describe_types_raw: raw.into(), describe_types })
    }
}
