//! MISP warninglists: lists of known false positives (top domains, public resolvers, cloud
//! ranges, empty-file hashes…) and MISP's way of matching an attribute against them.
//!
//! Pure: the caller reads each `list.json` (the `misp-warninglists` format, shipped in the
//! pymispwarninglists wheel) and hands over its text with [`Warninglists::load`].
//!
//! # Matching (`Warninglist::checkValue`)
//! - Gate: only attributes with `to_ids` set, unless `warning_for_all`
//!   ([`Warninglists::set_warning_for_all`]); only enabled lists; only lists whose
//!   `matching_attributes` hold the attribute type (a list without any applies to `ALL`).
//! - Composite types (`x|y`, `malware-sample`): each half is checked, the first hit per list wins.
//! - `string`: exact and case-sensitive. `substring`: the first entry in list order that occurs in
//!   the value. `hostname`: the host of the value (the first `/`-segment, or the third when the
//!   value holds `//`), trailing dots dropped, looked up as `tld`, `sld.tld`, `a.sld.tld`…
//!   against entries lower-cased and dot-trimmed. `cidr`: the list network holding the address
//!   (a value network must lie inside it). `regex`: PCRE patterns, translated ([`pcre`]).
//!
//! # Default mode (intentional differences from MISP)
//! - A regex entry with PHP's invalid `g` flag works (MISP: the `phone_numbers` list never matches).
//!   Test: `the_g_flag_is_ignored_by_default`.
//! - The host of a `hostname` match is lower-cased and loses a `:port` and `user@`
//!   (MISP: `https://WWW.GOOGLE.COM/x` and `google.com:443/x` match nothing). Test:
//!   `hostnames_ignore_case_port_and_userinfo_by_default`.
//!
//! # Layout
//! `strset` (compact string sets for `string`/`hostname`), `cidr` (`CidrTool`), `substring`
//! (Aho–Corasick), `pcre` (pattern translation).

mod cidr;
mod pcre;
mod strset;
mod substring;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

pub use crate::freetext::Mode;
use crate::freetext::TldSet;
use cidr::{CidrSet, ParsedIp};
pub use cidr::Networks;
use strset::{StrSet, hash};
use substring::Substrings;

/// How a list's entries are compared with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    String,
    Substring,
    Hostname,
    Cidr,
    Regex,
}

impl ListType {
    /// The name used in `list.json` and by MISP.
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::String => "string",
            ListType::Substring => "substring",
            ListType::Hostname => "hostname",
            ListType::Cidr => "cidr",
            ListType::Regex => "regex",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ListType::String,
            "substring" => ListType::Substring,
            "hostname" => ListType::Hostname,
            "cidr" => ListType::Cidr,
            "regex" => ListType::Regex,
            _ => return None,
        })
    }
}

impl fmt::Display for ListType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `list.json` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarninglistError {
    #[error("warninglist {key}: not a valid list.json: {reason}")]
    Format { key: String, reason: String },
    #[error("warninglist {key}: unknown list type \"{list_type}\"")]
    UnknownType { key: String, list_type: String },
    #[error("warninglist {key}: loaded twice")]
    Duplicate { key: String },
}

/// One match of a value against a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The key the list was loaded under (the list's directory name upstream, e.g. `tranco`).
    pub list: String,
    /// The list's name (`Top 1,000,000 most-used sites from Tranco`).
    pub name: String,
    pub list_type: ListType,
    /// `false_positive` (upstream lists) or `known`.
    pub category: String,
    /// The list entry that matched (for `cidr`, the network as MISP writes it).
    pub matched: String,
    /// The part of the value that matched (one half of a composite value).
    pub value: String,
}

/// One list, compiled for matching.
#[derive(Debug)]
pub struct Warninglist {
    pub key: String,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub list_type: ListType,
    pub category: String,
    /// Attribute types the list applies to; empty means all.
    pub matching_attributes: Vec<String>,
    pub enabled: bool,
    /// Entries that can never match (not an address in a `cidr` list, a pattern the regex engine
    /// refuses), with the reason.
    pub unusable: Vec<(String, String)>,
    entries: Entries,
}

#[derive(Debug)]
enum Entries {
    Exact(StrSet),
    Hostnames(StrSet),
    Substrings(Substrings),
    Networks(CidrSet),
    Patterns(Vec<(String, Regex)>),
}

impl Warninglist {
    /// How many usable entries the list holds.
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Exact(s) | Entries::Hostnames(s) => s.len(),
            Entries::Substrings(s) => s.len(),
            Entries::Networks(c) => c.len(),
            Entries::Patterns(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the list applies to attributes of type `t`.
    pub fn applies_to(&self, t: &str) -> bool {
        self.matching_attributes.is_empty() || self.matching_attributes.iter().any(|a| a == t || a == "ALL")
    }

    /// The entries of a `string`, `hostname` or `substring` list (hostname entries lower-cased and
    /// dot-trimmed), in list order; other list types give nothing.
    pub fn string_entries(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match &self.entries {
            Entries::Exact(s) | Entries::Hostnames(s) => Box::new(s.iter()),
            Entries::Substrings(s) => Box::new(s.entries()),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn heap_bytes(&self) -> usize {
        match &self.entries {
            Entries::Exact(s) | Entries::Hostnames(s) => s.heap_bytes(),
            Entries::Substrings(s) => s.heap_bytes(),
            Entries::Networks(c) => c.len() * 24,
            Entries::Patterns(p) => p.len() * 1024,
        }
    }
}

/// A value prepared once for every list: its hash, its host suffixes, its address.
struct Probe<'a> {
    value: &'a str,
    hash: u64,
    /// Host suffixes (`com`, `google.com`, …) with their hashes, for `hostname` lists.
    suffixes: Vec<(String, u64)>,
    ip: Option<ParsedIp<'a>>,
}

impl<'a> Probe<'a> {
    fn new(value: &'a str, mode: Mode) -> Self {
        let suffixes = host_suffixes(value, mode).into_iter().map(|s| {
            let h = hash(s.as_bytes());
            (s, h)
        });
        Probe { value, hash: hash(value.as_bytes()), suffixes: suffixes.collect(), ip: ParsedIp::parse(value) }
    }
}

/// MISP's `__evalHostname` suffixes, shortest first: the host is the first `/`-segment (the
/// third when the value holds `//`), trailing dots dropped; a label that PHP finds `empty`
/// (`""`, `"0"`) restarts the suffix. Default mode: the host is lower-cased and loses `user@`
/// and `:port`.
fn host_suffixes(value: &str, mode: Mode) -> Vec<String> {
    let host = if value.contains("//") { value.split('/').nth(2).unwrap_or("") } else { value.split('/').next().unwrap_or("") };
    let host: Cow<'_, str> = if mode == Mode::Default {
        let h = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let h = match h.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => h,
        };
        Cow::Owned(h.to_lowercase())
    } else {
        Cow::Borrowed(host)
    };
    let host = host.trim_end_matches('.');
    let mut out = Vec::new();
    let mut rebuilt = String::new();
    for piece in host.rsplit('.') {
        rebuilt = if rebuilt.is_empty() || rebuilt == "0" { piece.to_string() } else { format!("{piece}.{rebuilt}") };
        out.push(rebuilt.clone());
    }
    out
}

/// All loaded lists and the matching settings.
#[derive(Debug, Default)]
pub struct Warninglists {
    lists: Vec<Warninglist>,
    /// List indices per attribute type, and those applying to every type.
    by_type: HashMap<String, Vec<usize>>,
    for_all_types: Vec<usize>,
    mode: Mode,
    warning_for_all: bool,
}

impl Warninglists {
    /// No lists yet, matching as `mode` says.
    pub fn new(mode: Mode) -> Self {
        Warninglists { mode, ..Default::default() }
    }

    /// Parses one `list.json` and adds it under `key` (its directory name upstream), disabled as
    /// MISP imports new lists ([`Self::set_enabled`], [`Self::enable_all`]).
    ///
    /// # Errors
    /// Not JSON, a required member (`name`, `description`, `version`, `type`, `list`) missing or of
    /// the wrong shape, an unknown list type, or `key` loaded already.
    pub fn load(&mut self, key: &str, json: &str) -> Result<&Warninglist, WarninglistError> {
        if self.lists.iter().any(|l| l.key == key) {
            return Err(WarninglistError::Duplicate { key: key.to_string() });
        }
        let list = parse(key, json, self.mode)?;
        let index = self.lists.len();
        if list.matching_attributes.is_empty() || list.matching_attributes.iter().any(|a| a == "ALL") {
            self.for_all_types.push(index);
        } else {
            for t in &list.matching_attributes {
                self.by_type.entry(t.clone()).or_default().push(index);
            }
        }
        self.lists.push(list);
        Ok(&self.lists[index])
    }

    /// Enables or disables the list with this key or name; `false` when there is none.
    pub fn set_enabled(&mut self, key_or_name: &str, enabled: bool) -> bool {
        let mut found = false;
        for l in self.lists.iter_mut().filter(|l| l.key == key_or_name || l.name == key_or_name) {
            l.enabled = enabled;
            found = true;
        }
        found
    }

    /// Enables every loaded list.
    pub fn enable_all(&mut self) {
        for l in &mut self.lists {
            l.enabled = true;
        }
    }

    /// MISP's `MISP.warning_for_all`: check attributes without `to_ids` too.
    pub fn set_warning_for_all(&mut self, on: bool) {
        self.warning_for_all = on;
    }

    /// The loaded lists, in load order.
    pub fn lists(&self) -> impl Iterator<Item = &Warninglist> {
        self.lists.iter()
    }

    /// The list with this key or name.
    pub fn get(&self, key_or_name: &str) -> Option<&Warninglist> {
        self.lists.iter().find(|l| l.key == key_or_name || l.name == key_or_name)
    }

    /// Entries held by all lists.
    pub fn entry_count(&self) -> usize {
        self.lists.iter().map(Warninglist::len).sum()
    }

    /// Approximate heap bytes of the compiled entries.
    pub fn heap_bytes(&self) -> usize {
        self.lists.iter().map(Warninglist::heap_bytes).sum()
    }

    /// The TLD set freetext import uses: the "TLDs as known by IANA" list plus `onion`, whether
    /// the list is enabled or not (as MISP's `fetchTLDLists`); only `onion` without it.
    pub fn tld_set(&self) -> TldSet {
        match self.get("TLDs as known by IANA") {
            Some(l) => TldSet::from_names(l.string_entries()),
            None => TldSet::onion_only(),
        }
    }

    /// The security-vendor domains freetext import types as `link`: the "automated-malware-analysis"
    /// list, enabled or not; empty without it (the extractor then uses MISP's two built-ins).
    pub fn security_vendor_domains(&self) -> Vec<String> {
        self.get("List of known domains used by automated malware analysis services & security vendors")
            .map(|l| l.string_entries().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The hits for an attribute of type `attr_type` with this value, in load order: nothing
    /// when `to_ids` is off (unless `warning_for_all`), otherwise as [`Self::check_all`].
    pub fn check(&self, attr_type: &str, value: &str, to_ids: bool) -> Vec<Hit> {
        if !to_ids && !self.warning_for_all {
            return Vec::new();
        }
        self.check_all(attr_type, value)
    }

    /// The hits against every enabled list that applies to `attr_type`, ignoring `to_ids` (MISP's
    /// save-time filter for freetext and API imports): at most one per list, in load order.
    pub fn check_all(&self, attr_type: &str, value: &str) -> Vec<Hit> {
        let composite = attr_type.contains('|') || attr_type == "malware-sample";
        let halves: Vec<&str> = if composite { value.splitn(2, '|').collect() } else { vec![value] };
        let probes: Vec<Probe<'_>> = halves.into_iter().map(|v| Probe::new(v, self.mode)).collect();
        let mut indices: Vec<usize> = self.for_all_types.clone();
        if let Some(typed) = self.by_type.get(attr_type) {
            indices.extend(typed);
            indices.sort_unstable();
        }
        let mut hits = Vec::new();
        for i in indices {
            let list = &self.lists[i];
            if !list.enabled {
                continue;
            }
            hits.extend(first_hit(list, &probes));
        }
        hits
    }
}

impl Warninglists {
    /// The hits of a bare value against every enabled list, whatever attribute types the lists
    /// apply to (MISP's `warninglists/checkValue`); a value with `|` is checked per part.
    pub fn check_value(&self, value: &str) -> Vec<Hit> {
        let probes: Vec<Probe<'_>> = value.split('|').map(|v| Probe::new(v, self.mode)).collect();
        let mut hits = Vec::new();
        for list in self.lists.iter().filter(|l| l.enabled) {
            hits.extend(first_hit(list, &probes));
        }
        hits
    }
}

/// The hit of the first probe (value part) that `list` matches: at most one hit per list.
fn first_hit(list: &Warninglist, probes: &[Probe<'_>]) -> Option<Hit> {
    probes.iter().find_map(|probe| {
        list_match(list, probe).map(|matched| Hit {
            list: list.key.clone(),
            name: list.name.clone(),
            list_type: list.list_type,
            category: list.category.clone(),
            matched,
            value: probe.value.to_string(),
        })
    })
}

/// The entry of `list` that `probe` matches, as MISP reports it.
fn list_match(list: &Warninglist, probe: &Probe<'_>) -> Option<String> {
    match &list.entries {
        Entries::Exact(set) => set.contains_hashed(probe.hash, probe.value.as_bytes()).then(|| probe.value.to_string()),
        Entries::Hostnames(set) => {
            probe.suffixes.iter().find(|(s, h)| set.contains_hashed(*h, s.as_bytes())).map(|(s, _)| s.clone())
        }
        Entries::Substrings(s) => s.first_in(probe.value).map(str::to_string),
        Entries::Networks(c) => {
            let ip = probe.ip.as_ref()?;
            c.find(ip).filter(|(_, bits)| ip.fits(*bits)).map(|(m, _)| m)
        }
        Entries::Patterns(p) => p.iter().find(|(_, r)| r.is_match(probe.value)).map(|(e, _)| e.clone()),
    }
}

/// `list.json` as MISP reads it: `type` a string or an array (the first element counts), `list`
/// an array of strings or an object whose keys are the entries (values are comments).
#[derive(Deserialize)]
struct ListFile<'a> {
    name: String,
    description: String,
    version: i64,
    #[serde(rename = "type")]
    list_type: TypeField,
    #[serde(borrow)]
    list: EntryList<'a>,
    #[serde(default)]
    matching_attributes: Vec<String>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TypeField {
    One(String),
    Many(Vec<String>),
}

/// The entries, borrowed from the JSON text where no escape forces a copy.
struct EntryList<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for EntryList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EntryList<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings or an object of entry: comment")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Entry(e)) = seq.next_element()? {
                    out.push(e);
                }
                Ok(EntryList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Entry(e)) = map.next_key()? {
                    map.next_value::<de::IgnoredAny>()?;
                    out.push(e);
                }
                Ok(EntryList(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One entry: a string, borrowed when possible.
struct Entry<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Entry(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Entry(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Entry(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A list as `warninglists/index` and `view` describe it, read without compiling its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub description: String,
    pub version: i64,
    pub list_type: ListType,
    /// `false_positive` (upstream lists) or `known`.
    pub category: String,
    /// Attribute types the list applies to; empty means all.
    pub matching_attributes: Vec<String>,
    /// How many entries the file holds.
    pub entry_count: usize,
    /// The entries in file order, when asked for.
    pub entries: Vec<String>,
}

/// Reads a `list.json` for display: its description, its entry count and, with `with_entries`, the
/// entries themselves.
///
/// # Errors
/// As [`Warninglists::load`].
pub fn read_info(key: &str, json: &str, with_entries: bool) -> Result<ListInfo, WarninglistError> {
    let (file, list_type) = read_file(key, json)?;
    let raw = file.list.0;
    Ok(ListInfo {
        name: file.name,
        description: file.description,
        version: file.version,
        list_type,
        category: file.category.unwrap_or_else(|| "false_positive".to_string()),
        matching_attributes: file.matching_attributes,
        entry_count: raw.len(),
        entries: if with_entries { raw.into_iter().map(Cow::into_owned).collect() } else { Vec::new() },
    })
}

fn read_file<'a>(key: &str, json: &'a str) -> Result<(ListFile<'a>, ListType), WarninglistError> {
    let mut file: ListFile<'_> = serde_json::from_str(json)
        .map_err(|e| WarninglistError::Format { key: key.to_string(), reason: e.to_string() })?;
    let type_name = match std::mem::replace(&mut file.list_type, TypeField::Many(Vec::new())) {
        TypeField::One(t) => t,
        TypeField::Many(ts) => ts.into_iter().next().unwrap_or_default(),
    };
    let list_type = ListType::parse(&type_name)
        .ok_or_else(|| WarninglistError::UnknownType { key: key.to_string(), list_type: type_name.clone() })?;
    Ok((file, list_type))
}

fn parse(key: &str, json: &str, mode: Mode) -> Result<Warninglist, WarninglistError> {
    let (file, list_type) = read_file(key, json)?;
    let raw = file.list.0;
    let mut unusable = Vec::new();
    let entries = match list_type {
        ListType::String => Entries::Exact(StrSet::build(raw.iter().map(|e| e.as_ref()), raw.len())),
        ListType::Hostname => {
            // MISP compares hostnames with entries lower-cased and dot-trimmed.
            let mut set = StrSet::with_capacity(raw.len());
            let mut entry = String::new();
            for e in &raw {
                entry.clear();
                entry.push_str(e.trim_matches('.'));
                entry.make_ascii_lowercase();
                set.insert(&entry);
            }
            set.shrink();
            Entries::Hostnames(set)
        }
        ListType::Substring => Entries::Substrings(Substrings::build(raw.iter().map(|e| e.as_ref()))),
        ListType::Cidr => {
            let (set, rejected) = CidrSet::build(raw.iter().map(|e| e.as_ref()));
            unusable.extend(rejected.into_iter().map(|e| (e, "not an IP address or network".to_string())));
            Entries::Networks(set)
        }
        ListType::Regex => {
            let mut patterns = Vec::new();
            for e in &raw {
                match pcre::compile(e, mode) {
                    Ok(r) => patterns.push((e.to_string(), r)),
                    Err(reason) => unusable.push((e.to_string(), reason)),
                }
            }
            Entries::Patterns(patterns)
        }
    };
    Ok(Warninglist {
        key: key.to_string(),
        name: file.name,
        description: file.description,
        version: file.version,
        list_type,
        category: file.category.unwrap_or_else(|| "false_positive".to_string()),
        matching_attributes: file.matching_attributes,
        enabled: false,
        unusable,
        entries,
    })
}

#[cfg(test)]
mod tests;
