//! The misp-warninglists, as reference data (pymispwarninglists, unpacked by the scripts under
//! `<data dir>/warninglists/lists/<key>/list.json`).
//!
//! - A [`Catalog`] read once at start: each list's description and entry count, with MISP-style ids
//!   (the lists sorted by key, numbered from 1, so an id is stable for one package version), plus the
//!   two lists freetext import reads whether enabled or not (the IANA TLDs and the security-vendor
//!   domains).
//! - A matcher compiled from the **enabled** lists only (which ones is instance state, recorded as
//!   changes), rebuilt when that set changes. Compiling all 119 lists costs about 135 MB; a fresh
//!   instance, like a fresh MISP, has none enabled and pays nothing.

use cairn_domain::freetext::{Mode, TldSet};
use cairn_domain::warninglist::{self, Hit, ListInfo, Warninglists};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The key of the IANA TLD list and of the security-vendor domain list in misp-warninglists.
pub const TLD_LIST: &str = "tlds";
pub const VENDOR_LIST: &str = "automated-malware-analysis";

/// What freetext import reads from the warninglists, enabled or not: the IANA TLDs (plus `onion`)
/// and the security-vendor domains. Without the TLD list, MISP's built-in fallback TLDs.
pub fn freetext_lists(dir: &Path, mode: Mode) -> (TldSet, Vec<String>) {
    let mut special = Warninglists::new(mode);
    for key in [TLD_LIST, VENDOR_LIST] {
        let path = dir.join("lists").join(key).join("list.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Err(e) = special.load(key, &text) {
                    tracing::warn!(error = %e, "warninglist not usable for freetext import");
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "warninglist for freetext import missing"),
        }
    }
    let tlds = if special.get(TLD_LIST).is_some() { special.tld_set() } else { TldSet::misp_fallback() };
    (tlds, special.security_vendor_domains())
}

/// One list of the catalogue.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: i64,
    pub key: String,
    pub info: ListInfo,
}

/// The compiled enabled lists and the settings they were compiled for.
#[derive(Debug)]
pub struct Matcher {
    enabled: BTreeSet<String>,
    warning_for_all: bool,
    lists: Warninglists,
}

impl Matcher {
    /// Hits for an attribute as shown in an Event: only `to_ids` attributes unless
    /// `MISP.warning_for_all`.
    pub fn check(&self, attr_type: &str, value: &str, to_ids: bool) -> Vec<Hit> {
        if self.enabled.is_empty() {
            return Vec::new();
        }
        self.lists.check(attr_type, value, to_ids)
    }

    /// Hits ignoring `to_ids` (MISP's import-time filter and `checkValue`).
    pub fn check_all(&self, attr_type: &str, value: &str) -> Vec<Hit> {
        if self.enabled.is_empty() {
            return Vec::new();
        }
        self.lists.check_all(attr_type, value)
    }

    /// Hits of a bare value against every enabled list (`warninglists/checkValue`).
    pub fn check_value(&self, value: &str) -> Vec<Hit> {
        if self.enabled.is_empty() {
            return Vec::new();
        }
        self.lists.check_value(value)
    }

    /// Whether any list is enabled (nothing to check otherwise).
    pub fn is_active(&self) -> bool {
        !self.enabled.is_empty()
    }
}

/// The catalogue, read on first use (parsing all 119 files takes a moment; most API processes of
/// the test suite never need it).
#[derive(Debug)]
pub struct Catalog {
    dir: PathBuf,
    mode: Mode,
    loaded: OnceLock<Loaded>,
    matcher: Mutex<Arc<Matcher>>,
}

#[derive(Debug)]
pub struct Loaded {
    lists: Vec<Listed>,
    tlds: TldSet,
    vendor_domains: Vec<String>,
}

impl Loaded {
    pub fn lists(&self) -> &[Listed] {
        &self.lists
    }

    pub fn by_id(&self, id: i64) -> Option<&Listed> {
        self.lists.get(usize::try_from(id.checked_sub(1)?).ok()?)
    }

    pub fn by_key(&self, key: &str) -> Option<&Listed> {
        self.lists.binary_search_by(|l| l.key.as_str().cmp(key)).ok().map(|i| &self.lists[i])
    }

    /// The TLD set freetext import uses (the IANA list plus `onion`, enabled or not).
    pub fn tlds(&self) -> &TldSet {
        &self.tlds
    }

    /// The security-vendor domains freetext import types as `link`.
    pub fn vendor_domains(&self) -> &[String] {
        &self.vendor_domains
    }
}

impl Catalog {
    /// A catalogue of the lists under `dir` (`<data>/warninglists`), read when first needed.
    pub fn new(dir: &Path, mode: Mode) -> Self {
        let matcher = Mutex::new(Arc::new(Matcher { enabled: BTreeSet::new(), warning_for_all: false, lists: Warninglists::new(mode) }));
        Self { dir: dir.to_path_buf(), mode, loaded: OnceLock::new(), matcher }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The catalogue (blocking on first use). Unreadable lists are skipped with a warning; without
    /// the folder it is empty and freetext import falls back to MISP's built-in TLD list.
    pub fn loaded(&self) -> &Loaded {
        self.loaded.get_or_init(|| self.read())
    }

    fn read(&self) -> Loaded {
        let started = std::time::Instant::now();
        let lists_dir = self.dir.join("lists");
        let mut keys: Vec<String> = std::fs::read_dir(&lists_dir)
            .map(|rd| rd.filter_map(Result::ok).filter(|e| e.path().join("list.json").is_file()).filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        if keys.is_empty() {
            tracing::warn!(dir = %lists_dir.display(), "no warninglists found (scripts/run and scripts/test fetch pymispwarninglists)");
        }
        keys.sort();
        let mut lists = Vec::with_capacity(keys.len());
        for key in keys {
            let path = lists_dir.join(&key).join("list.json");
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable warninglist skipped");
                    continue;
                }
            };
            match warninglist::read_info(&key, &text, false) {
                Ok(info) => lists.push(Listed { id: lists.len() as i64 + 1, key, info }),
                Err(e) => tracing::warn!(error = %e, "invalid warninglist skipped"),
            }
        }
        let (tlds, vendor_domains) = freetext_lists(&self.dir, self.mode);
        tracing::info!(lists = lists.len(), took_ms = started.elapsed().as_millis() as u64, "warninglist catalogue read");
        Loaded { lists, tlds, vendor_domains }
    }

    /// A list's entries, read from its file (for `warninglists/view`).
    ///
    /// # Errors
    /// The file became unreadable or invalid since start.
    pub fn entries(&self, listed: &Listed) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(self.path(&listed.key)).map_err(|e| e.to_string())?;
        warninglist::read_info(&listed.key, &text, true).map(|i| i.entries).map_err(|e| e.to_string())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join("lists").join(key).join("list.json")
    }

    /// The current matcher when it was compiled for these settings.
    pub fn cached(&self, enabled: &BTreeSet<String>, warning_for_all: bool) -> Option<Arc<Matcher>> {
        let current = self.matcher.lock().unwrap_or_else(|e| e.into_inner());
        (current.enabled == *enabled && current.warning_for_all == warning_for_all).then(|| current.clone())
    }

    /// The matcher for this set of enabled lists, compiled when the set (or `warning_for_all`)
    /// differs from the last one. Blocking: compiling a large list takes a fraction of a second.
    pub fn matcher(&self, enabled: &BTreeSet<String>, warning_for_all: bool) -> Arc<Matcher> {
        let mut current = self.matcher.lock().unwrap_or_else(|e| e.into_inner());
        if current.enabled == *enabled && current.warning_for_all == warning_for_all {
            return current.clone();
        }
        let started = std::time::Instant::now();
        let mut lists = Warninglists::new(self.mode);
        for key in enabled {
            let Ok(text) = std::fs::read_to_string(self.path(key)) else {
                tracing::warn!(key, "enabled warninglist is missing from the data folder");
                continue;
            };
            match lists.load(key, &text) {
                Ok(_) => {
                    lists.set_enabled(key, true);
                }
                Err(e) => tracing::warn!(error = %e, "enabled warninglist could not be compiled"),
            }
        }
        lists.set_warning_for_all(warning_for_all);
        tracing::info!(lists = enabled.len(), entries = lists.entry_count(), took_ms = started.elapsed().as_millis() as u64, "warninglists compiled");
        let matcher = Arc::new(Matcher { enabled: enabled.clone(), warning_for_all, lists });
        *current = matcher.clone();
        matcher
    }
}

/// What a read asks of the warninglists: MISP's `includeWarninglistHits` (annotate) and
/// `enforceWarninglist` (drop attributes with hits).
#[derive(Clone, Copy, Debug, Default)]
pub struct WarningsView {
    pub annotate: bool,
    pub enforce: bool,
}

/// Applies a [`WarningsView`] to rendered MISP JSON.
pub struct Annotator<'a> {
    pub matcher: &'a Matcher,
    pub catalog: &'a Loaded,
    pub view: WarningsView,
}

impl Annotator<'_> {
    /// Whether there is anything to do.
    pub fn is_active(&self) -> bool {
        self.matcher.is_active() && (self.view.annotate || self.view.enforce)
    }

    /// Checks one rendered attribute: adds `warnings` when annotating; `false` when it must be
    /// dropped. Returns the lists hit as (id, name).
    pub fn attribute(&self, attribute: &mut Value) -> (bool, Vec<(i64, String)>) {
        let attr_type = attribute.get("type").and_then(Value::as_str).unwrap_or_default();
        let value = attribute.get("value").and_then(Value::as_str).unwrap_or_default();
        let to_ids = attribute.get("to_ids").and_then(Value::as_bool).unwrap_or(false);
        let hits = self.matcher.check(attr_type, value, to_ids);
        if hits.is_empty() {
            return (true, Vec::new());
        }
        let lists: Vec<(i64, String)> =
            hits.iter().map(|h| (self.catalog.by_key(&h.list).map_or(0, |l| l.id), h.name.clone())).collect();
        if self.view.annotate {
            let warnings: Vec<Value> = hits
                .iter()
                .zip(&lists)
                .map(|(h, (id, _))| {
                    json!({"value": h.value, "match": h.matched, "warninglist_id": id.to_string(),
                           "warninglist_name": h.name, "warninglist_category": h.category})
                })
                .collect();
            attribute["warnings"] = Value::Array(warnings);
        }
        (!self.view.enforce, lists)
    }

    /// Applies the view to a rendered `{"Event": …}` (its attributes and its objects' attributes):
    /// `Event.warnings` maps the lists hit by id to name, as MISP's event view has it.
    pub fn event(&self, event: &mut Value) {
        if !self.is_active() {
            return;
        }
        let inner = if event.get("Event").is_some() { &mut event["Event"] } else { event };
        let mut all: std::collections::BTreeMap<i64, String> = std::collections::BTreeMap::new();
        let mut filter = |attributes: Option<&mut Value>| {
            if let Some(Value::Array(list)) = attributes {
                list.retain_mut(|a| {
                    let (keep, lists) = self.attribute(a);
                    all.extend(lists);
                    keep
                });
            }
        };
        filter(inner.get_mut("Attribute"));
        if let Some(Value::Array(objects)) = inner.get_mut("Object") {
            for o in objects {
                filter(o.get_mut("Attribute"));
            }
        }
        if self.view.annotate && !all.is_empty() {
            inner["warnings"] = Value::Object(all.into_iter().map(|(id, name)| (id.to_string(), Value::String(name))).collect());
        }
    }

    /// Applies the view to a list of rendered attributes.
    pub fn attributes(&self, list: &mut Vec<Value>) {
        if !self.is_active() {
            return;
        }
        list.retain_mut(|a| self.attribute(a).0);
    }
}
