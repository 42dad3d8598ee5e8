//! Enrichment refusals that need no module server: not configured, disabled, unreachable. Each is a
//! JSON error in MISP's shape and writes nothing. (The real misp-modules runs in the PyMISP suite:
//! tests/pymisp/test_enrichment.py.)

use cairn_tests::stack::Stack;
use serde_json::json;

#[tokio::test]
async fn enrichment_without_a_reachable_module_server_is_refused_and_writes_nothing() {
    let stack = Stack::start().await;
    let (status, e) = stack.post("/events/add", &json!({"info": "exercise 1", "distribution": 0, "Attribute": [{"type": "hostname", "value": "download.microsoft.com"}]})).await;
    assert_eq!(status, 200, "{e}");
    let attribute = e["Event"]["Attribute"][0]["id"].as_str().expect("id").to_string();
    let event = e["Event"]["id"].as_str().expect("id").to_string();

    // No server configured: 400 naming the settings.
    let head = stack.head_position().await;
    let (status, r) = stack.post(&format!("/attributes/enrich/{attribute}"), &json!({"dns": true})).await;
    assert_eq!(status, 400, "{r}");
    assert!(r["message"].as_str().is_some_and(|m| m.contains("Plugin.Enrichment_services_url")), "{r}");
    assert_eq!(stack.head_position().await, head);

    // A server that is not there: 502 with the address, for every route that calls it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (status, _) = stack.post("/servers/serverSettingsEdit/Plugin.Enrichment_services_url", &json!({"value": "http://127.0.0.1"})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post("/servers/serverSettingsEdit/Plugin.Enrichment_services_port", &json!({"value": closed})).await;
    assert_eq!(status, 200);
    let head = stack.head_position().await;
    for (path, body) in [
        (format!("/attributes/enrich/{attribute}"), json!({"dns": true})),
        (format!("/events/enrichEvent/{event}"), json!({"dns": true})),
        (format!("/events/queryEnrichment/{attribute}/dns"), json!({})),
        (format!("/attributes/hoverEnrichment/{attribute}"), json!({})),
        ("/modules/index".to_string(), json!({})),
    ] {
        let (status, r) = stack.post(&path, &body).await;
        assert_eq!(status, 502, "{path}: {r}");
        assert!(r["message"].as_str().is_some_and(|m| m.contains(&format!("127.0.0.1:{closed}"))), "{path}: {r}");
    }
    assert_eq!(stack.head_position().await, head, "failed enrichments write nothing");

    // Disabled: 400; an invisible attribute: 404 (before any module is asked).
    let (status, _) = stack.post("/servers/serverSettingsEdit/Plugin.Enrichment_services_enable", &json!({"value": false})).await;
    assert_eq!(status, 200);
    let head = stack.head_position().await;
    let (status, r) = stack.post(&format!("/attributes/enrich/{attribute}"), &json!({"dns": true})).await;
    assert_eq!(status, 400, "{r}");
    assert!(r["message"].as_str().is_some_and(|m| m.contains("disabled")), "{r}");
    assert_eq!(stack.head_position().await, head);
    let (_, other) = stack.org_user("CERT-Other", "other@o.test", 3).await;
    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&other, &format!("/attributes/enrich/{attribute}"), &json!({"dns": true})).await;
    assert_eq!(status, 404, "an org-only Event's attribute does not exist for another org: {r}");
    // Saving results needs content and the right to modify the Event.
    let (status, r) = stack.post(&format!("/events/handleModuleResults/{event}"), &json!({"Attribute": []})).await;
    assert_eq!(status, 403, "{r}");
    assert_eq!(stack.head_position().await, head);
    stack.stop().await;
}

#[tokio::test]
async fn reviewed_module_results_are_added_in_one_commit_and_cannot_rewrite_existing_attributes() {
    let stack = Stack::start().await;
    let (_, e) = stack.post("/events/add", &json!({"info": "review", "Attribute": [{"type": "hostname", "value": "download.microsoft.com"}]})).await;
    let event = e["Event"]["id"].as_str().expect("id").to_string();
    let existing = e["Event"]["Attribute"][0].clone();
    // A preview as queryEnrichment answers it: the queried attribute echoed back (changed, with its
    // uuid and id), a new attribute and a dns-record object referring to the hostname.
    let results = json!({"results": {
        "Attribute": [
            {"uuid": existing["uuid"], "id": existing["id"], "type": "hostname", "value": "evil.example.test"},
            {"uuid": "5b5d4f5c-0000-4000-8000-00000000a001", "id": existing["id"], "type": "ip-dst", "value": "203.0.113.9", "timestamp": "1"}],
        "Object": [{"uuid": "5b5d4f5c-0000-4000-8000-00000000b001", "name": "dns-record", "meta-category": "network",
            "template_uuid": "f023c8f0-81ab-41f3-9f5d-fa597a34a9b9", "template_version": "2",
            "Attribute": [{"uuid": "5b5d4f5c-0000-4000-8000-00000000a002", "type": "domain", "object_relation": "queried-domain", "value": "download.microsoft.com"},
                          {"uuid": "5b5d4f5c-0000-4000-8000-00000000a003", "type": "ip-dst", "object_relation": "a-record", "value": "203.0.113.10"}],
            "ObjectReference": [{"uuid": "5b5d4f5c-0000-4000-8000-00000000c001", "referenced_uuid": existing["uuid"], "relationship_type": "related-to"}]}]}});
    let (status, r) = stack.post(&format!("/events/handleModuleResults/{event}"), &results).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["attributes_added"].clone(), r["objects_added"].clone()), (json!(1), json!(1)), "{r}");
    let (_, view) = stack.post(&format!("/events/view/{event}"), &json!({})).await;
    let attributes = view["Event"]["Attribute"].as_array().expect("attributes");
    assert_eq!(attributes.len(), 2, "{view}");
    let hostname = attributes.iter().find(|a| a["uuid"] == existing["uuid"]).expect("hostname");
    assert_eq!(hostname["value"], "download.microsoft.com", "module results never rewrite an existing attribute");
    assert_eq!(view["Event"]["Object"][0]["ObjectReference"][0]["referenced_uuid"], existing["uuid"], "{view}");
    stack.stop().await;
}
