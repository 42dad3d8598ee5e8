//! Attribute values: MISP's processing before validation (trim, refang, per-type normalisation,
//! composite split into value1/value2) and per-type validation. One `match` per concern reads as a
//! table; hand-written parsers, no regex engine (nothing can backtrack).
//!
//! Deliberate differences from MISP (docs/api.md): 4-byte UTF-8 characters are kept (MISP replaces
//! them with `?` because of MySQL's `utf8`); internationalised domain names are kept in Unicode,
//! lower-cased (MISP converts them to punycode); a NUL character is refused (PostgreSQL cannot store it).

use crate::types::is_composite;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A normalised value: `value` is what MISP shows (`value1` or `value1|value2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    pub value: String,
    pub value1: String,
    pub value2: String,
}

/// Why a value is refused (a human message, as MISP words them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err(s: impl Into<String>) -> ValueError {
    ValueError(s.into())
}

/// MISP's longest value.
pub const MAX_LENGTH: usize = 65_535;

/// Refangs a defanged indicator: `hxxp`→`http`, `[.]`/`(.)`/`[dot]`/`(dot)`/`{.}` → `.`, `[@]`/`[at]`/`(at)`
/// → `@`, `[:]` → `:`, `[/]` → `/`, and `meow://`/`hxxps` style schemes.
pub fn refang(raw: &str) -> String {
    let mut s = raw.to_string();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("{dot}", "."),
        ("[DOT]", "."),
        ("(DOT)", "."),
        (" . ", "."),
        ("[@]", "@"),
        ("(@)", "@"),
        ("[at]", "@"),
        ("(at)", "@"),
        ("{at}", "@"),
        ("[AT]", "@"),
        ("[:]", ":"),
        ("[://]", "://"),
        ("[/]", "/"),
        ("\\.", "."),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let lower = s.to_ascii_lowercase();
    for (from, to) in [("hxxps://", "https://"), ("hxxp://", "http://"), ("hxxps[:]//", "https://"), ("hxxp[:]//", "http://"), ("meow://", "http://"), ("fxp://", "ftp://")] {
        if lower.starts_with(from) {
            s = format!("{to}{}", &s[from.len()..]);
            break;
        }
    }
    s
}

/// Types whose values MISP refangs before validation.
fn refangs(t: &str) -> bool {
    matches!(
        t,
        "url" | "link" | "uri" | "domain" | "hostname" | "domain|ip" | "hostname|port" | "ip-src" | "ip-dst" | "ip-src|port"
            | "ip-dst|port" | "email" | "email-src" | "email-dst" | "email-reply-to" | "target-email"
            | "whois-registrant-email" | "dns-soa-email"
    )
}

/// Expected hex length of a hash type, if `t` is one.
pub fn hash_length(t: &str) -> Option<usize> {
    Some(match t {
        "md5" | "imphash" | "x509-fingerprint-md5" | "ja3-fingerprint-md5" | "hassh-md5" | "hasshserver-md5" => 32,
        "sha1" | "pehash" | "x509-fingerprint-sha1" | "cdhash" => 40,
        "sha224" | "sha512/224" | "sha3-224" => 56,
        "sha256" | "authentihash" | "sha512/256" | "sha3-256" | "x509-fingerprint-sha256" => 64,
        "sha384" | "sha3-384" => 96,
        "sha512" | "sha3-512" => 128,
        "jarm-fingerprint" => 62,
        _ => return None,
    })
}

/// The hash type for a hex string of this length (used by importers).
pub fn hash_type_for_length(len: usize) -> Option<&'static str> {
    Some(match len {
        32 => "md5",
        40 => "sha1",
        56 => "sha224",
        64 => "sha256",
        96 => "sha384",
        128 => "sha512",
        _ => return None,
    })
}

fn check_hash(t: &str, v: &str) -> Result<String, ValueError> {
    let Some(len) = hash_length(t) else { return Ok(v.to_string()) };
    let v = if t.starts_with("x509-fingerprint") { v.replace(':', "") } else { v.to_string() };
    let lower = v.to_ascii_lowercase();
    if lower.len() == len && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(err(format!(
            "Checksum has an invalid length or format (expected: {len} hexadecimal characters). Please double check the value or select type \"other\"."
        )))
    }
}

fn is_base64ish(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
}

/// `blocksize:hash:hash[,"filename"]`.
fn check_ssdeep(v: &str) -> Result<String, ValueError> {
    let core = v.split(',').next().unwrap_or("");
    let parts: Vec<&str> = core.split(':').collect();
    let ok = parts.len() == 3 && parts[0].parse::<u64>().is_ok() && is_base64ish(parts[1]) && is_base64ish(parts[2]);
    if ok { Ok(v.to_string()) } else { Err(err("Invalid SSDeep hash. The format has to be blocksize:hash:hash")) }
}

fn check_tlsh(v: &str) -> Result<String, ValueError> {
    let lower = v.to_ascii_lowercase();
    let hex = lower.strip_prefix("t1").unwrap_or(&lower);
    if hex.len() >= 35 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(err("Invalid TLSH hash (expected at least 35 hexadecimal characters, optionally prefixed T1)."))
    }
}

/// An IP address or CIDR block, canonicalised (compressed IPv6, /32 and /128 dropped).
pub fn normalise_ip(v: &str) -> Result<String, ValueError> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let ip: IpAddr = addr.trim().parse().map_err(|_| err("IP address has an invalid format."))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => Ok(ip.to_string()),
        Some(p) => {
            let p: u8 = p.trim().parse().map_err(|_| err("Invalid CIDR notation value found."))?;
            if p > max {
                return Err(err("Invalid CIDR notation value found."));
            }
            if p == max { Ok(ip.to_string()) } else { Ok(format!("{ip}/{p}")) }
        }
    }
}

fn check_port(p: &str) -> Result<String, ValueError> {
    match p.trim().parse::<u32>() {
        Ok(n) if n <= 65_535 => Ok(n.to_string()),
        _ => Err(err("Port numbers have to be integers between 0 and 65535.")),
    }
}

/// `ip|port` in MISP's accepted spellings: `ip|port`, `ip:port` (IPv4), `[v6]:port`, `v6 port p`,
/// `v6#port`, `v6.port`.
fn split_ip_port(v: &str) -> Result<(String, String), ValueError> {
    if let Some((ip, port)) = v.split_once('|') {
        return Ok((normalise_ip(ip.trim())?, check_port(port)?));
    }
    if let Some(rest) = v.strip_prefix('[') {
        if let Some((ip, port)) = rest.split_once("]:") {
            return Ok((normalise_ip(ip)?, check_port(port)?));
        }
    }
    for sep in [" port ", "#"] {
        if let Some((ip, port)) = v.split_once(sep) {
            return Ok((normalise_ip(ip.trim())?, check_port(port)?));
        }
    }
    if let Some((ip, port)) = v.rsplit_once(':') {
        if ip.parse::<Ipv4Addr>().is_ok() {
            return Ok((normalise_ip(ip)?, check_port(port)?));
        }
    }
    if let Some((ip, port)) = v.rsplit_once('.') {
        if ip.parse::<Ipv6Addr>().is_ok() {
            return Ok((normalise_ip(ip)?, check_port(port)?));
        }
    }
    Err(err("The value has to be an IP address and a port separated by |."))
}

/// Domain and hostname labels: letters (any script), digits, `-` and `_`, separated by dots.
fn check_domain(v: &str) -> Result<String, ValueError> {
    let d = v.trim().trim_end_matches('.').to_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = labels.len() >= 2
        && d.len() <= 255
        && labels.iter().all(|l| {
            !l.is_empty() && l.chars().count() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    if ok { Ok(d) } else { Err(err("Domain name has an invalid format.")) }
}

fn check_email(v: &str) -> Result<String, ValueError> {
    let e = v.trim().to_lowercase();
    match e.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !e.chars().any(char::is_whitespace) => Ok(e),
        _ => Err(err("Email address has an invalid format. Please double check the value or select type \"other\".")),
    }
}

fn check_as(v: &str) -> Result<String, ValueError> {
    let t = v.trim();
    let t = t.strip_prefix("AS").or_else(|| t.strip_prefix("as")).or_else(|| t.strip_prefix("As")).unwrap_or(t).trim();
    let n: Option<u64> = match t.split_once('.') {
        Some((hi, lo)) => match (hi.parse::<u64>(), lo.parse::<u64>()) {
            (Ok(h), Ok(l)) if h <= 65_535 && l <= 65_535 => Some(h * 65_536 + l),
            _ => None,
        },
        None => t.parse().ok(),
    };
    match n {
        Some(n) if n <= u64::from(u32::MAX) => Ok(n.to_string()),
        _ => Err(err("AS number have to be integer between 1 and 4294967295")),
    }
}

fn check_vulnerability(v: &str) -> Result<String, ValueError> {
    let u = v.trim().to_uppercase().replace(['–', '—'], "-");
    let mut parts = u.splitn(3, '-');
    let ok = parts.next() == Some("CVE")
        && parts.next().is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(u) } else { Err(err("Invalid format. Expected: CVE-xxxx-xxxx...")) }
}

fn check_mac(v: &str) -> Result<String, ValueError> {
    let hex: String = v.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_lowercase();
    let separators_ok = v.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
    if hex.len() != 12 || !separators_ok {
        return Err(err("MAC address has an invalid format."));
    }
    Ok(hex.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":"))
}

fn check_integer(v: &str, what: &str) -> Result<String, ValueError> {
    match v.trim().parse::<u64>() {
        Ok(n) => Ok(n.to_string()),
        Err(_) => Err(err(format!("The value has to be a whole number ({what})."))),
    }
}

/// Normalises and validates one (non-composite) value of type `t`.
fn single(t: &str, v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(err("Value cannot be empty."));
    }
    if hash_length(t).is_some() {
        return check_hash(t, v);
    }
    match t {
        "ssdeep" => check_ssdeep(v),
        "tlsh" => check_tlsh(v),
        "ip-src" | "ip-dst" => normalise_ip(v),
        "domain" | "hostname" => check_domain(v),
        "email" | "email-src" | "email-dst" | "email-reply-to" | "target-email" | "whois-registrant-email" | "dns-soa-email" => {
            check_email(v)
        }
        "AS" => check_as(v),
        "port" => check_port(v),
        "vulnerability" => check_vulnerability(v),
        "mac-address" => check_mac(v),
        "counter" | "size-in-bytes" => check_integer(v, t),
        "float" => v.trim().parse::<f64>().map(|_| v.trim().to_string()).map_err(|_| err("The value has to be a number.")),
        _ => Ok(v.to_string()),
    }
}

/// MISP's value processing before validation for attribute type `t`, then validation.
///
/// # Errors
/// A value MISP would refuse for this type, with MISP's reason.
pub fn normalise(t: &str, raw: &str) -> Result<Normalised, ValueError> {
    if raw.contains('\0') {
        return Err(err("The value contains a NUL character."));
    }
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_LENGTH {
        return Err(err(format!("The value is too long ({MAX_LENGTH} characters at most).")));
    }
    let v = if refangs(t) { refang(trimmed) } else { trimmed.to_string() };
    let (value1, value2) = if is_composite(t) {
        match t {
            "ip-src|port" | "ip-dst|port" => split_ip_port(&v)?,
            "hostname|port" => {
                let (h, p) = v.rsplit_once('|').or_else(|| v.rsplit_once(':')).ok_or_else(|| err("Composite type found but the value is not in the composite (value1|value2) format."))?;
                (check_domain(h)?, check_port(p)?)
            }
            "regkey|value" => {
                let (k, val) = v.split_once('|').ok_or_else(|| err("Composite type found but the value is not in the composite (value1|value2) format."))?;
                if k.trim().is_empty() {
                    return Err(err("Value cannot be empty."));
                }
                (k.trim().to_string(), val.trim().to_string())
            }
            _ => {
                let parts: Vec<&str> = v.split('|').collect();
                if parts.len() != 2 {
                    return Err(err("Composite type found but the value is not in the composite (value1|value2) format."));
                }
                let (a, b) = (parts[0].trim(), parts[1].trim());
                match t {
                    "domain|ip" => (check_domain(a)?, normalise_ip(b)?),
                    "malware-sample" => (single("filename", a)?, check_hash("md5", b)?),
                    _ => {
                        let second = t.split_once('|').map(|(_, s)| s).unwrap_or("");
                        let b = match second {
                            "ssdeep" => check_ssdeep(b)?,
                            "tlsh" => check_tlsh(b)?,
                            "impfuzzy" | "vhash" => b.to_string(),
                            h => check_hash(h, b)?,
                        };
                        (single("filename", a)?, b)
                    }
                }
            }
        }
    } else {
        (single(t, &v)?, String::new())
    };
    let value = if value2.is_empty() && !is_composite(t) { value1.clone() } else { format!("{value1}|{value2}") };
    Ok(Normalised { value, value1, value2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(t: &str, v: &str) -> String {
        normalise(t, v).unwrap_or_else(|e| panic!("{t} {v}: {e}")).value
    }

    #[test]
    fn hashes_are_checked_by_length_and_lower_cased() {
        assert_eq!(n("md5", "D41D8CD98F00B204E9800998ECF8427E"), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(normalise("md5", "d41d8cd98f00b204e9800998ecf8427").is_err());
        assert!(normalise("sha1", "zz".repeat(20).as_str()).is_err());
        for (t, len) in [("sha1", 40), ("sha224", 56), ("sha256", 64), ("sha384", 96), ("sha512", 128), ("sha3-512", 128), ("imphash", 32)] {
            assert!(normalise(t, &"a".repeat(len)).is_ok(), "{t}");
            assert!(normalise(t, &"a".repeat(len + 1)).is_err(), "{t}");
        }
        assert_eq!(n("x509-fingerprint-md5", "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E"), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn ips_are_canonical() {
        assert_eq!(n("ip-dst", "2001:0db8:0000::0001"), "2001:db8::1");
        assert_eq!(n("ip-dst", "1.2.3.4/32"), "1.2.3.4");
        assert_eq!(n("ip-src", "2001:db8::/128"), "2001:db8::");
        assert_eq!(n("ip-src", "10.0.0.0/8"), "10.0.0.0/8");
        assert!(normalise("ip-src", "10.0.0.0/33").is_err());
        assert!(normalise("ip-src", "300.1.1.1").is_err());
        assert_eq!(n("ip-dst", "8.8.8[.]8"), "8.8.8.8");
    }

    #[test]
    fn ip_port_accepts_misps_separators_and_checks_the_port() {
        assert_eq!(n("ip-dst|port", "1.2.3.4|443"), "1.2.3.4|443");
        assert_eq!(n("ip-dst|port", "1.2.3.4:80"), "1.2.3.4|80");
        assert_eq!(n("ip-src|port", "[2001:db8::1]:8080"), "2001:db8::1|8080");
        assert_eq!(n("ip-src|port", "2001:db8::1 port 53"), "2001:db8::1|53");
        assert!(normalise("ip-dst|port", "1.2.3.4|99999").is_err());
    }

    #[test]
    fn domains_and_emails_are_lower_cased_and_refanged() {
        assert_eq!(n("domain", "Example[.]COM."), "example.com");
        assert_eq!(n("hostname", "WWW.example.org"), "www.example.org");
        assert_eq!(n("domain", "bücher.example"), "bücher.example");
        assert!(normalise("domain", "no_dot").is_err());
        assert_eq!(n("email-src", "John[@]Example.ORG"), "john@example.org");
        assert!(normalise("email", "nobody").is_err());
        assert_eq!(n("domain|ip", "Example.com|1.2.3.4"), "example.com|1.2.3.4");
    }

    #[test]
    fn urls_keep_their_case_and_are_refanged() {
        assert_eq!(n("url", "hxxp://example[.]com/Path"), "http://example.com/Path");
        assert_eq!(n("link", "hxxps://x[.]org/A"), "https://x.org/A");
    }

    #[test]
    fn as_numbers_vulnerabilities_and_macs() {
        assert_eq!(n("AS", "AS13335"), "13335");
        assert_eq!(n("AS", "1.10"), "65546");
        assert!(normalise("AS", "ASX").is_err());
        assert_eq!(n("vulnerability", "cve–2021–44228"), "CVE-2021-44228");
        assert!(normalise("vulnerability", "CVE-21-1").is_err());
        assert_eq!(n("mac-address", "AA-BB-CC-DD-EE-FF"), "aa:bb:cc:dd:ee:ff");
        assert_eq!(n("port", "080"), "80");
    }

    #[test]
    fn composites_split_into_two_halves() {
        let v = normalise("filename|md5", "evil.exe|D41D8CD98F00B204E9800998ECF8427E").expect("ok");
        assert_eq!((v.value1.as_str(), v.value2.as_str()), ("evil.exe", "d41d8cd98f00b204e9800998ecf8427e"));
        assert!(normalise("filename|md5", "evil.exe").is_err());
        assert!(normalise("filename|md5", "a|b|c").is_err());
        assert_eq!(n("malware-sample", "x.bin|d41d8cd98f00b204e9800998ecf8427e"), "x.bin|d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(n("regkey|value", "HKLM\\Run|a|b"), "HKLM\\Run|a|b");
    }

    #[test]
    fn hostile_values_are_refused_clearly() {
        assert!(normalise("text", "a\0b").is_err());
        assert!(normalise("text", &"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(normalise("text", "   ").is_err());
        assert_eq!(n("text", "  keep  inner  "), "keep  inner");
        assert!(normalise("ssdeep", "3:abc:def").is_ok());
        assert!(normalise("ssdeep", "abc").is_err());
    }
}
