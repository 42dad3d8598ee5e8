//! The audit reviewer's story: after edits, a proposal and its acceptance, a delegation request and a
//! deletion, the Event as of each step equals what `/events/view` answered at that step; the history
//! shows who did what with readable diffs; an auditor of another organisation never sees a private
//! history (nor an org-only attribute inside a shared Event); a role without perm_audit is refused and
//! nothing is written; tampering with a stored change is detected and its commit named; every answered
//! audit query is itself in the log.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

/// The parts of an Event view that depend on other Events or on enabled lists, not on its history.
fn historical(mut view: Value) -> Value {
    if let Some(e) = view["Event"].as_object_mut() {
        for k in ["RelatedEvent", "warnings"] {
            e.remove(k);
        }
    }
    view.as_object_mut().map(|m| m.remove("as_of"));
    view
}

async fn last_version(stack: &Stack, uuid: &str) -> i64 {
    let (status, h) = stack.post(&format!("/audit/history/{uuid}"), &json!({})).await;
    assert_eq!(status, 200, "{h}");
    h["changes"].as_array().and_then(|c| c.last()).and_then(|c| c["stream_version"].as_i64()).expect("version")
}

#[tokio::test]
async fn the_event_as_of_every_step_equals_what_the_view_answered_then() {
    let stack = Stack::start().await;
    let (org_a, owner) = stack.org_user("CERT-Owner", "owner@a.test", 2).await;
    let (org_b, analyst) = stack.org_user("CERT-Analyst", "analyst@b.test", 3).await;
    let (_, outsider) = stack.org_user("CERT-Outsider", "outsider@c.test", 3).await;
    let _ = org_a;

    let mut steps: Vec<(i64, Value)> = Vec::new();
    let view = |key: String| {
        let stack = &stack;
        let owner = owner.clone();
        async move {
            let (status, v) = stack.post_as(&owner, &format!("/events/view/{key}"), &json!({})).await;
            assert_eq!(status, 200, "{v}");
            v
        }
    };
    // 1. The Event: community-wide, with an org-only attribute.
    let (status, e) = stack
        .post_as(&owner, "/events/add", &json!({"info": "audit trail", "distribution": 1, "Attribute": [
            {"type": "ip-dst", "value": "198.51.100.21", "comment": "C2"},
            {"type": "ip-dst", "value": "198.51.100.22", "distribution": 0, "comment": "our sinkhole"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let shared = e["Event"]["Attribute"].as_array().expect("attrs").iter().find(|a| a["value"] == "198.51.100.21").expect("a")["id"].as_str().expect("id").to_string();
    let private = e["Event"]["Attribute"].as_array().expect("attrs").iter().find(|a| a["value"] == "198.51.100.22").expect("a")["id"].as_str().expect("id").to_string();
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    // 2. An edit.
    let (status, r) = stack.post_as(&owner, &format!("/attributes/edit/{shared}"), &json!({"comment": "C2 (confirmed)"})).await;
    assert_eq!(status, 200, "{r}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    // 3. Another organisation proposes; 4. the owner accepts.
    let (status, p) = stack.post_as(&analyst, &format!("/shadow_attributes/edit/{shared}"), &json!({"to_ids": false})).await;
    assert_eq!(status, 200, "{p}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    let proposal = p["ShadowAttribute"]["id"].as_str().expect("id").to_string();
    let (status, r) = stack.post_as(&owner, &format!("/shadow_attributes/accept/{proposal}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    // 5. The Event becomes org-only (MISP delegates only those); 6. a delegation request; 7. a deletion.
    let (status, r) = stack.post_as(&owner, &format!("/events/edit/{id}"), &json!({"distribution": 0})).await;
    assert_eq!(status, 200, "{r}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    let (status, d) = stack.post_as(&owner, &format!("/event_delegations/delegateEvent/{id}"), &json!({"org_id": org_b, "message": "yours?"})).await;
    assert_eq!(status, 200, "{d}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));
    let (status, r) = stack.post_as(&owner, &format!("/attributes/delete/{shared}"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    steps.push((last_version(&stack, &uuid).await, view(id.clone()).await));

    for (version, expected) in &steps {
        let (status, as_of) = stack.post_as(&owner, &format!("/audit/event/{uuid}/version:{version}"), &json!({})).await;
        assert_eq!(status, 200, "{as_of}");
        assert_eq!(historical(as_of), historical(expected.clone()), "as of version {version}");
    }
    // By position and by time too; before the Event existed there is nothing.
    let (_, by_time) = stack.post_as(&owner, &format!("/audit/event/{id}?time={}", chrono::Utc::now().timestamp() + 60), &json!({})).await;
    assert_eq!(historical(by_time), historical(steps.last().expect("steps").1.clone()));
    let (status, _) = stack.post_as(&owner, &format!("/audit/event/{uuid}/position:1"), &json!({})).await;
    assert_eq!(status, 404);
    // Diffs: the edit and the accepted proposal; then the deletion (a soft-deleted attribute leaves the
    // view) and the distribution change.
    let (status, diff) = stack.post_as(&owner, &format!("/audit/diff/{uuid}"), &json!({"from": steps[0].0, "to": steps[3].0})).await;
    assert_eq!(status, 200, "{diff}");
    let changed = &diff["diff"]["Attribute"]["changed"][0]["changes"];
    assert_eq!(changed["comment"], json!({"from": "C2", "to": "C2 (confirmed)"}), "{diff}");
    assert_eq!(changed["to_ids"], json!({"from": true, "to": false}), "{diff}");
    let (_, diff) = stack.post_as(&owner, &format!("/audit/diff/{uuid}/from:{}/to:{}", steps[0].0, steps[steps.len() - 1].0), &json!({})).await;
    assert_eq!(diff["diff"]["Attribute"]["removed"][0]["value"], "198.51.100.21", "{diff}");
    assert_eq!(diff["diff"]["Event"]["distribution"], json!({"from": "1", "to": "0"}), "{diff}");
    // The history: who did what, with readable diffs.
    let (status, h) = stack.post_as(&owner, &format!("/audit/history/{uuid}"), &json!({})).await;
    assert_eq!(status, 200, "{h}");
    let changes = h["changes"].as_array().expect("changes");
    let edit = changes.iter().find(|c| c["change_type"] == "attribute.updated" && c["command"] == "attributes.edit").expect("edit");
    assert_eq!(edit["diff"]["comment"], json!({"from": "C2", "to": "C2 (confirmed)"}), "{edit}");
    assert_eq!(edit["actor"]["email"], "owner@a.test");
    assert!(changes.iter().any(|c| c["change_type"] == "proposal.added" && c["actor"]["email"] == "analyst@b.test"));

    // Another organisation's auditor sees the shared history, never the org-only attribute.
    let (status, hb) = stack.post_as(&analyst, &format!("/audit/history/{id}"), &json!({})).await;
    assert_eq!(status, 200, "{hb}");
    let text = hb.to_string();
    assert!(text.contains("198.51.100.21") && !text.contains("198.51.100.22") && !text.contains("our sinkhole"), "{hb}");
    let (status, r) = stack.post_as(&analyst, &format!("/audit/event/{uuid}/version:{}", steps[0].0), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert!(!r.to_string().contains("198.51.100.22"), "the as-of view applies the access rule");
    let _ = private;

    // A private Event's history does not exist for another organisation's auditor.
    let (_, secret) = stack.post_as(&owner, "/events/add", &json!({"info": "private", "distribution": 0,
        "Attribute": [{"type": "domain", "value": "private.example.test"}]})).await;
    let secret_uuid = secret["Event"]["uuid"].as_str().expect("uuid").to_string();
    for path in [format!("/audit/history/{secret_uuid}"), format!("/audit/event/{secret_uuid}"), format!("/audit/diff/{secret_uuid}/from:1/to:1")] {
        let (status, r) = stack.post_as(&outsider, &path, &json!({})).await;
        assert_eq!(status, 404, "{path}: {r}");
    }
    // The outsider's view of the log holds its own organisation's actions only.
    let (status, log) = stack.post_as(&outsider, "/audit/log", &json!({"limit": 10000})).await;
    assert_eq!(status, 200, "{log}");
    assert!(!log.to_string().contains("private.example.test") && !log.to_string().contains("owner@a.test"), "{log}");

    // Every answered audit query is itself recorded, under the reader's name.
    let (_, queries) = stack.post_as(&owner, "/audit/log", &json!({"change_type": "audit.queried", "limit": 10000})).await;
    let routes: Vec<&str> = queries["changes"].as_array().expect("changes").iter().filter_map(|c| c["payload"]["route"].as_str()).collect();
    for route in ["audit/event", "audit/diff", "audit/history"] {
        assert!(routes.contains(&route), "{route} not recorded: {routes:?}");
    }
    assert!(queries["changes"].as_array().expect("changes").iter().all(|c| c["actor"]["email"] == "owner@a.test"));
    stack.stop().await;
}

#[tokio::test]
async fn without_perm_audit_every_audit_route_is_refused_and_writes_nothing() {
    let stack = Stack::start().await;
    let (status, role) = stack.post("/admin/roles/add", &json!({"Role": {"name": "Analyst without audit", "permission": 2, "perm_tagger": true}})).await;
    assert_eq!(status, 200, "{role}");
    assert_eq!(role["Role"]["perm_audit"], json!(false), "{role}");
    let role_id = role["Role"]["id"].as_str().expect("id").to_string();
    let (org, _) = stack.org_user("CERT-NoAudit", "first@n.test", 3).await;
    let (_, key) = stack.user_in(&org, "noaudit@n.test", json!(role_id)).await;
    // The role works for what it allows.
    let (status, e) = stack.post_as(&key, "/events/add", &json!({"info": "mine", "distribution": 0})).await;
    assert_eq!(status, 200, "{e}");
    let uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let head = stack.head_position().await;
    for path in ["/audit/log".to_string(), format!("/audit/history/{uuid}"), format!("/audit/event/{uuid}"), format!("/audit/diff/{uuid}/from:1"), "/audit/verify".into(), "/audit/checkpoints/latest".into()] {
        let (status, r) = stack.post_as(&key, &path, &json!({})).await;
        assert_eq!(status, 403, "{path}: {r}");
    }
    // Bad parameters are 400s.
    for path in ["/audit/log/after:x", "/audit/log?from=yesterday"] {
        let (status, r) = stack.post(path, &json!({})).await;
        assert_eq!(status, 400, "{path}: {r}");
    }
    assert_eq!(stack.head_position().await, head, "refused audit queries write nothing");
    // A role in use cannot be deleted; MISP's defaults cannot be changed.
    let (status, _) = stack.post(&format!("/admin/roles/delete/{role_id}"), &json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = stack.post("/admin/roles/edit/3", &json!({"perm_audit": false})).await;
    assert_eq!(status, 403);
    stack.stop().await;
}

#[tokio::test]
async fn tampering_with_a_stored_change_is_detected_and_named() {
    let stack = Stack::start().await;
    let (_, e) = stack.post("/events/add", &json!({"info": "evidence", "Attribute": [{"type": "ip-dst", "value": "198.51.100.99"}]})).await;
    let uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let (status, ok) = stack.post("/audit/verify", &json!({})).await;
    assert_eq!((status, ok["valid"].clone()), (200, json!(true)), "{ok}");
    // As the database superuser, with the append-only triggers out of the way: rewrite the indicator.
    let su = stack.db.connect().await;
    let position: i64 = su
        .query_one("SELECT position FROM es.changes WHERE stream_id = $1::text::uuid AND change_type = 'attribute.added'", &[&uuid])
        .await
        .expect("position")
        .get(0);
    let commit: i64 = su.query_one("SELECT commit_seq FROM es.changes WHERE position = $1", &[&position]).await.expect("commit").get(0);
    su.batch_execute(&format!(
        "ALTER TABLE es.changes DISABLE TRIGGER USER; \
         UPDATE es.changes SET payload = jsonb_set(payload, '{{value1}}', '\"203.0.113.1\"') WHERE position = {position}; \
         ALTER TABLE es.changes ENABLE TRIGGER USER;"
    ))
    .await
    .expect("tamper");
    let (status, bad) = stack.post("/audit/verify", &json!({})).await;
    assert_eq!(status, 200, "{bad}");
    assert_eq!(bad["valid"], json!(false), "{bad}");
    assert_eq!(bad["commit"], json!(commit), "{bad}");
    assert!(bad["reason"].as_str().is_some_and(|r| r.contains(&format!("position {position}"))), "{bad}");
    stack.stop().await;
}

#[tokio::test]
async fn a_log_written_with_v1_shapes_still_replays_after_v2_is_introduced() {
    use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StreamWrite};
    let stack = Stack::start().await;
    // A setting change as an older Cairn wrote it (instance.setting_changed v1: no `previous`).
    let actor = json!({"user_id": 0, "email": "system", "org_id": 0, "via": "test:v1"});
    Appender::spawn(stack.db.pool.clone(), None)
        .commit(CommitRequest {
            command_id: uuid::Uuid::new_v4(),
            command_type: "servers.settings_edit".into(),
            actor,
            writes: vec![StreamWrite {
                stream_id: cairn_domain::stream::instance_stream(),
                stream_type: cairn_domain::stream::INSTANCE.into(),
                expected: ExpectedVersion::Exists,
                changes: vec![NewChange::new("instance.setting_changed", 1, json!({"name": "Plugin.Enrichment_timeout", "value": 7}))],
            }],
        })
        .await
        .expect("append a v1 change");
    // The read model replayed it (the indexer decodes v1 through the upcaster) …
    let mut setting = Value::Null;
    for _ in 0..100 {
        let (_, s) = stack.get("/servers/getSetting/Plugin.Enrichment_timeout").await;
        setting = s["value"].clone();
        if setting == json!(7) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(setting, json!(7));
    // … and so does the write side: the next change records the v1 value as the one it replaces.
    let (status, _) = stack.post("/servers/serverSettingsEdit/Plugin.Enrichment_timeout", &json!({"value": 9})).await;
    assert_eq!(status, 200);
    let (status, h) = stack.post(&format!("/audit/history/{}", cairn_domain::stream::instance_stream()), &json!({})).await;
    assert_eq!(status, 200, "{h}");
    let last = h["changes"].as_array().and_then(|c| c.last()).expect("last").clone();
    assert_eq!((last["schema_version"].clone(), last["payload"]["previous"].clone()), (json!(2), json!(7)), "{last}");
    let (_, ok) = stack.post("/audit/verify", &json!({})).await;
    assert_eq!(ok["valid"], json!(true), "{ok}");
    stack.stop().await;
}

#[tokio::test]
async fn signed_checkpoints_let_a_partner_detect_rewritten_history() {
    let dir = std::env::temp_dir().join(format!("cairn-checkpoint-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("checkpoint.key");
    let cairnctl = cairn_tests::bins::path("cairnctl");
    let out = std::process::Command::new(&cairnctl).args(["checkpoint-key", "--key-file"]).arg(&key_file).output().expect("cairnctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(public_key.len(), 64, "{public_key}");
    let stack = Stack::start_with(|s| {
        s.checkpoint_key_file = Some(key_file.clone());
        s.checkpoint_interval_secs = 1;
    })
    .await;
    let (_, e) = stack.post("/events/add", &json!({"info": "signed", "Attribute": [{"type": "ip-dst", "value": "198.51.100.77"}]})).await;
    let event_position = stack.head_position().await;
    assert!(e["Event"]["id"].is_string(), "{e}");
    // The notary signs the head within its interval.
    let mut checkpoint = Value::Null;
    for _ in 0..100 {
        let (status, c) = stack.get("/audit/checkpoints/latest").await;
        if status == 200 && c["position"].as_i64().is_some_and(|p| p >= event_position) {
            checkpoint = c;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(checkpoint["public_key"], json!(public_key), "{checkpoint}");
    let file = dir.join("checkpoint.json");
    std::fs::write(&file, checkpoint.to_string()).expect("write");
    let verify = || {
        std::process::Command::new(&cairnctl)
            .args(["verify", "--public-key", &public_key, "--checkpoint"])
            .arg(&file)
            .env("CAIRN_DATABASE_URL", &stack.db.url)
            .output()
            .expect("cairnctl verify")
    };
    let ok = verify();
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("checkpoint: OK"));
    // A forged checkpoint (another position, same signature) is refused.
    let mut forged = checkpoint.clone();
    forged["body"] = json!(checkpoint["body"].as_str().expect("body").replace("position ", "position 1"));
    std::fs::write(dir.join("forged.json"), forged.to_string()).expect("write");
    let out = std::process::Command::new(&cairnctl)
        .args(["verify", "--checkpoint"])
        .arg(dir.join("forged.json"))
        .env("CAIRN_DATABASE_URL", &stack.db.url)
        .output()
        .expect("cairnctl verify");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("signature"), "{}", String::from_utf8_lossy(&out.stderr));
    // History rewritten up to the signed commit: the checkpoint no longer matches, and says where.
    let commit = checkpoint["commit"].as_i64().expect("commit");
    let su = stack.db.connect().await;
    su.batch_execute(&format!(
        "ALTER TABLE es.commits DISABLE TRIGGER USER; UPDATE es.commits SET chain_hash = sha256(chain_hash) WHERE commit_seq = {commit}; \
         ALTER TABLE es.commits ENABLE TRIGGER USER;"
    ))
    .await
    .expect("tamper");
    let bad = verify();
    assert!(!bad.status.success(), "a rewritten history must fail");
    assert!(String::from_utf8_lossy(&bad.stderr).contains(&format!("commit {commit}")), "{}", String::from_utf8_lossy(&bad.stderr));
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
