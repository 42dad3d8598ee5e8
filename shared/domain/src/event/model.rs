//! The records an Event stream holds: the Event's metadata, its Attributes, Objects, Object references
//! and tag links. These are exactly what the changes carry (serialized as they are here).

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
    pub fn access(&self) -> EventAccess {
        EventAccess {
            org_id: self.org_id,
            distribution: self.distribution,
            sharing_group_id: self.sharing_group_id,
            published: self.published,
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
