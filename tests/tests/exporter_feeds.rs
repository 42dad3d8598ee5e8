//! The exporter's NATS feeds with real PostgreSQL and nats-server: each audience receives exactly the
//! published Events as it may see them (equal to restSearch as that organisation), narrowing and
//! unpublishing retract, sightings follow, replays are identical, and a killed exporter neither
//! loses nor repeats a message.

use async_nats::jetstream;
use cairn_tests::feeds::{Msg, read_feed, settled};
use cairn_tests::stack::Stack;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn event_uuid(m: &Msg) -> Option<&str> {
    m.event_uuid()
}

fn attribute_values(m: &Msg) -> BTreeSet<String> {
    let e = &m.payload["Event"];
    let top = e["Attribute"].as_array().into_iter().flatten();
    let inner = e["Object"].as_array().into_iter().flatten().flat_map(|o| o["Attribute"].as_array().into_iter().flatten());
    top.chain(inner).filter_map(|a| a["value"].as_str().map(str::to_string)).collect()
}

/// Creates and publishes an Event; returns (id, uuid).
async fn published(stack: &Stack, key: &str, distribution: u8, sg: Option<&str>, attributes: Value) -> (String, String) {
    let mut body = json!({"info": "feed test", "distribution": distribution, "threat_level_id": 2, "analysis": 1, "Attribute": attributes});
    if let Some(sg) = sg {
        body["sharing_group_id"] = json!(sg);
    }
    let (status, e) = stack.post_as(key, "/events/add", &body).await;
    assert_eq!(status, 200, "{e}");
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let (status, r) = stack.post_as(key, &format!("/events/publish/{id}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    (id, e["Event"]["uuid"].as_str().expect("uuid").to_string())
}

async fn org_uuid(stack: &Stack, org_id: &str) -> String {
    let (status, o) = stack.get(&format!("/organisations/view/{org_id}")).await;
    assert_eq!(status, 200, "{o}");
    o["Organisation"]["uuid"].as_str().expect("uuid").to_string()
}

#[tokio::test]
async fn each_audience_gets_what_it_may_see_and_loses_what_it_no_longer_may() {
    let stack = Stack::start().await;
    let js = jetstream::new(stack.nats.client().await);
    let (a_org, a_key) = stack.org_user("Feed A", "pub@a.feed", 4).await;
    let (b_org, b_key) = stack.org_user("Feed B", "pub@b.feed", 4).await;
    let (c_org, c_key) = stack.org_user("Feed C", "pub@c.feed", 4).await;
    let (a_uuid, c_uuid) = (org_uuid(&stack, &a_org).await, org_uuid(&stack, &c_org).await);
    let sg_body = |name: &str, orgs: &[&str]| {
        json!({"name": name, "releasability": "test", "SharingGroupOrg": orgs.iter().map(|o| json!({"org_id": o})).collect::<Vec<_>>()})
    };
    let (status, sg_ac) = stack.post("/sharing_groups/add", &sg_body("A and C", &[&a_org, &c_org])).await;
    assert_eq!(status, 200, "{sg_ac}");
    let sg_ac = sg_ac["SharingGroup"]["id"].as_str().expect("sg").to_string();
    let (_, sg_bc) = stack.post("/sharing_groups/add", &sg_body("B and C", &[&b_org, &c_org])).await;
    let sg_bc = sg_bc["SharingGroup"]["id"].as_str().expect("sg").to_string();

    // A's own Event, one attribute shared with C through a sharing group.
    let (e1, e1_uuid) = published(&stack, &a_key, 0, None, json!([
        {"type": "ip-dst", "value": "198.51.100.1"},
        {"type": "domain", "value": "a-and-c.example", "distribution": 4, "sharing_group_id": sg_ac},
    ])).await;
    // B's community Event with one attribute for B only.
    let (e2, e2_uuid) = published(&stack, &b_key, 1, None, json!([
        {"type": "ip-dst", "value": "198.51.100.2"},
        {"type": "ip-dst", "value": "198.51.100.22", "distribution": 0},
    ])).await;
    // C's Event for the B and C sharing group: A must never see it.
    let (_e3, e3_uuid) = published(&stack, &c_key, 4, Some(&sg_bc), json!([{"type": "ip-dst", "value": "198.51.100.3"}])).await;
    // B's public Event, one attribute limited to this community.
    let (e4, e4_uuid) = published(&stack, &b_key, 3, None, json!([
        {"type": "ip-dst", "value": "198.51.100.4"},
        {"type": "ip-dst", "value": "198.51.100.44", "distribution": 1},
    ])).await;
    // An unpublished Event leaves through no feed.
    let (status, draft) = stack.post_as(&a_key, "/events/add", &json!({"info": "draft", "distribution": 3, "Attribute": [{"type": "ip-dst", "value": "198.51.100.9"}]})).await;
    assert_eq!(status, 200, "{draft}");
    settled(&stack, &js).await;

    let a_feed = read_feed(&js, &format!("cairn.feed.org.{a_uuid}.>")).await;
    let events: BTreeMap<&str, &Msg> = a_feed.iter().filter(|m| m.subject.ends_with(".event")).filter_map(|m| Some((event_uuid(m)?, m))).collect();
    assert_eq!(events.keys().copied().collect::<BTreeSet<_>>(), BTreeSet::from([e1_uuid.as_str(), e2_uuid.as_str(), e4_uuid.as_str()]), "A's feed: {a_feed:#?}");
    assert!(!events.contains_key(e3_uuid.as_str()));
    assert_eq!(attribute_values(events[e1_uuid.as_str()]), BTreeSet::from(["198.51.100.1".to_string(), "a-and-c.example".to_string()]));
    assert_eq!(attribute_values(events[e2_uuid.as_str()]), BTreeSet::from(["198.51.100.2".to_string()]), "B's own attribute stays with B");
    assert_eq!(attribute_values(events[e4_uuid.as_str()]), BTreeSet::from(["198.51.100.4".to_string(), "198.51.100.44".to_string()]));
    // Each message is restSearch as A's user.
    for (id, uuid) in [(&e1, &e1_uuid), (&e2, &e2_uuid), (&e4, &e4_uuid)] {
        let (status, r) = stack.post_as(&a_key, "/events/restSearch", &json!({"eventid": id, "noSightings": true})).await;
        assert_eq!(status, 200);
        assert_eq!(&r["response"][0], &events[uuid.as_str()].payload, "feed message of {uuid} equals restSearch as A");
    }
    let c_feed = read_feed(&js, &format!("cairn.feed.org.{c_uuid}.>")).await;
    let c_events: BTreeSet<&str> = c_feed.iter().filter(|m| m.subject.ends_with(".event")).filter_map(event_uuid).collect();
    assert_eq!(c_events, BTreeSet::from([e2_uuid.as_str(), e3_uuid.as_str(), e4_uuid.as_str()]), "C does not see A's distribution-0 Event");
    // Public: only the all-communities Event, without its community-only attribute.
    let public = read_feed(&js, "cairn.feed.public.>").await;
    let public_events: Vec<&Msg> = public.iter().filter(|m| m.subject.ends_with(".event")).collect();
    assert_eq!(public_events.len(), 1, "{public:#?}");
    assert_eq!(event_uuid(public_events[0]), Some(e4_uuid.as_str()));
    assert_eq!(attribute_values(public_events[0]), BTreeSet::from(["198.51.100.4".to_string()]));
    assert!(a_feed.iter().chain(&public).all(|m| !m.payload.to_string().contains("198.51.100.9")), "the draft never leaves");

    // A sighting on A's Event reaches A's feed.
    let (status, s) = stack.post_as(&a_key, "/sightings/add", &json!({"value": "198.51.100.1", "source": "sensor-1"})).await;
    assert_eq!(status, 200, "{s}");
    // B narrows its public Event to its own organisation: the Event is retracted from A and public.
    let (status, r) = stack.post_as(&b_key, &format!("/events/edit/{e4}"), &json!({"distribution": 0})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = stack.post_as(&b_key, &format!("/events/publish/{e4}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    // B adds an attribute to its community Event: unpublished (retracted) until published again.
    let (status, r) = stack.post_as(&b_key, &format!("/attributes/add/{e2}"), &json!({"type": "ip-dst", "value": "198.51.100.222"})).await;
    assert_eq!(status, 200, "{r}");
    settled(&stack, &js).await;
    let a_feed2 = read_feed(&js, &format!("cairn.feed.org.{a_uuid}.>")).await;
    let later: Vec<&Msg> = a_feed2.iter().filter(|m| m.seq > a_feed.last().expect("messages").seq).collect();
    let sighting = later.iter().find(|m| m.subject.ends_with(".sighting")).expect("sighting message");
    assert_eq!(sighting.payload["Sighting"]["source"], "sensor-1");
    let retracted: BTreeSet<&str> =
        later.iter().filter(|m| m.subject.ends_with(".retract")).filter_map(|m| m.payload["Event"]["uuid"].as_str()).collect();
    assert!(retracted.contains(e4_uuid.as_str()), "narrowed Event retracted from A: {later:#?}");
    assert!(retracted.contains(e2_uuid.as_str()), "edited (so unpublished) Event retracted");
    assert!(later.iter().all(|m| !m.payload.to_string().contains("198.51.100.222")), "an unpublished change never leaves");
    let public2 = read_feed(&js, "cairn.feed.public.>").await;
    assert!(public2.iter().any(|m| m.subject.ends_with(".retract") && m.payload["Event"]["uuid"] == e4_uuid.as_str()));
    let (status, feed) = stack.get("/feeds/public/manifest.json").await;
    assert_eq!(status, 200);
    assert!(feed.as_object().is_some_and(|m| m.is_empty()), "nothing public left in the MISP feed: {feed}");
    // Published again: the new attribute arrives.
    let (status, r) = stack.post_as(&b_key, &format!("/events/publish/{e2}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    settled(&stack, &js).await;
    let a_feed3 = read_feed(&js, &format!("cairn.feed.org.{a_uuid}.>")).await;
    let last_e2 = a_feed3.iter().rev().find(|m| m.subject.ends_with(".event") && event_uuid(m) == Some(e2_uuid.as_str())).expect("E2 again");
    assert!(attribute_values(last_e2).contains("198.51.100.222"));

    // Replays from sequence 1 are identical, and no message id repeats.
    let replay = read_feed(&js, "cairn.feed.>").await;
    assert_eq!(replay, read_feed(&js, "cairn.feed.>").await);
    let ids: BTreeSet<&str> = replay.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(ids.len(), replay.len());
    assert_eq!(replay.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=replay.len() as u64).collect::<Vec<_>>(), "contiguous");
    stack.stop().await;
}

#[tokio::test]
async fn a_killed_exporter_resumes_without_losing_or_repeating_messages() {
    let stack = Stack::start_without_exporter().await;
    let js = jetstream::new(stack.nats.client().await);
    let (_, key) = stack.org_user("Feed K", "pub@k.feed", 4).await;
    let spawn = || {
        let settings = stack.settings.clone();
        tokio::spawn(async move { cairn_exporter::run(settings, cairn_platform::Shutdown::new()).await.map_err(|e| e.to_string()) })
    };
    let mut exporter = spawn();
    let mut uuids = Vec::new();
    for round in 0..6 {
        for i in 0..4 {
            let (_, uuid) = published(&stack, &key, 1, None, json!([{"type": "ip-dst", "value": format!("203.0.113.{}", round * 10 + i)}])).await;
            uuids.push(uuid);
        }
        // Kill it mid-run (no graceful shutdown: its transaction and publishes are cut where they are).
        tokio::time::sleep(Duration::from_millis(30 * round)).await;
        exporter.abort();
        let _ = exporter.await;
        exporter = spawn();
    }
    settled(&stack, &js).await;
    let all = read_feed(&js, "cairn.feed.>").await;
    let ids: BTreeSet<&str> = all.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "no message id twice");
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=all.len() as u64).collect::<Vec<_>>());
    // Every Event exactly once per audience that may see it: community, the org, the host org.
    let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in all.iter().filter(|m| m.subject.ends_with(".event")) {
        let audience = m.subject.trim_start_matches("cairn.feed.").trim_end_matches(".event").to_string();
        *per.entry((audience, event_uuid(m).expect("uuid").to_string())).or_default() += 1;
    }
    let audiences: BTreeSet<&String> = per.keys().map(|(a, _)| a).collect();
    assert_eq!(audiences.len(), 3, "community, Feed K and the host organisation: {audiences:?}");
    for u in &uuids {
        for a in &audiences {
            assert_eq!(per.get(&((*a).clone(), u.clone())), Some(&1), "{u} to {a}");
        }
    }
    exporter.abort();
    stack.stop().await;
}
