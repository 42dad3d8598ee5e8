//! Rebuild and replay from the log: `cairnctl rebuild indexer` replays every read model of the indexer
//! from zero and finds them equal to the live ones (and names a table an operator tampered with);
//! `cairnctl replay --until` materialises the platform as of an earlier position into a read-only
//! database.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

fn cairnctl(stack: &Stack, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cairn_tests::bins::path("cairnctl"))
        .args(args)
        .env("CAIRN_DATABASE_URL", &stack.db.url)
        .output()
        .expect("cairnctl")
}

async fn indexed(stack: &Stack) {
    caught_up(stack, &["indexer"]).await;
}

async fn caught_up(stack: &Stack, projectors: &[&str]) {
    let head = stack.head_position().await;
    let ok = cairn_tests::eventually(std::time::Duration::from_secs(20), || async {
        let (_, h) = stack.get("/health").await;
        projectors.iter().all(|p| h["projectors"][p].as_i64().unwrap_or(0) >= head)
    })
    .await;
    assert!(ok, "{projectors:?} did not reach {head}");
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

async fn ok(stack: &Stack, key: Option<&str>, path: &str, body: Value) -> Value {
    let (status, r) = match key {
        Some(k) => stack.post_as(k, path, &body).await,
        None => stack.post(path, &body).await,
    };
    assert_eq!(status, 200, "{path}: {r}");
    r
}

/// Everything the incremental projectors handle, then `cairnctl rebuild all`: the log read once and
/// folded, the tables written in bulk, must equal the live read models of both projectors, table by
/// table; a correlation row changed behind the correlator's back is found and replaced by the switch.
#[tokio::test]
async fn a_bulk_rebuild_of_every_read_model_equals_the_incremental_ones() {
    let stack = Stack::start().await;
    let (_, owner) = stack.org_user("CERT-O", "o@o.test", 4).await;
    let (other_org, other) = stack.org_user("CERT-X", "x@x.test", 3).await;
    let doomed = ok(&stack, None, "/tags/add", json!({"name": "rebuild-doomed", "colour": "#ff0000"})).await;
    let doomed_id = text(&doomed["Tag"]["id"]);
    let hash = "d41d8cd98f00b204e9800998ecf8427e";
    let a = ok(&stack, None, "/events/add", json!({"info": "A", "distribution": 3, "Tag": [{"name": "tlp:green"}, {"name": "rebuild-doomed"}],
        "Attribute": [{"type": "ip-dst", "value": "198.51.100.7", "Tag": [{"name": "rebuild-doomed"}, {"name": "tlp:green"}]},
                      {"type": "domain", "value": "shared.example.test"}, {"type": "filename|md5", "value": format!("a.exe|{hash}")},
                      {"type": "ip-src", "value": "10.9.0.0/24"}, {"type": "domain", "value": "gone.example.test"},
                      {"type": "domain", "value": "back.example.test"}]})).await;
    let a_id = text(&a["Event"]["id"]);
    let a_uuid = text(&a["Event"]["uuid"]);
    let attr = |i: usize| text(&a["Event"]["Attribute"][i]["id"]);
    let o1 = ok(&stack, None, &format!("/objects/add/{a_id}"), json!({"name": "domain-ip", "Attribute": [
        {"object_relation": "domain", "type": "domain", "value": "shared.example.test"}, {"object_relation": "ip", "type": "ip-dst", "value": "10.9.0.5"}]})).await;
    let o2 = ok(&stack, None, &format!("/objects/add/{a_id}"), json!({"name": "domain-ip", "Attribute": [
        {"object_relation": "domain", "type": "domain", "value": "other.example.test"}]})).await;
    ok(&stack, None, &format!("/objectReferences/add/{}", text(&o1["Object"]["id"])),
        json!({"referenced_uuid": o2["Object"]["uuid"], "relationship_type": "related-to"})).await;
    ok(&stack, None, &format!("/objects/delete/{}", text(&o2["Object"]["id"])), json!({})).await;
    ok(&stack, None, &format!("/attributes/edit/{}", attr(1)), json!({"comment": "edited", "to_ids": false})).await;
    ok(&stack, None, &format!("/attributes/delete/{}", attr(4)), json!({"hard": 1})).await;
    ok(&stack, None, &format!("/attributes/delete/{}", attr(5)), json!({})).await;
    ok(&stack, None, &format!("/attributes/restore/{}", attr(5)), json!({})).await;
    ok(&stack, None, "/tags/removeTagFromObject", json!({"uuid": a_uuid, "tag": "tlp:green"})).await;
    ok(&stack, None, &format!("/tags/delete/{doomed_id}"), json!({})).await;
    ok(&stack, None, &format!("/events/publish/{a_id}"), json!({})).await;
    ok(&stack, None, "/sightings/add", json!({"value": "198.51.100.7"})).await;
    ok(&stack, None, "/correlation_exclusions/add", json!({"value": "%.excluded.example"})).await;

    let b = ok(&stack, Some(&owner), "/events/add", json!({"info": "B", "distribution": 1,
        "Attribute": [{"type": "domain", "value": "shared.example.test"}, {"type": "ip-dst", "value": "10.9.0.7"},
                      {"type": "domain", "value": "x.excluded.example"}]})).await;
    let b_id = text(&b["Event"]["id"]);
    let proposal = ok(&stack, Some(&other), &format!("/shadow_attributes/add/{b_id}"), json!({"type": "url", "value": "http://shared.example.test/p"})).await;
    ok(&stack, Some(&owner), &format!("/shadow_attributes/accept/{}", text(&proposal["ShadowAttribute"]["id"])), json!({})).await;
    ok(&stack, Some(&other), &format!("/shadow_attributes/add/{b_id}"), json!({"type": "url", "value": "http://shared.example.test/q"})).await;
    ok(&stack, Some(&other), &format!("/posts/add/event/{b_id}"), json!({"message": "seen it"})).await;
    ok(&stack, Some(&owner), &format!("/events/edit/{b_id}"), json!({"distribution": 0})).await;
    ok(&stack, Some(&owner), &format!("/event_delegations/delegateEvent/{b_id}"), json!({"org_id": other_org, "message": "yours?"})).await;
    let c = ok(&stack, None, "/events/add", json!({"info": "C", "distribution": 1, "Attribute": [{"type": "domain", "value": "shared.example.test"}]})).await;
    ok(&stack, None, &format!("/events/delete/{}", text(&c["Event"]["id"])), json!({})).await;
    ok(&stack, None, &format!("/events/edit/{a_id}"), json!({"info": "A, edited"})).await;
    caught_up(&stack, &["indexer", "correlator"]).await;

    let out = cairnctl(&stack, &["rebuild", "all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("tables equal the live ones at position"), "{stdout}");
    assert!(stdout.contains("4 tables equal the live ones"), "{stdout}");

    // A correlation row changed behind the correlator's back: the rebuild names it and switches it out.
    let su = stack.db.connect().await;
    let changed = su.execute("UPDATE corr.holders SET deleted = NOT deleted WHERE key = 'shared.example.test'", &[]).await.expect("tamper");
    assert!(changed >= 3, "the shared value is held by the live attributes of A (twice) and B");
    let out = cairnctl(&stack, &["rebuild", "correlator"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("corr.holders") && stdout.contains("replaced"), "{stdout}");
    let out = cairnctl(&stack, &["rebuild", "correlator"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 tables equal the live ones"), "{}", String::from_utf8_lossy(&out.stdout));
    stack.stop().await;
}

#[tokio::test]
async fn the_rebuilt_indexer_equals_the_live_one_and_replay_shows_the_past() {
    let stack = Stack::start().await;
    let (_, user) = stack.org_user("CERT-R", "r@r.test", 3).await;
    let (_, e) = stack
        .post_as(&user, "/events/add", &json!({"info": "rebuild me", "distribution": 1, "Tag": [{"name": "tlp:green"}],
            "Attribute": [{"type": "ip-dst", "value": "198.51.100.31"}, {"type": "domain", "value": "rebuild.example.test", "Tag": [{"name": "tlp:green"}]}]}))
        .await;
    let id = e["Event"]["id"].as_str().expect("id").to_string();
    let first = e["Event"]["Attribute"][0]["id"].as_str().expect("id").to_string();
    indexed(&stack).await;
    let before_edits = stack.head_position().await;
    for body in [json!({"comment": "edited"}), json!({"to_ids": false})] {
        let (status, r) = stack.post_as(&user, &format!("/attributes/edit/{first}"), &body).await;
        assert_eq!(status, 200, "{r}");
    }
    let (status, _) = stack.post("/sightings/add", &json!({"value": "198.51.100.31"})).await;
    assert_eq!(status, 200);
    let (_, other) = stack.org_user("CERT-P", "p@p.test", 3).await;
    let (status, _) = stack.post_as(&other, &format!("/shadow_attributes/add/{id}"), &json!({"type": "url", "value": "http://rebuild.example.test/x"})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post_as(&user, &format!("/attributes/delete/{first}"), &json!({})).await;
    assert_eq!(status, 200);
    indexed(&stack).await;

    let out = cairnctl(&stack, &["rebuild", "indexer"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("tables equal the live ones"), "{stdout}");

    // The platform as it was before the edits: a read-only database.
    let name = format!("cairn_asof_test_{}", std::process::id());
    let out = cairnctl(&stack, &["replay", "--until", &before_edits.to_string(), "--database", &name]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let pg = std::env::var("CAIRN_TEST_PG").expect("CAIRN_TEST_PG");
    let (past, conn) = tokio_postgres::connect(&pg.replace("dbname=postgres", &format!("dbname={name}")), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let row = past
        .query_one("SELECT comment, to_ids, deleted FROM rm.attributes WHERE id = $1", &[&first.parse::<i64>().expect("id")])
        .await
        .expect("attribute as it was");
    assert_eq!((row.get::<_, String>(0), row.get::<_, bool>(1), row.get::<_, bool>(2)), (String::new(), true, false));
    let sightings: i64 = past.query_one("SELECT count(*) FROM rm.sightings", &[]).await.expect("count").get(0);
    assert_eq!(sightings, 0, "the sighting came later");
    let holders: i64 = past.query_one("SELECT count(*) FROM corr.holders", &[]).await.expect("correlations").get(0);
    assert!(holders >= 2, "correlations are replayed too");
    assert!(past.execute("DELETE FROM rm.attributes", &[]).await.is_err(), "the replay database is read only");
    drop(past);
    let (admin, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop");

    // A read model changed behind the indexer's back is found, and named.
    let su = stack.db.connect().await;
    su.execute("UPDATE rm.attributes SET comment = 'not from the log' WHERE id = $1", &[&first.parse::<i64>().expect("id")]).await.expect("tamper");
    let out = cairnctl(&stack, &["rebuild", "indexer"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rm.attributes"), "{}", String::from_utf8_lossy(&out.stderr));
    stack.stop().await;
}
