//! Attribute values: MISP's processing before validation and its per-type validation, so Cairn stores
//! the same `value1`/`value2` MISP would (and so correlates the same way).
//!
//! [`normalise`] follows `MispAttribute::beforeValidateMassage` and the `value` validation rules, in
//! MISP's order:
//! 1. trim PHP's whitespace set (space, `\t`, `\n`, `\r`, `\0`, `\x0B`; not Unicode spaces);
//! 2. refang, for the types MISP refangs at save ([`refang_for_type`]);
//! 3. the per-type normalisation (`AttributeValidationTool::modifyBeforeValidation`);
//! 4. refuse an empty value, a NUL, a value made only of control characters, a composite type
//!    without exactly one `|` (then split into `value1`/`value2`);
//! 5. the per-type validation (`AttributeValidationTool::validate`), with MISP's messages;
//! 6. refuse more than 65 535 bytes (MISP counts bytes, `strlen`).
//!
//! Steps 3 and 5 are one table, `rule`: a type maps to a `Modify` and a `Check`.
//! Every check is a small hand-written parser that reads the value once; nothing backtracks.
//!
//! Deliberate differences from MISP:
//! - **4-byte UTF-8 is kept.** MISP replaces such characters with `?` (a stopgap for MySQL's 3-byte
//!   `utf8`); PostgreSQL stores them.
//! - **NUL is refused** anywhere inside the value (PostgreSQL `jsonb`/`text` cannot hold `\u0000`);
//!   like PHP's `trim`, NULs at either end are trimmed away first.
//! - **Nothing is silently dropped.** Where MISP keeps only the first two pieces of a value with an
//!   extra `|` or `:` (`domain|ip`, `ip-dst|port`, `[v6]:port:x`), Cairn keeps the whole tail, so the
//!   value fails the composite or port check instead of losing data.
//! - **Types MISP has no rule for** (its validator throws, a 500): `suricata` accepts anything like
//!   `snort`; `edge-extension-id` must be one line like `chrome-extension-id`; `filename|impfuzzy`
//!   is a one-line filename plus an impfuzzy; `uuid` uses PyMISP's rule (hyphenated), lower-cased.
//! - `onion-address` accepts v2 (16) and v3 (56 characters): MISP's pattern has a typo (`{56)`)
//!   that refuses every v3 address.
//! - `integer` accepts a signed whole number: MISP tests `is_int` on a string and refuses everything.
//! - `datetime` has no clock here: ISO 8601 dates and date-times (and `@unix`) are accepted and
//!   written the way MISP writes them (`2020-01-02T03:04:05.000000+0000`); relative forms (`now`,
//!   `next monday`) and an empty value (MISP: "now") are refused.
//! - `link` approximates PHP's `FILTER_VALIDATE_URL`: URL characters only, a scheme, a host
//!   (except `mailto:`, `news:`, `file:`), and a valid host name or `[IPv6]` for http(s).
//! - IPv6 is compressed even when it starts with `:` (MISP skips `::0001`); `/32` is dropped only
//!   from an IPv4 network and `/128` only from an IPv6 one.
//!
//! Internationalised domain names are converted to punycode as MISP does (`idn_to_ascii`) for
//! `domain` and `domain|ip`, when the value is not already a valid ASCII domain. UTS #46 is
//! approximated: labels are lower-cased and the ideographic full stops become `.`, but there is no
//! NFC normalisation and no `ß`→`ss` mapping (input is expected in NFC, as nearly all text is).
//! `hostname` is not converted (MISP does not either), so a Unicode hostname is refused.
//!
//! Refang is MISP's table only: `(.)`, `{.}`, ` dot `, `[DOT]` are *not* refanged (MISP does not
//! either, `1.2.3(.)4` is not an IP there). The freetext importer adds its own extras on top
//! (`rtrim('.')`, `[x]`→`x`).

use std::net::{IpAddr, Ipv6Addr};

use chrono::NaiveDate;

use crate::types::is_composite;

/// The longest value MISP stores, in bytes (`maxTextLength`).
pub const MAX_LENGTH: usize = 65_535;

/// A value after MISP's processing: `value1`/`value2` as stored, and `value` as MISP shows it
/// (`value1` when `value2` is empty, otherwise `value1|value2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// The value as MISP shows it (its virtual `value` field).
    pub value: String,
    /// The whole value, or the first half of a composite.
    pub value1: String,
    /// The second half of a composite; empty otherwise.
    pub value2: String,
}

/// Why a value is refused, worded as MISP words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// MISP's message when a check returns a bare `false` (the rule's own message).
const GENERIC: &str = "Value not in the right type/format. Please double check the value or select type \"other\".";
const EMPTY: &str = "Value cannot be empty.";
const NUL: &str = "Value must not contain a NUL character (\\u0000).";
const CONTROL: &str = "Value provided consists purely of control characters and is therefore considered to be empty.";
const COMPOSITE: &str = "Composite type found but the value not in the composite (value1|value2) format.";
const TOO_LONG: &str =
    "The entered string is too long and would get truncated. Please consider adding the data as an attachment instead";
const NEWLINE: &str = "Value must not contain new line character.";
const FILENAME_NEWLINE: &str = "Filename must not contain new line character.";
const IP_FORMAT: &str = "IP address has an invalid format.";
const CIDR: &str = "Invalid CIDR notation value found.";
const PORT: &str = "Port numbers have to be integers between 1 and 65535.";
const SSDEEP: &str = "Invalid SSDeep hash. The format has to be blocksize:hash:hash";
const IMPFUZZY: &str = "Invalid impfuzzy format. The format has to be imports:hash:hash";
const TLSH: &str = "Checksum has an invalid length or format (expected: at least 35 hexadecimal characters, optionally starting with t1 instead of hexadecimal characters). Please double check the value or select type \"other\".";
const PEHASH: &str = "The input doesn't match the expected sha1 format (expected: 40 hexadecimal characters). Keep in mind that MISP currently only supports SHA1 for PEhashes, if you would like to get the support extended to other hash types, make sure to create a github ticket about it at https://github.com/MISP/MISP!";
const FILENAME_PEHASH: &str = "The input doesn't match the expected filename|sha1 format (expected: filename|40 hexadecimal characters). Keep in mind that MISP currently only supports SHA1 for PEhashes, if you would like to get the support extended to other hash types, make sure to create a github ticket about it at https://github.com/MISP/MISP!";

/// MISP's value processing and validation for an attribute of type `t` (see the module docs).
///
/// An unknown type gets the general rules only (the caller checks the type against the catalogue).
///
/// # Errors
/// The reason MISP would give for refusing the value: empty, NUL, composite format, the type's own
/// format (hash length, IP, port, domain…), or too long.
pub fn normalise(t: &str, raw: &str) -> Result<Normalised, ValueError> {
    let (modify, check) = rule(t);
    let value = modify.apply(&refang_for_type(t, php_trim(raw)));
    // Blank by any definition, Unicode spaces included (MISP's PHP trim keeps a lone U+00A0 as a value).
    if php_trim(&value).is_empty() || value.trim().is_empty() {
        return Err(err(EMPTY));
    }
    if value.contains('\0') {
        return Err(err(NUL));
    }
    if is_control_only(&value) {
        return Err(err(CONTROL));
    }
    let (value1, value2) = if is_composite(t) {
        match value.split_once('|') {
            Some((a, b)) if !b.contains('|') => {
                if is_control_only(a) || is_control_only(b) {
                    return Err(err(CONTROL));
                }
                // The first half names the thing (a file, a domain, a key): never empty.
                if a.trim().is_empty() {
                    return Err(err(COMPOSITE));
                }
                (a.to_string(), b.to_string())
            }
            _ => return Err(err(COMPOSITE)),
        }
    } else {
        (value.clone(), String::new())
    };
    check.run(&value)?;
    if value.len() > MAX_LENGTH {
        return Err(err(TOO_LONG));
    }
    let value = if value2.is_empty() { value1.clone() } else { value };
    Ok(Normalised { value, value1, value2 })
}

/// The per-type table: how MISP rewrites a value of type `t`, then how it checks it.
fn rule(t: &str) -> (Modify, Check) {
    use Check as C;
    use Modify as M;
    match t {
        // Hashes: MISP's HASH_HEX_LENGTH, lower-cased first (git-commit-id keeps its case in MISP).
        "md5" | "imphash" | "ja3-fingerprint-md5" | "hassh-md5" | "hasshserver-md5" | "dom-hash" => (M::Lower, C::Hex(32)),
        "sha1" => (M::Lower, C::Hex(40)),
        "sha224" | "sha512/224" | "sha3-224" => (M::Lower, C::Hex(56)),
        "sha256" | "sha512/256" | "sha3-256" | "authentihash" => (M::Lower, C::Hex(64)),
        "sha384" | "sha3-384" => (M::Lower, C::Hex(96)),
        "sha512" | "sha3-512" => (M::Lower, C::Hex(128)),
        "jarm-fingerprint" => (M::Lower, C::Hex(62)),
        "git-commit-id" => (M::Keep, C::Hex(40)),
        "x509-fingerprint-md5" => (M::X509, C::Hex(32)),
        "x509-fingerprint-sha1" => (M::X509, C::Hex(40)),
        "x509-fingerprint-sha256" => (M::X509, C::Hex(64)),
        "pehash" => (M::Lower, C::PeHash),
        "tlsh" => (M::Lower, C::Tlsh),
        "telfhash" => (M::Lower, C::Telfhash),
        "cdhash" => (M::Lower, C::Cdhash),
        "vhash" => (M::Lower, C::Vhash),
        "ssdeep" => (M::Keep, C::Ssdeep),
        "impfuzzy" => (M::Keep, C::Impfuzzy),
        // filename|<hash>: the filename keeps its case, the hash half is lower-cased.
        "filename|md5" | "filename|imphash" => (M::HashHalfLower, C::FilenameHex(32)),
        "filename|sha1" => (M::HashHalfLower, C::FilenameHex(40)),
        "filename|sha224" | "filename|sha512/224" | "filename|sha3-224" => (M::HashHalfLower, C::FilenameHex(56)),
        "filename|sha256" | "filename|sha512/256" | "filename|sha3-256" | "filename|authentihash" => {
            (M::HashHalfLower, C::FilenameHex(64))
        }
        "filename|sha384" | "filename|sha3-384" => (M::HashHalfLower, C::FilenameHex(96)),
        "filename|sha512" | "filename|sha3-512" => (M::HashHalfLower, C::FilenameHex(128)),
        "filename|pehash" => (M::HashHalfLower, C::FilenamePeHash),
        "filename|tlsh" => (M::HashHalfLower, C::FilenameTlsh),
        "filename|vhash" => (M::HashHalfLower, C::FilenameVhash),
        "filename|ssdeep" => (M::Keep, C::FilenameSsdeep),
        "filename|impfuzzy" => (M::Keep, C::FilenameImpfuzzy),
        // Network.
        "ip-src" | "ip-dst" => (M::Ip, C::Ip),
        "ip-src|port" | "ip-dst|port" => (M::IpPort, C::IpPort),
        "hostname" => (M::Lower, C::Domain("Hostname")),
        "domain" => (M::Domain, C::Domain("Domain")),
        "domain|ip" => (M::DomainIp, C::DomainIp),
        "hostname|port" => (M::HostnamePort, C::HostnamePort),
        "port" => (M::Keep, C::Port),
        "onion-address" => (M::Lower, C::Onion),
        "mac-address" => (M::Mac, C::Mac(6)),
        "mac-eui-64" => (M::Mac, C::Mac(8)),
        "AS" => (M::As, C::As),
        "link" => (M::Keep, C::Link),
        "http-method" => (M::Upper, C::HttpMethod),
        // E-mail addresses (only the first five are lower-cased by MISP).
        "email" | "email-src" | "email-dst" | "target-email" | "whois-registrant-email" => (M::Lower, C::Email),
        "eppn" | "dns-soa-email" | "jabber-id" => (M::Keep, C::Email),
        // Identifiers.
        "vulnerability" => (M::UpperDash, C::Cve),
        "weakness" => (M::UpperDash, C::Cwe),
        "uuid" => (M::Lower, C::Uuid),
        "ssh-fingerprint" => (M::Keep, C::SshFingerprint),
        "windows-service-name" | "windows-service-displayname" => (M::Keep, C::WindowsService),
        // Financial and phone numbers.
        "cc-number" | "bin" => (M::Digits, C::Numeric),
        "iban" | "bic" => (M::AlnumUpper, C::Alnum),
        "btc" | "dash" | "xmr" => (M::Keep, C::Alnum),
        "bank-account-nr" | "aba-rtn" | "float" => (M::Keep, C::Numeric),
        "prtn" | "phone-number" | "whois-registrant-phone" => (M::Phone, C::Numeric),
        // Scalars.
        "hex" => (M::Upper, C::HexString),
        "size-in-bytes" | "counter" => (M::Keep, C::Count),
        "integer" => (M::Keep, C::Integer),
        "boolean" => (M::Boolean, C::Any),
        "datetime" => (M::Datetime, C::Datetime),
        "cortex" => (M::Keep, C::Json),
        "anonymised" => (M::Lower, C::Any),
        // One line of free text, case kept.
        "url" | "uri" | "user-agent" | "regkey" | "regkey|value" | "filename" | "pdb" | "named pipe"
        | "windows-scheduled-task" | "target-user" | "target-machine" | "target-org" | "target-location"
        | "target-external" | "campaign-name" | "campaign-id" | "threat-actor" | "malware-type" | "email-subject"
        | "email-dst-display-name" | "email-src-display-name" | "email-reply-to" | "email-x-mailer"
        | "email-mime-boundary" | "email-thread-index" | "email-message-id" | "whois-registrant-name"
        | "whois-registrant-org" | "whois-registrar" | "whois-creation-date" | "date-of-birth" | "place-of-birth"
        | "gender" | "passport-number" | "passport-country" | "passport-expiration" | "redress-number"
        | "nationality" | "visa-number" | "issue-date-of-the-visa" | "primary-residence" | "country-of-residence"
        | "special-service-request" | "frequent-flyer-number" | "travel-details" | "payment-details"
        | "place-port-of-original-embarkation" | "place-port-of-clearance"
        | "place-port-of-onward-foreign-destination" | "passenger-name-record-locator-number"
        | "github-username" | "github-repository" | "github-organisation" | "twitter-id" | "dkim"
        | "dkim-signature" | "favicon-mmh3" | "chrome-extension-id" | "edge-extension-id"
        | "mobile-application-id" | "azure-application-id" => (M::Keep, C::SingleLine),
        // Anything goes: text, comment, other, yara, snort, suricata, sigma, attachment, malware-sample,
        // pattern-*, cpe, email-body… and unknown types.
        _ => (M::Keep, C::Any),
    }
}

/// MISP's rewrite of a value before it is checked (`modifyBeforeValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modify {
    Keep,
    /// ASCII lower case (PHP's `strtolower`).
    Lower,
    /// ASCII upper case (PHP's `strtoupper`).
    Upper,
    /// `–` → `-`, then upper case.
    UpperDash,
    /// IPv6 compressed, `/32` and `/128` dropped.
    Ip,
    /// Lower case, dots trimmed, punycode if not a valid ASCII domain.
    Domain,
    /// [`Modify::Domain`] on the first half, [`Modify::Ip`] on the second.
    DomainIp,
    /// Lower case from the first `|` on.
    HashHalfLower,
    /// Digits only.
    Digits,
    /// Upper case, then `[0-9A-Z]` only.
    AlnumUpper,
    /// `00` → `+`, `(0)` removed, then `+` and digits only.
    Phone,
    /// `:` removed, lower case.
    X509,
    /// The accepted `ip`/`port` spellings → `ip|port`.
    IpPort,
    /// Lower case, every `:` → `|`.
    HostnamePort,
    /// Separators removed, lower case, `aa:bb:…`.
    Mac,
    /// `true`/`false` and PHP truthiness → `1`/`0`.
    Boolean,
    /// ISO 8601 → `Y-m-d\TH:i:s.uO`.
    Datetime,
    /// `AS` prefix stripped, asdot → plain number.
    As,
}

impl Modify {
    fn apply(self, v: &str) -> String {
        match self {
            Modify::Keep => v.to_string(),
            Modify::Lower => v.to_ascii_lowercase(),
            Modify::Upper => v.to_ascii_uppercase(),
            Modify::UpperDash => v.replace('\u{2013}', "-").to_ascii_uppercase(),
            Modify::Ip => normalise_ip_text(v),
            Modify::Domain => normalise_domain(v),
            Modify::DomainIp => {
                let lower = v.to_ascii_lowercase();
                match lower.split_once('|') {
                    Some((domain, ip)) => format!("{}|{}", normalise_domain(domain), normalise_ip_text(ip)),
                    None => lower,
                }
            }
            Modify::HashHalfLower => match v.find('|') {
                Some(i) => format!("{}{}", &v[..i], v[i..].to_ascii_lowercase()),
                None => v.to_string(),
            },
            Modify::Digits => v.chars().filter(char::is_ascii_digit).collect(),
            Modify::AlnumUpper => {
                v.chars().map(|c| c.to_ascii_uppercase()).filter(|c| c.is_ascii_digit() || c.is_ascii_uppercase()).collect()
            }
            Modify::Phone => {
                let v = match v.strip_prefix("00") {
                    Some(rest) => format!("+{rest}"),
                    None => v.to_string(),
                };
                v.replace("(0)", "").chars().filter(|c| *c == '+' || c.is_ascii_digit()).collect()
            }
            Modify::X509 => v.replace(':', "").to_ascii_lowercase(),
            Modify::IpPort => normalise_ip_port(v),
            Modify::HostnamePort => v.to_ascii_lowercase().replace(':', "|"),
            Modify::Mac => {
                let hex: Vec<char> =
                    v.to_ascii_lowercase().chars().filter(|c| !matches!(c, '.' | ':' | '-' | ' ')).collect();
                hex.chunks(2).map(|pair| pair.iter().collect::<String>()).collect::<Vec<_>>().join(":")
            }
            Modify::Boolean => match php_trim(&v.to_ascii_lowercase()) {
                "true" => "1".to_string(),
                // PHP truthiness: only "" and "0" are false strings ("no" is true).
                "false" | "0" | "" => "0".to_string(),
                _ => "1".to_string(),
            },
            Modify::Datetime => parse_datetime(v).unwrap_or_else(|| v.to_string()),
            Modify::As => normalise_as(v),
        }
    }
}

/// MISP's check of a value after the rewrite (`AttributeValidationTool::validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Any,
    /// No line feed.
    SingleLine,
    /// Exactly this many hex digits.
    Hex(usize),
    PeHash,
    Tlsh,
    Telfhash,
    Cdhash,
    Vhash,
    Ssdeep,
    Impfuzzy,
    FilenameHex(usize),
    FilenamePeHash,
    FilenameTlsh,
    FilenameVhash,
    FilenameSsdeep,
    FilenameImpfuzzy,
    /// An IP address or CIDR network.
    Ip,
    IpPort,
    /// A domain or host name; the type's display name goes in the message.
    Domain(&'static str),
    DomainIp,
    HostnamePort,
    Port,
    Onion,
    /// This many hex octets, optionally `:`-separated.
    Mac(usize),
    As,
    Link,
    HttpMethod,
    Email,
    Cve,
    Cwe,
    Uuid,
    SshFingerprint,
    WindowsService,
    Numeric,
    Alnum,
    HexString,
    Count,
    Integer,
    Datetime,
    Json,
}

impl Check {
    fn run(self, v: &str) -> Result<(), ValueError> {
        let ok = |b: bool, message: &str| if b { Ok(()) } else { Err(err(message)) };
        match self {
            Check::Any => Ok(()),
            Check::SingleLine => ok(!v.contains('\n'), NEWLINE),
            Check::Hex(n) => ok(is_hex_of_length(v, n), &hash_message(n)),
            Check::PeHash => ok(is_hex_of_length(v, 40), PEHASH),
            Check::Tlsh => ok(is_tlsh(v), TLSH),
            Check::Telfhash => ok(
                v.len() == 70 || v.len() == 72,
                "Checksum has an invalid length or format (expected: 70 or 72 hexadecimal characters). Please double check the value or select type \"other\".",
            ),
            Check::Cdhash => ok(
                v.len() >= 40 && is_lower_hex(v),
                "The input doesn't match the expected format (expected: 40 or more hexadecimal characters)",
            ),
            Check::Vhash => ok(!v.contains('\n'), GENERIC),
            Check::Ssdeep => ok(is_ssdeep(v), SSDEEP),
            Check::Impfuzzy => ok(is_impfuzzy(v), IMPFUZZY),
            Check::FilenameHex(n) => {
                let (file, hash) = halves(v)?;
                ok(
                    !file.is_empty() && !file.contains('\n') && hash.len() == n && is_lower_hex(hash),
                    &format!("Checksum has an invalid length or format (expected: filename|{n} hexadecimal characters). Please double check the value or select type \"other\"."),
                )
            }
            Check::FilenamePeHash => {
                let (file, hash) = halves(v)?;
                ok(!file.is_empty() && !file.contains('\n') && hash.len() == 40 && is_lower_hex(hash), FILENAME_PEHASH)
            }
            Check::FilenameTlsh => {
                let (file, hash) = halves(v)?;
                ok(!file.contains('\n'), FILENAME_NEWLINE)?;
                ok(is_tlsh(hash), "TLSH hash has an invalid length or format (expected: filename|at least 35 hexadecimal characters, optionally starting with t1 instead of hexadecimal characters). Please double check the value or select type \"other\".")
            }
            Check::FilenameVhash => {
                let (file, hash) = halves(v)?;
                ok(
                    !file.is_empty() && !hash.is_empty() && !v.contains('\n'),
                    "Checksum has an invalid length or format (expected: filename|string characters). Please double check the value or select type \"other\".",
                )
            }
            Check::FilenameSsdeep => {
                let (file, hash) = halves(v)?;
                ok(!file.contains('\n'), FILENAME_NEWLINE)?;
                ok(is_ssdeep(hash), "Invalid ssdeep hash (expected: blocksize:hash:hash).")
            }
            Check::FilenameImpfuzzy => {
                let (file, hash) = halves(v)?;
                ok(!file.contains('\n'), FILENAME_NEWLINE)?;
                ok(is_impfuzzy(hash), IMPFUZZY)
            }
            Check::Ip => check_ip(v),
            Check::IpPort => {
                let (ip, port) = halves(v)?;
                ok(ip.parse::<IpAddr>().is_ok(), IP_FORMAT)?;
                ok(is_port(port), PORT)
            }
            Check::Domain(name) => ok(
                is_domain_valid(v),
                &format!("{name} has an invalid format. Please double check the value or select type \"other\"."),
            ),
            Check::DomainIp => {
                let (domain, ip) = halves(v)?;
                ok(is_domain_valid(domain), "Domain has an invalid format.")?;
                ok(ip.parse::<IpAddr>().is_ok(), IP_FORMAT)
            }
            Check::HostnamePort => {
                let (host, port) = halves(v)?;
                ok(is_domain_valid(host), "Hostname has an invalid format.")?;
                ok(is_port(port), PORT)
            }
            Check::Port => ok(is_port(v), PORT),
            Check::Onion => ok(is_onion(v), "Onion address has an invalid format."),
            Check::Mac(octets) => ok(is_mac(v, octets), GENERIC),
            Check::As => ok(
                is_digits(v) && digits_value(v).is_some_and(|n| n <= u64::from(u32::MAX)),
                "AS number have to be integer between 1 and 4294967295",
            ),
            Check::Link => ok(is_link(v), GENERIC),
            Check::HttpMethod => ok(HTTP_METHODS.iter().any(|m| v.contains(m)), "Unknown HTTP method."),
            Check::Email => ok(
                is_email(v),
                "Email address has an invalid format. Please double check the value or select type \"other\".",
            ),
            Check::Cve => ok(
                v.strip_prefix("CVE-").and_then(|r| r.split_once('-')).is_some_and(|(year, n)| {
                    year.len() == 4 && is_digits(year) && n.len() >= 4 && is_digits(n)
                }),
                "Invalid format. Expected: CVE-xxxx-xxxx...",
            ),
            Check::Cwe => ok(v.strip_prefix("CWE-").is_some_and(is_digits), "Invalid format. Expected: CWE-x..."),
            Check::Uuid => ok(is_uuid(v), "The value has to be a valid UUID format."),
            Check::SshFingerprint => ok(is_ssh_fingerprint(v), "SSH fingerprint must be in MD5 or SHA256 format."),
            Check::WindowsService => ok(
                v.len() <= 256 && !v.contains(['\\', '/']),
                "Invalid format. Only values shorter than 256 characters that don't include any forward or backward slashes are allowed.",
            ),
            Check::Numeric => ok(is_numeric(v), GENERIC),
            Check::Alnum => ok(v.bytes().all(|b| b.is_ascii_alphanumeric()), GENERIC),
            Check::HexString => ok(v.bytes().all(|b| b.is_ascii_hexdigit()), GENERIC),
            Check::Count => ok(is_digits(v), "The value has to be a whole number greater or equal 0."),
            Check::Integer => ok(v.parse::<i64>().is_ok(), "The value has to be an integer value."),
            Check::Datetime => ok(parse_datetime(v).is_some(), "Datetime has to be in the ISO 8601 format."),
            Check::Json => ok(serde_json::from_str::<serde_json::Value>(v).is_ok(), GENERIC),
        }
    }
}

const HTTP_METHODS: [&str; 30] = [
    "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PROPFIND", "PROPPATCH", "MKCOL", "COPY",
    "MOVE", "LOCK", "UNLOCK", "VERSION-CONTROL", "REPORT", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MKWORKSPACE",
    "UPDATE", "LABEL", "MERGE", "BASELINE-CONTROL", "MKACTIVITY", "ORDERPATCH", "ACL", "PATCH", "SEARCH",
];

/// The hex length MISP expects for a hash type (`md5` → 32, `pehash` → 40…); `None` otherwise.
pub fn hash_length(t: &str) -> Option<usize> {
    match rule(t).1 {
        Check::Hex(n) => Some(n),
        Check::PeHash => Some(40),
        _ => None,
    }
}

/// The type MISP's freetext import proposes first for a hex string of this length (`32` → `md5`).
pub fn hash_type_for_length(len: usize) -> Option<&'static str> {
    match len {
        32 => Some("md5"),
        40 => Some("sha1"),
        56 => Some("sha224"),
        64 => Some("sha256"),
        96 => Some("sha384"),
        128 => Some("sha512"),
        _ => None,
    }
}

/// An `ip-src`/`ip-dst` value as MISP stores it: IPv6 compressed, `/32` and `/128` dropped.
///
/// # Errors
/// Not an IP address, or a CIDR suffix that is not a number in range (`10.0.0.0/33`).
pub fn normalise_ip(v: &str) -> Result<String, ValueError> {
    let v = normalise_ip_text(v);
    check_ip(&v)?;
    Ok(v)
}

/// One row of MISP's refang table (`ComplexTypeTool::REFANG_REGEX_TABLE`).
struct RefangRule {
    /// Literal patterns (leftmost match wins, scanning left to right).
    from: &'static [&'static str],
    to: &'static str,
    /// Only as a prefix of the value, ignoring ASCII case (the scheme rule).
    prefix_only: bool,
    /// The types the rule applies to when a value is saved.
    types: &'static [&'static str],
}

const URL_TYPES: &[&str] = &["link", "url"];
const DOT_TYPES: &[&str] =
    &["link", "url", "ip-dst", "ip-src", "domain|ip", "domain", "hostname", "email", "email-src", "email-dst"];
const AT_TYPES: &[&str] = &["email", "email-src", "email-dst"];

const REFANG_TABLE: [RefangRule; 5] = [
    RefangRule { from: &["hxxp", "hxtp", "htxp", "meow", "h[tt]p"], to: "http", prefix_only: true, types: URL_TYPES },
    RefangRule { from: &["[.]", "[dot]", "(dot)"], to: ".", prefix_only: false, types: DOT_TYPES },
    RefangRule { from: &["[hxxp://]"], to: "http://", prefix_only: false, types: URL_TYPES },
    RefangRule { from: &["[@]", "[at]"], to: "@", prefix_only: false, types: AT_TYPES },
    RefangRule { from: &["[:]"], to: ":", prefix_only: false, types: URL_TYPES },
];

/// MISP's refang table applied whole, whatever the type (the freetext import's use):
/// a leading `hxxp`/`hxtp`/`htxp`/`meow`/`h[tt]p` (any case) → `http`; `[.]`, `[dot]`, `(dot)` → `.`;
/// `[hxxp://]` → `http://`; `[@]`, `[at]` → `@`; `[:]` → `:`. Bracket forms are case-sensitive.
pub fn refang(raw: &str) -> String {
    REFANG_TABLE.iter().fold(raw.to_string(), |s, rule| rule.apply(&s))
}

/// MISP's refang at save: only the rows of the table that list type `t` (`url`/`link` get all
/// of them, IPs/domains/hostnames the dots, the three e-mail types dots and `@`, others none).
pub fn refang_for_type(t: &str, raw: &str) -> String {
    REFANG_TABLE.iter().filter(|rule| rule.types.contains(&t)).fold(raw.to_string(), |s, rule| rule.apply(&s))
}

impl RefangRule {
    fn apply(&self, s: &str) -> String {
        if self.prefix_only {
            for p in self.from {
                if s.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p)) {
                    return format!("{}{}", self.to, &s[p.len()..]);
                }
            }
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            match self.from.iter().find(|p| rest.starts_with(*p)) {
                Some(p) => {
                    out.push_str(self.to);
                    rest = &rest[p.len()..];
                }
                None => {
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out
    }
}

/// A domain name in ASCII: each non-ASCII label lower-cased and punycode-encoded (`xn--…`), the
/// ideographic full stops read as dots. `None` when a label cannot be encoded or would be longer
/// than 63 characters (the value is then kept, and refused by validation).
pub fn domain_to_ascii(domain: &str) -> Option<String> {
    let dotted: String =
        domain.chars().map(|c| if matches!(c, '\u{3002}' | '\u{FF0E}' | '\u{FF61}') { '.' } else { c }).collect();
    let mut labels = Vec::new();
    for label in dotted.split('.') {
        if label.is_ascii() {
            labels.push(label.to_ascii_lowercase());
            continue;
        }
        let lower: String = label.chars().flat_map(char::to_lowercase).collect();
        // Every character takes at least one output character after `xn--`: a longer label can
        // never fit, and refusing it here keeps the (quadratic) encoder away from huge input.
        if lower.chars().count() > 59 {
            return None;
        }
        let encoded = format!("xn--{}", punycode(&lower)?);
        if encoded.len() > 63 {
            return None;
        }
        labels.push(encoded);
    }
    Some(labels.join("."))
}

/// RFC 3492 punycode of one label (without the `xn--` prefix).
fn punycode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    let code_points: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = u32::try_from(out.len()).ok()?;
    let total = u32::try_from(code_points.len()).ok()?;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (0x80_u32, 0_u32, 72_u32, basic);
    while handled < total {
        let m = code_points.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &code_points {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(punycode_digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(punycode_digit(q));
                bias = punycode_adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

fn punycode_adapt(delta: u32, points: u32, first: bool) -> u32 {
    const BASE: u32 = 36;
    let mut delta = if first { delta / 700 } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - 1) * 26) / 2 {
        delta /= BASE - 1;
        k += BASE;
    }
    k + (BASE * delta) / (delta + 38)
}

fn punycode_digit(d: u32) -> char {
    // d < 36 by construction: a–z then 0–9.
    let d = u8::try_from(d).unwrap_or(0);
    char::from(if d < 26 { b'a' + d } else { b'0' + d - 26 })
}

/// PHP's `trim`: space, `\t`, `\n`, `\r`, `\0`, `\x0B` at both ends.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\u{0B}'])
}

/// PHP's `ctype_cntrl`: non-empty and only ASCII control characters.
fn is_control_only(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b < 0x20 || b == 0x7f)
}

/// The two halves of a composite value (`normalise` has checked there is exactly one `|`).
fn halves(v: &str) -> Result<(&str, &str), ValueError> {
    v.split_once('|').ok_or_else(|| err(COMPOSITE))
}

fn hash_message(n: usize) -> String {
    format!(
        "Checksum has an invalid length or format (expected: {n} hexadecimal characters). Please double check the value or select type \"other\"."
    )
}

/// PHP's `ctype_digit`: non-empty, ASCII digits only.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The value of a digit string, `None` if it does not fit in 64 bits.
fn digits_value(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn is_hex_of_length(v: &str, n: usize) -> bool {
    v.len() == n && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_lower_hex(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// At least 36 hex digits, after an optional leading `t` (`T1…` was lower-cased before).
fn is_tlsh(v: &str) -> bool {
    let hex = v.strip_prefix('t').unwrap_or(v);
    hex.len() > 35 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `blocksize:hash:hash`, the hashes in the base64 alphabet (possibly empty).
fn is_ssdeep(v: &str) -> bool {
    let b64 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+');
    let mut parts = v.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(size), Some(a), Some(b), None) => is_digits(size) && b64(a) && b64(b),
        _ => false,
    }
}

/// Exactly two `:` and a number of imports first.
fn is_impfuzzy(v: &str) -> bool {
    v.matches(':').count() == 2 && v.split(':').next().is_some_and(is_digits)
}

fn is_port(v: &str) -> bool {
    is_digits(v) && digits_value(v).is_some_and(|p| (1..=65_535).contains(&p))
}

/// The port-number form of an asdot or `AS`-prefixed number; other values are kept.
fn normalise_as(v: &str) -> String {
    let v = match v.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("AS") => &v[2..],
        _ => v,
    };
    let asdot = v.split_once('.').filter(|(high, low)| is_digits(high) && is_digits(low)).and_then(|(high, low)| {
        digits_value(high)?.checked_mul(65_536)?.checked_add(digits_value(low)?)
    });
    match asdot {
        Some(n) => n.to_string(),
        None => v.to_string(),
    }
}

/// MISP's `normalizeIp` without validation: compress IPv6, drop a full-length prefix.
fn normalise_ip_text(v: &str) -> String {
    match v.split_once('/') {
        Some((ip, bits)) => {
            let full = match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => bits == "32",
                Ok(IpAddr::V6(_)) => bits == "128",
                Err(_) => false,
            };
            let ip = compress_ipv6(ip);
            if full { ip } else { format!("{ip}/{bits}") }
        }
        None => compress_ipv6(v),
    }
}

fn compress_ipv6(ip: &str) -> String {
    match ip.parse::<Ipv6Addr>() {
        Ok(addr) => addr.to_string(),
        Err(_) => ip.to_string(),
    }
}

/// MISP's `ip-*|port` spellings, rewritten to `ip|port`. With two or more `:` (IPv6): `v6|p`,
/// `[v6]:p`, `v6.p`, `v6 port p`, `v6pP`, `v6#p`, else the last `:` (`2001:db8::1:80`). Otherwise:
/// `v4:p`, `v4|p`. A separator counts only after the first character, as in MISP (`strpos`).
fn normalise_ip_port(v: &str) -> String {
    let after_first = |sep: &str| v.find(sep).filter(|&i| i > 0).map(|i| (&v[..i], &v[i + sep.len()..]));
    let parts = if v.matches(':').count() >= 2 {
        after_first("|")
            .or_else(|| {
                let close = v.find(']').filter(|_| v.starts_with('['))?;
                Some((&v[1..close], v[close..].strip_prefix("]:").unwrap_or("")))
            })
            .or_else(|| after_first("."))
            .or_else(|| after_first(" port "))
            .or_else(|| after_first("p"))
            .or_else(|| after_first("#"))
            .or_else(|| v.rsplit_once(':'))
    } else {
        after_first(":").or_else(|| after_first("|"))
    };
    match parts {
        Some((ip, port)) => format!("{}|{port}", normalise_ip_text(ip)),
        None => v.to_string(),
    }
}

/// An IP address, or a network `ip/bits` with `bits` ≤ 32 (IPv4) or ≤ 128 (IPv6).
fn check_ip(v: &str) -> Result<(), ValueError> {
    if !v.contains('/') {
        return v.parse::<IpAddr>().map(|_| ()).map_err(|_| err(IP_FORMAT));
    }
    let mut parts = v.split('/');
    let (Some(ip), Some(bits), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err(CIDR));
    };
    if !is_digits(bits) {
        return Err(err(CIDR));
    }
    let bits = digits_value(bits).unwrap_or(u64::MAX);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) if bits > 32 => {
            Err(err("Invalid CIDR notation value found, for IPv4 must be lower or equal 32."))
        }
        Ok(IpAddr::V6(_)) if bits > 128 => {
            Err(err("Invalid CIDR notation value found, for IPv6 must be lower or equal 128."))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(err(IP_FORMAT)),
    }
}

/// Lower case, outer dots trimmed, punycode when not already a valid ASCII domain.
fn normalise_domain(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    let d = lower.trim_matches('.');
    if is_domain_valid(d) {
        return d.to_string();
    }
    domain_to_ascii(d).unwrap_or_else(|| d.to_string())
}

/// MISP's (lenient) domain check `^[A-Z0-9.\-_]+\.[A-Z0-9\-]{2,}$`i: a non-empty head of letters,
/// digits, `.`, `-`, `_`, then a last label of at least two letters, digits or `-`.
fn is_domain_valid(v: &str) -> bool {
    let Some((head, last)) = v.rsplit_once('.') else { return false };
    !head.is_empty()
        && head.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && last.len() >= 2
        && last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// MISP's e-mail check `^.[^\s]*\@.*\..*$`: one character, then an `@` before any whitespace,
/// then a `.` somewhere after it, and no line feed after the `@`.
fn is_email(v: &str) -> bool {
    let Some(first) = v.chars().next() else { return false };
    if first == '\n' {
        return false;
    }
    let tail = &v[first.len_utf8()..];
    let at = tail.bytes().position(|b| b == b'@' || matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r'));
    match at {
        Some(i) if tail.as_bytes()[i] == b'@' => {
            let after = &tail[i + 1..];
            after.contains('.') && !after.contains('\n')
        }
        _ => false,
    }
}

/// A v2 (16) or v3 (56 characters) onion name, base32 lower case.
fn is_onion(v: &str) -> bool {
    v.strip_suffix(".onion").is_some_and(|name| {
        (name.len() == 16 || name.len() == 56) && name.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    })
}

/// `^([a-fA-F0-9]{2}[:]?){n}$`, read greedily (a `:` can only ever belong to the group before it).
fn is_mac(v: &str, octets: usize) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    for _ in 0..octets {
        if !(b.get(i).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)) {
            return false;
        }
        i += 2;
        if b.get(i) == Some(&b':') {
            i += 1;
        }
    }
    i == b.len()
}

/// A hyphenated UUID (`8-4-4-4-12` hex digits).
fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// `SHA256:` + base64 of 32 bytes, or an MD5 (optionally `MD5:`-prefixed, `:`-separated).
fn is_ssh_fingerprint(v: &str) -> bool {
    if let Some(b64) = v.strip_prefix("SHA256:") {
        return base64_decoded_len(b64) == Some(32);
    }
    let md5 = v.strip_prefix("MD5:").unwrap_or(v).replace(':', "");
    is_hex_of_length(&md5, 32)
}

/// The decoded length of strict base64 (padding optional, as PHP's strict `base64_decode` allows).
fn base64_decoded_len(s: &str) -> Option<usize> {
    let body = s.trim_end_matches('=');
    let padding = s.len() - body.len();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    if body.is_empty() || padding > 2 || !body.bytes().all(alphabet) || body.len() % 4 == 1 {
        return None;
    }
    if padding > 0 && !(body.len() + padding).is_multiple_of(4) {
        return None;
    }
    Some(body.len() * 3 / 4)
}

/// PHP's `is_numeric` on a trimmed string: `[+-]`, digits with an optional fraction (or `.digits`),
/// an optional exponent.
fn is_numeric(v: &str) -> bool {
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => (is_digits(int) && (frac.is_empty() || is_digits(frac))) || (int.is_empty() && is_digits(frac)),
        None => is_digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| is_digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// PHP's `FILTER_VALIDATE_URL`, approximated: URL characters only; a scheme; a host unless the
/// scheme is `mailto`, `news` or `file`; for http(s) a valid host name or `[IPv6]`; a numeric port.
fn is_link(v: &str) -> bool {
    const EXTRA: &[u8] = b"$-_.+!*'(),{}|\\^~[]`<>#%\";/?:@&=";
    if !v.bytes().all(|b| b.is_ascii_alphanumeric() || EXTRA.contains(&b)) {
        return false;
    }
    let Some((scheme, rest)) = v.split_once(':') else { return false };
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return false;
    }
    let host = rest.strip_prefix("//").map(|after| {
        let authority = after.split(['/', '?', '#']).next().unwrap_or("");
        authority.rsplit_once('@').map_or(authority, |(_, host)| host)
    });
    let host_and_port = match host {
        Some(h) if !h.is_empty() => h,
        _ => return matches!(scheme, "mailto" | "news" | "file"),
    };
    // `port` keeps its leading `:`.
    let (host, port) = if host_and_port.starts_with('[') {
        match host_and_port.find(']') {
            Some(close) => host_and_port.split_at(close + 1),
            None => return false,
        }
    } else {
        host_and_port.split_at(host_and_port.find(':').unwrap_or(host_and_port.len()))
    };
    let port_ok = match port.strip_prefix(':') {
        Some(p) => p.is_empty() || (is_digits(p) && digits_value(p).is_some_and(|n| n <= 65_535)),
        None => port.is_empty(),
    };
    if !port_ok || host.is_empty() {
        return false;
    }
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        return match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => is_hostname(host),
        };
    }
    true
}

/// PHP's host-name rule: labels of letters, digits and `-` (not at either end), 1–63 characters,
/// 253 in all; one trailing dot allowed.
fn is_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// ISO 8601 (`YYYY-MM-DD` or `YYYYMMDD`, optionally `THH:MM[:SS[.frac]]` and `Z`/`±HH[:MM]`) or `@unix`, written
/// as MISP writes it: `Y-m-d\TH:i:s.uO` (microseconds, `+0000` when no offset is given).
fn parse_datetime(v: &str) -> Option<String> {
    if let Some(secs) = v.strip_prefix('@') {
        let at = chrono::DateTime::from_timestamp(secs.parse().ok()?, 0)?;
        return Some(at.format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string());
    }
    let b = v.as_bytes();
    // PHP also reads the compact date `YYYYMMDD` (PyMISP's own tests send `20190101`).
    if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) && matches!(b.get(8), None | Some(b'T' | b't' | b' ')) {
        return parse_datetime(&format!("{}-{}-{}{}", &v[..4], &v[4..6], &v[6..8], &v[8..]));
    }
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let (mut hour, mut minute, mut second, mut micro, mut offset) = (0, 0, 0, 0, (b'+', 0, 0));
    let mut i = 10;
    if i < b.len() {
        if !matches!(b[i], b'T' | b't' | b' ') || b.get(i + 3) != Some(&b':') {
            return None;
        }
        hour = num(i + 1, 2)?;
        minute = num(i + 4, 2)?;
        i += 6;
        if b.get(i) == Some(&b':') {
            second = num(i + 1, 2)?;
            i += 3;
            if matches!(b.get(i), Some(b'.' | b',')) {
                let start = i + 1;
                i = start;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let frac = &b[start..i.min(start + 6)];
                let scale = 10_u32.pow(u32::try_from(6 - frac.len()).ok()?);
                micro = frac.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')) * scale;
            }
        }
        offset = match b.get(i..)? {
            [] => (b'+', 0, 0),
            [b'Z' | b'z'] => (b'+', 0, 0),
            [sign @ (b'+' | b'-'), _, _] => (*sign, num(i + 1, 2)?, 0),
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => (*sign, num(i + 1, 2)?, num(i + 4, 2)?),
            [sign @ (b'+' | b'-'), _, _, _, _] => (*sign, num(i + 1, 2)?, num(i + 3, 2)?),
            _ => return None,
        };
    }
    chrono::NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;
    let (sign, off_h, off_m) = offset;
    if off_h > 23 || off_m > 59 {
        return None;
    }
    Some(format!(
        "{}T{hour:02}:{minute:02}:{second:02}.{micro:06}{}{off_h:02}{off_m:02}",
        date.format("%Y-%m-%d"),
        char::from(sign)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form of a value that must be accepted.
    fn ok(t: &str, raw: &str) -> Normalised {
        match normalise(t, raw) {
            Ok(n) => n,
            Err(e) => panic!("{t} {raw:?} should be accepted, got: {e}"),
        }
    }

    fn value(t: &str, raw: &str) -> String {
        ok(t, raw).value
    }

    /// The message of a value that must be refused.
    fn refused(t: &str, raw: &str) -> String {
        match normalise(t, raw) {
            Ok(n) => panic!("{t} {raw:?} should be refused, got {n:?}"),
            Err(e) => e.0,
        }
    }

    const HASHES: [(&str, usize); 24] = [
        ("md5", 32),
        ("sha1", 40),
        ("sha224", 56),
        ("sha256", 64),
        ("sha384", 96),
        ("sha512", 128),
        ("sha512/224", 56),
        ("sha512/256", 64),
        ("sha3-224", 56),
        ("sha3-256", 64),
        ("sha3-384", 96),
        ("sha3-512", 128),
        ("imphash", 32),
        ("authentihash", 64),
        ("pehash", 40),
        ("ja3-fingerprint-md5", 32),
        ("jarm-fingerprint", 62),
        ("hassh-md5", 32),
        ("hasshserver-md5", 32),
        ("dom-hash", 32),
        ("git-commit-id", 40),
        ("x509-fingerprint-md5", 32),
        ("x509-fingerprint-sha1", 40),
        ("x509-fingerprint-sha256", 64),
    ];

    fn hex(len: usize) -> String {
        "0123456789abcdef".chars().cycle().take(len).collect()
    }

    #[test]
    fn every_hash_type_accepts_exactly_its_length_of_hex() {
        for (t, len) in HASHES {
            assert_eq!(value(t, &hex(len)), hex(len), "{t}");
            assert_eq!(hash_length(t), Some(len), "{t}");
            for wrong in [len - 1, len + 1] {
                let message = refused(t, &hex(wrong));
                let expected = if t == "pehash" { "40 hexadecimal".to_string() } else { format!("{len} hexadecimal") };
                assert!(message.contains(&expected), "{t}: {message}");
            }
            let not_hex = format!("{}g", hex(len - 1));
            assert!(normalise(t, &not_hex).is_err(), "{t}");
        }
    }

    #[test]
    fn a_hash_with_uppercase_hex_is_lower_cased() {
        for (t, len) in HASHES.iter().filter(|(t, _)| *t != "git-commit-id") {
            assert_eq!(value(t, &hex(*len).to_uppercase()), hex(*len), "{t}");
        }
        let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(value("sha256", sha256), sha256.to_lowercase());
    }

    #[test]
    fn a_git_commit_id_keeps_its_case_as_in_misp() {
        assert_eq!(value("git-commit-id", &hex(40).to_uppercase()), hex(40).to_uppercase());
    }

    #[test]
    fn the_wrong_hash_length_gets_misps_message() {
        assert_eq!(
            refused("md5", "abc"),
            "Checksum has an invalid length or format (expected: 32 hexadecimal characters). Please double check the value or select type \"other\"."
        );
    }

    #[test]
    fn a_hash_surrounded_by_whitespace_is_trimmed() {
        assert_eq!(value("md5", &format!("  {}\n", hex(32))), hex(32));
    }

    #[test]
    fn an_x509_fingerprint_loses_its_colons_and_case() {
        let colons = "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E";
        assert_eq!(value("x509-fingerprint-md5", colons), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn ssdeep_needs_blocksize_and_two_base64_parts() {
        let s = "96:s4Ud1Lj96tHHlZDrwciQmA+4uy1I0G4HYuL8N3TzS8QsO/wqWXLcMSx:sF1LjEtHHlZDrZzaV0lEDmhBn";
        assert_eq!(value("ssdeep", s), s);
        assert_eq!(value("ssdeep", "3::"), "3::");
        for bad in ["96:abc", "x:abc:def", "96:ab c:def", "96:abc:def,\"file.exe\""] {
            assert_eq!(refused("ssdeep", bad), "Invalid SSDeep hash. The format has to be blocksize:hash:hash", "{bad}");
        }
    }

    #[test]
    fn tlsh_is_lower_cased_and_needs_36_hex_digits_after_an_optional_t() {
        let body = hex(70);
        assert_eq!(value("tlsh", &format!("T1{}", body.to_uppercase())), format!("t1{body}"));
        assert_eq!(value("tlsh", &hex(36)), hex(36));
        assert!(refused("tlsh", &hex(35)).contains("at least 35"));
        assert!(normalise("tlsh", &format!("x{}", hex(40))).is_err());
    }

    #[test]
    fn telfhash_impfuzzy_cdhash_and_vhash_follow_misps_rules() {
        assert_eq!(value("telfhash", &format!("T1{}", hex(70)).to_uppercase()), format!("t1{}", hex(70)));
        assert!(refused("telfhash", &hex(71)).contains("70 or 72"));
        assert_eq!(value("impfuzzy", "48:fK4hBHq:fK4hB"), "48:fK4hBHq:fK4hB");
        assert!(refused("impfuzzy", "x:fK4:fK4").contains("imports:hash:hash"));
        assert!(normalise("impfuzzy", "48:a:b:c").is_err());
        assert_eq!(value("cdhash", &hex(48).to_uppercase()), hex(48));
        assert!(normalise("cdhash", &hex(39)).is_err());
        assert_eq!(value("vhash", "015076657D5Az1"), "015076657d5az1");
        assert!(normalise("vhash", "a\nb").is_err());
    }

    #[test]
    fn pehash_gets_its_own_message() {
        assert!(refused("pehash", "abc").starts_with("The input doesn't match the expected sha1 format"));
    }

    #[test]
    fn ipv6_is_compressed() {
        assert_eq!(value("ip-dst", "2001:0db8:0000::0001"), "2001:db8::1");
        assert_eq!(value("ip-src", "2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(value("ip-dst", "::0001"), "::1");
        assert_eq!(value("ip-dst", "2001:0db8::/32"), "2001:db8::/32");
    }

    #[test]
    fn ipv4_is_kept_as_given() {
        assert_eq!(value("ip-dst", "192.168.1.1"), "192.168.1.1");
        assert_eq!(value("ip-dst", "10.0.0.0/8"), "10.0.0.0/8");
    }

    #[test]
    fn a_full_length_prefix_is_dropped() {
        assert_eq!(value("ip-dst", "1.2.3.4/32"), "1.2.3.4");
        assert_eq!(value("ip-src", "2001:0db8::1/128"), "2001:db8::1");
        assert_eq!(value("ip-src", "2001:db8::/32"), "2001:db8::/32");
        assert_eq!(normalise_ip("1.2.3.4/32"), Ok("1.2.3.4".to_string()));
    }

    #[test]
    fn a_prefix_out_of_range_or_malformed_is_refused() {
        assert_eq!(refused("ip-dst", "10.0.0.0/33"), "Invalid CIDR notation value found, for IPv4 must be lower or equal 32.");
        assert_eq!(refused("ip-dst", "2001:db8::/129"), "Invalid CIDR notation value found, for IPv6 must be lower or equal 128.");
        assert_eq!(refused("ip-dst", "10.0.0.0/8.5"), "Invalid CIDR notation value found.");
        assert_eq!(refused("ip-dst", "10.0.0.0/"), "Invalid CIDR notation value found.");
        assert_eq!(refused("ip-dst", "10.0.0.0/8/8"), "Invalid CIDR notation value found.");
        assert_eq!(refused("ip-dst", "10.0.0.0/99999999999999999999999"), "Invalid CIDR notation value found, for IPv4 must be lower or equal 32.");
        assert!(normalise_ip("10.0.0.0/33").is_err());
    }

    #[test]
    fn a_malformed_ip_is_refused() {
        for bad in ["256.1.1.1", "01.02.03.04", "1.2.3", "evil.com", "2001:db8::1::2", "fe80::1%eth0"] {
            assert_eq!(refused("ip-dst", bad), "IP address has an invalid format.", "{bad}");
        }
    }

    #[test]
    fn a_defanged_ip_is_refanged() {
        assert_eq!(value("ip-dst", "1[.]2[.]3(dot)4"), "1.2.3.4");
        assert_eq!(value("ip-src", "10[dot]0[dot]0[dot]1"), "10.0.0.1");
    }

    #[test]
    fn ip_and_port_are_split_on_every_spelling_misp_accepts() {
        let cases = [
            ("1.2.3.4|80", "1.2.3.4", "80"),
            ("1.2.3.4:80", "1.2.3.4", "80"),
            ("2001:db8::1|443", "2001:db8::1", "443"),
            ("[2001:0db8::1]:443", "2001:db8::1", "443"),
            ("2001:db8::1.443", "2001:db8::1", "443"),
            ("2001:db8::1 port 443", "2001:db8::1", "443"),
            ("2001:db8::1p443", "2001:db8::1", "443"),
            ("2001:db8::1#443", "2001:db8::1", "443"),
            ("2001:db8::1:443", "2001:db8::1", "443"),
            ("1[.]2[.]3[.]4|8080", "1[.]2[.]3[.]4", "8080"),
        ];
        for (raw, ip, port) in cases.iter().take(9) {
            let n = ok("ip-dst|port", raw);
            assert_eq!((n.value1.as_str(), n.value2.as_str()), (*ip, *port), "{raw}");
            assert_eq!(n.value, format!("{ip}|{port}"));
        }
        // MISP does not refang the |port types.
        let (raw, ..) = cases[9];
        assert_eq!(refused("ip-src|port", raw), "IP address has an invalid format.");
    }

    #[test]
    fn a_port_outside_1_to_65535_is_refused() {
        assert_eq!(value("ip-dst|port", "1.2.3.4|65535"), "1.2.3.4|65535");
        assert_eq!(value("ip-dst|port", "1.2.3.4|1"), "1.2.3.4|1");
        for bad in ["1.2.3.4|99999", "1.2.3.4|0", "1.2.3.4|-1", "1.2.3.4|http", "1.2.3.4|"] {
            assert_eq!(refused("ip-dst|port", bad), "Port numbers have to be integers between 1 and 65535.", "{bad}");
        }
    }

    #[test]
    fn an_ip_port_with_extra_pieces_is_refused_rather_than_truncated() {
        assert_eq!(refused("ip-dst|port", "1.2.3.4|80|90"), COMPOSITE);
        assert_eq!(refused("ip-dst|port", "[2001:db8::1]:80:90"), PORT);
        assert_eq!(refused("ip-dst|port", "1.2.3.4"), COMPOSITE);
        assert_eq!(refused("ip-dst|port", "1.2.3.0/24|80"), IP_FORMAT);
    }

    #[test]
    fn the_port_type_accepts_1_to_65535() {
        assert_eq!(value("port", "443"), "443");
        assert_eq!(refused("port", "0"), PORT);
        assert_eq!(refused("port", "65536"), PORT);
    }

    #[test]
    fn a_hostname_port_is_lower_cased_and_split_on_the_colon() {
        let n = ok("hostname|port", "WWW.Example.COM:8443");
        assert_eq!((n.value1.as_str(), n.value2.as_str()), ("www.example.com", "8443"));
        assert_eq!(refused("hostname|port", "localhost:80"), "Hostname has an invalid format.");
        assert_eq!(refused("hostname|port", "www.example.com:80:81"), COMPOSITE);
    }

    #[test]
    fn a_domain_is_lower_cased_and_loses_its_outer_dots() {
        assert_eq!(value("domain", "Example.COM."), "example.com");
        assert_eq!(value("domain", ".evil.example"), "evil.example");
        assert_eq!(value("domain", "evil[.]example"), "evil.example");
        assert_eq!(value("domain", "under_score.example.com"), "under_score.example.com");
    }

    #[test]
    fn a_malformed_domain_is_refused_with_the_type_name() {
        let message = "Domain has an invalid format. Please double check the value or select type \"other\".";
        for bad in ["localhost", "example.c", "exa mple.com", "example.com/path", "."] {
            let got = refused("domain", bad);
            assert!(got == message || got == EMPTY, "{bad}: {got}");
        }
        assert!(refused("hostname", "localhost").starts_with("Hostname has an invalid format."));
    }

    #[test]
    fn an_internationalised_domain_becomes_punycode() {
        assert_eq!(value("domain", "bücher.example"), "xn--bcher-kva.example");
        assert_eq!(value("domain", "MÜNCHEN.de"), "xn--mnchen-3ya.de");
        assert_eq!(value("domain", "пример。рф"), "xn--e1afmkfd.xn--p1ai");
        assert_eq!(value("domain|ip", "Bücher.example|2001:0db8::1"), "xn--bcher-kva.example|2001:db8::1");
    }

    #[test]
    fn punycode_matches_rfc_3492() {
        assert_eq!(punycode("bücher").as_deref(), Some("bcher-kva"));
        assert_eq!(punycode("ü").as_deref(), Some("tda"));
        assert_eq!(punycode("他们为什么不说中文").as_deref(), Some("ihqwcrb4cv8a8dqg056pqjye"));
        assert_eq!(punycode("3年B組金八先生").as_deref(), Some("3B-ww4c5e180e575a65lsy2b"));
        assert_eq!(domain_to_ascii("example.com").as_deref(), Some("example.com"));
        assert_eq!(domain_to_ascii(&format!("{}.com", "ü".repeat(60))), None);
        let huge: String = (0x4e00..0x4e00 + 50_000).filter_map(char::from_u32).collect();
        assert_eq!(domain_to_ascii(&format!("{huge}.com")), None);
        assert!(normalise("domain", &format!("{huge}.com")).is_err());
    }

    #[test]
    fn a_hostname_is_lower_cased_but_never_converted() {
        assert_eq!(value("hostname", "WWW.Example.com"), "www.example.com");
        assert!(normalise("hostname", "www.bücher.example").is_err());
        assert!(normalise("hostname", "www.example.com.").is_err());
    }

    #[test]
    fn a_domain_ip_is_split_and_both_halves_normalised() {
        let n = ok("domain|ip", "Evil.Example.|10.0.0.1");
        assert_eq!((n.value1.as_str(), n.value2.as_str()), ("evil.example", "10.0.0.1"));
        assert_eq!(refused("domain|ip", "evil.example|10.0.0.300"), IP_FORMAT);
        assert_eq!(refused("domain|ip", "evil|10.0.0.1"), "Domain has an invalid format.");
        assert_eq!(refused("domain|ip", "evil.example|10.0.0.1|x"), COMPOSITE);
    }

    #[test]
    fn an_email_is_refanged_and_lower_cased() {
        assert_eq!(value("email-src", "John.Doe@Example.COM"), "john.doe@example.com");
        assert_eq!(value("email-dst", "john[at]example[.]com"), "john@example.com");
        assert_eq!(value("email", "john[@]example[dot]com"), "john@example.com");
        assert_eq!(value("target-email", "Boss@Corp.example"), "boss@corp.example");
        assert_eq!(value("whois-registrant-email", "A@B.C"), "a@b.c");
    }

    #[test]
    fn only_five_email_types_are_lower_cased() {
        assert_eq!(value("dns-soa-email", "Host.Master@Example.com"), "Host.Master@Example.com");
        assert_eq!(value("jabber-id", "Alice@Jabber.example"), "Alice@Jabber.example");
    }

    #[test]
    fn an_email_needs_an_at_before_any_space_and_a_dot_after_it() {
        let message = "Email address has an invalid format. Please double check the value or select type \"other\".";
        for bad in ["john", "john@example", "jo hn@example.com", "@example.com", "john@exa\nmple.com"] {
            assert_eq!(refused("email", bad), message, "{bad:?}");
        }
        assert_eq!(value("email", "@@example.com"), "@@example.com");
        assert_eq!(value("email", "john@example.com (work)"), "john@example.com (work)");
    }

    #[test]
    fn a_url_keeps_its_case_and_is_refanged() {
        assert_eq!(value("url", "hxxp://example[.]com/Path"), "http://example.com/Path");
        assert_eq!(value("url", "hxxps://Evil[dot]Example[:]8080/A?B=C"), "https://Evil.Example:8080/A?B=C");
        // Only the four matched letters become `http`, whatever their case (MISP's regex does the same).
        assert_eq!(value("url", "HXXPS://a.example"), "httpS://a.example");
        assert_eq!(value("url", "[hxxp://]evil.example/x"), "http://evil.example/x");
        assert_eq!(value("url", "meow://evil.example"), "http://evil.example");
        assert_eq!(value("link", "h[tt]ps://misp-project.org/Features"), "https://misp-project.org/Features");
        assert_eq!(refused("url", "http://a.example/\nx"), NEWLINE);
    }

    #[test]
    fn a_uri_is_not_refanged() {
        assert_eq!(value("uri", "/Evil[.]php?X=1"), "/Evil[.]php?X=1");
    }

    #[test]
    fn a_link_needs_a_scheme_and_a_proper_host() {
        for good in [
            "https://www.misp-project.org/",
            "http://1.2.3.4:8080/x?y=z#f",
            "http://[2001:db8::1]:8443/",
            "ftp://user:pw@files.example/a.txt",
            "mailto:someone@example.com",
        ] {
            assert_eq!(value("link", good), good);
        }
        for bad in ["example.com/x", "http://", "http://exa mple.com/", "http://-bad-.example/", "http://a.example:99999/", "https://bücher.example/"] {
            assert_eq!(refused("link", bad), GENERIC, "{bad}");
        }
    }

    #[test]
    fn an_as_number_loses_its_prefix_and_asdot_becomes_asplain() {
        assert_eq!(value("AS", "AS13335"), "13335");
        assert_eq!(value("AS", "as13335"), "13335");
        assert_eq!(value("AS", "13335"), "13335");
        assert_eq!(value("AS", "1.10"), "65546");
        assert_eq!(value("AS", "AS1.10"), "65546");
        assert_eq!(value("AS", "4294967295"), "4294967295");
        let message = "AS number have to be integer between 1 and 4294967295";
        for bad in ["4294967296", "ASN13335", "AS", "AS-1", "1.x", "99999999999999999999.1"] {
            assert_eq!(refused("AS", bad), if bad == "AS" { EMPTY } else { message }, "{bad}");
        }
    }

    #[test]
    fn a_vulnerability_is_upper_cased_and_must_be_a_cve() {
        assert_eq!(value("vulnerability", "cve-2021-44228"), "CVE-2021-44228");
        assert_eq!(value("vulnerability", "CVE\u{2013}2014\u{2013}0160"), "CVE-2014-0160");
        assert_eq!(value("vulnerability", "cve-2021-1234567"), "CVE-2021-1234567");
        for bad in ["CVE-21-1234", "CVE-2021-123", "GHSA-xxxx-yyyy-zzzz", "CVE-2021-44228 "] {
            let raw = format!("{bad}x");
            assert_eq!(refused("vulnerability", &raw), "Invalid format. Expected: CVE-xxxx-xxxx...", "{raw}");
        }
        assert_eq!(value("weakness", "cwe-79"), "CWE-79");
        assert_eq!(refused("weakness", "CWE-x"), "Invalid format. Expected: CWE-x...");
    }

    #[test]
    fn a_filename_hash_is_split_with_the_hash_lower_cased_and_the_filename_kept() {
        let n = ok("filename|md5", "Evil.EXE|D41D8CD98F00B204E9800998ECF8427E");
        assert_eq!(n.value1, "Evil.EXE");
        assert_eq!(n.value2, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(n.value, "Evil.EXE|d41d8cd98f00b204e9800998ecf8427e");
        let n = ok("filename|sha256", &format!("C:\\Temp\\A B.dll|{}", hex(64).to_uppercase()));
        assert_eq!((n.value1.as_str(), n.value2), ("C:\\Temp\\A B.dll", hex(64)));
    }

    #[test]
    fn every_filename_hash_type_checks_its_hash_half() {
        for (t, len) in [
            ("filename|md5", 32),
            ("filename|imphash", 32),
            ("filename|sha1", 40),
            ("filename|pehash", 40),
            ("filename|sha224", 56),
            ("filename|sha512/224", 56),
            ("filename|sha3-224", 56),
            ("filename|sha256", 64),
            ("filename|authentihash", 64),
            ("filename|sha512/256", 64),
            ("filename|sha3-256", 64),
            ("filename|sha384", 96),
            ("filename|sha3-384", 96),
            ("filename|sha512", 128),
            ("filename|sha3-512", 128),
        ] {
            assert_eq!(ok(t, &format!("a.exe|{}", hex(len))).value2, hex(len), "{t}");
            assert!(normalise(t, &format!("a.exe|{}", hex(len + 2))).is_err(), "{t}");
            assert!(normalise(t, &format!("|{}", hex(len))).is_err(), "{t} needs a filename");
            assert!(normalise(t, &format!("a\nb.exe|{}", hex(len))).is_err(), "{t} filename on one line");
        }
        assert!(refused("filename|sha1", "a.exe|abc").contains("filename|40 hexadecimal"));
    }

    #[test]
    fn the_fuzzy_filename_hash_types_check_their_own_formats() {
        assert_eq!(ok("filename|ssdeep", "a.exe|3:abc:def").value2, "3:abc:def");
        assert_eq!(refused("filename|ssdeep", "a.exe|abc"), "Invalid ssdeep hash (expected: blocksize:hash:hash).");
        assert_eq!(refused("filename|ssdeep", "a\nb|3:abc:def"), FILENAME_NEWLINE);
        assert_eq!(ok("filename|tlsh", &format!("a.exe|T1{}", hex(70).to_uppercase())).value2, format!("t1{}", hex(70)));
        assert!(refused("filename|tlsh", "a.exe|t1abc").starts_with("TLSH hash has an invalid length"));
        assert_eq!(ok("filename|vhash", "a.exe|015076657D5Az1").value2, "015076657d5az1");
        assert!(normalise("filename|vhash", "a.exe|").is_err());
        assert_eq!(ok("filename|impfuzzy", "a.exe|48:fK4:hBH").value2, "48:fK4:hBH");
        assert_eq!(refused("filename|impfuzzy", "a.exe|fK4"), IMPFUZZY);
    }

    #[test]
    fn a_composite_without_exactly_one_pipe_is_refused() {
        for (t, raw) in [
            ("filename|md5", "evil.exe"),
            ("filename|md5", &format!("a|b|{}", hex(32))),
            ("regkey|value", "HKLM\\Run"),
            ("regkey|value", "HKLM\\Run|a|b"),
            ("malware-sample", "evil.exe"),
            ("malware-sample", "|"),
            ("filename|md5", &format!(" |{}", hex(32))),
            ("domain|ip", "evil.example"),
        ] {
            assert_eq!(refused(t, raw), COMPOSITE, "{t} {raw}");
        }
    }

    #[test]
    fn a_malware_sample_is_split_like_filename_md5() {
        let n = ok("malware-sample", "Evil.exe|D41D8CD98F00B204E9800998ECF8427E");
        assert_eq!(n.value1, "Evil.exe");
        assert_eq!(n.value2, "D41D8CD98F00B204E9800998ECF8427E");
    }

    #[test]
    fn a_regkey_value_keeps_its_case_and_may_have_an_empty_value() {
        let n = ok("regkey|value", "HKLM\\Software\\Run|C:\\Evil.exe");
        assert_eq!((n.value1.as_str(), n.value2.as_str()), ("HKLM\\Software\\Run", "C:\\Evil.exe"));
        let n = ok("regkey|value", "HKLM\\Software\\Run|");
        assert_eq!((n.value.as_str(), n.value1.as_str(), n.value2.as_str()), ("HKLM\\Software\\Run", "HKLM\\Software\\Run", ""));
        assert_eq!(refused("regkey|value", "HKLM\\Run|a\nb"), NEWLINE);
    }

    #[test]
    fn a_non_composite_value_goes_whole_into_value1() {
        let n = ok("text", "a|b|c");
        assert_eq!((n.value.as_str(), n.value1.as_str(), n.value2.as_str()), ("a|b|c", "a|b|c", ""));
    }

    #[test]
    fn a_nul_inside_a_value_is_refused_and_one_at_the_edges_is_trimmed() {
        assert_eq!(refused("text", "abc\0def"), NUL);
        assert_eq!(refused("filename|md5", &format!("a\0.exe|{}", hex(32))), NUL);
        assert_eq!(value("text", "\0abc\0"), "abc");
    }

    #[test]
    fn an_empty_or_blank_value_is_refused_but_zero_is_a_value() {
        for blank in ["", "   ", "\t\n\r", "\0"] {
            assert_eq!(refused("text", blank), EMPTY, "{blank:?}");
        }
        assert_eq!(value("text", "0"), "0");
        assert_eq!(refused("phone-number", "call me"), EMPTY);
    }

    #[test]
    fn a_value_of_only_control_characters_is_refused() {
        assert_eq!(refused("text", "\u{1}\u{2}"), CONTROL);
        assert_eq!(refused("regkey|value", "\u{7}|x"), CONTROL);
        assert_eq!(value("text", "a\u{1}"), "a\u{1}");
    }

    #[test]
    fn the_length_limit_is_65535_bytes() {
        assert_eq!(value("text", &"a".repeat(MAX_LENGTH)).len(), MAX_LENGTH);
        assert_eq!(refused("text", &"a".repeat(MAX_LENGTH + 1)), TOO_LONG);
        // Bytes, not characters (MISP uses strlen): 32 768 two-byte characters are too long.
        assert_eq!(refused("comment", &"é".repeat(32_768)), TOO_LONG);
    }

    #[test]
    fn four_byte_characters_are_kept() {
        assert_eq!(value("text", "launch 🚀 now"), "launch 🚀 now");
    }

    #[test]
    fn free_text_types_accept_several_lines_and_one_line_types_refuse_them() {
        assert_eq!(value("text", "line one\nline two"), "line one\nline two");
        assert_eq!(value("yara", "rule a {\n condition: true\n}"), "rule a {\n condition: true\n}");
        assert_eq!(value("suricata", "alert ip any any -> any any (msg:\"x\";)"), "alert ip any any -> any any (msg:\"x\";)");
        for t in ["filename", "regkey", "user-agent", "chrome-extension-id", "edge-extension-id", "named pipe"] {
            assert_eq!(refused(t, "a\nb"), NEWLINE, "{t}");
        }
        assert_eq!(value("filename", "Invoice 2024.PDF.exe"), "Invoice 2024.PDF.exe");
    }

    #[test]
    fn a_mac_address_is_canonicalised() {
        assert_eq!(value("mac-address", "AA-BB-CC-DD-EE-FF"), "aa:bb:cc:dd:ee:ff");
        assert_eq!(value("mac-address", "aabb.ccdd.eeff"), "aa:bb:cc:dd:ee:ff");
        assert_eq!(value("mac-address", "AABBCCDDEEFF"), "aa:bb:cc:dd:ee:ff");
        assert_eq!(value("mac-eui-64", "00-11-22-FF-FE-33-44-55"), "00:11:22:ff:fe:33:44:55");
        for bad in ["aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "gg:bb:cc:dd:ee:ff"] {
            assert_eq!(refused("mac-address", bad), GENERIC, "{bad}");
        }
    }

    #[test]
    fn phone_numbers_are_reduced_to_plus_and_digits() {
        assert_eq!(value("phone-number", "0044 (0)20 7946 0958"), "+442079460958");
        assert_eq!(value("whois-registrant-phone", "+1-202-555-0143"), "+12025550143");
        assert_eq!(value("prtn", "555 0143"), "5550143");
        assert_eq!(refused("phone-number", "+1+2"), GENERIC);
    }

    #[test]
    fn financial_identifiers_are_cleaned_up() {
        assert_eq!(value("cc-number", "4111 1111-1111 1111"), "4111111111111111");
        assert_eq!(value("iban", "gb82 west 1234 5698 7654 32"), "GB82WEST12345698765432");
        assert_eq!(value("btc", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"), "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2");
        assert_eq!(refused("xmr", "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx 3"), GENERIC);
        assert_eq!(value("float", "-1.5e3"), "-1.5e3");
        assert_eq!(value("bank-account-nr", ".5"), ".5");
        assert_eq!(refused("float", "1.2.3"), GENERIC);
        assert_eq!(refused("aba-rtn", "0x1A"), GENERIC);
    }

    #[test]
    fn whole_numbers_are_checked() {
        assert_eq!(value("size-in-bytes", "1024"), "1024");
        assert_eq!(refused("counter", "-1"), "The value has to be a whole number greater or equal 0.");
        assert_eq!(value("integer", "-42"), "-42");
        assert_eq!(refused("integer", "4.2"), "The value has to be an integer value.");
    }

    #[test]
    fn a_boolean_becomes_one_or_zero_by_php_truthiness() {
        for (raw, stored) in [("true", "1"), ("TRUE", "1"), ("1", "1"), ("false", "0"), ("0", "0"), ("no", "1")] {
            assert_eq!(value("boolean", raw), stored, "{raw}");
        }
    }

    #[test]
    fn a_datetime_is_written_the_way_misp_writes_it() {
        for (raw, stored) in [
            ("2020-01-02", "2020-01-02T00:00:00.000000+0000"),
            ("2020-01-02T03:04:05Z", "2020-01-02T03:04:05.000000+0000"),
            ("2020-01-02 03:04", "2020-01-02T03:04:00.000000+0000"),
            ("2020-01-02T03:04:05.123+02:00", "2020-01-02T03:04:05.123000+0200"),
            ("2020-01-02T03:04:05.1234567-0530", "2020-01-02T03:04:05.123456-0530"),
            ("2020-01-02T03:04:05+01", "2020-01-02T03:04:05.000000+0100"),
            ("@0", "1970-01-01T00:00:00.000000+0000"),
            ("20190101", "2019-01-01T00:00:00.000000+0000"),
            ("20190101T10:11", "2019-01-01T10:11:00.000000+0000"),
            ("2020-01-04T12:30:34.323242+08:00", "2020-01-04T12:30:34.323242+0800"),
            ("2020-01-02T03:04:05.000000+0000", "2020-01-02T03:04:05.000000+0000"),
        ] {
            assert_eq!(value("datetime", raw), stored, "{raw}");
        }
        for bad in ["now", "yesterday", "2020-02-30", "2020-01-02T25:00", "2020-01-02T03:04:05+2400", "2020/01/02", "201901011"] {
            assert_eq!(refused("datetime", bad), "Datetime has to be in the ISO 8601 format.", "{bad}");
        }
    }

    #[test]
    fn onion_addresses_of_both_versions_are_accepted() {
        assert_eq!(value("onion-address", "ExpyuzZ4wqqyqhjn.onion"), "expyuzz4wqqyqhjn.onion");
        let v3 = format!("{}.onion", "a".repeat(56));
        assert_eq!(value("onion-address", &v3), v3);
        assert_eq!(refused("onion-address", "expyuzz4wqqyqhj1.onion"), "Onion address has an invalid format.");
    }

    #[test]
    fn a_uuid_is_checked_and_lower_cased() {
        assert_eq!(value("uuid", "5B1E1A4E-0B58-4D1D-8E5C-2F2A3B4C5D6E"), "5b1e1a4e-0b58-4d1d-8e5c-2f2a3b4c5d6e");
        assert_eq!(refused("uuid", "5b1e1a4e0b584d1d8e5c2f2a3b4c5d6e"), "The value has to be a valid UUID format.");
    }

    #[test]
    fn ssh_fingerprints_in_md5_or_sha256_form_are_accepted() {
        for good in [
            "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
            "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
            "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        ] {
            assert_eq!(value("ssh-fingerprint", good), good);
        }
        for bad in ["SHA256:abc", "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8!", "16:27:ac"] {
            assert_eq!(refused("ssh-fingerprint", bad), "SSH fingerprint must be in MD5 or SHA256 format.", "{bad}");
        }
    }

    #[test]
    fn small_identifier_types_follow_misps_rules() {
        assert_eq!(value("http-method", "post"), "POST");
        assert_eq!(refused("http-method", "FETCH"), "Unknown HTTP method.");
        assert_eq!(value("hex", "deadBEEF"), "DEADBEEF");
        assert_eq!(refused("hex", "xyz"), GENERIC);
        assert_eq!(value("cortex", "{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(refused("cortex", "{a: 1}"), GENERIC);
        assert_eq!(value("windows-service-name", "EvilSvc"), "EvilSvc");
        assert!(refused("windows-service-name", "C:\\evil").starts_with("Invalid format. Only values shorter than 256"));
        assert_eq!(value("anonymised", "ABC"), "abc");
        assert_eq!(value("cpe", "cpe:2.3:a:Vendor:Product:1.0"), "cpe:2.3:a:Vendor:Product:1.0");
    }

    #[test]
    fn refang_applies_misps_whole_table() {
        assert_eq!(refang("hxxps://evil[.]example[:]443/a[dot]b"), "https://evil.example:443/a.b");
        assert_eq!(refang("HXTP://x"), "http://x");
        assert_eq!(refang("htxp://x"), "http://x");
        assert_eq!(refang("h[tt]p://x"), "http://x");
        assert_eq!(refang("[hxxp://]x.example"), "http://x.example");
        assert_eq!(refang("a[@]b(dot)c"), "a@b.c");
        assert_eq!(refang("a[at]b[.]c"), "a@b.c");
    }

    #[test]
    fn refang_leaves_what_misp_leaves() {
        for kept in ["1.2.3(.)4", "a{.}b", "a[DOT]b", "a[AT]b", "a dot b", "xhxxp://a", "fxp://a", "ümlaut[.]"] {
            let expected = if kept == "ümlaut[.]" { "ümlaut." } else { kept };
            assert_eq!(refang(kept), expected, "{kept}");
        }
    }

    #[test]
    fn refang_at_save_depends_on_the_type() {
        assert_eq!(refang_for_type("ip-dst", "hxxp://1[.]2[.]3[.]4[:]80"), "hxxp://1.2.3.4[:]80");
        assert_eq!(refang_for_type("email-src", "a[at]b[.]c"), "a@b.c");
        assert_eq!(refang_for_type("target-email", "a[at]b[.]c"), "a[at]b[.]c");
        assert_eq!(refang_for_type("text", "hxxp://a[.]b"), "hxxp://a[.]b");
        assert_eq!(refang_for_type("link", "hxxp://a[.]b[:]8"), "http://a.b:8");
    }

    #[test]
    fn an_unknown_type_gets_only_the_general_rules() {
        assert_eq!(value("no-such-type", " Anything|Goes "), "Anything|Goes");
        assert_eq!(refused("no-such-type", ""), EMPTY);
    }

    #[test]
    fn the_freetext_hash_guess_follows_misp() {
        assert_eq!(hash_type_for_length(32), Some("md5"));
        assert_eq!(hash_type_for_length(64), Some("sha256"));
        assert_eq!(hash_type_for_length(33), None);
        assert_eq!(hash_length("ssdeep"), None);
    }
}
