//! Warninglists and freetext import over the API, with the real lists from pymispwarninglists.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

const PUBLIC_DNS: &str = "%dns resolv%";
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

async fn toggle(stack: &Stack, body: Value) -> (u16, Value) {
    stack.post("/warninglists/toggleEnable", &body).await
}

async fn new_event(stack: &Stack, key: &str) -> String {
    let (status, e) = stack
        .post_as(key, "/events/add", &json!({"info": "freetext exercise", "distribution": 0, "threat_level_id": 3, "analysis": 0}))
        .await;
    assert_eq!(status, 200, "{e}");
    e["Event"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn lists_are_listed_viewed_toggled_and_checked() {
    let stack = Stack::start().await;
    let (status, index) = stack.get("/warninglists/index").await;
    assert_eq!(status, 200, "{index}");
    let lists = index["Warninglists"].as_array().expect("Warninglists");
    assert_eq!(lists.len(), 119, "every list of pymispwarninglists 1.7.0");
    assert!(lists.iter().all(|l| l["Warninglist"]["enabled"] == json!(false)), "a fresh instance enables none, as MISP imports them");
    let hashes = lists
        .iter()
        .map(|l| &l["Warninglist"])
        .find(|l| l["name"] == "List of known hashes with common false-positives (based on Florian Roth input list)")
        .expect("the hash list");
    let id = hashes["id"].as_str().expect("id").to_string();
    let (status, view) = stack.get(&format!("/warninglists/view/{id}")).await;
    assert_eq!(status, 200);
    assert!(view["Warninglist"]["WarninglistEntry"].as_array().expect("entries").iter().any(|e| e["value"] == EMPTY_MD5));
    assert_eq!(view["Warninglist"]["warninglist_entry_count"], hashes["warninglist_entry_count"]);

    // Disabled lists flag nothing.
    let (status, hits) = stack.post("/warninglists/checkValue", &json!([EMPTY_MD5])).await;
    assert_eq!(status, 200);
    assert_eq!(hits, json!({}));

    let (status, r) = toggle(&stack, json!({"id": [id.parse::<i64>().expect("numeric")], "enabled": true})).await;
    assert_eq!((status, &r), (200, &json!({"saved": true, "success": "1 warninglist(s) enabled"})));
    let (status, hits) = stack.post("/warninglists/checkValue", &json!([EMPTY_MD5, "example.invalid"])).await;
    assert_eq!(status, 200);
    assert_eq!(hits[EMPTY_MD5][0]["name"], hashes["name"]);
    assert_eq!(hits[EMPTY_MD5][0]["id"], json!(id));
    assert!(hits.get("example.invalid").is_none());

    // Names match with % wildcards; without `enabled` each list flips.
    let (_, r) = toggle(&stack, json!({"name": PUBLIC_DNS, "enabled": true})).await;
    assert_eq!(r, json!({"saved": true, "success": "3 warninglist(s) enabled"}));
    let (_, r) = toggle(&stack, json!({"name": [PUBLIC_DNS]})).await;
    assert_eq!(r, json!({"saved": true, "success": "3 warninglist(s) toggled"}));
    let (_, enabled) = stack.get("/warninglists/index/enabled:1").await;
    let names: Vec<&str> = enabled["Warninglists"].as_array().expect("list").iter().filter_map(|l| l["Warninglist"]["name"].as_str()).collect();
    assert_eq!(names, [hashes["name"].as_str().expect("name")], "only the hash list is still enabled");
    let (_, r) = toggle(&stack, json!({"id": id, "enabled": false})).await;
    assert_eq!(r["success"], "1 warninglist(s) disabled");
    stack.stop().await;
}

#[tokio::test]
async fn refusals_are_json_and_write_nothing() {
    let stack = Stack::start().await;
    let (_, user_key) = stack.org_user("CERT-W", "w@w.test", 3).await;
    let head = stack.head_position().await;
    for (key, body, expected) in [
        (None, json!({"name": "no such list at all", "enabled": true}), 404),
        (None, json!({"id": [999_999], "enabled": true}), 404),
        (None, json!({"name": PUBLIC_DNS, "enabled": "maybe"}), 400),
        (Some(user_key.as_str()), json!({"name": PUBLIC_DNS, "enabled": true}), 403),
    ] {
        let (status, r) = match key {
            Some(k) => stack.post_as(k, "/warninglists/toggleEnable", &body).await,
            None => toggle(&stack, body.clone()).await,
        };
        assert_eq!(status, expected, "{body} → {r}");
        assert!(r["message"].is_string(), "MISP-shaped error: {r}");
    }
    let (status, _) = stack.post("/warninglists/checkValue", &json!([])).await;
    assert_eq!(status, 400);
    let (status, _) = stack.get("/warninglists/view/0").await;
    assert_eq!(status, 404);
    let (status, _) = stack.post_as(&user_key, "/warninglists/update", &json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(stack.head_position().await, head, "no refusal moved the log head");
    stack.stop().await;
}

#[tokio::test]
async fn freetext_import_types_saves_and_adheres_to_warninglists() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-F", "f@f.test", 3).await;
    let id = new_event(&stack, &key).await;
    let (_, r) = toggle(&stack, json!({"name": PUBLIC_DNS, "enabled": true})).await;
    assert_eq!(r["success"], "3 warninglist(s) enabled");

    // Preview: typed candidates, nothing written.
    let head = stack.head_position().await;
    let report = "C2 at hxxp://evil[.]example[.]com/gate.php and 198.51.100.7:8443, mail from bad@evil.example.com";
    let (status, meta) = stack
        .post_as(&key, &format!("/events/freeTextImport/{id}"), &json!({"value": report, "returnMetaAttributes": true}))
        .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(stack.head_position().await, head, "a preview writes nothing");
    let found: Vec<(&str, &str)> = meta.as_array().expect("list").iter().map(|c| (c["value"].as_str().unwrap_or(""), c["default_type"].as_str().unwrap_or(""))).collect();
    assert_eq!(
        found,
        [("http://evil.example.com/gate.php", "url"), ("198.51.100.7|8443", "ip-dst|port"), ("bad@evil.example.com", "email-src")],
        "first-occurrence order, refanged"
    );
    assert!(meta[0]["types"].is_object(), "types as MISP's map: {meta}");

    // soft: warninglisted values are kept without the IDS flag; hard (true): left out but answered.
    let (status, saved) = stack
        .post_as(&key, &format!("/events/freeTextImport/{id}"), &json!({"value": "9.9.9.9 203.0.113.9", "adhereToWarninglists": "soft", "distribution": 2}))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved[0]["value"], "9.9.9.9");
    assert_eq!(saved[0]["to_ids"], json!(false), "soft: on a public DNS list");
    assert_eq!(saved[1]["to_ids"], json!(true));
    assert_eq!(saved[0]["distribution"], "2");
    let (status, saved) = stack
        .post_as(&key, &format!("/events/freeTextImport/{id}"), &json!({"value": "8.8.8.8 foo@bar.de", "adhereToWarninglists": true}))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved[0]["value"], "8.8.8.8", "returned even though a warninglist kept it out");
    assert!(saved[0].get("id").is_none(), "8.8.8.8 was not saved: {saved}");
    assert!(saved[1]["id"].is_string(), "foo@bar.de was saved: {saved}");

    let (_, view) = stack.get(&format!("/events/view/{id}")).await;
    let attributes = view["Event"]["Attribute"].as_array().expect("attributes");
    let values: Vec<&str> = attributes.iter().filter_map(|a| a["value"].as_str()).collect();
    assert_eq!(values, ["9.9.9.9", "203.0.113.9", "foo@bar.de"]);
    // The same import again saves nothing new (duplicates) and still answers every candidate.
    let head = stack.head_position().await;
    let (status, again) = stack.post_as(&key, &format!("/events/freeTextImport/{id}"), &json!({"value": "9.9.9.9 203.0.113.9"})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again.as_array().map(Vec::len), Some(2));
    let (status, lone) = stack.post_as(&key, &format!("/events/freeTextImport/{id}"), &json!({"value": "203.0.113.9"})).await;
    assert_eq!((status, lone[0]["value"].as_str()), (200, Some("203.0.113.9")), "a lone duplicate is answered, not refused: {lone}");
    assert_eq!(stack.head_position().await, head, "duplicates write nothing");

    // Bad input: JSON 4xx, nothing written.
    for body in [json!({"nothing": 1}), json!({"value": 5}), json!({"value": "1.2.3.4", "adhereToWarninglists": "sometimes"})] {
        let (status, r) = stack.post_as(&key, &format!("/events/freeTextImport/{id}"), &body).await;
        assert!((400..500).contains(&status), "{body} → {status} {r}");
    }
    let (status, _) = stack.post_as(&key, "/events/freeTextImport/999999", &json!({"value": "1.2.3.4"})).await;
    assert_eq!(status, 404);
    assert_eq!(stack.head_position().await, head);
    stack.stop().await;
}

#[tokio::test]
async fn event_views_and_searches_flag_or_drop_warninglisted_attributes() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-V", "v@v.test", 3).await;
    let (status, e) = stack
        .post_as(
            &key,
            "/events/add",
            &json!({"info": "dns", "distribution": 0, "threat_level_id": 3, "analysis": 0, "Attribute": [
                {"type": "ip-dst", "value": "8.8.8.8"},
                {"type": "ip-dst", "value": "1.1.1.1", "to_ids": false},
                {"type": "ip-dst", "value": "198.51.100.8"}]}),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let (_, view) = stack.get(&format!("/events/view/{id}")).await;
    assert!(view["Event"]["Attribute"].as_array().expect("a").iter().all(|a| a.get("warnings").is_none()), "no list enabled yet");

    toggle(&stack, json!({"name": PUBLIC_DNS, "enabled": true})).await;
    let (_, view) = stack.get(&format!("/events/view/{id}")).await;
    let attributes = view["Event"]["Attribute"].as_array().expect("attributes");
    let warned: Vec<&str> = attributes.iter().filter(|a| a.get("warnings").is_some()).filter_map(|a| a["value"].as_str()).collect();
    assert_eq!(warned, ["8.8.8.8"], "only IDS attributes are checked (MISP.warning_for_all off)");
    assert_eq!(attributes[0]["warnings"][0]["warninglist_name"], "List of known IPv4 public DNS resolvers");
    assert!(view["Event"]["warnings"].is_object());

    let (_, enforced) = stack.post_as(&key, "/events/restSearch", &json!({"eventid": id, "enforceWarninglist": 1})).await;
    let kept: Vec<&str> = enforced["response"][0]["Event"]["Attribute"].as_array().expect("a").iter().filter_map(|a| a["value"].as_str()).collect();
    assert_eq!(kept, ["1.1.1.1", "198.51.100.8"]);
    let (_, attrs) = stack.post_as(&key, "/attributes/restSearch", &json!({"eventid": id, "enforceWarninglist": true})).await;
    assert_eq!(attrs["response"]["Attribute"].as_array().map(Vec::len), Some(2));

    // Adding with enforceWarninglist is refused for a listed value, alone or in a list.
    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&key, &format!("/attributes/add/{id}"), &json!({"type": "ip-src", "value": "8.8.4.4", "enforceWarninglist": true})).await;
    assert_eq!(status, 403, "{r}");
    assert!(r["errors"].as_str().is_some_and(|m| m.contains("trips over a warninglist and enforceWarninglist is enforced")), "{r}");
    assert_eq!(stack.head_position().await, head);
    let (status, r) = stack
        .post_as(&key, &format!("/attributes/add/{id}"), &json!([
            {"type": "ip-src", "value": "8.8.4.4", "enforceWarninglist": true},
            {"type": "ip-src", "value": "203.0.113.50", "enforceWarninglist": true}]))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["errors"]["attribute_0"].as_str().is_some_and(|m| m.contains("trips over a warninglist")), "{r}");
    assert_eq!(r["Attribute"][0]["value"], "203.0.113.50", "the other one is saved: {r}");
    stack.stop().await;
}
