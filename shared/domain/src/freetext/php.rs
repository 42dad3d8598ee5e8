//! The few PHP built-ins MISP's freetext import leans on, re-implemented from their documented and
//! observed behaviour so that compat mode gives MISP's answers: `FILTER_VALIDATE_IP`,
//! `FILTER_VALIDATE_EMAIL`, `FILTER_VALIDATE_URL` (with `parse_url`), `is_numeric`, `ctype_*`.
//!
//! Every function reads its input a bounded number of times: nothing here backtracks, so a
//! megabyte-long token costs a few linear passes.

/// `s` without the characters MISP trims from each token (PHP's whitespace set plus `'".,()`).
/// Every one is ASCII, so the ends are read byte by byte without decoding characters (this runs
/// on every token).
pub(crate) fn trim_token(s: &str) -> &str {
    let is_trim = |b: &u8| matches!(b, b'\'' | b'"' | b'.' | b',' | b'(' | b')' | b' ' | b'\t' | b'\n' | b'\r' | b'\0' | 0x0B);
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_trim(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_trim(c)).map_or(start, |i| i + 1);
    // Both ends fall next to ASCII bytes or the ends of `s`, so they are character boundaries.
    &s[start..end]
}

/// PHP's `empty()` on a string: `""` and `"0"`.
pub(crate) fn is_empty(s: &str) -> bool {
    s.is_empty() || s == "0"
}

/// PHP's `ctype_xdigit`: non-empty, ASCII hex digits only.
pub(crate) fn ctype_xdigit(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// PHP's `ctype_alnum`: non-empty, ASCII letters and digits only.
pub(crate) fn ctype_alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// PHP's `ctype_digit`: non-empty, ASCII digits only.
pub(crate) fn ctype_digit(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// PHP 8's `is_numeric` on a string: optional surrounding whitespace, a sign, digits with an
/// optional fraction (or `.digits`), an optional exponent. No hex, no `inf`/`nan`.
pub(crate) fn is_numeric(v: &str) -> bool {
    let v = v.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}'));
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (ctype_digit(int) && (frac.is_empty() || ctype_digit(frac))) || (int.is_empty() && ctype_digit(frac))
        }
        None => ctype_digit(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| ctype_digit(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// The whitespace PHP's validating filters trim first (`PHP_FILTER_TRIM_DEFAULT`).
fn filter_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\u{0B}', '\n'])
}

/// `filter_var($v, FILTER_VALIDATE_IP)`: an IPv6 address when the value holds a `:`, otherwise an
/// IPv4 address when it holds a `.`.
pub(crate) fn validate_ip(v: &str) -> bool {
    let v = filter_trim(v);
    if v.contains(':') {
        validate_ipv6(v)
    } else if v.contains('.') {
        validate_ipv4(v)
    } else {
        false
    }
}

/// `filter_var($v, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4)`.
pub(crate) fn validate_ip_v4_only(v: &str) -> bool {
    let v = filter_trim(v);
    !v.contains(':') && v.contains('.') && validate_ipv4(v)
}

/// `filter_var($v, FILTER_VALIDATE_IP, FILTER_FLAG_IPV6)`.
pub(crate) fn validate_ip_v6_only(v: &str) -> bool {
    let v = filter_trim(v);
    v.contains(':') && validate_ipv6(v)
}

/// PHP's dotted-quad rule: four decimal parts of one to three digits, at most 255, and no leading
/// zero (`01` would be octal to some parsers, so PHP refuses it).
pub(crate) fn validate_ipv4(v: &str) -> bool {
    let mut parts = 0;
    for part in v.split('.') {
        parts += 1;
        if parts > 4 || part.is_empty() || part.len() > 3 || !ctype_digit(part) {
            return false;
        }
        if part.len() > 1 && part.starts_with('0') {
            return false;
        }
        if part.parse::<u16>().map_or(true, |n| n > 255) {
            return false;
        }
    }
    parts == 4
}

/// PHP's IPv6 rule (`_php_filter_validate_ipv6`): groups of one to four hex digits, at most one
/// `::`, eight groups without it (fewer with it), an optional dotted-quad tail counting as two.
pub(crate) fn validate_ipv6(v: &str) -> bool {
    if !v.contains(':') {
        return false;
    }
    let b = v.as_bytes();
    let mut end = b.len();
    let mut blocks = 0usize;
    if let Some(dot) = v.find('.') {
        // The IPv4 tail starts right after the last ':' before the first '.'.
        let start = b[..dot].iter().rposition(|&c| c == b':').map_or(0, |i| i + 1);
        if !validate_ipv4(&v[start..]) {
            return false;
        }
        end = start;
        if end < 2 {
            return false;
        }
        if b[end - 2] != b':' {
            // Drop the single ':' before the IPv4 part unless it is half of a '::'.
            end -= 1;
        }
        blocks = 2;
    }
    let mut i = 0;
    let mut compressed = false;
    while i < end {
        if b[i] == b':' {
            i += 1;
            if i >= end {
                return false;
            }
            if b[i] == b':' {
                if compressed {
                    return false;
                }
                compressed = true;
                blocks += 1;
                i += 1;
                if i == end {
                    return blocks <= 8;
                }
            } else if i - 1 == 0 {
                return false;
            }
        }
        let start = i;
        while i < end && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let n = i - start;
        if !(1..=4).contains(&n) {
            return false;
        }
        blocks += 1;
        if blocks > 8 {
            return false;
        }
    }
    (compressed && blocks <= 8) || blocks == 8
}

/// `filter_var($v, FILTER_VALIDATE_EMAIL)` without `FILTER_FLAG_EMAIL_UNICODE`: PHP's RFC 5321
/// pattern read as a grammar. Local part: dot-separated atoms of `atext` or quoted strings, at
/// most 64 characters. Domain: at least two labels of letters, digits and inner hyphens, the last
/// starting with a letter, no label run of 64 or more; or a bracketed IPv4/IPv6 literal. At most
/// 320 characters in all (and under 255 outside quotes).
pub(crate) fn validate_email(v: &str) -> bool {
    if v.len() > 320 || !v.is_ascii() {
        return false;
    }
    let b = v.as_bytes();
    // Local part: atoms separated by single dots.
    let mut i = 0;
    let mut units = 0usize;
    loop {
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if b.get(i + 1).is_some_and(|&c| c <= 0x7f) => {
                        i += 2;
                        units += 1;
                    }
                    Some(&c) if is_qtext(c) => {
                        i += 1;
                        units += 1;
                    }
                    _ => return false,
                }
            }
        } else {
            let start = i;
            while i < b.len() && is_atext(b[i]) {
                i += 1;
            }
            if i == start {
                return false;
            }
            units += i - start;
        }
        match b.get(i) {
            Some(b'.') => {
                i += 1;
                units += 1;
            }
            Some(b'@') => break,
            _ => return false,
        }
    }
    // PHP's look-aheads: fewer than 65 characters before the '@', fewer than 255 in all.
    if units >= 65 || v.len() - count_quotes(v) >= 255 {
        return false;
    }
    let domain = &v[i + 1..];
    if let Some(literal) = domain.strip_prefix('[') {
        return literal.strip_suffix(']').is_some_and(email_address_literal);
    }
    email_hostname(domain)
}

fn count_quotes(v: &str) -> usize {
    v.bytes().filter(|&b| b == b'"').count()
}

/// RFC 5322 `atext` as PHP's pattern spells it (`[\x21\x23-\x27\x2A\x2B\x2D\x2F-\x39\x3D\x3F\x5E-\x7E]`,
/// case-insensitive, so upper-case letters too).
fn is_atext(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x27 | 0x2A | 0x2B | 0x2D | 0x2F..=0x39 | 0x3D | 0x3F | 0x5E..=0x7E) || c.is_ascii_uppercase()
}

/// Characters allowed unescaped inside a quoted local part.
fn is_qtext(c: u8) -> bool {
    matches!(c, 0x01..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x21 | 0x23..=0x5B | 0x5D..=0x7F)
}

/// `(label.)+tld`: labels of ASCII letters/digits with inner hyphen runs; the last label starts
/// with a letter; no run of 64 non-dot characters.
fn email_hostname(d: &str) -> bool {
    if d.split('.').any(|label| label.len() >= 64) {
        return false;
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    labels.iter().all(|l| label_ok(l)) && labels.last().is_some_and(|l| l.as_bytes()[0].is_ascii_alphabetic())
}

/// `[1.2.3.4]` (no leading zeros) or `[IPv6:…]` (full, compressed, or with an IPv4 tail).
fn email_address_literal(lit: &str) -> bool {
    let Some(v6) = lit.get(..5).filter(|p| p.eq_ignore_ascii_case("IPv6:")).map(|_| &lit[5..]) else {
        return validate_ipv4(lit);
    };
    // PHP's pattern caps the explicit groups: 8 without '::', at most 6 with it (IPv4 tail: 6 and 4).
    let (groups_part, v4) = match v6.rfind(':') {
        Some(i) if v6[i + 1..].contains('.') => (&v6[..=i], Some(&v6[i + 1..])),
        _ => (v6, None),
    };
    if let Some(v4) = v4 {
        if !validate_ipv4(v4) {
            return false;
        }
    }
    let groups = groups_part.split(':').filter(|g| !g.is_empty()).count();
    let compressed = groups_part.contains("::");
    let max = if v4.is_some() { if compressed { 4 } else { 6 } } else if compressed { 6 } else { 8 };
    let all_hex = groups_part.split(':').all(|g| g.len() <= 4 && g.bytes().all(|c| c.is_ascii_hexdigit()));
    all_hex && (if compressed { groups <= max } else { groups == max }) && validate_ipv6(v6)
}

/// What `parse_url` found, as far as `FILTER_VALIDATE_URL` looks at it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    pub(crate) scheme: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) pass: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) port: Option<u16>,
}

/// PHP's `parse_url` (`php_url_parse_ex2`), reduced to the parts `FILTER_VALIDATE_URL` reads;
/// `None` where PHP returns `false` (a bad port, an empty host).
pub(crate) fn parse_url(v: &str) -> Option<Url<'_>> {
    let b = v.as_bytes();
    let len = b.len();
    let mut url = Url::default();
    let is_scheme_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-');
    let double_slash = |s: usize| s + 1 < len && b[s] == b'/' && b[s + 1] == b'/';
    let mut s = 0usize;
    let colon = b.iter().position(|&c| c == b':');
    let next = match colon {
        Some(e) if e != 0 => {
            if !b[..e].iter().all(|&c| is_scheme_char(c)) {
                let question = b.iter().position(|&c| c == b'?');
                if e + 1 < len && question.is_some_and(|q| e < q) {
                    parse_port(b, e, &mut s, &mut url)?
                } else if double_slash(0) {
                    s = 2;
                    Next::Host
                } else {
                    Next::Path
                }
            } else if e + 1 == len {
                url.scheme = Some(&v[..e]);
                return Some(url);
            } else if b[e + 1] != b'/' {
                let digits = b[e + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let p = e + 1 + digits;
                if (p == len || b[p] == b'/') && p - e < 7 {
                    parse_port(b, e, &mut s, &mut url)?
                } else {
                    url.scheme = Some(&v[..e]);
                    Next::Path
                }
            } else {
                url.scheme = Some(&v[..e]);
                if e + 2 < len && b[e + 2] == b'/' {
                    s = e + 3;
                    if v[..e].eq_ignore_ascii_case("file") && e + 3 < len && b[e + 3] == b'/' {
                        Next::Path
                    } else {
                        Next::Host
                    }
                } else {
                    Next::Path
                }
            }
        }
        Some(e) => parse_port(b, e, &mut s, &mut url)?,
        None if double_slash(0) => {
            s = 2;
            Next::Host
        }
        None => Next::Path,
    };
    if let Next::Host = next {
        let e = s + b[s..].iter().position(|c| matches!(c, b'/' | b'?' | b'#')).unwrap_or(len - s);
        if let Some(at) = b[s..e].iter().rposition(|&c| c == b'@').map(|i| s + i) {
            match b[s..at].iter().position(|&c| c == b':').map(|i| s + i) {
                Some(c) => {
                    url.user = Some(&v[s..c]);
                    url.pass = Some(&v[c + 1..at]);
                }
                None => url.user = Some(&v[s..at]),
            }
            s = at + 1;
        }
        let bracketed = s < len && b[s] == b'[' && e > 0 && b[e - 1] == b']';
        let port_colon = if bracketed { None } else { b[s..e].iter().rposition(|&c| c == b':').map(|i| s + i) };
        let host_end = match port_colon {
            Some(p) => {
                if url.port.is_none() {
                    let digits = &v[p + 1..e];
                    if digits.len() > 5 {
                        return None;
                    }
                    if !digits.is_empty() {
                        url.port = Some(php_strtol_port(digits)?);
                    }
                }
                p
            }
            None => e,
        };
        if host_end <= s {
            return None;
        }
        url.host = Some(&v[s..host_end]);
    }
    Some(url)
}

/// Where `parse_url` goes next: the authority (host and port) or straight to the path.
enum Next {
    Host,
    Path,
}

/// The scheme-less `host:port` branch of `parse_url`; `None` for a port PHP refuses.
fn parse_port(b: &[u8], e: usize, s: &mut usize, url: &mut Url<'_>) -> Option<Next> {
    let len = b.len();
    let p = e + 1;
    let digits = b[p..].iter().take(6).take_while(|c| c.is_ascii_digit()).count();
    let pp = p + digits;
    let double_slash = |s: usize| s + 1 < len && b[s] == b'/' && b[s + 1] == b'/';
    if digits > 0 && digits < 6 && (pp == len || b[pp] == b'/') {
        let port: u32 = std::str::from_utf8(&b[p..pp]).ok()?.parse().ok()?;
        url.port = Some(u16::try_from(port).ok()?);
        if double_slash(*s) {
            *s += 2;
        }
        Some(Next::Host)
    } else if digits == 0 && p == len {
        None
    } else if double_slash(*s) {
        *s += 2;
        Some(Next::Host)
    } else {
        Some(Next::Path)
    }
}

/// C's `strtol(s, &end, 10)` as `parse_url` uses it for a port: leading whitespace and a sign
/// are skipped, trailing garbage is ignored, but at least one digit must be read and the value
/// must be 0–65535.
fn php_strtol_port(s: &str) -> Option<u16> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{0B}', '\u{0C}']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u32 = t[..digits].parse().ok()?;
    if negative && n != 0 {
        return None;
    }
    u16::try_from(n).ok()
}

/// `filter_var($v, FILTER_VALIDATE_URL)`: only URL characters (PHP's sanitising filter must not
/// change the value), `parse_url` succeeds, a scheme; http(s) need a valid host name (or a
/// bracketed IPv6); other schemes need a host unless they are `mailto`, `news` or `file`; user
/// and password only of userinfo characters.
pub(crate) fn validate_url(v: &str) -> bool {
    const URL_CHARS: &[u8] = b"$-_.+!*'(),{}|\\^~[]`<>#%\";/?:@&=";
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || URL_CHARS.contains(&c)) {
        return false;
    }
    let Some(url) = parse_url(v) else { return false };
    let Some(scheme) = url.scheme else { return false };
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        let Some(host) = url.host else { return false };
        if host.len() >= 2 && host.starts_with('[') && host.ends_with(']') && validate_ipv6(&host[1..host.len() - 1]) {
            return true;
        }
        if !validate_hostname(host) {
            return false;
        }
    }
    if url.host.is_none() && !matches!(scheme, "mailto" | "news" | "file") {
        return false;
    }
    url.user.is_none_or(is_userinfo) && url.pass.is_none_or(is_userinfo)
}

/// Userinfo: unreserved, sub-delims, `:` and `%XX` escapes.
fn is_userinfo(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&c)) {
            return false;
        }
        i += 1;
    }
    true
}

/// `_php_filter_validate_domain(host, FILTER_FLAG_HOSTNAME)`: one trailing dot ignored; at most
/// 253 characters; labels of ASCII letters, digits and `-`, starting and ending with a letter or
/// digit, at most 63 characters. (PHP only checks a label's last character when a dot follows it,
/// so `a-.` passes: reproduced.)
pub(crate) fn validate_hostname(host: &str) -> bool {
    let b = host.as_bytes();
    let mut end = b.len();
    if end > 0 && b[end - 1] == b'.' {
        end -= 1;
    }
    if end > 253 || b.is_empty() || b[0] == b'.' || !b[0].is_ascii_alphanumeric() {
        return false;
    }
    // The byte after position i in the original string (NUL past the end, as in C).
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut label = 1usize;
    for i in 0..end {
        if b[i] == b'.' {
            if at(i + 1) == b'.' || !at(i.wrapping_sub(1)).is_ascii_alphanumeric() || !at(i + 1).is_ascii_alphanumeric() {
                return false;
            }
            label = 1;
        } else {
            if label > 63 || ((b[i] != b'-' || at(i + 1) == 0) && !b[i].is_ascii_alphanumeric()) {
                return false;
            }
            label += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_of_what_misp_trims() {
        const MISP_TRIM: &[char] = &['\'', '"', '.', ',', '(', ')', ' ', '\t', '\n', '\r', '\0', '\u{0B}'];
        for s in ["(a.b)", "'\"x\"',", "...", "", "\u{201C}x\u{201D}", ".é.", "\t\u{0B}é\0", "a\u{0C}", " ( ) "] {
            assert_eq!(trim_token(s), s.trim_matches(MISP_TRIM), "{s:?}");
        }
    }
}
