//! Rebuild and replay from the log: `cairnctl rebuild indexer` replays every read model of the indexer
//! from zero and finds them equal to the live ones (and names a table an operator tampered with);
//! `cairnctl replay --until` materialises the platform as of an earlier position into a read-only
//! database.

use cairn_tests::stack::Stack;
use serde_json::json;

fn cairnctl(stack: &Stack, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cairn_tests::bins::path("cairnctl"))
        .args(args)
        .env("CAIRN_DATABASE_URL", &stack.db.url)
        .output()
        .expect("cairnctl")
}

async fn indexed(stack: &Stack) {
    let head = stack.head_position().await;
    let ok = cairn_tests::eventually(std::time::Duration::from_secs(20), || async {
        let (_, h) = stack.get("/health").await;
        h["projectors"]["indexer"].as_i64().unwrap_or(0) >= head
    })
    .await;
    assert!(ok, "the indexer did not reach {head}");
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
