//! Events, attributes and objects over the API: refusals are MISP-shaped and write nothing.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

fn event(distribution: u8) -> Value {
    json!({"info": "training exercise 1", "distribution": distribution, "threat_level_id": 3, "analysis": 0,
           "Attribute": [{"type": "ip-dst", "value": "198.51.100.7", "comment": "C2"}],
           "Tag": [{"name": "tlp:green"}]})
}

#[tokio::test]
async fn an_event_is_created_viewed_and_listed_with_misp_typing() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-A", "analyst@a.test", 3).await;
    let (status, created) = stack.post_as(&key, "/events/add", &event(1)).await;
    assert_eq!(status, 200, "{created}");
    let e = &created["Event"];
    assert_eq!(e["info"], "training exercise 1");
    assert_eq!(e["distribution"], "1");
    assert_eq!(e["published"], json!(false));
    assert_eq!(e["Attribute"][0]["type"], "ip-dst");
    assert_eq!(e["Attribute"][0]["category"], "Network activity", "default category from describeTypes");
    assert_eq!(e["Attribute"][0]["to_ids"], json!(true));
    assert_eq!(e["Attribute"][0]["distribution"], "5", "MISP.default_attribute_distribution");
    assert_eq!(e["Tag"][0]["name"], "tlp:green", "taxonomy tags of the enabled tlp taxonomy are usable");
    assert_eq!(e["Orgc"]["name"], "CERT-A");
    let id = e["id"].as_str().expect("id");
    let (status, viewed) = stack.get(&format!("/events/view/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(viewed["Event"]["uuid"], e["uuid"]);
    let r = stack.request(reqwest::Method::GET, "/events/index", &key).send().await.expect("index");
    assert_eq!(r.headers()["X-Result-Count"], "1");
    let list: Value = r.json().await.expect("json");
    assert_eq!(list[0]["info"], "training exercise 1");
    assert_eq!(list[0]["EventTag"][0]["Tag"]["name"], "tlp:green");
    stack.stop().await;
}

#[tokio::test]
async fn invalid_input_is_refused_with_the_field_and_writes_nothing() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-B", "b@b.test", 3).await;
    let (_, created) = stack.post_as(&key, "/events/add", &event(0)).await;
    let id = created["Event"]["id"].as_str().expect("id").to_string();
    let head = stack.head_position().await;
    let cases = [
        (json!({"type": "not-a-type", "value": "x"}), "type"),
        (json!({"type": "md5", "value": "not a hash"}), "value"),
        (json!({"type": "ip-dst", "value": "300.1.1.1"}), "value"),
        (json!({"type": "md5", "category": "Network activity", "value": "d41d8cd98f00b204e9800998ecf8427e"}), "category"),
        (json!({"type": "text", "value": "a\u{0}b"}), "value"),
        (json!({"type": "ip-dst"}), "value"),
    ];
    for (attribute, field) in cases {
        let (status, body) = stack.post_as(&key, &format!("/attributes/add/{id}"), &attribute).await;
        assert_eq!(status, 403, "{attribute} → {body}");
        assert_eq!(body["saved"], json!(false), "{body}");
        assert!(body["errors"].get(field).is_some(), "{attribute}: error names {field}: {body}");
    }
    // A whole Event with one invalid attribute is refused as a whole.
    let mut bad = event(0);
    bad["Attribute"] = json!([{"type": "ip-dst", "value": "1.2.3.4"}, {"type": "sha256", "value": "xyz"}]);
    let (status, body) = stack.post_as(&key, "/events/add", &bad).await;
    assert_eq!(status, 403, "{body}");
    // Malformed JSON and wrong shapes.
    let r = stack.request(reqwest::Method::POST, &format!("/attributes/add/{id}"), &key).body("{").send().await.expect("post");
    assert_eq!(r.status(), 400);
    let (status, _) = stack.post_as(&key, "/events/add", &json!({"info": "x", "uuid": "not-a-uuid"})).await;
    assert_eq!(status, 403);
    let (status, _) = stack.post_as(&key, "/events/add", &json!({"info": "x", "distribution": 9})).await;
    assert_eq!(status, 403);
    let (status, _) = stack.post_as(&key, "/events/add", &json!({"info": ""})).await;
    assert_eq!(status, 403);
    assert_eq!(stack.head_position().await, head, "the log head did not move");
    stack.stop().await;
}

#[tokio::test]
async fn unknown_and_invisible_events_look_the_same_and_edits_by_others_are_refused() {
    let stack = Stack::start().await;
    let (_, owner) = stack.org_user("Owner Org", "owner@o.test", 3).await;
    let (_, other) = stack.org_user("Other Org", "other@x.test", 3).await;
    let (_, private) = stack.post_as(&owner, "/events/add", &event(0)).await;
    let (_, shared) = stack.post_as(&owner, "/events/add", &event(1)).await;
    let private_id = private["Event"]["id"].as_str().expect("id").to_string();
    let shared_id = shared["Event"]["id"].as_str().expect("id").to_string();
    let head = stack.head_position().await;

    let (s1, missing) = stack.post_as(&other, "/events/view/999999", &json!({})).await;
    let (s2, hidden) = stack.post_as(&other, &format!("/events/view/{private_id}"), &json!({})).await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(missing["message"], hidden["message"], "no existence leak");
    let r = stack.request(reqwest::Method::HEAD, &format!("/events/view/{private_id}"), &other).send().await.expect("head");
    assert_eq!(r.status(), 404);
    let hidden_attribute = private["Event"]["Attribute"][0]["id"].as_str().expect("attr").to_string();
    let (s, body) = stack.post_as(&other, &format!("/attributes/view/{hidden_attribute}"), &json!({})).await;
    assert_eq!(s, 404);
    assert!(body["message"].is_string() && body["url"].is_string(), "MISP-shaped: {body}");
    // Its uuid in restSearch finds nothing, and no count reveals it.
    let private_uuid = private["Event"]["uuid"].as_str().expect("uuid");
    for (path, body) in [
        ("/events/restSearch", json!({"returnFormat": "json", "uuid": private_uuid})),
        ("/attributes/restSearch", json!({"returnFormat": "json", "uuid": private["Event"]["Attribute"][0]["uuid"]})),
        ("/events/restSearch", json!({"returnFormat": "json", "eventid": private_id})),
    ] {
        let r = stack.request(reqwest::Method::POST, path, &other).json(&body).send().await.expect("search");
        assert_eq!(r.headers()["X-Result-Count"], "0", "{path} {body}");
        let found: Value = r.json().await.expect("json");
        let n = found["response"].as_array().map(Vec::len).or_else(|| found["response"]["Attribute"].as_array().map(Vec::len));
        assert_eq!(n, Some(0), "{path}: {found}");
    }
    let r = stack.request(reqwest::Method::GET, "/events/index", &other).send().await.expect("index");
    assert_eq!(r.headers()["X-Result-Count"], "1", "only the shared Event is counted");

    // Visible but not theirs: attribute writes answer the message that makes PyMISP propose instead.
    let (s, body) = stack.post_as(&other, &format!("/attributes/add/{shared_id}"), &json!({"type": "comment", "value": "x"})).await;
    assert_eq!(s, 403);
    assert_eq!(body["message"], "You do not have permission to do that.");
    let attribute = shared["Event"]["Attribute"][0]["id"].as_str().expect("attr").to_string();
    let (s, body) = stack.post_as(&other, &format!("/attributes/edit/{attribute}"), &json!({"to_ids": false})).await;
    assert_eq!((s, body["message"].clone()), (403, json!("You do not have permission to do that.")));
    let (s, _) = stack.post_as(&other, &format!("/events/edit/{shared_id}"), &json!({"info": "hijacked"})).await;
    assert_eq!(s, 403);
    let (s, _) = stack.post_as(&other, &format!("/events/delete/{shared_id}"), &json!({})).await;
    assert_eq!(s, 403);
    let (s, _) = stack.post_as(&other, &format!("/events/edit/{private_id}"), &json!({"info": "hijacked"})).await;
    assert_eq!(s, 404, "an invisible Event cannot be edited and does not leak");
    // A read-only user cannot add Events.
    let (_, read_only) = stack.org_user("RO Org", "ro@ro.test", 6).await;
    let head_after_setup = stack.head_position().await;
    let (s, body) = stack.post_as(&read_only, "/events/add", &event(1)).await;
    assert_eq!((s, body["message"].clone()), (403, json!("You do not have permission to use this functionality.")));
    assert_eq!(stack.head_position().await, head_after_setup);
    assert!(head_after_setup > head);
    stack.stop().await;
}

#[tokio::test]
async fn every_change_records_actor_org_and_command_and_history_lists_them() {
    let stack = Stack::start().await;
    let (org_id, key) = stack.org_user("History Org", "h@h.test", 3).await;
    let (_, created) = stack.post_as(&key, "/events/add", &event(1)).await;
    let id = created["Event"]["id"].as_str().expect("id").to_string();
    let uuid = created["Event"]["uuid"].as_str().expect("uuid").to_string();
    stack.post_as(&key, &format!("/attributes/add/{id}"), &json!({"type": "domain", "value": "Evil.Example"})).await;
    stack.post_as(&key, &format!("/events/edit/{id}"), &json!({"info": "renamed"})).await;
    let out = std::process::Command::new(cairn_tests::bins::path("cairnctl"))
        .args(["history", &uuid])
        .env("CAIRN_DATABASE_URL", &stack.db.url)
        .output()
        .expect("cairnctl history");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let types: Vec<&str> = lines.iter().map(|l| l["change_type"].as_str().expect("type")).collect();
    assert_eq!(types[0], "event.created");
    assert!(types.contains(&"attribute.added"));
    assert!(types.contains(&"event.updated"));
    for l in &lines {
        assert_eq!(l["actor"]["email"], "h@h.test");
        assert_eq!(l["actor"]["org_id"].as_i64().map(|v| v.to_string()), Some(org_id.clone()));
        assert!(l["command_id"].is_string());
        assert!(l["command"].as_str().expect("command").starts_with("events.") || l["command"].as_str().expect("command").starts_with("attributes."));
    }
    let versions: Vec<i64> = lines.iter().map(|l| l["stream_version"].as_i64().expect("v")).collect();
    assert_eq!(versions, (1..=lines.len() as i64).collect::<Vec<_>>(), "in order");
    stack.stop().await;
}

#[tokio::test]
async fn import_regexps_rewrite_or_block_values_before_validation() {
    let stack = Stack::start().await;
    let (status, r) = stack
        .post("/admin/regexp/add", &json!({"regexp": r"/C:\\Users\\(.*?)\\/i", "replacement": r"%UserProfile%\\", "type": "ALL"}))
        .await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = stack.post("/admin/regexp/add", &json!({"regexp": "/^192\\.0\\.2\\./", "replacement": "", "type": "ip-dst"})).await;
    assert_eq!(status, 200);
    let (status, bad) = stack.post("/admin/regexp/add", &json!({"regexp": r"/(a)\1/", "replacement": "x"})).await;
    assert_eq!(status, 403, "back-references cannot run in linear time: {bad}");
    let (_, created) = stack.post("/events/add", &json!({"info": "regexp test", "distribution": 0})).await;
    let id = created["Event"]["id"].as_str().expect("id").to_string();
    let (status, a) = stack.post(&format!("/attributes/add/{id}"), &json!({"type": "filename", "value": r"C:\Users\dropped\file.txt"})).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["Attribute"]["value"], r"%UserProfile%\file.txt");
    let head = stack.head_position().await;
    let (status, blocked) = stack.post(&format!("/attributes/add/{id}"), &json!({"type": "ip-dst", "value": "192.0.2.55"})).await;
    assert_eq!(status, 403, "{blocked}");
    assert_eq!(stack.head_position().await, head, "a blocked value writes nothing");
    let (status, list) = stack.get("/admin/regexp/index").await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(2)));
    stack.stop().await;
}

#[tokio::test]
async fn ids_increase_in_the_order_things_are_added() {
    // Ids are drawn in blocks; a request needing more than the spare ids must still get ids above
    // every id handed out before it, and the next request ids above those (MISP lists by id).
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-I", "i@i.test", 3).await;
    let (_, created) = stack.post_as(&key, "/events/add", &event(0)).await;
    let event_id = created["Event"]["id"].as_str().expect("id").to_string();
    let mut last: i64 = created["Event"]["Attribute"][0]["id"].as_str().expect("id").parse().expect("int");
    for (round, batch) in [50usize, 1, 3, 70, 1].into_iter().enumerate() {
        let attributes: Vec<Value> =
            (0..batch).map(|i| json!({"type": "text", "value": format!("round {round} item {i}")})).collect();
        let (status, body) = stack.post_as(&key, &format!("/attributes/add/{event_id}"), &json!(attributes)).await;
        assert_eq!(status, 200, "{body}");
        let added: Vec<Value> = if batch == 1 { vec![body["Attribute"].clone()] } else { body["Attribute"].as_array().expect("list").clone() };
        assert_eq!(added.len(), batch, "{body}");
        for a in added {
            let id: i64 = a["id"].as_str().expect("id").parse().expect("int");
            assert!(id > last, "attribute id {id} after {last}");
            last = id;
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_attribute_count_follows_adds_deletes_and_restores() {
    let stack = Stack::start().await;
    let (_, key) = stack.org_user("CERT-N", "n@n.test", 3).await;
    let (_, created) = stack.post_as(&key, "/events/add", &event(0)).await;
    let id = created["Event"]["id"].as_str().expect("id").to_string();
    let count = || async {
        let (_, list) = stack.post_as(&key, "/events/index", &json!({"eventid": id})).await;
        list[0]["attribute_count"].as_str().expect("attribute_count").parse::<i64>().expect("int")
    };
    assert_eq!(count().await, 1);
    let mut ids = Vec::new();
    for v in ["192.0.2.10", "192.0.2.11", "192.0.2.12"] {
        let (status, a) = stack.post_as(&key, &format!("/attributes/add/{id}"), &json!({"type": "ip-dst", "value": v})).await;
        assert_eq!(status, 200, "{a}");
        ids.push(a["Attribute"]["id"].as_str().expect("id").to_string());
    }
    let (status, a) = stack.post_as(&key, &format!("/attributes/add/{id}"), &json!([{"type": "ip-dst", "value": "192.0.2.20"}, {"type": "ip-dst", "value": "192.0.2.21"}])).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(count().await, 6);
    let (status, r) = stack.post_as(&key, &format!("/attributes/delete/{}", ids[0]), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(count().await, 5, "a soft-deleted attribute no longer counts");
    let (status, r) = stack.post_as(&key, &format!("/attributes/restore/{}", ids[0]), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let (status, o) = stack
        .post_as(&key, &format!("/objects/add/{id}"), &json!({"name": "domain-ip", "Attribute": [{"object_relation": "domain", "type": "domain", "value": "count.example"}]}))
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(count().await, 7, "object attributes count too");
    let client = stack.db.pool.get().await.expect("pool");
    let recount: i64 = client
        .query_one("SELECT count(*) FROM rm.attributes WHERE event_id = $1::text::bigint AND NOT deleted", &[&id])
        .await
        .expect("q")
        .get(0);
    assert_eq!(recount, 7);
    stack.stop().await;
}
