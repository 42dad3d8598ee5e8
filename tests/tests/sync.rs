//! Connected communities (the training's "Distribution and Topology"): Cairn instances on loopback,
//! each with its own database and nats-server, pulling from each other by log position.
//!
//! - A–B–C chain (B pulls from A, C pulls from B): "Connected communities" reaches B downgraded to
//!   "This community only" and stops there; "All communities" reaches C; organisation-only Events and
//!   sharing groups that do not include B never reach B; a sharing group that lists server B does.
//! - Deleting an attribute and removing a tag on A removes them on B and C; a withdrawn Event (its
//!   distribution narrowed) disappears from B.
//! - A second pull with nothing new transfers no Event bodies.
//! - A consumer killed mid-run and restarted leaves no Event missing and no change twice.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};
use std::time::Duration;

/// The host organisation of `stack` (uuid, name).
async fn host_org(stack: &Stack) -> (String, String) {
    let (status, me) = stack.get("/users/view/me").await;
    assert_eq!(status, 200, "{me}");
    (me["Organisation"]["uuid"].as_str().expect("uuid").into(), me["Organisation"]["name"].as_str().expect("name").into())
}

/// On `stack`, the local record of an organisation known by uuid (created when missing); its id.
async fn org_record(stack: &Stack, uuid: &str, name: &str) -> String {
    let (status, found) = stack.get(&format!("/organisations/view/{uuid}")).await;
    if status == 200 {
        return found["Organisation"]["id"].as_str().expect("id").into();
    }
    // Every fresh instance's host organisation has the same name: tell them apart.
    let name = format!("{name} {}", &uuid[..8]);
    let (status, o) = stack.post("/admin/organisations/add", &json!({"name": name, "uuid": uuid, "local": false})).await;
    assert_eq!(status, 200, "{o}");
    o["Organisation"]["id"].as_str().expect("id").into()
}

/// `to` learns of `from`: a sync user for `to`'s organisation on `from`, and a server on `to` with
/// that user's key (`pull` as asked). Returns the server's id on `to`.
async fn connect(from: &Stack, to: &Stack, pull: bool) -> String {
    let (to_uuid, to_name) = host_org(to).await;
    let (from_uuid, from_name) = host_org(from).await;
    let sync_org = org_record(from, &to_uuid, &to_name).await;
    let (_, key) = from.user_in(&sync_org, &format!("sync-{}@peer.test", &to_uuid[..8]), json!(5)).await;
    let remote = org_record(to, &from_uuid, &from_name).await;
    let (status, s) = to
        .post("/servers/add", &json!({"Server": {"name": "peer", "url": from.base, "authkey": key, "remote_org_id": remote, "pull": pull, "push": false}}))
        .await;
    assert_eq!(status, 200, "{s}");
    s["Server"]["id"].as_str().expect("server id").into()
}

async fn pull(stack: &Stack, server: &str) -> Value {
    let (status, r) = stack.post(&format!("/servers/pull/{server}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    r["report"].clone()
}

/// A published Event with two attributes and the tag `tlp:green`; its uuid.
async fn published_event(stack: &Stack, info: &str, distribution: u8, sharing_group: Option<&str>) -> String {
    let mut event = json!({"info": info, "distribution": distribution, "published": true, "Tag": [{"name": "tlp:green"}],
        "Attribute": [{"type": "ip-dst", "value": format!("198.51.100.{}", info.len()), "to_ids": true},
                      {"type": "domain", "value": format!("{}.example.org", info.replace(' ', "-"))}]});
    if let Some(sg) = sharing_group {
        event["sharing_group_id"] = json!(sg);
    }
    let (status, e) = stack.post("/events/add", &json!({"Event": event})).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["Event"]["published"], true, "{e}");
    e["Event"]["uuid"].as_str().expect("uuid").into()
}

/// The Event as the site admin of `stack` sees it, if it exists there.
async fn view(stack: &Stack, uuid: &str) -> Option<Value> {
    let (status, e) = stack.get(&format!("/events/view/{uuid}")).await;
    (status == 200).then(|| e["Event"].clone())
}

fn values(event: &Value) -> Vec<String> {
    let mut v: Vec<String> = event["Attribute"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["deleted"] != true)
        .filter_map(|a| a["value"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

fn tags(event: &Value) -> Vec<String> {
    event["Tag"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn a_chain_of_three_instances_shares_by_distribution_and_propagates_removals() {
    let (a, b, c) = (Stack::start().await, Stack::start().await, Stack::start().await);
    let b_from_a = connect(&a, &b, true).await;
    let c_from_b = connect(&b, &c, true).await;
    // A knows B as a server too (so a sharing group on A can list it).
    let a_knows_b = connect(&b, &a, false).await;

    let connected = published_event(&a, "connected communities", 2, None).await;
    let all = published_event(&a, "all communities", 3, None).await;
    let org_only = published_event(&a, "organisation only", 0, None).await;
    let (status, sg) = a.post("/sharing_groups/add", &json!({"name": "A alone", "releasability": "A"})).await;
    assert_eq!(status, 200, "{sg}");
    let sg_not_b = published_event(&a, "group without B", 4, Some(sg["SharingGroup"]["id"].as_str().expect("sg id"))).await;
    let (status, sg) = a
        .post("/sharing_groups/add", &json!({"name": "A and server B", "releasability": "A+B",
            "SharingGroupServer": [{"server_id": a_knows_b, "all_orgs": true}]}))
        .await;
    assert_eq!(status, 200, "{sg}");
    let sg_with_b = published_event(&a, "group with server B", 4, Some(sg["SharingGroup"]["id"].as_str().expect("sg id"))).await;
    let unpublished = {
        let (status, e) = a.post("/events/add", &json!({"Event": {"info": "draft", "distribution": 3, "Attribute": [{"type": "ip-dst", "value": "203.0.113.9"}]}})).await;
        assert_eq!(status, 200, "{e}");
        e["Event"]["uuid"].as_str().expect("uuid").to_string()
    };

    let report = pull(&b, &b_from_a).await;
    assert_eq!(report["offered"], 3, "connected, all and the group with B: {report}");
    pull(&c, &c_from_b).await;

    let on_b = view(&b, &connected).await.expect("distribution 2 reaches B");
    assert_eq!(on_b["distribution"], "1", "downgraded to this community only: {on_b}");
    assert_eq!(on_b["locked"], true);
    assert_eq!(on_b["Orgc"]["uuid"].as_str(), Some(host_org(&a).await.0.as_str()), "the creator organisation travels");
    assert_eq!(values(&on_b), values(&view(&a, &connected).await.expect("on A")));
    assert_eq!(tags(&on_b), ["tlp:green"]);
    assert!(view(&c, &connected).await.is_none(), "connected communities stops after one hop");
    let on_c = view(&c, &all).await.expect("distribution 3 reaches C");
    assert_eq!(on_c["distribution"], "3");
    assert_eq!(on_c["Orgc"]["uuid"].as_str(), Some(host_org(&a).await.0.as_str()), "C knows who created it");
    for (uuid, what) in [(&org_only, "organisation only"), (&sg_not_b, "a sharing group without B"), (&unpublished, "never published")] {
        assert!(view(&b, uuid).await.is_none(), "{what} reached B");
        assert!(view(&c, uuid).await.is_none(), "{what} reached C");
    }
    let grouped = view(&b, &sg_with_b).await.expect("a sharing group listing server B reaches B");
    assert_eq!(grouped["distribution"], "4");
    assert_eq!(grouped["SharingGroup"]["name"], "A and server B", "{grouped}");
    // Every organisation on B may read it (the group lists B with all its organisations).
    let (_, b_analyst) = b.org_user("Analysts of B", "analyst@b.test", 3).await;
    let (status, _) = b.post_as(&b_analyst, &format!("/events/view/{sg_with_b}"), &json!({})).await;
    assert_eq!(status, 200);
    assert!(view(&c, &sg_with_b).await.is_none(), "the group lists B only");

    // Removals propagate: an attribute deleted and a tag removed on A.
    let on_a = view(&a, &all).await.expect("on A");
    let doomed = on_a["Attribute"][0]["id"].as_str().expect("attribute id").to_string();
    let doomed_value = on_a["Attribute"][0]["value"].as_str().expect("value").to_string();
    let (status, r) = a.post(&format!("/attributes/delete/{doomed}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = a.post("/tags/removeTagFromObject", &json!({"uuid": all, "tag": "tlp:green"})).await;
    assert_eq!(status, 200, "{r}");
    pull(&b, &b_from_a).await;
    pull(&c, &c_from_b).await;
    for (stack, name) in [(&b, "B"), (&c, "C")] {
        let copy = view(stack, &all).await.expect("still shared");
        assert!(!values(&copy).contains(&doomed_value), "the deleted attribute is gone on {name}: {copy}");
        assert_eq!(values(&copy).len(), 1, "{name}: {copy}");
        assert!(tags(&copy).is_empty(), "the removed tag is gone on {name}: {copy}");
    }

    // A withdrawn Event (narrowed to the organisation) leaves B and, through B, C.
    let (status, r) = a.post(&format!("/events/edit/{all}"), &json!({"Event": {"distribution": 0}})).await;
    assert_eq!(status, 200, "{r}");
    let report = pull(&b, &b_from_a).await;
    assert_eq!(report["withdrawn"], 1, "{report}");
    assert!(view(&b, &all).await.is_none(), "withdrawn on B");
    pull(&c, &c_from_b).await;
    assert!(view(&c, &all).await.is_none(), "withdrawn on C");

    // Shared again: it comes back on B and C, as it is now on A.
    let (status, r) = a.post(&format!("/events/edit/{all}"), &json!({"Event": {"distribution": 3, "published": true}})).await;
    assert_eq!(status, 200, "{r}");
    pull(&b, &b_from_a).await;
    pull(&c, &c_from_b).await;
    for (stack, name) in [(&b, "B"), (&c, "C")] {
        let copy = view(stack, &all).await.unwrap_or_else(|| panic!("shared again reaches {name}"));
        assert_eq!(values(&copy), values(&view(&a, &all).await.expect("on A")), "{name}");
    }

    // Nothing new: a second pull reads no Event body and writes nothing.
    pull(&b, &b_from_a).await;
    let head = b.head_position().await;
    let report = pull(&b, &b_from_a).await;
    assert_eq!((report["offered"].as_i64(), report["applied"].as_i64()), (Some(0), Some(0)), "{report}");
    assert_eq!(b.head_position().await, head);

    // Operators see the consumers' progress.
    let metrics = b.http.get(format!("{}/metrics", b.base)).send().await.expect("metrics").text().await.expect("text");
    for name in ["cairn_sync_pages_total{server=", "cairn_sync_position{server=", "cairn_sync_behind{server="] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // Each copy records where it comes from.
    let history = b.history(&connected);
    assert!(history.iter().any(|c| c["change_type"] == "event.synced"), "{history:?}");
    for s in [a, b, c] {
        s.stop().await;
    }
}

/// Counts of `event.created` and `attribute.added` changes in `stack`'s log.
async fn created_counts(stack: &Stack) -> (i64, i64) {
    let client = stack.db.pool.get().await.expect("db");
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE change_type = 'event.created'), count(*) FILTER (WHERE change_type = 'attribute.added') FROM es.changes",
            &[],
        )
        .await
        .expect("counts");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_consumer_killed_mid_run_resumes_without_missing_or_duplicating_anything() {
    let (a, b) = (Stack::start().await, Stack::start().await);
    connect(&a, &b, true).await;
    let mut uuids = Vec::new();
    for i in 0..30 {
        uuids.push(published_event(&a, &format!("bulk event {i}"), 3, None).await);
    }
    let (events_before, attributes_before) = created_counts(&b).await;
    let mut settings = b.settings.clone();
    settings.sync_interval_ms = 100;

    // Run the consumer; kill it as soon as some (not all) Events have arrived.
    let shutdown = cairn_platform::Shutdown::new();
    let consumer = tokio::spawn(cairn_api::sync::run(settings.clone(), shutdown.clone()));
    let started = cairn_tests::eventually(Duration::from_secs(60), || async { created_counts(&b).await.0 > events_before }).await;
    assert!(started, "the consumer applied nothing");
    consumer.abort();
    let _ = consumer.await;
    let partial = created_counts(&b).await.0 - events_before;
    assert!(partial > 0 && partial < 30, "killed after {partial} of 30 Events: not mid-run");
    eprintln!("consumer killed after {partial} of 30 Events");

    let consumer = tokio::spawn(cairn_api::sync::run(settings, shutdown.clone()));
    let done = cairn_tests::eventually(Duration::from_secs(90), || async { created_counts(&b).await.0 - events_before >= 30 }).await;
    assert!(done, "not every Event arrived");
    // Let the consumer make another round: it must find nothing more to do.
    tokio::time::sleep(Duration::from_millis(600)).await;
    shutdown.trigger();
    let _ = consumer.await;
    let (events, attributes) = created_counts(&b).await;
    assert_eq!(events - events_before, 30, "each Event created once");
    assert_eq!(attributes - attributes_before, 60, "each attribute added once");
    for uuid in &uuids {
        let copy = view(&b, uuid).await.expect("every Event arrived");
        assert_eq!(values(&copy), values(&view(&a, uuid).await.expect("on A")));
    }
    a.stop().await;
    b.stop().await;
}

/// MISP's own sync protocol against Cairn, request by request as a MISP peer makes them
/// (misp_features.md §13): a pull (minimal index, then each Event) and a push
/// (filterEventIdsForPush, HEAD, add/edit with the creator organisation and timestamps kept).
#[tokio::test]
async fn a_misp_peer_pulls_from_and_pushes_to_cairn_with_misps_requests() {
    let cairn = Stack::start().await;
    let (peer_org, _) = {
        let (status, o) = cairn.post("/admin/organisations/add", &json!({"name": "MISP peer", "uuid": "5f1c2e3d-0000-4000-8000-00000000beef", "local": false})).await;
        assert_eq!(status, 200, "{o}");
        (o["Organisation"]["id"].as_str().expect("id").to_string(), ())
    };
    let (_, sync_key) = cairn.user_in(&peer_org, "sync@misp-peer.test", json!(5)).await;
    let shared = published_event(&cairn, "shared with the peer", 3, None).await;
    let private = published_event(&cairn, "kept home", 0, None).await;

    // Pull: the minimal index of published Events, then each Event with MISP's view parameters.
    let (status, version) = cairn.post_as(&sync_key, "/servers/getVersion", &json!({})).await;
    assert_eq!((status, version["perm_sync"].as_bool()), (200, Some(true)), "{version}");
    let (status, index) = cairn.post_as(&sync_key, "/events/index", &json!({"minimal": 1, "published": 1})).await;
    assert_eq!(status, 200, "{index}");
    let listed: Vec<&str> = index.as_array().expect("list").iter().filter_map(|e| e["uuid"].as_str()).collect();
    assert!(listed.contains(&shared.as_str()) && !listed.contains(&private.as_str()), "{index}");
    let entry = index.as_array().expect("list").iter().find(|e| e["uuid"] == shared.as_str()).expect("entry");
    for field in ["id", "timestamp", "published", "uuid", "orgc_uuid"] {
        assert!(!entry[field].is_null(), "minimal index entry lacks {field}: {entry}");
    }
    let path = format!("/events/view/{shared}/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1");
    let (status, pulled) = cairn.post_as(&sync_key, &path, &json!({})).await;
    assert_eq!(status, 200, "{pulled}");
    assert_eq!(pulled["Event"]["uuid"], shared.as_str());
    assert_eq!(pulled["Event"]["Attribute"].as_array().map(Vec::len), Some(2));

    // Push: which of these does Cairn want? The unknown one, and not the copy it already has.
    let pushed = "5f1c2e3d-0000-4000-8000-00000000e001";
    let at = 1_900_000_000;
    let (status, wanted) = cairn
        .post_as(&sync_key, "/events/filterEventIdsForPush", &json!([{"Event": {"uuid": pushed, "timestamp": at}}, {"Event": {"uuid": shared, "timestamp": 1}}]))
        .await;
    assert_eq!(status, 200, "{wanted}");
    assert_eq!(wanted, json!([pushed]));
    let head = cairn.request(reqwest::Method::HEAD, &format!("/events/view/{pushed}"), &sync_key).send().await.expect("head");
    assert_eq!(head.status().as_u16(), 404, "not here yet");
    let event = json!({"Event": {"uuid": pushed, "info": "pushed by a MISP peer", "distribution": 1, "threat_level_id": 2, "analysis": 2,
        "date": "2026-11-29", "timestamp": at, "publish_timestamp": at, "published": true, "locked": true,
        "Orgc": {"uuid": "5f1c2e3d-0000-4000-8000-00000000c0de", "name": "The creator"},
        "Attribute": [{"type": "ip-dst", "category": "Network activity", "value": "192.0.2.77", "to_ids": true, "uuid": "5f1c2e3d-0000-4000-8000-00000000a001", "timestamp": at}]}});
    let (status, added) = cairn.post_as(&sync_key, "/events/add/metadata:1", &event).await;
    assert_eq!(status, 200, "{added}");
    let copy = view(&cairn, pushed).await.expect("pushed Event stored");
    assert_eq!(copy["Orgc"]["uuid"], "5f1c2e3d-0000-4000-8000-00000000c0de", "the creator is kept: {copy}");
    assert_eq!(copy["Org"]["id"].as_str(), Some(peer_org.as_str()), "owned by the pushing sync user's organisation");
    assert_eq!((copy["locked"].as_bool(), copy["published"].as_bool()), (Some(true), Some(true)), "{copy}");
    assert_eq!(copy["timestamp"].as_str(), Some(at.to_string().as_str()), "{copy}");
    let head = cairn.request(reqwest::Method::HEAD, &format!("/events/view/{pushed}"), &sync_key).send().await.expect("head");
    assert_eq!(head.status().as_u16(), 200);

    // The same push again is refused as MISP refuses it, and writes nothing; a newer one is applied.
    let before = cairn.head_position().await;
    let (status, refused) = cairn.post_as(&sync_key, &format!("/events/edit/{pushed}/metadata:1"), &event).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.to_string().contains("not newer than the local copy"), "{refused}");
    assert_eq!(cairn.head_position().await, before);
    let mut newer = event.clone();
    newer["Event"]["timestamp"] = json!(at + 60);
    newer["Event"]["info"] = json!("pushed by a MISP peer (updated)");
    let (status, edited) = cairn.post_as(&sync_key, &format!("/events/edit/{pushed}/metadata:1"), &newer).await;
    assert_eq!(status, 200, "{edited}");
    let copy = view(&cairn, pushed).await.expect("still there");
    assert_eq!(copy["info"], "pushed by a MISP peer (updated)");
    assert_eq!(copy["timestamp"].as_str(), Some((at + 60).to_string().as_str()));

    // Sightings follow the Event: which are new here, then saved with who saw them.
    let (s1, s2) = ("5f1c2e3d-0000-4000-8000-0000000051a1", "5f1c2e3d-0000-4000-8000-0000000051a2");
    let (status, known) = cairn.post_as(&sync_key, &format!("/sightings/filterSightingUuidsForPush/{pushed}"), &json!([s1, s2])).await;
    assert_eq!((status, known), (200, json!([])));
    let sightings = json!([
        {"uuid": s1, "attribute_uuid": "5f1c2e3d-0000-4000-8000-00000000a001", "type": 0, "source": "peer sensor", "date_sighting": at,
         "Organisation": {"uuid": "5f1c2e3d-0000-4000-8000-00000000c0de", "name": "The creator"}},
        {"uuid": s2, "attribute_uuid": "5f1c2e3d-0000-4000-8000-00000000ffff", "type": 0, "source": "an attribute Cairn does not hold"}
    ]);
    let (status, saved) = cairn.post_as(&sync_key, &format!("/sightings/bulkSaveSightings/{pushed}"), &sightings).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["message"], "1 sightings saved", "{saved}");
    let (status, known) = cairn.post_as(&sync_key, &format!("/sightings/filterSightingUuidsForPush/{pushed}"), &json!([s1, s2])).await;
    assert_eq!((status, known), (200, json!([s1])));
    let (status, again) = cairn.post_as(&sync_key, &format!("/sightings/bulkSaveSightings/{pushed}"), &sightings).await;
    assert_eq!((status, again["message"].as_str()), (200, Some("0 sightings saved")), "{again}");
    let (status, found) = cairn.post("/sightings/restSearch/event", &json!({"id": copy["id"]})).await;
    assert_eq!(status, 200, "{found}");
    let list = found.as_array().expect("list");
    assert_eq!(list.len(), 1, "{found}");
    assert_eq!(list[0]["Sighting"]["source"], "peer sensor");
    assert_eq!(list[0]["Sighting"]["date_sighting"].as_str(), Some(at.to_string().as_str()), "{found}");
    assert_eq!(list[0]["Sighting"]["Organisation"]["uuid"], "5f1c2e3d-0000-4000-8000-00000000c0de", "who saw it is kept: {found}");
    // MISP's pull asks for the sightings of the Events it pulled, by uuid.
    let (status, pulled) = cairn.post_as(&sync_key, "/sightings/restSearch/event", &json!({"returnFormat": "json", "uuid": [pushed, shared]})).await;
    assert_eq!(status, 200, "{pulled}");
    let uuids: Vec<&str> = pulled.as_array().expect("list").iter().filter_map(|s| s["Sighting"]["uuid"].as_str()).collect();
    assert_eq!(uuids, [s1], "{pulled}");

    // Other users cannot claim another creator.
    let (_, analyst) = cairn.org_user("Analysts", "a@cairn.test", 3).await;
    let mut claim = event.clone();
    claim["Event"]["uuid"] = json!("5f1c2e3d-0000-4000-8000-00000000e002");
    let (status, own) = cairn.post_as(&analyst, "/events/add", &claim).await;
    assert_eq!(status, 200, "{own}");
    assert_ne!(own["Event"]["Orgc"]["uuid"], "5f1c2e3d-0000-4000-8000-00000000c0de", "{own}");
    assert_eq!(own["Event"]["locked"], false);
    cairn.stop().await;
}

/// Every refusal of the server and sync routes answers a JSON 4xx and writes nothing.
#[tokio::test]
async fn refused_server_and_sync_requests_write_nothing() {
    let stack = Stack::start().await;
    let (org, analyst) = stack.org_user("Peers", "analyst@peers.test", 3).await;
    let (_, sync_key) = stack.user_in(&org, "sync@peers.test", json!(5)).await;
    let good = json!({"name": "peer", "url": "http://127.0.0.1:9", "authkey": "a".repeat(40), "remote_org_id": org, "pull": true});
    let (status, created) = stack.post("/servers/add", &good).await;
    assert_eq!(status, 200, "{created}");
    let server = created["Server"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["Server"]["authkey"], "", "the key never leaves the instance");
    let (status, disabled) = stack.post("/servers/add", &json!({"name": "no pull", "url": "https://other.example.org", "authkey": "b".repeat(40), "remote_org_id": org})).await;
    assert_eq!(status, 200, "{disabled}");
    let disabled = disabled["Server"]["id"].as_str().expect("id").to_string();

    let event = published_event(&stack, "sighted", 3, None).await;
    let attribute = view(&stack, &event).await.expect("event")["Attribute"][0]["uuid"].as_str().expect("uuid").to_string();
    let sighting = |patch: Value| {
        let mut s = json!({"uuid": "5f1c2e3d-0000-4000-8000-0000000051a9", "attribute_uuid": attribute, "type": 0,
                           "Organisation": {"uuid": "5f1c2e3d-0000-4000-8000-00000000c0d1", "name": "Never recorded"}});
        s.as_object_mut().expect("object").extend(patch.as_object().expect("object").clone());
        json!([s])
    };
    let bulk = format!("/sightings/bulkSaveSightings/{event}");
    let with = |patch: Value| {
        let mut v = good.clone();
        v.as_object_mut().expect("object").extend(patch.as_object().expect("object").clone());
        v
    };
    let cases: Vec<(&str, String, String, Value, u16)> = vec![
        ("a non-admin adds a server", analyst.clone(), "/servers/add".into(), good.clone(), 403),
        ("no authkey", stack.admin_key.clone(), "/servers/add".into(), with(json!({"authkey": ""})), 403),
        ("a short authkey", stack.admin_key.clone(), "/servers/add".into(), with(json!({"authkey": "abc"})), 403),
        ("not a URL", stack.admin_key.clone(), "/servers/add".into(), with(json!({"url": "ftp:/nowhere"})), 403),
        ("no remote organisation", stack.admin_key.clone(), "/servers/add".into(), with(json!({"remote_org_id": "99999"})), 403),
        ("rules that are not JSON", stack.admin_key.clone(), "/servers/add".into(), with(json!({"pull_rules": "{tags"})), 403),
        ("a non-admin edits", analyst.clone(), format!("/servers/edit/{server}"), json!({"name": "x"}), 403),
        ("an unknown server is edited", stack.admin_key.clone(), "/servers/edit/9999".into(), json!({"name": "x"}), 404),
        ("an edit breaks the URL", stack.admin_key.clone(), format!("/servers/edit/{server}"), json!({"url": "nowhere"}), 403),
        ("an unknown server is deleted", stack.admin_key.clone(), "/servers/delete/9999".into(), json!({}), 404),
        ("a non-admin pulls", analyst.clone(), format!("/servers/pull/{server}"), json!({}), 403),
        ("a server without pull is pulled", stack.admin_key.clone(), format!("/servers/pull/{disabled}"), json!({}), 403),
        ("an unreachable server is pulled", stack.admin_key.clone(), format!("/servers/pull/{server}"), json!({}), 502),
        ("a non-sync user reads the feed", analyst.clone(), "/sync/feed".into(), json!({}), 403),
        ("a negative position", sync_key.clone(), "/sync/feed/after:-1".into(), json!({}), 400),
        ("a limit too large", sync_key.clone(), "/sync/feed/limit:5000".into(), json!({}), 400),
        ("an instance that is not a uuid", sync_key.clone(), "/sync/feed".into(), json!({"instance": "me"}), 400),
        ("a non-sync user filters pushes", analyst.clone(), "/events/filterEventIdsForPush".into(), json!([]), 403),
        ("a push filter that is not a list", sync_key.clone(), "/events/filterEventIdsForPush".into(), json!({"Event": {}}), 400),
        ("a non-sync user pushes sightings", analyst.clone(), bulk.clone(), sighting(json!({})), 403),
        ("sightings that are not a list", sync_key.clone(), bulk.clone(), json!({"uuid": "x"}), 400),
        ("a sighting without uuid", sync_key.clone(), bulk.clone(), sighting(json!({"uuid": null})), 400),
        ("a sighting of an unknown type", sync_key.clone(), bulk.clone(), sighting(json!({"type": 7})), 400),
        ("a sighting with an endless source", sync_key.clone(), bulk.clone(), sighting(json!({"source": "s".repeat(300)})), 400),
        ("sightings of an unknown Event", sync_key.clone(), "/sightings/bulkSaveSightings/5f1c2e3d-0000-4000-8000-00000000dead".into(), sighting(json!({})), 404),
        ("a non-sync user filters sightings", analyst.clone(), format!("/sightings/filterSightingUuidsForPush/{event}"), json!([]), 403),
    ];
    for (what, key, path, body, expected) in cases {
        let head = stack.head_position().await;
        let (status, answer) = stack.post_as(&key, &path, &body).await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert!(answer.is_object(), "{what}: a JSON answer, got {answer}");
        assert_eq!(stack.head_position().await, head, "{what} wrote to the log");
    }
    let (_, index) = stack.get("/servers/index").await;
    assert_eq!(index.as_array().map(Vec::len), Some(2), "{index}");
    assert_eq!(index[0]["Server"]["url"], "http://127.0.0.1:9", "no refused edit applied: {index}");
    stack.stop().await;
}

/// MISP's push rules (on the sending side's server entry) and pull rules (on the receiving side) select
/// Events by tag and creator organisation; ids and names both work.
#[tokio::test]
async fn push_and_pull_rules_select_what_travels() {
    let (a, b) = (Stack::start().await, Stack::start().await);
    let b_from_a = connect(&a, &b, true).await;
    let a_knows_b = connect(&b, &a, false).await;
    let tagged = |info: &str, tags: &[&str]| {
        let tags: Vec<Value> = tags.iter().map(|t| json!({"name": t})).collect();
        json!({"Event": {"info": info, "distribution": 3, "published": true, "Tag": tags, "Attribute": [{"type": "ip-dst", "value": "192.0.2.1"}]}})
    };
    let mut uuids = Vec::new();
    for (info, tags) in [("green", vec!["tlp:green"]), ("amber", vec!["tlp:amber"]), ("green but private", vec!["tlp:green", "private"])] {
        let (status, e) = a.post("/events/add", &tagged(info, &tags)).await;
        assert_eq!(status, 200, "{e}");
        uuids.push(e["Event"]["uuid"].as_str().expect("uuid").to_string());
    }
    // A pushes nothing tagged tlp:amber to B (named by the tag's id on A) ...
    let (_, amber) = a.post("/tags/search", &json!({"tagname": "tlp:amber", "strict_tagname": true})).await;
    let amber_id = amber[0]["Tag"]["id"].as_str().expect("tag id").to_string();
    let (status, r) = a.post(&format!("/servers/edit/{a_knows_b}"), &json!({"push_rules": json!({"tags": {"NOT": [amber_id]}}).to_string()})).await;
    assert_eq!(status, 200, "{r}");
    // ... and B pulls nothing tagged "private".
    let (status, r) = b.post(&format!("/servers/edit/{b_from_a}"), &json!({"pull_rules": {"tags": {"NOT": ["private"]}}})).await;
    assert_eq!(status, 200, "{r}");
    let report = pull(&b, &b_from_a).await;
    assert_eq!((report["offered"].as_i64(), report["filtered"].as_i64()), (Some(2), Some(1)), "amber never offered, private filtered: {report}");
    assert!(view(&b, &uuids[0]).await.is_some(), "green travels");
    assert!(view(&b, &uuids[1]).await.is_none(), "A's push rules keep amber home");
    assert!(view(&b, &uuids[2]).await.is_none(), "B's pull rules leave private out");
    a.stop().await;
    b.stop().await;
}

/// A hostile or broken peer: B's consumer reads a feed served by a fake instance and applies only what
/// holds up — bad data, an Event of B's own coming back, an offer for an Event created on B and one in a
/// sharing group B is not in are refused one by one, the good offer still applies, and the position
/// moves on.
#[tokio::test]
async fn offers_from_a_hostile_peer_are_checked_one_by_one() {
    use cairn_api::sync::{FeedEntry, FeedPage, WireEvent, WireGroup, WireOrg, WireTag};
    use cairn_domain::event::sync::{Shared, SyncOrigin};
    use cairn_domain::event::{Attribute, EventMeta, TagLink};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let b = Stack::start().await;
    let local = published_event(&b, "created on B", 3, None).await;
    let b_instance = {
        let client = b.db.pool.get().await.expect("db");
        client.query_one("SELECT instance_uuid FROM rm.instance WHERE id = 1", &[]).await.expect("instance").get::<_, uuid::Uuid>(0)
    };
    let peer_instance = uuid::Uuid::new_v4();
    let offer = |uuid: uuid::Uuid, attr_type: &str, value: &str, origin: uuid::Uuid| -> FeedEntry {
        let meta = EventMeta {
            id: 7, uuid, info: "from the hostile peer".into(), date: "2026-11-29".into(), threat_level_id: 2, analysis: 0, distribution: 3,
            sharing_group_id: 0, org_id: 0, orgc_id: 41, user_id: 0, published: true, publish_timestamp: 1_800_000_000,
            timestamp: 1_800_000_000, sighting_timestamp: 0, proposal_email_lock: false, locked: false, disable_correlation: false,
            extends_uuid: String::new(),
        };
        let attribute = Attribute {
            id: 70, uuid: uuid::Uuid::new_v4(), event_id: 7, object_id: 0, object_relation: None, category: "Network activity".into(),
            attr_type: attr_type.into(), value1: value.into(), value2: String::new(), to_ids: true, comment: String::new(), distribution: 5,
            sharing_group_id: 0, timestamp: 1_800_000_000, deleted: false, disable_correlation: false, first_seen: None, last_seen: None,
            tags: vec![TagLink { tag_id: 3, local: false, relationship_type: None }],
        };
        let shared = Shared { meta, tags: vec![], objects: vec![], attributes: vec![attribute], references: vec![], origin: SyncOrigin { instance: origin, version: 4 } };
        let orgs = [(41, WireOrg { uuid: uuid::Uuid::new_v4(), name: "Hostile creator".into() })].into_iter().collect();
        let tag_names = [(3, WireTag { name: "hostile:tag".into(), colour: "#ff0000".into() })].into_iter().collect();
        FeedEntry { position: 5, uuid, event: Some(Box::new(WireEvent { shared, orgs, tag_names, sharing_groups: Default::default() })) }
    };
    // A sharing-group Event whose group does not include B: refused alone, it does not stall the pull.
    let mut grouped = offer(uuid::Uuid::new_v4(), "ip-dst", "192.0.2.8", peer_instance);
    if let Some(w) = grouped.event.as_mut() {
        w.shared.meta.distribution = 4;
        w.shared.meta.sharing_group_id = 5;
        let group = WireGroup {
            uuid: uuid::Uuid::new_v4(), name: "elsewhere".into(), releasability: String::new(), description: String::new(),
            roaming: false, org_id: 41, members: vec![(41, false)], servers: vec![],
        };
        w.sharing_groups.insert(5, group);
    }
    let good = uuid::Uuid::new_v4();
    let page = FeedPage {
        head: 9,
        next: 9,
        events: vec![
            offer(uuid::Uuid::new_v4(), "no-such-type", "x", peer_instance),
            offer(uuid::Uuid::new_v4(), "ip-dst", "not an address", peer_instance),
            offer(uuid::Uuid::new_v4(), "ip-dst", "192.0.2.5", b_instance),
            offer(local.parse().expect("uuid"), "ip-dst", "192.0.2.6", peer_instance),
            grouped,
            offer(good, "ip-dst", "192.0.2.7", peer_instance),
        ],
    };
    let body = serde_json::to_string(&page).expect("page");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 16_384];
            let _ = socket.read(&mut request).await;
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let (remote, _) = b.org_user("The hostile peer", "nobody@hostile.test", 3).await;
    let (status, s) = b.post("/servers/add", &json!({"name": "hostile", "url": format!("http://127.0.0.1:{port}"), "authkey": "h".repeat(40), "remote_org_id": remote, "pull": true})).await;
    assert_eq!(status, 200, "{s}");
    let server = s["Server"]["id"].as_str().expect("id").to_string();

    let report = pull(&b, &server).await;
    assert_eq!((report["offered"].as_i64(), report["applied"].as_i64(), report["refused"].as_i64()), (Some(6), Some(1), Some(5)), "{report}");
    assert_eq!(report["position"], 9);
    let copy = view(&b, &good.to_string()).await.expect("the good offer applied");
    assert_eq!(values(&copy), ["192.0.2.7"]);
    assert_eq!(view(&b, &local).await.expect("B's own Event")["info"], "created on B", "a peer cannot overwrite an Event created here");
    b.stop().await;
}
