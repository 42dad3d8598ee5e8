//! Freetext import: indicators found in prose, tables and listings, typed the way MISP's
//! `ComplexTypeTool::checkFreeText` types them, as proposals an analyst confirms.
//!
//! Pure: text in, [`Candidate`]s out. The TLD list and the security-vendor domains are data the
//! caller hands over ([`TldSet`], [`Options::security_vendor_domains`]); nothing is read or fetched.
//!
//! # Layout
//! - this module: [`extract`], [`extract_with`], [`Candidate`], [`Mode`], the type defaults;
//! - `tokenize`: text → tokens ([`Mode::Compat`]: MISP's split; [`Mode::Default`]: markup-aware);
//! - `resolve`: token → typed value (MISP's `__resolveType`, step by step);
//! - `php`: the PHP built-ins the resolution depends on (`FILTER_VALIDATE_IP/EMAIL/URL`, `parse_url`);
//! - `crypto`: Bitcoin checksums and Monero shapes; `json`: MISP's JSON input path;
//! - `tld`: [`TldSet`].
//!
//! # Behaviour shared by both modes
//! - Results come in first-occurrence order, de-duplicated on the resolved value.
//! - Input starting with `{` that parses as JSON is read leaf by leaf (each string and its own
//!   tokens), as MISP does.
//! - **Lossy UTF-8**: an invalid byte sequence reads as a space. (MISP's `/u` regexes fail on
//!   invalid UTF-8 and the whole import returns nothing; that is never useful, so compat mode does
//!   not reproduce it.)
//! - `to_ids` and `category` come from the default type ([`type_defaults`], the values of PyMISP's
//!   `describeTypes.json`; [`apply_catalogue`] re-reads them from the live catalogue).
//!
//! # Compat mode
//! Reproduces MISP 2.5 exactly on the golden vectors (`tests/freetext_vectors.rs`: 174 cases under
//! the three TLD regimes) and on the evaluation corpus, quirks included: the Bitcoin regex that
//! anchors only half of itself; a URL's trailing port moved to the comment (and the port text
//! removed everywhere in the value); antivirus names (`Win32/Agent.ABQB`) typed `url`; dates typed
//! `phone-number` and `1:a:b` typed `ssdeep`; any numeric CIDR suffix (`/33`); `(.)` not refanged;
//! backticks, `++` and `|` table cells not stripped; names with spaces split; `mailto:` addresses
//! typed `filename`; IPv6 URLs missed; `CORP\jdoe` typed `regkey`; security-vendor domains matched
//! as plain string suffixes (`notvirustotal.com`) over `https://` only.
//!
//! # Default mode: the intentional differences from MISP
//! Each has a test (named at the end of the item, in `freetext::tests`); the golden cases where
//! the default answer differs are listed with the same test names in `tests/freetext_vectors.rs`.
//! 1. Markdown/AsciiDoc-aware tokenising: backticks, `++…++`, `*emphasis*`, `|` table cells
//!    (a `filename|hash` value is kept), `\https://…` escapes, `url[text]` and `[text](url)` links,
//!    `link:` macros, trailing `:`/`!`/`?`, unbalanced brackets, typographic quotes; any Unicode
//!    space separates. `markdown_and_asciidoc_markup_is_peeled_off`
//! 2. Names kept whole: quoted names with spaces, `hash  file name` listings, Windows paths cut by
//!    spaces. `names_with_spaces_are_kept_whole`
//! 3. More refanging: `(.)`, `{.}`, `[DOT]`, `(dot)`, `[at]`/`(at)` in any case, `[://]`, `[/]`,
//!    `fxp://`. `more_defanging_styles_are_undone`
//! 4. Bitcoin addresses need a valid checksum (Base58Check, Bech32/Bech32m) over the whole token;
//!    hex hashes no longer get `btc`. `bitcoin_addresses_need_a_valid_checksum`
//! 5. A URL keeps a trailing port (`http://1.2.3.4:8080`). `a_url_keeps_its_trailing_port`
//! 6. Antivirus detection names (`Win32/Agent.ABQB`) are neither URLs nor file names; a URL
//!    without a scheme needs a known-TLD host or an IP. `detection_names_are_not_urls_or_files`
//! 7. Dates are not phone numbers, and phone numbers need `+` and 8–15 digits or the
//!    `NNN-NNN-NNNN` shape; `1:a:b` is not ssdeep (block size 3·2ⁿ). `dates_and_times_are_not_numbers_or_hashes`
//! 8. CIDR prefixes must fit the family (`/33` refused), ports 1–65535, only the trailing port is
//!    removed (MISP removes the port text everywhere). `prefixes_and_ports_are_range_checked`
//! 9. URLs with an IPv6 host, and `[v6]` alone, are recognised. `ipv6_in_brackets_is_recognised`
//! 10. `mailto:` addresses are e-mail addresses. `mailto_is_an_email`
//! 11. Security-vendor links match at a label boundary, over http and https. `vendor_links_match_whole_labels`
//! 12. Values are normalised where MISP normalises at save (hashes, hostnames, domains, e-mails
//!     lower-cased), so case variants collapse. `case_variants_collapse`
//! 13. More types: `chrome-extension-id`, `xmr`, `tlsh`, `ASN123` → `AS123`. `more_types_are_detected`
//! 14. Unicode TLDs are looked up by punycode (`пример.рф`). `unicode_tlds_are_known`
//! 15. Only registry hives start a `regkey` (`CORP\jdoe` is not one). `only_hives_start_registry_keys`
//! 16. A two-label name whose TLD is a common file extension (`README.md`, `setup.py`) is proposed
//!     as a file name first. `file_extension_tlds_prefer_filename`
//!
//! # Cost
//! Every step reads a token a bounded number of times and nothing backtracks, so time is linear
//! in the input; repeated tokens are resolved once.

mod crypto;
mod json;
pub(crate) mod php;
mod resolve;
mod tld;
mod tokenize;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use serde::Serialize;

pub use tld::TldSet;

use crate::types::TypeCatalogue;
use resolve::{Ctx, Resolved};

/// Which behaviour to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// MISP 2.5's answers, quirks included.
    Compat,
    /// MISP's behaviour with its known quirks fixed (listed in the module docs).
    #[default]
    Default,
}

/// One proposed attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub value: String,
    /// Every type the value could be, the preferred first. May hold MISP's pseudo-types
    /// `ip-src/ip-dst` and `ip-src|port/ip-dst|port` (one attribute of each type at save).
    pub types: Vec<String>,
    /// The type proposed by default (`types[0]`, except `email-src` for e-mail addresses).
    pub default_type: String,
    /// The default category of `default_type`.
    pub category: String,
    /// The default IDS flag of `default_type`.
    pub to_ids: bool,
    /// `On port N` when a trailing port was taken off the value; empty otherwise.
    pub comment: String,
}

/// MISP's built-in security-vendor domains, used when none are given.
pub const DEFAULT_SECURITY_VENDOR_DOMAINS: [&str; 2] = ["virustotal.com", "hybrid-analysis.com"];

/// What an extraction runs with.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub mode: Mode,
    /// Known top-level domains (MISP: the IANA warninglist plus `onion`).
    pub tlds: &'a TldSet,
    /// Domains whose `https://` URLs are `link`s (MISP: the "automated-malware-analysis"
    /// warninglist). Empty: [`DEFAULT_SECURITY_VENDOR_DOMAINS`], as MISP falls back.
    pub security_vendor_domains: &'a [String],
}

/// The indicators in `text`, with MISP's built-in security-vendor domains. See `extract_with`.
pub fn extract(text: &[u8], mode: Mode, tlds: &TldSet) -> Vec<Candidate> {
    extract_with(text, &Options { mode, tlds, security_vendor_domains: &[] })
}

/// The indicators in `text`: tokens typed by MISP's rules, first occurrence first, each value once.
pub fn extract_with(text: &[u8], options: &Options<'_>) -> Vec<Candidate> {
    let vendors: Vec<&str> = if options.security_vendor_domains.is_empty() {
        DEFAULT_SECURITY_VENDOR_DOMAINS.to_vec()
    } else {
        options.security_vendor_domains.iter().map(String::as_str).collect()
    };
    let cx = Ctx { mode: options.mode, tlds: options.tlds, vendors: &vendors };
    let text = tokenize::decode(text);
    if php::is_empty(&text) {
        return Vec::new();
    }
    let json_start = text.starts_with('{') || (cx.mode == Mode::Default && text.starts_with('['));
    if let Some(leaves) = json_start.then(|| json::leaves(&text)).flatten() {
        // Every token is a slice of a leaf or of its normalised text, so both live as long as
        // the collector that remembers them.
        let normalised: Vec<String> = leaves.iter().map(|leaf| tokenize::normalise_for(cx.mode, leaf)).collect();
        let mut out = Collector::with_capacity(leaves.len());
        for (leaf, norm) in leaves.iter().zip(&normalised) {
            out.add(leaf, &cx);
            tokens(norm, &cx, &mut |token| {
                if token != leaf {
                    out.add(token, &cx);
                }
            });
        }
        return out.done();
    }
    let normalised = tokenize::normalise_for(cx.mode, &text);
    let mut out = Collector::with_capacity(normalised.len() / 64);
    tokens(&normalised, &cx, &mut |token| out.add(token, &cx));
    out.done()
}

/// The tokens of already normalised text ([`tokenize::normalise_for`]), each a slice of it.
fn tokens<'t>(normalised: &'t str, cx: &Ctx<'_>, emit: &mut dyn FnMut(&'t str)) {
    match cx.mode {
        Mode::Compat => tokenize::misp(normalised, emit),
        Mode::Default => tokenize::markup_aware(normalised, cx, emit),
    }
}

/// Resolved candidates, de-duplicated on the value, in order. Tokens are borrowed from the text
/// being read and values are looked up where they are kept (in `out`), so remembering either
/// costs no allocation.
struct Collector<'t> {
    /// The index in `out` of the latest candidate whose value has this hash.
    by_hash: HashMap<u64, usize, BuildHasherDefault<FxHasher>>,
    /// For each candidate, the previous one whose value has the same hash (a collision, told
    /// apart by comparing the values).
    same_hash: Vec<Option<usize>>,
    /// Tokens resolved already: resolution is a pure function of the token, so a repeated token
    /// (a hash in a table and again in prose) is skipped without resolving it again.
    tokens: HashSet<&'t str, BuildHasherDefault<FxHasher>>,
    out: Vec<Candidate>,
}

/// A fast hasher for the collector's sets (the keys come from the text being read, but a
/// collision only costs a comparison, and every lookup is bounded by the text's own size).
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        let h = self.0 ^ (self.0 >> 33);
        h.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (h >> 29)
    }
}

impl<'t> Collector<'t> {
    /// Room for about `tokens` distinct tokens, so the set rarely grows while reading.
    fn with_capacity(tokens: usize) -> Self {
        Self {
            by_hash: HashMap::with_capacity_and_hasher(tokens / 4, BuildHasherDefault::default()),
            same_hash: Vec::new(),
            tokens: HashSet::with_capacity_and_hasher(tokens, BuildHasherDefault::default()),
            out: Vec::new(),
        }
    }

    /// MISP's per-token steps: trim `'".,()` and whitespace, skip PHP-empty tokens, resolve,
    /// keep the first of each value. Tokens no step can type (most words of prose) are dropped
    /// before the cache: checking them is cheaper than remembering them.
    fn add(&mut self, token: &'t str, cx: &Ctx<'_>) {
        let token = php::trim_token(token);
        if php::is_empty(token) || resolve::plain_word(token) || !self.tokens.insert(token) {
            return;
        }
        let Some(r) = resolve::resolve(token, cx) else { return };
        if self.is_new_value(&r.value) {
            self.out.push(candidate(r));
        }
    }

    /// Whether no candidate has `value` yet; if so, it is registered as the next one.
    fn is_new_value(&mut self, value: &str) -> bool {
        let hash = self.by_hash.hasher().hash_one(value);
        let mut at = self.by_hash.get(&hash).copied();
        while let Some(i) = at {
            if self.out[i].value == value {
                return false;
            }
            at = self.same_hash[i];
        }
        let previous = self.by_hash.insert(hash, self.out.len());
        self.same_hash.push(previous);
        true
    }

    fn done(self) -> Vec<Candidate> {
        self.out
    }
}

fn candidate(r: Resolved) -> Candidate {
    let (category, to_ids) = type_defaults(r.default_type).unwrap_or(("Other", false));
    Candidate {
        value: r.value,
        types: r.types.iter().map(|t| (*t).to_string()).collect(),
        default_type: r.default_type.to_string(),
        category: category.to_string(),
        to_ids,
        comment: r.comment.unwrap_or_default(),
    }
}

/// The default category and IDS flag of every type the extractor proposes first (PyMISP's
/// `describeTypes.json` `sane_defaults`); `None` for other types.
pub fn type_defaults(t: &str) -> Option<(&'static str, bool)> {
    Some(match t {
        "md5" | "imphash" | "sha1" | "pehash" | "cdhash" | "sha224" | "sha512/224" | "sha256" | "authentihash"
        | "sha512/256" | "sha384" | "sha512" | "ssdeep" | "tlsh" | "filename" | "chrome-extension-id" | "email-src" => {
            ("Payload delivery", true)
        }
        t if t.starts_with("filename|") => ("Payload delivery", true),
        "x509-fingerprint-md5" | "x509-fingerprint-sha1" | "x509-fingerprint-sha256" | "ja3-fingerprint-md5" | "ip-dst"
        | "ip-src" | "ip-dst|port" | "ip-src|port" | "hostname" | "domain" | "url" | "email-dst" => {
            ("Network activity", true)
        }
        "AS" => ("Network activity", false),
        "link" | "vulnerability" => ("External analysis", false),
        "email" => ("Social network", true),
        "target-email" => ("Targeting data", false),
        "whois-registrant-email" | "whois-registrant-phone" => ("Attribution", false),
        "regkey" => ("Persistence mechanism", true),
        "phone-number" => ("Person", false),
        "prtn" | "btc" | "xmr" => ("Financial fraud", true),
        _ => return None,
    })
}

/// Re-reads each candidate's category and IDS flag from the live type catalogue (where an
/// instance's `describeTypes.json` differs from the built-in table).
pub fn apply_catalogue(candidates: &mut [Candidate], catalogue: &TypeCatalogue) {
    for c in candidates {
        if let Some(category) = catalogue.default_category(&c.default_type) {
            c.category = category.to_string();
            c.to_ids = catalogue.default_to_ids(&c.default_type);
        }
    }
}

#[cfg(test)]
mod tests;
