//! Every Event of a log folded in memory, for bulk rebuilds of the read models.
//!
//! Each Event stream is folded with [`evolve`], the write side's own fold. Two facts come from other
//! streams, and the read models hold them on the Event: a deleted tag leaves every Event and attribute
//! (MISP removes its links with it), and a sighting moves its Event's `sighting_timestamp`.
//!
//! [`Fold::take`] keeps what it holds and hands back every change the folded Events do not describe
//! (directory, tags, collaboration records, sightings, exclusions…): a rebuild applies those through
//! the projectors' own incremental code, then writes the Events' rows from [`Fold::live`] in bulk.

use super::model::EventMeta;
use super::state::{EventState, evolve, evolve_owned};
use crate::Change;
use crate::stream;
use std::collections::HashMap;
use uuid::Uuid;

/// The Events of a log, folded.
#[derive(Default)]
pub struct Fold {
    events: HashMap<Uuid, EventState>,
    /// `sighting_timestamp` of every live Event by id: the largest of its records' and its sightings'
    /// since the Event (re)appeared.
    sighting_timestamps: HashMap<i64, i64>,
}

/// A live Event of the fold.
pub struct Folded<'a> {
    pub meta: &'a EventMeta,
    pub state: &'a EventState,
    pub sighting_timestamp: i64,
}

impl Folded<'_> {
    /// Attributes not (soft) deleted.
    pub fn attribute_count(&self) -> i64 {
        self.state.attributes.values().filter(|a| !a.deleted).count() as i64
    }

    /// The organisation a pending Delegation targets, 0 without one.
    pub fn delegate_org_id(&self) -> i64 {
        self.state.delegation.as_ref().map_or(0, |d| d.org_id)
    }
}

/// Whether the folded Event describes everything a read model takes from this change.
fn held(change: &Change) -> bool {
    matches!(
        change,
        Change::EventCreated(_)
            | Change::EventUpdated(_)
            | Change::EventTouched { .. }
            | Change::EventPublished { .. }
            | Change::EventUnpublished {}
            | Change::EventSynced { .. }
            | Change::EventTagged(_)
            | Change::EventUntagged { .. }
            | Change::AttributeAdded(_)
            | Change::AttributeUpdated(_)
            | Change::AttributeDeleted { .. }
            | Change::AttributeRestored { .. }
            | Change::AttributeTagged { .. }
            | Change::AttributeUntagged { .. }
            | Change::ObjectAdded(_)
            | Change::ObjectUpdated(_)
            | Change::ObjectDeleted { .. }
            | Change::ReferenceAdded(_)
            | Change::ReferenceDeleted { .. }
    )
}

impl Fold {
    /// Folds one change of the log (in position order). Returns it back unless the folded Events
    /// describe all of it.
    pub fn take(&mut self, stream_type: &str, stream_id: Uuid, change: Change) -> Option<Change> {
        if stream_type != stream::EVENT {
            self.across(&change);
            return Some(change);
        }
        let state = self.events.entry(stream_id).or_default();
        match &change {
            // The row keeps the larger sighting timestamp while the Event lives (the indexer's upsert).
            Change::EventCreated(m) | Change::EventUpdated(m) => {
                let before = self.sighting_timestamps.get(&m.id).copied().filter(|_| state.live().is_some());
                self.sighting_timestamps.insert(m.id, before.map_or(m.sighting_timestamp, |t| t.max(m.sighting_timestamp)));
            }
            Change::EventDeleted { id } => {
                self.sighting_timestamps.remove(id);
            }
            _ => {}
        }
        if held(&change) {
            // Most of a log: moved into the state, not copied.
            *state = evolve_owned(std::mem::take(state), change);
            None
        } else {
            *state = evolve(std::mem::take(state), &change);
            Some(change)
        }
    }

    /// What a change of another stream does to the folded Events.
    fn across(&mut self, change: &Change) {
        match change {
            Change::TagDeleted { id } => {
                for state in self.events.values_mut() {
                    state.tags.retain(|t| t.tag_id != *id);
                    for a in state.attributes.values_mut() {
                        a.tags.retain(|t| t.tag_id != *id);
                    }
                }
            }
            Change::SightingAdded(s) => {
                if let Some(t) = self.sighting_timestamps.get_mut(&s.event_id) {
                    *t = (*t).max(s.date_sighting);
                }
            }
            _ => {}
        }
    }

    /// The live Events (created, not deleted), in no particular order.
    pub fn live(&self) -> impl Iterator<Item = Folded<'_>> {
        self.events.values().filter_map(|state| {
            let meta = state.live()?;
            Some(Folded { meta, state, sighting_timestamp: self.sighting_timestamps.get(&meta.id).copied().unwrap_or(meta.sighting_timestamp) })
        })
    }

    /// The live Events in id order (the order the incremental projectors create their rows in).
    pub fn live_in_order(&self) -> Vec<Folded<'_>> {
        let mut live: Vec<Folded<'_>> = self.live().collect();
        live.sort_unstable_by_key(|f| f.meta.id);
        live
    }

    /// Adds the Events of a fold of other streams (another part of the same log).
    pub fn merge(&mut self, other: Fold) {
        self.events.extend(other.events);
        self.sighting_timestamps.extend(other.sighting_timestamps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::model::{Attribute, TagLink};
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn meta(id: i64, sighting_timestamp: i64) -> EventMeta {
        from(json!({"id": id, "uuid": Uuid::from_u128(id as u128), "info": "e", "date": "2026-01-01", "threat_level_id": 1,
            "analysis": 0, "distribution": 1, "sharing_group_id": 0, "org_id": 1, "orgc_id": 1, "user_id": 1, "published": false,
            "publish_timestamp": 0, "timestamp": 1, "sighting_timestamp": sighting_timestamp}))
    }

    fn attribute(id: i64, event_id: i64, tags: &[i64]) -> Attribute {
        let tags: Vec<serde_json::Value> = tags.iter().map(|t| json!({"tag_id": t})).collect();
        from(json!({"id": id, "uuid": Uuid::from_u128(1000 + id as u128), "event_id": event_id, "category": "Network activity",
            "type": "domain", "value1": format!("a{id}.example"), "to_ids": true, "distribution": 5, "timestamp": 1, "tags": tags}))
    }

    fn tag(tag_id: i64) -> TagLink {
        from(json!({"tag_id": tag_id}))
    }

    fn sighting(event_id: i64, date_sighting: i64) -> Change {
        Change::SightingAdded(from(json!({"id": date_sighting, "uuid": Uuid::from_u128(7), "event_id": event_id,
            "event_uuid": Uuid::from_u128(event_id as u128), "attribute_id": 10, "attribute_uuid": Uuid::from_u128(1010), "org_id": 1,
            "user_id": 1, "type": 0, "source": "", "date_sighting": date_sighting})))
    }

    #[test]
    fn events_are_folded_and_other_changes_handed_back() {
        let mut fold = Fold::default();
        let e = Uuid::from_u128(1);
        assert!(fold.take(stream::EVENT, e, Change::EventCreated(meta(1, 5))).is_none());
        assert!(fold.take(stream::EVENT, e, Change::AttributeAdded(attribute(10, 1, &[7, 8]))).is_none());
        assert!(fold.take(stream::EVENT, e, Change::AttributeAdded(attribute(11, 1, &[]))).is_none());
        assert!(fold.take(stream::EVENT, e, Change::AttributeDeleted { id: 11, hard: false, timestamp: 9 }).is_none());
        assert!(fold.take(stream::EVENT, e, Change::EventTagged(tag(7))).is_none());
        let delegation = Change::DelegationRequested(from(json!({"id": 3, "event_id": 1, "org_id": 4, "requester_org_id": 1,
            "requester_user_id": 1, "message": "", "distribution": -1, "sharing_group_id": 0, "timestamp": 2})));
        assert!(fold.take(stream::EVENT, e, delegation).is_some(), "the delegation record is the projector's to write");
        // A deleted tag leaves the Event and its attributes; a sighting moves the Event's timestamp.
        assert!(fold.take(stream::TAG, Uuid::from_u128(70), Change::TagDeleted { id: 7 }).is_some());
        assert!(fold.take(stream::SIGHTINGS, Uuid::from_u128(2), sighting(1, 40)).is_some());
        assert!(fold.take(stream::SIGHTINGS, Uuid::from_u128(2), sighting(1, 30)).is_some());
        let live: Vec<Folded> = fold.live().collect();
        assert_eq!(live.len(), 1);
        let f = &live[0];
        assert_eq!((f.sighting_timestamp, f.attribute_count(), f.delegate_org_id()), (40, 1, 4));
        assert!(f.state.tags.is_empty());
        assert_eq!(f.state.attributes[&10].tags.iter().map(|t| t.tag_id).collect::<Vec<_>>(), vec![8]);
    }

    #[test]
    fn an_edit_keeps_the_larger_sighting_timestamp_and_a_deleted_event_starts_afresh() {
        let mut fold = Fold::default();
        let e = Uuid::from_u128(1);
        fold.take(stream::EVENT, e, Change::EventCreated(meta(1, 5)));
        fold.take(stream::SIGHTINGS, Uuid::from_u128(2), sighting(1, 50));
        fold.take(stream::EVENT, e, Change::EventUpdated(meta(1, 6)));
        assert_eq!(fold.live().next().map(|f| f.sighting_timestamp), Some(50));
        fold.take(stream::EVENT, e, Change::EventDeleted { id: 1 });
        assert_eq!(fold.live().count(), 0);
        fold.take(stream::SIGHTINGS, Uuid::from_u128(2), sighting(1, 60));
        fold.take(stream::EVENT, e, Change::EventCreated(meta(1, 6)));
        assert_eq!(fold.live().next().map(|f| f.sighting_timestamp), Some(6), "a copy shared again starts from its own record");
    }
}
