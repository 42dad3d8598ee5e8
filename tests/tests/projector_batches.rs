//! One batch of changes applied by the indexer and the correlator as one unit: their buffered writes
//! (attributes added, Events touched) must leave what applying the changes one by one leaves, whatever
//! the order of touches, edits and publications inside the batch.

use cairn_domain::Change;
use cairn_domain::event::{Attribute, EventMeta};
use cairn_tests::pg::TestDb;
use serde_json::json;
use uuid::Uuid;

fn meta(timestamp: i64, published: bool) -> EventMeta {
    serde_json::from_value(json!({"id": 1, "uuid": Uuid::from_u128(1), "info": "batched", "date": "2026-11-29", "threat_level_id": 1,
        "analysis": 0, "distribution": 1, "sharing_group_id": 0, "org_id": 1, "orgc_id": 1, "user_id": 1, "published": published,
        "publish_timestamp": 0, "timestamp": timestamp}))
    .expect("meta")
}

fn attribute(id: i64) -> Attribute {
    serde_json::from_value(json!({"id": id, "uuid": Uuid::from_u128(100 + id as u128), "event_id": 1, "category": "Network activity",
        "type": "domain", "value1": format!("a{id}.example"), "to_ids": true, "distribution": 5, "timestamp": 1}))
    .expect("attribute")
}

/// Applies `changes` (all of the Event's stream) as one batch of each projector, in one transaction
/// each; returns (timestamp, published) of the Event in `rm.events` and in `corr.events`.
async fn batch(changes: &[Change]) -> ((i64, bool), (i64, bool)) {
    let db = TestDb::new().await;
    let stream = Uuid::from_u128(1);
    let decoded: Vec<(Uuid, Change)> = changes.iter().map(|c| (stream, c.clone())).collect();
    let mut client = db.pool.get().await.expect("client");
    let tx = client.transaction().await.expect("tx");
    cairn_indexer::apply_changes(&tx, &decoded).await.expect("indexer");
    cairn_correlator::apply_decoded(&tx, cairn_correlator::SCHEMA, &decoded).await.expect("correlator");
    tx.commit().await.expect("commit");
    let row = |table: &str| format!("SELECT timestamp, published FROM {table} WHERE id = 1");
    let r = client.query_one(&row("rm.events"), &[]).await.expect("rm.events");
    let c = client.query_one(&row("corr.events"), &[]).await.expect("corr.events");
    ((r.get(0), r.get(1)), (c.get(0), c.get(1)))
}

#[tokio::test]
async fn buffered_touches_keep_the_order_of_the_log() {
    let created = |published| Change::EventCreated(meta(1, published));
    let touched = |timestamp| Change::EventTouched { timestamp };
    let published = Change::EventPublished { publish_timestamp: 6 };
    let added = |id| Change::AttributeAdded(attribute(id));
    // (what the case shows, the batch, the Event's (timestamp, published) after it)
    let cases = [
        ("a touch after the record unpublishes at the touch's time", vec![created(true), added(1), touched(5)], (5, false)),
        ("a touch, then an edit of the record: the record wins", vec![created(false), added(1), touched(5), Change::EventUpdated(meta(3, true))], (3, true)),
        (
            "the same with the record written out before the touch (a publication flushes the buffers)",
            vec![created(false), published.clone(), touched(5), Change::EventUpdated(meta(3, true))],
            (3, true),
        ),
        ("a touch before a publication: published", vec![created(false), touched(5), published.clone(), added(2)], (5, true)),
        ("touches after a publication: the last one", vec![created(false), published, added(2), touched(7), added(3), touched(8)], (8, false)),
    ];
    for (case, changes, expected) in cases {
        assert_eq!(batch(&changes).await, (expected, expected), "{case}: (rm.events, corr.events)");
    }
}
