//! Default-mode differences from MISP, one test each (named in the module docs), and the rules
//! both modes share. MISP's own answers are pinned by `tests/freetext_vectors.rs`.

use super::*;

/// A hand-written slice of the IANA list: enough for these tests, not the real list.
fn tlds() -> TldSet {
    TldSet::from_iana_text(
        "COM\nORG\nNET\nIO\nDE\nRU\nUK\nCO\nXYZ\nZIP\nMOV\nMD\nPY\nTOP\nUS\nINFO\nEMAIL\nXN--P1AI\nTK\nCZ\nES\nLY\n",
    )
}

/// (default type, value) pairs.
fn run(mode: Mode, text: &str) -> Vec<(String, String)> {
    extract(text.as_bytes(), mode, &tlds()).into_iter().map(|c| (c.default_type, c.value)).collect()
}

fn default(text: &str) -> Vec<(String, String)> {
    run(Mode::Default, text)
}

fn compat(text: &str) -> Vec<(String, String)> {
    run(Mode::Compat, text)
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(t, v)| ((*t).to_string(), (*v).to_string())).collect()
}

// ---- 1. Markup ----

#[test]
fn markdown_and_asciidoc_markup_is_peeled_off() {
    let adoc = "|`395E87C5BD00F78BF4C63880C6982A7941A2ECD0`|MSIL/Injector.UNL\n* `++downloadsprimary[.]com++`\n| `\\https://nw.infestexe.com/x.php` |";
    assert_eq!(
        default(adoc),
        pairs(&[
            ("sha1", "395e87c5bd00f78bf4c63880c6982a7941a2ecd0"),
            ("domain", "downloadsprimary.com"),
            ("url", "https://nw.infestexe.com/x.php"),
        ])
    );
    assert_eq!(compat(adoc), pairs(&[("filename", "|`395E87C5BD00F78BF4C63880C6982A7941A2ECD0`|MSIL/Injector.UNL")]));
    let md = "**evil.com**, see [the report](https://blog.example.io/post) and https://www.misp-project.org[MISP]: `tick.example.com`!";
    assert_eq!(
        default(md),
        pairs(&[
            ("domain", "evil.com"),
            ("url", "https://blog.example.io/post"),
            ("url", "https://www.misp-project.org"),
            ("hostname", "tick.example.com"),
        ])
    );
    // A `filename|hash` value is one value, not two table cells.
    let composite = "invoice.exe|d41d8cd98f00b204e9800998ecf8427e";
    assert_eq!(default(composite), pairs(&[("filename|md5", composite)]));
    // An AsciiDoc link to a file of the document is a reference, not an indicator.
    assert_eq!(default("link:misp-event.json[MISP event]"), pairs(&[]));
    // Unicode spaces separate; typographic quotes are not part of a value.
    assert_eq!(default("evil.com\u{2003}“bad.org”"), pairs(&[("domain", "evil.com"), ("domain", "bad.org")]));
}

// ---- 2. Names with spaces ----

#[test]
fn names_with_spaces_are_kept_whole() {
    assert_eq!(default("* `++Windows Broker Manager.dat++`"), pairs(&[("filename", "Windows Broker Manager.dat")]));
    assert_eq!(default("dropped \"Usermode COM Manager.exe\" there"), pairs(&[("filename", "Usermode COM Manager.exe")]));
    let hash = "b0a9be71fe8845ee4ba32f9d3e47267bdeae9a2dff7d50ea0f27f8959e50cce5";
    assert_eq!(
        default(&format!("- {hash}  accordo legale 07.20.doc\n- {hash}  Istruire,07.20.doc")),
        pairs(&[("sha256", hash), ("filename", "accordo legale 07.20.doc"), ("filename", "Istruire,07.20.doc")])
    );
    assert_eq!(default("C:\\Program Files\\Evil\\evil.exe"), pairs(&[("filename", "C:\\Program Files\\Evil\\evil.exe")]));
    assert_eq!(compat("C:\\Program Files\\Evil\\evil.exe"), pairs(&[("filename", "Files\\Evil\\evil.exe")]));
    assert_eq!(
        default("- C:\\Users\\[username]\\[same directory as Word doc]\\iD.tmp"),
        pairs(&[("filename", "C:\\Users\\[username]\\[same directory as Word doc]\\iD.tmp")])
    );
    // Prose after a directory is not part of a path.
    assert_eq!(default("C:\\Windows\\Temp and then runs evil.exe"), pairs(&[("filename", "evil.exe")]));
}

// ---- 3. Refang ----

#[test]
fn more_defanging_styles_are_undone() {
    for (defanged, value) in [
        ("1.2.3(.)4", "1.2.3.4"),
        ("evil{.}com", "evil.com"),
        ("evil[DOT]com", "evil.com"),
        ("evil(dot)com", "evil.com"),
        ("user[AT]evil.com", "user@evil.com"),
        ("user(at)evil.com", "user@evil.com"),
        ("hxxps[://]evil.com/a", "https://evil.com/a"),
        ("evil.com[/]a", "evil.com/a"),
        ("fxp://evil.com/a", "ftp://evil.com/a"),
    ] {
        assert_eq!(default(defanged).first().map(|(_, v)| v.as_str()), Some(value), "{defanged}");
    }
    assert_eq!(compat("1.2.3(.)4"), pairs(&[]));
}

// ---- 4. Bitcoin ----

#[test]
fn bitcoin_addresses_need_a_valid_checksum() {
    for valid in ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"] {
        assert_eq!(default(valid), pairs(&[("btc", valid)]));
    }
    for bogus in ["1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "xyz-bc1qqqqqqqqqqqqqqq", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2extra!!"] {
        assert_eq!(compat(bogus), pairs(&[("btc", bogus)]), "MISP's regex takes {bogus}");
        assert_eq!(default(bogus), pairs(&[]), "{bogus}");
    }
    let hash = "3a2b4c5d6e7f8a9b1c2d3e4f5a6b7c8d9e1f2a3b";
    assert!(extract(hash.as_bytes(), Mode::Compat, &tlds())[0].types.contains(&"btc".to_string()));
    assert!(!extract(hash.as_bytes(), Mode::Default, &tlds())[0].types.contains(&"btc".to_string()));
}

// ---- 5. URL ports ----

#[test]
fn a_url_keeps_its_trailing_port() {
    let got = extract(b"http://1.2.3.4:8080", Mode::Default, &tlds());
    assert_eq!((got[0].value.as_str(), got[0].comment.as_str()), ("http://1.2.3.4:8080", ""));
    let misp = extract(b"http://1.2.3.4:8080", Mode::Compat, &tlds());
    assert_eq!((misp[0].value.as_str(), misp[0].comment.as_str()), ("http://1.2.3.4", "On port 8080"));
}

// ---- 6. Detection names ----

#[test]
fn detection_names_are_not_urls_or_files() {
    for name in ["Win32/Agent.ABQB", "JS/TrojanDropper.Agent.OAZ", "MSIL/Injector.UNL", "Win64/Winnti.BR.gen"] {
        assert_eq!(default(name), pairs(&[]), "{name}");
        assert_eq!(compat(name), pairs(&[("url", name)]), "{name}");
    }
    // A scheme-less URL still works with a real host.
    assert_eq!(default("s3.amazonaws[.]com/wwwjs/x.js"), pairs(&[("url", "s3.amazonaws.com/wwwjs/x.js")]));
    assert_eq!(default("1.2.3.4:8080/gate.php"), pairs(&[("url", "1.2.3.4:8080/gate.php")]));
    assert_eq!(default("dir/file.exe"), pairs(&[("filename", "dir/file.exe")]));
}

// ---- 7. Dates, times, phone numbers ----

#[test]
fn dates_and_times_are_not_numbers_or_hashes() {
    for date in ["07-08-2020", "12/31/2020", "2020/07/08"] {
        assert_eq!(default(date), pairs(&[]), "{date}");
    }
    assert_eq!(compat("07-08-2020"), pairs(&[("phone-number", "07-08-2020")]));
    assert_eq!(compat("1:a:b"), pairs(&[("ssdeep", "1:a:b")]));
    assert_eq!(default("1:a:b"), pairs(&[]));
    assert_eq!(default("3:abc:def"), pairs(&[("ssdeep", "3:abc:def")]));
    for phone in ["+33123456789", "555-123-4567", "1-800-555-1212"] {
        assert_eq!(default(phone), pairs(&[("phone-number", phone)]), "{phone}");
    }
    for not_phone in ["123-45-6789-0", "+1234"] {
        assert_eq!(default(not_phone), pairs(&[]), "{not_phone}");
    }
}

// ---- 8. Ranges ----

#[test]
fn prefixes_and_ports_are_range_checked() {
    assert_eq!(compat("10.0.0.0/33"), pairs(&[("ip-dst", "10.0.0.0/33")]));
    assert_eq!(default("10.0.0.0/33"), pairs(&[]));
    assert_eq!(default("2001:db8::/129"), pairs(&[]));
    assert_eq!(default("10.0.0.0/8"), pairs(&[("ip-dst", "10.0.0.0/8")]));
    assert_eq!(compat("1.2.3.4:99999"), pairs(&[("ip-dst|port", "1.2.3.4|99999")]));
    assert_eq!(default("1.2.3.4:99999"), pairs(&[]));
    // MISP removes the port text wherever it occurs; only the trailing port goes by default.
    assert_eq!(compat("http://evil.com:80/x:80"), pairs(&[("url", "http://evil.com/x")]));
    assert_eq!(default("http://evil.com:80/x:80"), pairs(&[("url", "http://evil.com:80/x:80")]));
}

// ---- 9. IPv6 in brackets ----

#[test]
fn ipv6_in_brackets_is_recognised() {
    assert_eq!(compat("http://[2001:db8::1]:8080/x"), pairs(&[]));
    assert_eq!(default("http://[2001:db8::1]:8080/x"), pairs(&[("url", "http://[2001:db8::1]:8080/x")]));
    assert_eq!(default("[2001:db8::1]"), pairs(&[("ip-dst", "2001:db8::1")]));
    assert_eq!(default("[2001:db8::1]:443"), pairs(&[("ip-dst|port", "2001:db8::1|443")]));
}

// ---- 10. mailto ----

#[test]
fn mailto_is_an_email() {
    assert_eq!(compat("mailto:user@example.com"), pairs(&[("filename", "mailto:user@example.com")]));
    assert_eq!(default("mailto:User@Example.com"), pairs(&[("email-src", "user@example.com")]));
}

// ---- 11. Security-vendor links ----

#[test]
fn vendor_links_match_whole_labels() {
    assert_eq!(compat("https://notvirustotal.com/x"), pairs(&[("link", "https://notvirustotal.com/x")]));
    assert_eq!(default("https://notvirustotal.com/x"), pairs(&[("url", "https://notvirustotal.com/x")]));
    assert_eq!(default("https://www.virustotal.com/gui/x"), pairs(&[("link", "https://www.virustotal.com/gui/x")]));
    assert_eq!(compat("http://www.virustotal.com/gui/x"), pairs(&[("url", "http://www.virustotal.com/gui/x")]));
    assert_eq!(default("http://www.virustotal.com/gui/x"), pairs(&[("link", "http://www.virustotal.com/gui/x")]));
    let vendors = vec!["app.any.run".to_string()];
    let o = Options { mode: Mode::Default, tlds: &TldSet::misp_fallback(), security_vendor_domains: &vendors };
    assert_eq!(extract_with(b"https://app.any.run/tasks/1", &o)[0].default_type, "link");
}

// ---- 12. Normalised values ----

#[test]
fn case_variants_collapse() {
    let text = "D41D8CD98F00B204E9800998ECF8427E d41d8cd98f00b204e9800998ecf8427e EVIL.COM evil.com User@Evil.com user@evil.com";
    assert_eq!(compat(text).len(), 6);
    assert_eq!(
        default(text),
        pairs(&[("md5", "d41d8cd98f00b204e9800998ecf8427e"), ("domain", "evil.com"), ("email-src", "user@evil.com")])
    );
}

// ---- 13. More types ----

#[test]
fn more_types_are_detected() {
    let chrome = "mdpgppkombninhkfhaggckdmencplhmg";
    assert_eq!(default(chrome), pairs(&[("chrome-extension-id", chrome)]));
    assert_eq!(compat(chrome), pairs(&[]));
    // All letters a–f: a hex string, so an MD5.
    assert_eq!(default("abcdefabcdefabcdefabcdefabcdefab")[0].0, "md5");
    let xmr = "46W5WHQG2B1Df9uKrkyuhoLNVtJouMfPR9wMkhrzRiEtD2PmdcXMvQt52jQVWKXUC45hwYRXhBYVjLRbpDu8CK2UN2xzenr";
    assert_eq!(default(xmr), pairs(&[("xmr", xmr)]));
    let tlsh = format!("T1{}", "A0".repeat(35));
    assert_eq!(default(&tlsh), pairs(&[("tlsh", &tlsh.to_ascii_lowercase())]));
    assert_eq!(default("ASN13335"), pairs(&[("AS", "AS13335")]));
    assert_eq!(compat("ASN13335"), pairs(&[]));
    assert_eq!(default("AS99999999999"), pairs(&[]));
}

// ---- 14. Unicode TLDs ----

#[test]
fn unicode_tlds_are_known() {
    assert_eq!(compat("пример.рф"), pairs(&[]));
    assert_eq!(default("пример.рф"), pairs(&[("domain", "пример.рф")]));
}

// ---- 15. Registry keys ----

#[test]
fn only_hives_start_registry_keys() {
    assert_eq!(compat("CORP\\jdoe"), pairs(&[("regkey", "CORP\\jdoe")]));
    assert_eq!(default("CORP\\jdoe"), pairs(&[]));
    for key in ["HKLM\\Software\\Run", "HKEY_CURRENT_USER\\Software", "HKLM:\\SOFTWARE\\Microsoft"] {
        assert_eq!(default(key), pairs(&[("regkey", key)]), "{key}");
    }
}

// ---- 16. Extension-like TLDs ----

#[test]
fn file_extension_tlds_prefer_filename() {
    assert_eq!(compat("README.md"), pairs(&[("domain", "README.md")]));
    let got = extract(b"README.md", Mode::Default, &tlds());
    assert_eq!((got[0].default_type.as_str(), got[0].types.clone()), ("filename", vec!["filename".to_string(), "domain".to_string()]));
    assert_eq!(default("evil.zip")[0].0, "filename");
    assert_eq!(default("sub.evil.zip")[0].0, "hostname");
}

// ---- Shared by both modes ----

#[test]
fn invalid_utf8_never_empties_the_result() {
    for mode in [Mode::Compat, Mode::Default] {
        let got = extract(b"evil.com\xff 1.2.3.4 \xc3\x28 bad.org", mode, &tlds());
        let values: Vec<&str> = got.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["evil.com", "1.2.3.4", "bad.org"], "{mode:?}");
    }
}

#[test]
fn json_input_is_read_leaf_by_leaf_in_document_order() {
    let doc = br#"{"z": "hxxp://x[.]org/a", "a": {"ip": "1.2.3.4", "n": 5, "text": "see evil.com now"}}"#;
    for mode in [Mode::Compat, Mode::Default] {
        let got: Vec<String> = extract(doc, mode, &tlds()).into_iter().map(|c| c.value).collect();
        assert_eq!(got, ["http://x.org/a", "1.2.3.4", "evil.com"], "{mode:?}");
    }
}

#[test]
fn results_come_in_first_occurrence_order_once_each() {
    for mode in [Mode::Compat, Mode::Default] {
        let got: Vec<String> =
            extract(b"b.org 1.2.3.4 a.org b.org 1.2.3.4", mode, &tlds()).into_iter().map(|c| c.value).collect();
        assert_eq!(got, ["b.org", "1.2.3.4", "a.org"], "{mode:?}");
    }
}

#[test]
fn to_ids_and_category_follow_the_default_type() {
    let got = extract(b"evil.com test@evil.com https://www.virustotal.com/x CVE-2021-44228 AS13335", Mode::Compat, &tlds());
    let summary: Vec<(&str, &str, bool)> = got.iter().map(|c| (c.default_type.as_str(), c.category.as_str(), c.to_ids)).collect();
    assert_eq!(
        summary,
        [
            ("domain", "Network activity", true),
            ("email-src", "Payload delivery", true),
            ("link", "External analysis", false),
            ("vulnerability", "External analysis", false),
            ("AS", "Network activity", false),
        ]
    );
}

#[test]
fn the_catalogue_can_override_the_built_in_defaults() {
    let catalogue = crate::types::TypeCatalogue::from_describe_types(&serde_json::json!({
        "types": ["domain"], "categories": ["Network activity", "Other"],
        "sane_defaults": {"domain": {"default_category": "Other", "to_ids": 0}},
        "category_type_mappings": {"Other": ["domain"]}
    }))
    .expect("a valid catalogue");
    let mut got = extract(b"evil.com", Mode::Default, &tlds());
    apply_catalogue(&mut got, &catalogue);
    assert_eq!((got[0].category.as_str(), got[0].to_ids), ("Other", false));
}

#[test]
fn adversarial_inputs_are_handled_in_one_pass() {
    // Correctness only (the benchmarks time them): each finishes and finds nothing odd.
    let inputs: Vec<Vec<u8>> = vec![
        "a".repeat(200_000).into_bytes(),
        "a.".repeat(100_000).into_bytes(),
        "[.]".repeat(20_000).into_bytes(),
        "@".repeat(200_000).into_bytes(),
        "*[".repeat(50_000).into_bytes(),
        "\"a b.exe\" ".repeat(20_000).into_bytes(),
        "C:\\a\\[b ".repeat(20_000).into_bytes(),
    ];
    for input in &inputs {
        for mode in [Mode::Compat, Mode::Default] {
            let got = extract(input, mode, &tlds());
            assert!(got.len() <= 2, "{mode:?}: {:?}", got.iter().map(|c| &c.value).collect::<Vec<_>>());
        }
    }
}

#[test]
fn arbitrary_text_never_panics() {
    // A small deterministic generator over the characters the rules care about, multi-byte
    // characters included (slicing must stay on character boundaries).
    const ALPHABET: &[&str] = &[
        "a", "Z", "0", "1", "9", "f", ".", ":", "/", "\\", "|", "@", "[", "]", "(", ")", "{", "}", "-", "+", "`", "*",
        "\"", "'", ",", " ", "\n", "\t", "%", "é", "рф", "\u{2003}", "\u{200B}", "“", "”", "[.]", "hxxp://", "://",
        "bc1", "as", "cve-", "T1", "++", "link:", "](", "C:\\", "\u{FFFD}",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let len = (next() % 60) as usize;
        let text: String = (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]).collect();
        for mode in [Mode::Compat, Mode::Default] {
            let _ = extract(text.as_bytes(), mode, &tlds());
        }
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = 0xff;
        }
        let _ = extract(&bytes, Mode::Default, &tlds());
    }
}
