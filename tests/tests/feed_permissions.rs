//! Feed users over NATS (docs/feeds.md): a real nats-server started with the committed configuration
//! (`nats/nats-server.conf` + `nats/auth.conf`) and a users file written by the code `cairnctl
//! feed-credentials` uses. Org A's feed user reads A's and public messages, live and replayed; org B's
//! feed user is refused by nats-server whenever it reaches for A's messages.

use async_nats::jetstream::{self, consumer::pull};
use async_nats::{Event, HeaderMap, ServerError};
use cairn_eventlog::feed_access::{self, ConsumerKind, FeedStart};
use cairn_eventlog::subjects::{Audience, FEEDS_STREAM, ensure_feeds_stream, feed_subject};
use cairn_tests::nats::NatsServer;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Server errors a client received (permission violations among them), in order.
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<Vec<String>>>);

impl ErrorLog {
    fn options(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        let log = self.clone();
        options.event_callback(move |event| {
            let log = log.clone();
            async move {
                if let Event::ServerError(ServerError::Other(message)) = event {
                    log.0.lock().expect("error log").push(message);
                }
            }
        })
    }

    /// Waits until nats-server reported a permission violation for `what` ("publish" or "subscription")
    /// to exactly `subject`.
    async fn expect_violation(&self, what: &str, subject: &str) {
        let wanted = format!("permissions violation for {what} to \"{}\"", subject.to_lowercase());
        let seen = cairn_tests::eventually(Duration::from_secs(3), || async {
            self.0.lock().expect("error log").iter().any(|m| m.to_lowercase() == wanted)
        })
        .await;
        assert!(seen, "expected nats-server to refuse: {wanted}; errors seen: {:?}", self.0.lock().expect("error log"));
    }

    fn is_empty(&self) -> bool {
        self.0.lock().expect("error log").is_empty()
    }
}

struct Fixture {
    server: NatsServer,
    users_file: std::path::PathBuf,
    org_a: Uuid,
    org_b: Uuid,
    password_a: String,
    password_b: String,
}

/// nats-server with the committed configuration and a users file holding org A's and org B's feed
/// users; the service user has `service_password` (`None`: none, as scripts/run sets it up).
async fn start(service_password: Option<&str>) -> Fixture {
    let scratch = std::env::temp_dir().join(format!("cairn-feed-users-{}", Uuid::new_v4().simple()));
    let users_file = scratch.join("users.conf");
    feed_access::ensure_users_file(&users_file, service_password).expect("users file");
    let (org_a, org_b) = (Uuid::new_v4(), Uuid::new_v4());
    let password_a = feed_access::issue_credentials(&users_file, org_a, "Org A").expect("issue A");
    let password_b = feed_access::issue_credentials(&users_file, org_b, "Org B").expect("issue B");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // As scripts/run builds it: the base configuration, then the authorization part.
    let conf = std::fs::read_to_string(repo.join("nats/nats-server.conf")).expect("nats/nats-server.conf")
        + &std::fs::read_to_string(repo.join("nats/auth.conf")).expect("nats/auth.conf");
    let users = std::fs::read_to_string(&users_file).expect("users file");
    let server = NatsServer::start_with_config(&[("nats.conf", &conf), ("users.conf", &users)]).await;
    let users_file = server.config_dir().expect("config dir").join("users.conf");
    let _ = std::fs::remove_dir_all(scratch);
    Fixture { server, users_file, org_a, org_b, password_a, password_b }
}

impl Fixture {
    async fn feed_client(&self, org: Uuid, password: &str, log: &ErrorLog) -> async_nats::Client {
        let options = feed_access::connect_options(&feed_access::user_name(org), password).expect("feed user name");
        log.options(options).connect(self.server.url()).await.expect("feed user connects")
    }
}

/// The messages the service publishes, in stream order: (subject, Nats-Msg-Id).
fn published(a: Uuid, b: Uuid) -> Vec<(String, String)> {
    vec![
        (feed_subject(&Audience::Org(a), "event"), "a-1".into()),
        (feed_subject(&Audience::Org(b), "event"), "b-1".into()),
        (feed_subject(&Audience::Public, "event"), "p-1".into()),
        (feed_subject(&Audience::Org(a), "retract"), "a-2".into()),
        (feed_subject(&Audience::Org(b), "sighting"), "b-2".into()),
    ]
}

async fn publish_feeds(js: &jetstream::Context, messages: &[(String, String)]) {
    for (subject, id) in messages {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        js.publish_with_headers(subject.clone(), headers, format!("{{\"id\":\"{id}\"}}").into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
}

/// Everything a core subscription delivers until it has been quiet for 300 ms: (subject, payload).
async fn drain(sub: &mut async_nats::Subscriber) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        out.push((m.subject.to_string(), String::from_utf8_lossy(&m.payload).into_owned()));
    }
    out
}

/// Replays a consumer: (stream sequence, subject, Nats-Msg-Id) of every message, acking when asked to.
async fn replay(consumer: &jetstream::consumer::Consumer<pull::Config>, ack: bool) -> Vec<(u64, String, String)> {
    let mut batch = consumer.fetch().max_messages(100).expires(Duration::from_millis(500)).messages().await.expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        let seq = m.info().expect("jetstream message").stream_sequence;
        let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(ToString::to_string).unwrap_or_default();
        out.push((seq, m.subject.to_string(), id));
        if ack {
            m.ack().await.expect("ack");
        }
    }
    out
}

async fn replay_consumer(
    js: &jetstream::Context,
    org: Uuid,
    audience: &Audience,
    kind: ConsumerKind,
    start: FeedStart,
) -> jetstream::consumer::Consumer<pull::Config> {
    let stream = js.get_stream(FEEDS_STREAM).await.expect("stream info");
    let config = feed_access::consumer_config(org, audience, kind, start).expect("config");
    if kind == ConsumerKind::Replay {
        // A replay starts afresh: the previous replay consumer (if any) goes.
        let _ = stream.delete_consumer(&feed_access::replay_consumer(org)).await;
    }
    stream.create_consumer(config).await.expect("consumer allowed for its own audience")
}

#[tokio::test]
async fn org_b_feed_user_is_refused_org_a_subjects_and_org_a_reads_its_own_and_public() {
    let f = start(None).await;
    let (a, b) = (f.org_a, f.org_b);
    let messages = published(a, b);

    // The service connects without credentials (no_auth_user) and owns the stream.
    let service = async_nats::connect(f.server.url()).await.unwrap_or_else(|e| panic!("{e}; log:\n{}", f.server.log()));
    let service_js = jetstream::new(service.clone());
    ensure_feeds_stream(&service_js).await.expect("service creates CAIRN_FEEDS");

    // Org A subscribes live to its audience and public.
    let a_log = ErrorLog::default();
    let a_client = f.feed_client(a, &f.password_a, &a_log).await;
    let mut a_own = a_client.subscribe(feed_access::audience_filter(&Audience::Org(a))).await.expect("sub");
    let mut a_public = a_client.subscribe(feed_access::audience_filter(&Audience::Public)).await.expect("sub");

    // Org B subscribes to its own audience (allowed) and reaches for A's (refused).
    let b_log = ErrorLog::default();
    let b_client = f.feed_client(b, &f.password_b, &b_log).await;
    let mut b_own = b_client.subscribe(feed_access::audience_filter(&Audience::Org(b))).await.expect("sub");
    let a_subjects = feed_access::audience_filter(&Audience::Org(a));
    let mut b_on_a = b_client.subscribe(a_subjects.clone()).await.expect("client-side subscribe");
    let mut b_on_all = b_client.subscribe("cairn.feed.>").await.expect("client-side subscribe");
    // Every reply to everyone: would include A's pulled messages below.
    let mut b_on_inboxes = b_client.subscribe("_INBOX.>").await.expect("client-side subscribe");
    for client in [&a_client, &b_client] {
        client.flush().await.expect("flush");
    }
    b_log.expect_violation("subscription", &a_subjects).await;
    b_log.expect_violation("subscription", "cairn.feed.>").await;
    b_log.expect_violation("subscription", "_INBOX.>").await;

    publish_feeds(&service_js, &messages).await;

    // Live: A gets its two messages and the public one, B its own two; nothing crosses.
    let a_live: Vec<String> = drain(&mut a_own).await.into_iter().chain(drain(&mut a_public).await).map(|(s, _)| s).collect();
    assert_eq!(a_live, [messages[0].0.clone(), messages[3].0.clone(), messages[2].0.clone()]);
    let b_live: Vec<String> = drain(&mut b_own).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(b_live, [messages[1].0.clone(), messages[4].0.clone()]);
    assert!(drain(&mut b_on_a).await.is_empty(), "B received A's messages");
    assert!(drain(&mut b_on_all).await.is_empty(), "B received messages through cairn.feed.>");

    // Replay: A's replay consumer from sequence 1, twice, gives the same sequence; the public filter
    // gives the public message; the durable consumer acks.
    let a_js = jetstream::new(a_client.clone());
    let own = Audience::Org(a);
    let expected_own =
        vec![(1, messages[0].0.clone(), "a-1".to_string()), (4, messages[3].0.clone(), "a-2".to_string())];
    for _ in 0..2 {
        let consumer = replay_consumer(&a_js, a, &own, ConsumerKind::Replay, FeedStart::Sequence(1)).await;
        assert_eq!(replay(&consumer, false).await, expected_own);
    }
    let from_4 = replay_consumer(&a_js, a, &own, ConsumerKind::Replay, FeedStart::Sequence(2)).await;
    assert_eq!(replay(&from_4, false).await, expected_own[1..]);
    let public = replay_consumer(&a_js, a, &Audience::Public, ConsumerKind::Replay, FeedStart::All).await;
    assert_eq!(replay(&public, false).await, [(3, messages[2].0.clone(), "p-1".to_string())]);
    let durable = replay_consumer(&a_js, a, &own, ConsumerKind::Durable, FeedStart::All).await;
    assert_eq!(replay(&durable, true).await, expected_own);
    assert!(replay(&durable, true).await.is_empty(), "acked messages came back");
    assert!(a_log.is_empty(), "org A was refused something: {:?}", a_log.0.lock().expect("log"));
    // B's inbox sniffing saw none of A's replies.
    assert!(drain(&mut b_on_inboxes).await.is_empty(), "B read other clients' inboxes");

    // B through JetStream: every way to A's messages is refused by nats-server.
    let b_js = jetstream::ContextBuilder::new().timeout(Duration::from_millis(700)).build(b_client.clone());
    let b_stream = b_js.get_stream(FEEDS_STREAM).await.expect("B may read the stream's info");
    // A consumer filtered on A's subjects, under B's own consumer name and under A's.
    let mut on_a = feed_access::consumer_config(b, &own, ConsumerKind::Replay, FeedStart::All).expect("config");
    assert!(b_stream.create_consumer(on_a.clone()).await.is_err());
    b_log.expect_violation("publish", &format!("$JS.API.CONSUMER.CREATE.{FEEDS_STREAM}.{}.{a_subjects}", on_a.name.clone().unwrap_or_default())).await;
    on_a.name = Some(feed_access::replay_consumer(a));
    assert!(b_stream.create_consumer(on_a).await.is_err());
    b_log.expect_violation("publish", &format!("$JS.API.CONSUMER.CREATE.{FEEDS_STREAM}.{}.{a_subjects}", feed_access::replay_consumer(a))).await;
    // An unfiltered consumer (its filter would be whatever the body says), both create forms.
    let unfiltered = pull::Config { deliver_policy: jetstream::consumer::DeliverPolicy::All, ..Default::default() };
    assert!(b_stream.create_consumer(unfiltered).await.is_err());
    b_log.expect_violation("publish", &format!("$JS.API.CONSUMER.CREATE.{FEEDS_STREAM}")).await;
    let durable_create = format!("CONSUMER.DURABLE.CREATE.{FEEDS_STREAM}.{}", feed_access::durable_consumer(b));
    let body = serde_json::json!({"stream_name": FEEDS_STREAM, "config": {"durable_name": feed_access::durable_consumer(b), "ack_policy": "explicit"}});
    let refused: Result<serde_json::Value, _> = b_js.request(durable_create.clone(), &body).await;
    assert!(refused.is_err());
    b_log.expect_violation("publish", &format!("$JS.API.{durable_create}")).await;
    // Pulling from A's existing durable consumer by name.
    let next_on_a = format!("$JS.API.CONSUMER.MSG.NEXT.{FEEDS_STREAM}.{}", feed_access::durable_consumer(a));
    let reply = b_client.new_inbox();
    let mut replies = b_client.subscribe(reply.clone()).await.expect("own inbox");
    b_client.publish_with_reply(next_on_a.clone(), reply, "{\"batch\":10,\"no_wait\":true}".into()).await.expect("send");
    b_log.expect_violation("publish", &next_on_a).await;
    assert!(drain(&mut replies).await.is_empty(), "B pulled from A's consumer");
    // Fetching messages directly by sequence (sequence 1 is A's).
    assert!(b_stream.get_raw_message(1).await.is_err());
    b_log.expect_violation("publish", &format!("$JS.API.STREAM.MSG.GET.{FEEDS_STREAM}")).await;
    let direct = format!("$JS.API.DIRECT.GET.{FEEDS_STREAM}");
    b_client.publish_with_reply(direct.clone(), b_client.new_inbox(), "{\"seq\":1}".into()).await.expect("send");
    b_log.expect_violation("publish", &direct).await;
    // Publishing onto feed subjects, A's and its own.
    for subject in [messages[0].0.clone(), messages[1].0.clone()] {
        b_client.publish(subject.clone(), "forged".into()).await.expect("send");
        b_client.flush().await.expect("flush");
        b_log.expect_violation("publish", &subject).await;
    }
    let mut stream = service_js.get_stream(FEEDS_STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, messages.len() as u64, "a forged message was stored");
    assert!(drain(&mut a_own).await.is_empty(), "A received a forged message");
}

#[tokio::test]
async fn new_feed_credentials_replace_the_old_ones_after_a_reload() {
    let service_password = feed_access::random_password();
    let f = start(Some(&service_password)).await;
    // Services given credentials (production): the password works, no credentials do not.
    assert!(async_nats::connect(f.server.url()).await.is_err(), "no credentials were accepted");
    let with_credentials = async_nats::ConnectOptions::with_user_and_password(
        feed_access::SERVICE_USER.into(),
        service_password.clone(),
    )
    .connect(f.server.url())
    .await
    .expect("service user with password");
    with_credentials.publish(feed_subject(&Audience::Public, "event"), "x".into()).await.expect("publish");
    with_credentials.flush().await.expect("flush");

    let user = feed_access::user_name(f.org_a);
    let connect = |password: String| {
        let url = f.server.url();
        let options = feed_access::connect_options(&user, &password).expect("feed user");
        async move { options.max_reconnects(1).connect(url).await }
    };
    assert!(connect(f.password_a.clone()).await.is_ok());
    assert!(connect("wrong".into()).await.is_err(), "a wrong password was accepted");

    let new_password = feed_access::issue_credentials(&f.users_file, f.org_a, "Org A").expect("reissue");
    assert!(feed_access::revoke_credentials(&f.users_file, f.org_b).expect("revoke"));
    f.server.reload();
    let reloaded = cairn_tests::eventually(Duration::from_secs(5), || async { connect(new_password.clone()).await.is_ok() }).await;
    assert!(reloaded, "the new password was not accepted after the reload; log:\n{}", f.server.log());
    assert!(connect(f.password_a.clone()).await.is_err(), "the old password still works");
    let b = feed_access::connect_options(&feed_access::user_name(f.org_b), &f.password_b).expect("feed user");
    assert!(b.max_reconnects(1).connect(f.server.url()).await.is_err(), "a revoked user still connects");
}
