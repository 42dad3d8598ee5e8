//! `regex` lists hold PHP PCRE patterns with delimiters and flags (`/^(security|abuse)\@.*$/i`).
//! They are translated for the `regex` crate, which runs in linear time (no backtracking, so no
//! pattern can stall a check): the delimiters are removed, the flags become inline flags.
//!
//! Constructs the crate lacks (look-around, back-references) make the entry unusable; it is
//! reported and never matches. PHP itself refuses an unknown flag (`Unknown modifier 'g'`, the
//! upstream `phone_numbers` list): in compat mode such an entry never matches either, as in MISP;
//! the default mode ignores a `g` (it means nothing to a yes/no match).

use regex::Regex;

use crate::freetext::Mode;

/// A PCRE pattern compiled for matching, or why it cannot be.
pub(crate) fn compile(entry: &str, mode: Mode) -> Result<Regex, String> {
    let entry = entry.trim_start();
    let mut chars = entry.chars();
    let delimiter = chars.next().ok_or("an empty pattern")?;
    if delimiter.is_alphanumeric() || delimiter == '\\' {
        return Err(format!("PCRE needs a delimiter, not {delimiter:?}"));
    }
    let closing = match delimiter {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        d => d,
    };
    let body = &entry[delimiter.len_utf8()..];
    let end = body.rfind(closing).ok_or_else(|| format!("no ending delimiter {closing:?}"))?;
    let (pattern, flags) = (&body[..end], &body[end + closing.len_utf8()..]);
    let mut inline = String::new();
    for f in flags.chars() {
        match f {
            'i' | 'm' | 's' | 'x' | 'U' => inline.push(f),
            // UTF-8 mode and "dollar matches only at the end" are how the regex crate works.
            'u' | 'D' => {}
            'g' if mode == Mode::Default => {}
            '\n' | '\r' | ' ' => {}
            other => return Err(format!("unknown modifier {other:?}")),
        }
    }
    // `\/` (an escaped delimiter) is a plain `/` to PCRE; the regex crate accepts it as is.
    let translated = if inline.is_empty() { pattern.to_string() } else { format!("(?{inline}){pattern}") };
    Regex::new(&translated).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_and_flags_are_translated() {
        let r = compile(r"/^(security|noc|soc|abuse)\@.*\..*$/i", Mode::Compat).expect("compiles");
        assert!(r.is_match("Abuse@example.com"));
        assert!(!r.is_match("someone@example.com"));
        let r = compile(r"#^a/b$#", Mode::Compat).expect("compiles");
        assert!(r.is_match("a/b"));
        let r = compile(r"/x\/y/", Mode::Compat).expect("compiles");
        assert!(r.is_match("x/y"));
    }

    #[test]
    fn the_g_flag_is_refused_as_php_refuses_it_but_ignored_by_default() {
        let entry = r"/((?:\+|00)1)?([0-9]{3})55501([0-9]{2})/g";
        assert!(compile(entry, Mode::Compat).is_err());
        assert!(compile(entry, Mode::Default).expect("compiles").is_match("+12125550199"));
    }

    #[test]
    fn what_the_linear_engine_cannot_do_is_reported() {
        assert!(compile(r"/(a)\1/", Mode::Default).is_err());
        assert!(compile(r"/a(?=b)/", Mode::Default).is_err());
        assert!(compile("abc", Mode::Default).is_err());
    }
}
