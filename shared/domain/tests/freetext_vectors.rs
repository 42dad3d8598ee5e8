//! The golden vectors: MISP's own freetext answers (`tests/data/freetext/README.md`).
//!
//! Compat mode must give exactly MISP's answer for every case under every TLD regime; the default
//! mode must give it too except for the cases listed in [`DEFAULT_DIFFERS`], each an intentional
//! fix with its own unit test in `freetext::tests`.
//!
//! The IANA-regime answers need the IANA TLD list. A subset holding every TLD the vectors touch is
//! embedded (so the check always runs); with `CAIRN_DATA_DIR` pointing at the unpacked data
//! (`$CAIRN_DATA_DIR/warninglists/lists/tlds/list.json`, from pymispwarninglists 1.7.0) the real
//! list is checked as well.

use cairn_domain::freetext::{Candidate, Mode, TldSet, extract};
use serde_json::Value;

const VECTORS: &str = include_str!("data/freetext/misp_freetext_vectors.json");

/// The IANA TLDs the vectors' inputs end in (`.co.uk`, `.cz`, `.xyz`, `.zip`, …), and nothing
/// else the vectors rely on being absent (`js`, `example`, `txt`).
const IANA_SUBSET: &str = "COM\nCO\nCZ\nUK\nXYZ\nZIP\nORG\nNET\n";

/// Cases (1-based, as numbered in the file) where the default mode intentionally answers
/// differently, and the unit test that pins the default answer.
const DEFAULT_DIFFERS: &[(usize, &str)] = &[
    (18, "case_variants_collapse"),                         // EXAMPLE.COM → example.com
    (42, "case_variants_collapse"),                         // upper-case MD5 lower-cased
    (65, "more_defanging_styles_are_undone"),               // 1.2.3(.)4
    (75, "file_extension_tlds_prefer_filename"),            // evil.zip
    (80, "a_url_keeps_its_trailing_port"),                  // http://1.2.3.4:8080
    (87, "prefixes_and_ports_are_range_checked"),           // 10.0.0.0/33
    (106, "markdown_and_asciidoc_markup_is_peeled_off"),    // `evil|<md5>`: a table row, the MD5 is kept
    (111, "dates_and_times_are_not_numbers_or_hashes"),     // 1:a:b
    (115, "dates_and_times_are_not_numbers_or_hashes"),     // 07-08-2020
    (120, "more_types_are_detected"),                       // ASN13335
    (124, "bitcoin_addresses_need_a_valid_checksum"),       // no `btc` on a SHA-1
    (129, "mailto_is_an_email"),                            // mailto:user@example.com
    (136, "markdown_and_asciidoc_markup_is_peeled_off"),    // `tick.example.com`
    (137, "markdown_and_asciidoc_markup_is_peeled_off"),    // *star.example.com*
    (143, "names_with_spaces_are_kept_whole"),              // C:\Program Files\…
    (144, "detection_names_are_not_urls_or_files"),         // Win32/Agent.ABQB
    (145, "detection_names_are_not_urls_or_files"),         // JS/TrojanDropper.Agent.OAZ
    (156, "bitcoin_addresses_need_a_valid_checksum"),       // no `btc` on a SHA-1
    (157, "bitcoin_addresses_need_a_valid_checksum"),       // 1AAAA… (bad checksum)
    (158, "bitcoin_addresses_need_a_valid_checksum"),       // xyz-bc1q…
    (159, "bitcoin_addresses_need_a_valid_checksum"),       // 1BvB…extra!!
    (160, "bitcoin_addresses_need_a_valid_checksum"),       // no `btc` on a SHA-256
    (162, "ipv6_in_brackets_is_recognised"),                // http://[2001:db8::1]:8080/x
    (163, "ipv6_in_brackets_is_recognised"),                // [2001:db8::1]
    (168, "prefixes_and_ports_are_range_checked"),          // 1.2.3.4:99999
    (169, "a_url_keeps_its_trailing_port"),                 // http://evil.com:8080
    (170, "markdown_and_asciidoc_markup_is_peeled_off"),    // AsciiDoc table row
    (171, "markdown_and_asciidoc_markup_is_peeled_off"),    // `++downloadsprimary[.]com++`
    (172, "markdown_and_asciidoc_markup_is_peeled_off"),    // \https://…
    (173, "case_variants_collapse"),                        // upper-case SHA-256 lower-cased
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regime {
    /// The same answer whatever the TLD list.
    Any,
    Iana,
    Fallback,
    OnionOnly,
}

struct Case {
    number: usize,
    input: String,
    answers: Vec<(Regime, Vec<Row>)>,
}

/// One expected result, in the vector's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    value: String,
    default_type: String,
    types: Vec<String>,
    comment: String,
    to_ids: bool,
}

impl From<&Candidate> for Row {
    fn from(c: &Candidate) -> Self {
        Row {
            value: c.value.clone(),
            default_type: c.default_type.clone(),
            types: c.types.clone(),
            comment: c.comment.clone(),
            to_ids: c.to_ids,
        }
    }
}

fn rows(v: &Value) -> Vec<Row> {
    v.as_array()
        .expect("an array of results")
        .iter()
        .map(|r| Row {
            value: r["value"].as_str().expect("value").to_string(),
            default_type: r["default_type"].as_str().expect("default_type").to_string(),
            types: r["types"].as_array().expect("types").iter().map(|t| t.as_str().expect("type").to_string()).collect(),
            // `null` and `false` both mean no comment.
            comment: r["comment"].as_str().unwrap_or("").to_string(),
            to_ids: r["to_ids"].as_bool().expect("to_ids"),
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let doc: Value = serde_json::from_str(VECTORS).expect("the vectors parse");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut answers = Vec::new();
            for (key, regime) in [
                ("expected", Regime::Any),
                ("iana_tlds", Regime::Iana),
                ("fallback_tlds", Regime::Fallback),
                ("onion_only_tlds", Regime::OnionOnly),
            ] {
                if let Some(v) = c.get(key) {
                    answers.push((regime, rows(v)));
                }
            }
            Case { number: i + 1, input: c["input"].as_str().expect("input").to_string(), answers }
        })
        .collect()
}

fn run(input: &str, mode: Mode, tlds: &TldSet) -> Vec<Row> {
    extract(input.as_bytes(), mode, tlds).iter().map(Row::from).collect()
}

/// Checks every case whose answer is known under `regimes`; returns (passed, failures).
fn check(mode: Mode, iana: &TldSet, regimes: &[Regime]) -> (usize, Vec<String>) {
    let fallback = TldSet::misp_fallback();
    let onion = TldSet::onion_only();
    let mut passed = 0;
    let mut failures = Vec::new();
    for case in cases() {
        for (regime, want) in &case.answers {
            if !regimes.contains(regime) {
                continue;
            }
            let tld_sets: Vec<(&str, &TldSet)> = match regime {
                Regime::Any => vec![("iana", iana), ("fallback", &fallback), ("onion-only", &onion)],
                Regime::Iana => vec![("iana", iana)],
                Regime::Fallback => vec![("fallback", &fallback)],
                Regime::OnionOnly => vec![("onion-only", &onion)],
            };
            for (name, tlds) in tld_sets {
                let got = run(&case.input, mode, tlds);
                if got == *want {
                    passed += 1;
                } else {
                    failures.push(format!("case {} {:?} [{name}]\n  want {want:?}\n  got  {got:?}", case.number, case.input));
                }
            }
        }
    }
    (passed, failures)
}

#[test]
fn compat_mode_gives_misps_answer_for_every_vector_under_every_tld_regime() {
    let iana = TldSet::from_iana_text(IANA_SUBSET);
    let all = [Regime::Any, Regime::Iana, Regime::Fallback, Regime::OnionOnly];
    let (passed, failures) = check(Mode::Compat, &iana, &all);
    println!("compat: {passed} checks passed, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(cases().len(), 174);
}

#[test]
fn compat_mode_gives_misps_answer_with_the_full_iana_list() {
    let Some(iana) = full_iana_list() else { return };
    let (passed, failures) = check(Mode::Compat, &iana, &[Regime::Any, Regime::Iana]);
    println!("compat with the full IANA list ({} TLDs): {passed} checks passed", iana.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_mode_differs_from_misp_only_where_documented() {
    let iana = TldSet::from_iana_text(IANA_SUBSET);
    let differs: Vec<usize> = DEFAULT_DIFFERS.iter().map(|(n, _)| *n).collect();
    let mut unexpected = Vec::new();
    let mut same = 0;
    for case in cases() {
        for (regime, want) in &case.answers {
            if !matches!(regime, Regime::Any | Regime::Iana) {
                continue;
            }
            let got = run(&case.input, Mode::Default, &iana);
            let documented = differs.contains(&case.number);
            if (got == *want) == documented {
                unexpected.push(format!(
                    "case {} {:?}: {}\n  misp    {want:?}\n  default {got:?}",
                    case.number,
                    case.input,
                    if documented { "listed as different but equal" } else { "differs without being listed" }
                ));
            } else if !documented {
                same += 1;
            }
        }
    }
    println!("default: {same} cases as MISP, {} intentionally different", differs.len());
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

/// The real IANA list from `$CAIRN_DATA_DIR`, or `None` (with the reason printed).
fn full_iana_list() -> Option<TldSet> {
    let Some(dir) = std::env::var_os("CAIRN_DATA_DIR") else {
        println!("skipped: CAIRN_DATA_DIR is not set (the full IANA TLD list comes from pymispwarninglists 1.7.0)");
        return None;
    };
    let path = std::path::Path::new(&dir).join("warninglists/lists/tlds/list.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("skipped: {} is missing", path.display());
        return None;
    };
    let doc: Value = serde_json::from_str(&text).expect("the TLD warninglist parses");
    let names = doc["list"].as_array().expect("a list").iter().filter_map(Value::as_str);
    Some(TldSet::from_names(names))
}
