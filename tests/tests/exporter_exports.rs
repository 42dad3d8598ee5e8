//! Cached exports and the MISP feed: files equal restSearch as their view, byte for byte; they follow
//! the view's data; bad requests are refused with MISP-shaped JSON and write nothing to the log.

use cairn_tests::feeds::exports_fresh;
use cairn_tests::stack::Stack;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn text(stack: &Stack, key: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
    let mut r = stack.request(method, path, key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn download(stack: &Stack, key: &str, export: &str) -> String {
    let (status, body) = text(stack, key, reqwest::Method::GET, &format!("/events/downloadExport/{export}"), None).await;
    assert_eq!(status, 200, "{export}: {body}");
    body
}

async fn search(stack: &Stack, key: &str, path: &str, body: Value) -> String {
    let (status, body) = text(stack, key, reqwest::Method::POST, path, Some(body)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn event(stack: &Stack, key: &str, distribution: u8, values: &[&str], publish: bool) -> (String, String) {
    let attributes: Vec<Value> = values.iter().map(|v| json!({"type": "ip-dst", "value": v, "to_ids": true})).collect();
    let (status, e) = stack
        .post_as(key, "/events/add", &json!({"info": "export test", "distribution": distribution, "Attribute": attributes, "Tag": [{"name": "tlp:clear"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    if publish {
        let (status, r) = stack.post_as(key, &format!("/events/publish/{id}"), &json!({})).await;
        assert_eq!(status, 200, "{r}");
    }
    (id, e["Event"]["uuid"].as_str().expect("uuid").to_string())
}

#[tokio::test]
async fn cached_exports_are_restsearch_as_their_view_and_follow_its_data() {
    let stack = Stack::start().await;
    let (_, a) = stack.org_user("Export A", "pub@a.export", 4).await;
    let (_, b) = stack.org_user("Export B", "pub@b.export", 4).await;
    event(&stack, &a, 0, &["192.0.2.1", "192.0.2.2"], true).await;
    event(&stack, &b, 1, &["192.0.2.3"], true).await;
    event(&stack, &b, 0, &["192.0.2.4"], false).await;

    let list = exports_fresh(&stack, &a).await;
    let types: BTreeSet<&str> = list.as_array().expect("list").iter().filter_map(|e| e["type"].as_str()).collect();
    for t in ["json", "csv_sig", "csv_all", "suricata", "snort", "bro", "rpz", "stix2", "hashes"] {
        assert!(types.contains(t), "{t} listed: {list}");
    }
    let pairs = [
        ("csv_all", "/attributes/restSearch", json!({"returnFormat": "csv"})),
        ("csv_sig", "/attributes/restSearch", json!({"returnFormat": "csv", "published": true, "to_ids": true})),
        ("json", "/events/restSearch", json!({"returnFormat": "json"})),
        ("rpz", "/attributes/restSearch", json!({"returnFormat": "rpz"})),
        ("hashes", "/attributes/restSearch", json!({"returnFormat": "hashes"})),
    ];
    for (export, path, body) in &pairs {
        assert_eq!(download(&stack, &a, export).await, search(&stack, &a, path, body.clone()).await, "{export} equals restSearch as A");
    }
    let csv = download(&stack, &a, "csv_all").await;
    assert!(csv.contains("192.0.2.1") && csv.contains("192.0.2.3"));
    assert!(!csv.contains("192.0.2.4"), "B's own Event is not in A's view");
    exports_fresh(&stack, &stack.admin_key).await;
    let admin_csv = download(&stack, &stack.admin_key, "csv_all").await;
    assert!(admin_csv.contains("192.0.2.4"), "the site admins' view has everything");

    // A's view changes: B shares a new Event with the community.
    event(&stack, &b, 1, &["192.0.2.5"], true).await;
    exports_fresh(&stack, &a).await;
    let csv = download(&stack, &a, "csv_all").await;
    assert!(csv.contains("192.0.2.5"), "regenerated after the view's data changed");
    for (export, path, body) in &pairs {
        assert_eq!(download(&stack, &a, export).await, search(&stack, &a, path, body.clone()).await, "{export} still equals restSearch");
    }

    // text is per attribute type, generated once asked for.
    let (status, queued) = text(&stack, &a, reqwest::Method::GET, "/events/downloadExport/text/ip-dst", None).await;
    assert_eq!(status, 404, "{queued}");
    assert!(queued.contains("queued"), "{queued}");
    exports_fresh(&stack, &a).await;
    assert_eq!(
        download(&stack, &a, "text/ip-dst").await,
        search(&stack, &a, "/attributes/restSearch", json!({"returnFormat": "text", "type": "ip-dst"})).await
    );
    stack.stop().await;
}

#[tokio::test]
async fn bad_export_requests_are_refused_and_write_nothing() {
    let stack = Stack::start().await;
    let (_, a) = stack.org_user("Export R", "pub@r.export", 4).await;
    let head = stack.head_position().await;
    for (path, status) in [
        ("/events/downloadExport/nonsense", 404),
        ("/events/downloadExport/text", 404),
        ("/events/downloadExport/text/not-a-type", 400),
        ("/feeds/public/not-a-file", 404),
        ("/feeds/other/manifest.json", 404),
        (&format!("/feeds/public/{}.json", uuid::Uuid::new_v4()), 404),
    ] {
        let (got, body) = text(&stack, &a, reqwest::Method::GET, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: JSON error body, got {body}"));
        assert!(v["message"].is_string() && v["name"].is_string(), "{path}: MISP-shaped error {v}");
    }
    let (got, body) = text(&stack, &a, reqwest::Method::POST, "/jobs/cache/nonsense", Some(json!({}))).await;
    assert_eq!(got, 404, "{body}");
    let (got, _) = text(&stack, "not a key", reqwest::Method::GET, "/feeds/public/manifest.json", None).await;
    assert_eq!(got, 403, "the feed needs an API key");
    assert_eq!(stack.head_position().await, head, "refusals write nothing to the log");
    stack.stop().await;
}

#[tokio::test]
async fn the_misp_feed_holds_published_all_communities_events_in_feed_format() {
    let stack = Stack::start().await;
    let (_, a) = stack.org_user("Feed Maker", "pub@m.export", 4).await;
    let (public_id, public_uuid) = event(&stack, &a, 3, &["198.18.0.1", "198.18.0.2"], true).await;
    let (_, community_uuid) = event(&stack, &a, 1, &["198.18.0.3"], true).await;
    let (_, draft_uuid) = event(&stack, &a, 3, &["198.18.0.4"], false).await;
    let ok = cairn_tests::eventually(std::time::Duration::from_secs(30), || async {
        let (_, m) = stack.get("/feeds/public/manifest.json").await;
        m.get(&public_uuid).is_some()
    })
    .await;
    assert!(ok, "the public Event reaches the feed");
    let (status, manifest) = stack.get("/feeds/public/manifest.json").await;
    assert_eq!(status, 200);
    let keys: BTreeSet<&String> = manifest.as_object().expect("manifest").keys().collect();
    assert_eq!(keys, BTreeSet::from([&public_uuid]), "only published all-communities Events ({community_uuid}, {draft_uuid} stay out)");
    let entry = &manifest[&public_uuid];
    assert_eq!(entry["Orgc"]["name"], "Feed Maker");
    assert_eq!(entry["info"], "export test");
    assert!(entry["timestamp"].is_string(), "MISP typing: {entry}");
    let (status, doc) = stack.get(&format!("/feeds/public/{public_uuid}.json")).await;
    assert_eq!(status, 200);
    let e = &doc["Event"];
    assert!(e.get("id").is_none() && e.get("org_id").is_none(), "feed fields only: {e}");
    let values: BTreeSet<&str> = e["Attribute"].as_array().expect("attributes").iter().filter_map(|a| a["value"].as_str()).collect();
    assert_eq!(values, BTreeSet::from(["198.18.0.1", "198.18.0.2"]));
    // The same attributes as restSearch shows any other organisation.
    let (_, other) = stack.org_user("Feed Reader", "r@m.export", 3).await;
    let (_, r) = stack.post_as(&other, "/events/restSearch", &json!({"eventid": public_id})).await;
    let seen: BTreeSet<&str> = r["response"][0]["Event"]["Attribute"].as_array().expect("attrs").iter().filter_map(|a| a["value"].as_str()).collect();
    assert_eq!(values, seen);
    let (status, hashes) = text(&stack, &stack.admin_key, reqwest::Method::GET, "/feeds/public/hashes.csv", None).await;
    assert_eq!(status, 200);
    let expected: BTreeSet<String> = ["198.18.0.1", "198.18.0.2"].iter().map(|v| format!("{},{public_uuid}", hex::encode(Md5::digest(v.as_bytes())))).collect();
    assert_eq!(hashes.lines().map(str::to_string).collect::<BTreeSet<_>>(), expected);
    // Unpublishing takes it out of the feed.
    let (status, r) = stack.post_as(&a, &format!("/events/unpublish/{public_id}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let gone = cairn_tests::eventually(std::time::Duration::from_secs(30), || async {
        let (status, _) = stack.get(&format!("/feeds/public/{public_uuid}.json")).await;
        status == 404
    })
    .await;
    assert!(gone, "an unpublished Event leaves the feed");
    stack.stop().await;
}

