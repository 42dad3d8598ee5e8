//! Every route of the API (from its `/openapi.json`, generated from the routing table, so a new route is
//! covered the day it is added) receives hostile requests as a site admin and as a read-only user:
//! odd path arguments, malformed and oddly typed bodies, deep nesting, huge numbers. Every answer is JSON
//! with a status below 500, and no request answered 4xx moved the log head.
//! `CAIRN_HOSTILE_BODIES` sets the random bodies per route (CI: 6; the long mode in docs/reliability.md).

use cairn_tests::oracle::Rng;
use cairn_tests::stack::Stack;
use serde_json::{Value, json};

/// Every MISP-style route, from the API's own description (`/openapi.json`, generated from the routing
/// table at build time).
async fn routes(stack: &Stack) -> Vec<String> {
    let doc: Value = stack.http.get(format!("{}/openapi.json", stack.base)).send().await.expect("openapi").json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter(|p| !p.contains('{') && p.matches('/').count() >= 2)
        .cloned()
        .collect();
    out.sort();
    out
}

fn random_json(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.below(u64::MAX) as i64),
        3 => json!(["", "1", "-1", "0", "99999999999999999999999", "1e308", "%", "a|b", "../../etc", "\u{0}", "Ê", "5Ê", "1d", "!x"][rng.below(14) as usize]),
        4 => json!(f64::from_bits(rng.below(u64::MAX))).as_f64().map_or(json!(1.5), |f| json!(f)),
        5 => json!("x".repeat(rng.below(3000) as usize)),
        6 | 7 => {
            let keys = ["value", "type", "category", "info", "Event", "Attribute", "Object", "Tag", "name", "id", "uuid", "distribution",
                        "sharing_group_id", "org_id", "role_id", "email", "limit", "page", "timestamp", "last", "tags", "values", "Template",
                        "TemplateElement", "element_definition", "preview", "modules", "allowed_ips", "from", "to", "version", "event_id"];
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                m.insert(keys[rng.below(keys.len() as u64) as usize].to_string(), random_json(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| random_json(rng, depth + 1)).collect()),
    }
}

#[tokio::test]
async fn every_route_answers_hostile_requests_with_json_below_500_and_refusals_write_nothing() {
    let stack = Stack::start().await;
    let (_, read_only) = stack.org_user("CERT-RO", "ro@h.test", 6).await;
    let (_, e) = stack.post("/events/add", &json!({"info": "target", "Attribute": [{"type": "ip-dst", "value": "198.51.100.80"}]})).await;
    let event = e["Event"]["id"].as_str().expect("id").to_string();
    let bodies_per_route: u64 = std::env::var("CAIRN_HOSTILE_BODIES").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("CAIRN_HOSTILE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261129);
    let mut rng = Rng::new(seed);
    let routes = routes(&stack).await;
    assert!(routes.len() > 100, "the routes were not read: {routes:?}");
    let args = ["", "/1", "/x", "/00000000-0000-0000-0000-000000000000", "/99999999999999999999", "/-1", "/%00", "/1/2/3", "/a:b/c:"];
    let fixed: Vec<Value> = vec![json!({}), json!([]), json!(null), json!("text"), json!(1), json!({"Event": {"Attribute": [[[[[[]]]]]]}})];
    let mut requests = 0;
    let mut failures = Vec::new();
    for base in &routes {
        for (i, arg) in args.iter().enumerate() {
            let path = if i == 0 { base.clone() } else if *arg == "/1" { format!("{base}/{event}") } else { format!("{base}{arg}") };
            let mut bodies: Vec<Option<Value>> = fixed.iter().cloned().map(Some).collect();
            bodies.push(None); // not JSON at all
            bodies.extend((0..bodies_per_route).map(|_| Some(random_json(&mut rng, 0))));
            // Bodies go to the first two argument forms; the rest get one random body each.
            let bodies: Vec<Option<Value>> = if i < 2 { bodies } else { vec![Some(random_json(&mut rng, 0))] };
            for body in bodies {
                for key in [stack.admin_key.as_str(), read_only.as_str()] {
                    let head = stack.head_position().await;
                    let method = if rng.chance(20) { reqwest::Method::GET } else { reqwest::Method::POST };
                    let mut request = stack.request(method.clone(), &path, key);
                    request = match &body {
                        Some(v) => request.body(v.to_string()),
                        None => request.body("{\"unterminated\": [1, 2"),
                    };
                    let response = request.send().await.expect("request");
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    requests += 1;
                    let json_ok = serde_json::from_str::<Value>(&text).is_ok() || (status == 200 && !text.trim_start().starts_with('<'));
                    if status >= 500 || !json_ok {
                        failures.push(format!("{method} {path} {} -> {status} {}", body.as_ref().map_or("<malformed>".into(), |b| b.to_string().chars().take(120).collect::<String>()), text.chars().take(200).collect::<String>()));
                    } else if (400..500).contains(&status) && stack.head_position().await != head {
                        failures.push(format!("{method} {path} answered {status} but wrote: {}", text.chars().take(200).collect::<String>()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {requests} hostile requests failed (seed {seed}):\n{}", failures.len(), failures.iter().take(30).cloned().collect::<Vec<_>>().join("\n"));
    eprintln!("hostile requests: {requests} over {} routes, 0 failures (seed {seed})", routes.len());
    stack.stop().await;
}

/// Found while fuzzing: a refused request that named a new tag used to create the tag anyway (the log
/// head moved under a 403). Tags are now created only once the command they serve is accepted.
#[tokio::test]
async fn a_refused_request_creates_no_tag() {
    let stack = Stack::start().await;
    let (_, e) = stack.post("/events/add", &json!({"info": "owned by the host org", "distribution": 1})).await;
    let event = e["Event"]["id"].as_str().expect("id").to_string();
    let event_uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let (_, other_org_admin) = stack.org_user("CERT-Other", "oa@o.test", 2).await; // a tag editor of another org
    let head = stack.head_position().await;
    let attempts = [
        (stack.admin_key.clone(), "/events/add".to_string(), json!({"Event": {"info": "", "Tag": [{"name": "fresh-tag-1"}]}})),
        (stack.admin_key.clone(), format!("/attributes/add/{event}"), json!({"type": "ip-dst", "value": "not an ip", "Tag": [{"name": "fresh-tag-2"}]})),
        (other_org_admin.clone(), format!("/events/edit/{event}"), json!({"Event": {"info": "x", "Tag": [{"name": "fresh-tag-3"}]}})),
        (other_org_admin.clone(), "/tags/attachTagToObject".to_string(), json!({"uuid": event_uuid, "tag": "fresh-tag-4"})),
    ];
    for (key, path, body) in attempts {
        let (status, r) = stack.post_as(&key, &path, &body).await;
        assert!((400..500).contains(&status), "{path}: {status} {r}");
        assert_eq!(stack.head_position().await, head, "{path} was refused but wrote");
    }
    let (_, tags) = stack.post("/tags/search", &json!({"tagname": "fresh-tag-%"})).await;
    assert_eq!(tags.as_array().map(Vec::len), Some(0), "{tags}");
    // Accepted requests still create the tags they name.
    let (status, r) = stack.post(&format!("/attributes/add/{event}"), &json!({"type": "ip-dst", "value": "198.51.100.81", "Tag": [{"name": "fresh-tag-5"}]})).await;
    assert_eq!(status, 200, "{r}");
    let (_, tags) = stack.post("/tags/search", &json!({"tagname": "fresh-tag-5"})).await;
    assert_eq!(tags.as_array().map(Vec::len), Some(1), "{tags}");
    stack.stop().await;
}
