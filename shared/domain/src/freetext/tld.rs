//! The set of top-level domains that decides whether `a.b` is a domain or a file name.
//!
//! MISP reads it from the "TLDs as known by IANA" warninglist and adds `onion`. The list is data,
//! fetched at setup (it is never committed): either that warninglist's `list.json` (pymispwarninglists
//! 1.7.0, the exact list the golden vectors were made with) through [`TldSet::from_names`], or IANA's
//! `tlds-alpha-by-domain.txt` text through [`TldSet::from_iana_text`].

use std::collections::HashSet;

/// The 22 generic TLDs MISP falls back to when no list was ever set (`ComplexTypeTool`'s built-in
/// list); every two-letter string counts as well.
const MISP_FALLBACK: [&str; 22] = [
    "biz", "cat", "com", "edu", "gov", "int", "mil", "net", "org", "pro", "tel", "aero", "arpa", "asia", "coop", "info",
    "jobs", "mobi", "name", "museum", "travel", "onion",
];

/// Top-level domains, compared ASCII-case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TldSet {
    names: HashSet<String>,
    /// MISP's fallback regime: any two ASCII letters also count (its 676 two-letter strings).
    any_two_letters: bool,
}

impl TldSet {
    /// From IANA's `tlds-alpha-by-domain.txt`: one TLD per line, `#` comments and blank lines
    /// skipped, case ignored. `onion` is added, as MISP does.
    pub fn from_iana_text(text: &str) -> Self {
        Self::from_names(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')))
    }

    /// From a list of names (e.g. the `list` of the "TLDs as known by IANA" warninglist), case
    /// ignored, a leading dot allowed. `onion` is added, as MISP does.
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set: HashSet<String> =
            names.into_iter().map(|n| n.as_ref().trim().trim_start_matches('.').to_ascii_lowercase()).collect();
        set.remove("");
        set.insert("onion".to_string());
        Self { names: set, any_two_letters: false }
    }

    /// MISP's regime when the IANA list is missing from its database: only `.onion` names count.
    pub fn onion_only() -> Self {
        Self::from_names(std::iter::empty::<&str>())
    }

    /// MISP's built-in fallback (`setTLDs()` never called): 22 generic TLDs plus every two-letter
    /// string (so `jquery.min.js` is a hostname and `evil.xyz` is not).
    pub fn misp_fallback() -> Self {
        Self { names: MISP_FALLBACK.iter().map(|s| (*s).to_string()).collect(), any_two_letters: true }
    }

    /// Whether `label` is a top-level domain (ASCII case ignored).
    pub fn contains(&self, label: &str) -> bool {
        if self.any_two_letters && label.len() == 2 && label.bytes().all(|b| b.is_ascii_alphabetic()) {
            return true;
        }
        if label.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.names.contains(&label.to_ascii_lowercase());
        }
        self.names.contains(label)
    }

    /// How many names the set holds (the two-letter wildcard not counted).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set holds no names at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.any_two_letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iana_text_is_read_line_by_line_with_onion_added() {
        let tlds = TldSet::from_iana_text("# Version 2025122300, Last Updated Tue Dec 23 07:07:01 2025 UTC\nCOM\nXN--P1AI\n\nZIP\n");
        assert!(tlds.contains("com") && tlds.contains("COM") && tlds.contains("xn--p1ai") && tlds.contains("zip"));
        assert!(tlds.contains("onion"));
        assert!(!tlds.contains("js") && !tlds.contains("version"));
        assert_eq!(tlds.len(), 4);
    }

    #[test]
    fn the_fallback_counts_every_two_letter_label() {
        let tlds = TldSet::misp_fallback();
        assert!(tlds.contains("js") && tlds.contains("uk") && tlds.contains("com") && tlds.contains("onion"));
        assert!(!tlds.contains("xyz") && !tlds.contains("zip") && !tlds.contains("04"));
    }

    #[test]
    fn onion_only_knows_nothing_else() {
        let tlds = TldSet::onion_only();
        assert!(tlds.contains("onion") && !tlds.contains("com"));
    }
}
