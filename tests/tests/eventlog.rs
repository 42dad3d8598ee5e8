//! The event log against a real PostgreSQL: ordering, concurrency, idempotency, immutability, verification.

use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StoreError, StreamWrite};
use cairn_tests::pg::TestDb;
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

fn one(stream: Uuid, expected: ExpectedVersion, n: usize) -> CommitRequest {
    CommitRequest {
        command_id: Uuid::new_v4(),
        command_type: "test.command".into(),
        actor: json!({"user": "tester"}),
        writes: vec![StreamWrite {
            stream_id: stream,
            stream_type: "test".into(),
            expected,
            changes: (0..n).map(|i| NewChange::new("test.happened", 1, json!({"i": i, "text": "é\u{1F600}\"\\"}))).collect(),
        }],
    }
}

#[tokio::test]
async fn concurrent_writers_get_gap_free_positions_in_commit_order() {
    let db = TestDb::new().await;
    // Two appenders stand for two API processes contending on the same log head.
    let appenders = [Appender::spawn(db.pool.clone(), None), Appender::spawn(db.pool.clone(), None)];
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let appender = appenders[w % 2].clone();
        tasks.spawn(async move {
            let stream = Uuid::new_v4();
            let mut version = 0;
            let mut receipts = Vec::new();
            for i in 0..150 {
                let n = 1 + (i % 3);
                let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
                let r = appender.commit(one(stream, expected, n)).await.expect("append");
                version += n as i64;
                receipts.push(r);
            }
            receipts
        });
    }
    let mut receipts = Vec::new();
    while let Some(r) = tasks.join_next().await {
        receipts.extend(r.expect("writer"));
    }
    let total: i64 = receipts.iter().map(|r| r.last_position - r.first_position + 1).sum();
    assert_eq!(db.head().await, total);
    let client = db.pool.get().await.expect("pool");
    let positions: Vec<i64> =
        client.query("SELECT position FROM es.changes ORDER BY position", &[]).await.expect("q").iter().map(|r| r.get(0)).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>(), "positions are 1..N with no gap");
    // Each commit is a contiguous run and commits are numbered in position order.
    let rows = client.query("SELECT commit_seq, first_position, last_position FROM es.commits ORDER BY commit_seq", &[]).await.expect("q");
    let mut next = 1;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.get::<_, i64>(0), i as i64 + 1);
        assert_eq!(r.get::<_, i64>(1), next);
        next = r.get::<_, i64>(2) + 1;
    }
    // Stream versions are dense per stream.
    let bad: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT stream_id, max(stream_version) AS m, count(*) AS c FROM es.changes GROUP BY stream_id) s WHERE m <> c",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert_eq!(bad, 0);
    let report = cairn_eventlog::verify::verify(&client, |_, _| {}).await.expect("the chain verifies");
    assert_eq!(report.changes, total);
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_and_writes_nothing() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let stream = Uuid::new_v4();
    appender.commit(one(stream, ExpectedVersion::NoStream, 2)).await.expect("first");
    let head = db.head().await;
    let err = appender.commit(one(stream, ExpectedVersion::Exact(1), 1)).await.expect_err("stale");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = appender.commit(one(stream, ExpectedVersion::NoStream, 1)).await.expect_err("exists");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(db.head().await, head, "nothing was written");
    let ok = appender.commit(one(stream, ExpectedVersion::Exact(2), 1)).await.expect("current version");
    assert_eq!(ok.first_position, head + 1);
}

#[tokio::test]
async fn a_refused_request_does_not_fail_its_batch_neighbours() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let stream = Uuid::new_v4();
    appender.commit(one(stream, ExpectedVersion::NoStream, 1)).await.expect("first");
    // Fire many requests at once so they share group-commit batches; every other one is stale.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let appender = appender.clone();
        tasks.spawn(async move {
            let req = if i % 2 == 0 { one(Uuid::new_v4(), ExpectedVersion::NoStream, 1) } else { one(stream, ExpectedVersion::Exact(0), 1) };
            (i, appender.commit(req).await)
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let (i, result) = r.expect("task");
        match (i % 2, result) {
            (0, Ok(_)) => ok += 1,
            (1, Err(StoreError::Conflict { .. })) => {}
            (k, other) => panic!("request kind {k}: unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(db.head().await, 21);
}

#[tokio::test]
async fn a_repeated_command_id_returns_the_first_result() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let req = one(Uuid::new_v4(), ExpectedVersion::NoStream, 3);
    let first = appender.commit(req.clone()).await.expect("first");
    assert!(!first.duplicate);
    let head = db.head().await;
    let again = appender.commit(req.clone()).await.expect("repeat");
    assert!(again.duplicate);
    assert_eq!((again.first_position, again.last_position, again.commit_seq), (first.first_position, first.last_position, first.commit_seq));
    assert_eq!(db.head().await, head);
    // Also when both copies arrive in the same batch.
    let req = one(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    let (a, b) = tokio::join!(appender.commit(req.clone()), appender.commit(req.clone()));
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.first_position, b.first_position);
    assert!(a.duplicate != b.duplicate);
    assert_eq!(db.head().await, head + 1);
}

#[tokio::test]
async fn stored_history_cannot_be_updated_or_deleted() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    appender.commit(one(Uuid::new_v4(), ExpectedVersion::NoStream, 2)).await.expect("append");
    let client = db.pool.get().await.expect("pool");
    for sql in [
        "UPDATE es.changes SET payload = '{}' WHERE position = 1",
        "DELETE FROM es.changes WHERE position = 2",
        "UPDATE es.commits SET command_type = 'x'",
        "DELETE FROM es.commits",
        "TRUNCATE es.changes CASCADE",
    ] {
        let err = client.execute(sql, &[]).await.expect_err(sql);
        assert!(err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"), "{sql}: {err:?}");
    }
    assert_eq!(db.head().await, 2);
}

async fn tamper_and_verify(sql: &str) -> (i64, String) {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let mut receipts = Vec::new();
    for _ in 0..5 {
        receipts.push(appender.commit(one(Uuid::new_v4(), ExpectedVersion::NoStream, 3)).await.expect("append"));
    }
    let client = db.pool.get().await.expect("pool");
    cairn_eventlog::verify::verify(&client, |_, _| {}).await.expect("clean log verifies");
    // As the superuser, with the triggers out of the way: rewrite history.
    let su = db.connect().await;
    su.batch_execute(&format!(
        "ALTER TABLE es.changes DISABLE TRIGGER USER; ALTER TABLE es.commits DISABLE TRIGGER USER; {sql}; \
         ALTER TABLE es.changes ENABLE TRIGGER USER; ALTER TABLE es.commits ENABLE TRIGGER USER;"
    ))
    .await
    .expect("tamper");
    match cairn_eventlog::verify::verify(&client, |_, _| {}).await {
        Err(cairn_eventlog::verify::VerifyError::BadCommit { commit_seq, reason }) => (commit_seq, reason),
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[tokio::test]
async fn an_altered_change_is_detected_and_its_commit_named() {
    // position 8 is in commit 3 (commits hold positions 1-3, 4-6, 7-9, …)
    let (commit, reason) = tamper_and_verify("UPDATE es.changes SET payload = '{\"i\": 99}' WHERE position = 8").await;
    assert_eq!(commit, 3);
    assert!(reason.contains("position 8"), "{reason}");
}

#[tokio::test]
async fn an_altered_commit_is_detected() {
    let (commit, _) = tamper_and_verify("UPDATE es.commits SET actor = '{\"user\": \"mallory\"}' WHERE commit_seq = 2").await;
    assert_eq!(commit, 2);
}

#[tokio::test]
async fn a_deleted_change_is_detected() {
    let (commit, reason) = tamper_and_verify("DELETE FROM es.changes WHERE position = 13").await;
    assert_eq!(commit, 5);
    assert!(reason.contains("13"), "{reason}");
}

#[tokio::test]
async fn cairnctl_verify_exits_non_zero_naming_the_bad_commit() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    for _ in 0..3 {
        appender.commit(one(Uuid::new_v4(), ExpectedVersion::NoStream, 2)).await.expect("append");
    }
    let run = || {
        std::process::Command::new(cairn_tests::bins::path("cairnctl"))
            .arg("verify")
            .env("CAIRN_DATABASE_URL", &db.url)
            .output()
            .expect("run cairnctl")
    };
    let ok = run();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("3 commits, 6 changes"));
    let su = db.connect().await;
    su.batch_execute(
        "ALTER TABLE es.changes DISABLE TRIGGER USER; UPDATE es.changes SET recorded_at = recorded_at + interval '1 second' WHERE position = 4; ALTER TABLE es.changes ENABLE TRIGGER USER;",
    )
    .await
    .expect("tamper");
    let bad = run();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("commit 2"), "{stderr}");
}

#[tokio::test]
async fn migrations_are_idempotent_and_an_edited_migration_is_refused() {
    let db = TestDb::new().await;
    let mut client = db.connect().await;
    assert!(cairn_eventlog::migrate::migrate(&mut client).await.expect("again").is_empty());
    let mut edited: Vec<(&str, String)> =
        cairn_eventlog::migrate::migrations().iter().map(|(n, s)| (*n, s.to_string())).collect();
    edited[0].1.push_str("\n-- an edit\n");
    let as_refs: Vec<(&str, &str)> = edited.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let err = cairn_eventlog::migrate::migrate_these(&mut client, &as_refs).await.expect_err("edited");
    assert!(err.to_string().contains("edited"), "{err}");
}

#[tokio::test]
async fn reading_a_stream_and_the_log_by_position() {
    let db = TestDb::new().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let a = Uuid::new_v4();
    let b = Uuid::new_v4();
    appender.commit(one(a, ExpectedVersion::NoStream, 2)).await.expect("a1");
    appender.commit(one(b, ExpectedVersion::NoStream, 1)).await.expect("b1");
    appender.commit(one(a, ExpectedVersion::Exact(2), 1)).await.expect("a2");
    let client = db.pool.get().await.expect("pool");
    let stream = cairn_eventlog::store::read_stream(&client, a, 0).await.expect("read");
    assert_eq!(stream.iter().map(|c| c.stream_version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(stream.iter().map(|c| c.position).collect::<Vec<_>>(), vec![1, 2, 4]);
    let page = cairn_eventlog::store::read_log(&client, 1, 2).await.expect("log");
    assert_eq!(page.iter().map(|c| c.position).collect::<Vec<_>>(), vec![2, 3]);
    let ids: HashSet<Uuid> = cairn_eventlog::store::read_log(&client, 0, 100).await.expect("log").iter().map(|c| c.change_id).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(stream[0].metadata["actor"]["user"], "tester");
    assert_eq!(stream[0].payload["text"], "é\u{1F600}\"\\");
}
