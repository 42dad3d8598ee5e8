//! Text → candidate tokens.
//!
//! [`misp`] is MISP's `parseFreetext` exactly: "other" characters and no-break spaces become
//! spaces, the text is split on whitespace, `,`, `<`, `>` and `;`, and every double-quoted
//! substring is appended. The default mode's [`markup_aware`] reads the text line by line and also
//! copes with Markdown/AsciiDoc markup, quoted names with spaces, `hash  file name` listings and
//! Windows paths with spaces. Both are single passes with bounded look-ahead.

use super::Mode;
use super::php::trim_token;
use super::resolve::{self, Ctx, filename_hygiene, has_scheme_separator, resolve_filename};

/// The input as text: valid UTF-8 as is, every invalid sequence replaced by a space, so one bad
/// byte never loses the rest of the text (MISP returns nothing at all then).
pub(crate) fn decode(bytes: &[u8]) -> String {
    // Nearly all input is valid: one validating pass and a copy.
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(' ');
        }
    }
    out
}

/// PCRE's `\p{C}`: control (Cc), format (Cf), private use (Co) and, of the unassigned code points
/// (Cn), the permanent noncharacters. (Other unassigned code points depend on PCRE's Unicode
/// version and are kept: text rarely holds them.)
pub(crate) fn is_other(c: char) -> bool {
    let u = u32::from(c);
    c.is_control()
        || matches!(u,
            0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2 | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
            | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0001 | 0xE0020..=0xE007F)
        || matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
        || matches!(u, 0xFDD0..=0xFDEF)
        || (u & 0xFFFE) == 0xFFFE
}

/// The text as the mode's tokenizer reads it ([`misp`] and [`markup_aware`] take this, and every
/// token they emit is a slice of it).
pub(crate) fn normalise_for(mode: Mode, text: &str) -> String {
    normalise(text, mode == Mode::Default)
}

/// MISP's tokens, untrimmed, in MISP's order: the split pieces, then the quoted substrings.
pub(crate) fn misp<'t>(replaced: &'t str, emit: &mut dyn FnMut(&'t str)) {
    for token in replaced.split([' ', ',', '<', '>', ';']) {
        if !token.is_empty() {
            emit(token);
        }
    }
    let mut rest = replaced;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        match after.find('"') {
            // `""`: the second quote may open the next match.
            Some(0) => rest = after,
            Some(close) => {
                emit(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
}

/// "Other" characters, no-break and (with `lines`) Unicode spaces → spaces; with `lines`, `\r` →
/// `\n`, otherwise line breaks are spaces too. Pure printable ASCII (the common case) is copied
/// byte by byte.
fn normalise(text: &str, lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut ascii_from = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i..i + 8).is_some_and(all_printable_ascii) {
            i += 8;
            continue;
        }
        // Something in the next eight bytes needs a look: read them one character at a time.
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            if b < 0x80 {
                if b.is_ascii_control() {
                    out.push_str(&text[ascii_from..i]);
                    out.push(if lines && (b == b'\n' || b == b'\r') { '\n' } else { ' ' });
                    ascii_from = i + 1;
                }
                i += 1;
                continue;
            }
            let Some(c) = text[i..].chars().next() else { break };
            let n = c.len_utf8();
            if c == '\u{A0}' || is_other(c) || (lines && c.is_whitespace()) {
                out.push_str(&text[ascii_from..i]);
                out.push(' ');
                ascii_from = i + n;
            }
            i += n;
        }
    }
    out.push_str(&text[ascii_from..]);
    out
}

/// Whether eight bytes are all printable ASCII (`0x20..=0x7E`), tested at once: the common case
/// [`normalise`] copies without looking at each byte.
fn all_printable_ascii(chunk: &[u8]) -> bool {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    let w = u64::from_le_bytes(w);
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 borrows in `w - 0x20…`; a byte of 0x7F or more carries into its high bit
    // in `w + 0x01…`; any high bit set in `w` itself is non-ASCII.
    let low = w.wrapping_sub(ONES * 0x20);
    let high = w.wrapping_add(ONES);
    (w | low | high) & HIGH == 0
}

/// Separators inside a line in the default mode (whitespace is handled on its own).
fn is_separator(c: char) -> bool {
    matches!(c, ',' | ';' | '<' | '>' | '"' | '`' | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{AB}' | '\u{BB}')
}

/// Characters trimmed from both ends of a token in the default mode: MISP's set plus Markdown
/// emphasis, backticks and typographic quotes.
fn is_edge_junk(c: char) -> bool {
    matches!(
        c,
        '\'' | '"' | '.' | ',' | '(' | ')' | ' ' | '\t' | '\n' | '\r' | '\0' | '\u{0B}' | '*' | '`' | '\u{2018}' | '\u{2019}'
            | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{AB}' | '\u{BB}'
    )
}

/// A byte range of the normalised text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// The default mode's tokens, cleaned (MISP's trimming still follows), in text order.
pub(crate) fn markup_aware<'t>(normalised: &'t str, cx: &Ctx<'_>, emit: &mut dyn FnMut(&'t str)) {
    // One buffer for every line's pieces.
    let mut pieces = Vec::new();
    let mut start = 0;
    loop {
        let (line, flags) = self::pieces(normalised, start, &mut pieces);
        line_tokens(normalised, line, flags, &pieces, cx, emit);
        if line.end == normalised.len() {
            break;
        }
        start = line.end + 1;
    }
}

/// Byte classes for the per-byte loops of the default tokenizer, looked up in [`CLASSES`].
mod class {
    /// An ASCII separator: a space or [`super::is_separator`].
    pub(super) const SEPARATOR: u16 = 1;
    /// The lead byte of a separator outside ASCII (`“”„«»` start with `0xC2` or `0xE2`): the
    /// character needs decoding to tell.
    pub(super) const MAY_SEPARATE: u16 = 2;
    pub(super) const NEWLINE: u16 = 4;
    /// A byte [`super::clean`] never peels: ASCII letters, digits and `-_/@%=&`.
    pub(super) const PLAIN: u16 = 8;
    pub(super) const QUOTE: u16 = 16;
    pub(super) const BACKTICK: u16 = 32;
    pub(super) const PLUS: u16 = 64;
    pub(super) const BACKSLASH: u16 = 128;
    pub(super) const NON_ASCII: u16 = 256;
    /// `[`, `]`, `{` or `}`.
    pub(super) const BRACKET: u16 = 512;
    pub(super) const COLON: u16 = 1024;
    /// What ends a run of piece bytes in [`super::pieces`].
    pub(super) const STOP: u16 = SEPARATOR | MAY_SEPARATE | NEWLINE;
}

/// The class bits of every byte value.
static CLASSES: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut bits = match b {
            b' ' | b',' | b';' | b'<' | b'>' => class::SEPARATOR,
            b'"' => class::SEPARATOR | class::QUOTE,
            b'`' => class::SEPARATOR | class::BACKTICK,
            b'\n' => class::NEWLINE,
            b'+' => class::PLUS,
            b'\\' => class::BACKSLASH,
            b'[' | b']' | b'{' | b'}' => class::BRACKET,
            b':' => class::COLON,
            0xC2 | 0xE2 => class::NON_ASCII | class::MAY_SEPARATE,
            0x80.. => class::NON_ASCII,
            _ => 0,
        };
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'@' | b'%' | b'=' | b'&') {
            bits |= class::PLAIN;
        }
        t[i] = bits;
        i += 1;
    }
    t
};

/// The union and the intersection of the classes of `s`'s bytes.
fn classes_of(s: &str) -> (u16, u16) {
    s.bytes().fold((0, u16::MAX), |(any, all), b| {
        let c = CLASSES[usize::from(b)];
        (any | c, all & c)
    })
}

/// Which characters a line holds, to skip the whole-name passes that cannot apply.
#[derive(Debug, Default, Clone, Copy)]
struct LineFlags {
    quote: bool,
    backtick: bool,
    plus: bool,
    non_ascii: bool,
    backslash: bool,
}

impl LineFlags {
    /// From the union of a line's byte classes.
    fn of(classes: u16) -> Self {
        LineFlags {
            quote: classes & class::QUOTE != 0,
            backtick: classes & class::BACKTICK != 0,
            plus: classes & class::PLUS != 0,
            non_ascii: classes & class::NON_ASCII != 0,
            backslash: classes & class::BACKSLASH != 0,
        }
    }
}

/// The line starting at `from` (up to the next `\n` or the end of the text), its pieces between
/// separators as spans of the whole text in `out` (cleared first), and what the line holds.
fn pieces(text: &str, from: usize, out: &mut Vec<Span>) -> (Span, LineFlags) {
    out.clear();
    let bytes = text.as_bytes();
    let mut seen = 0u16;
    let mut start = None;
    let mut at = from;
    while at < bytes.len() {
        // Most bytes are inside a piece: run over them before looking at the one that stops.
        let run = at;
        while at < bytes.len() && CLASSES[usize::from(bytes[at])] & class::STOP == 0 {
            seen |= CLASSES[usize::from(bytes[at])];
            at += 1;
        }
        if at > run {
            start.get_or_insert(run);
        }
        let Some(&b) = bytes.get(at) else { break };
        let classes = CLASSES[usize::from(b)];
        if classes & class::NEWLINE != 0 {
            break;
        }
        seen |= classes;
        // How many bytes of separator start here (a typographic quote takes three).
        let separator = if classes & class::SEPARATOR != 0 {
            1
        } else if classes & class::MAY_SEPARATE != 0 {
            text[at..].chars().next().filter(|&c| is_separator(c)).map_or(0, char::len_utf8)
        } else {
            0
        };
        if separator > 0 {
            if let Some(s) = start.take() {
                out.push(Span { start: s, end: at });
            }
            at += separator;
        } else {
            start.get_or_insert(at);
            at += 1;
        }
    }
    if let Some(s) = start {
        out.push(Span { start: s, end: at });
    }
    (Span { start: from, end: at }, LineFlags::of(seen))
}

/// One line: whole-name spans first (quoted names, `hash  name` listings, paths with spaces), then
/// every other piece, in order.
fn line_tokens<'t>(text: &'t str, line: Span, flags: LineFlags, pieces: &[Span], cx: &Ctx<'_>, emit: &mut dyn FnMut(&'t str)) {
    if pieces.is_empty() {
        return;
    }
    // Names that span several pieces: (what, which part of the line they cover).
    let mut found: Vec<(&str, Span)> = Vec::new();
    if pieces.len() > 1 {
        quoted_names(text, line, flags, cx, &mut found);
        checksum_listing(text, pieces, line, cx, &mut found);
        if flags.backslash {
            paths_with_spaces(text, pieces, &mut found);
        }
    }
    // The earliest wins where two overlap.
    found.sort_by_key(|(_, w)| (w.start, std::cmp::Reverse(w.end)));
    let mut wholes: Vec<(&str, Span)> = Vec::with_capacity(found.len());
    for (name, w) in found {
        if wholes.last().is_none_or(|(_, last)| w.start >= last.end) {
            wholes.push((name, w));
        }
    }
    let mut next = 0;
    for p in pieces.iter() {
        while next < wholes.len() && wholes[next].1.end <= p.start {
            next += 1;
        }
        // Emit each whole once, where it starts; skip the pieces it covers.
        if let Some((name, w)) = wholes.get(next) {
            if w.start <= p.start {
                if p.start == first_piece_in(pieces, *w) {
                    emit(name);
                }
                if p.end <= w.end {
                    continue;
                }
            }
        }
        piece_tokens(&text[p.start..p.end], cx, emit);
    }
}

/// Where the first piece inside `w` starts.
fn first_piece_in(pieces: &[Span], w: Span) -> usize {
    let i = pieces.partition_point(|p| p.start < w.start);
    pieces.get(i).map_or(usize::MAX, |p| p.start)
}

/// A piece → tokens: `|` splits table cells unless the piece is a `filename|hash` value.
fn piece_tokens<'t>(piece: &'t str, cx: &Ctx<'_>, emit: &mut dyn FnMut(&'t str)) {
    let Some(cleaned) = clean(piece) else { return };
    if cleaned.contains('|') {
        let trimmed = trim_token(cleaned);
        // Only `name|hash` (one `|`, something on both sides) can resolve to a composite.
        let shaped = trimmed.split_once('|').is_some_and(|(name, hash)| !name.is_empty() && !hash.is_empty() && !hash.contains('|'));
        let composite = shaped && resolve::resolve(trimmed, cx).is_some_and(|r| r.types[0].starts_with("filename|"));
        if !composite {
            for cell in cleaned.split('|') {
                if let Some(c) = clean(cell) {
                    emit(c);
                }
            }
            return;
        }
    }
    emit(cleaned);
}

/// Markup peeled off a piece: edge punctuation and quotes, `++…++` (AsciiDoc passthrough),
/// Markdown emphasis, unbalanced brackets, a `\` escaping a URL (AsciiDoc), `link:` macros (a link
/// to a relative file is a document reference, not an indicator), the text of an AsciiDoc
/// `url[text]` link, the label of a Markdown `[text](url)` link. `None` when nothing is left.
fn clean(piece: &str) -> Option<&str> {
    let (any, all) = classes_of(piece);
    if all & class::PLAIN != 0 {
        return (!piece.is_empty()).then_some(piece);
    }
    let mut s = piece;
    // Which markup can be there at all: most pieces need one or two trims and nothing else.
    let (bracket, colon, plus) = (any & class::BRACKET != 0, any & class::COLON != 0, any & class::PLUS != 0);
    // Each round is linear; a few rounds peel any realistic nesting (`*`++x++`*`), and the cap
    // keeps adversarial input (`*[*[*[…`) linear too.
    for _ in 0..8 {
        let before = s;
        s = s.trim_start_matches(is_edge_junk);
        s = s.trim_end_matches(|c| is_edge_junk(c) || matches!(c, '!' | '?'));
        if s.ends_with(':') && !s.ends_with("::") {
            s = &s[..s.len() - 1];
        }
        if plus {
            s = s.strip_prefix("++").unwrap_or(s);
            s = s.strip_suffix("++").unwrap_or(s);
        }
        if bracket {
            for (open, close) in [('[', ']'), ('{', '}')] {
                if s.starts_with(open) {
                    // Leading brackets that are never closed.
                    let unclosed = usize::try_from(depth_after(s, open, close)).unwrap_or(0);
                    let leading = s.bytes().take_while(|&b| char::from(b) == open).count();
                    s = &s[leading.min(unclosed)..];
                }
                if s.ends_with(close) {
                    // Trailing brackets that close nothing.
                    let unopened = usize::try_from(-min_depth(s, open, close)).unwrap_or(0);
                    let trailing = s.bytes().rev().take_while(|&b| char::from(b) == close).count();
                    s = &s[..s.len() - trailing.min(unopened)];
                }
            }
            if let Some(i) = s.as_bytes().windows(2).position(|w| w == b"](") {
                s = &s[i + 2..];
            }
        }
        if colon {
            let escaped_url = |r: &&str| has_scheme_separator(r) && r.starts_with(|c: char| c.is_ascii_alphabetic());
            if let Some(rest) = s.strip_prefix('\\').filter(escaped_url) {
                s = rest;
            }
            if let Some(target) = s.get(..5).filter(|p| p.eq_ignore_ascii_case("link:")).map(|_| &s[5..]) {
                if !has_scheme_separator(target) {
                    return None;
                }
                s = target;
            }
            if bracket && has_scheme_separator(s) {
                if let Some(i) = link_text_bracket(s) {
                    s = &s[..i];
                }
            }
        }
        if s == before {
            break;
        }
    }
    (!s.is_empty()).then_some(s)
}

/// The bracket depth left open at the end of `s`.
fn depth_after(s: &str, open: char, close: char) -> i32 {
    s.chars().fold(0, |d, c| if c == open { d + 1 } else if c == close { d - 1 } else { d })
}

/// The lowest bracket depth reached reading `s`.
fn min_depth(s: &str, open: char, close: char) -> i32 {
    let mut d = 0;
    let mut min = 0;
    for c in s.chars() {
        if c == open {
            d += 1;
        } else if c == close {
            d -= 1;
            min = min.min(d);
        }
    }
    min
}

/// Where an AsciiDoc `url[text]` link text starts: the first `[` that does not open a defanging
/// pattern (`[.]`, `[dot]`, `[:]`, `[x]`, …).
fn link_text_bracket(s: &str) -> Option<usize> {
    const DEFANG: &[&str] = &["[.]", "[dot]", "[:]", "[@]", "[at]", "[/]", "[://]", "[hxxp://]", "[tt]"];
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find('[').map(|i| from + i) {
        let defang = DEFANG.iter().any(|d| s.get(i..i + d.len()).is_some_and(|h| h.eq_ignore_ascii_case(d)))
            || (b.get(i + 2) == Some(&b']') && b.get(i + 1).is_some_and(|c| *c != b'['));
        // `http://[v6]…` and `user@[v6]`: an address, not link text.
        let host_bracket = s[..i].ends_with("://") || s[..i].ends_with('@');
        if !defang && !host_bracket {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The text of a piece after [`clean`], as a span of the whole text.
fn cleaned_span(text: &str, p: Span) -> Option<Span> {
    let raw = &text[p.start..p.end];
    let c = clean(raw)?;
    let start = p.start + (c.as_ptr() as usize - raw.as_ptr() as usize);
    Some(Span { start, end: start + c.len() })
}

/// Quoted names with spaces: `"Windows Broker Manager.dat"`, `` `++%TEMP%\Usermode COM Manager.dat++` ``.
/// The whole is kept (and its pieces dropped) when it resolves to a file name or registry key.
fn quoted_names<'t>(text: &'t str, line: Span, flags: LineFlags, cx: &Ctx<'_>, wholes: &mut Vec<(&'t str, Span)>) {
    let l = &text[line.start..line.end];
    for (open, close, present) in [
        ("\"", "\"", flags.quote),
        ("\u{201C}", "\u{201D}", flags.non_ascii),
        ("`", "`", flags.backtick),
        ("++", "++", flags.plus),
    ] {
        if !present {
            continue;
        }
        let mut from = 0;
        while let Some(o) = find_from(l, from, open) {
            let inner_start = o + open.len();
            let Some(c) = find_from(l, inner_start, close) else { break };
            from = c + close.len();
            let inner = &l[inner_start..c];
            // The name is a part of `inner`: without a space there, there is none to keep whole.
            if !inner.contains(' ') {
                continue;
            }
            let Some(name) = clean(inner) else { continue };
            let name = trim_token(name);
            if !name.contains(' ') {
                continue;
            }
            let whole = resolve::resolve(name, cx).is_some_and(|r| matches!(r.types[0], "filename" | "regkey"));
            if whole {
                wholes.push((name, Span { start: line.start + o, end: line.start + from }));
            }
        }
    }
}

/// Where `needle` first occurs in `hay` at or after `from` (a byte search: the needles are one to
/// three bytes, too short for a substring searcher to pay off).
fn find_from(hay: &str, from: usize, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let mut at = from;
    loop {
        at += h.get(at..)?.iter().position(|&b| b == n[0])?;
        if h[at..].starts_with(n) {
            return Some(at);
        }
        at += 1;
    }
}

/// `sha256sum`-style listings: a line that is a hash followed by a file name with spaces or
/// commas (`<hash>  accordo legale 07.20.doc`) keeps the name whole.
fn checksum_listing<'t>(text: &'t str, pieces: &[Span], line: Span, cx: &Ctx<'_>, wholes: &mut Vec<(&'t str, Span)>) {
    let mut i = 0;
    while i < pieces.len() && matches!(&text[pieces[i].start..pieces[i].end], "-" | "*" | "+" | "\u{2022}" | "|") {
        i += 1;
    }
    // The shortest hash is 32 digits (and trimming only shortens).
    let Some(hash) = pieces.get(i).filter(|h| h.end - h.start >= 32) else { return };
    let h = &text[hash.start..hash.end];
    let h = h.trim_matches(|c: char| !c.is_ascii_hexdigit());
    if !(matches!(h.len(), 32 | 40 | 56 | 64 | 96 | 128) && h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return;
    }
    let rest_start = hash.end;
    let rest = &text[rest_start..line.end];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let trimmed = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("| ")).unwrap_or(trimmed).trim();
    if !trimmed.contains([' ', ',']) || trimmed.contains("://") {
        return;
    }
    if !(resolve_filename(trimmed) && filename_hygiene(trimmed) && !trimmed.contains(" - ")) {
        return;
    }
    // Every word of the name must be a plain word or a file name: `<hash> evil.com 1.2.3.4` is a
    // list of indicators, not a name.
    let plain_words = trimmed
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .all(|w| resolve::resolve(trim_token(w), cx).is_none_or(|r| r.types[0] == "filename"));
    if plain_words {
        wholes.push((trimmed, Span { start: rest_start, end: line.end }));
    }
}

/// Windows paths cut by spaces (`C:\Program Files\Evil\evil.exe`, `%TEMP%\Usermode COM Manager.dat`,
/// `C:\Users\[username]\[same directory as Word doc]\iD.tmp`): from a piece that starts a path but
/// does not end in a file name, join the next pieces while they look like path words (capitalised,
/// or inside an open bracket) until the whole ends in a file name; at most six pieces.
fn paths_with_spaces<'t>(text: &'t str, pieces: &[Span], wholes: &mut Vec<(&'t str, Span)>) {
    let mut i = 0;
    while i < pieces.len() {
        if !starts_windows_path(&text[pieces[i].start..pieces[i].end].trim_start_matches(|c: char| !c.is_alphanumeric() && c != '%' && c != '\\')) {
            i += 1;
            continue;
        }
        let Some(first) = cleaned_span(text, pieces[i]) else {
            i += 1;
            continue;
        };
        let head = &text[first.start..first.end];
        if !starts_windows_path(head) || (resolve_filename(head) && filename_hygiene(head)) {
            i += 1;
            continue;
        }
        let mut joined_to = None;
        for j in i + 1..pieces.len().min(i + 7) {
            let Some(next) = cleaned_span(text, pieces[j]) else { break };
            let word = &text[next.start..next.end];
            let so_far = &text[first.start..pieces[j - 1].end];
            let inside_bracket = depth_after(so_far, '[', ']') > 0;
            let capitalised = word.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit() || c == '[' || c == '%');
            if !(inside_bracket || capitalised) {
                break;
            }
            let whole = &text[first.start..next.end];
            if word.contains('.') && resolve_filename(whole) && filename_hygiene(whole) {
                joined_to = Some(j);
                break;
            }
        }
        match joined_to {
            Some(j) => {
                let end = cleaned_span(text, pieces[j]).map_or(pieces[j].end, |s| s.end);
                wholes.push((&text[first.start..end], Span { start: pieces[i].start, end: pieces[j].end }));
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// `X:\`, `%VAR%\` or `\\` at the start.
fn starts_windows_path(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        return true;
    }
    if s.starts_with("\\\\") {
        return true;
    }
    s.strip_prefix('%').and_then(|r| r.split_once('%')).is_some_and(|(var, rest)| {
        !var.is_empty() && var.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') && rest.starts_with('\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_byte_test_agrees_with_a_byte_by_byte_one() {
        let interesting = [0x00, 0x09, 0x0A, 0x1F, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0xA0, 0xC2, 0xE2, 0xFF];
        for &x in &interesting {
            for &y in &interesting {
                for (i, j) in [(0, 7), (3, 4), (7, 0), (5, 5)] {
                    let mut chunk = *b"Ab3 ~.z!";
                    chunk[i] = x;
                    chunk[j] = y;
                    let expected = chunk.iter().all(|b| (0x20..=0x7E).contains(b));
                    assert_eq!(all_printable_ascii(&chunk), expected, "{chunk:?}");
                }
            }
        }
    }

    #[test]
    fn pieces_split_on_separators_and_typographic_quotes_only() {
        let text = "a,b «c» “d”é\u{2019}e; `f`\nnext";
        let mut out = Vec::new();
        let (line, flags) = pieces(text, 0, &mut out);
        let got: Vec<&str> = out.iter().map(|p| &text[p.start..p.end]).collect();
        assert_eq!(got, ["a", "b", "c", "d", "é\u{2019}e", "f"]);
        assert_eq!(&text[line.start..line.end], "a,b «c» “d”é\u{2019}e; `f`");
        assert!(flags.backtick && flags.non_ascii && !flags.quote && !flags.plus && !flags.backslash);
        let (rest, _) = pieces(text, line.end + 1, &mut out);
        assert_eq!((rest.end, out.len()), (text.len(), 1));
    }

    #[test]
    fn find_from_finds_multi_byte_needles() {
        assert_eq!(find_from("a ++b++ c", 0, "++"), Some(2));
        assert_eq!(find_from("a ++b++ c", 3, "++"), Some(5));
        assert_eq!(find_from("“x” “y”", 4, "\u{201C}"), Some(8));
        assert_eq!(find_from("abc", 3, "c"), None);
        assert_eq!(find_from("abc", 9, "c"), None);
    }
}
