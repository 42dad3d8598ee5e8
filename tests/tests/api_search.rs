//! restSearch over the API: parameter forms, MISP's filter semantics, every format's shape, the
//! legacy export routes, and refusals (JSON, nothing written).

use cairn_tests::stack::Stack;
use reqwest::Method;
use serde_json::{Value, json};

async fn raw(stack: &Stack, key: &str, method: Method, path: &str, body: Option<Value>) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = stack.request(method, path, key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap_or_default(), headers)
}

/// Two community-wide Events (made by the site admin, who may create tags): a published one with
/// IDS and non-IDS attributes and tags, and an unpublished one. Returns (published id, unpublished id).
async fn fixture(stack: &Stack) -> (String, String) {
    let key = stack.admin_key.clone();
    let (status, a) = stack
        .post_as(
            &key,
            "/events/add",
            &json!({"info": "search fixture A", "distribution": 1, "threat_level_id": 1, "analysis": 2, "date": "2024-03-01",
                    "Tag": [{"name": "tlp:green"}],
                    "Attribute": [
                        {"type": "ip-dst", "value": "203.0.113.10", "to_ids": true, "Tag": [{"name": "kill-chain:c2"}]},
                        {"type": "domain", "value": "evil.example.com", "to_ids": true},
                        {"type": "md5", "value": "0cc175b9c0f1b6a831c399e269772661", "to_ids": true},
                        {"type": "filename|sha256", "value": "a.exe|ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", "to_ids": true},
                        {"type": "text", "value": "Analyst notes, with a comma", "to_ids": false},
                        {"type": "url", "value": "http://evil.example.com/gate.php", "to_ids": true, "Tag": [{"name": "tlp:amber"}]}]}),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    let a_id = a["Event"]["id"].as_str().expect("id").to_string();
    let (status, r) = stack.post(&format!("/events/publish/{a_id}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let (status, b) = stack
        .post_as(
            &key,
            "/events/add",
            &json!({"info": "search fixture B", "distribution": 1, "threat_level_id": 3, "analysis": 0, "date": "2024-05-01",
                    "Attribute": [{"type": "ip-dst", "value": "198.51.100.20", "to_ids": true},
                                  {"type": "ip-src", "value": "203.0.113.10", "to_ids": false}]}),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    (a_id, b["Event"]["id"].as_str().expect("id").to_string())
}

fn event_ids(v: &Value) -> Vec<String> {
    v["response"].as_array().into_iter().flatten().filter_map(|e| e["Event"]["id"].as_str().map(String::from)).collect()
}

fn attribute_values(v: &Value) -> Vec<String> {
    v["response"]["Attribute"].as_array().into_iter().flatten().filter_map(|a| a["value"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn filters_follow_misp_semantics() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-S", "s@s.test", 3).await;
    let (a, b) = fixture(&stack).await;

    // value: exact (case-insensitive), either half of a composite, the whole composite, % LIKE.
    for (value, expected) in [("203.0.113.10", vec![a.clone(), b.clone()]), ("A.EXE", vec![a.clone()]), ("evil.%", vec![a.clone()]), ("nothing", vec![])] {
        let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"value": value})).await;
        assert_eq!(event_ids(&r), expected, "value {value}");
    }
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"value": "a.exe|ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"})).await;
    assert_eq!(attribute_values(&r).len(), 1);
    // type OR / NOT; the Event scope returns whole Events.
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"type": {"OR": ["ip-src", "ip-dst"]}, "eventid": b})).await;
    assert_eq!(attribute_values(&r).len(), 2);
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"type": "!ip-dst", "eventid": b})).await;
    assert_eq!(attribute_values(&r), ["203.0.113.10"]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"type": "md5"})).await;
    assert_eq!(event_ids(&r), [a.clone()]);
    assert_eq!(r["response"][0]["Event"]["Attribute"].as_array().map(Vec::len), Some(6), "the whole Event, not just the md5");
    // tags: Event or attribute tags; NOT strips tagged attributes from returned Events.
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"tags": "kill-chain:c2"})).await;
    assert_eq!(event_ids(&r), [a.clone()]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"tags": {"OR": ["tlp:green"], "NOT": ["tlp:amber"]}})).await;
    assert_eq!(event_ids(&r), [a.clone()]);
    let values: Vec<&str> = r["response"][0]["Event"]["Attribute"].as_array().expect("a").iter().filter_map(|x| x["value"].as_str()).collect();
    assert!(!values.contains(&"http://evil.example.com/gate.php"), "{values:?}");
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"tags": "tlp:green"})).await;
    assert_eq!(attribute_values(&r).len(), 6, "Event tags count for its attributes");
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"tags": "tlp:%"})).await;
    assert_eq!(attribute_values(&r).len(), 6, "% wildcards");
    // published, to_ids inside Events, dates, relative and invalid times.
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"published": 0})).await;
    assert_eq!(event_ids(&r), [b.clone()]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"to_ids": 0})).await;
    assert_eq!(event_ids(&r), [a.clone(), b.clone()]);
    assert_eq!(r["response"][0]["Event"]["Attribute"].as_array().map(Vec::len), Some(1), "only the non-IDS attribute inside");
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"from": "2024-04-01", "to": "2024-12-31"})).await;
    assert_eq!(event_ids(&r), [b.clone()]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"timestamp": "1h"})).await;
    assert_eq!(event_ids(&r).len(), 2);
    for invalid in ["5x", "ad", "aaad"] {
        let (status, r) = stack.post_as(&key, "/events/restSearch", &json!({"publish_timestamp": invalid})).await;
        assert_eq!((status, event_ids(&r).len()), (200, 0), "{invalid} matches nothing");
    }
    // searchall, eventinfo, threat level, uuid of an attribute, limit/page.
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"searchall": "with a comma"})).await;
    assert_eq!(event_ids(&r), [a.clone()]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"eventinfo": "%fixture B"})).await;
    assert_eq!(event_ids(&r), [b.clone()]);
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"threat_level_id": 1})).await;
    assert_eq!(event_ids(&r), [a.clone()]);
    let (_, r) = stack.post_as(&key, "/attributes/restSearch", &json!({"limit": 3, "page": 2})).await;
    assert_eq!(attribute_values(&r).len(), 3);
    let (_, all) = stack.post_as(&key, "/attributes/restSearch", &json!({})).await;
    assert_eq!(attribute_values(&all)[3..6], attribute_values(&r)[..], "pages follow id order");
    // Parameter forms: {"request": …}, named, positional.
    let (_, r) = stack.post_as(&key, "/events/restSearch", &json!({"request": {"eventid": b}})).await;
    assert_eq!(event_ids(&r), [b.clone()]);
    let (status, body, _) = raw(&stack, &key, Method::GET, &format!("/events/restSearch/eventid:{b}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(event_ids(&serde_json::from_str(&body).expect("json")), [b.clone()]);
    let (_, body, _) = raw(&stack, &key, Method::GET, "/attributes/restSearch/json/198.51.100.20", None).await;
    assert_eq!(attribute_values(&serde_json::from_str(&body).expect("json")), ["198.51.100.20"]);
    stack.stop().await;
}

#[tokio::test]
async fn every_format_answers_in_its_shape() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-F", "f@f.test", 3).await;
    let (a, _) = fixture(&stack).await;
    // CSV: MISP's header, quoted values, X-Result-Count; header and newline when empty.
    let (status, csv, h) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "csv", "eventid": a}))).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/csv");
    assert_eq!(h["x-result-count"], "6");
    assert!(csv.starts_with("uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,object_uuid,object_name,object_meta_category\n"), "{csv}");
    assert!(csv.contains("\"Analyst notes, with a comma\""), "{csv}");
    let (_, empty, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "csv", "value": "nothing"}))).await;
    assert_eq!(empty.lines().filter(|l| !l.is_empty()).count(), 1, "only the header: {empty:?}");
    assert!(empty.ends_with('\n'));
    let (_, csv, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "csv", "eventid": a, "requested_attributes": ["value", "event_id"], "headerless": 1}))).await;
    assert_eq!(csv.lines().filter(|l| !l.is_empty()).count(), 6);
    assert!(!csv.contains("uuid"), "headerless");
    // Restrictive formats default to IDS attributes of published Events.
    let (_, text, h) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "text"}))).await;
    assert_eq!(h["content-type"], "text/plain");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"203.0.113.10") && lines.contains(&"evil.example.com"), "{text}");
    assert!(!lines.contains(&"198.51.100.20"), "unpublished Event left out: {text}");
    assert!(!lines.iter().any(|l| l.contains("Analyst notes")), "non-IDS left out");
    let (_, text, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "text", "ignore": 1}))).await;
    assert!(text.lines().any(|l| l == "198.51.100.20"), "ignore lifts the defaults");
    let (_, hashes, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "hashes"}))).await;
    assert!(hashes.contains("0cc175b9c0f1b6a831c399e269772661") && hashes.contains("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"), "{hashes}");
    let (_, count, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "count", "eventid": a}))).await;
    assert_eq!(count.trim(), "6");
    let (_, cache, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "cache", "eventid": a, "type": "md5"}))).await;
    assert_eq!(cache.trim().len(), 32, "md5 of the value: {cache}");
    let (_, rules, _) = raw(&stack, &key, Method::POST, "/events/restSearch", Some(json!({"returnFormat": "suricata"}))).await;
    assert!(rules.contains("203.0.113.10") && rules.contains("sid:"), "{rules}");
    let (_, rules, _) = raw(&stack, &key, Method::POST, "/events/restSearch", Some(json!({"returnFormat": "snort"}))).await;
    assert!(rules.contains("alert ip") || rules.contains("alert tcp") || rules.contains("alert udp"), "{rules}");
    let (_, rpz, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "rpz"}))).await;
    assert!(rpz.contains("SOA") && rpz.contains("evil.example.com"), "{rpz}");
    let (_, hosts, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "hosts"}))).await;
    assert!(hosts.contains("0.0.0.0 evil.example.com"), "{hosts}");
    let (_, netfilter, _) = raw(&stack, &key, Method::POST, "/attributes/restSearch", Some(json!({"returnFormat": "netfilter"}))).await;
    assert!(netfilter.contains("203.0.113.10") && netfilter.contains("DROP"), "{netfilter}");
    let (status, stix, h) = raw(&stack, &key, Method::POST, "/events/restSearch", Some(json!({"returnFormat": "stix2", "eventid": a}))).await;
    assert_eq!((status, h["content-type"].to_str().ok()), (200, Some("application/json")));
    let bundle: Value = serde_json::from_str(&stix).expect("STIX is JSON");
    assert_eq!(bundle["type"], "bundle");
    assert!(bundle["objects"].as_array().expect("objects").iter().any(|o| o["type"] == "report"), "a published Event is a report");
    assert!(h["content-disposition"].to_str().unwrap_or_default().contains(&format!("misp.event.{a}.json")));
    stack.stop().await;
}

#[tokio::test]
async fn legacy_export_routes_answer_through_rest_search() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-L", "l@l.test", 3).await;
    let (a, b) = fixture(&stack).await;
    let get = |path: String| {
        let stack = &stack;
        let key = key.clone();
        async move { raw(stack, &key, Method::GET, &path, None).await }
    };
    let (status, csv, _) = get(format!("/events/csv/download/{a}")).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().filter(|l| !l.is_empty()).count(), 6, "header + 5 IDS attributes: {csv}");
    let (_, csv, _) = get(format!("/events/csv/download/{a}/1")).await;
    assert_eq!(csv.lines().filter(|l| !l.is_empty()).count(), 7, "ignore=1 adds the non-IDS one: {csv}");
    let (_, text, _) = get("/attributes/text/download/ip-dst".into()).await;
    assert_eq!(text.trim(), "203.0.113.10");
    let (_, text, _) = get("/attributes/text/download/ip-dst/null/null/1/null/null/null/null/1".into()).await;
    assert!(text.contains("198.51.100.20"), "allowNonIDS + allowNotPublished: {text}");
    let (_, hids, _) = get("/events/hids/md5/download".into()).await;
    assert_eq!(hids.trim(), "0cc175b9c0f1b6a831c399e269772661");
    let (_, rules, _) = get(format!("/events/nids/suricata/download/{a}")).await;
    assert!(rules.contains("203.0.113.10"), "{rules}");
    let (_, bro, _) = get("/attributes/bro/download/ip".into()).await;
    assert!(bro.contains("203.0.113.10") && bro.contains("#fields"), "{bro}");
    let (_, rpz, _) = get("/attributes/rpz/download".into()).await;
    assert!(rpz.contains("evil.example.com"), "{rpz}");
    let _ = b;
    stack.stop().await;
}

#[tokio::test]
async fn searches_only_show_what_the_caller_may_see() {
    let stack = Stack::start().await;
    let (_, owner) = stack.org_user("CERT-O", "o@o.test", 3).await;
    let (_, other) = stack.org_user("CERT-X", "x@x.test", 3).await;
    let (status, e) = stack
        .post_as(&owner, "/events/add", &json!({"info": "org only", "distribution": 0, "Attribute": [{"type": "ip-dst", "value": "192.0.2.77"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    for format in ["json", "csv", "text", "stix2", "suricata", "netfilter", "bro", "count"] {
        for scope in ["events", "attributes"] {
            let (status, body, h) = raw(&stack, &other, Method::POST, &format!("/{scope}/restSearch"), Some(json!({"returnFormat": format, "ignore": 1}))).await;
            assert_eq!(status, 200, "{scope} {format}: {body}");
            assert!(!body.contains("192.0.2.77"), "{scope} {format} leaked: {body}");
            if let Some(c) = h.get("x-result-count") {
                assert_eq!(c, "0", "{scope} {format}");
            }
            let (_, mine, _) = raw(&stack, &owner, Method::POST, &format!("/{scope}/restSearch"), Some(json!({"returnFormat": format, "ignore": 1}))).await;
            assert!(format == "count" || mine.contains("192.0.2.77"), "{scope} {format}: the owner sees it: {mine}");
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn bad_searches_are_json_4xx_and_write_nothing() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-B", "b@b.test", 3).await;
    let head = stack.head_position().await;
    for (method, path, body) in [
        (Method::POST, "/events/restSearch", Some(json!({"returnFormat": "no-such-format"}))),
        (Method::POST, "/objects/restSearch", Some(json!({"returnFormat": "csv"}))),
        (Method::POST, "/attributes/restSearch", Some(json!(["not", "an", "object"]))),
        (Method::GET, "/attributes/restSearch", None),
    ] {
        let (status, text, h) = raw(&stack, &key, method.clone(), path, body.clone()).await;
        assert!((400..500).contains(&status), "{method} {path} {body:?} → {status} {text}");
        assert!(h["content-type"].to_str().unwrap_or_default().starts_with("application/json"));
        let v: Value = serde_json::from_str(&text).expect("JSON error");
        assert!(v["message"].is_string(), "{v}");
    }
    let r = stack.request(Method::POST, "/events/restSearch", &key).body("{not json").send().await.expect("post");
    assert_eq!(r.status(), 400);
    assert_eq!(stack.head_position().await, head, "searches never write");
    stack.stop().await;
}

/// Found by the property tests (services/api/src/properties.rs): time filters whose relative span ends
/// in a multi-byte character, or overflows, crashed the request (500). They are 200s that match nothing.
#[tokio::test]
async fn hostile_time_filters_answer_and_never_crash() {
    let stack = Stack::start().await;
    let key = stack.admin_key.clone();
    for filter in [json!({"last": "5Ê"}), json!({"timestamp": "9223372036854775807w"}), json!({"publish_timestamp": ["1d", "99999999999999999999d"]}),
                   json!({"from": "-9223372036854775808"}), json!({"attribute_timestamp": "Ê"})] {
        for path in ["/attributes/restSearch", "/events/restSearch"] {
            let (status, body, _) = raw(&stack, &key, Method::POST, path, Some(filter.clone())).await;
            assert!(status < 500, "{path} {filter}: {status} {body}");
            assert!(serde_json::from_str::<Value>(&body).is_ok(), "{path} {filter}: {body}");
        }
    }
    stack.stop().await;
}
