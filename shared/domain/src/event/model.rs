//! The records an Event stream holds: the Event's metadata, its Attributes, Objects, Object references
//! and tag links, and the collaboration around it (Proposals, the pending Delegation, the discussion
//! Thread and its Posts). These are exactly what the changes carry (serialized as they are here).

use crate::acl::{ElementAccess, EventAccess};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tag attached to an Event or Attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLink {
    pub tag_id: i64,
    /// Local tags never leave this instance and do not change timestamps.
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub relationship_type: Option<String>,
}

/// An Event's own fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub id: i64,
    pub uuid: Uuid,
    pub info: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub threat_level_id: u8,
    pub analysis: u8,
    pub distribution: u8,
    pub sharing_group_id: i64,
    /// Owner (holder) organisation: visibility.
    pub org_id: i64,
    /// Creator organisation: modify and publish rights.
    pub orgc_id: i64,
    pub user_id: i64,
    pub published: bool,
    pub publish_timestamp: i64,
    pub timestamp: i64,
    #[serde(default)]
    pub sighting_timestamp: i64,
    #[serde(default)]
    pub proposal_email_lock: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub disable_correlation: bool,
    #[serde(default)]
    pub extends_uuid: String,
}

impl EventMeta {
    /// The Event's own access fields. It does not know about a pending Delegation: prefer
    /// [`EventState::access`](super::EventState::access), which adds the delegate organisation.
    pub fn access(&self) -> EventAccess {
        EventAccess {
            org_id: self.org_id,
            distribution: self.distribution,
            sharing_group_id: self.sharing_group_id,
            published: self.published,
            delegate_org_id: 0,
        }
    }
}

/// An Attribute (standalone when `object_id == 0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub id: i64,
    pub uuid: Uuid,
    pub event_id: i64,
    #[serde(default)]
    pub object_id: i64,
    #[serde(default)]
    pub object_relation: Option<String>,
    pub category: String,
    #[serde(rename = "type")]
    pub attr_type: String,
    pub value1: String,
    #[serde(default)]
    pub value2: String,
    pub to_ids: bool,
    #[serde(default)]
    pub comment: String,
    pub distribution: u8,
    #[serde(default)]
    pub sharing_group_id: i64,
    pub timestamp: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub disable_correlation: bool,
    /// Microseconds since the epoch.
    #[serde(default)]
    pub first_seen: Option<i64>,
    #[serde(default)]
    pub last_seen: Option<i64>,
    #[serde(default)]
    pub tags: Vec<TagLink>,
}

impl Attribute {
    /// MISP's virtual `value`: `value1` or `value1|value2` for composite types.
    pub fn value(&self) -> String {
        if self.value2.is_empty() { self.value1.clone() } else { format!("{}|{}", self.value1, self.value2) }
    }

    pub fn access(&self) -> ElementAccess {
        ElementAccess { distribution: self.distribution, sharing_group_id: self.sharing_group_id }
    }
}

/// An Object (attributes are separate records pointing at it through `object_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub id: i64,
    pub uuid: Uuid,
    pub event_id: i64,
    pub name: String,
    #[serde(default)]
    pub meta_category: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub template_uuid: Option<Uuid>,
    #[serde(default)]
    pub template_version: String,
    pub timestamp: i64,
    pub distribution: u8,
    #[serde(default)]
    pub sharing_group_id: i64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub first_seen: Option<i64>,
    #[serde(default)]
    pub last_seen: Option<i64>,
}

impl Object {
    pub fn access(&self) -> ElementAccess {
        ElementAccess { distribution: self.distribution, sharing_group_id: self.sharing_group_id }
    }
}

/// A typed link from an Object to an Attribute (`referenced_type` 0) or an Object (1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectReference {
    pub id: i64,
    pub uuid: Uuid,
    pub event_id: i64,
    pub object_id: i64,
    pub object_uuid: Uuid,
    pub referenced_uuid: Uuid,
    #[serde(default)]
    pub referenced_id: i64,
    pub referenced_type: u8,
    pub relationship_type: String,
    #[serde(default)]
    pub comment: String,
    pub timestamp: i64,
    #[serde(default)]
    pub deleted: bool,
}

/// A Proposal (MISP's ShadowAttribute): a user's suggested new Attribute, edit of an Attribute, or
/// deletion of one, waiting for someone who may modify the Event to accept or discard it.
///
/// Like MISP's row it is a complete copy of the attribute as it would be after acceptance (edits
/// start from the attribute's fields and replace the proposed ones), so it can be rendered as
/// `ShadowAttribute` on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: i64,
    /// A new attribute: the uuid it will have. An edit or deletion: the target attribute's uuid (as in
    /// MISP, so several proposals may share a uuid; the id is the key).
    pub uuid: Uuid,
    pub event_id: i64,
    pub event_uuid: Uuid,
    /// 0 for a new attribute; otherwise the id of the attribute edited or deleted.
    pub old_id: i64,
    /// The Event's creator organisation when the proposal was made (MISP's `event_org_id`; MISP fills
    /// it from `org_id` on add and `orgc_id` on edit — we always use the creator, who decides).
    pub event_org_id: i64,
    pub category: String,
    #[serde(rename = "type")]
    pub attr_type: String,
    pub value1: String,
    pub value2: String,
    pub to_ids: bool,
    pub comment: String,
    pub disable_correlation: bool,
    /// Microseconds since the epoch.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// A proposal to delete the attribute `old_id`.
    pub proposal_to_delete: bool,
    /// The proposing organisation and user.
    pub org_id: i64,
    pub user_id: i64,
    pub email: String,
    pub timestamp: i64,
    /// Beyond MISP: the target attribute's revision when the proposal was made
    /// ([`EventState::attribute_revision`](super::EventState::attribute_revision); 0 for a new attribute).
    /// Accepting is refused while the attribute's revision differs: a newer edit is never overwritten.
    pub base_revision: u64,
    /// The target attribute's timestamp when the proposal was made (0 for a new attribute), for display.
    pub base_timestamp: i64,
}

impl Proposal {
    /// MISP's virtual `value`: `value1` or `value1|value2` for composite types.
    pub fn value(&self) -> String {
        if self.value2.is_empty() { self.value1.clone() } else { format!("{}|{}", self.value1, self.value2) }
    }

    /// Whether it proposes a new attribute (MISP: `old_id == 0`, listed in `Event.ShadowAttribute[]`;
    /// edits and deletions are listed under their `Attribute[].ShadowAttribute[]`).
    pub fn is_new_attribute(&self) -> bool {
        self.old_id == 0
    }
}

/// A pending request that another organisation take an Event over (MISP's EventDelegation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: i64,
    pub event_id: i64,
    /// The organisation asked to take the Event over (it sees the Event while the request is pending).
    pub org_id: i64,
    pub requester_org_id: i64,
    pub requester_user_id: i64,
    pub message: String,
    /// The distribution the Event gets on acceptance: -1 "recipient decides" (kept as it is), else 0–4.
    /// MISP stores it but never applies it; Cairn applies it (with `sharing_group_id` for 4).
    pub distribution: i8,
    pub sharing_group_id: i64,
    pub timestamp: i64,
}

/// The discussion Thread of an Event (MISP keeps one per Event, created by its first Post).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub id: i64,
    pub event_id: i64,
    /// MISP's `Discussion about Event #<id> (<info>)`.
    pub title: String,
    /// Who started it (the first poster).
    pub org_id: i64,
    pub user_id: i64,
    pub date_created: i64,
}

/// A Post in an Event's discussion Thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub id: i64,
    pub thread_id: i64,
    pub event_id: i64,
    /// The author and their organisation when posting.
    pub user_id: i64,
    pub org_id: i64,
    pub contents: String,
    /// The post replied to or quoted (MISP's `post_id`; 0: none).
    pub post_id: i64,
    pub date_created: i64,
    pub date_modified: i64,
}
