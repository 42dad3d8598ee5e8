//! One token → at most one typed value: MISP's `__resolveType`, step by step, with the default
//! mode's fixes marked `fix:` where they change an answer (each is listed in the module docs of
//! [`super`] and has its own test).

use std::borrow::Cow;

use super::{Mode, crypto, php, tld::TldSet};
use crate::value;

/// What a token resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) value: String,
    /// Ordered, the first is the preferred type (mostly one of the constant lists, so borrowed).
    pub(crate) types: Cow<'static, [&'static str]>,
    /// MISP's `default_type` (differs from `types[0]` only for e-mail addresses).
    pub(crate) default_type: &'static str,
    /// `On port N` when a trailing port was taken off.
    pub(crate) comment: Option<String>,
}

/// The settings one extraction runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) mode: Mode,
    pub(crate) tlds: &'a TldSet,
    pub(crate) vendors: &'a [&'a str],
}

impl Ctx<'_> {
    fn fix(&self) -> bool {
        self.mode == Mode::Default
    }
}

const IP: &[&str] = &["ip-dst", "ip-src", "ip-src/ip-dst"];
const IP_PORT: &[&str] = &["ip-dst|port", "ip-src|port", "ip-src|port/ip-dst|port"];
const HOSTNAME: &[&str] = &["hostname", "domain", "url", "filename"];
const DOMAIN: &[&str] = &["domain", "filename"];
const EMAIL: &[&str] = &["email", "email-src", "email-dst", "target-email", "whois-registrant-email"];
const PHONE: &[&str] = &["phone-number", "prtn", "whois-registrant-phone"];

/// MISP's hash types per hex length: single, then `filename|…` composites.
fn hex_hash_types(len: usize) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match len {
        32 => (&["md5", "imphash", "x509-fingerprint-md5", "ja3-fingerprint-md5"], &["filename|md5", "filename|imphash"]),
        40 => (&["sha1", "pehash", "x509-fingerprint-sha1", "cdhash"], &["filename|sha1", "filename|pehash"]),
        56 => (&["sha224", "sha512/224"], &["filename|sha224", "filename|sha512/224"]),
        64 => (
            &["sha256", "authentihash", "sha512/256", "x509-fingerprint-sha256"],
            &["filename|sha256", "filename|authentihash", "filename|sha512/256"],
        ),
        96 => (&["sha384"], &["filename|sha384"]),
        128 => (&["sha512"], &["filename|sha512"]),
        _ => return None,
    })
}

fn one(value: impl Into<String>, types: impl Into<Cow<'static, [&'static str]>>, comment: Option<String>) -> Resolved {
    let types = types.into();
    let default_type = if types[0] == "email" { "email-src" } else { types[0] };
    Resolved { value: value.into(), types, default_type, comment }
}

fn single(value: impl Into<String>, t: &'static str) -> Resolved {
    one(value, vec![t], None)
}

/// Whether no step can type `raw` because it is a short plain word, as most tokens of prose are:
/// the shortest typed values without punctuation are `AS…` numbers, Bitcoin addresses (14+) and
/// hashes (32+).
pub(crate) fn plain_word(raw: &str) -> bool {
    raw.len() < 14 && raw.bytes().all(|b| b.is_ascii_alphanumeric()) && !raw.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("as"))
}

/// What one pass over a token's bytes tells the steps below, so that each step that cannot apply
/// is skipped without searching the token again (most tokens could only ever match one or two).
#[derive(Debug, Clone, Copy)]
struct Shape {
    dot: bool,
    colons: usize,
    dash: bool,
    pipe: bool,
    backslash: bool,
    /// A `[`, `(` or `{`: the token may be defanged.
    bracket: bool,
    /// Non-empty and only hex digits: a hash candidate.
    all_hex: bool,
    /// Only characters an IP address step can accept (see [`byte::IP_CHAR`]).
    ip_chars: bool,
}

/// Bits of [`BYTE_BITS`].
mod byte {
    pub(super) const DOT: u16 = 1;
    pub(super) const COLON: u16 = 2;
    pub(super) const DASH: u16 = 4;
    pub(super) const PIPE: u16 = 8;
    pub(super) const BACKSLASH: u16 = 16;
    /// `[`, `(` or `{`.
    pub(super) const BRACKET: u16 = 32;
    pub(super) const HEX: u16 = 64;
    /// The bytes an IP step (0 and 7) can accept: hex digits, `.` and `:`, the brackets of
    /// `[v6]`, a `/prefix` (compat: any PHP number, so signs too) and the whitespace PHP's filters
    /// trim. A token with any other byte is no IP address, so the PHP filters need not run on it.
    pub(super) const IP_CHAR: u16 = 128;
}

/// What each byte value is, for [`Shape::of`]'s single table-driven pass.
static BYTE_BITS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut bits = match b {
            b'.' => byte::DOT,
            b':' => byte::COLON,
            b'-' => byte::DASH,
            b'|' => byte::PIPE,
            b'\\' => byte::BACKSLASH,
            b'[' | b'(' | b'{' => byte::BRACKET,
            _ => 0,
        };
        if b.is_ascii_hexdigit() {
            bits |= byte::HEX;
        }
        let ip_punctuation = matches!(b, b'.' | b':' | b'[' | b']' | b'/' | b'+' | b'-');
        let filter_space = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C);
        if b.is_ascii_hexdigit() || ip_punctuation || filter_space {
            bits |= byte::IP_CHAR;
        }
        t[i] = bits;
        i += 1;
    }
    t
};

impl Shape {
    fn of(s: &str) -> Self {
        let (mut any, mut all, mut colons) = (0u16, u16::MAX, 0usize);
        for b in s.bytes() {
            let bits = BYTE_BITS[usize::from(b)];
            any |= bits;
            all &= bits;
            colons += usize::from(b == b':');
        }
        Shape {
            dot: any & byte::DOT != 0,
            colons,
            dash: any & byte::DASH != 0,
            pipe: any & byte::PIPE != 0,
            backslash: any & byte::BACKSLASH != 0,
            bracket: any & byte::BRACKET != 0,
            all_hex: !s.is_empty() && all & byte::HEX != 0,
            ip_chars: all & byte::IP_CHAR != 0,
        }
    }
}

/// Whether every byte of `s` is one an IP step can accept ([`byte::IP_CHAR`]).
fn ip_chars(s: &str) -> bool {
    s.bytes().all(|b| BYTE_BITS[usize::from(b)] & byte::IP_CHAR != 0)
}

/// Whether `s` holds `://` (a byte scan: cheaper than a substring search on short tokens).
pub(crate) fn has_scheme_separator(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"://")
}

/// `__resolveType`: the first step that recognises the token wins.
pub(crate) fn resolve(raw: &str, cx: &Ctx<'_>) -> Option<Resolved> {
    let fix = cx.fix();
    if plain_word(raw) {
        return None;
    }
    let shape = Shape::of(raw);
    // 0. A clean IP address, before anything expensive.
    if (shape.dot || shape.colons > 0) && shape.ip_chars && php::validate_ip(raw) {
        return Some(one(raw, IP, None));
    }
    // 1–3. Hashes, on the token as written (before refanging can change it).
    if let Some(r) = check_hashes(raw, shape, cx) {
        return Some(r);
    }
    if fix {
        if let Some(r) = check_new_hash_like_types(raw) {
            return Some(r);
        }
    }
    // 4. Refang, then drop trailing dots and unwrap any single bracketed character.
    let refanged = refang(raw, cx.mode, shape.bracket);
    // 5. E-mail.
    if let Some(r) = check_email(&refanged, fix) {
        return Some(r);
    }
    // fix: a URL with a scheme is recognised before the port is taken off, so it keeps its port,
    // and whatever its host looks like ([IPv6], no dot).
    if fix && has_scheme_separator(&refanged) {
        if let Some(r) = check_scheme_url(&refanged, cx) {
            return Some(r);
        }
    }
    // 6. A trailing `:port` is noted and removed.
    let (no_port, port) = extract_port(&refanged, fix);
    let comment = port.as_ref().map(|p| format!("On port {p}"));
    // 7. IP addresses, with a port, IPv6, `[v6]:port`, CIDR. (Unrefanged, the token is the raw
    // one without trailing dots, whose characters were checked already.)
    let ip_chars = match &refanged {
        Cow::Borrowed(_) => shape.ip_chars,
        Cow::Owned(r) => ip_chars(r),
    };
    if ip_chars && refanged.contains(['.', ':']) {
        if let Some(r) = check_ip(&refanged, &no_port, port, comment.clone(), fix) {
            return Some(r);
        }
    }
    // 8–11. Domain or hostname, URL, file name, registry key.
    if let Some(r) = check_domain_or_filename(raw, shape.backslash, &no_port, comment, cx) {
        return Some(r);
    }
    // 12–13. CVE, phone number.
    if shape.dash || raw.starts_with('+') {
        if let Some(r) = check_simple_regex(raw, fix) {
            return Some(r);
        }
    }
    // 14. AS number.
    if let Some(r) = check_as(raw, fix) {
        return Some(r);
    }
    // 15. Bitcoin address.
    if is_btc(raw, fix) {
        return Some(single(raw, "btc"));
    }
    // fix: Monero addresses (MISP has the `xmr` type but never detects it).
    if fix && crypto::is_monero(raw) {
        return Some(single(raw, "xmr"));
    }
    None
}

/// A hex string of one of MISP's hash lengths.
fn hex_hash(s: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    if php::ctype_xdigit(s) { hex_hash_types(s.len()) } else { None }
}

/// Steps 1–3: `filename|hash`, a hex hash (with `btc` as an alternative when the Bitcoin check
/// also passes), an ssdeep hash.
fn check_hashes(raw: &str, shape: Shape, cx: &Ctx<'_>) -> Option<Resolved> {
    let fix = cx.fix();
    if shape.pipe {
        let mut parts = raw.split('|');
        if let (Some(name), Some(hash), None) = (parts.next(), parts.next(), parts.next()) {
            if resolve_filename(name) && (!fix || filename_hygiene(name)) {
                if let Some((_, composite)) = hex_hash(hash) {
                    // fix: the hash half lower-cased (MISP does so at save), so duplicates collapse.
                    let value = if fix { format!("{name}|{}", hash.to_ascii_lowercase()) } else { raw.to_string() };
                    return Some(one(value, composite, None));
                }
                if is_ssdeep(hash, fix) {
                    return Some(single(raw, "filename|ssdeep"));
                }
            }
        }
    }
    if let Some((types, _)) = hex_hash_types(raw.len()).filter(|_| shape.all_hex) {
        let types: Cow<'static, [&'static str]> = if is_btc(raw, fix) { [types, &["btc"]].concat().into() } else { types.into() };
        let value = if fix { raw.to_ascii_lowercase() } else { raw.to_string() };
        return Some(one(value, types, None));
    }
    if shape.colons == 2 && is_ssdeep(raw, fix) {
        return Some(single(raw, "ssdeep"));
    }
    None
}

/// fix: types MISP has but never proposes: TLSH (`T1` + 70 hex digits) and Chrome extension IDs
/// (32 letters `a`–`p`, at least one beyond `f` so an all-`a`–`f` MD5 stays an MD5).
fn check_new_hash_like_types(raw: &str) -> Option<Resolved> {
    if raw.len() == 72 && raw.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("t1")) && php::ctype_xdigit(&raw[2..]) {
        return Some(single(raw.to_ascii_lowercase(), "tlsh"));
    }
    if raw.len() == 32 && raw.bytes().all(|b| (b'a'..=b'p').contains(&b)) && raw.bytes().any(|b| b > b'f') {
        return Some(single(raw, "chrome-extension-id"));
    }
    None
}

/// `blocksize:hash:hash` in the base64 alphabet, not a time of day. fix: the block size must be
/// one ssdeep can produce (3·2ⁿ), so `1:a:b` is not a hash.
fn is_ssdeep(s: &str, fix: bool) -> bool {
    let b64 = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+');
    let mut parts = s.split(':');
    let (Some(size), Some(a), Some(h), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if !(php::ctype_digit(size) && b64(a) && b64(h)) {
        return false;
    }
    let time = |p: &str| php::ctype_digit(p) && p.len() <= 2;
    if time(size) && time(a) && time(h) {
        return false;
    }
    if fix {
        let Ok(n) = size.parse::<u64>() else { return false };
        return n >= 3 && n % 3 == 0 && (n / 3).is_power_of_two();
    }
    true
}

/// MISP's Bitcoin check. Compat: its regex `^[13][…]{25,34}|(bc|tb)1[…]{11,71}$` (case-insensitive),
/// whose missing group anchors only the start of the first branch and the end of the second.
/// fix: the whole token must be an address whose checksum holds.
fn is_btc(s: &str, fix: bool) -> bool {
    if fix {
        return crypto::is_base58_btc(s) || crypto::is_bech32_btc(s);
    }
    let b = s.as_bytes();
    // Branch 1: starts with 1 or 3 and 25 more base58 characters (with /i every letter counts).
    if b.len() >= 26 && matches!(b[0], b'1' | b'3') && b[1..26].iter().all(|&c| c.is_ascii_alphabetic() || (b'1'..=b'9').contains(&c)) {
        return true;
    }
    // Branch 2: ends with (bc|tb)1 + 11–71 bech32 characters; '1' is not one, so it is the last '1'.
    let Some(one_at) = s.rfind('1') else { return false };
    let tail = &b[one_at + 1..];
    let bech = |c: &u8| {
        let c = c.to_ascii_lowercase();
        c.is_ascii_digit() && c != b'1' || (c.is_ascii_lowercase() && !matches!(c, b'b' | b'i' | b'o'))
    };
    let hrp = one_at.checked_sub(2).and_then(|start| s.get(start..one_at));
    (11..=71).contains(&tail.len())
        && tail.iter().all(bech)
        && hrp.is_some_and(|h| h.eq_ignore_ascii_case("bc") || h.eq_ignore_ascii_case("tb"))
}

/// MISP's refang: its table, `rtrim('.')`, then `[x]` → `x` for any single byte `x`.
/// fix: more defanging styles are undone first ([`refang_more`]). `brackets`: whether `raw` holds
/// a `[`, `(` or `{` (the caller has looked already).
fn refang(raw: &str, mode: Mode, brackets: bool) -> Cow<'_, str> {
    // Every refanging pattern holds a bracket or starts the token (`hxxp`, `meow`, `fxp`).
    let head = |p: &str| raw.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let scheme_initial = matches!(raw.as_bytes().first(), Some(b'h' | b'H' | b'm' | b'M' | b'f' | b'F'));
    let may_be_defanged = brackets || (scheme_initial && ["hxxp", "hxtp", "htxp", "meow", "fxp"].into_iter().any(head));
    if !may_be_defanged {
        return Cow::Borrowed(raw.trim_end_matches('.'));
    }
    let more = if mode == Mode::Default { refang_more(raw) } else { raw.to_string() };
    let table = if table_may_apply(&more) { value::refang(&more) } else { more };
    let trimmed = table.trim_end_matches('.');
    let b = trimmed.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' && i + 2 < b.len() && b[i + 2] == b']' && b[i + 1] != b'\n' {
            if !matches!(b[i + 1], b'[' | b']') {
                out.push(b[i + 1]);
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were removed or unwrapped, so the bytes are still UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Whether MISP's refang table ([`value::refang`]) can change `s` at all: each of its patterns
/// holds a `[` or is `(dot)`, except the scheme prefixes (`hxxp`, `hxtp`, `htxp`, `meow`, any case).
/// (The table copies the value once per rule; most bracketed tokens need none of it.)
fn table_may_apply(s: &str) -> bool {
    let head = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    s.contains('[') || s.contains("(dot)") || ["hxxp", "hxtp", "htxp", "meow"].into_iter().any(head)
}

/// fix: defanging styles beyond MISP's table, case-insensitively: `(.)`, `{.}`, `[dot]`, `(dot)`,
/// `{dot}`, `[at]`, `(at)`, `{at}`, `(@)`, `{@}`, `[://]`, `[/]`, `[:]`, and the `fxp://` scheme.
fn refang_more(s: &str) -> String {
    const MAP: &[(&str, &str)] = &[
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("{dot}", "."),
        ("[at]", "@"),
        ("(at)", "@"),
        ("{at}", "@"),
        ("[@]", "@"),
        ("(@)", "@"),
        ("{@}", "@"),
        ("[://]", "://"),
        ("[:]", ":"),
        ("[/]", "/"),
    ];
    if !s.contains(['[', '(', '{']) && !s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("fxp")) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    if rest.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("fxp://")) {
        out.push_str("ftp://");
        rest = &rest[6..];
    }
    while let Some(c) = rest.chars().next() {
        let hit = if matches!(c, '[' | '(' | '{') {
            MAP.iter().find(|(from, _)| rest.get(..from.len()).is_some_and(|head| head.eq_ignore_ascii_case(from)))
        } else {
            None
        };
        match hit {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Step 5: an `@` and PHP's e-mail check. fix: a `mailto:` prefix is dropped and the address
/// lower-cased (as MISP stores it).
fn check_email(refanged: &str, fix: bool) -> Option<Resolved> {
    if !refanged.contains('@') {
        return None;
    }
    let candidate = if fix {
        match refanged.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("mailto:") => &refanged[7..],
            _ => refanged,
        }
    } else {
        refanged
    };
    if !php::validate_email(candidate) {
        return None;
    }
    let value = if fix { candidate.to_ascii_lowercase() } else { candidate.to_string() };
    Some(one(value, EMAIL, None))
}

/// Step 6: `(:[0-9]{2,5})$` → the port. Compat: the port text is then removed *everywhere* in
/// the value (PHP `str_replace`), as MISP does. fix: only the trailing one, and only 1–65535.
fn extract_port(refanged: &str, fix: bool) -> (Cow<'_, str>, Option<&str>) {
    // The trailing digits, read from the end: a port only when 2–5 of them follow the last `:`.
    let b = refanged.as_bytes();
    let n = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if !(2..=5).contains(&n) || b.len() <= n || b[b.len() - n - 1] != b':' {
        return (Cow::Borrowed(refanged), None);
    }
    let colon = b.len() - n - 1;
    let digits = &refanged[colon + 1..];
    if fix {
        if digits.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535) {
            return (Cow::Borrowed(refanged), None);
        }
        return (Cow::Borrowed(&refanged[..colon]), Some(digits));
    }
    let needle = &refanged[colon..];
    (Cow::Owned(refanged.replace(needle, "")), Some(digits))
}

/// Step 7: an IP (with its port as `ip|port`), an IPv6 address that merely looks like it has a
/// port, `[v6]:port`, or `ip/prefix`. Compat: any numeric prefix (`/33`, `/8.5`). fix: the prefix
/// must fit the address family; `[v6]` alone is an address.
fn check_ip(refanged: &str, no_port: &str, port: Option<&str>, comment: Option<String>, fix: bool) -> Option<Resolved> {
    if php::validate_ip(no_port) {
        return Some(match port {
            Some(p) => one(format!("{no_port}|{p}"), IP_PORT, comment),
            None => one(no_port, IP, comment),
        });
    }
    if php::validate_ip_v6_only(refanged) {
        return Some(one(refanged, IP, None));
    }
    let bracketed = no_port.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    if let Some(v6) = bracketed.filter(|v6| php::validate_ip_v6_only(v6)) {
        return Some(match port {
            Some(p) => one(format!("{v6}|{p}"), IP_PORT, comment),
            None if fix => one(v6, IP, None),
            None => return None,
        });
    }
    if no_port.contains('/') {
        let mut parts = no_port.split('/');
        if let (Some(ip), Some(bits), None) = (parts.next(), parts.next(), parts.next()) {
            let prefix_ok = if fix {
                let max = if php::validate_ip_v4_only(ip) { 32 } else { 128 };
                php::ctype_digit(bits) && bits.parse::<u32>().is_ok_and(|n| n <= max)
            } else {
                php::is_numeric(bits)
            };
            if php::validate_ip(ip) && prefix_ok {
                return Some(one(no_port, IP, comment));
            }
        }
    }
    None
}

/// MISP's domain pattern `^([-\pL\pN]+\.)+[a-z0-9-]+$` (case-insensitive): the label count and
/// the last label, or `None`. fix: the last label may be Unicode too (an IDN TLD).
fn domain_shape(s: &str, fix: bool) -> Option<(usize, &str)> {
    if s.is_ascii() {
        return ascii_domain_shape(s);
    }
    let (head, last) = s.rsplit_once('.')?;
    let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c == '-' || c.is_alphabetic() || c.is_numeric());
    if !head.split('.').all(label_ok) {
        return None;
    }
    let last_ok = if fix { label_ok(last) } else { !last.is_empty() && last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') };
    last_ok.then(|| (head.split('.').count() + 1, last))
}

/// [`domain_shape`] of ASCII text (both modes agree there), in one pass: non-empty labels of
/// letters, digits and `-`, at least two.
fn ascii_domain_shape(s: &str) -> Option<(usize, &str)> {
    let mut labels = 1;
    let mut label_start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'.' {
            if i == label_start {
                return None;
            }
            labels += 1;
            label_start = i + 1;
        } else if !(b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
    }
    (labels >= 2 && label_start < s.len()).then(|| (labels, &s[label_start..]))
}

/// Whether `label` is a known TLD. fix: a Unicode TLD is looked up by its punycode (`рф` → `xn--p1ai`).
fn is_tld(label: &str, cx: &Ctx<'_>) -> bool {
    if label.is_ascii() {
        return cx.tlds.contains(label);
    }
    cx.fix() && value::domain_to_ascii(label).is_some_and(|a| cx.tlds.contains(&a))
}

/// fix: TLDs that are also everyday file extensions; `README.md` or `setup.py` is proposed as a
/// file name first (the domain types stay in the list).
const EXTENSION_TLDS: &[&str] = &["md", "py", "sh", "pl", "ps", "rs", "zip", "mov"];

/// Steps 8–11: a domain or hostname (known TLD), a URL or link, a file name, a registry key.
fn check_domain_or_filename(raw: &str, backslash: bool, no_port: &str, comment: Option<String>, cx: &Ctx<'_>) -> Option<Resolved> {
    let fix = cx.fix();
    if no_port.contains('.') {
        if let Some((labels, last)) = domain_shape(no_port, fix).filter(|(_, last)| is_tld(last, cx)) {
            let value = if fix { no_port.to_lowercase() } else { no_port.to_string() };
            if fix && labels == 2 && EXTENSION_TLDS.iter().any(|e| e.eq_ignore_ascii_case(last)) && resolve_filename(raw) {
                return Some(one(raw, &["filename", "domain"], None));
            }
            return Some(one(value, if labels > 2 { HOSTNAME } else { DOMAIN }, comment));
        }
        let url = if fix {
            schemeless_url(no_port, cx)
        } else {
            php::validate_url(no_port) || php::validate_url(&format!("http://{no_port}"))
        };
        if url {
            if is_link(no_port, cx) {
                return Some(one(no_port, &["link"], comment));
            }
            if no_port.contains('/') {
                return Some(one(no_port, &["url"], comment));
            }
        }
        if resolve_filename(raw) && (!fix || filename_hygiene(raw)) {
            return Some(single(raw, "filename"));
        }
    }
    if backslash {
        let segments: Vec<&str> = raw.split('\\').collect();
        let last = segments.last().copied().unwrap_or("");
        let first = segments[0];
        let drive = first.len() >= 2 && first.as_bytes()[0] != b'\n' && first.as_bytes()[1] == b':';
        if last.find('.').is_some_and(|i| i > 0) || drive {
            if resolve_filename(last) && (!fix || filename_hygiene(raw)) {
                return Some(single(raw, "filename"));
            }
        } else if !first.is_empty() && (!fix || is_registry_hive(first)) {
            // fix: only a registry hive starts a registry key (`CORP\jdoe` is not one).
            return Some(single(raw, "regkey"));
        }
    }
    None
}

/// fix: registry hive names that start a `regkey` (`HKLM`, `HKEY_LOCAL_MACHINE`, …, `HKLM:`).
fn is_registry_hive(first: &str) -> bool {
    const HIVES: &[&str] = &[
        "HKLM", "HKCU", "HKCR", "HKU", "HKCC", "HKEY_LOCAL_MACHINE", "HKEY_CURRENT_USER", "HKEY_CLASSES_ROOT", "HKEY_USERS",
        "HKEY_CURRENT_CONFIG", "HKEY_PERFORMANCE_DATA",
    ];
    let first = first.strip_suffix(':').unwrap_or(first);
    HIVES.iter().any(|h| h.eq_ignore_ascii_case(first))
}

/// MISP's `isLink`: an `https://` URL whose host ends with a security vendor's domain.
/// fix: `http://` too, and the match must end at a label boundary (`notvirustotal.com` is not
/// VirusTotal).
fn is_link(v: &str, cx: &Ctx<'_>) -> bool {
    let fix = cx.fix();
    let starts = |p: &str| v.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p));
    let scheme_ok = if fix { starts("https://") || starts("http://") } else { v.starts_with("https://") };
    if !scheme_ok {
        return false;
    }
    let Some(host) = php::parse_url(v).and_then(|u| u.host) else { return false };
    let host = if fix { host.to_ascii_lowercase() } else { host.to_string() };
    cx.vendors.iter().any(|d| {
        if fix {
            host == *d || host.strip_suffix(d).is_some_and(|h| h.ends_with('.'))
        } else {
            host.ends_with(d)
        }
    })
}

/// fix: a URL with an explicit scheme (`x://…`), recognised whatever its host and keeping its
/// port: PHP's URL check, and a host with a dot, a bracketed IPv6 address or an IP.
fn check_scheme_url(v: &str, cx: &Ctx<'_>) -> Option<Resolved> {
    let (scheme, _) = v.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || !php::validate_url(v) {
        return None;
    }
    let host = php::parse_url(v)?.host?;
    let v6 = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(php::validate_ip_v6_only);
    if !(v6 || host.contains('.')) {
        return None;
    }
    if is_link(v, cx) {
        return Some(single(v, "link"));
    }
    Some(single(v, "url"))
}

/// fix: a URL without a scheme (`evil.com/x`, `1.2.3.4:8080/x`) needs a path and a host that is
/// a domain with a known TLD or an IP address, so `Win32/Agent.ABQB` is not a URL.
fn schemeless_url(v: &str, cx: &Ctx<'_>) -> bool {
    let Some(slash) = v.find('/') else { return false };
    if has_scheme_separator(v) {
        return false;
    }
    let authority = &v[..slash];
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if php::ctype_digit(p) => h,
        _ => authority,
    };
    let host_ok = if php::validate_ip_v4_only(host) {
        // `10.0.0.0/33` is a broken network, not a URL.
        !php::is_numeric(&v[slash + 1..])
    } else {
        domain_shape(host, true).is_some_and(|(_, last)| is_tld(last, cx))
    };
    host_ok && php::validate_url(&format!("http://{v}"))
}

/// MISP's `__resolveFilename`: `X:…` or a `.` after the first character, and an extension that
/// is alphanumeric and not a number.
pub(crate) fn resolve_filename(s: &str) -> bool {
    let b = s.as_bytes();
    let drive = b.len() >= 2 && b[0] != b'\n' && b[1] == b':';
    if !(drive || s.find('.').is_some_and(|i| i > 0)) {
        return false;
    }
    let ext = s.rsplit('.').next().unwrap_or(s);
    php::ctype_alnum(ext) && !php::is_numeric(ext)
}

/// fix: what is not a file name even though it has an extension: an antivirus detection name
/// (`Win32/Agent.ABQB`, `MSIL/Injector.UNL`), markup or table leftovers, unbalanced brackets, a
/// broken URL.
pub(crate) fn filename_hygiene(s: &str) -> bool {
    // One pass: no markup character, no `://`, and each bracket kind balanced (never closed
    // before it opens).
    let b = s.as_bytes();
    let mut depth = [0i32; 3];
    for (i, &c) in b.iter().enumerate() {
        let kind = match c {
            b'|' | b'`' | b'*' | b'<' | b'>' | b'"' => return false,
            b':' if b[i + 1..].starts_with(b"//") => return false,
            b'[' | b']' => 0,
            b'(' | b')' => 1,
            b'{' | b'}' => 2,
            _ => continue,
        };
        depth[kind] += if matches!(c, b'[' | b'(' | b'{') { 1 } else { -1 };
        if depth[kind] < 0 {
            return false;
        }
    }
    depth == [0; 3] && !is_detection_name(s)
}

/// fix: `Platform/Family.Variant` antivirus detection names, by their platform prefix.
pub(crate) fn is_detection_name(s: &str) -> bool {
    const PLATFORMS: &[&str] = &[
        "win32", "win64", "w32", "w64", "msil", "js", "vbs", "vba", "lnk", "doc", "docx", "xls", "xlsx", "ppt", "pdf", "rtf",
        "asp", "aspx", "php", "html", "linux", "android", "osx", "macos", "java", "python", "perl", "bat", "ps", "powershell",
        "multi", "generic", "w97m", "x97m", "o97m", "swf", "elf", "unix", "ios", "symbos", "j2me", "msoffice", "nsis", "autoit",
        "irc", "sh", "shell", "hta", "wsf", "jar", "dos", "boot", "macro", "script", "trojan", "exploit", "backdoor", "hacktool",
        "riskware", "adware", "application", "virtool", "worm", "ransom", "pua",
    ];
    let Some((platform, rest)) = s.split_once('/') else { return false };
    !rest.contains(['/', '\\']) && rest.contains('.') && PLATFORMS.iter().any(|p| p.eq_ignore_ascii_case(platform))
}

/// Steps 12–13: a CVE id (upper-cased); a phone number (a leading `+` or a `-` after the first
/// character, not `YYYY-MM-DD`, MISP's digit pattern). fix: dates in other orders are not phone
/// numbers, and a number needs a `+` and 8–15 digits, or the North American `NNN-NNN-NNNN` shape.
fn check_simple_regex(raw: &str, fix: bool) -> Option<Resolved> {
    if is_cve(raw) {
        return Some(single(raw.to_ascii_uppercase(), "vulnerability"));
    }
    let b = raw.as_bytes();
    if (b.first() == Some(&b'+') || raw.find('-').is_some_and(|i| i > 0)) && !is_iso_date(raw) && misp_phone(raw) {
        if fix && (is_date_like(raw) || !unambiguous_phone(raw)) {
            return None;
        }
        return Some(one(raw, PHONE, None));
    }
    None
}

/// `^cve-[0-9]{4}-[0-9]{4,9}$`, case-insensitive.
fn is_cve(s: &str) -> bool {
    let Some(prefix) = s.get(..4) else { return false };
    if !prefix.eq_ignore_ascii_case("cve-") {
        return false;
    }
    let mut parts = s[4..].split('-');
    matches!((parts.next(), parts.next(), parts.next()),
        (Some(y), Some(n), None) if y.len() == 4 && php::ctype_digit(y) && (4..=9).contains(&n.len()) && php::ctype_digit(n))
}

/// `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// `^(\+)?([0-9]{1,3}(\(0\))?)?[0-9\/\-]{5,}[0-9]$`: an optional `+`, optionally 1–3 digits and
/// `(0)`, then at least five digits, `/` or `-`, ending in a digit. (Without `(0)` the optional
/// group is absorbed by the run, so two shapes cover the pattern.)
fn misp_phone(s: &str) -> bool {
    let rest = s.strip_prefix('+').unwrap_or(s);
    let run = |t: &str| t.len() >= 6 && t.bytes().all(|c| c.is_ascii_digit() || c == b'/' || c == b'-') && t.ends_with(|c: char| c.is_ascii_digit());
    if run(rest) {
        return true;
    }
    match rest.find("(0)") {
        Some(i) if (1..=3).contains(&i) && php::ctype_digit(&rest[..i]) => run(&rest[i + 3..]),
        _ => false,
    }
}

/// fix: `dd-mm-yyyy`, `mm/dd/yyyy`, `yyyy/mm/dd` and the like.
fn is_date_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    if parts.len() != 3 || !parts.iter().all(|p| php::ctype_digit(p)) {
        return false;
    }
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    matches!(lens.as_slice(), [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2])
}

/// fix: `+` and 8–15 digits (E.164), or `[1-]NNN-NNN-NNNN`.
fn unambiguous_phone(s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if s.starts_with('+') {
        return (8..=15).contains(&digits);
    }
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    s.bytes().all(|c| c.is_ascii_digit() || c == b'-') && matches!(groups.as_slice(), [3, 3, 4] | [1, 3, 3, 4])
}

/// Step 14: `^as[0-9]+$` (case-insensitive), upper-cased. fix: `ASN…` too, the number at most
/// 4294967295, written `AS<number>`.
fn check_as(raw: &str, fix: bool) -> Option<Resolved> {
    let prefix = raw.get(..2)?;
    if !prefix.eq_ignore_ascii_case("as") {
        return None;
    }
    let rest = &raw[2..];
    if php::ctype_digit(rest) {
        if fix && rest.parse::<u32>().is_err() {
            return None;
        }
        return Some(single(raw.to_ascii_uppercase(), "AS"));
    }
    if fix {
        let n = rest.strip_prefix(['n', 'N'])?;
        if php::ctype_digit(n) && n.parse::<u32>().is_ok() {
            return Some(single(format!("AS{n}"), "AS"));
        }
    }
    None
}
