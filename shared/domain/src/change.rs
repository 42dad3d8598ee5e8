//! Every fact Cairn records. Each variant is named `<aggregate>.<fact>.v<N>`; a stored change is
//! `(change_type = "<aggregate>.<fact>", schema_version = N, payload = data)`.
//!
//! A shape that changes gets a new `…vN+1` variant name and an upcaster in [`upcast`] (the only place
//! old shapes are known), so replay of an old log always yields today's enum. Golden-JSON tests pin
//! the serialized form of every variant: renaming a field fails CI.

use crate::event::sync::SyncOrigin;
use crate::event::model::{Attribute, Delegation, EventMeta, Object, ObjectReference, Post, Proposal, TagLink, Thread};
use crate::event_template::Template;
use crate::role::Role;
use crate::server::Server;
use crate::instance::{Bootstrap, CorrelationExclusion, Regexp};
use crate::sharing_group::{SharingGroup, SharingGroupOrg, SharingGroupServer};
use crate::sighting::Sighting;
use crate::tag::Tag;
use crate::organisation::Organisation;
use crate::user::{AuthKey, User};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Change {
    // instance
    #[serde(rename = "instance.bootstrapped.v1")]
    InstanceBootstrapped(Bootstrap),
    /// v2 records the value it replaces (`null`: the default was in force), so the audit trail reads
    /// "from → to"; v1 records (without it) are upcast with `previous: null`.
    #[serde(rename = "instance.setting_changed.v2")]
    SettingChanged { name: String, value: Value, previous: Value },
    #[serde(rename = "instance.default_role_set.v1")]
    DefaultRoleSet { role_id: i64 },
    #[serde(rename = "instance.taxonomy_enabled.v1")]
    TaxonomyEnabled { namespace: String },
    #[serde(rename = "instance.taxonomy_disabled.v1")]
    TaxonomyDisabled { namespace: String },
    #[serde(rename = "instance.taxonomy_required_set.v1")]
    TaxonomyRequiredSet { namespace: String, required: bool },
    #[serde(rename = "instance.role_added.v1")]
    RoleAdded(Role),
    #[serde(rename = "instance.role_updated.v1")]
    RoleUpdated(Role),
    #[serde(rename = "instance.role_deleted.v1")]
    RoleDeleted { id: i64 },
    #[serde(rename = "instance.server_added.v1")]
    ServerAdded(Server),
    #[serde(rename = "instance.server_updated.v1")]
    ServerUpdated(Server),
    #[serde(rename = "instance.server_deleted.v1")]
    ServerDeleted { id: i64 },
    #[serde(rename = "instance.regexp_added.v1")]
    RegexpAdded(Regexp),
    #[serde(rename = "instance.regexp_updated.v1")]
    RegexpUpdated(Regexp),
    #[serde(rename = "instance.regexp_deleted.v1")]
    RegexpDeleted { id: i64 },
    #[serde(rename = "instance.correlation_exclusion_added.v1")]
    CorrelationExclusionAdded(CorrelationExclusion),
    #[serde(rename = "instance.correlation_exclusion_deleted.v1")]
    CorrelationExclusionDeleted { id: i64 },
    /// A warninglist (by its directory name in misp-warninglists) starts flagging values.
    #[serde(rename = "instance.warninglist_enabled.v1")]
    WarninglistEnabled { key: String },
    #[serde(rename = "instance.warninglist_disabled.v1")]
    WarninglistDisabled { key: String },

    // organisation
    #[serde(rename = "organisation.created.v1")]
    OrganisationCreated(Organisation),
    #[serde(rename = "organisation.updated.v1")]
    OrganisationUpdated(Organisation),
    #[serde(rename = "organisation.deleted.v1")]
    OrganisationDeleted { id: i64, uuid: uuid::Uuid },

    // user
    #[serde(rename = "user.created.v1")]
    UserCreated(User),
    #[serde(rename = "user.updated.v1")]
    UserUpdated(User),
    #[serde(rename = "user.deleted.v1")]
    UserDeleted { id: i64 },
    #[serde(rename = "user.auth_key_created.v1")]
    AuthKeyCreated(AuthKey),
    #[serde(rename = "user.auth_key_revoked.v1")]
    AuthKeyRevoked { id: i64 },

    // sharing group
    #[serde(rename = "sharing_group.created.v1")]
    SharingGroupCreated(SharingGroup),
    #[serde(rename = "sharing_group.updated.v1")]
    SharingGroupUpdated(SharingGroup),
    #[serde(rename = "sharing_group.org_added.v1")]
    SharingGroupOrgAdded(SharingGroupOrg),
    #[serde(rename = "sharing_group.org_removed.v1")]
    SharingGroupOrgRemoved { org_id: i64 },
    #[serde(rename = "sharing_group.server_added.v1")]
    SharingGroupServerAdded(SharingGroupServer),
    #[serde(rename = "sharing_group.server_removed.v1")]
    SharingGroupServerRemoved { server_id: i64 },
    #[serde(rename = "sharing_group.deleted.v1")]
    SharingGroupDeleted { id: i64 },

    // tag
    #[serde(rename = "tag.created.v1")]
    TagCreated(Tag),
    #[serde(rename = "tag.updated.v1")]
    TagUpdated(Tag),
    #[serde(rename = "tag.deleted.v1")]
    TagDeleted { id: i64 },

    // audit
    /// A user read the audit trail (`/audit/...`): every audit query is itself recorded.
    #[serde(rename = "audit.queried.v1")]
    AuditQueried { route: String, params: Value },

    // event template (the complete record each time)
    #[serde(rename = "event_template.created.v1")]
    TemplateCreated(Template),
    #[serde(rename = "event_template.updated.v1")]
    TemplateUpdated(Template),
    #[serde(rename = "event_template.deleted.v1")]
    TemplateDeleted { id: i64 },

    // event (the MISP Event and everything in it)
    #[serde(rename = "event.created.v1")]
    EventCreated(EventMeta),
    /// The Event's own fields were edited (the record is complete).
    #[serde(rename = "event.updated.v1")]
    EventUpdated(EventMeta),
    /// Content of the Event changed: its timestamp moves and it is no longer published (MISP's
    /// `unpublishEvent`).
    #[serde(rename = "event.touched.v1")]
    EventTouched { timestamp: i64 },
    #[serde(rename = "event.published.v1")]
    EventPublished { publish_timestamp: i64 },
    #[serde(rename = "event.unpublished.v1")]
    EventUnpublished {},
    #[serde(rename = "event.deleted.v1")]
    EventDeleted { id: i64 },
    /// The changes before it in the same commit brought this copy of a peer's Event to the state the
    /// peer offered (server `server_id`; `origin` is the owning instance and its version there).
    #[serde(rename = "event.synced.v1")]
    EventSynced { server_id: i64, origin: SyncOrigin },
    #[serde(rename = "event.tagged.v1")]
    EventTagged(TagLink),
    #[serde(rename = "event.untagged.v1")]
    EventUntagged { tag_id: i64, local: bool },
    #[serde(rename = "attribute.added.v1")]
    AttributeAdded(Attribute),
    /// The attribute's record after an edit (complete, tags included).
    #[serde(rename = "attribute.updated.v1")]
    AttributeUpdated(Attribute),
    #[serde(rename = "attribute.deleted.v1")]
    AttributeDeleted { id: i64, hard: bool, timestamp: i64 },
    #[serde(rename = "attribute.restored.v1")]
    AttributeRestored { id: i64, timestamp: i64 },
    #[serde(rename = "attribute.tagged.v1")]
    AttributeTagged { attribute_id: i64, tag: TagLink },
    #[serde(rename = "attribute.untagged.v1")]
    AttributeUntagged { attribute_id: i64, tag_id: i64, local: bool },
    #[serde(rename = "object.added.v1")]
    ObjectAdded(Object),
    #[serde(rename = "object.updated.v1")]
    ObjectUpdated(Object),
    #[serde(rename = "object.deleted.v1")]
    ObjectDeleted { id: i64, hard: bool, timestamp: i64 },
    #[serde(rename = "object_reference.added.v1")]
    ReferenceAdded(ObjectReference),
    #[serde(rename = "object_reference.deleted.v1")]
    ReferenceDeleted { id: i64, hard: bool, timestamp: i64 },

    // event: collaboration (the same stream; none of these is Event content, none unpublishes it)
    /// Organisation `org_id` (user `user_id`) sent the Event's reporter a message (`events/contact`):
    /// to the creator user only, or to the creator organisation.
    #[serde(rename = "event.reporter_contacted.v1")]
    EventReporterContacted { org_id: i64, user_id: i64, message: String, creator_only: bool, timestamp: i64 },
    #[serde(rename = "proposal.added.v1")]
    ProposalAdded(Proposal),
    /// The proposal was applied: `attribute_id` is the attribute it created, changed or deleted (the
    /// attribute change is in the same commit, just before).
    #[serde(rename = "proposal.accepted.v1")]
    ProposalAccepted { id: i64, attribute_id: i64, by_org_id: i64, by_user_id: i64, timestamp: i64 },
    #[serde(rename = "proposal.discarded.v1")]
    ProposalDiscarded { id: i64, by_org_id: i64, by_user_id: i64, timestamp: i64 },
    #[serde(rename = "delegation.requested.v1")]
    DelegationRequested(Delegation),
    /// The target organisation took the Event over; the new ownership and distribution follow in an
    /// `event.updated.v1` of the same commit (so every projector that follows Event metadata sees it).
    #[serde(rename = "delegation.accepted.v1")]
    DelegationAccepted { id: i64, by_org_id: i64, by_user_id: i64, timestamp: i64 },
    /// Withdrawn by the requester or declined by the target.
    #[serde(rename = "delegation.discarded.v1")]
    DelegationDiscarded { id: i64, by_org_id: i64, by_user_id: i64, timestamp: i64 },
    #[serde(rename = "thread.started.v1")]
    ThreadStarted(Thread),
    /// The Thread's last Post was deleted (MISP deletes the thread then).
    #[serde(rename = "thread.deleted.v1")]
    ThreadDeleted { id: i64, timestamp: i64 },
    #[serde(rename = "post.added.v1")]
    PostAdded(Post),
    #[serde(rename = "post.edited.v1")]
    PostEdited { id: i64, contents: String, date_modified: i64 },
    #[serde(rename = "post.deleted.v1")]
    PostDeleted { id: i64, by_user_id: i64, timestamp: i64 },

    // sightings (one stream per Event, see `crate::sighting`)
    #[serde(rename = "sighting.added.v1")]
    SightingAdded(Sighting),
    /// Deleted by its organisation (`sightings/delete`) or replaced by a newer expiration of the same
    /// organisation on the same attribute.
    #[serde(rename = "sighting.deleted.v1")]
    SightingDeleted { id: i64, by_org_id: i64, by_user_id: i64, timestamp: i64 },
}

/// A change in its stored form.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub change_type: String,
    pub schema_version: i16,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown change type {change_type} v{schema_version}")]
    Unknown { change_type: String, schema_version: i16 },
    #[error("change {change_type} v{schema_version} does not decode: {source}")]
    Shape { change_type: String, schema_version: i16, source: serde_json::Error },
}

impl Change {
    /// The stored form: type without the version suffix, the version, and the data.
    pub fn to_record(&self) -> Record {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let tag = value.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let (change_type, schema_version) = split_tag(&tag);
        let payload = value.get("data").cloned().unwrap_or(Value::Null);
        Record { change_type, schema_version, payload }
    }

    /// Reads a stored change, upcasting older versions first.
    ///
    /// # Errors
    /// Unknown change types or payloads that do not match the variant.
    pub fn from_record(change_type: &str, schema_version: i16, payload: &Value) -> Result<Self, DecodeError> {
        let (version, payload) = upcast(change_type, schema_version, payload.clone());
        let tagged = serde_json::json!({ "type": format!("{change_type}.v{version}"), "data": payload });
        serde_json::from_value(tagged).map_err(|source| decode_error(change_type, schema_version, source))
    }

    /// Reads a stored change from its JSON text (a bulk read of the log): a current version is decoded
    /// in one pass, without building a JSON tree; an older one goes through [`Self::from_record`].
    ///
    /// # Errors
    /// Unknown change types or payloads that do not match the variant.
    pub fn from_json(change_type: &str, schema_version: i16, payload: &str) -> Result<Self, DecodeError> {
        if upcast_step(change_type, schema_version).is_some() {
            let value: Value = serde_json::from_str(payload).map_err(|source| decode_error(change_type, schema_version, source))?;
            return Self::from_record(change_type, schema_version, &value);
        }
        let tagged = format!("{{\"type\":\"{change_type}.v{schema_version}\",\"data\":{payload}}}");
        serde_json::from_str(&tagged).map_err(|source| decode_error(change_type, schema_version, source))
    }

    /// The stored change type (e.g. `organisation.created`).
    pub fn change_type(&self) -> String {
        self.to_record().change_type
    }
}

fn split_tag(tag: &str) -> (String, i16) {
    match tag.rsplit_once(".v") {
        Some((name, v)) => (name.to_string(), v.parse().unwrap_or(1)),
        None => (tag.to_string(), 1),
    }
}

fn decode_error(change_type: &str, schema_version: i16, source: serde_json::Error) -> DecodeError {
    if source.to_string().starts_with("unknown variant") {
        DecodeError::Unknown { change_type: change_type.into(), schema_version }
    } else {
        DecodeError::Shape { change_type: change_type.into(), schema_version, source }
    }
}

/// Moves a payload one version forward.
type Upcast = fn(Value) -> Value;

/// The one place that knows old shapes: one step from `(type, version)` to the next version, `None`
/// once a version is current.
fn upcast_step(change_type: &str, schema_version: i16) -> Option<(i16, Upcast)> {
    match (change_type, schema_version) {
        // v1 did not record the replaced value.
        ("instance.setting_changed", 1) => Some((2, |p| with_field(p, "previous", Value::Null))),
        _ => None,
    }
}

/// Maps `(type, version, payload)` to the current version, one [`upcast_step`] at a time.
pub fn upcast(change_type: &str, schema_version: i16, payload: Value) -> (i16, Value) {
    let (mut version, mut payload) = (schema_version, payload);
    while let Some((next, step)) = upcast_step(change_type, version) {
        (version, payload) = (next, step(payload));
    }
    (version, payload)
}

fn with_field(mut payload: Value, name: &str, value: Value) -> Value {
    if let Some(m) = payload.as_object_mut() {
        m.entry(name.to_string()).or_insert(value);
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn golden(change: Change, expected: Value) {
        let record = change.to_record();
        let tagged = json!({ "type": format!("{}.v{}", record.change_type, record.schema_version), "data": record.payload });
        assert_eq!(tagged, expected, "serialized form changed");
        let back = Change::from_record(&record.change_type, record.schema_version, &record.payload).expect("decodes");
        assert_eq!(back, change);
        let text = record.payload.to_string();
        let bulk = Change::from_json(&record.change_type, record.schema_version, &text).expect("decodes from text");
        assert_eq!(bulk, change, "the bulk decoder reads what the record decoder reads");
    }

    fn org() -> Organisation {
        Organisation {
            id: 1,
            uuid: Uuid::from_u128(1),
            name: "ORGNAME".into(),
            description: "d".into(),
            org_type: "ADMIN".into(),
            nationality: "LU".into(),
            sector: "CERT".into(),
            contacts: "c".into(),
            local: true,
            restricted_to_domain: vec!["example.org".into()],
            landingpage: "".into(),
            created_by: 0,
            date_created: 1_700_000_000,
            date_modified: 1_700_000_001,
        }
    }

    fn org_json() -> Value {
        json!({"id":1,"uuid":"00000000-0000-0000-0000-000000000001","name":"ORGNAME","description":"d","type":"ADMIN",
               "nationality":"LU","sector":"CERT","contacts":"c","local":true,"restricted_to_domain":["example.org"],
               "landingpage":"","created_by":0,"date_created":1700000000,"date_modified":1700000001})
    }

    fn user() -> User {
        User {
            id: 2,
            uuid: Uuid::from_u128(2),
            org_id: 1,
            org_uuid: Uuid::from_u128(1),
            email: "admin@admin.test".into(),
            role_id: 1,
            autoalert: false,
            contactalert: true,
            disabled: false,
            expiration: None,
            nids_sid: 4000000,
            gpgkey: "".into(),
            certif_public: "".into(),
            termsaccepted: true,
            change_pw: false,
            invited_by: 0,
            date_created: 5,
            date_modified: 6,
        }
    }

    fn user_json() -> Value {
        json!({"id":2,"uuid":"00000000-0000-0000-0000-000000000002","org_id":1,"org_uuid":"00000000-0000-0000-0000-000000000001",
               "email":"admin@admin.test","role_id":1,"autoalert":false,"contactalert":true,"disabled":false,"expiration":null,
               "nids_sid":4000000,"gpgkey":"","certif_public":"","termsaccepted":true,"change_pw":false,"invited_by":0,
               "date_created":5,"date_modified":6})
    }

    #[test]
    fn golden_instance_changes() {
        golden(
            Change::InstanceBootstrapped(Bootstrap {
                instance_uuid: Uuid::from_u128(9),
                host_org_id: 1,
                host_org_uuid: Uuid::from_u128(1),
                admin_user_id: 1,
                admin_user_uuid: Uuid::from_u128(2),
            }),
            json!({"type":"instance.bootstrapped.v1","data":{"instance_uuid":"00000000-0000-0000-0000-000000000009",
                   "host_org_id":1,"host_org_uuid":"00000000-0000-0000-0000-000000000001","admin_user_id":1,
                   "admin_user_uuid":"00000000-0000-0000-0000-000000000002"}}),
        );
        golden(
            Change::SettingChanged { name: "MISP.background_jobs".into(), value: json!(false), previous: json!(true) },
            json!({"type":"instance.setting_changed.v2","data":{"name":"MISP.background_jobs","value":false,"previous":true}}),
        );
        golden(Change::DefaultRoleSet { role_id: 3 }, json!({"type":"instance.default_role_set.v1","data":{"role_id":3}}));
        let r = Regexp { id: 2, regexp: "/x/i".into(), replacement: "".into(), attr_type: "ALL".into() };
        let rj = json!({"id":2,"regexp":"/x/i","replacement":"","type":"ALL"});
        golden(Change::RegexpAdded(r.clone()), json!({"type":"instance.regexp_added.v1","data":rj}));
        golden(Change::RegexpUpdated(r), json!({"type":"instance.regexp_updated.v1","data":rj}));
        golden(Change::RegexpDeleted { id: 2 }, json!({"type":"instance.regexp_deleted.v1","data":{"id":2}}));
        golden(
            Change::CorrelationExclusionAdded(CorrelationExclusion { id: 4, value: "%.local".into(), comment: "c".into() }),
            json!({"type":"instance.correlation_exclusion_added.v1","data":{"id":4,"value":"%.local","comment":"c"}}),
        );
        golden(Change::CorrelationExclusionDeleted { id: 4 }, json!({"type":"instance.correlation_exclusion_deleted.v1","data":{"id":4}}));
        golden(Change::WarninglistEnabled { key: "tranco".into() }, json!({"type":"instance.warninglist_enabled.v1","data":{"key":"tranco"}}));
        golden(Change::WarninglistDisabled { key: "tranco".into() }, json!({"type":"instance.warninglist_disabled.v1","data":{"key":"tranco"}}));
        golden(Change::TaxonomyEnabled { namespace: "tlp".into() }, json!({"type":"instance.taxonomy_enabled.v1","data":{"namespace":"tlp"}}));
        golden(Change::TaxonomyDisabled { namespace: "tlp".into() }, json!({"type":"instance.taxonomy_disabled.v1","data":{"namespace":"tlp"}}));
        golden(
            Change::TaxonomyRequiredSet { namespace: "tlp".into(), required: true },
            json!({"type":"instance.taxonomy_required_set.v1","data":{"namespace":"tlp","required":true}}),
        );
    }

    #[test]
    fn golden_organisation_changes() {
        golden(Change::OrganisationCreated(org()), json!({"type":"organisation.created.v1","data":org_json()}));
        golden(Change::OrganisationUpdated(org()), json!({"type":"organisation.updated.v1","data":org_json()}));
        golden(
            Change::OrganisationDeleted { id: 1, uuid: Uuid::from_u128(1) },
            json!({"type":"organisation.deleted.v1","data":{"id":1,"uuid":"00000000-0000-0000-0000-000000000001"}}),
        );
    }

    #[test]
    fn golden_user_changes() {
        golden(Change::UserCreated(user()), json!({"type":"user.created.v1","data":user_json()}));
        golden(Change::UserUpdated(user()), json!({"type":"user.updated.v1","data":user_json()}));
        golden(Change::UserDeleted { id: 2 }, json!({"type":"user.deleted.v1","data":{"id":2}}));
        golden(
            Change::AuthKeyCreated(AuthKey {
                id: 3,
                uuid: Uuid::from_u128(3),
                user_id: 2,
                key_hash: "ab".into(),
                key_start: "abcd".into(),
                key_end: "wxyz".into(),
                comment: "".into(),
                expiration: Some(10),
                read_only: true,
                allowed_ips: vec!["10.0.0.0/8".into()],
                created: 4,
            }),
            json!({"type":"user.auth_key_created.v1","data":{"id":3,"uuid":"00000000-0000-0000-0000-000000000003","user_id":2,
                   "key_hash":"ab","key_start":"abcd","key_end":"wxyz","comment":"","expiration":10,"read_only":true,
                   "allowed_ips":["10.0.0.0/8"],"created":4}}),
        );
        golden(Change::AuthKeyRevoked { id: 3 }, json!({"type":"user.auth_key_revoked.v1","data":{"id":3}}));
    }

    #[test]
    fn golden_sharing_group_changes() {
        let g = SharingGroup {
            id: 3,
            uuid: Uuid::from_u128(3),
            name: "SG".into(),
            releasability: "r".into(),
            description: "d".into(),
            org_id: 1,
            org_uuid: Uuid::from_u128(1),
            active: true,
            roaming: false,
            local: true,
            created: 10,
            modified: 11,
        };
        let gj = json!({"id":3,"uuid":"00000000-0000-0000-0000-000000000003","name":"SG","releasability":"r","description":"d",
                        "org_id":1,"org_uuid":"00000000-0000-0000-0000-000000000001","active":true,"roaming":false,"local":true,
                        "created":10,"modified":11});
        golden(Change::SharingGroupCreated(g.clone()), json!({"type":"sharing_group.created.v1","data":gj}));
        golden(Change::SharingGroupUpdated(g), json!({"type":"sharing_group.updated.v1","data":gj}));
        golden(
            Change::SharingGroupOrgAdded(SharingGroupOrg { org_id: 2, org_uuid: Uuid::from_u128(2), extend: true }),
            json!({"type":"sharing_group.org_added.v1","data":{"org_id":2,"org_uuid":"00000000-0000-0000-0000-000000000002","extend":true}}),
        );
        golden(Change::SharingGroupOrgRemoved { org_id: 2 }, json!({"type":"sharing_group.org_removed.v1","data":{"org_id":2}}));
        golden(
            Change::SharingGroupServerAdded(SharingGroupServer { server_id: 0, all_orgs: true }),
            json!({"type":"sharing_group.server_added.v1","data":{"server_id":0,"all_orgs":true}}),
        );
        golden(Change::SharingGroupServerRemoved { server_id: 0 }, json!({"type":"sharing_group.server_removed.v1","data":{"server_id":0}}));
        golden(Change::SharingGroupDeleted { id: 3 }, json!({"type":"sharing_group.deleted.v1","data":{"id":3}}));
    }

    #[test]
    fn a_v1_setting_change_still_reads_after_v2_was_introduced() {
        let v1 = json!({"name": "MISP.background_jobs", "value": false});
        let change = Change::from_record("instance.setting_changed", 1, &v1).expect("v1 upcast");
        assert_eq!(change, Change::SettingChanged { name: "MISP.background_jobs".into(), value: json!(false), previous: Value::Null });
        assert_eq!(change.to_record().schema_version, 2, "written again, it is a v2");
        assert_eq!(Change::from_json("instance.setting_changed", 1, &v1.to_string()).expect("v1 upcast from text"), change, "the bulk decoder upcasts too");
        assert!(matches!(Change::from_json("instance.setting_changed", 3, &v1.to_string()), Err(DecodeError::Unknown { .. })));
        assert!(matches!(Change::from_record("instance.setting_changed", 3, &v1), Err(DecodeError::Unknown { .. })), "no v3 exists");
    }

    #[test]
    fn golden_role_changes() {
        let mut r = Role::none(7, "Auditless");
        r.perm_auth = true;
        r.perm_add = true;
        let v = serde_json::to_value(&r).expect("role");
        assert_eq!(v["perm_audit"], json!(false));
        golden(Change::RoleAdded(r.clone()), json!({"type":"instance.role_added.v1","data":v}));
        golden(Change::RoleUpdated(r), json!({"type":"instance.role_updated.v1","data":v}));
        golden(Change::RoleDeleted { id: 7 }, json!({"type":"instance.role_deleted.v1","data":{"id":7}}));
        let server = crate::server::Server {
            id: 2,
            name: "peer".into(),
            url: "https://peer.example".into(),
            org_id: 1,
            remote_org_id: 4,
            push: false,
            pull: true,
            push_sightings: false,
            internal: false,
            unpublish_event: false,
            publish_without_email: false,
            self_signed: false,
            skip_proxy: false,
            caching_enabled: false,
            remove_missing_tags: false,
            priority: 0,
            push_rules: json!({}),
            pull_rules: json!({}),
        };
        golden(
            Change::ServerAdded(server),
            json!({"type":"instance.server_added.v1","data":{"id":2,"name":"peer","url":"https://peer.example","org_id":1,
                   "remote_org_id":4,"push":false,"pull":true,"push_sightings":false,"internal":false,"unpublish_event":false,
                   "publish_without_email":false,"self_signed":false,"skip_proxy":false,"caching_enabled":false,
                   "remove_missing_tags":false,"priority":0,"push_rules":{},"pull_rules":{}}}),
        );
        golden(Change::ServerDeleted { id: 2 }, json!({"type":"instance.server_deleted.v1","data":{"id":2}}));
    }

    #[test]
    fn golden_audit_changes() {
        golden(
            Change::AuditQueried { route: "audit/history".into(), params: json!({"stream": "x"}) },
            json!({"type":"audit.queried.v1","data":{"route":"audit/history","params":{"stream":"x"}}}),
        );
    }

    #[test]
    fn golden_event_template_changes() {
        use crate::event_template::{AttributeElement, Element, ElementKind, TextElement};
        let t = Template {
            id: 1,
            uuid: Uuid::from_u128(7),
            name: "Phishing E-mail".into(),
            description: "d".into(),
            org_id: 1,
            share: true,
            tag_ids: vec![5],
            elements: vec![
                Element { id: 3, position: 1, kind: ElementKind::Text(TextElement { name: "Required fields".into(), text: "t".into() }) },
                Element {
                    id: 1,
                    position: 2,
                    kind: ElementKind::Attribute(AttributeElement {
                        name: "From address".into(),
                        description: "".into(),
                        category: "Payload delivery".into(),
                        attr_type: "email-src".into(),
                        complex: false,
                        to_ids: true,
                        mandatory: true,
                        batch: true,
                    }),
                },
            ],
        };
        let data = json!({"id":1,"uuid":"00000000-0000-0000-0000-000000000007","name":"Phishing E-mail","description":"d","org_id":1,
            "share":true,"tag_ids":[5],"elements":[
                {"id":3,"position":1,"element_definition":"text","name":"Required fields","text":"t"},
                {"id":1,"position":2,"element_definition":"attribute","name":"From address","description":"","category":"Payload delivery",
                 "type":"email-src","complex":false,"to_ids":true,"mandatory":true,"batch":true}]});
        golden(Change::TemplateCreated(t.clone()), json!({"type":"event_template.created.v1","data":data}));
        golden(Change::TemplateUpdated(t), json!({"type":"event_template.updated.v1","data":data}));
        golden(Change::TemplateDeleted { id: 1 }, json!({"type":"event_template.deleted.v1","data":{"id":1}}));
    }

    #[test]
    fn golden_tag_changes() {
        let tag = Tag {
            id: 5,
            name: "tlp:green".into(),
            colour: "#33ff00".into(),
            exportable: true,
            org_id: 0,
            user_id: 0,
            hide_tag: false,
            numerical_value: None,
            is_galaxy: false,
            is_custom_galaxy: false,
            local_only: false,
        };
        let data = json!({"id":5,"name":"tlp:green","colour":"#33ff00","exportable":true,"org_id":0,"user_id":0,
                          "hide_tag":false,"numerical_value":null,"is_galaxy":false,"is_custom_galaxy":false,"local_only":false});
        golden(Change::TagCreated(tag.clone()), json!({"type":"tag.created.v1","data":data}));
        golden(Change::TagUpdated(tag), json!({"type":"tag.updated.v1","data":data}));
        golden(Change::TagDeleted { id: 5 }, json!({"type":"tag.deleted.v1","data":{"id":5}}));
    }

    fn meta() -> EventMeta {
        EventMeta {
            id: 12,
            uuid: Uuid::from_u128(12),
            info: "phishing".into(),
            date: "2024-01-02".into(),
            threat_level_id: 3,
            analysis: 2,
            distribution: 1,
            sharing_group_id: 0,
            org_id: 1,
            orgc_id: 1,
            user_id: 1,
            published: false,
            publish_timestamp: 0,
            timestamp: 1700000000,
            sighting_timestamp: 0,
            proposal_email_lock: false,
            locked: false,
            disable_correlation: false,
            extends_uuid: "".into(),
        }
    }

    fn meta_json() -> Value {
        json!({"id":12,"uuid":"00000000-0000-0000-0000-00000000000c","info":"phishing","date":"2024-01-02","threat_level_id":3,
               "analysis":2,"distribution":1,"sharing_group_id":0,"org_id":1,"orgc_id":1,"user_id":1,"published":false,
               "publish_timestamp":0,"timestamp":1700000000,"sighting_timestamp":0,"proposal_email_lock":false,"locked":false,
               "disable_correlation":false,"extends_uuid":""})
    }

    fn attribute() -> Attribute {
        Attribute {
            id: 99,
            uuid: Uuid::from_u128(99),
            event_id: 12,
            object_id: 0,
            object_relation: None,
            category: "Network activity".into(),
            attr_type: "ip-dst|port".into(),
            value1: "1.2.3.4".into(),
            value2: "443".into(),
            to_ids: true,
            comment: "c2".into(),
            distribution: 5,
            sharing_group_id: 0,
            timestamp: 1700000001,
            deleted: false,
            disable_correlation: false,
            first_seen: Some(1577836800000000),
            last_seen: None,
            tags: vec![TagLink { tag_id: 5, local: false, relationship_type: None }],
        }
    }

    fn attribute_json() -> Value {
        json!({"id":99,"uuid":"00000000-0000-0000-0000-000000000063","event_id":12,"object_id":0,"object_relation":null,
               "category":"Network activity","type":"ip-dst|port","value1":"1.2.3.4","value2":"443","to_ids":true,"comment":"c2",
               "distribution":5,"sharing_group_id":0,"timestamp":1700000001,"deleted":false,"disable_correlation":false,
               "first_seen":1577836800000000_i64,"last_seen":null,"tags":[{"tag_id":5,"local":false,"relationship_type":null}]})
    }

    #[test]
    fn golden_event_changes() {
        golden(Change::EventCreated(meta()), json!({"type":"event.created.v1","data":meta_json()}));
        golden(Change::EventUpdated(meta()), json!({"type":"event.updated.v1","data":meta_json()}));
        golden(Change::EventTouched { timestamp: 7 }, json!({"type":"event.touched.v1","data":{"timestamp":7}}));
        golden(Change::EventPublished { publish_timestamp: 8 }, json!({"type":"event.published.v1","data":{"publish_timestamp":8}}));
        golden(Change::EventUnpublished {}, json!({"type":"event.unpublished.v1","data":{}}));
        golden(Change::EventDeleted { id: 12 }, json!({"type":"event.deleted.v1","data":{"id":12}}));
        golden(
            Change::EventSynced { server_id: 3, origin: crate::event::sync::SyncOrigin { instance: Uuid::from_u128(9), version: 41 } },
            json!({"type":"event.synced.v1","data":{"server_id":3,"origin":{"instance":"00000000-0000-0000-0000-000000000009","version":41}}}),
        );
        golden(
            Change::EventTagged(TagLink { tag_id: 5, local: true, relationship_type: Some("rel".into()) }),
            json!({"type":"event.tagged.v1","data":{"tag_id":5,"local":true,"relationship_type":"rel"}}),
        );
        golden(Change::EventUntagged { tag_id: 5, local: false }, json!({"type":"event.untagged.v1","data":{"tag_id":5,"local":false}}));
    }

    #[test]
    fn golden_attribute_changes() {
        golden(Change::AttributeAdded(attribute()), json!({"type":"attribute.added.v1","data":attribute_json()}));
        golden(Change::AttributeUpdated(attribute()), json!({"type":"attribute.updated.v1","data":attribute_json()}));
        golden(
            Change::AttributeDeleted { id: 99, hard: false, timestamp: 9 },
            json!({"type":"attribute.deleted.v1","data":{"id":99,"hard":false,"timestamp":9}}),
        );
        golden(Change::AttributeRestored { id: 99, timestamp: 10 }, json!({"type":"attribute.restored.v1","data":{"id":99,"timestamp":10}}));
        golden(
            Change::AttributeTagged { attribute_id: 99, tag: TagLink { tag_id: 5, local: false, relationship_type: None } },
            json!({"type":"attribute.tagged.v1","data":{"attribute_id":99,"tag":{"tag_id":5,"local":false,"relationship_type":null}}}),
        );
        golden(
            Change::AttributeUntagged { attribute_id: 99, tag_id: 5, local: false },
            json!({"type":"attribute.untagged.v1","data":{"attribute_id":99,"tag_id":5,"local":false}}),
        );
    }

    #[test]
    fn golden_object_changes() {
        let object = Object {
            id: 44,
            uuid: Uuid::from_u128(44),
            event_id: 12,
            name: "domain-ip".into(),
            meta_category: "network".into(),
            description: "d".into(),
            template_uuid: Some(Uuid::from_u128(7)),
            template_version: "11".into(),
            timestamp: 11,
            distribution: 5,
            sharing_group_id: 0,
            comment: "".into(),
            deleted: false,
            first_seen: None,
            last_seen: Some(2),
        };
        let data = json!({"id":44,"uuid":"00000000-0000-0000-0000-00000000002c","event_id":12,"name":"domain-ip",
                          "meta_category":"network","description":"d","template_uuid":"00000000-0000-0000-0000-000000000007",
                          "template_version":"11","timestamp":11,"distribution":5,"sharing_group_id":0,"comment":"",
                          "deleted":false,"first_seen":null,"last_seen":2});
        golden(Change::ObjectAdded(object.clone()), json!({"type":"object.added.v1","data":data}));
        golden(Change::ObjectUpdated(object), json!({"type":"object.updated.v1","data":data}));
        golden(
            Change::ObjectDeleted { id: 44, hard: true, timestamp: 3 },
            json!({"type":"object.deleted.v1","data":{"id":44,"hard":true,"timestamp":3}}),
        );
        let reference = ObjectReference {
            id: 55,
            uuid: Uuid::from_u128(55),
            event_id: 12,
            object_id: 44,
            object_uuid: Uuid::from_u128(44),
            referenced_uuid: Uuid::from_u128(99),
            referenced_id: 99,
            referenced_type: 0,
            relationship_type: "related-to".into(),
            comment: "".into(),
            timestamp: 12,
            deleted: false,
        };
        golden(
            Change::ReferenceAdded(reference),
            json!({"type":"object_reference.added.v1","data":{"id":55,"uuid":"00000000-0000-0000-0000-000000000037","event_id":12,
                   "object_id":44,"object_uuid":"00000000-0000-0000-0000-00000000002c","referenced_uuid":"00000000-0000-0000-0000-000000000063",
                   "referenced_id":99,"referenced_type":0,"relationship_type":"related-to","comment":"","timestamp":12,"deleted":false}}),
        );
        golden(
            Change::ReferenceDeleted { id: 55, hard: false, timestamp: 4 },
            json!({"type":"object_reference.deleted.v1","data":{"id":55,"hard":false,"timestamp":4}}),
        );
    }

    fn proposal() -> Proposal {
        Proposal {
            id: 7,
            uuid: Uuid::from_u128(99),
            event_id: 12,
            event_uuid: Uuid::from_u128(12),
            old_id: 99,
            event_org_id: 1,
            category: "Network activity".into(),
            attr_type: "ip-dst".into(),
            value1: "1.2.3.4".into(),
            value2: "".into(),
            to_ids: false,
            comment: "false positives on the proxy".into(),
            disable_correlation: false,
            first_seen: None,
            last_seen: Some(1577836800000000),
            proposal_to_delete: false,
            org_id: 2,
            user_id: 20,
            email: "analyst@other.test".into(),
            timestamp: 1700000002,
            base_revision: 3,
            base_timestamp: 1700000001,
        }
    }

    #[test]
    fn golden_proposal_changes() {
        golden(
            Change::ProposalAdded(proposal()),
            json!({"type":"proposal.added.v1","data":{"id":7,"uuid":"00000000-0000-0000-0000-000000000063","event_id":12,
                   "event_uuid":"00000000-0000-0000-0000-00000000000c","old_id":99,"event_org_id":1,"category":"Network activity",
                   "type":"ip-dst","value1":"1.2.3.4","value2":"","to_ids":false,"comment":"false positives on the proxy",
                   "disable_correlation":false,"first_seen":null,"last_seen":1577836800000000_i64,"proposal_to_delete":false,
                   "org_id":2,"user_id":20,"email":"analyst@other.test","timestamp":1700000002,"base_revision":3,
                   "base_timestamp":1700000001}}),
        );
        golden(
            Change::ProposalAccepted { id: 7, attribute_id: 99, by_org_id: 1, by_user_id: 10, timestamp: 5 },
            json!({"type":"proposal.accepted.v1","data":{"id":7,"attribute_id":99,"by_org_id":1,"by_user_id":10,"timestamp":5}}),
        );
        golden(
            Change::ProposalDiscarded { id: 7, by_org_id: 2, by_user_id: 20, timestamp: 6 },
            json!({"type":"proposal.discarded.v1","data":{"id":7,"by_org_id":2,"by_user_id":20,"timestamp":6}}),
        );
    }

    #[test]
    fn golden_delegation_changes() {
        golden(
            Change::DelegationRequested(Delegation {
                id: 3,
                event_id: 12,
                org_id: 2,
                requester_org_id: 1,
                requester_user_id: 10,
                message: "please publish".into(),
                distribution: -1,
                sharing_group_id: 0,
                timestamp: 1700000003,
            }),
            json!({"type":"delegation.requested.v1","data":{"id":3,"event_id":12,"org_id":2,"requester_org_id":1,
                   "requester_user_id":10,"message":"please publish","distribution":-1,"sharing_group_id":0,"timestamp":1700000003}}),
        );
        golden(
            Change::DelegationAccepted { id: 3, by_org_id: 2, by_user_id: 20, timestamp: 7 },
            json!({"type":"delegation.accepted.v1","data":{"id":3,"by_org_id":2,"by_user_id":20,"timestamp":7}}),
        );
        golden(
            Change::DelegationDiscarded { id: 3, by_org_id: 1, by_user_id: 10, timestamp: 8 },
            json!({"type":"delegation.discarded.v1","data":{"id":3,"by_org_id":1,"by_user_id":10,"timestamp":8}}),
        );
    }

    #[test]
    fn golden_discussion_and_contact_changes() {
        golden(
            Change::ThreadStarted(Thread {
                id: 4,
                event_id: 12,
                title: "Discussion about Event #12 (phishing)".into(),
                org_id: 2,
                user_id: 20,
                date_created: 9,
            }),
            json!({"type":"thread.started.v1","data":{"id":4,"event_id":12,"title":"Discussion about Event #12 (phishing)",
                   "org_id":2,"user_id":20,"date_created":9}}),
        );
        golden(Change::ThreadDeleted { id: 4, timestamp: 10 }, json!({"type":"thread.deleted.v1","data":{"id":4,"timestamp":10}}));
        golden(
            Change::PostAdded(Post {
                id: 8,
                thread_id: 4,
                event_id: 12,
                user_id: 20,
                org_id: 2,
                contents: "1.2.3.4 is our proxy".into(),
                post_id: 0,
                date_created: 9,
                date_modified: 9,
            }),
            json!({"type":"post.added.v1","data":{"id":8,"thread_id":4,"event_id":12,"user_id":20,"org_id":2,
                   "contents":"1.2.3.4 is our proxy","post_id":0,"date_created":9,"date_modified":9}}),
        );
        golden(
            Change::PostEdited { id: 8, contents: "edited".into(), date_modified: 11 },
            json!({"type":"post.edited.v1","data":{"id":8,"contents":"edited","date_modified":11}}),
        );
        golden(
            Change::PostDeleted { id: 8, by_user_id: 20, timestamp: 12 },
            json!({"type":"post.deleted.v1","data":{"id":8,"by_user_id":20,"timestamp":12}}),
        );
        golden(
            Change::EventReporterContacted { org_id: 2, user_id: 20, message: "about 1.2.3.4".into(), creator_only: true, timestamp: 13 },
            json!({"type":"event.reporter_contacted.v1","data":{"org_id":2,"user_id":20,"message":"about 1.2.3.4",
                   "creator_only":true,"timestamp":13}}),
        );
    }

    #[test]
    fn golden_sighting_changes() {
        golden(
            Change::SightingAdded(Sighting {
                id: 21,
                uuid: Uuid::from_u128(21),
                event_id: 12,
                event_uuid: Uuid::from_u128(12),
                attribute_id: 99,
                attribute_uuid: Uuid::from_u128(99),
                org_id: 2,
                user_id: 20,
                sighting_type: 1,
                source: "Testcases".into(),
                date_sighting: 1700000004,
            }),
            json!({"type":"sighting.added.v1","data":{"id":21,"uuid":"00000000-0000-0000-0000-000000000015","event_id":12,
                   "event_uuid":"00000000-0000-0000-0000-00000000000c","attribute_id":99,
                   "attribute_uuid":"00000000-0000-0000-0000-000000000063","org_id":2,"user_id":20,"type":1,"source":"Testcases",
                   "date_sighting":1700000004}}),
        );
        golden(
            Change::SightingDeleted { id: 21, by_org_id: 2, by_user_id: 20, timestamp: 14 },
            json!({"type":"sighting.deleted.v1","data":{"id":21,"by_org_id":2,"by_user_id":20,"timestamp":14}}),
        );
    }

    #[test]
    fn unknown_types_are_reported_not_guessed() {
        let err = Change::from_record("nonsense.thing", 1, &json!({})).expect_err("unknown");
        assert!(matches!(err, DecodeError::Unknown { .. }), "{err}");
    }
}
