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
    // A touch after the record: the Event is unpublished at the touch's time.
    let (rm, corr) = batch(&[Change::EventCreated(meta(1, true)), Change::AttributeAdded(attribute(1)), Change::EventTouched { timestamp: 5 }]).await;
    assert_eq!((rm, corr), ((5, false), (5, false)));

    // A touch, then an edit of the Event's record: the record's timestamp and flag win.
    let (rm, corr) = batch(&[
        Change::EventCreated(meta(1, false)),
        Change::AttributeAdded(attribute(1)),
        Change::EventTouched { timestamp: 5 },
        Change::EventUpdated(meta(3, true)),
    ])
    .await;
    assert_eq!((rm, corr), ((3, true), (3, true)));
    // The same with the record written out before the touch (a publication flushes the buffers).
    let (rm, corr) = batch(&[
        Change::EventCreated(meta(1, false)),
        Change::EventPublished { publish_timestamp: 6 },
        Change::EventTouched { timestamp: 5 },
        Change::EventUpdated(meta(3, true)),
    ])
    .await;
    assert_eq!((rm, corr), ((3, true), (3, true)));

    // Touches around a publication: the last word is the log's last change.
    let (rm, corr) = batch(&[
        Change::EventCreated(meta(1, false)),
        Change::EventTouched { timestamp: 5 },
        Change::EventPublished { publish_timestamp: 6 },
        Change::AttributeAdded(attribute(2)),
    ])
    .await;
    assert_eq!((rm, corr), ((5, true), (5, true)));
    let (rm, corr) = batch(&[
        Change::EventCreated(meta(1, false)),
        Change::EventPublished { publish_timestamp: 6 },
        Change::AttributeAdded(attribute(2)),
        Change::EventTouched { timestamp: 7 },
        Change::AttributeAdded(attribute(3)),
        Change::EventTouched { timestamp: 8 },
    ])
    .await;
    assert_eq!((rm, corr), ((8, false), (8, false)));
}
