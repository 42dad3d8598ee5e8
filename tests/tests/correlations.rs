//! Correlations: MISP's rules on a hand-derived fixture (C1) and "incremental equals rebuild" on random
//! operation sequences (C2).

use cairn_tests::oracle::Rng;
use cairn_tests::stack::Stack;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn id(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no id: {v}"))
}

async fn event(stack: &Stack, info: &str, disable: bool, attributes: Value) -> (i64, Vec<i64>) {
    let (status, e) = stack
        .post("/events/add", &json!({"info": info, "distribution": 3, "disable_correlation": disable, "Attribute": attributes}))
        .await;
    assert_eq!(status, 200, "{e}");
    let ids = e["Event"]["Attribute"].as_array().expect("attributes").iter().map(|a| id(&a["id"])).collect();
    (id(&e["Event"]["id"]), ids)
}

/// Every correlating pair the admin sees, as unordered attribute-id pairs.
async fn pairs(stack: &Stack, events: &[i64]) -> BTreeSet<(i64, i64)> {
    let mut out = BTreeSet::new();
    for e in events {
        let (status, v) = stack.post(&format!("/events/view/{e}"), &json!({"includeGranularCorrelations": 1})).await;
        assert_eq!(status, 200, "{v}");
        for a in v["Event"]["Attribute"].as_array().into_iter().flatten() {
            for r in a["RelatedAttribute"].as_array().into_iter().flatten() {
                let (x, y) = (id(&a["id"]), id(&r["id"]));
                out.insert((x.min(y), x.max(y)));
            }
        }
    }
    out
}

#[tokio::test]
async fn correlations_follow_every_misp_rule() {
    let stack = Stack::start().await;
    stack.post("/servers/serverSettingsEdit/MISP.correlation_limit", &json!({"value": 3})).await;
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let (e1, a1) = event(&stack, "one", false, json!([
        {"type": "ip-dst", "value": "10.0.0.1"},                       // 0
        {"type": "filename|md5", "value": format!("Evil.exe|{md5}")},  // 1
        {"type": "ip-dst|port", "value": "10.0.0.2|443"},              // 2
        {"type": "comment", "value": "shared comment"},                // 3
        {"type": "domain", "value": "same.example"},                   // 4
        {"type": "hostname", "value": "same.example"},                 // 5 same event: no pair with 4
        {"type": "domain", "value": "a.excluded.example"},             // 6
        {"type": "ip-dst", "value": "192.168.0.0/24"},                 // 7
        {"type": "domain", "value": "limit.example"},                  // 8
        {"type": "domain", "value": "over.example"},                   // 9
    ])).await;
    let (e2, a2) = event(&stack, "two", false, json!([
        {"type": "ip-src", "value": "10.0.0.1"},                       // 0 ↔ e1.0 (type is ignored)
        {"type": "md5", "value": md5},                                 // 1 ↔ e1.1 (second half)
        {"type": "filename", "value": "evil.EXE"},                     // 2 ↔ e1.1 (first half, any case)
        {"type": "port", "value": "443"},                              // 3 never (non-correlating; port halves never)
        {"type": "comment", "value": "shared comment"},                // 4 never
        {"type": "text", "value": "10.0.0.2"},                         // 5 ↔ e1.2 (first half of a port type)
        {"type": "domain", "value": "a.excluded.example"},             // 6 excluded
        {"type": "ip-src", "value": "192.168.0.5"},                    // 7 ↔ e1.7 only with advanced correlations
        {"type": "domain", "value": "limit.example"},                  // 8
        {"type": "domain", "value": "over.example"},                   // 9
        {"type": "domain", "value": "deleted.example"},                // 10 deleted below
        {"type": "domain", "value": "disabled.example", "disable_correlation": true}, // 11
    ])).await;
    let (e3, a3) = event(&stack, "three", false, json!([
        {"type": "domain", "value": "limit.example"},                  // 0
        {"type": "domain", "value": "over.example"},                   // 1
        {"type": "domain", "value": "deleted.example"},                // 2
        {"type": "domain", "value": "disabled.example"},               // 3
    ])).await;
    let (e4, _a4) = event(&stack, "four", false, json!([{"type": "domain", "value": "over.example"}])).await;
    let (e5, _a5) = event(&stack, "five (correlation disabled)", true, json!([{"type": "ip-dst", "value": "10.0.0.1"}])).await;
    let (status, r) = stack.post("/correlation_exclusions/add", &json!({"value": "%.excluded.example"})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = stack.post(&format!("/attributes/delete/{}", a2[10]), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    let events = [e1, e2, e3, e4, e5];

    let p = |a: i64, b: i64| (a.min(b), a.max(b));
    let mut expected: BTreeSet<(i64, i64)> = [
        p(a1[0], a2[0]),
        p(a1[1], a2[1]),
        p(a1[1], a2[2]),
        p(a1[2], a2[5]),
        // limit.example: 3 holders, limit 3 → pairs across Events
        p(a1[8], a2[8]),
        p(a1[8], a3[0]),
        p(a2[8], a3[0]),
        // over.example: 4 holders > 3 → none; deleted.example: one side deleted; disabled.example: one side disabled
    ]
    .into_iter()
    .collect();
    assert_eq!(pairs(&stack, &events).await, expected, "advanced correlations off");

    stack.post("/servers/serverSettingsEdit/MISP.enable_advanced_correlations", &json!({"value": true})).await;
    expected.insert(p(a1[7], a2[7]));
    assert_eq!(pairs(&stack, &events).await, expected, "CIDR both ways with advanced correlations on");

    // One more holder of limit.example tips it over the limit; deleting it brings the pairs back.
    let (e6, a6) = event(&stack, "six", false, json!([{"type": "domain", "value": "limit.example"}])).await;
    let mut over = expected.clone();
    over.retain(|(x, _)| ![a1[8], a2[8]].contains(x));
    assert_eq!(pairs(&stack, &[e1, e2, e3, e4, e5, e6]).await, over, "limit + 1 holders: no pairs");
    stack.post(&format!("/attributes/delete/{}", a6[0]), &json!({"hard": 1})).await;
    assert_eq!(pairs(&stack, &events).await, expected, "back under the limit: pairs again");

    // Over-correlating values are listed with their counts; deleting the exclusion restores its pair.
    let (_, list) = stack.get("/correlations/overCorrelations").await;
    assert!(list.as_array().expect("list").iter().any(|o| o["OverCorrelatingValue"]["value"] == "over.example" && o["OverCorrelatingValue"]["occurrence"] == "4"));
    let (_, exclusions) = stack.get("/correlation_exclusions/index").await;
    let ex = id(&exclusions[0]["CorrelationExclusion"]["id"]);
    stack.post(&format!("/correlation_exclusions/delete/{ex}"), &json!({})).await;
    expected.insert(p(a1[6], a2[6]));
    assert_eq!(pairs(&stack, &events).await, expected, "an exclusion removed: the value correlates again");
    stack.stop().await;
}

#[tokio::test]
async fn incremental_correlations_equal_a_rebuild_of_the_log() {
    let seed: u64 = std::env::var("CAIRN_CORRELATION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(3)
    });
    let mut rng = Rng::new(seed);
    let stack = Stack::start().await;
    let values = ["a.example", "b.example", "10.1.1.1", "10.1.1.0/24", "evil.exe", "x.example"];
    let mut events: Vec<i64> = Vec::new();
    let mut attributes: BTreeMap<i64, i64> = BTreeMap::new(); // attribute → event
    for step in 0..80 {
        match rng.below(8) {
            0 | 1 if events.len() < 8 => {
                let n = 1 + rng.below(3);
                let attrs: Vec<Value> = (0..n).map(|i| json!({"type": "text", "value": format!("{}-{step}-{i}", values[rng.below(6) as usize])})).collect();
                let (e, ids) = event(&stack, &format!("e{step}"), rng.chance(10), json!(attrs)).await;
                events.push(e);
                ids.into_iter().for_each(|a| {
                    attributes.insert(a, e);
                });
            }
            2 | 3 if !events.is_empty() => {
                let e = *rng.pick(&events).expect("event");
                let v = values[rng.below(6) as usize];
                let t = if v.starts_with("10.") { "ip-dst" } else { "domain" };
                let t = if v == "evil.exe" { "filename" } else { t };
                let (s, r) = stack.post(&format!("/attributes/add/{e}"), &json!({"type": t, "value": v, "distribution": rng.below(6)})).await;
                if s == 200 {
                    attributes.insert(id(&r["Attribute"]["id"]), e);
                }
            }
            4 if !attributes.is_empty() => {
                let keys: Vec<i64> = attributes.keys().copied().collect();
                let a = *rng.pick(&keys).expect("attribute");
                let body = if rng.chance(50) { json!({"value": format!("edited-{}", values[rng.below(3) as usize])}) } else { json!({"disable_correlation": rng.chance(50)}) };
                stack.post(&format!("/attributes/edit/{a}"), &body).await;
            }
            5 if !attributes.is_empty() => {
                let keys: Vec<i64> = attributes.keys().copied().collect();
                let a = *rng.pick(&keys).expect("attribute");
                let hard = rng.chance(30);
                stack.post(&format!("/attributes/delete/{a}"), &json!({"hard": hard})).await;
                if hard {
                    attributes.remove(&a);
                } else if rng.chance(50) {
                    stack.post(&format!("/attributes/restore/{a}"), &json!({})).await;
                }
            }
            6 if !events.is_empty() => {
                let e = *rng.pick(&events).expect("event");
                stack.post(&format!("/events/edit/{e}"), &json!({"distribution": rng.below(4), "disable_correlation": rng.chance(20)})).await;
            }
            7 if events.len() > 2 => {
                let i = rng.below(events.len() as u64) as usize;
                let e = events.remove(i);
                stack.post(&format!("/events/delete/{e}"), &json!({})).await;
                attributes.retain(|_, ev| *ev != e);
            }
            _ => {}
        }
    }
    // The correlator caught up, `cairnctl rebuild correlator` (the log folded, tables written in bulk)
    // finds the same rows, and switches to them.
    let head = stack.head_position().await;
    let caught_up = cairn_tests::eventually(std::time::Duration::from_secs(20), || async {
        let (_, h) = stack.get("/health").await;
        h["projectors"]["correlator"].as_i64().unwrap_or(0) >= head
    })
    .await;
    assert!(caught_up, "the correlator did not reach {head}");
    let out = std::process::Command::new(cairn_tests::bins::path("cairnctl"))
        .args(["rebuild", "correlator"])
        .env("CAIRN_DATABASE_URL", &stack.db.url)
        .output()
        .expect("cairnctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("4 tables equal the live ones"), "seed {seed}: the incremental read model differs from a rebuild: {stdout}");
    // And the live projector goes on over the switched tables.
    let (e, _) = event(&stack, "after switch", false, json!([{"type": "domain", "value": "a.example"}])).await;
    let (status, _) = stack.get(&format!("/events/view/{e}")).await;
    assert_eq!(status, 200);
    stack.stop().await;
}
