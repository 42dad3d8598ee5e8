//! Two API replicas on one log: each decides on its own cached copy of an Event and keeps its own
//! brief caches of API keys, yet neither answers from what the other has changed since.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn post(stack: &Stack, base: &str, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = stack
        .http
        .post(format!("{base}{path}"))
        .header("Authorization", key)
        .header("Accept", "application/json")
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn me(stack: &Stack, base: &str, key: &str) -> u16 {
    let r = stack.http.get(format!("{base}/users/view/me")).header("Authorization", key).header("Accept", "application/json").send().await;
    r.expect("request").status().as_u16()
}

fn values(event: &Value) -> Vec<String> {
    event["Event"]["Attribute"].as_array().into_iter().flatten().filter_map(|a| a["value"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn a_replica_deciding_on_its_cached_event_sees_what_another_replica_wrote() {
    let mut stack = Stack::start().await;
    let (a, b) = (stack.base.clone(), stack.api_replica().await);
    let (_, key) = stack.org_user("CERT-Replicas", "r@r.test", 3).await;
    let (status, created) = post(&stack, &a, &key, "/events/add", &json!({"info": "two replicas", "distribution": 0})).await;
    assert_eq!(status, 200, "{created}");
    let id = created["Event"]["id"].as_str().expect("id").to_string();
    // Replica A holds the Event in its cache after this add.
    let (status, first) = post(&stack, &a, &key, &format!("/attributes/add/{id}"), &json!({"type": "domain", "value": "a.example"})).await;
    assert_eq!(status, 200, "{first}");
    // Replica B adds behind A's back.
    let (status, from_b) = post(&stack, &b, &key, &format!("/attributes/add/{id}"), &json!({"type": "domain", "value": "b.example"})).await;
    assert_eq!(status, 200, "{from_b}");
    let b_attribute = from_b["Attribute"]["id"].as_str().expect("attribute id").to_string();

    // A's cached Event does not have B's attribute: editing it must not be refused as unknown …
    let (status, edited) = post(&stack, &a, &key, &format!("/attributes/edit/{b_attribute}"), &json!({"comment": "seen by A"})).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["Attribute"]["comment"], "seen by A");
    // … and B's value, added again through A, is a duplicate even though A's copy was stale.
    let (status, again) = post(&stack, &b, &key, &format!("/attributes/add/{id}"), &json!({"type": "domain", "value": "c.example"})).await;
    assert_eq!(status, 200, "{again}");
    let head = stack.head_position().await;
    let (status, duplicate) = post(&stack, &a, &key, &format!("/attributes/add/{id}"), &json!({"type": "domain", "value": "c.example"})).await;
    assert_eq!(status, 403, "a duplicate of the other replica's attribute is refused: {duplicate}");
    assert!(duplicate["errors"].get("value").is_some(), "{duplicate}");
    assert_eq!(stack.head_position().await, head, "the refused duplicate wrote nothing");

    let (status, viewed) = stack.get(&format!("/events/view/{id}")).await;
    assert_eq!(status, 200);
    let mut seen = values(&viewed);
    seen.sort();
    assert_eq!(seen, ["a.example", "b.example", "c.example"]);
    stack.stop().await;
}

#[tokio::test]
async fn a_disabled_user_is_refused_at_once_here_and_within_the_key_cache_lifetime_on_another_replica() {
    let mut stack = Stack::start().await;
    let (a, b) = (stack.base.clone(), stack.api_replica().await);
    let (org, _) = stack.org_user("CERT-Keys", "owner@k.test", 3).await;
    let (user_id, key) = stack.user_in(&org, "user@k.test", json!(3)).await;
    // Both replicas have the key cached.
    assert_eq!(me(&stack, &a, &key).await, 200);
    assert_eq!(me(&stack, &b, &key).await, 200);

    let (status, r) = post(&stack, &a, &stack.admin_key, &format!("/admin/users/edit/{user_id}"), &json!({"disabled": true})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(me(&stack, &a, &key).await, 403, "the replica that disabled the user refuses the key at once");
    let disabled_at = Instant::now();
    let refused = cairn_tests::eventually(Duration::from_secs(5), || async { me(&stack, &b, &key).await == 403 }).await;
    assert!(refused, "the other replica still accepts the disabled user's key");
    assert!(disabled_at.elapsed() < Duration::from_secs(3), "refused only after {:?}", disabled_at.elapsed());

    // Enabled again through B: B accepts the key at once, A within the lifetime.
    let (status, r) = post(&stack, &b, &stack.admin_key, &format!("/admin/users/edit/{user_id}"), &json!({"disabled": false})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(me(&stack, &b, &key).await, 200);
    assert!(cairn_tests::eventually(Duration::from_secs(5), || async { me(&stack, &a, &key).await == 200 }).await);
    stack.stop().await;
}
