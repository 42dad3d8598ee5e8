//! Property tests of what hostile input reaches first in the domain: value normalisation for every
//! MISP type and the freetext extractor. Whatever the input, they answer (a value or a refusal, a list of
//! candidates) and never panic; what they accept is consistent.
//! `PROPTEST_CASES` sets the number of cases (CI's default 256; the long mode in docs/reliability.md).

use cairn_domain::freetext::{self, Mode, TldSet};
use cairn_domain::value;
use proptest::prelude::*;

/// Every type MISP's describeTypes lists that has its own rule, plus composites and unknown names.
const TYPES: &[&str] = &[
    "ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain", "hostname", "domain|ip", "hostname|port", "url", "uri", "link",
    "email", "email-src", "email-dst", "md5", "sha1", "sha256", "sha512", "ssdeep", "imphash", "impfuzzy", "tlsh", "pehash",
    "filename", "filename|md5", "filename|sha256", "filename|pehash", "regkey", "regkey|value", "AS", "port", "vulnerability",
    "cpe", "btc", "iban", "bic", "phone-number", "size-in-bytes", "counter", "float", "datetime", "mac-address", "x509-fingerprint-sha1",
    "malware-sample", "text", "comment", "other", "yara", "snort", "no-such-type",
];

/// Strings shaped like indicators, with the characters parsers trip on.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9.:/|\\[\\]()_%@-]{0,80}",
        "(hxxps?://)?([a-z0-9-]{1,12}(\\[\\.\\]|\\.)){1,4}[a-z]{2,6}(:[0-9]{1,6})?(/[^ ]{0,20})?",
        "([0-9]{1,4}\\.){3}[0-9]{1,4}(/[0-9]{1,3})?(\\|[0-9]{0,6})?",
        "[0-9a-fA-F:]{2,45}",
        "[\\x00-\\x20\u{202e}\u{feff}\u{0}]{0,8}[a-z]{0,10}",
    ]
}

proptest! {
    #[test]
    fn normalising_any_value_of_any_type_answers(t in prop::sample::select(TYPES), raw in hostile_text()) {
        if let Ok(n) = value::normalise(t, &raw) {
            prop_assert!(!n.value1.trim().is_empty(), "{t}: accepted an empty value from {raw:?}");
            prop_assert!(!n.value1.contains('\0') && !n.value2.contains('\0'), "{t}: NUL accepted in {raw:?}");
        }
    }

    #[test]
    fn the_freetext_extractor_answers_any_text(text in prop::collection::vec(hostile_text(), 0..12)) {
        let tlds = TldSet::from_names(["com", "org", "net", "test", "example", "lu"]);
        let joined = text.join(" ");
        for mode in [Mode::Default, Mode::Compat] {
            for c in freetext::extract(joined.as_bytes(), mode, &tlds) {
                prop_assert!(!c.value.is_empty(), "an empty candidate from {joined:?}");
                prop_assert!(c.types.contains(&c.default_type) || c.default_type == "email-src", "{c:?}");
            }
        }
    }

    #[test]
    fn the_freetext_extractor_answers_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let tlds = TldSet::from_names(["com", "test"]);
        let _ = freetext::extract(&bytes, Mode::Default, &tlds);
    }
}
