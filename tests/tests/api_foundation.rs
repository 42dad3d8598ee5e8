//! The API skeleton over a real stack: authentication, MISP error shapes, the PyMISP handshake routes.

use cairn_tests::stack::Stack;
use reqwest::Method;
use serde_json::{Value, json};

const AUTH_FAILED: &str =
    "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";

fn assert_misp_error(body: &Value, url: &str) {
    assert!(body["name"].is_string() && body["message"].is_string(), "MISP error shape: {body}");
    assert_eq!(body["url"], url);
}

#[tokio::test]
async fn the_handshake_routes_answer_like_misp() {
    let stack = Stack::start().await;
    let (status, version) = stack.get("/servers/getVersion").await;
    assert_eq!(status, 200);
    let v = version["version"].as_str().expect("version");
    assert!(v.split('.').all(|p| p.parse::<u32>().is_ok()), "{v}");
    assert_eq!(version["perm_sync"], json!(true));

    let (status, me) = stack.get("/users/view/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["User"]["id"], "1");
    assert_eq!(me["User"]["org_id"], "1");
    assert_eq!(me["Role"]["perm_site_admin"], json!(true));
    assert_eq!(me["Organisation"]["name"], "ORGNAME");
    assert!(me.get("UserSetting").is_some());
    assert_eq!(me["User"]["password"], "*****");

    let r = stack.request(Method::GET, "/attributes/describeTypes.json", &stack.admin_key).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let served = r.bytes().await.expect("body");
    let file = std::fs::read(cairn_tests::stack::data_dir().join("pymisp/describeTypes.json")).expect("file");
    assert_eq!(served.as_ref(), file.as_slice(), "served verbatim");
    stack.stop().await;
}

#[tokio::test]
async fn bad_keys_get_misps_403_and_write_nothing() {
    let stack = Stack::start().await;
    let head = stack.head_position().await;
    let cases: Vec<Option<String>> = vec![
        None,
        Some("A".repeat(40)),
        Some("short".into()),
        Some(format!("{}!", &stack.admin_key[..39])),
        Some(format!("Basic {}", stack.admin_key)),
    ];
    for key in cases {
        let mut req = stack.http.post(format!("{}/servers/serverSettingsEdit/debug", stack.base)).json(&json!({"value": 1}));
        if let Some(k) = &key {
            req = req.header("Authorization", k);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), 403, "{key:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["message"], AUTH_FAILED);
        assert_misp_error(&body, "/servers/serverSettingsEdit/debug");
    }
    // Several comma-separated keys: the first valid one wins; X-MISP-AUTH works too.
    let r = stack
        .http
        .get(format!("{}/users/view/me", stack.base))
        .header("Authorization", format!("{},{}", "B".repeat(40), stack.admin_key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let r = stack.http.get(format!("{}/users/view/me", stack.base)).header("X-MISP-AUTH", &stack.admin_key).send().await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(stack.head_position().await, head, "the log head did not move");
    stack.stop().await;
}

#[tokio::test]
async fn malformed_input_gets_a_json_4xx_and_writes_nothing() {
    let stack = Stack::start().await;
    let head = stack.head_position().await;
    let r = stack
        .request(Method::POST, "/servers/serverSettingsEdit/debug", &stack.admin_key)
        .body("{\"value\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    assert_misp_error(&r.json().await.expect("json"), "/servers/serverSettingsEdit/debug");

    let (status, body) = stack.post("/servers/serverSettingsEdit/debug", &json!({"force": true})).await;
    assert_eq!(status, 403, "missing value is MISP's saveFail");
    assert_eq!(body["saved"], json!(false));
    assert_eq!(body["errors"]["value"][0], "Mandatory field not set.");

    let huge = vec![b'a'; cairn_api::MAX_BODY_BYTES + 10];
    let r = stack.request(Method::POST, "/servers/serverSettingsEdit/debug", &stack.admin_key).body(huge).send().await.expect("request");
    assert_eq!(r.status(), 413);
    assert_misp_error(&r.json().await.expect("json"), "/servers/serverSettingsEdit/debug");

    let (status, body) = stack.get("/no/such/route/at/all").await;
    assert_eq!(status, 404);
    assert_misp_error(&body, "/no/such/route/at/all");

    // Routes axum answers itself (wrong method on a native route) are JSON too.
    let r = stack.http.put(format!("{}/health", stack.base)).send().await.expect("request");
    assert_eq!(r.status(), 405);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    assert_misp_error(&r.json().await.expect("json"), "/health");

    assert_eq!(stack.head_position().await, head, "the log head did not move");
    stack.stop().await;
}

#[tokio::test]
async fn settings_are_recorded_as_changes_and_read_back() {
    let stack = Stack::start().await;
    let (status, body) = stack.get("/servers/getSetting/MISP.default_event_distribution").await;
    assert_eq!((status, body["value"].clone()), (200, json!(1)));
    let head = stack.head_position().await;
    let (status, body) = stack.post("/servers/serverSettingsEdit/MISP.background_jobs", &json!({"value": true, "force": true})).await;
    assert_eq!((status, body["message"].clone()), (200, json!("Field updated")));
    assert_eq!(stack.head_position().await, head + 1);
    let (_, body) = stack.get("/servers/getSetting/MISP.background_jobs").await;
    assert_eq!(body["value"], json!(true), "read your write");
    // The same value again records nothing.
    stack.post("/servers/serverSettingsEdit/MISP.background_jobs", &json!({"value": true})).await;
    assert_eq!(stack.head_position().await, head + 1);
    stack.stop().await;
}

#[tokio::test]
async fn health_and_metrics_need_no_key() {
    let stack = Stack::start().await;
    let r = stack.http.get(format!("{}/health", stack.base)).send().await.expect("health");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert!(body["head"].as_i64().expect("head") >= 1);
    let text = stack.http.get(format!("{}/metrics", stack.base)).send().await.expect("metrics").text().await.expect("text");
    assert!(text.contains("cairn_log_head_position"), "{text}");
    assert!(text.contains("cairn_read_model_lag{projector=\"indexer\"}"), "{text}");
    assert!(text.contains("# TYPE cairn_api_requests_total counter"), "{text}");
    stack.stop().await;
}
