//! Throttling: an address that keeps failing to authenticate is answered 429 (even with a valid key)
//! for the rest of the minute; a role with MISP's rate limit gets 429 past its count. Both are JSON with
//! Retry-After, and write nothing.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

async fn call(stack: &Stack, key: &str) -> (u16, Option<String>, Value) {
    let r = stack.request(reqwest::Method::GET, "/events/index", key).send().await.expect("request");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn repeated_authentication_failures_are_throttled_per_address() {
    let stack = Stack::start_with(|s| s.auth_failures_per_minute = 5).await;
    let head = stack.head_position().await;
    let wrong = "B".repeat(40);
    for _ in 0..5 {
        let (status, _, body) = call(&stack, &wrong).await;
        assert_eq!(status, 403, "{body}");
    }
    // The limit is reached: every request from this address waits, a valid key included.
    for key in [wrong.as_str(), stack.admin_key.as_str()] {
        let (status, retry, body) = call(&stack, key).await;
        assert_eq!(status, 429, "{body}");
        assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
        assert!(body["message"].as_str().is_some_and(|m| m.contains("Too many failed authentication attempts")), "{body}");
    }
    assert_eq!(stack.head_position().await, head, "throttled requests write nothing");
    stack.stop().await;
}

#[tokio::test]
async fn a_role_with_a_rate_limit_gets_429_past_its_count() {
    let stack = Stack::start().await;
    let (status, role) = stack
        .post("/admin/roles/add", &json!({"Role": {"name": "Limited", "permission": 1, "perm_audit": true, "enforce_rate_limit": true, "rate_limit_count": 3}}))
        .await;
    assert_eq!(status, 200, "{role}");
    assert_eq!((role["Role"]["enforce_rate_limit"].clone(), role["Role"]["rate_limit_count"].clone()), (json!(true), json!("3")));
    let (org, _) = stack.org_user("CERT-Limited", "first@l.test", 3).await;
    let (_, key) = stack.user_in(&org, "limited@l.test", role["Role"]["id"].clone()).await;
    for _ in 0..3 {
        let (status, _, body) = call(&stack, &key).await;
        assert_eq!(status, 200, "{body}");
    }
    let head = stack.head_position().await;
    let (status, retry, body) = call(&stack, &key).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| s > 0 && s <= 900));
    let r = stack.post_as(&key, "/events/add", &json!({"info": "over the limit"})).await;
    assert_eq!(r.0, 429, "{}", r.1);
    assert_eq!(stack.head_position().await, head, "a throttled write writes nothing");
    // Other users are not affected.
    let (status, _, _) = call(&stack, &stack.admin_key.clone()).await;
    assert_eq!(status, 200);
    stack.stop().await;
}

#[tokio::test]
async fn a_key_restricted_to_addresses_works_only_from_them() {
    let stack = Stack::start().await;
    let (org, _) = stack.org_user("CERT-Keys", "keys@k.test", 3).await;
    let (user_id, _) = stack.user_in(&org, "ips@k.test", json!(3)).await;
    // A malformed range is refused, naming it, and nothing is written.
    let head = stack.head_position().await;
    let (status, r) = stack.post(&format!("/auth_keys/add/{user_id}"), &json!({"allowed_ips": ["192.0.2.0/33"]})).await;
    assert_eq!(status, 403, "{r}");
    assert!(r["errors"]["allowed_ips"][0].as_str().is_some_and(|m| m.contains("192.0.2.0/33")), "{r}");
    assert_eq!(stack.head_position().await, head);
    // A key for another network is refused from here (the tests connect from 127.0.0.1) …
    let (status, elsewhere) = stack.post(&format!("/auth_keys/add/{user_id}"), &json!({"allowed_ips": ["192.0.2.0/24", "2001:db8::/32"]})).await;
    assert_eq!(status, 200, "{elsewhere}");
    assert_eq!(elsewhere["AuthKey"]["allowed_ips"], json!(["192.0.2.0/24", "2001:db8::/32"]));
    let (status, _, body) = call(&stack, elsewhere["AuthKey"]["authkey_raw"].as_str().expect("key")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("Authentication failed")), "{body}");
    // … and one for loopback works.
    let (status, here) = stack.post(&format!("/auth_keys/add/{user_id}"), &json!({"allowed_ips": "127.0.0.0/8\n::1"})).await;
    assert_eq!(status, 200, "{here}");
    let (status, _, body) = call(&stack, here["AuthKey"]["authkey_raw"].as_str().expect("key")).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}
