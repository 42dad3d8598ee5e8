//! Given/when/then tests of the Event aggregate: a history of changes is folded with [`evolve`], a
//! command is decided, then the exact changes (or the refusal) are checked, and where it matters the
//! state the changes fold into.
//!
//! The world: organisation 1 is the host organisation; unless a test says otherwise the Event (id 1)
//! belongs to it and was created by user 10 at `T0`; decisions happen at `NOW`. Organisation 2 is
//! "another organisation".

use super::decide::{DUPLICATE, NO_PERMISSION, NO_PERMISSION_FUNCTIONALITY};
use super::*;
use crate::acl::{AccessSettings, Viewer};
use crate::actor::Actor;
use crate::change::Change;
use crate::error::DomainError;
use crate::role::{Role, default_role};
use crate::types::TypeCatalogue;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::OnceLock;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------------

/// When decisions happen (2023-11-14 22:13:20 UTC).
const NOW: i64 = 1_700_000_000;
const TODAY: &str = "2023-11-14";
/// When the given history happened.
const T0: i64 = 1_690_000_000;

const HOST_ORG: i64 = 1;
const OTHER_ORG: i64 = 2;

const ADMIN: i64 = 1;
const ORG_ADMIN: i64 = 2;
const USER: i64 = 3;
const PUBLISHER: i64 = 4;
const READ_ONLY: i64 = 6;

const EVENT_ID: i64 = 1;
const EVENT_UUID: Uuid = Uuid::from_u128(0xE000_0001);

const FILE_TEMPLATE: Uuid = Uuid::from_u128(0x7E00_0001);
const DOMAIN_IP_TEMPLATE: Uuid = Uuid::from_u128(0x7E00_0002);

const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const OTHER_MD5: &str = "0cc175b9c0f1b6a831c399e269772661";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A cut-down describeTypes.json with the real shape.
fn describe_types() -> serde_json::Value {
    json!({"result": {
        "sane_defaults": {
            "ip-dst": {"default_category": "Network activity", "to_ids": 1},
            "ip-src": {"default_category": "Network activity", "to_ids": 1},
            "domain": {"default_category": "Network activity", "to_ids": 1},
            "md5": {"default_category": "Payload delivery", "to_ids": 1},
            "sha256": {"default_category": "Payload delivery", "to_ids": 1},
            "comment": {"default_category": "Other", "to_ids": 0},
            "text": {"default_category": "Other", "to_ids": 0},
            "filename": {"default_category": "Payload delivery", "to_ids": 1},
            "filename|md5": {"default_category": "Payload delivery", "to_ids": 1},
            "ip-dst|port": {"default_category": "Network activity", "to_ids": 1}
        },
        "types": ["ip-dst", "ip-src", "domain", "md5", "sha256", "comment", "text", "filename", "filename|md5", "ip-dst|port"],
        "categories": ["Payload delivery", "Network activity", "External analysis", "Other"],
        "category_type_mappings": {
            "Payload delivery": ["md5", "sha256", "filename", "filename|md5", "ip-dst", "ip-src", "domain", "comment", "text"],
            "Network activity": ["ip-dst", "ip-src", "domain", "ip-dst|port", "comment", "text"],
            "External analysis": ["md5", "sha256", "filename", "filename|md5", "ip-dst", "ip-src", "domain", "comment", "text"],
            "Other": ["comment", "text"]
        }
    }})
}

pub(super) fn catalogue() -> &'static TypeCatalogue {
    static CATALOGUE: OnceLock<TypeCatalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| TypeCatalogue::from_describe_types(&describe_types()).expect("the describeTypes fixture loads"))
}

/// `file` needs one of filename/md5/sha256; `domain-ip` needs a domain.
fn templates() -> &'static TemplateBook {
    static BOOK: OnceLock<TemplateBook> = OnceLock::new();
    BOOK.get_or_init(|| {
        let file = TemplateRule {
            name: "file".into(),
            required: vec![],
            required_one_of: vec!["filename".into(), "md5".into(), "sha256".into()],
        };
        let domain_ip = TemplateRule { name: "domain-ip".into(), required: vec!["domain".into()], required_one_of: vec![] };
        let mut book = TemplateBook::default();
        book.by_uuid.insert(FILE_TEMPLATE, file.clone());
        book.by_uuid.insert(DOMAIN_IP_TEMPLATE, domain_ip.clone());
        book.by_name.insert("file".into(), file);
        book.by_name.insert("domain-ip".into(), domain_ip);
        book
    })
}

/// Someone issuing a command, with what their [`Context`] borrows.
struct Who {
    actor: Actor,
    role: Role,
    viewer: Viewer,
    sharing_groups: BTreeSet<i64>,
    access: AccessSettings,
}

impl Who {
    fn ctx(&self) -> Context<'_> {
        Context {
            actor: &self.actor,
            role: &self.role,
            now: NOW,
            today: TODAY.into(),
            catalogue: catalogue(),
            templates: templates(),
            default_event_distribution: 1,
            default_attribute_distribution: 5,
            default_threat_level: 4,
            host_org_id: HOST_ORG,
            sharing_groups: &self.sharing_groups,
            viewer: &self.viewer,
            access: self.access,
        }
    }

    /// The same person, member of (and allowed to assign) sharing group `sg`.
    fn in_sharing_group(mut self, sg: i64) -> Self {
        self.sharing_groups.insert(sg);
        self.viewer.sharing_groups.insert(sg);
        self
    }
}

fn who(org_id: i64, user_id: i64, role_id: i64) -> Who {
    let role = default_role(role_id).expect("a default role");
    let actor = Actor { user_id, org_id, role_id, ..Actor::system("test") };
    let viewer = Viewer { org_id, site_admin: role.perm_site_admin, sharing_groups: BTreeSet::new() };
    Who { actor, role, viewer, sharing_groups: BTreeSet::new(), access: AccessSettings::default() }
}

/// User 10 (role User) of the host organisation: created the given Events.
fn creator() -> Who {
    who(HOST_ORG, 10, USER)
}
fn colleague_publisher() -> Who {
    who(HOST_ORG, 11, PUBLISHER)
}
fn colleague_read_only() -> Who {
    who(HOST_ORG, 12, READ_ONLY)
}
fn org_admin() -> Who {
    who(HOST_ORG, 13, ORG_ADMIN)
}
/// User 20 (role User) of another organisation.
fn outsider() -> Who {
    who(OTHER_ORG, 20, USER)
}
fn outside_publisher() -> Who {
    who(OTHER_ORG, 21, PUBLISHER)
}
/// A site admin who belongs to another organisation (rights come from the role, not the org).
fn site_admin() -> Who {
    who(OTHER_ORG, 30, ADMIN)
}

// ---------------------------------------------------------------------------------------------------
// Given / when / then
// ---------------------------------------------------------------------------------------------------

fn given(history: &[Change]) -> EventState {
    history.iter().fold(EventState::default(), evolve)
}

fn when(state: &EventState, who: &Who, command: EventCommand) -> Result<Decision, DomainError> {
    decide(state, &who.ctx(), command)
}

/// The state after a decision's changes.
fn then(state: &EventState, decision: &Decision) -> EventState {
    decision.changes.iter().fold(state.clone(), evolve)
}

fn accepted(result: Result<Decision, DomainError>) -> Decision {
    match result {
        Ok(d) => d,
        Err(e) => panic!("expected the command to be accepted, it was refused: {e:?}"),
    }
}

fn refused(result: Result<Decision, DomainError>) -> DomainError {
    match result {
        Ok(d) => panic!("expected a refusal, got changes {:?} and errors {:?}", d.changes, d.errors),
        Err(e) => e,
    }
}

/// The stored change types of a decision, in order (`"attribute.added.v1"` …).
fn kinds(d: &Decision) -> Vec<String> {
    d.changes
        .iter()
        .map(|c| serde_json::to_value(c).ok().and_then(|v| v["type"].as_str().map(str::to_owned)).unwrap_or_default())
        .collect()
}

fn invalid(field: &str, reason: &str) -> DomainError {
    DomainError::invalid(field, reason)
}

fn forbidden(message: &str) -> DomainError {
    DomainError::Forbidden(message.into())
}

fn not_found(message: &str) -> DomainError {
    DomainError::NotFound(message.into())
}

fn one<T: Debug>(items: Vec<T>) -> T {
    assert_eq!(items.len(), 1, "expected exactly one: {items:?}");
    items.into_iter().next().expect("one item")
}

fn created_events(d: &Decision) -> Vec<&EventMeta> {
    d.changes.iter().filter_map(|c| if let Change::EventCreated(m) = c { Some(m) } else { None }).collect()
}
fn updated_events(d: &Decision) -> Vec<&EventMeta> {
    d.changes.iter().filter_map(|c| if let Change::EventUpdated(m) = c { Some(m) } else { None }).collect()
}
fn added_attributes(d: &Decision) -> Vec<&Attribute> {
    d.changes.iter().filter_map(|c| if let Change::AttributeAdded(a) = c { Some(a) } else { None }).collect()
}
fn updated_attributes(d: &Decision) -> Vec<&Attribute> {
    d.changes.iter().filter_map(|c| if let Change::AttributeUpdated(a) = c { Some(a) } else { None }).collect()
}
fn added_objects(d: &Decision) -> Vec<&Object> {
    d.changes.iter().filter_map(|c| if let Change::ObjectAdded(o) = c { Some(o) } else { None }).collect()
}
fn updated_objects(d: &Decision) -> Vec<&Object> {
    d.changes.iter().filter_map(|c| if let Change::ObjectUpdated(o) = c { Some(o) } else { None }).collect()
}
fn added_references(d: &Decision) -> Vec<&ObjectReference> {
    d.changes.iter().filter_map(|c| if let Change::ReferenceAdded(r) = c { Some(r) } else { None }).collect()
}

fn live_attribute_count(state: &EventState) -> usize {
    state.attributes.values().filter(|a| !a.deleted).count()
}

// ---------------------------------------------------------------------------------------------------
// History builders (what the stream already holds)
// ---------------------------------------------------------------------------------------------------

fn meta(org: i64, user: i64, distribution: u8) -> EventMeta {
    EventMeta {
        id: EVENT_ID,
        uuid: EVENT_UUID,
        info: "given event".into(),
        date: "2023-07-22".into(),
        threat_level_id: 4,
        analysis: 0,
        distribution,
        sharing_group_id: 0,
        org_id: org,
        orgc_id: org,
        user_id: user,
        published: false,
        publish_timestamp: 0,
        timestamp: T0,
        sighting_timestamp: 0,
        proposal_email_lock: false,
        locked: false,
        disable_correlation: false,
        extends_uuid: String::new(),
    }
}

/// The host organisation's Event, created by user 10, visible to this community (distribution 1).
fn community_event() -> Change {
    Change::EventCreated(meta(HOST_ORG, 10, 1))
}

/// The host organisation's Event, visible to its organisation only (distribution 0).
fn org_only_event() -> Change {
    Change::EventCreated(meta(HOST_ORG, 10, 0))
}

/// Another organisation's Event (created by user 20), visible to this community.
fn other_orgs_event() -> Change {
    Change::EventCreated(meta(OTHER_ORG, 20, 1))
}

fn published() -> Change {
    Change::EventPublished { publish_timestamp: T0 }
}

fn attribute_uuid(id: i64) -> Uuid {
    Uuid::from_u128(0xA000_0000 + id as u128)
}
fn object_uuid(id: i64) -> Uuid {
    Uuid::from_u128(0xB000_0000 + id as u128)
}
fn reference_uuid(id: i64) -> Uuid {
    Uuid::from_u128(0xC000_0000 + id as u128)
}

/// A standalone attribute as stored (value already normalised).
fn attribute(id: i64, attr_type: &str, category: &str, value: &str) -> Attribute {
    let (value1, value2) = value.split_once('|').unwrap_or((value, ""));
    Attribute {
        id,
        uuid: attribute_uuid(id),
        event_id: EVENT_ID,
        object_id: 0,
        object_relation: None,
        category: category.into(),
        attr_type: attr_type.into(),
        value1: value1.into(),
        value2: value2.into(),
        to_ids: true,
        comment: String::new(),
        distribution: 5,
        sharing_group_id: 0,
        timestamp: T0,
        deleted: false,
        disable_correlation: false,
        first_seen: None,
        last_seen: None,
        tags: vec![],
    }
}

fn object_attribute(id: i64, object_id: i64, relation: &str, attr_type: &str, category: &str, value: &str) -> Attribute {
    Attribute { object_id, object_relation: Some(relation.into()), ..attribute(id, attr_type, category, value) }
}

fn object(id: i64, name: &str, template_uuid: Option<Uuid>) -> Object {
    Object {
        id,
        uuid: object_uuid(id),
        event_id: EVENT_ID,
        name: name.into(),
        meta_category: "network".into(),
        description: String::new(),
        template_uuid,
        template_version: "1".into(),
        timestamp: T0,
        distribution: 5,
        sharing_group_id: 0,
        comment: String::new(),
        deleted: false,
        first_seen: None,
        last_seen: None,
    }
}

fn reference(id: i64, object: &Object, referenced_uuid: Uuid, referenced_id: i64, referenced_type: u8) -> ObjectReference {
    ObjectReference {
        id,
        uuid: reference_uuid(id),
        event_id: EVENT_ID,
        object_id: object.id,
        object_uuid: object.uuid,
        referenced_uuid,
        referenced_id,
        referenced_type,
        relationship_type: "related-to".into(),
        comment: String::new(),
        timestamp: T0,
        deleted: false,
    }
}

fn added(a: Attribute) -> Change {
    Change::AttributeAdded(a)
}

fn ip1() -> Attribute {
    attribute(1, "ip-dst", "Network activity", "198.51.100.1")
}
fn domain2() -> Attribute {
    attribute(2, "domain", "Network activity", "evil.example")
}

/// A community Event with two standalone attributes: 1 (ip-dst 198.51.100.1) and 2 (domain evil.example).
fn event_with_attributes() -> Vec<Change> {
    vec![community_event(), added(ip1()), added(domain2())]
}

/// A community Event with a `domain-ip` object 1 holding attribute 10 (domain) and 11 (ip).
fn event_with_domain_ip_object() -> Vec<Change> {
    vec![
        community_event(),
        Change::ObjectAdded(object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE))),
        added(object_attribute(10, 1, "domain", "domain", "Network activity", "evil.example")),
        added(object_attribute(11, 1, "ip", "ip-dst", "Network activity", "198.51.100.1")),
    ]
}

fn global(tag_id: i64) -> TagLink {
    TagLink { tag_id, local: false, relationship_type: None }
}
fn local(tag_id: i64) -> TagLink {
    TagLink { tag_id, local: true, relationship_type: None }
}

// ---------------------------------------------------------------------------------------------------
// Draft builders (what a request asks for)
// ---------------------------------------------------------------------------------------------------

fn draft_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0xDA00_0000 + n)
}
fn object_draft_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0xDB00_0000 + n)
}
fn reference_draft_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0xDC00_0000 + n)
}

/// A new attribute with only type and value (everything else defaulted).
fn new_attribute(n: u128, attr_type: &str, value: &str) -> AttributeDraft {
    AttributeDraft {
        uuid: draft_uuid(n),
        attr_type: Some(attr_type.into()),
        value: Some(value.into()),
        ..AttributeDraft::default()
    }
}

fn with_relation(draft: AttributeDraft, relation: &str) -> AttributeDraft {
    AttributeDraft { object_relation: Some(relation.into()), ..draft }
}

/// An edit of stored attribute `id` that changes nothing yet.
fn edit_of(id: i64) -> AttributeDraft {
    AttributeDraft { uuid: attribute_uuid(id), ..AttributeDraft::default() }
}

fn new_event(info: &str) -> EventDraft {
    EventDraft { uuid: EVENT_UUID, info: Some(info.into()), ..EventDraft::default() }
}

/// An edit of the Event that changes nothing yet.
fn event_edit() -> EventDraft {
    EventDraft { uuid: EVENT_UUID, ..EventDraft::default() }
}

fn new_object(n: u128, name: &str, template_uuid: Option<Uuid>, attributes: Vec<AttributeDraft>) -> ObjectDraft {
    ObjectDraft {
        uuid: object_draft_uuid(n),
        name: Some(name.into()),
        meta_category: Some("file".into()),
        template_uuid,
        template_version: Some("24".into()),
        attributes,
        ..ObjectDraft::default()
    }
}

/// A `file` object with a filename and an md5.
fn file_object(n: u128) -> ObjectDraft {
    new_object(
        n,
        "file",
        Some(FILE_TEMPLATE),
        vec![
            with_relation(new_attribute(n * 10 + 1, "filename", "invoice.pdf.exe"), "filename"),
            with_relation(new_attribute(n * 10 + 2, "md5", MD5), "md5"),
        ],
    )
}

/// An object edit that changes nothing yet (the command names the object).
fn object_edit() -> ObjectDraft {
    ObjectDraft::default()
}

fn new_reference(n: u128, referenced_uuid: Uuid, relationship: &str) -> ReferenceDraft {
    ReferenceDraft {
        uuid: reference_draft_uuid(n),
        referenced_uuid: Some(referenced_uuid),
        relationship_type: Some(relationship.into()),
        ..ReferenceDraft::default()
    }
}

fn tag(id: i64) -> TagInfo {
    TagInfo { id, name: format!("tag:{id}"), org_id: 0, user_id: 0, local_only: false }
}

fn tag_draft(tag: TagInfo) -> TagDraft {
    TagDraft { tag, local: false, relationship_type: None, deleted: false }
}

fn ids() -> IdPool {
    IdPool { attributes: (100..130).collect(), objects: (200..210).collect(), references: (300..310).collect() }
}

fn create(draft: EventDraft) -> EventCommand {
    EventCommand::Create { id: EVENT_ID, draft, ids: ids() }
}

fn edit(draft: EventDraft) -> EventCommand {
    EventCommand::Edit { draft, ids: ids() }
}

fn add_attributes(drafts: Vec<AttributeDraft>) -> EventCommand {
    EventCommand::AddAttributes { drafts, break_on_duplicate: true, ids: ids() }
}

fn edit_attribute(id: i64, draft: AttributeDraft) -> EventCommand {
    EventCommand::EditAttribute { target: ElementRef::Id(id), draft }
}

fn delete_attribute(id: i64, hard: bool) -> EventCommand {
    EventCommand::DeleteAttribute { target: ElementRef::Id(id), hard }
}

fn restore_attribute(id: i64) -> EventCommand {
    EventCommand::RestoreAttribute { target: ElementRef::Id(id) }
}

fn add_object(draft: ObjectDraft) -> EventCommand {
    EventCommand::AddObject { draft, break_on_duplicate: false, ids: ids() }
}

fn edit_object(id: i64, draft: ObjectDraft) -> EventCommand {
    EventCommand::EditObject { target: ElementRef::Id(id), draft, ids: ids() }
}

fn add_reference(object_id: i64, draft: ReferenceDraft) -> EventCommand {
    EventCommand::AddReference { object: ElementRef::Id(object_id), draft, ids: ids() }
}

fn tag_event(tag: TagInfo, local: bool) -> EventCommand {
    EventCommand::Tag { target: TagTarget::Event, tag, local, relationship_type: None }
}

fn tag_attribute(id: i64, tag: TagInfo, local: bool) -> EventCommand {
    EventCommand::Tag { target: TagTarget::Attribute(ElementRef::Id(id)), tag, local, relationship_type: None }
}

// ===================================================================================================
// Create (`events/add`)
// ===================================================================================================

#[test]
fn creating_an_event_applies_misps_defaults() {
    let mut draft = new_event("phishing wave");
    draft.attributes = vec![new_attribute(1, "ip-dst", "198.51.100.7"), new_attribute(2, "comment", "seen in the proxy logs")];

    let d = accepted(when(&given(&[]), &creator(), create(draft)));

    assert_eq!(kinds(&d), ["event.created.v1", "attribute.added.v1", "attribute.added.v1"]);
    assert!(d.errors.is_empty());
    assert_eq!(
        one(created_events(&d)),
        &EventMeta {
            id: EVENT_ID,
            uuid: EVENT_UUID,
            info: "phishing wave".into(),
            date: TODAY.into(),
            threat_level_id: 4,
            analysis: 0,
            distribution: 1,
            sharing_group_id: 0,
            org_id: HOST_ORG,
            orgc_id: HOST_ORG,
            user_id: 10,
            published: false,
            publish_timestamp: 0,
            timestamp: NOW,
            sighting_timestamp: 0,
            proposal_email_lock: false,
            locked: false,
            disable_correlation: false,
            extends_uuid: String::new(),
        }
    );
    let added = added_attributes(&d);
    assert_eq!(
        added[0],
        &Attribute {
            id: 100,
            uuid: draft_uuid(1),
            event_id: EVENT_ID,
            object_id: 0,
            object_relation: None,
            category: "Network activity".into(),
            attr_type: "ip-dst".into(),
            value1: "198.51.100.7".into(),
            value2: String::new(),
            to_ids: true,
            comment: String::new(),
            distribution: 5,
            sharing_group_id: 0,
            timestamp: NOW,
            deleted: false,
            disable_correlation: false,
            first_seen: None,
            last_seen: None,
            tags: vec![],
        }
    );
    assert_eq!((added[1].id, added[1].category.as_str(), added[1].to_ids), (101, "Other", false));
}

#[test]
fn creating_an_event_keeps_the_clients_timestamps_and_explicit_fields() {
    let mut draft = new_event("forced timestamps");
    draft.timestamp = Some(T0);
    draft.date = Some("2024-01-02".into());
    draft.threat_level_id = Some(3);
    draft.analysis = Some(2);
    draft.distribution = Some(0);
    draft.attributes = vec![AttributeDraft {
        category: Some("External analysis".into()),
        to_ids: Some(false),
        distribution: Some(3),
        comment: Some("from the sandbox".into()),
        timestamp: Some(T0 - 5),
        ..new_attribute(1, "md5", MD5)
    }];

    let d = accepted(when(&given(&[]), &creator(), create(draft)));

    let meta = one(created_events(&d));
    assert_eq!((meta.timestamp, meta.date.as_str(), meta.threat_level_id, meta.analysis, meta.distribution), (T0, "2024-01-02", 3, 2, 0));
    let a = one(added_attributes(&d));
    assert_eq!(
        (a.category.as_str(), a.to_ids, a.distribution, a.comment.as_str(), a.timestamp),
        ("External analysis", false, 3, "from the sandbox", T0 - 5)
    );
}

#[test]
fn creating_an_event_normalises_attribute_values() {
    let mut draft = new_event("values");
    draft.attributes = vec![
        new_attribute(1, "md5", &MD5.to_uppercase()),
        new_attribute(2, "filename|md5", &format!("Invoice.PDF|{}", OTHER_MD5.to_uppercase())),
        new_attribute(3, "domain", "Evil[.]Example"),
    ];

    let d = accepted(when(&given(&[]), &creator(), create(draft)));

    let values: Vec<(&str, &str)> = added_attributes(&d).iter().map(|a| (a.value1.as_str(), a.value2.as_str())).collect();
    assert_eq!(values, [(MD5, ""), ("Invoice.PDF", OTHER_MD5), ("evil.example", "")]);
}

#[test]
fn a_read_only_user_cannot_create_an_event() {
    let err = refused(when(&given(&[]), &colleague_read_only(), create(new_event("nope"))));
    assert_eq!(err, forbidden("You do not have permission to use this functionality."));
}

#[test]
fn an_event_without_info_is_refused() {
    let state = given(&[]);
    let missing = EventDraft { uuid: EVENT_UUID, ..EventDraft::default() };
    assert_eq!(refused(when(&state, &creator(), create(missing))), invalid("info", "Info cannot be empty."));
    assert_eq!(refused(when(&state, &creator(), create(new_event("   ")))), invalid("info", "Info cannot be empty."));
}

#[test]
fn an_event_with_an_out_of_range_threat_level_analysis_or_distribution_is_refused() {
    let state = given(&[]);
    let threat = EventDraft { threat_level_id: Some(0), ..new_event("x") };
    assert_eq!(refused(when(&state, &creator(), create(threat))), invalid("threat_level_id", "Options: 1, 2, 3, 4."));
    let analysis = EventDraft { analysis: Some(3), ..new_event("x") };
    assert_eq!(refused(when(&state, &creator(), create(analysis))), invalid("analysis", "Options: 0, 1, 2."));
    // 5 (inherit) exists for attributes and objects only.
    let distribution = EventDraft { distribution: Some(5), ..new_event("x") };
    assert_eq!(refused(when(&state, &creator(), create(distribution))), invalid("distribution", "Options: 0..4."));
}

#[test]
fn an_event_with_a_malformed_date_is_refused() {
    let draft = EventDraft { date: Some("02/01/2024".into()), ..new_event("x") };
    assert_eq!(refused(when(&given(&[]), &creator(), create(draft))), invalid("date", "Invalid date (expected YYYY-MM-DD)."));
}

#[test]
fn a_sharing_group_event_needs_a_sharing_group_the_actor_may_use() {
    let state = given(&[]);
    let draft = EventDraft { distribution: Some(4), sharing_group_id: Some(7), ..new_event("x") };
    assert_eq!(
        refused(when(&state, &creator(), create(draft.clone()))),
        invalid("sharing_group_id", "Invalid sharing group or sharing group not set.")
    );
    let d = accepted(when(&state, &creator().in_sharing_group(7), create(draft)));
    let meta = one(created_events(&d));
    assert_eq!((meta.distribution, meta.sharing_group_id), (4, 7));
}

#[test]
fn a_sharing_group_id_is_dropped_unless_the_distribution_is_sharing_group() {
    let draft = EventDraft { distribution: Some(3), sharing_group_id: Some(7), ..new_event("x") };
    let d = accepted(when(&given(&[]), &creator(), create(draft)));
    assert_eq!(one(created_events(&d)).sharing_group_id, 0);
}

#[test]
fn an_attribute_of_an_unknown_type_refuses_the_whole_event_naming_the_attribute() {
    let mut draft = new_event("x");
    draft.attributes = vec![new_attribute(1, "ip-dst", "198.51.100.7"), new_attribute(2, "nope", "value")];
    assert_eq!(refused(when(&given(&[]), &creator(), create(draft))), invalid("Attribute 1.type", "Invalid type \"nope\"."));
}

#[test]
fn an_attribute_without_a_type_is_refused() {
    let mut draft = new_event("x");
    draft.attributes = vec![AttributeDraft { attr_type: None, ..new_attribute(1, "ip-dst", "198.51.100.7") }];
    assert_eq!(refused(when(&given(&[]), &creator(), create(draft))), invalid("Attribute 0.type", "Mandatory field not set."));
}

#[test]
fn an_attribute_in_a_category_that_does_not_allow_its_type_is_refused() {
    let mut draft = new_event("x");
    draft.attributes = vec![AttributeDraft { category: Some("Other".into()), ..new_attribute(1, "md5", MD5) }];
    assert_eq!(
        refused(when(&given(&[]), &creator(), create(draft))),
        invalid("Attribute 0.category", "The category \"Other\" is not valid for the type \"md5\".")
    );
}

#[test]
fn an_attribute_in_an_unknown_category_is_refused() {
    let mut draft = new_event("x");
    draft.attributes = vec![AttributeDraft { category: Some("Nope".into()), ..new_attribute(1, "md5", MD5) }];
    assert_eq!(
        refused(when(&given(&[]), &creator(), create(draft))),
        invalid("Attribute 0.category", "Options depend on the selected type.")
    );
}

#[test]
fn an_attribute_with_an_invalid_value_is_refused() {
    let mut draft = new_event("x");
    draft.attributes = vec![new_attribute(1, "md5", "not-a-hash")];
    assert_eq!(
        refused(when(&given(&[]), &creator(), create(draft))),
        invalid(
            "Attribute 0.value",
            "Checksum has an invalid length or format (expected: 32 hexadecimal characters). Please double check the value or select type \"other\"."
        )
    );
}

#[test]
fn an_attribute_without_a_value_is_refused() {
    let mut draft = new_event("x");
    draft.attributes = vec![AttributeDraft { value: None, ..new_attribute(1, "md5", MD5) }];
    assert_eq!(refused(when(&given(&[]), &creator(), create(draft))), invalid("Attribute 0.value", "Mandatory field not set."));
}

#[test]
fn duplicates_inside_one_create_are_skipped_and_reported() {
    let mut draft = new_event("x");
    draft.attributes = vec![
        new_attribute(1, "ip-dst", "198.51.100.7"),
        new_attribute(2, "ip-dst", "198.51.100.7"),
        // Same type and value in another category: not a duplicate.
        AttributeDraft { category: Some("Payload delivery".into()), ..new_attribute(3, "ip-dst", "198.51.100.7") },
    ];

    let d = accepted(when(&given(&[]), &creator(), create(draft)));

    assert_eq!(kinds(&d), ["event.created.v1", "attribute.added.v1", "attribute.added.v1"]);
    let uuids: Vec<Uuid> = added_attributes(&d).iter().map(|a| a.uuid).collect();
    assert_eq!(uuids, [draft_uuid(1), draft_uuid(3)]);
    assert_eq!(d.errors, [("Attribute.1".to_string(), invalid("value", DUPLICATE))]);
}

#[test]
fn published_true_is_honoured_on_creation_for_a_publisher() {
    let draft = EventDraft { published: Some(true), ..new_event("x") };
    let d = accepted(when(&given(&[]), &colleague_publisher(), create(draft)));

    assert_eq!(kinds(&d), ["event.created.v1", "event.published.v1"]);
    assert!(!one(created_events(&d)).published);
    assert_eq!(d.changes.last(), Some(&Change::EventPublished { publish_timestamp: NOW }));
    let state = then(&given(&[]), &d);
    assert!(state.live().is_some_and(|m| m.published && m.publish_timestamp == NOW));
}

#[test]
fn a_publishers_creation_keeps_the_clients_publish_timestamp() {
    let draft = EventDraft { published: Some(true), publish_timestamp: Some(T0), ..new_event("x") };
    let d = accepted(when(&given(&[]), &colleague_publisher(), create(draft)));
    assert_eq!(d.changes.last(), Some(&Change::EventPublished { publish_timestamp: T0 }));
}

#[test]
fn published_true_is_ignored_on_creation_for_a_user_who_cannot_publish() {
    let draft = EventDraft { published: Some(true), ..new_event("x") };
    let d = accepted(when(&given(&[]), &creator(), create(draft)));
    assert_eq!(kinds(&d), ["event.created.v1"]);
    assert!(!one(created_events(&d)).published);
}

#[test]
fn creating_an_event_that_exists_is_refused() {
    let err = refused(when(&given(&[community_event()]), &creator(), create(new_event("again"))));
    assert_eq!(
        err,
        DomainError::AlreadyExists("Event already exists, if you would like to edit it, use the url in the location header.".into())
    );
}

#[test]
fn event_tags_on_creation_are_attached_once() {
    let mut draft = new_event("x");
    draft.tags = vec![tag_draft(tag(5)), tag_draft(tag(5)), TagDraft { deleted: true, ..tag_draft(tag(6)) }];
    let d = accepted(when(&given(&[]), &creator(), create(draft)));
    assert_eq!(d.changes[1..], [Change::EventTagged(global(5))]);
}

#[test]
fn a_tag_restricted_to_another_user_refuses_the_creation() {
    let mut draft = new_event("x");
    draft.tags = vec![tag_draft(TagInfo { user_id: 99, ..tag(5) })];
    assert_eq!(
        refused(when(&given(&[]), &creator(), create(draft))),
        invalid("tag", "Invalid Tag. This tag can only be set by a fixed user.")
    );
}

#[test]
fn an_object_is_created_with_its_attributes_and_references() {
    let mut draft = new_event("x");
    let mut file = file_object(1);
    file.references = vec![new_reference(1, draft_uuid(11), "derived-from")];
    draft.objects = vec![file];

    let d = accepted(when(&given(&[]), &creator(), create(draft)));

    assert_eq!(kinds(&d), ["event.created.v1", "object.added.v1", "attribute.added.v1", "attribute.added.v1", "object_reference.added.v1"]);
    let o = one(added_objects(&d));
    assert_eq!((o.id, o.uuid, o.name.as_str(), o.template_uuid, o.distribution, o.timestamp), (200, object_draft_uuid(1), "file", Some(FILE_TEMPLATE), 5, NOW));
    let relations: Vec<(i64, i64, Option<&str>)> =
        added_attributes(&d).iter().map(|a| (a.id, a.object_id, a.object_relation.as_deref())).collect();
    assert_eq!(relations, [(100, 200, Some("filename")), (101, 200, Some("md5"))]);
    let r = one(added_references(&d));
    assert_eq!((r.id, r.object_id, r.referenced_id, r.referenced_type, r.relationship_type.as_str()), (300, 200, 100, 0, "derived-from"));
}

#[test]
fn an_object_missing_a_required_template_relation_refuses_the_creation() {
    let mut draft = new_event("x");
    draft.objects = vec![new_object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE), vec![with_relation(new_attribute(1, "ip-dst", "198.51.100.7"), "ip")])];
    assert_eq!(
        refused(when(&given(&[]), &creator(), create(draft))),
        invalid("Object 0.Object", "Could not save object as the required attribute \"domain\" is missing.")
    );
}

#[test]
fn an_object_with_an_invalid_attribute_refuses_the_creation_naming_both() {
    let mut draft = new_event("x");
    let mut file = file_object(1);
    file.attributes[1].value = Some("not-a-hash".into());
    draft.objects = vec![file];
    let err = refused(when(&given(&[]), &creator(), create(draft)));
    assert!(matches!(&err, DomainError::Invalid { field, .. } if field == "Object 0.Attribute 1.value"), "{err:?}");
}

#[test]
fn an_object_of_an_unknown_template_is_accepted_as_it_is() {
    let mut draft = new_event("x");
    draft.objects = vec![new_object(
        1,
        "my-cool-template",
        Some(Uuid::from_u128(0x7E00_00FF)),
        vec![with_relation(new_attribute(1, "text", "anything"), "whatever")],
    )];
    let d = accepted(when(&given(&[]), &creator(), create(draft)));
    assert_eq!(kinds(&d), ["event.created.v1", "object.added.v1", "attribute.added.v1"]);
}

// ===================================================================================================
// Edit (`events/edit`: merge by uuid)
// ===================================================================================================

#[test]
fn changed_metadata_updates_the_event_stamps_it_now_and_unpublishes_it() {
    let state = given(&[community_event(), published()]);
    let draft = EventDraft { info: Some("renamed".into()), threat_level_id: Some(1), ..event_edit() };

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(kinds(&d), ["event.updated.v1"]);
    let m = one(updated_events(&d));
    assert_eq!((m.info.as_str(), m.threat_level_id, m.timestamp, m.published, m.publish_timestamp), ("renamed", 1, NOW, false, T0));
    assert!(then(&state, &d).live().is_some_and(|m| !m.published && m.timestamp == NOW));
}

#[test]
fn metadata_with_a_timestamp_not_newer_than_stored_is_ignored() {
    let state = given(&[community_event()]);
    for timestamp in [T0, T0 - 1] {
        let draft = EventDraft { info: Some("stale".into()), timestamp: Some(timestamp), ..event_edit() };
        let d = accepted(when(&state, &creator(), edit(draft)));
        assert!(d.changes.is_empty(), "{:?}", d.changes);
    }
}

#[test]
fn metadata_equal_to_the_stored_one_records_nothing() {
    let state = given(&[community_event()]);
    let draft = EventDraft { info: Some("given event".into()), distribution: Some(1), ..event_edit() };
    assert_eq!(accepted(when(&state, &creator(), edit(draft))), Decision::default());
}

#[test]
fn invalid_metadata_refuses_the_edit() {
    let state = given(&[community_event()]);
    let draft = EventDraft { info: Some(String::new()), ..event_edit() };
    assert_eq!(refused(when(&state, &creator(), edit(draft))), invalid("info", "Info cannot be empty."));
}

#[test]
fn an_edit_merges_attributes_by_uuid() {
    let state = given(&event_with_attributes());
    let mut draft = event_edit();
    draft.attributes = vec![
        // changed on the client: no timestamp
        AttributeDraft { comment: Some("seen again".into()), ..edit_of(1) },
        // unchanged on the client: its stored timestamp
        AttributeDraft { comment: Some("ignored".into()), timestamp: Some(T0), ..edit_of(2) },
        // new
        new_attribute(3, "md5", MD5),
    ];

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "attribute.added.v1", "event.touched.v1"]);
    assert_eq!(one(updated_attributes(&d)), &Attribute { comment: "seen again".into(), timestamp: NOW, ..ip1() });
    let a = one(added_attributes(&d));
    assert_eq!((a.id, a.uuid, a.category.as_str()), (100, draft_uuid(3), "Payload delivery"));
    assert_eq!(d.changes.last(), Some(&Change::EventTouched { timestamp: NOW }));
    let after = then(&state, &d);
    assert_eq!(live_attribute_count(&after), 3);
    assert_eq!(after.attribute_by_uuid(&attribute_uuid(2)), Some(&domain2()));
}

#[test]
fn an_edit_finds_an_attribute_by_id_when_the_uuid_is_unknown() {
    let state = given(&event_with_attributes());
    let mut draft = event_edit();
    draft.attributes = vec![AttributeDraft { uuid: draft_uuid(9), id: Some(2), comment: Some("by id".into()), ..AttributeDraft::default() }];
    let d = accepted(when(&state, &creator(), edit(draft)));
    assert_eq!(one(updated_attributes(&d)).id, 2);
}

#[test]
fn an_element_with_a_timestamp_not_newer_than_stored_changes_nothing() {
    let state = given(&event_with_attributes());
    let mut draft = event_edit();
    draft.attributes = vec![AttributeDraft { value: Some("198.51.100.99".into()), timestamp: Some(T0), ..edit_of(1) }];
    assert_eq!(accepted(when(&state, &creator(), edit(draft))), Decision::default());
}

#[test]
fn an_attribute_marked_deleted_in_an_edit_is_soft_deleted() {
    let state = given(&event_with_attributes());
    let mut draft = event_edit();
    draft.attributes = vec![AttributeDraft { deleted: Some(true), ..edit_of(1) }];

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(
        d.changes,
        [Change::AttributeDeleted { id: 1, hard: false, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]
    );
    let after = then(&state, &d);
    assert!(after.attributes.get(&1).is_some_and(|a| a.deleted));
    assert_eq!(live_attribute_count(&after), 1);
}

#[test]
fn a_changed_attribute_with_changed_metadata_gives_no_separate_touch() {
    let state = given(&event_with_attributes());
    let mut draft = EventDraft { info: Some("renamed".into()), ..event_edit() };
    draft.attributes = vec![AttributeDraft { comment: Some("c".into()), ..edit_of(1) }];
    let d = accepted(when(&state, &creator(), edit(draft)));
    assert_eq!(kinds(&d), ["event.updated.v1", "attribute.updated.v1"]);
}

#[test]
fn a_tag_marked_deleted_in_an_edit_is_detached() {
    let state = given(&[community_event(), Change::EventTagged(global(5))]);
    let mut draft = event_edit();
    draft.tags = vec![TagDraft { deleted: true, ..tag_draft(tag(5)) }];

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(d.changes, [Change::EventUntagged { tag_id: 5, local: false }, Change::EventTouched { timestamp: NOW }]);
    assert!(then(&state, &d).tags.is_empty());
}

#[test]
fn a_new_tag_in_an_edit_is_attached_and_a_known_one_is_left_alone() {
    let state = given(&[community_event(), Change::EventTagged(global(5))]);
    let mut draft = event_edit();
    draft.tags = vec![tag_draft(tag(5)), tag_draft(tag(6))];
    let d = accepted(when(&state, &creator(), edit(draft)));
    assert_eq!(d.changes, [Change::EventTagged(global(6)), Change::EventTouched { timestamp: NOW }]);
}

#[test]
fn an_object_merge_adds_attributes_and_bumps_the_object_timestamp() {
    let state = given(&event_with_domain_ip_object());
    let mut draft = event_edit();
    draft.objects = vec![ObjectDraft {
        uuid: object_uuid(1),
        attributes: vec![with_relation(new_attribute(1, "ip-dst", "198.51.100.9"), "ip")],
        ..object_edit()
    }];

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(kinds(&d), ["attribute.added.v1", "object.updated.v1", "event.touched.v1"]);
    let a = one(added_attributes(&d));
    assert_eq!((a.id, a.object_id, a.object_relation.as_deref()), (100, 1, Some("ip")));
    assert_eq!(one(updated_objects(&d)), &Object { timestamp: NOW, ..object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE)) });
}

#[test]
fn a_new_object_in_an_edit_is_added() {
    let state = given(&[community_event()]);
    let mut draft = event_edit();
    draft.objects = vec![file_object(1)];
    let d = accepted(when(&state, &creator(), edit(draft)));
    assert_eq!(kinds(&d), ["object.added.v1", "attribute.added.v1", "attribute.added.v1", "event.touched.v1"]);
}

#[test]
fn an_edit_adding_a_duplicate_attribute_reports_it_and_keeps_the_rest() {
    let state = given(&event_with_attributes());
    let mut draft = event_edit();
    draft.attributes = vec![new_attribute(3, "ip-dst", "198.51.100.1"), new_attribute(4, "ip-dst", "198.51.100.2")];

    let d = accepted(when(&state, &creator(), edit(draft)));

    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
    assert_eq!(d.errors, [("Attribute.0".to_string(), invalid("value", DUPLICATE))]);
}

#[test]
fn an_edit_with_an_invalid_attribute_is_refused_whole() {
    let state = given(&event_with_attributes());
    let mut draft = EventDraft { info: Some("renamed".into()), ..event_edit() };
    draft.attributes = vec![new_attribute(3, "ip-dst", "not an ip")];
    assert_eq!(refused(when(&state, &creator(), edit(draft))), invalid("Attribute 0.value", "IP address has an invalid format."));
}

#[test]
fn a_user_of_another_org_cannot_find_an_org_only_event_to_edit() {
    let state = given(&[org_only_event()]);
    let draft = EventDraft { info: Some("mine now".into()), ..event_edit() };
    assert_eq!(refused(when(&state, &outsider(), edit(draft))), not_found("Invalid event"));
}

#[test]
fn a_user_of_another_org_cannot_edit_a_community_event_they_see() {
    let state = given(&[community_event()]);
    let draft = EventDraft { info: Some("mine now".into()), ..event_edit() };
    assert_eq!(refused(when(&state, &outsider(), edit(draft))), forbidden("You do not have permission to do that."));
}

#[test]
fn a_read_only_user_of_the_owner_org_cannot_edit() {
    let state = given(&[community_event()]);
    let draft = EventDraft { info: Some("x".into()), ..event_edit() };
    assert_eq!(refused(when(&state, &colleague_read_only(), edit(draft))), forbidden(NO_PERMISSION));
}

#[test]
fn a_site_admin_of_another_org_edits_an_org_only_event() {
    let state = given(&[org_only_event()]);
    let draft = EventDraft { info: Some("admin fix".into()), ..event_edit() };
    let d = accepted(when(&state, &site_admin(), edit(draft)));
    assert_eq!(one(updated_events(&d)).info, "admin fix");
}

#[test]
fn with_unpublished_private_another_org_cannot_find_an_unpublished_community_event() {
    let state = given(&[community_event()]);
    let mut outsider = outsider();
    outsider.access = AccessSettings { unpublished_private: true };
    assert_eq!(refused(when(&state, &outsider, edit(event_edit()))), not_found("Invalid event"));
}

#[test]
fn editing_a_deleted_event_is_not_found() {
    let state = given(&[community_event(), Change::EventDeleted { id: EVENT_ID }]);
    assert_eq!(refused(when(&state, &creator(), edit(event_edit()))), not_found("Invalid event"));
}

#[test]
fn editing_an_event_that_does_not_exist_is_not_found() {
    assert_eq!(refused(when(&given(&[]), &site_admin(), edit(event_edit()))), not_found("Invalid event"));
}

#[test]
fn published_true_in_an_edit_republishes_for_a_publisher_only() {
    let state = given(&[community_event()]);
    let draft = EventDraft { info: Some("renamed".into()), published: Some(true), ..event_edit() };

    let d = accepted(when(&state, &colleague_publisher(), edit(draft.clone())));
    assert_eq!(kinds(&d), ["event.updated.v1", "event.published.v1"]);
    assert_eq!(d.changes.last(), Some(&Change::EventPublished { publish_timestamp: NOW }));
    assert!(then(&state, &d).live().is_some_and(|m| m.published));

    let d = accepted(when(&state, &creator(), edit(draft)));
    assert_eq!(kinds(&d), ["event.updated.v1"]);
}

#[test]
fn published_true_on_an_unchanged_published_event_records_nothing() {
    let state = given(&[community_event(), published()]);
    let draft = EventDraft { published: Some(true), ..event_edit() };
    assert_eq!(accepted(when(&state, &colleague_publisher(), edit(draft))), Decision::default());
}

#[test]
fn an_edit_can_move_an_event_into_a_sharing_group_the_actor_may_use() {
    let state = given(&[community_event()]);
    let draft = EventDraft { distribution: Some(4), sharing_group_id: Some(7), ..event_edit() };
    assert_eq!(
        refused(when(&state, &creator(), edit(draft.clone()))),
        invalid("sharing_group_id", "Invalid sharing group or sharing group not set.")
    );
    let d = accepted(when(&state, &creator().in_sharing_group(7), edit(draft)));
    let m = one(updated_events(&d));
    assert_eq!((m.distribution, m.sharing_group_id), (4, 7));
}

// ===================================================================================================
// AddAttributes (`attributes/add`)
// ===================================================================================================

#[test]
fn adding_one_attribute_records_it_and_touches_the_event() {
    let state = given(&[community_event(), published()]);

    let d = accepted(when(&state, &creator(), add_attributes(vec![new_attribute(1, "ip-src", "203.0.113.5")])));

    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
    let a = one(added_attributes(&d));
    assert_eq!((a.id, a.event_id, a.category.as_str(), a.distribution, a.timestamp), (100, EVENT_ID, "Network activity", 5, NOW));
    assert_eq!(d.changes.last(), Some(&Change::EventTouched { timestamp: NOW }));
    let after = then(&state, &d);
    assert!(after.live().is_some_and(|m| !m.published && m.timestamp == NOW));
    assert_eq!(live_attribute_count(&after), 1);
}

#[test]
fn adding_a_single_duplicate_is_refused() {
    let state = given(&event_with_attributes());
    let err = refused(when(&state, &creator(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.1")])));
    assert_eq!(err, invalid("value", "A similar attribute already exists for this event."));
}

#[test]
fn a_duplicate_is_found_after_normalisation() {
    let state = given(&event_with_attributes());
    let err = refused(when(&state, &creator(), add_attributes(vec![new_attribute(1, "domain", "EVIL[.]example")])));
    assert_eq!(err, invalid("value", DUPLICATE));
}

#[test]
fn a_list_with_one_duplicate_is_accepted_partially() {
    let state = given(&event_with_attributes());
    let drafts = vec![
        new_attribute(1, "ip-dst", "198.51.100.9"),
        new_attribute(2, "ip-dst", "198.51.100.1"),
        new_attribute(3, "md5", MD5),
    ];

    let d = accepted(when(&state, &creator(), add_attributes(drafts)));

    assert_eq!(kinds(&d), ["attribute.added.v1", "attribute.added.v1", "event.touched.v1"]);
    let added: Vec<(i64, Uuid)> = added_attributes(&d).iter().map(|a| (a.id, a.uuid)).collect();
    assert_eq!(added, [(100, draft_uuid(1)), (101, draft_uuid(3))]);
    assert_eq!(d.errors, [("attribute_1".to_string(), invalid("value", DUPLICATE))]);
}

#[test]
fn a_list_repeating_a_value_reports_the_second_copy() {
    let state = given(&[community_event()]);
    let drafts = vec![new_attribute(1, "ip-dst", "198.51.100.9"), new_attribute(2, "ip-dst", "198.51.100.9")];
    let d = accepted(when(&state, &creator(), add_attributes(drafts)));
    assert_eq!(one(added_attributes(&d)).uuid, draft_uuid(1));
    assert_eq!(d.errors, [("attribute_1".to_string(), invalid("value", DUPLICATE))]);
}

#[test]
fn an_invalid_element_of_a_list_is_reported_by_index() {
    let state = given(&[community_event()]);
    let drafts = vec![new_attribute(1, "nope", "x"), new_attribute(2, "ip-dst", "198.51.100.9")];
    let d = accepted(when(&state, &creator(), add_attributes(drafts)));
    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
    assert_eq!(d.errors, [("attribute_0".to_string(), invalid("type", "Invalid type \"nope\"."))]);
}

#[test]
fn a_single_invalid_attribute_is_refused_with_its_field() {
    let state = given(&[community_event()]);
    assert_eq!(
        refused(when(&state, &creator(), add_attributes(vec![new_attribute(1, "ip-dst|port", "198.51.100.9")]))),
        invalid("value", "Composite type found but the value not in the composite (value1|value2) format.")
    );
}

#[test]
fn break_on_duplicate_false_touches_the_existing_copy() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { comment: Some("seen again".into()), ..new_attribute(1, "ip-dst", "198.51.100.1") };
    let command = EventCommand::AddAttributes { drafts: vec![draft], break_on_duplicate: false, ids: ids() };

    let d = accepted(when(&state, &creator(), command));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "event.touched.v1"]);
    assert_eq!(one(updated_attributes(&d)), &Attribute { comment: "seen again".into(), timestamp: NOW, ..ip1() });
    assert_eq!(live_attribute_count(&then(&state, &d)), 2);
}

#[test]
fn break_on_duplicate_false_gives_a_strictly_newer_timestamp_within_the_same_second() {
    let state = given(&[community_event(), added(Attribute { timestamp: NOW, ..ip1() })]);
    let command =
        EventCommand::AddAttributes { drafts: vec![new_attribute(1, "ip-dst", "198.51.100.1")], break_on_duplicate: false, ids: ids() };
    let d = accepted(when(&state, &creator(), command));
    let touched = one(updated_attributes(&d));
    assert_eq!((touched.id, touched.timestamp, touched.comment.as_str()), (1, NOW + 1, ""));
}

#[test]
fn a_soft_deleted_copy_is_not_a_duplicate() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 }]);
    let d = accepted(when(&state, &creator(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.1")])));
    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
}

#[test]
fn an_object_attribute_with_the_same_value_is_not_a_duplicate() {
    let state = given(&event_with_domain_ip_object());
    let d = accepted(when(&state, &creator(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.1")])));
    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
}

#[test]
fn an_attribute_with_a_uuid_already_in_the_event_is_refused() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { uuid: attribute_uuid(1), ..new_attribute(1, "ip-dst", "198.51.100.9") };
    assert_eq!(
        refused(when(&state, &creator(), add_attributes(vec![draft]))),
        invalid("uuid", "An attribute with this uuid already exists.")
    );
}

#[test]
fn last_seen_before_first_seen_is_refused() {
    let state = given(&[community_event()]);
    let draft = AttributeDraft { first_seen: Some(Some(2_000)), last_seen: Some(Some(1_000)), ..new_attribute(1, "ip-dst", "198.51.100.9") };
    assert_eq!(
        refused(when(&state, &creator(), add_attributes(vec![draft]))),
        invalid("last_seen", "last_seen must be later than or equal to first_seen.")
    );
}

#[test]
fn an_attribute_distribution_must_be_0_to_5_and_a_sharing_group_must_be_usable() {
    let state = given(&[community_event()]);
    let six = AttributeDraft { distribution: Some(6), ..new_attribute(1, "ip-dst", "198.51.100.9") };
    assert_eq!(refused(when(&state, &creator(), add_attributes(vec![six]))), invalid("distribution", "Options: 0..5."));

    let sg = AttributeDraft { distribution: Some(4), sharing_group_id: Some(9), ..new_attribute(1, "ip-dst", "198.51.100.9") };
    assert_eq!(
        refused(when(&state, &creator(), add_attributes(vec![sg.clone()]))),
        invalid("sharing_group_id", "Invalid sharing group or sharing group not set.")
    );
    let d = accepted(when(&state, &creator().in_sharing_group(9), add_attributes(vec![sg])));
    assert_eq!(one(added_attributes(&d)).sharing_group_id, 9);
}

#[test]
fn tags_on_a_new_attribute_are_checked_and_attached_once() {
    let state = given(&[community_event()]);
    let draft = AttributeDraft { tags: vec![tag_draft(tag(5)), tag_draft(tag(5))], ..new_attribute(1, "ip-dst", "198.51.100.9") };
    let d = accepted(when(&state, &creator(), add_attributes(vec![draft])));
    assert_eq!(one(added_attributes(&d)).tags, [global(5)]);

    let restricted = AttributeDraft { tags: vec![tag_draft(TagInfo { user_id: 99, ..tag(6) })], ..new_attribute(2, "ip-dst", "198.51.100.8") };
    assert_eq!(
        refused(when(&state, &creator(), add_attributes(vec![restricted]))),
        invalid("tag", "Invalid Tag. This tag can only be set by a fixed user.")
    );
}

#[test]
fn a_user_of_another_org_cannot_add_attributes_to_an_event_they_see() {
    let state = given(&[community_event()]);
    let err = refused(when(&state, &outsider(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.9")])));
    assert_eq!(err, forbidden("You do not have permission to do that."));
}

#[test]
fn a_read_only_user_of_the_owner_org_cannot_add_attributes() {
    let state = given(&[community_event()]);
    let err = refused(when(&state, &colleague_read_only(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.9")])));
    assert_eq!(err, forbidden(NO_PERMISSION));
}

#[test]
fn adding_attributes_to_an_invisible_event_is_not_found() {
    let state = given(&[org_only_event()]);
    let err = refused(when(&state, &outsider(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.9")])));
    assert_eq!(err, not_found("Invalid event"));
}

#[test]
fn a_site_admin_adds_attributes_to_any_event() {
    let state = given(&[org_only_event()]);
    let d = accepted(when(&state, &site_admin(), add_attributes(vec![new_attribute(1, "ip-dst", "198.51.100.9")])));
    assert_eq!(kinds(&d), ["attribute.added.v1", "event.touched.v1"]);
}

#[test]
fn an_exhausted_id_pool_is_a_conflict() {
    let state = given(&[community_event()]);
    let command = EventCommand::AddAttributes {
        drafts: vec![new_attribute(1, "ip-dst", "198.51.100.9")],
        break_on_duplicate: true,
        ids: IdPool::default(),
    };
    assert_eq!(refused(when(&state, &creator(), command)), DomainError::Conflict("attribute id pool exhausted".into()));
}

// ===================================================================================================
// EditAttribute (`attributes/edit`)
// ===================================================================================================

#[test]
fn editing_an_attribute_updates_it_and_touches_the_event() {
    let state = given(&[community_event(), added(ip1()), published()]);
    let draft = AttributeDraft { comment: Some("c2".into()), to_ids: Some(false), ..edit_of(1) };

    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));

    assert_eq!(
        d.changes,
        [
            Change::AttributeUpdated(Attribute { comment: "c2".into(), to_ids: false, timestamp: NOW, ..ip1() }),
            Change::EventTouched { timestamp: NOW }
        ]
    );
    assert!(then(&state, &d).live().is_some_and(|m| !m.published));
}

#[test]
fn an_attribute_can_be_targeted_by_uuid() {
    let state = given(&event_with_attributes());
    let command = EventCommand::EditAttribute { target: ElementRef::Uuid(attribute_uuid(2)), draft: AttributeDraft { comment: Some("x".into()), ..edit_of(2) } };
    let d = accepted(when(&state, &creator(), command));
    assert_eq!(one(updated_attributes(&d)).id, 2);
}

#[test]
fn an_attribute_edit_whose_timestamp_is_not_newer_conflicts() {
    let state = given(&event_with_attributes());
    for timestamp in [T0, T0 - 1] {
        let draft = AttributeDraft { comment: Some("late".into()), timestamp: Some(timestamp), ..edit_of(1) };
        assert_eq!(
            refused(when(&state, &creator(), edit_attribute(1, draft))),
            DomainError::Conflict("Attribute could not be saved: Attribute in the request not newer than the local copy.".into())
        );
    }
}

#[test]
fn an_attribute_edit_with_a_newer_timestamp_is_applied() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { comment: Some("newer".into()), timestamp: Some(T0 + 1), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    assert_eq!(one(updated_attributes(&d)).comment, "newer");
}

#[test]
fn an_attribute_edit_that_changes_nothing_records_nothing() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { comment: Some(String::new()), value: Some("198.51.100.1".into()), ..edit_of(1) };
    assert_eq!(accepted(when(&state, &creator(), edit_attribute(1, draft))), Decision::default());
}

#[test]
fn a_type_change_renormalises_the_value_and_resets_a_category_that_does_not_allow_it() {
    let state = given(&[community_event(), added(attribute(1, "text", "Other", "Evil.EXAMPLE"))]);
    let draft = AttributeDraft { attr_type: Some("domain".into()), ..edit_of(1) };

    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));

    let a = one(updated_attributes(&d));
    assert_eq!((a.attr_type.as_str(), a.category.as_str(), a.value1.as_str()), ("domain", "Network activity", "evil.example"));
}

#[test]
fn a_type_change_keeps_a_category_that_allows_the_new_type() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { attr_type: Some("ip-src".into()), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    assert_eq!(one(updated_attributes(&d)), &Attribute { attr_type: "ip-src".into(), timestamp: NOW, ..ip1() });
}

#[test]
fn a_type_change_to_a_composite_splits_the_new_value() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { attr_type: Some("ip-dst|port".into()), value: Some("198.51.100.1|8080".into()), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    let a = one(updated_attributes(&d));
    assert_eq!((a.value1.as_str(), a.value2.as_str(), a.value()), ("198.51.100.1", "8080", "198.51.100.1|8080".to_string()));
}

#[test]
fn a_type_change_the_stored_value_does_not_fit_is_refused() {
    let state = given(&[community_event(), added(attribute(1, "md5", "Payload delivery", MD5))]);
    let draft = AttributeDraft { attr_type: Some("sha256".into()), ..edit_of(1) };
    assert_eq!(
        refused(when(&state, &creator(), edit_attribute(1, draft))),
        invalid(
            "value",
            "Checksum has an invalid length or format (expected: 64 hexadecimal characters). Please double check the value or select type \"other\"."
        )
    );
    let with_value = AttributeDraft { attr_type: Some("sha256".into()), value: Some(SHA256.into()), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, with_value)));
    assert_eq!(one(updated_attributes(&d)).value1, SHA256);
}

#[test]
fn a_type_change_with_an_explicit_category_that_does_not_allow_it_is_refused() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { attr_type: Some("md5".into()), category: Some("Network activity".into()), value: Some(MD5.into()), ..edit_of(1) };
    assert_eq!(
        refused(when(&state, &creator(), edit_attribute(1, draft))),
        invalid("category", "The category \"Network activity\" is not valid for the type \"md5\".")
    );
}

#[test]
fn an_unknown_type_in_an_attribute_edit_is_refused() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { attr_type: Some("nope".into()), ..edit_of(1) };
    assert_eq!(refused(when(&state, &creator(), edit_attribute(1, draft))), invalid("type", "Invalid type \"nope\"."));
}

#[test]
fn editing_an_object_attribute_bumps_the_object_timestamp() {
    let state = given(&event_with_domain_ip_object());
    let draft = AttributeDraft { comment: Some("resolved".into()), ..edit_of(11) };

    let d = accepted(when(&state, &creator(), edit_attribute(11, draft)));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "object.updated.v1", "event.touched.v1"]);
    assert_eq!(one(updated_objects(&d)), &Object { timestamp: NOW, ..object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE)) });
    assert_eq!(then(&state, &d).objects.get(&1).map(|o| o.timestamp), Some(NOW));
}

#[test]
fn an_unchanged_object_attribute_does_not_bump_its_object() {
    let state = given(&event_with_domain_ip_object());
    let draft = AttributeDraft { comment: Some(String::new()), ..edit_of(11) };
    assert_eq!(accepted(when(&state, &creator(), edit_attribute(11, draft))), Decision::default());
}

#[test]
fn deleted_true_in_an_attribute_edit_soft_deletes_it() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { deleted: Some(true), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    assert_eq!(
        d.changes,
        [Change::AttributeDeleted { id: 1, hard: false, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]
    );
}

#[test]
fn deleted_false_in_an_attribute_edit_restores_it() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 + 1 }]);
    let draft = AttributeDraft { deleted: Some(false), ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    assert_eq!(d.changes, [Change::AttributeRestored { id: 1, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]);
    assert!(then(&state, &d).duplicate_of(&ip1()).is_some_and(|a| a.id == 1));
}

#[test]
fn a_tag_marked_deleted_in_an_attribute_edit_is_detached() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeTagged { attribute_id: 1, tag: global(5) }]);
    let draft = AttributeDraft { tags: vec![TagDraft { deleted: true, ..tag_draft(tag(5)) }], ..edit_of(1) };
    let d = accepted(when(&state, &creator(), edit_attribute(1, draft)));
    assert_eq!(one(updated_attributes(&d)), &Attribute { timestamp: NOW, ..ip1() });
}

#[test]
fn a_user_of_another_org_cannot_edit_an_attribute() {
    let state = given(&event_with_attributes());
    let draft = AttributeDraft { comment: Some("x".into()), ..edit_of(1) };
    assert_eq!(refused(when(&state, &outsider(), edit_attribute(1, draft))), forbidden("You do not have permission to do that."));
}

#[test]
fn an_org_only_attribute_is_not_found_for_another_org() {
    let state = given(&[community_event(), added(Attribute { distribution: 0, ..ip1() })]);
    let draft = AttributeDraft { comment: Some("x".into()), ..edit_of(1) };
    assert_eq!(refused(when(&state, &outsider(), edit_attribute(1, draft))), not_found("Invalid attribute"));
}

#[test]
fn an_attribute_of_an_org_only_object_is_not_found_for_another_org() {
    let state = given(&[
        community_event(),
        Change::ObjectAdded(Object { distribution: 0, ..object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE)) }),
        added(object_attribute(10, 1, "domain", "domain", "Network activity", "evil.example")),
    ]);
    let draft = AttributeDraft { comment: Some("x".into()), ..edit_of(10) };
    assert_eq!(refused(when(&state, &outsider(), edit_attribute(10, draft))), not_found("Invalid attribute"));
}

#[test]
fn editing_an_unknown_attribute_is_not_found() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &creator(), edit_attribute(42, edit_of(42)))), not_found("Invalid attribute"));
}

#[test]
fn editing_an_attribute_into_a_duplicate_is_refused() {
    let state = given(&[community_event(), added(ip1()), added(attribute(3, "ip-dst", "Network activity", "198.51.100.3"))]);
    let draft = AttributeDraft { value: Some("198.51.100.1".into()), ..edit_of(3) };
    assert_eq!(refused(when(&state, &creator(), edit_attribute(3, draft))), invalid("value", DUPLICATE));
}

#[test]
fn restoring_through_an_attribute_edit_is_refused_when_it_would_create_a_duplicate() {
    let state = given(&[
        community_event(),
        added(ip1()),
        Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 },
        added(attribute(3, "ip-dst", "Network activity", "198.51.100.1")),
    ]);
    let draft = AttributeDraft { deleted: Some(false), ..edit_of(1) };
    assert_eq!(refused(when(&state, &creator(), edit_attribute(1, draft))), invalid("value", DUPLICATE));
}

#[test]
fn an_event_edit_changing_an_attribute_into_a_duplicate_reports_it() {
    let state = given(&[community_event(), added(ip1()), added(attribute(3, "ip-dst", "Network activity", "198.51.100.3"))]);
    let mut draft = event_edit();
    draft.attributes = vec![AttributeDraft { value: Some("198.51.100.1".into()), ..edit_of(3) }];
    let d = accepted(when(&state, &creator(), edit(draft)));
    assert!(d.changes.is_empty(), "{:?}", d.changes);
    assert_eq!(d.errors, [("Attribute.0".to_string(), invalid("value", DUPLICATE))]);
}

// ===================================================================================================
// DeleteAttribute / RestoreAttribute
// ===================================================================================================

#[test]
fn soft_deleting_an_attribute_marks_it_deleted_and_touches_the_event() {
    let state = given(&event_with_attributes());

    let d = accepted(when(&state, &creator(), delete_attribute(1, false)));

    assert_eq!(
        d.changes,
        [Change::AttributeDeleted { id: 1, hard: false, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]
    );
    let after = then(&state, &d);
    assert_eq!(after.attributes.get(&1), Some(&Attribute { deleted: true, timestamp: NOW, ..ip1() }));
    assert_eq!(after.duplicate_of(&ip1()), None);
    assert_eq!(live_attribute_count(&after), 1);
}

#[test]
fn soft_deleting_a_soft_deleted_attribute_records_nothing() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 }]);
    assert_eq!(accepted(when(&state, &creator(), delete_attribute(1, false))), Decision::default());
}

#[test]
fn hard_deleting_a_soft_deleted_attribute_removes_it() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 }]);

    let d = accepted(when(&state, &creator(), delete_attribute(1, true)));

    assert_eq!(d.changes, [Change::AttributeDeleted { id: 1, hard: true, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]);
    let after = then(&state, &d);
    assert!(after.attributes.is_empty());
    assert_eq!(after.attribute_by_uuid(&attribute_uuid(1)), None);
}

#[test]
fn references_to_a_deleted_attribute_are_soft_deleted() {
    let file = object(1, "file", Some(FILE_TEMPLATE));
    let state = given(&[
        community_event(),
        added(ip1()),
        Change::ObjectAdded(file.clone()),
        added(object_attribute(10, 1, "filename", "filename", "Payload delivery", "a.exe")),
        Change::ReferenceAdded(reference(1, &file, attribute_uuid(1), 1, 0)),
        Change::ReferenceAdded(reference(2, &file, attribute_uuid(10), 10, 0)),
    ]);

    let d = accepted(when(&state, &creator(), delete_attribute(1, true)));

    assert_eq!(
        d.changes,
        [
            Change::AttributeDeleted { id: 1, hard: true, timestamp: NOW },
            Change::ReferenceDeleted { id: 1, hard: false, timestamp: NOW },
            Change::EventTouched { timestamp: NOW },
        ]
    );
    let after = then(&state, &d);
    assert!(after.references.get(&1).is_some_and(|r| r.deleted));
    assert!(after.references.get(&2).is_some_and(|r| !r.deleted));
}

#[test]
fn a_user_of_another_org_cannot_delete_an_attribute() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &outsider(), delete_attribute(1, false))), forbidden("You do not have permission to do that."));
    assert_eq!(refused(when(&state, &colleague_read_only(), delete_attribute(1, false))), forbidden(NO_PERMISSION));
}

#[test]
fn deleting_an_unknown_attribute_is_not_found() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &creator(), delete_attribute(42, false))), not_found("Invalid attribute"));
}

#[test]
fn a_site_admin_deletes_an_attribute_of_any_event() {
    let state = given(&[org_only_event(), added(ip1())]);
    let d = accepted(when(&state, &site_admin(), delete_attribute(1, false)));
    assert_eq!(kinds(&d), ["attribute.deleted.v1", "event.touched.v1"]);
}

#[test]
fn restoring_a_soft_deleted_attribute_brings_it_back() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 }]);

    let d = accepted(when(&state, &creator(), restore_attribute(1)));

    assert_eq!(d.changes, [Change::AttributeRestored { id: 1, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]);
    let after = then(&state, &d);
    assert_eq!(after.attributes.get(&1), Some(&Attribute { timestamp: NOW, ..ip1() }));
    assert_eq!(after.duplicate_of(&ip1()).map(|a| a.id), Some(1));
}

#[test]
fn restoring_a_live_attribute_records_nothing() {
    let state = given(&event_with_attributes());
    assert_eq!(accepted(when(&state, &creator(), restore_attribute(1))), Decision::default());
}

#[test]
fn restoring_is_refused_when_it_would_create_a_duplicate() {
    let state = given(&[
        community_event(),
        added(ip1()),
        Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 },
        added(attribute(3, "ip-dst", "Network activity", "198.51.100.1")),
    ]);
    assert_eq!(refused(when(&state, &creator(), restore_attribute(1))), invalid("value", DUPLICATE));
}

#[test]
fn a_hard_deleted_attribute_cannot_be_restored() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: true, timestamp: T0 }]);
    assert_eq!(refused(when(&state, &creator(), restore_attribute(1))), not_found("Invalid attribute"));
}

#[test]
fn a_user_of_another_org_cannot_restore_an_attribute() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: false, timestamp: T0 }]);
    assert_eq!(refused(when(&state, &outsider(), restore_attribute(1))), forbidden(NO_PERMISSION));
}

// ===================================================================================================
// Objects
// ===================================================================================================

#[test]
fn adding_an_object_records_it_with_its_attributes_and_references() {
    let state = given(&[community_event(), added(ip1())]);
    let mut draft = file_object(1);
    draft.references = vec![new_reference(1, attribute_uuid(1), "communicates-with")];

    let d = accepted(when(&state, &creator(), add_object(draft)));

    assert_eq!(
        kinds(&d),
        ["object.added.v1", "attribute.added.v1", "attribute.added.v1", "object_reference.added.v1", "event.touched.v1"]
    );
    assert_eq!(
        one(added_objects(&d)),
        &Object {
            id: 200,
            uuid: object_draft_uuid(1),
            event_id: EVENT_ID,
            name: "file".into(),
            meta_category: "file".into(),
            description: String::new(),
            template_uuid: Some(FILE_TEMPLATE),
            template_version: "24".into(),
            timestamp: NOW,
            distribution: 5,
            sharing_group_id: 0,
            comment: String::new(),
            deleted: false,
            first_seen: None,
            last_seen: None,
        }
    );
    let attributes: Vec<(i64, i64, &str, &str)> =
        added_attributes(&d).iter().map(|a| (a.id, a.object_id, a.attr_type.as_str(), a.category.as_str())).collect();
    assert_eq!(attributes, [(100, 200, "filename", "Payload delivery"), (101, 200, "md5", "Payload delivery")]);
    let r = one(added_references(&d));
    assert_eq!((r.object_uuid, r.referenced_id, r.referenced_type), (object_draft_uuid(1), 1, 0));
    let after = then(&state, &d);
    assert_eq!(after.object_attributes(200).count(), 2);
    assert_eq!(live_attribute_count(&after), 3);
}

#[test]
fn an_object_missing_all_of_its_required_one_of_relations_is_refused() {
    let state = given(&[community_event()]);
    let draft = new_object(1, "file", Some(FILE_TEMPLATE), vec![with_relation(new_attribute(1, "text", "notes"), "text")]);
    assert_eq!(
        refused(when(&state, &creator(), add_object(draft))),
        invalid("Object", "Could not save object as at least one of the following attributes is required: filename, md5, sha256.")
    );
}

#[test]
fn an_object_with_one_of_its_required_one_of_relations_is_accepted() {
    let state = given(&[community_event()]);
    let draft = new_object(1, "file", Some(FILE_TEMPLATE), vec![with_relation(new_attribute(1, "sha256", SHA256), "sha256")]);
    let d = accepted(when(&state, &creator(), add_object(draft)));
    assert_eq!(kinds(&d), ["object.added.v1", "attribute.added.v1", "event.touched.v1"]);
}

#[test]
fn a_template_is_found_by_name_when_no_uuid_is_given() {
    let state = given(&[community_event()]);
    let draft = new_object(1, "domain-ip", None, vec![with_relation(new_attribute(1, "ip-dst", "198.51.100.7"), "ip")]);
    assert_eq!(
        refused(when(&state, &creator(), add_object(draft))),
        invalid("Object", "Could not save object as the required attribute \"domain\" is missing.")
    );
}

#[test]
fn an_object_of_an_unknown_template_is_accepted() {
    let state = given(&[community_event()]);
    let draft = new_object(1, "BLAH_TEST", None, vec![with_relation(new_attribute(1, "text", "x"), "member3")]);
    let d = accepted(when(&state, &creator(), add_object(draft)));
    assert_eq!(one(added_objects(&d)).name, "BLAH_TEST");
}

#[test]
fn an_object_with_an_invalid_attribute_is_refused_whole() {
    let state = given(&[community_event()]);
    let mut draft = file_object(1);
    draft.attributes[1].value = Some("not-a-hash".into());
    let err = refused(when(&state, &creator(), add_object(draft)));
    assert!(matches!(&err, DomainError::Invalid { field, .. } if field == "Attribute 1.value"), "{err:?}");
}

#[test]
fn an_object_attribute_without_an_object_relation_is_refused() {
    let state = given(&[community_event()]);
    let draft = new_object(1, "BLAH_TEST", None, vec![new_attribute(1, "text", "x")]);
    assert_eq!(
        refused(when(&state, &creator(), add_object(draft))),
        invalid("Attribute 0.object_relation", "Object attributes need an object_relation.")
    );
}

#[test]
fn an_object_without_a_name_is_refused() {
    let state = given(&[community_event()]);
    let draft = ObjectDraft { name: None, ..file_object(1) };
    assert_eq!(refused(when(&state, &creator(), add_object(draft))), invalid("name", "Mandatory field not set."));
}

#[test]
fn an_object_with_a_uuid_already_in_the_event_is_refused() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { uuid: object_uuid(1), ..file_object(1) };
    assert_eq!(refused(when(&state, &creator(), add_object(draft))), invalid("uuid", "An object with this uuid already exists."));
}

#[test]
fn a_user_of_another_org_cannot_add_an_object() {
    let state = given(&[community_event()]);
    assert_eq!(refused(when(&state, &outsider(), add_object(file_object(1)))), forbidden(NO_PERMISSION));
}

#[test]
fn an_identical_object_is_accepted_without_break_on_duplicate() {
    let state = given(&[community_event()]);
    let first = accepted(when(&state, &creator(), add_object(file_object(1))));
    let state = then(&state, &first);
    let d = accepted(when(&state, &creator(), add_object(file_object(2))));
    assert_eq!(one(added_objects(&d)).uuid, object_draft_uuid(2));
}

#[test]
fn an_identical_object_with_break_on_duplicate_is_refused() {
    let state = given(&[community_event()]);
    let first = accepted(when(&state, &creator(), add_object(file_object(1))));
    let state = then(&state, &first);
    let command = EventCommand::AddObject { draft: file_object(2), break_on_duplicate: true, ids: ids() };
    let err = refused(when(&state, &creator(), command));
    assert!(err.to_string().contains("Duplicate object found"), "{err}");
}

#[test]
fn editing_an_object_changes_its_fields_and_timestamp() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { comment: Some("pivoted".into()), first_seen: Some(Some(1_000)), ..object_edit() };

    let d = accepted(when(&state, &creator(), edit_object(1, draft)));

    assert_eq!(
        d.changes,
        [
            Change::ObjectUpdated(Object {
                comment: "pivoted".into(),
                first_seen: Some(1_000),
                timestamp: NOW,
                ..object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE))
            }),
            Change::EventTouched { timestamp: NOW },
        ]
    );
}

#[test]
fn an_object_edit_with_a_stale_timestamp_records_nothing() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { comment: Some("late".into()), timestamp: Some(T0), ..object_edit() };
    assert_eq!(accepted(when(&state, &creator(), edit_object(1, draft))), Decision::default());
}

#[test]
fn an_object_edit_merges_its_attributes_by_uuid() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft {
        attributes: vec![
            AttributeDraft { value: Some("198.51.100.2".into()), ..edit_of(11) },
            AttributeDraft { comment: Some("ignored".into()), timestamp: Some(T0), ..edit_of(10) },
        ],
        ..object_edit()
    };

    let d = accepted(when(&state, &creator(), edit_object(1, draft)));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "object.updated.v1", "event.touched.v1"]);
    let a = one(updated_attributes(&d));
    assert_eq!((a.id, a.value1.as_str(), a.timestamp), (11, "198.51.100.2", NOW));
}

#[test]
fn an_object_edit_that_breaks_its_template_is_refused() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { attributes: vec![AttributeDraft { deleted: Some(true), ..edit_of(10) }], ..object_edit() };
    assert_eq!(
        refused(when(&state, &creator(), edit_object(1, draft))),
        invalid("Object", "Could not save object as the required attribute \"domain\" is missing.")
    );
}

#[test]
fn deleted_true_in_an_object_edit_soft_deletes_it_with_its_attributes() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { deleted: Some(true), ..object_edit() };

    let d = accepted(when(&state, &creator(), edit_object(1, draft)));

    assert_eq!(
        d.changes,
        [
            Change::AttributeDeleted { id: 10, hard: false, timestamp: NOW },
            Change::AttributeDeleted { id: 11, hard: false, timestamp: NOW },
            Change::ObjectDeleted { id: 1, hard: false, timestamp: NOW },
            Change::EventTouched { timestamp: NOW },
        ]
    );
}

#[test]
fn a_user_of_another_org_cannot_edit_an_object() {
    let state = given(&event_with_domain_ip_object());
    let draft = ObjectDraft { comment: Some("x".into()), ..object_edit() };
    assert_eq!(refused(when(&state, &outsider(), edit_object(1, draft))), forbidden(NO_PERMISSION));
}

#[test]
fn editing_an_unknown_object_is_not_found() {
    let state = given(&event_with_domain_ip_object());
    assert_eq!(refused(when(&state, &creator(), edit_object(9, object_edit()))), not_found("Invalid object"));
}

/// A `domain-ip` object 1 (attributes 10 live, 12 already soft-deleted) with a reference to the
/// standalone attribute 1, and a `file` object 2 referring to object 1.
fn event_with_linked_objects() -> Vec<Change> {
    let domain_ip = object(1, "domain-ip", Some(DOMAIN_IP_TEMPLATE));
    let file = object(2, "file", Some(FILE_TEMPLATE));
    vec![
        community_event(),
        added(ip1()),
        Change::ObjectAdded(domain_ip.clone()),
        added(object_attribute(10, 1, "domain", "domain", "Network activity", "evil.example")),
        added(Attribute { deleted: true, ..object_attribute(12, 1, "text", "text", "Other", "old") }),
        Change::ReferenceAdded(reference(1, &domain_ip, attribute_uuid(1), 1, 0)),
        Change::ObjectAdded(file.clone()),
        added(object_attribute(20, 2, "filename", "filename", "Payload delivery", "a.exe")),
        Change::ReferenceAdded(reference(2, &file, object_uuid(1), 1, 1)),
    ]
}

#[test]
fn soft_deleting_an_object_soft_deletes_its_live_attributes_and_its_references() {
    let state = given(&event_with_linked_objects());

    let d = accepted(when(&state, &creator(), EventCommand::DeleteObject { target: ElementRef::Id(1), hard: false }));

    assert_eq!(
        d.changes,
        [
            Change::AttributeDeleted { id: 10, hard: false, timestamp: NOW },
            Change::ReferenceDeleted { id: 1, hard: false, timestamp: NOW },
            // the file object's reference to the deleted object goes with it
            Change::ReferenceDeleted { id: 2, hard: false, timestamp: NOW },
            Change::ObjectDeleted { id: 1, hard: false, timestamp: NOW },
            Change::EventTouched { timestamp: NOW },
        ]
    );
    let after = then(&state, &d);
    assert!(after.objects.get(&1).is_some_and(|o| o.deleted && o.timestamp == NOW));
    assert!(after.object_attributes(1).all(|a| a.deleted));
    assert_eq!(live_attribute_count(&after), 2);
}

#[test]
fn soft_deleting_a_soft_deleted_object_records_nothing() {
    let state = given(&[event_with_domain_ip_object(), vec![Change::ObjectDeleted { id: 1, hard: false, timestamp: T0 }]].concat());
    let d = accepted(when(&state, &creator(), EventCommand::DeleteObject { target: ElementRef::Id(1), hard: false }));
    assert_eq!(d, Decision::default());
}

#[test]
fn hard_deleting_an_object_removes_it_with_its_attributes_and_references() {
    let state = given(&event_with_linked_objects());

    let d = accepted(when(&state, &creator(), EventCommand::DeleteObject { target: ElementRef::Uuid(object_uuid(1)), hard: true }));

    assert_eq!(
        d.changes,
        [
            Change::AttributeDeleted { id: 10, hard: true, timestamp: NOW },
            Change::AttributeDeleted { id: 12, hard: true, timestamp: NOW },
            Change::ReferenceDeleted { id: 1, hard: true, timestamp: NOW },
            Change::ReferenceDeleted { id: 2, hard: false, timestamp: NOW },
            Change::ObjectDeleted { id: 1, hard: true, timestamp: NOW },
            Change::EventTouched { timestamp: NOW },
        ]
    );
    let after = then(&state, &d);
    assert_eq!(after.object_by_uuid(&object_uuid(1)), None);
    assert_eq!(after.object_attributes(1).count(), 0);
    assert!(!after.reference_ids.contains_key(&reference_uuid(1)));
    assert_eq!(after.attributes.keys().copied().collect::<Vec<_>>(), [1, 20]);
}

#[test]
fn a_user_of_another_org_cannot_delete_an_object() {
    let state = given(&event_with_domain_ip_object());
    let err = refused(when(&state, &outsider(), EventCommand::DeleteObject { target: ElementRef::Id(1), hard: false }));
    assert_eq!(err, forbidden(NO_PERMISSION));
}

#[test]
fn deleting_an_unknown_object_is_not_found() {
    let state = given(&event_with_domain_ip_object());
    let err = refused(when(&state, &creator(), EventCommand::DeleteObject { target: ElementRef::Id(9), hard: true }));
    assert_eq!(err, not_found("Invalid object"));
}

// ===================================================================================================
// Object references
// ===================================================================================================

/// Standalone attribute 1, `domain-ip` object 1 (attributes 10, 11) and a `file` object 2.
fn event_with_two_objects() -> Vec<Change> {
    let mut history = event_with_domain_ip_object();
    history.push(added(ip1()));
    history.push(Change::ObjectAdded(object(2, "file", Some(FILE_TEMPLATE))));
    history
}

#[test]
fn a_reference_to_an_attribute_has_referenced_type_0() {
    let state = given(&event_with_two_objects());

    let d = accepted(when(&state, &creator(), add_reference(1, new_reference(1, attribute_uuid(1), "resolves-to"))));

    assert_eq!(
        d.changes,
        [
            Change::ReferenceAdded(ObjectReference {
                id: 300,
                uuid: reference_draft_uuid(1),
                event_id: EVENT_ID,
                object_id: 1,
                object_uuid: object_uuid(1),
                referenced_uuid: attribute_uuid(1),
                referenced_id: 1,
                referenced_type: 0,
                relationship_type: "resolves-to".into(),
                comment: String::new(),
                timestamp: NOW,
                deleted: false,
            }),
            Change::EventTouched { timestamp: NOW },
        ]
    );
}

#[test]
fn a_reference_to_an_object_has_referenced_type_1() {
    let state = given(&event_with_two_objects());
    let d = accepted(when(&state, &creator(), add_reference(2, new_reference(1, object_uuid(1), "drops"))));
    let r = one(added_references(&d));
    assert_eq!((r.object_id, r.object_uuid, r.referenced_id, r.referenced_type), (2, object_uuid(2), 1, 1));
    assert!(then(&state, &d).reference_ids.contains_key(&reference_draft_uuid(1)));
}

#[test]
fn a_reference_without_a_relationship_type_is_related_to() {
    let state = given(&event_with_two_objects());
    let draft = ReferenceDraft { relationship_type: None, ..new_reference(1, object_uuid(2), "") };
    let d = accepted(when(&state, &creator(), add_reference(1, draft)));
    assert_eq!(one(added_references(&d)).relationship_type, "related-to");
}

#[test]
fn a_reference_without_a_referenced_uuid_is_refused() {
    let state = given(&event_with_two_objects());
    let draft = ReferenceDraft { referenced_uuid: None, ..new_reference(1, object_uuid(2), "drops") };
    assert_eq!(refused(when(&state, &creator(), add_reference(1, draft))), invalid("referenced_uuid", "Mandatory field not set."));
}

#[test]
fn a_relationship_type_over_191_characters_is_refused() {
    let state = given(&event_with_two_objects());
    let draft = new_reference(1, object_uuid(2), &"r".repeat(192));
    assert_eq!(
        refused(when(&state, &creator(), add_reference(1, draft))),
        invalid("relationship_type", "Too long (191 characters at most).")
    );
}

#[test]
fn a_reference_from_an_unknown_object_is_not_found() {
    let state = given(&event_with_two_objects());
    assert_eq!(
        refused(when(&state, &creator(), add_reference(9, new_reference(1, object_uuid(2), "drops")))),
        not_found("Invalid object")
    );
}

#[test]
fn adding_a_reference_that_exists_records_nothing() {
    let state = given(&event_with_two_objects());
    let first = accepted(when(&state, &creator(), add_reference(1, new_reference(1, object_uuid(2), "drops"))));
    let state = then(&state, &first);
    assert_eq!(accepted(when(&state, &creator(), add_reference(1, new_reference(1, object_uuid(2), "drops")))), Decision::default());
}

#[test]
fn a_user_of_another_org_cannot_add_a_reference() {
    let state = given(&event_with_two_objects());
    assert_eq!(refused(when(&state, &outsider(), add_reference(1, new_reference(1, object_uuid(2), "drops")))), forbidden(NO_PERMISSION));
}

#[test]
fn deleting_a_reference_soft_then_hard() {
    let state = given(&event_with_linked_objects());

    let soft = accepted(when(&state, &creator(), EventCommand::DeleteReference { target: ElementRef::Id(2), hard: false }));
    assert_eq!(soft.changes, [Change::ReferenceDeleted { id: 2, hard: false, timestamp: NOW }, Change::EventTouched { timestamp: NOW }]);
    let state = then(&state, &soft);
    assert!(state.references.get(&2).is_some_and(|r| r.deleted && r.timestamp == NOW));

    let again = accepted(when(&state, &creator(), EventCommand::DeleteReference { target: ElementRef::Id(2), hard: false }));
    assert_eq!(again, Decision::default());

    let hard = accepted(when(&state, &creator(), EventCommand::DeleteReference { target: ElementRef::Uuid(reference_uuid(2)), hard: true }));
    assert_eq!(kinds(&hard), ["object_reference.deleted.v1", "event.touched.v1"]);
    let state = then(&state, &hard);
    assert!(!state.references.contains_key(&2) && !state.reference_ids.contains_key(&reference_uuid(2)));
}

#[test]
fn deleting_an_unknown_reference_is_not_found() {
    let state = given(&event_with_linked_objects());
    let err = refused(when(&state, &creator(), EventCommand::DeleteReference { target: ElementRef::Id(9), hard: false }));
    assert_eq!(err, not_found("Invalid object reference"));
}

#[test]
fn a_user_of_another_org_cannot_delete_a_reference() {
    let state = given(&event_with_linked_objects());
    let err = refused(when(&state, &outsider(), EventCommand::DeleteReference { target: ElementRef::Id(1), hard: false }));
    assert_eq!(err, forbidden(NO_PERMISSION));
}

// ===================================================================================================
// Tag / Untag
// ===================================================================================================

#[test]
fn tagging_an_event_with_a_global_tag_touches_it() {
    let state = given(&[community_event(), published()]);
    let d = accepted(when(&state, &creator(), tag_event(tag(5), false)));
    assert_eq!(d.changes, [Change::EventTagged(global(5)), Change::EventTouched { timestamp: NOW }]);
    let after = then(&state, &d);
    assert_eq!(after.tags, [global(5)]);
    assert!(after.live().is_some_and(|m| !m.published));
}

#[test]
fn tagging_with_a_relationship_type_records_it() {
    let state = given(&[community_event()]);
    let command = EventCommand::Tag { target: TagTarget::Event, tag: tag(5), local: false, relationship_type: Some("context".into()) };
    let d = accepted(when(&state, &creator(), command));
    assert_eq!(d.changes[0], Change::EventTagged(TagLink { tag_id: 5, local: false, relationship_type: Some("context".into()) }));
}

#[test]
fn tagging_an_event_with_a_tag_it_has_records_nothing() {
    let state = given(&[community_event(), Change::EventTagged(global(5))]);
    assert_eq!(accepted(when(&state, &creator(), tag_event(tag(5), false))), Decision::default());
}

#[test]
fn a_user_restricted_tag_cannot_be_set_by_another_user() {
    let state = given(&[community_event()]);
    let restricted = TagInfo { user_id: 99, ..tag(5) };
    assert_eq!(
        refused(when(&state, &creator(), tag_event(restricted, false))),
        invalid("tag", "Invalid Tag. This tag can only be set by a fixed user.")
    );
}

#[test]
fn a_user_restricted_tag_can_be_set_by_its_user() {
    let state = given(&[community_event()]);
    let mine = TagInfo { user_id: 10, ..tag(5) };
    let d = accepted(when(&state, &creator(), tag_event(mine, false)));
    assert_eq!(kinds(&d), ["event.tagged.v1", "event.touched.v1"]);
}

#[test]
fn an_org_restricted_tag_cannot_be_set_by_another_org() {
    let state = given(&[community_event()]);
    let theirs = TagInfo { org_id: OTHER_ORG, ..tag(5) };
    assert_eq!(
        refused(when(&state, &creator(), tag_event(theirs, false))),
        invalid("tag", "Invalid Tag. This tag can only be set by a fixed organisation.")
    );
    let ours = TagInfo { org_id: HOST_ORG, ..tag(6) };
    assert!(when(&state, &creator(), tag_event(ours, false)).is_ok());
}

#[test]
fn a_site_admin_may_set_a_restricted_tag() {
    let state = given(&[community_event()]);
    let restricted = TagInfo { user_id: 99, org_id: 98, ..tag(5) };
    let d = accepted(when(&state, &site_admin(), tag_event(restricted, false)));
    assert_eq!(kinds(&d), ["event.tagged.v1", "event.touched.v1"]);
}

#[test]
fn a_local_tag_by_the_host_org_changes_no_timestamp() {
    let state = given(&[community_event(), published()]);
    let d = accepted(when(&state, &creator(), tag_event(tag(5), true)));
    assert_eq!(d.changes, [Change::EventTagged(local(5))]);
    let after = then(&state, &d);
    assert!(after.live().is_some_and(|m| m.published && m.timestamp == T0));
}

#[test]
fn a_host_org_user_may_local_tag_but_not_global_tag_another_orgs_event() {
    let state = given(&[other_orgs_event()]);
    let d = accepted(when(&state, &creator(), tag_event(tag(5), true)));
    assert_eq!(d.changes, [Change::EventTagged(local(5))]);
    assert_eq!(refused(when(&state, &creator(), tag_event(tag(5), false))), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn a_local_tag_from_outside_the_host_org_is_refused() {
    let state = given(&[other_orgs_event()]);
    assert_eq!(
        refused(when(&state, &outsider(), tag_event(tag(5), true))),
        invalid("tag", "Local tags can only be set by users of the host organisation.")
    );
}

#[test]
fn a_local_only_tag_cannot_be_attached_globally() {
    let state = given(&[community_event()]);
    let local_only = TagInfo { local_only: true, ..tag(5) };
    assert_eq!(
        refused(when(&state, &creator(), tag_event(local_only.clone(), false))),
        invalid("tag", "This tag can only be attached as a local tag.")
    );
    assert!(when(&state, &creator(), tag_event(local_only, true)).is_ok());
}

#[test]
fn retagging_with_another_locality_replaces_the_link() {
    let state = given(&[community_event(), Change::EventTagged(local(5))]);
    let d = accepted(when(&state, &creator(), tag_event(tag(5), false)));
    assert_eq!(d.changes, [Change::EventTagged(global(5)), Change::EventTouched { timestamp: NOW }]);
    assert_eq!(then(&state, &d).tags, [global(5)]);
}

#[test]
fn a_global_tag_on_an_attribute_updates_its_timestamp_and_touches_the_event() {
    let state = given(&event_with_attributes());

    let d = accepted(when(&state, &creator(), tag_attribute(1, tag(5), false)));

    assert_eq!(
        d.changes,
        [
            Change::AttributeTagged { attribute_id: 1, tag: global(5) },
            Change::AttributeUpdated(Attribute { tags: vec![global(5)], timestamp: NOW, ..ip1() }),
            Change::EventTouched { timestamp: NOW },
        ]
    );
    assert_eq!(then(&state, &d).attributes.get(&1).map(|a| a.tags.clone()), Some(vec![global(5)]));
}

#[test]
fn a_local_tag_on_an_attribute_changes_no_timestamp() {
    let state = given(&event_with_attributes());
    let d = accepted(when(&state, &creator(), tag_attribute(1, tag(5), true)));
    assert_eq!(d.changes, [Change::AttributeTagged { attribute_id: 1, tag: local(5) }]);
    assert_eq!(then(&state, &d).attributes.get(&1).map(|a| a.timestamp), Some(T0));
}

#[test]
fn tagging_an_attribute_with_a_tag_it_has_records_nothing() {
    let state = given(&[community_event(), added(Attribute { tags: vec![global(5)], ..ip1() })]);
    assert_eq!(accepted(when(&state, &creator(), tag_attribute(1, tag(5), false))), Decision::default());
}

#[test]
fn tagging_an_invisible_event_is_not_found() {
    let state = given(&[org_only_event()]);
    assert_eq!(refused(when(&state, &outsider(), tag_event(tag(5), false))), not_found("Invalid Target."));
}

#[test]
fn tagging_an_unknown_or_invisible_attribute_is_not_found() {
    let state = given(&[other_orgs_event(), added(Attribute { distribution: 0, ..ip1() })]);
    assert_eq!(refused(when(&state, &creator(), tag_attribute(42, tag(5), true))), not_found("Invalid Target."));
    // the host organisation may local-tag what it sees, but not this org-only attribute of another org
    assert_eq!(refused(when(&state, &creator(), tag_attribute(1, tag(5), true))), not_found("Invalid Target."));
}

#[test]
fn a_read_only_user_cannot_tag() {
    let state = given(&[community_event()]);
    assert_eq!(
        refused(when(&state, &colleague_read_only(), tag_event(tag(5), false))),
        forbidden("You do not have permission to use this functionality.")
    );
}

#[test]
fn a_user_of_another_org_cannot_tag_a_visible_event_globally() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &outsider(), tag_event(tag(5), false))), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(refused(when(&state, &outsider(), tag_attribute(1, tag(5), false))), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn a_relationship_type_over_191_characters_is_refused_on_tagging() {
    let state = given(&[community_event()]);
    let command = EventCommand::Tag { target: TagTarget::Event, tag: tag(5), local: false, relationship_type: Some("x".repeat(192)) };
    assert_eq!(refused(when(&state, &creator(), command)), invalid("relationship_type", "Too long (191 characters at most)."));
}

#[test]
fn untagging_an_event_detaches_the_tag_and_touches_it() {
    let state = given(&[community_event(), Change::EventTagged(global(5)), Change::EventTagged(global(6))]);
    let d = accepted(when(&state, &creator(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 }));
    assert_eq!(d.changes, [Change::EventUntagged { tag_id: 5, local: false }, Change::EventTouched { timestamp: NOW }]);
    assert_eq!(then(&state, &d).tags, [global(6)]);
}

#[test]
fn untagging_a_local_tag_changes_no_timestamp() {
    let state = given(&[other_orgs_event(), Change::EventTagged(local(5))]);
    // a host-org user may remove a local tag even from another organisation's Event
    let d = accepted(when(&state, &creator(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 }));
    assert_eq!(d.changes, [Change::EventUntagged { tag_id: 5, local: true }]);
}

#[test]
fn untagging_a_tag_that_is_not_attached_is_not_found() {
    let state = given(&event_with_attributes());
    assert_eq!(
        refused(when(&state, &creator(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 })),
        not_found("Invalid Tag.")
    );
    assert_eq!(
        refused(when(&state, &creator(), EventCommand::Untag { target: TagTarget::Attribute(ElementRef::Id(1)), tag_id: 5 })),
        not_found("Invalid Tag.")
    );
}

#[test]
fn untagging_an_attribute_updates_its_timestamp_and_touches_the_event() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeTagged { attribute_id: 1, tag: global(5) }]);
    let command = EventCommand::Untag { target: TagTarget::Attribute(ElementRef::Uuid(attribute_uuid(1))), tag_id: 5 };

    let d = accepted(when(&state, &creator(), command));

    assert_eq!(
        d.changes,
        [
            Change::AttributeUntagged { attribute_id: 1, tag_id: 5, local: false },
            Change::AttributeUpdated(Attribute { timestamp: NOW, ..ip1() }),
            Change::EventTouched { timestamp: NOW },
        ]
    );
}

#[test]
fn untagging_a_local_attribute_tag_changes_no_timestamp() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeTagged { attribute_id: 1, tag: local(5) }]);
    let d = accepted(when(&state, &creator(), EventCommand::Untag { target: TagTarget::Attribute(ElementRef::Id(1)), tag_id: 5 }));
    assert_eq!(d.changes, [Change::AttributeUntagged { attribute_id: 1, tag_id: 5, local: true }]);
}

#[test]
fn a_user_of_another_org_cannot_untag_a_global_tag() {
    let state = given(&[community_event(), Change::EventTagged(global(5))]);
    assert_eq!(
        refused(when(&state, &outsider(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 })),
        forbidden(NO_PERMISSION_FUNCTIONALITY)
    );
    assert_eq!(
        refused(when(&state, &colleague_read_only(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 })),
        forbidden(NO_PERMISSION_FUNCTIONALITY)
    );
}

#[test]
fn untagging_an_invisible_event_is_not_found() {
    let state = given(&[org_only_event(), Change::EventTagged(global(5))]);
    assert_eq!(
        refused(when(&state, &outsider(), EventCommand::Untag { target: TagTarget::Event, tag_id: 5 })),
        not_found("Invalid Target.")
    );
}

// ===================================================================================================
// Publish / Unpublish / Delete
// ===================================================================================================

#[test]
fn a_publisher_publishes_an_event_of_their_org() {
    let state = given(&[community_event()]);
    let d = accepted(when(&state, &colleague_publisher(), EventCommand::Publish));
    assert_eq!(d.changes, [Change::EventPublished { publish_timestamp: NOW }]);
    let after = then(&state, &d);
    assert!(after.live().is_some_and(|m| m.published && m.publish_timestamp == NOW && m.timestamp == T0));
}

#[test]
fn an_org_admin_publishes_an_event_of_their_org() {
    let state = given(&[community_event()]);
    assert!(when(&state, &org_admin(), EventCommand::Publish).is_ok());
}

#[test]
fn a_user_without_publish_rights_cannot_publish() {
    let state = given(&[community_event()]);
    assert_eq!(
        refused(when(&state, &creator(), EventCommand::Publish)),
        forbidden("You do not have permission to use this functionality.")
    );
}

#[test]
fn a_publisher_of_another_org_cannot_publish() {
    let state = given(&[community_event()]);
    assert_eq!(refused(when(&state, &outside_publisher(), EventCommand::Publish)), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn a_site_admin_publishes_any_event() {
    let state = given(&[org_only_event()]);
    let d = accepted(when(&state, &site_admin(), EventCommand::Publish));
    assert_eq!(d.changes, [Change::EventPublished { publish_timestamp: NOW }]);
}

#[test]
fn publishing_an_invisible_or_deleted_event_is_not_found() {
    assert_eq!(refused(when(&given(&[org_only_event()]), &outside_publisher(), EventCommand::Publish)), not_found("Invalid event"));
    let deleted = given(&[community_event(), Change::EventDeleted { id: EVENT_ID }]);
    assert_eq!(refused(when(&deleted, &colleague_publisher(), EventCommand::Publish)), not_found("Invalid event"));
}

#[test]
fn unpublishing_a_published_event() {
    let state = given(&[community_event(), published()]);
    let d = accepted(when(&state, &creator(), EventCommand::Unpublish));
    assert_eq!(d.changes, [Change::EventUnpublished {}]);
    assert!(then(&state, &d).live().is_some_and(|m| !m.published && m.publish_timestamp == T0));
}

#[test]
fn unpublishing_an_unpublished_event_records_nothing() {
    let state = given(&[community_event()]);
    assert_eq!(accepted(when(&state, &creator(), EventCommand::Unpublish)), Decision::default());
}

#[test]
fn a_user_of_another_org_cannot_unpublish() {
    let state = given(&[community_event(), published()]);
    assert_eq!(refused(when(&state, &outside_publisher(), EventCommand::Unpublish)), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(refused(when(&state, &colleague_read_only(), EventCommand::Unpublish)), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn a_user_of_the_owner_org_deletes_the_event() {
    let state = given(&event_with_attributes());
    let d = accepted(when(&state, &creator(), EventCommand::Delete));
    assert_eq!(d.changes, [Change::EventDeleted { id: EVENT_ID }]);
    let after = then(&state, &d);
    assert!(after.deleted && after.live().is_none());
}

#[test]
fn a_read_only_user_cannot_delete_the_event() {
    let state = given(&[community_event()]);
    assert_eq!(
        refused(when(&state, &colleague_read_only(), EventCommand::Delete)),
        forbidden("You do not have permission to use this functionality.")
    );
}

#[test]
fn a_user_of_another_org_cannot_delete_a_visible_event_and_cannot_find_an_invisible_one() {
    assert_eq!(refused(when(&given(&[community_event()]), &outsider(), EventCommand::Delete)), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(refused(when(&given(&[org_only_event()]), &outsider(), EventCommand::Delete)), not_found("Invalid event"));
}

#[test]
fn a_site_admin_deletes_any_event() {
    let state = given(&[org_only_event()]);
    assert_eq!(accepted(when(&state, &site_admin(), EventCommand::Delete)).changes, [Change::EventDeleted { id: EVENT_ID }]);
}

#[test]
fn a_deleted_event_cannot_be_deleted_again() {
    let state = given(&[community_event(), Change::EventDeleted { id: EVENT_ID }]);
    assert_eq!(refused(when(&state, &creator(), EventCommand::Delete)), not_found("Invalid event"));
}

// ===================================================================================================
// evolve
// ===================================================================================================

#[test]
fn folding_a_history_counts_live_attributes_including_object_attributes() {
    let mut history = event_with_linked_objects();
    history.push(Change::AttributeDeleted { id: 20, hard: false, timestamp: NOW });
    let state = given(&history);
    // 1, 10 and 20 were added live, 12 deleted from the start, 20 deleted since.
    assert_eq!(state.attributes.len(), 4);
    assert_eq!(live_attribute_count(&state), 2);
    assert_eq!(state.objects.len(), 2);
    assert_eq!(state.references.len(), 2);
}

#[test]
fn a_soft_deleted_attribute_leaves_the_duplicate_index_and_a_restore_puts_it_back() {
    let state = given(&[community_event(), added(ip1())]);
    assert_eq!(state.duplicate_of(&ip1()).map(|a| a.id), Some(1));

    let state = evolve(state, &Change::AttributeDeleted { id: 1, hard: false, timestamp: NOW });
    assert_eq!(state.duplicate_of(&ip1()), None);
    assert!(state.attribute_by_uuid(&attribute_uuid(1)).is_some_and(|a| a.deleted && a.timestamp == NOW));

    let state = evolve(state, &Change::AttributeRestored { id: 1, timestamp: NOW + 1 });
    assert_eq!(state.duplicate_of(&ip1()).map(|a| (a.id, a.deleted, a.timestamp)), Some((1, false, NOW + 1)));
}

#[test]
fn a_hard_deleted_attribute_is_gone_by_id_by_uuid_and_from_the_duplicate_index() {
    let state = given(&[community_event(), added(ip1()), Change::AttributeDeleted { id: 1, hard: true, timestamp: NOW }]);
    assert!(state.attributes.is_empty());
    assert!(state.attribute_ids.is_empty());
    assert_eq!(state.duplicate_of(&ip1()), None);
    // a restore of something gone changes nothing
    assert_eq!(evolve(state.clone(), &Change::AttributeRestored { id: 1, timestamp: NOW }), state);
}

#[test]
fn an_updated_attribute_is_reindexed_under_its_new_value() {
    let state = given(&[community_event(), added(ip1())]);
    let moved = Attribute { value1: "198.51.100.99".into(), ..ip1() };
    let state = evolve(state, &Change::AttributeUpdated(moved.clone()));
    assert_eq!(state.duplicate_of(&ip1()), None);
    assert_eq!(state.duplicate_of(&moved).map(|a| a.id), Some(1));
}

#[test]
fn object_attributes_are_not_in_the_duplicate_index() {
    let state = given(&event_with_domain_ip_object());
    let standalone_twin = attribute(99, "ip-dst", "Network activity", "198.51.100.1");
    assert_eq!(state.duplicate_of(&standalone_twin), None);
}

#[test]
fn event_touched_moves_the_timestamp_and_unpublishes() {
    let state = given(&[community_event(), published(), Change::EventTouched { timestamp: NOW }]);
    assert!(state.live().is_some_and(|m| m.timestamp == NOW && !m.published && m.publish_timestamp == T0));
}

#[test]
fn publish_and_unpublish_fold_into_the_metadata() {
    let state = given(&[community_event(), Change::EventPublished { publish_timestamp: NOW }]);
    assert!(state.live().is_some_and(|m| m.published && m.publish_timestamp == NOW));
    let state = evolve(state, &Change::EventUnpublished {});
    assert!(state.live().is_some_and(|m| !m.published && m.publish_timestamp == NOW));
}

#[test]
fn an_event_update_replaces_the_metadata_whole() {
    let renamed = EventMeta { info: "renamed".into(), timestamp: NOW, ..meta(HOST_ORG, 10, 3) };
    let state = given(&[community_event(), Change::EventUpdated(renamed.clone())]);
    assert_eq!(state.live(), Some(&renamed));
}

#[test]
fn tag_links_are_replaced_and_removed_by_tag_id() {
    let state = given(&[community_event(), Change::EventTagged(global(5)), Change::EventTagged(global(6)), Change::EventTagged(local(5))]);
    assert_eq!(state.tags, [global(6), local(5)]);
    let state = evolve(state, &Change::EventUntagged { tag_id: 6, local: false });
    assert_eq!(state.tags, [local(5)]);

    let state = evolve(state, &added(ip1()));
    let state = evolve(state, &Change::AttributeTagged { attribute_id: 1, tag: global(7) });
    let state = evolve(state, &Change::AttributeTagged { attribute_id: 1, tag: local(7) });
    assert_eq!(state.attributes.get(&1).map(|a| a.tags.clone()), Some(vec![local(7)]));
    let state = evolve(state, &Change::AttributeUntagged { attribute_id: 1, tag_id: 7, local: true });
    assert_eq!(state.attributes.get(&1).map(|a| a.tags.len()), Some(0));
}

#[test]
fn objects_and_references_are_soft_deleted_in_place_and_hard_deleted_away() {
    let state = given(&event_with_linked_objects());

    let soft = evolve(state.clone(), &Change::ObjectDeleted { id: 1, hard: false, timestamp: NOW });
    assert!(soft.object_by_uuid(&object_uuid(1)).is_some_and(|o| o.deleted && o.timestamp == NOW));
    let soft = evolve(soft, &Change::ReferenceDeleted { id: 1, hard: false, timestamp: NOW });
    assert!(soft.references.get(&1).is_some_and(|r| r.deleted && r.timestamp == NOW));

    let hard = evolve(state, &Change::ObjectDeleted { id: 1, hard: true, timestamp: NOW });
    assert_eq!(hard.object_by_uuid(&object_uuid(1)), None);
    assert!(!hard.objects.contains_key(&1));
    let hard = evolve(hard, &Change::ReferenceDeleted { id: 1, hard: true, timestamp: NOW });
    assert!(!hard.references.contains_key(&1) && !hard.reference_ids.contains_key(&reference_uuid(1)));
}

#[test]
fn a_deleted_event_is_not_live_but_keeps_its_record() {
    let state = given(&[community_event(), Change::EventDeleted { id: EVENT_ID }]);
    assert!(state.deleted);
    assert_eq!(state.live(), None);
    assert!(state.meta.is_some());
}

#[test]
fn changes_of_other_aggregates_are_ignored() {
    let state = given(&event_with_attributes());
    let after = evolve(state.clone(), &Change::TagDeleted { id: 5 });
    assert_eq!(after, state);
}

#[test]
fn changes_before_the_event_exists_do_not_invent_metadata() {
    let state = given(&[Change::EventTouched { timestamp: NOW }, Change::EventPublished { publish_timestamp: NOW }, Change::EventUnpublished {}]);
    assert_eq!(state, EventState::default());
}

#[test]
fn every_accepted_decision_folds_into_a_consistent_state() {
    // A small session end to end: create, add, tag, edit, delete, restore, publish.
    let mut state = given(&[]);
    let mut draft = new_event("session");
    draft.attributes = vec![new_attribute(1, "ip-dst", "198.51.100.7")];
    draft.objects = vec![file_object(1)];
    let steps: Vec<(Who, EventCommand)> = vec![
        (creator(), create(draft)),
        (creator(), EventCommand::AddAttributes { drafts: vec![new_attribute(2, "domain", "evil.example")], break_on_duplicate: true, ids: IdPool { attributes: [110].into(), ..IdPool::default() } }),
        (creator(), EventCommand::Tag { target: TagTarget::Attribute(ElementRef::Uuid(draft_uuid(2))), tag: tag(5), local: false, relationship_type: None }),
        (creator(), EventCommand::DeleteAttribute { target: ElementRef::Uuid(draft_uuid(1)), hard: false }),
        (creator(), EventCommand::RestoreAttribute { target: ElementRef::Uuid(draft_uuid(1)) }),
        (colleague_publisher(), EventCommand::Publish),
    ];
    for (who, command) in steps {
        let d = accepted(when(&state, &who, command));
        state = then(&state, &d);
    }
    let meta = state.live().expect("the event is live");
    assert!(meta.published);
    assert_eq!(live_attribute_count(&state), 4);
    assert_eq!(state.attribute_by_uuid(&draft_uuid(2)).map(|a| a.tags.clone()), Some(vec![global(5)]));
    assert!(state.duplicate_of(&attribute(0, "ip-dst", "Network activity", "198.51.100.7")).is_some());
}

mod collaboration;
mod sightings;
