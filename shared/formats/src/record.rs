//! The plain records every writer reads: one MISP Event (its metadata, no attributes) and one
//! Attribute row carrying what MISP joins onto it for exports (its Object's uuid, name and
//! meta-category, its tag names).
//!
//! The records are deliberately flat and already authorised: the caller has applied ACLs,
//! filters, allowedlists and warninglists, and decides the order (MISP streams restSearch
//! results in ascending id order). Writers never look anything up.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One MISP Attribute as the exports see it (`attributes` row plus its Object and tag names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub id: i64,
    pub uuid: Uuid,
    /// The owning event's id. Kept on the row because MISP's CSV prints it from the attribute.
    #[serde(default)]
    pub event_id: i64,
    /// 0 when the attribute is not part of an Object.
    #[serde(default)]
    pub object_id: i64,
    #[serde(default)]
    pub object_relation: Option<String>,
    #[serde(default)]
    pub object_uuid: Option<Uuid>,
    #[serde(default)]
    pub object_name: Option<String>,
    #[serde(default)]
    pub object_meta_category: Option<String>,
    pub category: String,
    /// MISP's attribute type (`ip-dst`, `filename|md5`, …).
    pub attr_type: String,
    /// The first half of the value (the whole value for non-composite types).
    pub value1: String,
    /// The second half of a composite value, or `""`.
    #[serde(default)]
    pub value2: String,
    pub to_ids: bool,
    #[serde(default)]
    pub comment: String,
    /// Unix seconds.
    pub timestamp: i64,
    #[serde(default)]
    pub distribution: u8,
    #[serde(default)]
    pub sharing_group_id: i64,
    #[serde(default)]
    pub deleted: bool,
    /// Microseconds since the epoch.
    #[serde(default)]
    pub first_seen: Option<i64>,
    /// Microseconds since the epoch.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Attribute tag names, in MISP's order (tag link id).
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Attribute {
    /// MISP's `value` virtual field: `value1` alone, or `value1|value2` for composite types.
    pub fn value(&self) -> Cow<'_, str> {
        if self.value2.is_empty() {
            Cow::Borrowed(&self.value1)
        } else {
            Cow::Owned(format!("{}|{}", self.value1, self.value2))
        }
    }

    /// Whether the attribute sits in a MISP Object.
    pub fn in_object(&self) -> bool {
        self.object_uuid.is_some()
    }
}

/// One MISP Event's metadata as the exports see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub uuid: Uuid,
    pub info: String,
    /// `YYYY-MM-DD`, as MISP stores it.
    pub date: String,
    /// 1 High, 2 Medium, 3 Low, 4 Undefined.
    pub threat_level_id: u8,
    pub analysis: u8,
    pub distribution: u8,
    pub published: bool,
    /// Unix seconds.
    pub timestamp: i64,
    /// Unix seconds; 0 when never published.
    pub publish_timestamp: i64,
    /// The owner org (`Event.org_id`).
    pub org_name: String,
    pub org_uuid: Uuid,
    /// The creator org (`Event.orgc_id`).
    pub orgc_name: String,
    pub orgc_uuid: Uuid,
    /// Event tag names, in MISP's order.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Event {
    /// MISP's `threat_levels.name` for the event's level (`Event::$threatLevels` seed data).
    pub fn threat_level_name(&self) -> &'static str {
        match self.threat_level_id {
            1 => "High",
            2 => "Medium",
            3 => "Low",
            _ => "Undefined",
        }
    }
}

/// Which restSearch scope produced the rows. A few formats print slightly different things per
/// scope (MISP builds Event-scope rows from `Event` documents and Attribute-scope rows from
/// attribute fetches); the differences are documented where they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// `/events/restSearch`.
    Event,
    /// `/attributes/restSearch`.
    #[default]
    Attribute,
}

/// Unix seconds as a UTC datetime; out-of-range values clamp to the epoch.
pub(crate) fn utc(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Microseconds since the epoch as a UTC datetime; out-of-range values clamp to the epoch.
pub(crate) fn utc_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
