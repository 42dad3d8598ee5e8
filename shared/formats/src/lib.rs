//! MISP's export formats, rendered from plain records one item at a time.
//!
//! Every writer follows the same shape so the API can stream restSearch results and the
//! exporter can write cached exports without holding a result set in memory:
//!
//! ```
//! # use cairn_formats::{csv::{CsvOptions, CsvWriter}, Attribute, Event};
//! # fn rows() -> Vec<(Event, Attribute)> { Vec::new() }
//! let mut writer = CsvWriter::new(CsvOptions::default());
//! let mut out = String::new();
//! writer.begin(&mut out);
//! for (event, attribute) in rows() {
//!     writer.push(&event, &attribute, &mut out);
//!     // flush `out` to the socket / file whenever it grows, then `out.clear()`
//! }
//! writer.finish(&mut out);
//! ```
//!
//! Writers only append to `out`; they never clear it, read a clock, make a UUID or do I/O. The
//! caller passes "now" and ids in through the options, and is responsible for filtering (ACLs,
//! `to_ids`/`published` defaults of [restrictive](restrictive) formats, allowedlists,
//! warninglists) and for ordering rows the way MISP does (ascending attribute id).
//!
//! What a format keeps between items is bounded by what MISP itself keeps: the text, hosts and
//! RPZ exports de-duplicate values (a set of seen values), Bro/Zeek sorts its whole output, and
//! STIX 2.1 works one Event at a time.
//!
//! The facts (column names, line formats, sid scheme, defaults) come from MISP's
//! `app/Lib/Export/*.php` and misp-stix; each module names its sources. MISP is AGPL: only the
//! facts were taken, the code is Cairn's own.
//!
//! # Layout
//! - [`record`]: [`Event`], [`Attribute`] and [`Scope`], the records every writer reads.
//! - [`csv`]: MISP's attribute CSV (`CsvExport`).
//! - [`text`]: one unique value per line (`TextExport`).
//! - [`hashes`]: one hash per line (`HashesExport`).
//! - [`nids`]: Suricata and Snort rules (`NidsExport`, `NidsSuricataExport`, `NidsSnortExport`).
//! - [`rpz`]: a DNS Response Policy Zone (`RPZExport`).
//! - [`hosts`]: an `/etc/hosts` blocklist (`HostsExport`).
//! - [`netfilter`]: `iptables` commands (`NetfilterExport`).
//! - [`bro`]: a Bro/Zeek intel file (`BroExport`, `/attributes/bro`).
//! - [`stix2`]: a STIX 2.1 bundle shaped like misp-stix's output.
//! - This file: [`Format`] and MISP's per-format facts ([`restrictive`], [`content_type`],
//!   [`file_extension`]).

pub mod bro;
pub mod csv;
pub mod hashes;
pub mod hosts;
pub mod netfilter;
pub mod nids;
pub mod record;
pub mod rpz;
pub mod stix2;
pub mod text;

pub use record::{Attribute, Event, Scope};

/// The formats this crate renders, by their MISP `returnFormat` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Text,
    Hashes,
    Suricata,
    Snort,
    Rpz,
    Hosts,
    Netfilter,
    /// Not a restSearch format in MISP: `/attributes/bro/download/{type}` and the cached export.
    Bro,
    Stix2,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 10] = [
        Format::Csv,
        Format::Text,
        Format::Hashes,
        Format::Suricata,
        Format::Snort,
        Format::Rpz,
        Format::Hosts,
        Format::Netfilter,
        Format::Bro,
        Format::Stix2,
    ];

    /// Parses a MISP `returnFormat` value (exact, lower-case, as MISP compares it).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The MISP `returnFormat` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Text => "text",
            Format::Hashes => "hashes",
            Format::Suricata => "suricata",
            Format::Snort => "snort",
            Format::Rpz => "rpz",
            Format::Hosts => "hosts",
            Format::Netfilter => "netfilter",
            Format::Bro => "bro",
            Format::Stix2 => "stix2",
        }
    }
}

/// Whether MISP applies its "restrictive format" defaults to a restSearch `returnFormat`:
/// `to_ids = 1` and `published = 1` when the request does not set them (and
/// `allow_proposal_blocking`). Export classes without `public $non_restrictive_export = true` are
/// restrictive (`Event::restSearchFilterMassage`, `MispAttribute::restSearch`).
///
/// Restrictive: `text`, `hashes`, `snort`, `suricata`, `rpz`, `openioc`, `kunai`, `hosts`, and
/// `bro` (whose endpoint hard-codes published, IDS-flagged attributes). Everything else, including
/// unknown names, is not: `json`, `xml`, `csv`, `cache`, `count`, `netfilter`, `yara`,
/// `yara-json`, `stix`, `stix-json`, `stix2`, `attack`, `attack-sightings`, `context`,
/// `context-markdown`, `opendata`.
pub fn restrictive(format: &str) -> bool {
    matches!(
        format,
        "text" | "hashes" | "snort" | "suricata" | "rpz" | "openioc" | "kunai" | "hosts" | "bro"
    )
}

/// The HTTP `Content-Type` MISP answers a `returnFormat` with, from the first element of
/// `MispAttribute::$validFormats` / `Event::$validFormats` (`txt` → `text/plain`, `csv` →
/// `text/csv`, `json` → `application/json`, `xml` → `application/xml`). `None` for a name MISP
/// does not know (MISP answers 404 "Invalid output format.").
pub fn content_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "csv" => "text/csv",
        "json" | "kunai" | "stix2" | "stix-json" | "yara-json" | "attack-sightings" => {
            "application/json"
        }
        "xml" | "openioc" | "stix" => "application/xml",
        "text" | "hashes" | "cache" | "count" | "hosts" | "netfilter" | "opendata" | "rpz"
        | "snort" | "suricata" | "yara" | "bro" => "text/plain",
        _ => return None,
    })
}

/// The file extension MISP uses in the `Content-Disposition` filename for a `returnFormat`
/// (`misp.event.<id|list>.<ext>`; third element of `$validFormats`). Bro's endpoint names its
/// file `misp.<type>.intel`.
pub fn file_extension(format: &str) -> Option<&'static str> {
    Some(match format {
        "csv" => "csv",
        "json" | "kunai" | "stix2" | "stix-json" | "yara-json" | "attack-sightings" => "json",
        "xml" | "stix" => "xml",
        "openioc" => "ioc",
        "text" | "hashes" | "count" | "hosts" | "opendata" => "txt",
        "cache" => "cache",
        "netfilter" => "sh",
        "rpz" => "rpz",
        "snort" | "suricata" => "rules",
        "yara" => "yara",
        "bro" => "intel",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_its_name_and_has_misp_facts() {
        for format in Format::ALL {
            assert_eq!(Format::from_name(format.name()), Some(format));
            assert!(content_type(format.name()).is_some(), "{format:?}");
            assert!(file_extension(format.name()).is_some(), "{format:?}");
        }
        assert_eq!(Format::from_name("CSV"), None);
    }

    #[test]
    fn restrictive_formats_are_the_ones_misp_lists() {
        for name in [
            "text", "hashes", "snort", "suricata", "rpz", "hosts", "openioc", "kunai",
        ] {
            assert!(restrictive(name), "{name}");
        }
        for name in [
            "json",
            "xml",
            "csv",
            "netfilter",
            "stix2",
            "cache",
            "count",
            "nope",
        ] {
            assert!(!restrictive(name), "{name}");
        }
    }

    #[test]
    fn content_types_and_extensions_follow_valid_formats() {
        assert_eq!(content_type("csv"), Some("text/csv"));
        assert_eq!(content_type("stix2"), Some("application/json"));
        assert_eq!(content_type("suricata"), Some("text/plain"));
        assert_eq!(content_type("bogus"), None);
        assert_eq!(file_extension("suricata"), Some("rules"));
        assert_eq!(file_extension("netfilter"), Some("sh"));
        assert_eq!(file_extension("rpz"), Some("rpz"));
        assert_eq!(file_extension("bogus"), None);
    }
}
