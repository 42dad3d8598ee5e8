//! Matching rules on small hand-written lists (the real lists are checked against MISP's answers
//! in `tests/warninglist_vectors.rs`).

use super::*;

fn lists(mode: Mode, files: &[(&str, &str)]) -> Warninglists {
    let mut w = Warninglists::new(mode);
    for (key, json) in files {
        w.load(key, json).expect("the fixture loads");
    }
    w.enable_all();
    w
}

fn matched(w: &Warninglists, t: &str, v: &str) -> Vec<(String, String, String)> {
    w.check_all(t, v).into_iter().map(|h| (h.list, h.matched, h.value)).collect()
}

fn hit(list: &str, matched: &str, value: &str) -> (String, String, String) {
    (list.to_string(), matched.to_string(), value.to_string())
}

const DOMAINS: &str = r#"{"name": "Top domains", "description": "d", "version": 3, "type": "string",
    "matching_attributes": ["domain", "hostname", "domain|ip", "url"], "list": ["google.com", "www.google.com"]}"#;
const HOSTS: &str = r#"{"name": "Top hosts", "description": "d", "version": 1, "type": "hostname",
    "matching_attributes": ["domain", "hostname", "url", "domain|ip"], "list": ["Google.com.", "hopto.org", "intranet"]}"#;
const CIDRS: &str = r#"{"name": "Private", "description": "d", "version": 1, "type": ["cidr"],
    "matching_attributes": ["ip-src", "ip-dst", "ip-dst|port", "domain|ip"], "list": ["10.0.0.0/8", "8.8.8.8", "fe80::/10"]}"#;
const MAILS: &str = r#"{"name": "Disposable", "description": "d", "version": 1, "type": "substring",
    "matching_attributes": ["email-src", "email-dst"], "list": {"amail.com": "comment", "guerrillamail.com": ""}}"#;
const CONTACTS: &str = r#"{"name": "Contacts", "description": "d", "version": 1, "type": "regex",
    "matching_attributes": ["email-src"], "list": ["/^(security|abuse)\\@.*\\..*$/i"]}"#;
const PHONES: &str = r#"{"name": "Phones", "description": "d", "version": 1, "type": "regex",
    "matching_attributes": ["phone-number"], "list": ["/((?:\\+|00)1)?([0-9]{3})55501([0-9]{2})/g"]}"#;
const HASHES: &str = r#"{"name": "Empty hashes", "description": "d", "version": 1, "type": "string",
    "list": ["d41d8cd98f00b204e9800998ecf8427e"]}"#;

#[test]
fn string_lists_match_exactly_and_case_sensitively() {
    let w = lists(Mode::Compat, &[("top", DOMAINS)]);
    assert_eq!(matched(&w, "domain", "google.com"), vec![hit("top", "google.com", "google.com")]);
    assert!(matched(&w, "domain", "GOOGLE.COM").is_empty());
    assert!(matched(&w, "domain", "mail.google.com").is_empty());
}

#[test]
fn hostname_lists_match_the_host_and_its_parents() {
    let w = lists(Mode::Compat, &[("hosts", HOSTS)]);
    assert_eq!(matched(&w, "hostname", "sitesafecdn.hopto.org"), vec![hit("hosts", "hopto.org", "sitesafecdn.hopto.org")]);
    assert_eq!(matched(&w, "url", "https://www.google.com/search?q=x")[0].1, "google.com");
    assert_eq!(matched(&w, "url", "www.google.com/x")[0].1, "google.com");
    assert_eq!(matched(&w, "domain", "google.com.")[0].1, "google.com");
    assert!(matched(&w, "url", "https://WWW.GOOGLE.COM/x").is_empty());
    assert!(matched(&w, "url", "google.com:443/x").is_empty());
    // PHP's `empty("0")`: a suffix that is just `0` restarts, so `intranet.0` is looked up as `0`
    // then `intranet`.
    assert_eq!(matched(&w, "hostname", "intranet.0")[0].1, "intranet");
}

#[test]
fn hostnames_ignore_case_port_and_userinfo_by_default() {
    let w = lists(Mode::Default, &[("hosts", HOSTS)]);
    assert_eq!(matched(&w, "url", "https://WWW.GOOGLE.COM/x")[0].1, "google.com");
    assert_eq!(matched(&w, "url", "google.com:443/x")[0].1, "google.com");
    assert_eq!(matched(&w, "url", "https://user@www.google.com:8443/x")[0].1, "google.com");
}

#[test]
fn cidr_lists_match_addresses_and_networks_inside() {
    let w = lists(Mode::Compat, &[("private", CIDRS)]);
    assert_eq!(matched(&w, "ip-dst", "10.1.2.3"), vec![hit("private", "10.0.0.0/8", "10.1.2.3")]);
    assert_eq!(matched(&w, "ip-dst", "10.1.0.0/16")[0].1, "10.0.0.0/8");
    assert!(matched(&w, "ip-dst", "10.0.0.0/7").is_empty());
    assert_eq!(matched(&w, "ip-src", "8.8.8.8")[0].1, "8.8.8.8/32");
    assert_eq!(matched(&w, "ip-dst", "fe80::1")[0].1, "fe80::/10");
    assert!(matched(&w, "ip-dst", "evil.example").is_empty());
}

#[test]
fn composite_values_are_checked_half_by_half() {
    let w = lists(Mode::Compat, &[("private", CIDRS), ("top", DOMAINS), ("empty", HASHES)]);
    assert_eq!(matched(&w, "domain|ip", "evil.example|8.8.8.8"), vec![hit("private", "8.8.8.8/32", "8.8.8.8")]);
    assert_eq!(matched(&w, "domain|ip", "google.com|1.2.3.4"), vec![hit("top", "google.com", "google.com")]);
    assert_eq!(matched(&w, "ip-dst|port", "10.0.0.1|53")[0].2, "10.0.0.1");
    let hash = "d41d8cd98f00b204e9800998ecf8427e";
    assert_eq!(matched(&w, "filename|md5", &format!("empty.txt|{hash}")), vec![hit("empty", hash, hash)]);
    assert_eq!(matched(&w, "malware-sample", &format!("x.exe|{hash}"))[0].0, "empty");
}

#[test]
fn substring_lists_report_the_first_entry_in_list_order() {
    let w = lists(Mode::Compat, &[("mails", MAILS)]);
    assert_eq!(matched(&w, "email-dst", "x@guerrillamail.com"), vec![hit("mails", "amail.com", "x@guerrillamail.com")]);
    assert!(matched(&w, "email-dst", "x@example.com").is_empty());
}

#[test]
fn regex_lists_use_the_translated_pattern() {
    let w = lists(Mode::Compat, &[("contacts", CONTACTS)]);
    assert_eq!(matched(&w, "email-src", "Abuse@example.com")[0].1, "/^(security|abuse)\\@.*\\..*$/i");
    assert!(matched(&w, "email-src", "someone@example.com").is_empty());
}

#[test]
fn the_g_flag_is_ignored_by_default() {
    let compat = lists(Mode::Compat, &[("phones", PHONES)]);
    assert!(matched(&compat, "phone-number", "+12125550199").is_empty());
    assert_eq!(compat.get("phones").map(|l| l.unusable.len()), Some(1));
    let default = lists(Mode::Default, &[("phones", PHONES)]);
    assert_eq!(matched(&default, "phone-number", "+12125550199").len(), 1);
}

#[test]
fn only_enabled_lists_for_the_attribute_type_are_consulted() {
    let mut w = lists(Mode::Compat, &[("top", DOMAINS), ("empty", HASHES)]);
    assert!(matched(&w, "ip-dst", "google.com").is_empty(), "type not in matching_attributes");
    assert_eq!(matched(&w, "text", "d41d8cd98f00b204e9800998ecf8427e").len(), 1, "no matching_attributes: ALL");
    assert!(w.set_enabled("Top domains", false));
    assert!(matched(&w, "domain", "google.com").is_empty());
    assert!(w.set_enabled("top", true));
    assert_eq!(matched(&w, "domain", "google.com").len(), 1);
    assert!(!w.set_enabled("nope", true));
}

#[test]
fn new_lists_start_disabled() {
    let mut w = Warninglists::new(Mode::Compat);
    w.load("top", DOMAINS).expect("loads");
    assert!(w.check_all("domain", "google.com").is_empty());
}

#[test]
fn the_to_ids_gate_applies_unless_warning_for_all() {
    let mut w = lists(Mode::Compat, &[("top", DOMAINS)]);
    assert!(w.check("domain", "google.com", false).is_empty());
    assert_eq!(w.check("domain", "google.com", true).len(), 1);
    w.set_warning_for_all(true);
    assert_eq!(w.check("domain", "google.com", false).len(), 1);
}

#[test]
fn list_files_are_validated() {
    let mut w = Warninglists::new(Mode::Compat);
    let missing = r#"{"name": "x", "description": "d", "type": "string", "list": []}"#;
    assert!(matches!(w.load("a", missing), Err(WarninglistError::Format { .. })));
    let unknown = r#"{"name": "x", "description": "d", "version": 1, "type": "fuzzy", "list": []}"#;
    assert!(matches!(w.load("b", unknown), Err(WarninglistError::UnknownType { .. })));
    assert!(matches!(w.load("c", "not json"), Err(WarninglistError::Format { .. })));
    w.load("d", DOMAINS).expect("loads");
    assert!(matches!(w.load("d", DOMAINS), Err(WarninglistError::Duplicate { .. })));
    let l = w.get("d").expect("loaded");
    assert_eq!((l.version, l.list_type, l.category.as_str(), l.len()), (3, ListType::String, "false_positive", 2));
}

#[test]
fn the_tld_and_vendor_lists_feed_freetext_even_when_disabled() {
    let tlds = r#"{"name": "TLDs as known by IANA", "description": "d", "version": 1, "type": "string",
        "matching_attributes": ["hostname", "domain", "domain|ip"], "list": ["COM", "ZIP"]}"#;
    let vendors = r#"{"name": "List of known domains used by automated malware analysis services & security vendors",
        "description": "d", "version": 1, "type": "substring", "list": ["virustotal.com", "app.any.run"]}"#;
    let mut w = Warninglists::new(Mode::Compat);
    assert!(w.tld_set().contains("onion") && !w.tld_set().contains("com"));
    w.load("tlds", tlds).expect("loads");
    w.load("automated-malware-analysis", vendors).expect("loads");
    let set = w.tld_set();
    assert!(set.contains("com") && set.contains("zip") && set.contains("onion") && !set.contains("js"));
    assert_eq!(w.security_vendor_domains(), vec!["virustotal.com".to_string(), "app.any.run".to_string()]);
}

#[test]
fn arbitrary_values_never_panic() {
    let w = lists(Mode::Default, &[("top", DOMAINS), ("hosts", HOSTS), ("private", CIDRS), ("mails", MAILS), ("contacts", CONTACTS)]);
    let compat = lists(Mode::Compat, &[("hosts", HOSTS), ("private", CIDRS)]);
    const PARTS: &[&str] = &["a", "0", ".", ":", "/", "//", "|", "@", "é", "1.2.3.4", "::", "fe80", "[", "%", "google.com"];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2_000 {
        let mut value = String::new();
        for _ in 0..(state % 8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value.push_str(PARTS[(state % PARTS.len() as u64) as usize]);
        }
        state = state.wrapping_add(1);
        for t in ["domain", "url", "ip-dst", "domain|ip", "email-src", "hostname"] {
            let _ = w.check_all(t, &value);
            let _ = compat.check_all(t, &value);
        }
    }
}

#[test]
fn read_info_describes_a_list_without_compiling_it() {
    let info = read_info("cidr", CIDRS, false).expect("reads");
    assert_eq!((info.name.as_str(), info.version, info.list_type, info.entry_count), ("Private", 1, ListType::Cidr, 3));
    assert_eq!(info.category, "false_positive");
    assert!(info.entries.is_empty());
    let info = read_info("mails", MAILS, true).expect("reads");
    assert_eq!(info.entries, ["amail.com", "guerrillamail.com"]);
    assert!(info.matching_attributes.contains(&"email-dst".to_string()));
    assert!(matches!(read_info("bad", r#"{"name": "x"}"#, false), Err(WarninglistError::Format { .. })));
    let odd = r#"{"name": "n", "description": "d", "version": 1, "type": "fuzzy", "list": []}"#;
    assert!(matches!(read_info("odd", odd, false), Err(WarninglistError::UnknownType { .. })));
}

#[test]
fn check_value_ignores_the_attribute_types_and_splits_composites() {
    let w = lists(Mode::Compat, &[("top", DOMAINS), ("cidr", CIDRS), ("hashes", HASHES)]);
    let found = |v: &str| w.check_value(v).into_iter().map(|h| (h.list, h.matched)).collect::<Vec<_>>();
    assert_eq!(found("d41d8cd98f00b204e9800998ecf8427e"), [("hashes".to_string(), "d41d8cd98f00b204e9800998ecf8427e".to_string())]);
    assert_eq!(found("google.com|10.1.2.3"), [("top".to_string(), "google.com".to_string()), ("cidr".to_string(), "10.0.0.0/8".to_string())]);
    assert!(found("example.org").is_empty());
    let mut w = w;
    w.set_enabled("hashes", false);
    assert!(w.check_value("d41d8cd98f00b204e9800998ecf8427e").is_empty());
}
