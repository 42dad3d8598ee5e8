//! Cached exports (MISP's export page): the catalogue of formats, where their files live, and the
//! restSearch each of them is. The exporter service regenerates a file when its view's visible data
//! changes ([`crate::search::prepare`] with [`Export::params`]); the API serves the files
//! (`handlers::exports`). A file is byte for byte the restSearch answer for its view.
//!
//! A view is an organisation's (`view_org` = its id: what its users may see) or the site admins'
//! (`view_org` = 0: everything).

use crate::search::{Params, Scope};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// One cached export format (MISP's `Event::exportTypes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// The name in `downloadExport/<name>`.
    pub name: &'static str,
    pub scope: Scope,
    /// The restSearch `returnFormat`.
    pub return_format: &'static str,
    /// Only published Events contribute.
    pub requires_published: bool,
    /// Only `to_ids` attributes contribute.
    pub to_ids_only: bool,
    pub description: &'static str,
}

/// The formats of MISP's export page. `text` is per attribute type (`downloadExport/text/<type>`).
pub const FORMATS: &[Format] = &[
    Format { name: "json", scope: Scope::Event, return_format: "json", requires_published: false, to_ids_only: false, description: "All Events and attributes you may see, in MISP JSON." },
    Format { name: "csv_sig", scope: Scope::Attribute, return_format: "csv", requires_published: true, to_ids_only: true, description: "IDS attributes of published Events, as CSV." },
    Format { name: "csv_all", scope: Scope::Attribute, return_format: "csv", requires_published: false, to_ids_only: false, description: "Every attribute you may see, as CSV." },
    Format { name: "suricata", scope: Scope::Attribute, return_format: "suricata", requires_published: true, to_ids_only: true, description: "Suricata rules from IDS attributes of published Events." },
    Format { name: "snort", scope: Scope::Attribute, return_format: "snort", requires_published: true, to_ids_only: true, description: "Snort rules from IDS attributes of published Events." },
    Format { name: "bro", scope: Scope::Attribute, return_format: "bro", requires_published: true, to_ids_only: true, description: "Zeek (Bro) intel from IDS attributes of published Events." },
    Format { name: "rpz", scope: Scope::Attribute, return_format: "rpz", requires_published: true, to_ids_only: true, description: "A DNS response policy zone from IDS attributes of published Events." },
    Format { name: "stix2", scope: Scope::Event, return_format: "stix2", requires_published: true, to_ids_only: false, description: "Published Events as a STIX 2.1 bundle." },
    Format { name: "hashes", scope: Scope::Attribute, return_format: "hashes", requires_published: true, to_ids_only: true, description: "Hash values of IDS attributes of published Events, one per line." },
    Format { name: "text", scope: Scope::Attribute, return_format: "text", requires_published: true, to_ids_only: true, description: "Values of one attribute type (downloadExport/text/<type>), one per line." },
];

pub fn format(name: &str) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.name == name)
}

/// One cached export: a format, with the attribute type for `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub format: &'static Format,
    pub extra: Option<String>,
}

impl Export {
    /// From `downloadExport/<name>[/<extra>]`; `text` needs a known attribute type (checked by the caller).
    pub fn parse(name: &str, extra: Option<&str>) -> Option<Self> {
        let format = format(name)?;
        let extra = extra.map(str::trim).filter(|e| !e.is_empty()).map(str::to_string);
        match (format.name, extra) {
            ("text", Some(t)) => Some(Self { format, extra: Some(t) }),
            ("text", None) => None,
            (_, _) => Some(Self { format, extra: None }),
        }
    }

    /// Its key in `exp.exports.format` (`csv_all`, `text/ip-src`).
    pub fn key(&self) -> String {
        match &self.extra {
            Some(e) => format!("{}/{e}", self.format.name),
            None => self.format.name.to_string(),
        }
    }

    /// From [`Self::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        match key.split_once('/') {
            Some((name, extra)) => Self::parse(name, Some(extra)),
            None => Self::parse(key, None),
        }
    }

    /// The restSearch this export is. Restrictive formats get their defaults (published, to_ids) from
    /// restSearch itself; the CSV signature export and STIX state theirs.
    pub fn params(&self) -> Params {
        let mut map = Map::new();
        map.insert("returnFormat".into(), json!(self.format.return_format));
        if self.format.requires_published && !cairn_formats::restrictive(self.format.return_format) {
            map.insert("published".into(), json!(true));
        }
        if self.format.to_ids_only && !cairn_formats::restrictive(self.format.return_format) {
            map.insert("to_ids".into(), json!(true));
        }
        if let Some(t) = &self.extra {
            map.insert("type".into(), Value::String(t.clone()));
        }
        Params::from_map(map)
    }

    /// The file of this export for a view, under the exports directory.
    pub fn path(&self, dir: &Path, view_org: i64) -> PathBuf {
        let name: String = self
            .key()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_string() } else { format!("%{:02X}", c as u32 & 0xff) })
            .collect();
        dir.join(view_org.to_string()).join(name)
    }

    /// The download name: `misp.<export>.<view>.<ext>` (MISP: `misp.<type>.<Org>.<ext>`).
    pub fn download_name(&self, view: &str) -> String {
        let ext = cairn_formats::file_extension(self.format.return_format).unwrap_or(if self.format.return_format == "bro" { "intel" } else { "txt" });
        let what = self.key().replace('/', "_").replace('|', "-");
        let view: String = view.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        format!("misp.{what}.{view}.{ext}")
    }
}

/// The exports a view's users see listed (and that asking for the list starts keeping fresh): every
/// format but `text`, which is per attribute type and kept once asked for.
pub fn default_exports() -> Vec<Export> {
    FORMATS.iter().filter(|f| f.name != "text").map(|f| Export { format: f, extra: None }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_text_needs_a_type() {
        let e = Export::parse("text", Some("ip-dst|port")).expect("text with a type");
        assert_eq!(e.key(), "text/ip-dst|port");
        assert_eq!(Export::from_key(&e.key()), Some(e.clone()));
        assert!(Export::parse("text", None).is_none());
        assert!(Export::parse("nope", None).is_none());
        let p = e.path(Path::new("/x"), 3);
        assert_eq!(p, PathBuf::from("/x/3/text%2Fip-dst%7Cport"));
        assert_eq!(e.download_name("CERT A"), "misp.text_ip-dst-port.CERT_A.txt");
    }

    #[test]
    fn params_are_the_restsearch_of_the_format() {
        let sig = Export::parse("csv_sig", None).expect("csv_sig").params();
        assert!(sig.on("published") && sig.on("to_ids"));
        let all = Export::parse("csv_all", None).expect("csv_all").params();
        assert!(all.get("published").is_none() && all.get("to_ids").is_none());
        assert_eq!(all.text("returnFormat").as_deref(), Some("csv"));
        let text = Export::parse("text", Some("md5")).expect("text").params();
        assert_eq!(text.text("type").as_deref(), Some("md5"));
    }
}
