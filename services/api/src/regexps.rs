//! MISP's "Import Regexp" table, applied to incoming attribute values before validation. MISP stores
//! PCRE patterns with delimiters and flags (`/C:\\Users\\(.*?)\\/i`); they are translated to the
//! `regex` crate (linear time: a hostile pattern cannot make a request hang). Patterns that need
//! backtracking features (back-references, look-around) are refused when they are saved.

use crate::error::ApiError;
use crate::state::AppState;
use cairn_domain::event::{AttributeDraft, EventDraft, ObjectDraft};
use cairn_domain::instance::Regexp;
use regex::Regex;
use serde_json::json;

/// One compiled rule.
pub struct Rule {
    pub attr_type: String,
    pub regex: Regex,
    /// In the `regex` crate's replacement syntax.
    pub replacement: String,
    pub blocks: bool,
}

/// `/pattern/flags` (any delimiter MISP accepts) → a `regex` pattern with inline flags.
pub fn translate(pattern: &str) -> Option<String> {
    let p = pattern.trim();
    let delimiter = p.chars().next()?;
    if delimiter.is_alphanumeric() || delimiter == '\\' {
        return Some(p.to_string());
    }
    let closing = match delimiter {
        '(' => ')',
        '{' => '}',
        '[' => ']',
        '<' => '>',
        d => d,
    };
    let end = p.rfind(closing).filter(|&e| e > 0)?;
    let body = &p[delimiter.len_utf8()..end];
    let flags: String = p[end + closing.len_utf8()..].chars().filter(|c| matches!(c, 'i' | 'm' | 's' | 'x' | 'U')).collect();
    Some(if flags.is_empty() { body.to_string() } else { format!("(?{flags}){body}") })
}

/// PHP `preg_replace` replacement → `regex` replacement: `\1`/`$1` groups, `\\` a backslash, other `$`
/// literal.
pub fn translate_replacement(r: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() => {
                out.push_str(&format!("${{{}}}", chars[i + 1]));
                i += 2;
            }
            '\\' if i + 1 < chars.len() && chars[i + 1] == '\\' => {
                out.push('\\');
                i += 2;
            }
            '$' if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() => {
                out.push_str(&format!("${{{}}}", chars[i + 1]));
                i += 2;
            }
            '$' => {
                out.push_str("$$");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Compiles a stored rule (None: not expressible without backtracking, or malformed).
pub fn compile(r: &Regexp) -> Option<Rule> {
    let pattern = translate(&r.regexp)?;
    let regex = regex::RegexBuilder::new(&pattern).size_limit(1 << 20).build().ok()?;
    Some(Rule { attr_type: r.attr_type.clone(), regex, replacement: translate_replacement(&r.replacement), blocks: r.replacement.is_empty() })
}

/// The rules in force (from the instance snapshot).
///
/// # Errors
/// Database errors.
pub async fn load(state: &AppState) -> Result<std::sync::Arc<crate::instance_facts::InstanceFacts>, ApiError> {
    state.instance.get(&state.pool).await
}

fn blocked() -> ApiError {
    ApiError::SaveFailed { name: "Could not save".into(), errors: json!({"value": ["The value was blocked by an import regexp."]}) }
}

/// Applies the rules to one attribute draft's value.
///
/// # Errors
/// A value a blocking rule matches.
pub fn apply_attribute(rules: &[Rule], draft: &mut AttributeDraft) -> Result<(), ApiError> {
    let Some(value) = draft.value.as_mut() else { return Ok(()) };
    let attr_type = draft.attr_type.as_deref().unwrap_or("");
    for rule in rules.iter().filter(|r| r.attr_type.eq_ignore_ascii_case("ALL") || r.attr_type == attr_type) {
        if rule.regex.is_match(value) {
            if rule.blocks {
                return Err(blocked());
            }
            *value = rule.regex.replace_all(value, rule.replacement.as_str()).into_owned();
        }
    }
    Ok(())
}

/// # Errors
/// As [`apply_attribute`].
pub fn apply_object(rules: &[Rule], draft: &mut ObjectDraft) -> Result<(), ApiError> {
    draft.attributes.iter_mut().try_for_each(|a| apply_attribute(rules, a))
}

/// # Errors
/// As [`apply_attribute`].
pub fn apply_event(rules: &[Rule], draft: &mut EventDraft) -> Result<(), ApiError> {
    draft.attributes.iter_mut().try_for_each(|a| apply_attribute(rules, a))?;
    draft.objects.iter_mut().try_for_each(|o| apply_object(rules, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(regexp: &str, replacement: &str, t: &str) -> Rule {
        compile(&Regexp { id: 1, regexp: regexp.into(), replacement: replacement.into(), attr_type: t.into() }).expect("compiles")
    }

    #[test]
    fn the_user_profile_example_from_misp() {
        let r = rule(r"/C:\\Users\\(.*?)\\/i", r"%UserProfile%\\", "ALL");
        let mut d = AttributeDraft { attr_type: Some("filename".into()), value: Some(r"C:\Users\dropped\file.txt".into()), ..Default::default() };
        apply_attribute(&[r], &mut d).expect("applies");
        assert_eq!(d.value.as_deref(), Some(r"%UserProfile%\file.txt"));
    }

    #[test]
    fn an_empty_replacement_blocks_and_types_scope_rules() {
        let r = rule("/^10\\./", "", "ip-dst");
        let mut ip = AttributeDraft { attr_type: Some("ip-dst".into()), value: Some("10.1.1.1".into()), ..Default::default() };
        assert!(apply_attribute(std::slice::from_ref(&r), &mut ip).is_err());
        let mut other = AttributeDraft { attr_type: Some("text".into()), value: Some("10.1.1.1".into()), ..Default::default() };
        assert!(apply_attribute(&[r], &mut other).is_ok());
    }

    #[test]
    fn translation_of_delimiters_flags_and_replacements() {
        assert_eq!(translate("/abc/i").as_deref(), Some("(?i)abc"));
        assert_eq!(translate("#a/b#").as_deref(), Some("a/b"));
        assert_eq!(translate_replacement(r"x\1$2$"), "x${1}${2}$$");
        assert!(compile(&Regexp { id: 1, regexp: r"/(a)\1/".into(), replacement: "".into(), attr_type: "ALL".into() }).is_none(), "back-references are refused");
    }
}
