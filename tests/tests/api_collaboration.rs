//! Exercise 4 of the MISP training, end to end with several organisations: propose, discuss, accept;
//! a stale proposal is refused with both versions; delegate an org-only Event, which the target sees
//! while pending, accepts and publishes — every step in the Event's one stream. Sightings and refusals.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

fn types(lines: &[Value]) -> Vec<String> {
    lines.iter().map(|l| l["change_type"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn propose_discuss_accept_and_refuse_a_stale_proposal() {
    let stack = Stack::start().await;
    let (_, owner) = stack.org_user("CERT-Owner", "owner@o.test", 3).await;
    let (_, analyst) = stack.org_user("CERT-Analyst", "analyst@a.test", 3).await;
    let (status, e) = stack
        .post_as(&owner, "/events/add", &json!({"info": "exercise 4", "distribution": 1,
            "Attribute": [{"type": "ip-dst", "value": "203.0.113.44", "to_ids": true, "comment": "C2"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    let event_id = e["Event"]["id"].as_str().expect("id").to_string();
    let uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let attribute_id = e["Event"]["Attribute"][0]["id"].as_str().expect("attribute").to_string();

    // The analyst of another organisation may not edit: MISP's 403 that makes PyMISP propose instead.
    let (status, r) = stack.post_as(&analyst, &format!("/attributes/edit/{attribute_id}"), &json!({"to_ids": false})).await;
    assert_eq!((status, r["message"].as_str()), (403, Some("You do not have permission to do that.")), "{r}");
    let (status, proposal) = stack.post_as(&analyst, &format!("/shadow_attributes/edit/{attribute_id}"), &json!({"to_ids": false})).await;
    assert_eq!(status, 200, "{proposal}");
    assert_eq!(proposal["ShadowAttribute"]["to_ids"], json!(false));
    assert_eq!(proposal["ShadowAttribute"]["old_id"], json!(attribute_id));
    let proposal_id = proposal["ShadowAttribute"]["id"].as_str().expect("id").to_string();
    let (status, post) = stack
        .post_as(&analyst, &format!("/posts/add/event/{event_id}"), &json!({"message": "This IP is a shared resolver: it causes false positives in our IDS."}))
        .await;
    assert_eq!(status, 200, "{post}");

    // The owner sees the proposal on the attribute and the discussion; the proposer cannot accept.
    let (_, view) = stack.post_as(&owner, &format!("/events/view/{event_id}"), &json!({})).await;
    assert_eq!(view["Event"]["Attribute"][0]["ShadowAttribute"][0]["id"], json!(proposal_id), "{view}");
    let (_, thread) = stack.post_as(&owner, &format!("/threads/viewEvent/{event_id}"), &json!({})).await;
    assert!(thread["Thread"]["Post"][0]["contents"].as_str().is_some_and(|c| c.contains("false positives")), "{thread}");
    let (_, index) = stack.post_as(&owner, "/shadow_attributes/index", &json!({})).await;
    assert_eq!(index.as_array().map(Vec::len), Some(1), "{index}");
    let (_, with) = stack.post_as(&owner, "/events/index/hasproposal:1", &json!({})).await;
    assert_eq!(with[0]["id"], json!(event_id), "{with}");
    let (_, found) = stack.post_as(&owner, "/attributes/restSearch", &json!({"eventid": event_id, "includeProposals": 1})).await;
    assert_eq!(found["response"]["Attribute"][0]["ShadowAttribute"][0]["id"], json!(proposal_id), "{found}");
    let (status, _) = stack.post_as(&analyst, &format!("/shadow_attributes/accept/{proposal_id}"), &json!({})).await;
    assert_eq!(status, 403);
    let (status, r) = stack.post_as(&owner, &format!("/shadow_attributes/accept/{proposal_id}"), &json!({})).await;
    assert_eq!((status, r["message"].as_str()), (200, Some("Proposed change accepted.")), "{r}");
    let (_, a) = stack.post_as(&owner, &format!("/attributes/view/{attribute_id}"), &json!({})).await;
    assert_eq!(a["Attribute"]["to_ids"], json!(false));
    assert_eq!(a["Attribute"]["comment"], "C2", "only the proposed field changed");
    let (_, without) = stack.post_as(&owner, "/events/index/hasproposal:1", &json!({})).await;
    assert_eq!(without.as_array().map(Vec::len), Some(0), "{without}");

    // A proposal based on an older revision is refused with both versions, and nothing is written.
    let (_, stale) = stack.post_as(&analyst, &format!("/shadow_attributes/edit/{attribute_id}"), &json!({"comment": "resolver"})).await;
    let stale_id = stale["ShadowAttribute"]["id"].as_str().expect("id").to_string();
    let (status, r) = stack.post_as(&owner, &format!("/attributes/edit/{attribute_id}"), &json!({"comment": "C2 (confirmed)"})).await;
    assert_eq!(status, 200, "{r}");
    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&owner, &format!("/shadow_attributes/accept/{stale_id}"), &json!({})).await;
    assert_eq!(status, 409, "{r}");
    assert_eq!(r["current"]["Attribute"]["comment"], "C2 (confirmed)", "{r}");
    assert_eq!(r["proposed"]["ShadowAttribute"]["comment"], "resolver", "{r}");
    assert_eq!(stack.head_position().await, head, "a refused acceptance writes nothing");
    let (status, r) = stack.post_as(&owner, &format!("/shadow_attributes/discard/{stale_id}"), &json!({})).await;
    assert_eq!((status, r["message"].as_str()), (200, Some("Proposal discarded.")));

    let steps = types(&stack.history(&uuid));
    for expected in ["event.created", "proposal.added", "post.added", "proposal.accepted", "attribute.updated", "proposal.discarded"] {
        assert!(steps.iter().any(|s| s == expected), "{expected} in {steps:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn an_org_only_event_is_delegated_seen_while_pending_accepted_and_published() {
    let stack = Stack::start().await;
    let (org_a, requester) = stack.org_user("CERT-Requester", "pub@r.test", 4).await;
    let (org_b, target) = stack.org_user("CERT-Target", "pub@t.test", 4).await;
    let (_, bystander) = stack.org_user("CERT-Bystander", "x@b.test", 3).await;
    let (status, e) = stack
        .post_as(&requester, "/events/add", &json!({"info": "to be delegated", "distribution": 0,
            "Attribute": [{"type": "ip-dst", "value": "198.51.100.61"}, {"type": "ip-dst", "value": "198.51.100.62"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let (status, _) = stack.post_as(&target, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(status, 404, "org-only: invisible to the target before the request");

    let (status, d) = stack
        .post_as(&requester, &format!("/event_delegations/delegateEvent/{id}"), &json!({"event_id": id, "org_id": org_b, "distribution": 1, "message": "please take over"}))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["EventDelegation"]["org_id"], json!(org_b));
    assert_eq!(d["EventDelegation"]["requester_org_id"], json!(org_a));
    let delegation = d["EventDelegation"]["id"].as_str().expect("id").to_string();
    let (status, again) = stack.post_as(&requester, &format!("/event_delegations/delegateEvent/{id}"), &json!({"org_id": org_b})).await;
    assert_eq!(status, 405, "one pending request per Event: {again}");

    // While pending the target sees the Event and its attributes (in every read path), others don't.
    let (status, view) = stack.post_as(&target, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["Event"]["Attribute"].as_array().map(Vec::len), Some(2));
    let (_, found) = stack.post_as(&target, "/attributes/restSearch", &json!({"eventid": id})).await;
    assert_eq!(found["response"]["Attribute"].as_array().map(Vec::len), Some(2));
    let (status, _) = stack.post_as(&bystander, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(status, 404);
    let (_, list) = stack.post_as(&target, "/event_delegations/index", &json!({})).await;
    assert_eq!(list[0]["EventDelegation"]["id"], json!(delegation), "{list}");

    let (status, r) = stack.post_as(&requester, &format!("/event_delegations/acceptDelegation/{delegation}"), &json!({})).await;
    assert_eq!((status, r["message"].as_str()), (405, Some("You are not authorised to do that.")), "{r}");
    let (status, r) = stack.post_as(&target, &format!("/event_delegations/acceptDelegation/{delegation}"), &json!({})).await;
    assert_eq!((status, r["message"].as_str()), (200, Some("Event ownership transferred.")), "{r}");
    let (_, view) = stack.post_as(&target, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(view["Event"]["Orgc"]["name"], "CERT-Target");
    assert_eq!(view["Event"]["Org"]["name"], "CERT-Target");
    assert_eq!(view["Event"]["distribution"], "1", "the requested distribution is applied");
    assert_eq!(view["Event"]["uuid"], json!(uuid), "the same Event, not a copy");
    let (status, r) = stack.post_as(&target, &format!("/events/publish/{id}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = stack.post_as(&bystander, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(status, 200, "now community-wide");

    let steps = types(&stack.history(&uuid));
    for expected in ["event.created", "delegation.requested", "delegation.accepted", "event.updated", "event.published"] {
        assert!(steps.iter().any(|s| s == expected), "{expected} in {steps:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn sightings_follow_the_policy_and_refusals_write_nothing() {
    let stack = Stack::start().await;
    let (_, owner) = stack.org_user("CERT-S1", "s1@s.test", 3).await;
    let (_, other) = stack.org_user("CERT-S2", "s2@s.test", 3).await;
    let (_, reader) = stack.org_user("CERT-S3", "ro@s.test", 6).await;
    let (_, e) = stack
        .post_as(&owner, "/events/add", &json!({"info": "sighted", "distribution": 1, "Attribute": [{"type": "domain", "value": "seen.example.org"}]}))
        .await;
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let (status, s) = stack.post_as(&other, "/sightings/add", &json!({"value": "seen.example.org", "source": "sensor-7"})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["Sighting"]["source"], "sensor-7");
    let (status, _) = stack.post_as(&owner, "/sightings/add", &json!({"value": "seen.example.org", "type": "1"})).await;
    assert_eq!(status, 200);
    // Policy 0 (MISP's default): the owner sees all sightings, others only their own organisation's.
    let (_, view) = stack.post_as(&owner, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(view["Event"]["Attribute"][0]["Sighting"].as_array().map(Vec::len), Some(2));
    let (_, view) = stack.post_as(&other, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(view["Event"]["Attribute"][0]["Sighting"].as_array().map(Vec::len), Some(1));
    let (_, view) = stack.post_as(&other, &format!("/events/view/{id}/noSightings:1"), &json!({})).await;
    assert!(view["Event"]["Attribute"][0].get("Sighting").is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)));
    let (status, r) = stack.post("/servers/serverSettingsEdit/Plugin.Sightings_policy", &json!({"value": 2})).await;
    assert_eq!(status, 200, "{r}");
    let (_, view) = stack.post_as(&other, &format!("/events/view/{id}"), &json!({})).await;
    assert_eq!(view["Event"]["Attribute"][0]["Sighting"].as_array().map(Vec::len), Some(2), "policy 2: everyone");

    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&reader, "/sightings/add", &json!({"value": "seen.example.org"})).await;
    assert_eq!((status, r["message"].as_str()), (403, Some("You do not have permission to use this functionality.")), "{r}");
    let (status, _) = stack.post_as(&other, "/sightings/add", &json!({"value": "never.seen.example"})).await;
    assert_eq!(status, 404);
    let (status, _) = stack.post_as(&other, "/sightings/add", &json!({"value": "seen.example.org", "type": 9})).await;
    assert_eq!(status, 403, "invalid type: MISP's saveFail");
    let (status, _) = stack.post_as(&other, "/shadow_attributes/accept/999999", &json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = stack.post_as(&reader, &format!("/shadow_attributes/add/{id}"), &json!({"type": "ip-dst", "value": "1.2.3.4"})).await;
    assert_eq!(status, 403, "read-only roles cannot propose");
    let (status, _) = stack.post_as(&other, &format!("/posts/add/event/{id}"), &json!({"message": "  "})).await;
    assert_eq!(status, 403, "empty post");
    assert_eq!(stack.head_position().await, head, "no refusal moved the log head");
    stack.stop().await;
}
