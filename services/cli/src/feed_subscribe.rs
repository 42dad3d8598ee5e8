//! `cairnctl feed-subscribe`: a minimal feed subscriber, as an organisation outside the platform would
//! write it. It connects as a feed user, creates one of its organisation's two pull consumers on
//! `CAIRN_FEEDS` filtered on its audience (or `public`), and prints every message as a JSON line
//! `{"seq", "subject", "msg_id", "payload"}`.

use crate::BoxError;
use async_nats::jetstream::{self, consumer::pull};
use cairn_eventlog::feed_access::{self, ConsumerKind, FeedStart};
use cairn_eventlog::subjects::{Audience, FEEDS_STREAM};
use futures::StreamExt;
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// nats-server URL.
    #[arg(long, env = "CAIRN_FEED_URL", default_value = "nats://127.0.0.1:54229")]
    url: String,
    /// Feed user (`feed-<org uuid>`, from `cairnctl feed-credentials`).
    #[arg(long, env = "CAIRN_FEED_USER")]
    user: String,
    /// Its password (prefer the environment variable: a flag shows in the process list).
    #[arg(long, env = "CAIRN_FEED_PASSWORD", hide_env_values = true)]
    password: String,
    /// Read `public` instead of the organisation's own audience.
    #[arg(long)]
    public: bool,
    /// Start at this stream sequence.
    #[arg(long, conflicts_with_all = ["since", "new"])]
    from_seq: Option<u64>,
    /// Start at the first message stored at or after this time (RFC 3339).
    #[arg(long, conflicts_with = "new")]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only messages stored from now on.
    #[arg(long)]
    new: bool,
    /// Use the organisation's durable consumer: acks what it printed and resumes there next time (the
    /// start options apply when it is first created).
    #[arg(long)]
    durable: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
    /// Stop once no message arrived for this many seconds (default: wait forever).
    #[arg(long)]
    idle_exit: Option<u64>,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let org = feed_access::org_of_user(&args.user).ok_or("--user must be a feed user, feed-<org uuid>")?;
    let options = feed_access::connect_options(&args.user, &args.password).ok_or("not a feed user name")?;
    let client = options.connect(args.url.as_str()).await?;
    let js = jetstream::new(client);
    let audience = if args.public { Audience::Public } else { Audience::Org(org) };
    let start = match (args.from_seq, args.since, args.new) {
        (Some(seq), _, _) => FeedStart::Sequence(seq),
        (None, Some(t), _) => FeedStart::Time(t),
        (None, None, true) => FeedStart::New,
        (None, None, false) => FeedStart::All,
    };
    let kind = if args.durable { ConsumerKind::Durable } else { ConsumerKind::Replay };
    let config = feed_access::consumer_config(org, &audience, kind, start)?;
    let stream = js.get_stream(FEEDS_STREAM).await?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = match kind {
        ConsumerKind::Durable => stream.get_or_create_consumer(&feed_access::durable_consumer(org), config).await?,
        ConsumerKind::Replay => {
            // Each replay starts where it is told to: the previous replay consumer goes first.
            let _ = stream.delete_consumer(&feed_access::replay_consumer(org)).await;
            stream.create_consumer(config).await?
        }
    };
    let mut messages = consumer.messages().await?;
    let mut printed = 0usize;
    let mut out = std::io::stdout();
    while args.count.is_none_or(|n| printed < n) {
        let next = match args.idle_exit {
            Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), messages.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => messages.next().await,
        };
        let Some(message) = next else { break };
        let message = message?;
        let seq = message.info()?.stream_sequence;
        let msg_id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(ToString::to_string);
        // Feed payloads are MISP JSON; anything else is printed as a string.
        let payload = serde_json::from_slice::<serde_json::Value>(&message.payload)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&message.payload).into_owned()));
        // Written by hand to keep this key order (serde_json's maps sort their keys).
        let (subject, msg_id) = (serde_json::Value::from(message.subject.as_str()), serde_json::Value::from(msg_id));
        writeln!(out, "{{\"seq\":{seq},\"subject\":{subject},\"msg_id\":{msg_id},\"payload\":{payload}}}")?;
        out.flush()?;
        if kind == ConsumerKind::Durable {
            message.ack().await?;
        }
        printed += 1;
    }
    Ok(())
}
