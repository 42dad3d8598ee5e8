//! The indexer's collaboration read models (migrations/0009_collaboration.sql) against a real
//! PostgreSQL: changes are appended to the log as the API would (Event stream, sightings stream), the
//! indexer projector is stepped until idle, and the `rm.*` rows are checked.

use cairn_domain::Change;
use cairn_domain::event::{Attribute, Delegation, EventMeta, Post, Proposal, Thread};
use cairn_domain::sighting::Sighting;
use cairn_domain::stream;
use cairn_eventlog::projector::{Options, Outcome, Runtime};
use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StreamWrite};
use cairn_indexer::Indexer;
use cairn_tests::pg::TestDb;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

const OWNER: i64 = 1;
const OTHER: i64 = 2;
const T: i64 = 1_700_000_000;

/// Appends changes stream by stream with the right expected versions.
struct Log {
    appender: Appender,
    versions: HashMap<Uuid, i64>,
}

impl Log {
    async fn append(&mut self, stream_id: Uuid, stream_type: &str, changes: &[Change]) {
        let version = self.versions.entry(stream_id).or_insert(0);
        let expected = if *version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(*version) };
        let changes: Vec<NewChange> = changes
            .iter()
            .map(|c| {
                let r = c.to_record();
                NewChange::new(r.change_type, r.schema_version, r.payload)
            })
            .collect();
        *version += changes.len() as i64;
        let request = CommitRequest {
            command_id: Uuid::new_v4(),
            command_type: "test".into(),
            actor: json!({}),
            writes: vec![StreamWrite { stream_id, stream_type: stream_type.into(), expected, changes }],
        };
        self.appender.commit(request).await.expect("append");
    }
}

async fn index_everything(db: &TestDb) {
    let mut rt = Runtime::new(Indexer, db.pool.clone(), None, Options::default()).await.expect("indexer runtime");
    let head = db.head().await;
    for _ in 0..1_000 {
        match rt.try_apply_next().await.expect("indexer step") {
            Outcome::Idle if rt.checkpoint() == head => return,
            _ => {}
        }
    }
    panic!("the indexer did not reach the head ({head}), it is at {}", rt.checkpoint());
}

fn event_uuid(n: i64) -> Uuid {
    Uuid::from_u128(0xE000_0000 + n as u128)
}

fn meta(id: i64, distribution: u8) -> EventMeta {
    EventMeta {
        id,
        uuid: event_uuid(id),
        info: format!("event {id}"),
        date: "2023-11-14".into(),
        threat_level_id: 4,
        analysis: 0,
        distribution,
        sharing_group_id: 0,
        org_id: OWNER,
        orgc_id: OWNER,
        user_id: 10,
        published: false,
        publish_timestamp: 0,
        timestamp: T,
        sighting_timestamp: 0,
        proposal_email_lock: false,
        locked: false,
        disable_correlation: false,
        extends_uuid: String::new(),
    }
}

fn ip(id: i64, event_id: i64, value: &str) -> Attribute {
    Attribute {
        id,
        uuid: Uuid::from_u128(0xA000_0000 + id as u128),
        event_id,
        object_id: 0,
        object_relation: None,
        category: "Network activity".into(),
        attr_type: "ip-dst".into(),
        value1: value.into(),
        value2: String::new(),
        to_ids: true,
        comment: String::new(),
        distribution: 5,
        sharing_group_id: 0,
        timestamp: T,
        deleted: false,
        disable_correlation: false,
        first_seen: None,
        last_seen: None,
        tags: vec![],
    }
}

fn proposal(id: i64, on: &Attribute, to_ids: bool) -> Proposal {
    Proposal {
        id,
        uuid: on.uuid,
        event_id: on.event_id,
        event_uuid: event_uuid(on.event_id),
        old_id: on.id,
        event_org_id: OWNER,
        category: on.category.clone(),
        attr_type: on.attr_type.clone(),
        value1: on.value1.clone(),
        value2: String::new(),
        to_ids,
        comment: String::new(),
        disable_correlation: false,
        first_seen: None,
        last_seen: None,
        proposal_to_delete: false,
        org_id: OTHER,
        user_id: 20,
        email: "analyst@other.test".into(),
        timestamp: T + 1,
        base_revision: 1,
        base_timestamp: T,
    }
}

fn post(id: i64, thread_id: i64, event_id: i64, user_id: i64, org_id: i64, contents: &str) -> Post {
    Post { id, thread_id, event_id, user_id, org_id, contents: contents.into(), post_id: 0, date_created: T + id, date_modified: T + id }
}

fn sighting(id: i64, on: &Attribute, org_id: i64, sighting_type: u8, date_sighting: i64) -> Sighting {
    Sighting {
        id,
        uuid: Uuid::from_u128(0x5100_0000 + id as u128),
        event_id: on.event_id,
        event_uuid: event_uuid(on.event_id),
        attribute_id: on.id,
        attribute_uuid: on.uuid,
        org_id,
        user_id: 20,
        sighting_type,
        source: "sensor".into(),
        date_sighting,
    }
}

/// id, old_id, to_ids, deleted, status, attribute_id, resolved_by_org_id, base_revision.
type ProposalRow = (i64, i64, bool, bool, String, Option<i64>, Option<i64>, i64);

#[tokio::test]
async fn proposals_posts_delegations_and_sightings_reach_their_read_models() {
    let db = TestDb::new().await;
    let mut log = Log { appender: Appender::spawn(db.pool.clone(), None), versions: HashMap::new() };
    let (e1, e2) = (event_uuid(1), event_uuid(2));
    let (a1, a2) = (ip(1, 1, "198.51.100.1"), ip(2, 1, "198.51.100.2"));

    // Exercise 4: organisation 2 proposes to_ids off on attribute 1, explains it, the owner accepts;
    // a second proposal is discarded; a third (new attribute) stays pending.
    log.append(e1, stream::EVENT, &[Change::EventCreated(meta(1, 1)), Change::AttributeAdded(a1.clone()), Change::AttributeAdded(a2.clone())]).await;
    log.append(e1, stream::EVENT, &[Change::ProposalAdded(proposal(50, &a1, false))]).await;
    log.append(
        e1,
        stream::EVENT,
        &[
            Change::ThreadStarted(Thread { id: 7, event_id: 1, title: "Discussion about Event #1 (event 1)".into(), org_id: OTHER, user_id: 20, date_created: T + 60 }),
            Change::PostAdded(post(60, 7, 1, 20, OTHER, "198.51.100.1 is our proxy")),
        ],
    )
    .await;
    log.append(e1, stream::EVENT, &[Change::PostAdded(post(61, 7, 1, 10, OWNER, "accepting"))]).await;
    log.append(
        e1,
        stream::EVENT,
        &[
            Change::AttributeUpdated(Attribute { to_ids: false, timestamp: T + 100, ..a1.clone() }),
            Change::ProposalAccepted { id: 50, attribute_id: 1, by_org_id: OWNER, by_user_id: 10, timestamp: T + 100 },
            Change::EventTouched { timestamp: T + 100 },
        ],
    )
    .await;
    log.append(e1, stream::EVENT, &[Change::ProposalAdded(proposal(51, &a2, false))]).await;
    log.append(e1, stream::EVENT, &[Change::ProposalDiscarded { id: 51, by_org_id: OTHER, by_user_id: 20, timestamp: T + 110 }]).await;
    let new_one = Proposal { id: 52, uuid: Uuid::from_u128(0xDA00_0001), old_id: 0, value1: "198.51.100.9".into(), base_revision: 0, base_timestamp: 0, ..proposal(52, &a1, true) };
    log.append(e1, stream::EVENT, &[Change::ProposalAdded(new_one)]).await;
    log.append(e1, stream::EVENT, &[Change::PostEdited { id: 60, contents: "198.51.100.1 is our HTTP proxy".into(), date_modified: T + 120 }]).await;
    log.append(e1, stream::EVENT, &[Change::PostDeleted { id: 61, by_user_id: 10, timestamp: T + 130 }]).await;
    log.append(e1, stream::EVENT, &[Change::EventReporterContacted { org_id: OTHER, user_id: 20, message: "thanks".into(), creator_only: false, timestamp: T + 140 }]).await;

    // Sightings, in Event 1's sightings stream: the second expiration of organisation 2 replaced its first.
    let s1 = stream::sightings_stream(e1);
    log.append(s1, stream::SIGHTINGS, &[Change::SightingAdded(sighting(1, &a1, OTHER, 0, T + 200)), Change::SightingAdded(sighting(2, &a1, OTHER, 2, T + 150))]).await;
    log.append(
        s1,
        stream::SIGHTINGS,
        &[
            Change::SightingDeleted { id: 2, by_org_id: OTHER, by_user_id: 20, timestamp: T + 210 },
            Change::SightingAdded(sighting(3, &a1, OTHER, 2, T + 210)),
            Change::SightingAdded(sighting(4, &a2, OWNER, 1, T + 190)),
        ],
    )
    .await;

    // Delegation: Event 2 (org-only) is delegated to organisation 2, a first request is withdrawn.
    let delegation = |id, distribution| Delegation {
        id,
        event_id: 2,
        org_id: OTHER,
        requester_org_id: OWNER,
        requester_user_id: 11,
        message: "please publish".into(),
        distribution,
        sharing_group_id: 0,
        timestamp: T + 300,
    };
    log.append(e2, stream::EVENT, &[Change::EventCreated(meta(2, 0)), Change::AttributeAdded(ip(3, 2, "203.0.113.3"))]).await;
    log.append(e2, stream::EVENT, &[Change::DelegationRequested(delegation(70, -1))]).await;
    log.append(e2, stream::EVENT, &[Change::DelegationDiscarded { id: 70, by_org_id: OWNER, by_user_id: 11, timestamp: T + 310 }]).await;
    log.append(e2, stream::EVENT, &[Change::DelegationRequested(delegation(71, 1))]).await;

    index_everything(&db).await;
    let c = db.pool.get().await.expect("pool");

    let rows = c
        .query("SELECT id, old_id, to_ids, deleted, status, attribute_id, resolved_by_org_id, base_revision FROM rm.shadow_attributes ORDER BY id", &[])
        .await
        .expect("proposals");
    let got: Vec<ProposalRow> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))).collect();
    assert_eq!(
        got,
        [
            (50, 1, false, true, "accepted".into(), Some(1), Some(OWNER), 1),
            (51, 2, false, true, "discarded".into(), None, Some(OTHER), 1),
            (52, 0, true, false, "pending".into(), None, None, 0),
        ]
    );
    let to_ids: bool = c.query_one("SELECT to_ids FROM rm.attributes WHERE id = 1", &[]).await.expect("attribute").get(0);
    assert!(!to_ids, "the accepted proposal's attribute change was indexed");
    let hasproposal: Vec<i64> = c
        .query("SELECT e.id FROM rm.events e WHERE EXISTS (SELECT 1 FROM rm.shadow_attributes s WHERE s.event_id = e.id AND NOT s.deleted)", &[])
        .await
        .expect("hasproposal")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(hasproposal, [1]);

    let thread = c.query_one("SELECT id, event_id, event_uuid, post_count, deleted, date_modified FROM rm.threads", &[]).await.expect("thread");
    assert_eq!(
        (thread.get::<_, i64>(0), thread.get::<_, i64>(1), thread.get::<_, Uuid>(2), thread.get::<_, i64>(3), thread.get::<_, bool>(4), thread.get::<_, i64>(5)),
        (7, 1, e1, 1, false, T + 130)
    );
    let posts: Vec<(i64, String, bool)> =
        c.query("SELECT id, contents, deleted FROM rm.posts ORDER BY id", &[]).await.expect("posts").iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(posts, [(60, "198.51.100.1 is our HTTP proxy".to_string(), false), (61, "accepting".to_string(), true)]);

    let sightings: Vec<(i64, i64, i16, i64)> = c
        .query("SELECT id, attribute_id, type, org_id FROM rm.sightings WHERE event_id = 1 ORDER BY id", &[])
        .await
        .expect("sightings")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(sightings, [(1, 1, 0, OTHER), (3, 1, 2, OTHER), (4, 2, 1, OWNER)]);
    let by_attribute_type: i64 = c
        .query_one("SELECT count(*) FROM rm.sightings WHERE attribute_id = 1 AND type = 0 AND date_sighting >= $1", &[&(T + 100)])
        .await
        .expect("count")
        .get(0);
    assert_eq!(by_attribute_type, 1);

    let e1_row = c.query_one("SELECT sighting_timestamp, timestamp, delegate_org_id FROM rm.events WHERE id = 1", &[]).await.expect("event 1");
    assert_eq!((e1_row.get::<_, i64>(0), e1_row.get::<_, i64>(1), e1_row.get::<_, i64>(2)), (T + 210, T + 100, 0));

    let delegations: Vec<(i64, String, i16)> = c
        .query("SELECT id, status, distribution FROM rm.event_delegations WHERE event_id = 2 ORDER BY id", &[])
        .await
        .expect("delegations")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(delegations, [(70, "discarded".to_string(), -1), (71, "pending".to_string(), 1)]);
    let delegate: i64 = c.query_one("SELECT delegate_org_id FROM rm.events WHERE id = 2", &[]).await.expect("event 2").get(0);
    assert_eq!(delegate, OTHER, "the pending target is on the Event's row for the SQL visibility rule");

    // The target accepts: the delegation resolves, the Event's row changes hands in place (same id and
    // uuid), an edit of the Event keeps its sighting timestamp.
    let transferred = EventMeta { org_id: OTHER, orgc_id: OTHER, user_id: 21, distribution: 1, timestamp: T + 400, ..meta(2, 0) };
    log.append(e2, stream::EVENT, &[Change::DelegationAccepted { id: 71, by_org_id: OTHER, by_user_id: 21, timestamp: T + 400 }, Change::EventUpdated(transferred)])
        .await;
    log.append(e1, stream::EVENT, &[Change::EventUpdated(EventMeta { info: "renamed".into(), timestamp: T + 500, ..meta(1, 1) })]).await;
    index_everything(&db).await;

    let e2_row = c.query_one("SELECT uuid, org_id, orgc_id, user_id, distribution, delegate_org_id FROM rm.events WHERE id = 2", &[]).await.expect("event 2");
    assert_eq!(
        (e2_row.get::<_, Uuid>(0), e2_row.get::<_, i64>(1), e2_row.get::<_, i64>(2), e2_row.get::<_, i64>(3), e2_row.get::<_, i16>(4), e2_row.get::<_, i64>(5)),
        (e2, OTHER, OTHER, 21, 1, 0)
    );
    let status: String = c.query_one("SELECT status FROM rm.event_delegations WHERE id = 71", &[]).await.expect("delegation").get(0);
    assert_eq!(status, "accepted");
    let kept: i64 = c.query_one("SELECT sighting_timestamp FROM rm.events WHERE id = 1", &[]).await.expect("event 1").get(0);
    assert_eq!(kept, T + 210, "an Event record never moves the sighting timestamp back");

    // Deleting the Event's last post deletes the thread; deleting the Event removes every collaboration row.
    log.append(e1, stream::EVENT, &[Change::PostDeleted { id: 60, by_user_id: 20, timestamp: T + 600 }, Change::ThreadDeleted { id: 7, timestamp: T + 600 }]).await;
    index_everything(&db).await;
    let thread = c.query_one("SELECT post_count, deleted FROM rm.threads WHERE id = 7", &[]).await.expect("thread");
    assert_eq!((thread.get::<_, i64>(0), thread.get::<_, bool>(1)), (0, true));

    log.append(e1, stream::EVENT, &[Change::EventDeleted { id: 1 }]).await;
    index_everything(&db).await;
    for table in ["rm.shadow_attributes", "rm.threads", "rm.posts", "rm.sightings"] {
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {table} WHERE event_id = 1"), &[]).await.expect("count").get(0);
        assert_eq!(n, 0, "{table} keeps nothing of a deleted Event");
    }
}

#[tokio::test]
async fn re_applying_collaboration_changes_is_harmless() {
    // A rebuild from zero into the same tables (or a redelivery) must not fail nor duplicate rows.
    let db = TestDb::new().await;
    let mut log = Log { appender: Appender::spawn(db.pool.clone(), None), versions: HashMap::new() };
    let e1 = event_uuid(1);
    let a1 = ip(1, 1, "198.51.100.1");
    log.append(e1, stream::EVENT, &[Change::EventCreated(meta(1, 1)), Change::AttributeAdded(a1.clone()), Change::ProposalAdded(proposal(50, &a1, false))]).await;
    log.append(
        e1,
        stream::EVENT,
        &[
            Change::ThreadStarted(Thread { id: 7, event_id: 1, title: "t".into(), org_id: OTHER, user_id: 20, date_created: T }),
            Change::PostAdded(post(60, 7, 1, 20, OTHER, "hello")),
        ],
    )
    .await;
    log.append(stream::sightings_stream(e1), stream::SIGHTINGS, &[Change::SightingAdded(sighting(1, &a1, OTHER, 0, T))]).await;
    index_everything(&db).await;

    let c = db.pool.get().await.expect("pool");
    c.execute("UPDATE es.projector_checkpoints SET position = 0 WHERE projector = 'indexer'", &[]).await.expect("rewind the indexer");
    index_everything(&db).await;

    for (table, expected) in [("rm.shadow_attributes", 1_i64), ("rm.threads", 1), ("rm.posts", 1), ("rm.sightings", 1)] {
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0);
        assert_eq!(n, expected, "{table}");
    }
    let count: i64 = c.query_one("SELECT post_count FROM rm.threads WHERE id = 7", &[]).await.expect("thread").get(0);
    assert_eq!(count, 1);
}
