//! The relay (PostgreSQL → JetStream) and the projector runtime, with real nats-server processes.

use async_nats::jetstream;
use cairn_eventlog::projector::{Options, Outcome, Runtime};
use cairn_eventlog::subjects::{CHANGES_STREAM, HEADER_POSITION};
use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StreamWrite};
use cairn_platform::Shutdown;
use cairn_tests::nats::NatsServer;
use cairn_tests::pg::TestDb;
use cairn_tests::recorder::Recorder;
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

fn commit(n: usize, change_type: &str) -> CommitRequest {
    CommitRequest {
        command_id: Uuid::new_v4(),
        command_type: "test".into(),
        actor: json!({}),
        writes: vec![StreamWrite {
            stream_id: Uuid::new_v4(),
            stream_type: "test".into(),
            expected: ExpectedVersion::NoStream,
            changes: (0..n).map(|i| NewChange::new(change_type, 1, json!({"i": i, "pad": "x".repeat(200)}))).collect(),
        }],
    }
}

fn spawn_relay(db: &TestDb, nats: async_nats::Client, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    let pool = db.pool.clone();
    tokio::spawn(async move {
        cairn_eventlog::relay::run(pool, nats, 500, Duration::from_millis(20), shutdown).await.expect("relay");
    })
}

async fn stream_last_sequence(js: &jetstream::Context) -> u64 {
    match js.get_stream(CHANGES_STREAM).await {
        Ok(mut s) => s.info().await.map(|i| i.state.last_sequence).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The setting of the live tests: a database with the test projector's table, a nats-server, a running
/// relay and an appender that wakes it.
struct Live {
    db: TestDb,
    _nats: NatsServer,
    client: async_nats::Client,
    shutdown: Shutdown,
    relay: tokio::task::JoinHandle<()>,
    appender: Appender,
}

impl Live {
    async fn start() -> Self {
        let db = TestDb::new().await;
        let nats = NatsServer::start().await;
        let client = nats.client().await;
        let shutdown = Shutdown::new();
        let relay = spawn_relay(&db, client.clone(), shutdown.clone());
        Recorder::create_table(&db.pool.get().await.expect("pool")).await;
        let appender = Appender::spawn(db.pool.clone(), Some(client.clone()));
        Self { db, _nats: nats, client, shutdown, relay, appender }
    }

    /// Appends `commits` commits of `changes` changes each and waits until JetStream holds them all;
    /// returns the log head.
    async fn published(&self, commits: usize, changes: usize) -> i64 {
        for _ in 0..commits {
            self.appender.commit(commit(changes, "test.published")).await.expect("append");
        }
        let head = self.db.head().await;
        wait_until_published(&jetstream::new(self.client.clone()), head).await;
        head
    }

    async fn runtime(&self, options: Options) -> Runtime<Recorder> {
        Runtime::new(Recorder::new("rec"), self.db.pool.clone(), Some(self.client.clone()), options).await.expect("runtime")
    }

    /// Stops the relay (the database and nats-server stay up until the value is dropped).
    async fn stop(&mut self) {
        self.shutdown.trigger();
        (&mut self.relay).await.expect("relay");
    }
}

/// Every change of the log up to `head` recorded once by the test projector.
async fn assert_applied_once(db: &TestDb, head: i64) {
    let row = db.pool.get().await.expect("pool").query_one("SELECT count(*), count(DISTINCT position) FROM test_applied", &[]).await.expect("q");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (head, head), "applied exactly once");
}

async fn wait_until_published(js: &jetstream::Context, head: i64) {
    assert!(cairn_tests::eventually(Duration::from_secs(20), || async { stream_last_sequence(js).await as i64 == head }).await);
}

/// Reads the whole change stream and checks sequence == position == PostgreSQL's change at that position.
async fn assert_stream_mirrors_log(db: &TestDb, js: &jetstream::Context) {
    let head = db.head().await;
    let client = db.pool.get().await.expect("pool");
    let ids: HashMap<i64, Uuid> = client
        .query("SELECT position, change_id FROM es.changes", &[])
        .await
        .expect("q")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let stream = js.get_stream(CHANGES_STREAM).await.expect("stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig { ..Default::default() })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut seen = 0i64;
    while seen < head {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("message in time").expect("some").expect("ok");
        let info = m.info().expect("info");
        let seq = info.stream_sequence as i64;
        seen += 1;
        assert_eq!(seq, seen, "stream sequences are contiguous");
        let headers = m.headers.as_ref().expect("headers");
        assert_eq!(headers.get(HEADER_POSITION).map(|v| v.as_str()), Some(seq.to_string().as_str()));
        let msg_id = headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()).expect("msg id");
        assert_eq!(msg_id, ids[&seq].to_string(), "message {seq} is the change at position {seq}");
    }
    let mut s = js.get_stream(CHANGES_STREAM).await.expect("stream");
    assert_eq!(s.info().await.expect("info").state.messages as i64, head, "no extra messages");
}

#[tokio::test]
async fn every_change_reaches_a_live_projector_exactly_once() {
    let mut live = Live::start().await;
    let db = &live.db;
    let mut runtime = live.runtime(Options { idle_wait: Duration::from_millis(50), ..Options::default() }).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let appender = live.appender.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    appender.commit(commit(1 + (i + w) % 4, "test.happened")).await.expect("append");
                }
            })
        })
        .collect();
    let mut live_steps = 0;
    let mut done_writing = false;
    loop {
        if let Outcome::Applied(n) = runtime.try_apply_next().await.expect("step") {
            if n > 0 && runtime.is_live() {
                live_steps += 1;
            }
        }
        if !done_writing && writers.iter().all(|w| w.is_finished()) {
            done_writing = true;
        }
        if done_writing && runtime.checkpoint() == db.head().await {
            break;
        }
    }
    let client_pg = db.pool.get().await.expect("pool");
    let row = client_pg
        .query_one("SELECT count(*), count(DISTINCT position), min(position), max(position) FROM test_applied", &[])
        .await
        .expect("q");
    let head = db.head().await;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (head, head), "each change applied exactly once");
    assert_eq!((row.get::<_, i64>(2), row.get::<_, i64>(3)), (1, head));
    assert!(live_steps > 0, "the projector followed JetStream");
    live.stop().await;
    assert_stream_mirrors_log(&live.db, &jetstream::new(live.client.clone())).await;
}

#[tokio::test]
async fn relay_killed_mid_stream_loses_and_duplicates_nothing() {
    let db = TestDb::new().await;
    let nats = NatsServer::start().await;
    let appender = Appender::spawn(db.pool.clone(), None);
    for _ in 0..60 {
        appender.commit(commit(1_000, "test.bulk")).await.expect("append");
    }
    let head = db.head().await;
    let js = jetstream::new(nats.client().await);
    let spawn = || {
        std::process::Command::new(cairn_tests::bins::path("cairn-relay"))
            .env("CAIRN_DATABASE_URL", &db.url)
            .env("CAIRN_NATS_URL", nats.url())
            .env("CAIRN_LOG", "warn")
            .spawn()
            .expect("start cairn-relay")
    };
    let mut relay = spawn();
    let started = cairn_tests::eventually(Duration::from_secs(20), || async { stream_last_sequence(&js).await >= 500 }).await;
    assert!(started, "the relay started publishing");
    relay.kill().expect("SIGKILL");
    relay.wait().expect("reaped");
    let at_kill = stream_last_sequence(&js).await;
    assert!((at_kill as i64) < head, "killed mid-stream ({at_kill} of {head} published)");
    let mut relay = spawn();
    let caught_up = cairn_tests::eventually(Duration::from_secs(60), || async { stream_last_sequence(&js).await as i64 == head }).await;
    relay.kill().expect("stop");
    relay.wait().expect("reaped");
    assert!(caught_up, "the restarted relay published the rest");
    assert_stream_mirrors_log(&db, &js).await;
}

#[tokio::test]
async fn the_relay_survives_a_nats_restart_and_refills_a_wiped_stream() {
    let db = TestDb::new().await;
    let mut nats = NatsServer::start().await;
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let shutdown = Shutdown::new();
    let relay = spawn_relay(&db, client.clone(), shutdown.clone());
    let appender = Appender::spawn(db.pool.clone(), None);
    for _ in 0..10 {
        appender.commit(commit(50, "test.x")).await.expect("append");
    }
    assert!(cairn_tests::eventually(Duration::from_secs(20), || async { stream_last_sequence(&js).await == 500 }).await);

    nats.restart().await; // plain restart: the stream survives
    for _ in 0..4 {
        appender.commit(commit(50, "test.x")).await.expect("append");
    }
    assert!(cairn_tests::eventually(Duration::from_secs(30), || async { stream_last_sequence(&js).await == 700 }).await);

    nats.wipe(); // JetStream's store is gone: the relay must rebuild the stream from PostgreSQL
    nats.restart().await;
    appender.commit(commit(10, "test.x")).await.expect("append");
    assert!(
        cairn_tests::eventually(Duration::from_secs(30), || async { stream_last_sequence(&js).await == 710 }).await,
        "the wiped stream was refilled"
    );
    shutdown.trigger();
    relay.await.expect("relay");
    assert_stream_mirrors_log(&db, &js).await;
}

#[tokio::test]
async fn a_projector_killed_between_commit_and_ack_does_not_apply_twice() {
    let mut live = Live::start().await;
    let head = live.published(20, 5).await;
    let js = jetstream::new(live.client.clone());

    // First incarnation commits every batch but "dies" before acking anything.
    let crashing = Options {
        idle_wait: Duration::from_millis(50),
        ack_wait: Duration::from_secs(1),
        crash_before_ack: true,
        ..Options::default()
    };
    let mut first = live.runtime(crashing.clone()).await;
    while first.checkpoint() < head {
        first.try_apply_next().await.expect("step");
    }
    assert!(first.is_live(), "it consumed from JetStream");
    drop(first);

    // The second incarnation gets every message again (unacked) and must skip them all.
    let consumer_pending = || async {
        let stream = js.get_stream(CHANGES_STREAM).await.expect("stream");
        let mut consumer: jetstream::consumer::PullConsumer = stream.get_consumer("rec").await.expect("consumer");
        let info = consumer.info().await.expect("info");
        (info.num_ack_pending, info.num_redelivered)
    };
    let (pending, _) = consumer_pending().await;
    assert!(pending > 0, "messages were left unacked");
    let mut second = live.runtime(Options { crash_before_ack: false, ..crashing }).await;
    // Step for a while: past ack_wait the server redelivers; each redelivery is skipped and acked.
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        second.try_apply_next().await.expect("step");
    }
    let (pending, redelivered) = consumer_pending().await;
    assert!(redelivered > 0 || pending == 0, "redeliveries happened");
    assert_eq!(pending, 0, "the redeliveries were acked");
    assert_applied_once(&live.db, head).await;
    live.stop().await;
}

#[tokio::test]
async fn without_nats_a_projector_reads_postgres() {
    let db = TestDb::new().await;
    let mut nats = NatsServer::start().await;
    let client = nats.client().await;
    nats.stop();
    Recorder::create_table(&db.pool.get().await.expect("pool")).await;
    let appender = Appender::spawn(db.pool.clone(), None);
    for _ in 0..5 {
        appender.commit(commit(3, "test.z")).await.expect("append");
    }
    let mut rt = Runtime::new(Recorder::new("rec"), db.pool.clone(), Some(client), Options::default()).await.expect("rt");
    for _ in 0..20 {
        if rt.checkpoint() == 15 {
            break;
        }
        rt.try_apply_next().await.expect("step");
    }
    assert_eq!(rt.checkpoint(), 15);
    assert!(!rt.is_live());
}

#[tokio::test]
async fn a_far_behind_projector_catches_up_from_postgres_then_goes_live() {
    let mut live = Live::start().await;
    for _ in 0..10 {
        live.appender.commit(commit(100, "test.z")).await.expect("append");
    }
    let mut rt = live.runtime(Options { catchup_threshold: 50, batch_size: 100, idle_wait: Duration::from_millis(50), ..Options::default() }).await;
    let first = rt.try_apply_next().await.expect("step");
    assert_eq!(first, Outcome::Applied(100));
    assert!(!rt.is_live(), "far behind: read PostgreSQL");
    while rt.checkpoint() < 1_000 {
        rt.try_apply_next().await.expect("step");
    }
    live.appender.commit(commit(3, "test.z")).await.expect("append");
    while rt.checkpoint() < 1_003 {
        rt.try_apply_next().await.expect("step");
    }
    assert!(rt.is_live(), "caught up: following JetStream");
    assert_applied_once(&live.db, 1_003).await;
    live.stop().await;
}

#[tokio::test]
async fn a_poison_change_is_dead_lettered_after_its_attempts_and_the_rest_applies() {
    let db = TestDb::new().await;
    Recorder::create_table(&db.pool.get().await.expect("pool")).await;
    let appender = Appender::spawn(db.pool.clone(), None);
    appender.commit(commit(2, "test.good")).await.expect("append");
    appender.commit(commit(1, "test.poison")).await.expect("append");
    appender.commit(commit(2, "test.good")).await.expect("append");
    let projector = Recorder { name: "rec".into(), fail_on: Some("test.poison".into()) };
    let options = Options { max_attempts: 3, ..Options::default() };
    let mut rt = Runtime::new(projector, db.pool.clone(), None, options).await.expect("rt");
    let mut failures = 0;
    for _ in 0..10 {
        match rt.try_apply_next().await {
            Ok(Outcome::Idle) => break,
            Ok(_) => {}
            Err(_) => failures += 1,
        }
    }
    assert_eq!(failures, 2, "two failed attempts, the third dead-letters");
    assert_eq!(rt.checkpoint(), 5);
    let client = db.pool.get().await.expect("pool");
    let dead = client.query("SELECT position, attempts FROM es.dead_letters", &[]).await.expect("q");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].get::<_, i64>(0), dead[0].get::<_, i32>(1)), (3, 3));
    let applied: Vec<i64> =
        client.query("SELECT position FROM test_applied ORDER BY position", &[]).await.expect("q").iter().map(|r| r.get(0)).collect();
    assert_eq!(applied, vec![1, 2, 4, 5]);
}

#[tokio::test]
async fn read_your_writes_waits_end_on_checkpoint_announcements() {
    // The table has no row for this projector: only the NATS announcement can end the wait in time.
    let db = TestDb::new().await;
    let nats = NatsServer::start().await;
    let client = nats.client().await;
    let watcher = cairn_eventlog::watcher::CheckpointWatcher::start(db.pool.clone(), Some(client.clone())).await;
    let waiting = {
        let watcher = watcher.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let reached = watcher.wait_for("announced", 42, Duration::from_secs(5)).await;
            (reached, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.publish(cairn_eventlog::subjects::checkpoint_subject("announced"), "42".into()).await.expect("publish");
    client.flush().await.expect("flush");
    let (reached, waited) = waiting.await.expect("join");
    assert!(reached, "the announcement ends the wait");
    assert!(waited < Duration::from_secs(1), "woken by the announcement, not by polling until the timeout ({waited:?})");
}

#[tokio::test]
async fn a_durable_acknowledged_per_message_is_replaced_by_one_acknowledged_per_batch() {
    let mut live = Live::start().await;
    let head = live.published(10, 3).await;
    let js = jetstream::new(live.client.clone());
    // The durable an earlier version left behind: explicit acknowledgement of every message.
    let stream = js.get_stream(CHANGES_STREAM).await.expect("stream");
    let old = jetstream::consumer::pull::Config {
        durable_name: Some("rec".into()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    stream.create_consumer(old).await.expect("old durable");

    let mut runtime = live.runtime(Options { idle_wait: Duration::from_millis(50), ..Options::default() }).await;
    let mut live_applied = 0;
    while runtime.checkpoint() < head {
        if let Outcome::Applied(n) = runtime.try_apply_next().await.expect("step") {
            if runtime.is_live() {
                live_applied += n;
            }
        }
    }
    assert!(live_applied > 0, "the projector followed JetStream");
    let mut consumer: jetstream::consumer::PullConsumer = stream.get_consumer("rec").await.expect("consumer");
    let info = consumer.info().await.expect("info");
    assert_eq!(info.config.ack_policy, jetstream::consumer::AckPolicy::All);
    assert_eq!(info.num_ack_pending, 0, "acknowledging each batch's last message acknowledged the batch");
    assert_eq!(info.ack_floor.stream_sequence as i64, head);
    assert_applied_once(&live.db, head).await;
    live.stop().await;
}

#[tokio::test]
async fn two_instances_of_one_projector_apply_each_change_once() {
    let db = TestDb::new().await;
    Recorder::create_table(&db.pool.get().await.expect("pool")).await;
    let appender = Appender::spawn(db.pool.clone(), None);
    let options = Options { batch_size: 7, idle_wait: Duration::from_millis(10), ..Options::default() };
    let mut instances = Vec::new();
    for _ in 0..2 {
        instances.push(Runtime::new(Recorder::new("rec"), db.pool.clone(), None, options.clone()).await.expect("runtime"));
    }
    for _ in 0..40 {
        appender.commit(commit(3, "test.w")).await.expect("append");
    }
    let head = db.head().await;
    // Both step concurrently over the same log: every batch is claimed by one of them.
    let steps: Vec<_> = instances
        .into_iter()
        .map(|mut rt| {
            tokio::spawn(async move {
                let mut applied = 0;
                while rt.checkpoint() < head {
                    if let Outcome::Applied(n) = rt.try_apply_next().await.expect("step") {
                        applied += n;
                    }
                }
                applied
            })
        })
        .collect();
    let mut total = 0;
    for s in steps {
        total += s.await.expect("instance");
    }
    assert_applied_once(&db, head).await;
    assert_eq!(total as i64, head, "the instances' counts add up to the log");
}

#[tokio::test]
async fn a_lingering_projector_gathers_changes_that_arrive_after_the_first_into_one_batch() {
    let mut live = Live::start().await;
    live.published(1, 1).await;
    let mut runtime = live.runtime(Options { idle_wait: Duration::from_secs(2), linger: Duration::from_millis(400), ..Options::default() }).await;
    while runtime.checkpoint() < 1 {
        runtime.try_apply_next().await.expect("step");
    }
    assert!(runtime.is_live());
    // Four single changes, 40 ms apart: a projector that lingers 400 ms applies them together.
    let appender = live.appender.clone();
    let writer = tokio::spawn(async move {
        for _ in 0..4 {
            appender.commit(commit(1, "test.later")).await.expect("append");
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let Outcome::Applied(n) = runtime.try_apply_next().await.expect("step") else { panic!("nothing applied") };
    assert_eq!(n, 4, "one batch for the four changes");
    writer.await.expect("writer");
    assert_applied_once(&live.db, 5).await;
    live.stop().await;
}
