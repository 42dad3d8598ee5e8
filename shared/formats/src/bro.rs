//! MISP's Bro/Zeek intel export (`/attributes/bro/download/{type}/…`, cached export `bro`).
//!
//! Not a restSearch format. Sources: MISP `app/Lib/Export/BroExport.php` (mapping, line format,
//! `replaceIllegalChars`), `MispAttribute::bro` (type groups, `natsort` + `array_unique`, header)
//! and `AttributesController::bro` (lines joined with `\n`, final `\n`, file
//! `misp.<type>.intel`).
//!
//! - Header: `#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.do_notice\tmeta.if_in`.
//! - Line: `<indicator>\tIntel::<TYPE>\t<instance> (<event uuid>) - <creator org>\t<event info>.
//!   <comment>\t<baseurl>/events/view/<event id>\tT\t-`. `<instance>` is `<host org name> MISP`,
//!   or `MISP` without a host org.
//! - Type groups (`{type}` in the URL; `all` = every group): `ip`, `url`, `domain`, `email`,
//!   `filename`, `filehash`, `certhash`, `software`. A composite attribute can appear in two groups
//!   with either half (`domain|ip` → DOMAIN and ADDR, `filename|md5` → FILE_NAME and FILE_HASH).
//! - Intel types: ADDR (SUBNET when the value contains `/`; `ip-*|port` use the IP), DOMAIN,
//!   URL (`http://`/`https://` stripped), EMAIL, FILE_NAME, FILE_HASH, CERT_HASH, SOFTWARE.
//! - Tabs/newlines become spaces; HTML tags and non-ASCII characters are stripped (PHP's
//!   `FILTER_SANITIZE_STRING` with `FILTER_FLAG_STRIP_HIGH`, then `html_entity_decode`).
//! - The lines are sorted in natural order and de-duplicated, so the writer keeps them until
//!   [`BroWriter::finish`].
//! - Only IDS-flagged attributes of published events are exported (the caller filters).
//!
//! Divergence: MISP's attribute fetch for this export does not load `Event.info`, so MISP's
//! `meta.desc` is `. <comment>`; Cairn writes the event info the format string intends.

use std::cmp::Ordering;

use crate::record::{Attribute, Event};

/// The header line (`BroExport::$header`).
pub const HEADER: &str = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.do_notice\tmeta.if_in";

/// A `{type}` group of `/attributes/bro/download/{type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroGroup {
    Ip,
    Url,
    Domain,
    Email,
    Filename,
    Filehash,
    Certhash,
    Software,
}

impl BroGroup {
    /// Every group, in MISP's order (what `all` means).
    pub const ALL: [BroGroup; 8] = [
        BroGroup::Ip,
        BroGroup::Url,
        BroGroup::Domain,
        BroGroup::Email,
        BroGroup::Filename,
        BroGroup::Filehash,
        BroGroup::Certhash,
        BroGroup::Software,
    ];

    /// Parses a `{type}` path segment; `all` yields every group, unknown names none (MISP then
    /// exports nothing but the header).
    pub fn parse(name: &str) -> Vec<BroGroup> {
        match name {
            "all" => BroGroup::ALL.to_vec(),
            "ip" => vec![BroGroup::Ip],
            "url" => vec![BroGroup::Url],
            "domain" => vec![BroGroup::Domain],
            "email" => vec![BroGroup::Email],
            "filename" => vec![BroGroup::Filename],
            "filehash" => vec![BroGroup::Filehash],
            "certhash" => vec![BroGroup::Certhash],
            "software" => vec![BroGroup::Software],
            _ => Vec::new(),
        }
    }

    /// `BroExport::$mispTypes`: the MISP types of the group and which value half they export.
    fn members(self) -> &'static [(&'static str, Half)] {
        use Half::{First, Second};
        match self {
            BroGroup::Ip => &[
                ("ip-src", First),
                ("ip-dst", First),
                ("ip-src|port", First),
                ("ip-dst|port", First),
                ("domain|ip", Second),
            ],
            BroGroup::Url => &[("url", First)],
            BroGroup::Domain => &[("hostname", First), ("domain", First), ("domain|ip", First)],
            BroGroup::Email => &[
                ("email-src", First),
                ("email-dst", First),
                ("target-email", First),
            ],
            BroGroup::Filename => &[
                ("filename", First),
                ("email-attachment", First),
                ("attachment", First),
                ("filename|md5", First),
                ("filename|sha1", First),
                ("filename|sha256", First),
                ("malware-sample", First),
                ("pdb", First),
            ],
            BroGroup::Filehash => &[
                ("md5", First),
                ("sha1", First),
                ("sha256", First),
                ("authentihash", First),
                ("ssdeep", First),
                ("imphash", First),
                ("pehash", First),
                ("impfuzzy", First),
                ("sha224", First),
                ("sha384", First),
                ("sha512", First),
                ("sha512/224", First),
                ("sha512/256", First),
                ("tlsh", First),
                ("filename|md5", Second),
                ("filename|sha1", Second),
                ("filename|sha256", Second),
                ("filename|authentihash", Second),
                ("filename|ssdeep", Second),
                ("filename|imphash", Second),
                ("filename|pehash", Second),
                ("filename|impfuzzy", Second),
                ("filename|sha224", Second),
                ("filename|sha384", Second),
                ("filename|sha512", Second),
                ("filename|sha512/224", Second),
                ("filename|sha512/256", Second),
                ("filename|tlsh", Second),
                ("malware-sample", Second),
            ],
            BroGroup::Certhash => &[("x509-fingerprint-sha1", First)],
            BroGroup::Software => &[("user-agent", First)],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    First,
    Second,
}

/// `BroExport::$mapping`: the intel type of a MISP type, for the first and second value half.
fn intel_type(attr_type: &str, half: Half, value: &str) -> Option<&'static str> {
    let subnet = |plain: &'static str| if value.contains('/') { "SUBNET" } else { plain };
    let (first, second) = match attr_type {
        "ip-dst" | "ip-src" => (subnet("ADDR"), None),
        "ip-dst|port" | "ip-src|port" => (subnet("ADDR"), Some("NONE")),
        "email-src" | "email-dst" | "target-email" => ("EMAIL", None),
        "email-attachment" | "filename" | "pdb" => ("FILE_NAME", None),
        "hostname" | "domain" => ("DOMAIN", None),
        "domain|ip" => ("DOMAIN", Some("ADDR")),
        "url" => ("URL", None),
        "user-agent" => ("SOFTWARE", None),
        "md5" | "sha1" | "sha256" | "authentihash" | "ssdeep" | "imphash" | "pehash"
        | "impfuzzy" | "sha224" | "sha384" | "sha512" | "sha512/224" | "sha512/256" | "tlsh"
        | "cdhash" => ("FILE_HASH", None),
        "x509-fingerprint-sha1" => ("CERT_HASH", None),
        "malware-sample" => ("FILE_NAME", Some("FILE_HASH")),
        t if t.starts_with("filename|") => ("FILE_NAME", Some("FILE_HASH")),
        _ => return None,
    };
    // MISP checks the alternate (SUBNET) first, then lets the composite type win for half 2.
    Some(match (half, second) {
        (Half::Second, Some(composite)) => composite,
        _ => first,
    })
}

/// What the Bro export needs from the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroOptions {
    /// The `{type}` groups to export.
    pub groups: Vec<BroGroup>,
    /// `MISP.baseurl`, without a trailing slash.
    pub base_url: String,
    /// The host organisation's name (`MISP.host_org_id`), if any.
    pub host_org_name: Option<String>,
}

/// Collects Bro intel lines and writes them sorted at the end.
#[derive(Debug, Clone)]
pub struct BroWriter {
    options: BroOptions,
    lines: Vec<String>,
}

impl BroWriter {
    /// A writer for the given groups and instance facts.
    pub fn new(options: BroOptions) -> BroWriter {
        BroWriter {
            options,
            lines: Vec::new(),
        }
    }

    /// Nothing is written before the end (the output is sorted).
    pub fn begin(&mut self, _out: &mut String) {}

    /// Records the attribute's intel lines.
    pub fn push(&mut self, event: &Event, attribute: &Attribute, _out: &mut String) {
        let instance = match &self.options.host_org_name {
            Some(name) => format!("{name} MISP"),
            None => "MISP".to_string(),
        };
        for group in &self.options.groups {
            for (member, half) in group.members() {
                if *member != attribute.attr_type {
                    continue;
                }
                let raw = match half {
                    Half::First => &attribute.value1,
                    Half::Second => &attribute.value2,
                };
                let Some(kind) = intel_type(&attribute.attr_type, *half, raw) else {
                    continue;
                };
                let mut indicator = sanitize(raw);
                if attribute.attr_type == "url" {
                    indicator = strip_http_scheme(&indicator).to_string();
                }
                self.lines.push(format!(
                    "{}\tIntel::{kind}\t{instance} ({}) - {}\t{}. {}\t{}/events/view/{}\tT\t-",
                    sanitize(&indicator),
                    event.uuid,
                    event.orgc_name,
                    sanitize(&event.info),
                    sanitize(&attribute.comment),
                    self.options.base_url,
                    event.id,
                ));
            }
        }
    }

    /// Writes the header and the sorted, de-duplicated lines.
    pub fn finish(&mut self, out: &mut String) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.sort_by(|a, b| natural_cmp(a, b));
        lines.dedup();
        out.push_str(HEADER);
        for line in lines {
            out.push('\n');
            out.push_str(&line);
        }
        out.push('\n');
    }
}

/// `#^https?://#` removed.
fn strip_http_scheme(value: &str) -> &str {
    value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value)
}

/// `BroExport::replaceIllegalChars`.
fn sanitize(value: &str) -> String {
    let spaced = value
        .replace("\r\n", " ")
        .replace(['\t', '\x0b', '\r', '\n'], " ");
    let mut out = String::with_capacity(spaced.len());
    let mut chars = spaced.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<' && chars.peek().is_some_and(|next| !next.is_whitespace()) {
            // A tag: dropped up to and including `>` (or to the end when unclosed).
            for inner in chars.by_ref() {
                if inner == '>' {
                    break;
                }
            }
            continue;
        }
        if c.is_ascii() {
            out.push(c);
        }
    }
    decode_entities(&out)
}

/// The entities `html_entity_decode` turns back after the sanitising filter.
fn decode_entities(value: &str) -> String {
    [
        ("&#39;", "'"),
        ("&#039;", "'"),
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(value.to_string(), |acc, (entity, plain)| {
        acc.replace(entity, plain)
    })
}

/// PHP's `strnatcmp`: runs of digits compare by value, everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&a[si..i]);
            let nb = trim_zeros(&b[sj..j]);
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut v = vec!["10.0.0.1", "9.0.0.1", "192.0.2.1", "a", "B"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["9.0.0.1", "10.0.0.1", "192.0.2.1", "B", "a"]);
    }

    #[test]
    fn sanitize_strips_tags_controls_and_non_ascii() {
        assert_eq!(
            sanitize("a\tb\r\nc <b>bold</b> é 1 < 2 \"q\""),
            "a b c bold  1 < 2 \"q\""
        );
    }

    #[test]
    fn composite_halves_get_their_own_intel_type() {
        assert_eq!(intel_type("domain|ip", Half::First, "x"), Some("DOMAIN"));
        assert_eq!(
            intel_type("domain|ip", Half::Second, "1.2.3.4"),
            Some("ADDR")
        );
        assert_eq!(
            intel_type("ip-dst", Half::First, "10.0.0.0/8"),
            Some("SUBNET")
        );
        assert_eq!(
            intel_type("filename|sha256", Half::Second, "ab"),
            Some("FILE_HASH")
        );
        assert_eq!(intel_type("attachment", Half::First, "x"), None);
    }
}
