//! CakePHP-style routing, as MISP clients use it: `/controller/action/arg1/arg2/key:value/...`.
//!
//! * controller names in camelCase or snake_case (`sharingGroups` = `sharing_groups`);
//! * an optional `admin/` prefix;
//! * an optional `.json` suffix on the action or the last segment;
//! * named parameters (`/metadata:1`) anywhere after the action;
//! * ids or uuids as arguments (resolved by the handlers).

use std::collections::BTreeMap;

/// A parsed MISP path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MispPath {
    pub admin: bool,
    pub controller: String,
    pub action: String,
    pub args: Vec<String>,
    pub named: BTreeMap<String, String>,
}

/// `sharingGroups` → `sharing_groups`, `getPyMISPVersion` → `get_py_misp_version`; snake_case is unchanged.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn strip_json(s: &str) -> &str {
    s.strip_suffix(".json").unwrap_or(s)
}

/// Parses a request path into controller, action, positional and named arguments.
pub fn parse(path: &str) -> Option<MispPath> {
    // Named parameters are recognised on the raw segment, so an encoded `%3A` stays part of a value.
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return None;
    }
    let admin = segments[0] == "admin";
    if admin {
        segments.remove(0);
    }
    let mut iter = segments.into_iter();
    let controller = snake_case(strip_json(&percent_decode(iter.next()?)));
    let action = iter.next().map(|a| strip_json(&percent_decode(a)).to_string()).unwrap_or_else(|| "index".into());
    let mut args = Vec::new();
    let mut named = BTreeMap::new();
    let rest: Vec<&str> = iter.collect();
    let last = rest.len().saturating_sub(1);
    for (i, raw) in rest.into_iter().enumerate() {
        let raw = if i == last { strip_json(raw) } else { raw };
        match raw.split_once(':') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                named.insert(k.to_string(), percent_decode(v));
            }
            _ => args.push(percent_decode(raw)),
        }
    }
    Some(MispPath { admin, controller, action: snake_case(&action), args, named })
}

/// `a=1&b=x%20y` → `[("a", "1"), ("b", "x y")]` (keys as named parameters take them: word characters).
pub fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| (k, percent_decode(v)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cakephp_paths() {
        let p = parse("/attributes/add/12/breakOnDuplicate:0").expect("parses");
        assert_eq!((p.controller.as_str(), p.action.as_str()), ("attributes", "add"));
        assert_eq!(p.args, vec!["12"]);
        assert_eq!(p.named.get("breakOnDuplicate").map(String::as_str), Some("0"));

        let p = parse("/admin/users/add").expect("parses");
        assert!(p.admin);
        assert_eq!(p.controller, "users");

        let p = parse("/sharingGroups/addOrg").expect("parses");
        assert_eq!((p.controller.as_str(), p.action.as_str()), ("sharing_groups", "add_org"));

        let p = parse("/attributes/describeTypes.json").expect("parses");
        assert_eq!(p.action, "describe_types");

        let p = parse("/events/pushEventToZMQ/12.json").expect("parses");
        assert_eq!(p.args, vec!["12"]);

        let p = parse("/tags/view/my+tag%3Ax").expect("parses");
        assert_eq!(p.args, vec!["my tag:x"]);

        assert_eq!(snake_case("getPyMISPVersion"), "get_py_misp_version");
        assert_eq!(snake_case("pushEventToZMQ"), "push_event_to_zmq");
        assert_eq!(snake_case("event_delegations"), "event_delegations");
        let p = parse("/events").expect("parses");
        assert_eq!(p.action, "index");
        assert!(parse("/").is_none());
        assert_eq!(query_params("after=10&stream_type=event&bad key=1&time=2024-01-01T00%3A00%3A00Z"), vec![
            ("after".to_string(), "10".to_string()),
            ("stream_type".into(), "event".into()),
            ("time".into(), "2024-01-01T00:00:00Z".into()),
        ]);
    }
}
