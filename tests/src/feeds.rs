//! Reading the exporter's feeds (JetStream `CAIRN_FEEDS`) and waiting for it to settle.

use crate::stack::Stack;
use async_nats::jetstream;
use cairn_eventlog::subjects::FEEDS_STREAM;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// One feed message.
#[derive(Clone, Debug, PartialEq)]
pub struct Msg {
    pub seq: u64,
    pub subject: String,
    pub msg_id: String,
    pub payload: Value,
}

impl Msg {
    pub fn kind(&self) -> &str {
        self.subject.rsplit('.').next().unwrap_or_default()
    }

    pub fn event_uuid(&self) -> Option<&str> {
        self.payload["Event"]["uuid"].as_str()
    }
}

/// Every message of the feeds stream on `filter`, from sequence 1.
pub async fn read_feed(js: &jetstream::Context, filter: &str) -> Vec<Msg> {
    let Ok(stream) = js.get_stream(FEEDS_STREAM).await else { return Vec::new() };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig { filter_subject: filter.to_string(), ..Default::default() })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    loop {
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(400), messages.next()).await else { break };
        let info = m.info().expect("info");
        let (seq, pending) = (info.stream_sequence, info.pending);
        let msg_id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_string()).expect("Nats-Msg-Id");
        out.push(Msg { seq, subject: m.subject.to_string(), msg_id, payload: serde_json::from_slice(&m.payload).expect("json payload") });
        if pending == 0 {
            break;
        }
    }
    out
}

/// What an audience holds after a feed: the last `event` message of each Event not retracted since.
pub fn held(messages: &[Msg]) -> std::collections::BTreeMap<String, Value> {
    let mut held = std::collections::BTreeMap::new();
    for m in messages {
        let Some(uuid) = m.event_uuid() else { continue };
        match m.kind() {
            "event" => {
                held.insert(uuid.to_string(), m.payload.clone());
            }
            "retract" => {
                held.remove(uuid);
            }
            _ => {}
        }
    }
    held
}

/// Waits until the exporter has applied the whole log and published its whole outbox.
pub async fn settled(stack: &Stack, js: &jetstream::Context) {
    let ok = crate::eventually(Duration::from_secs(60), || async {
        let head = stack.head_position().await;
        let client = stack.db.pool.get().await.expect("pool");
        let checkpoint: i64 = client
            .query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = 'exporter'", &[])
            .await
            .expect("q")
            .map_or(0, |r| r.get(0));
        let outbox: i64 = client.query_one("SELECT coalesce(max(seq), 0) FROM exp.feed_outbox", &[]).await.expect("q").get(0);
        let stream = match js.get_stream(FEEDS_STREAM).await {
            Ok(mut s) => s.info().await.map(|i| i.state.last_sequence as i64).unwrap_or(-1),
            Err(_) => 0,
        };
        checkpoint >= head && stream == outbox
    })
    .await;
    assert!(ok, "the exporter did not settle");
}

/// Waits until every cached export listed for `key`'s view is fresh; the list.
pub async fn exports_fresh(stack: &Stack, key: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = stack.request(reqwest::Method::GET, "/events/export", key).send().await.expect("events/export");
        let list: Value = r.json().await.expect("json");
        if list.as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|e| e["fresh"] == true)) {
            return list;
        }
        assert!(std::time::Instant::now() < deadline, "cached exports did not become fresh: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
