//! An Event's state folded from its stream, and `evolve`.

use super::model::{Attribute, Delegation, EventMeta, Object, ObjectReference, Post, Proposal, TagLink, Thread};
use crate::acl::EventAccess;
use crate::change::Change;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The key of MISP's duplicate rule: same type, category and value in one Event (standalone,
/// non-deleted attributes only).
pub type DuplicateKey = (String, String, String, String);

/// Everything an Event stream holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventState {
    pub meta: Option<EventMeta>,
    pub deleted: bool,
    pub tags: Vec<TagLink>,
    /// By id: id order is creation order.
    pub attributes: BTreeMap<i64, Attribute>,
    pub attribute_ids: HashMap<Uuid, i64>,
    pub objects: BTreeMap<i64, Object>,
    pub object_ids: HashMap<Uuid, i64>,
    pub references: BTreeMap<i64, ObjectReference>,
    pub reference_ids: HashMap<Uuid, i64>,
    duplicates: HashMap<DuplicateKey, i64>,
    /// How many times each attribute's content changed (added = 1); see [`Self::attribute_revision`].
    revisions: HashMap<i64, u64>,
    /// Pending Proposals by id. Accepted and discarded ones leave the state (the stream and the
    /// `rm.shadow_attributes` read model keep them).
    pub proposals: BTreeMap<i64, Proposal>,
    /// The pending Delegation request, if any (MISP allows one per Event).
    pub delegation: Option<Delegation>,
    /// The Event's discussion Thread, once its first Post exists (gone again when its last Post is deleted).
    pub thread: Option<Thread>,
    /// The Thread's live Posts by id.
    pub posts: BTreeMap<i64, Post>,
    /// For a copy of a peer's Event: where its state comes from, and the server it last came through.
    pub origin: Option<super::sync::SyncOrigin>,
    pub synced_from: Option<i64>,
}

pub fn duplicate_key(a: &Attribute) -> DuplicateKey {
    (a.attr_type.clone(), a.category.clone(), a.value1.clone(), a.value2.clone())
}

impl EventState {
    /// The live Event (exists and not deleted).
    pub fn live(&self) -> Option<&EventMeta> {
        self.meta.as_ref().filter(|_| !self.deleted)
    }

    /// The Event's access fields, including the organisation a pending Delegation targets. Every
    /// visibility decision on a folded Event goes through this.
    pub fn access(&self) -> Option<EventAccess> {
        let meta = self.meta.as_ref()?;
        Some(EventAccess { delegate_org_id: self.delegation.as_ref().map_or(0, |d| d.org_id), ..meta.access() })
    }

    /// An attribute's revision: 1 when added, plus one for every later change of its record (edit,
    /// deletion, restoration, a non-local tag). Local tag links are not content (they do not move MISP
    /// timestamps either). 0 for an unknown attribute. Beyond MISP, and unlike the attribute's
    /// `timestamp` (seconds, sometimes client-supplied) it cannot stand still across two edits: a
    /// Proposal records it as its base and acceptance compares.
    pub fn attribute_revision(&self, id: i64) -> u64 {
        self.revisions.get(&id).copied().unwrap_or(0)
    }

    fn revise(&mut self, id: i64) {
        *self.revisions.entry(id).or_insert(0) += 1;
    }

    /// The standalone, non-deleted attribute with the same type, category and value, if any.
    pub fn duplicate_of(&self, a: &Attribute) -> Option<&Attribute> {
        self.duplicates.get(&duplicate_key(a)).and_then(|id| self.attributes.get(id))
    }

    pub fn attribute_by_uuid(&self, uuid: &Uuid) -> Option<&Attribute> {
        self.attribute_ids.get(uuid).and_then(|id| self.attributes.get(id))
    }

    pub fn object_by_uuid(&self, uuid: &Uuid) -> Option<&Object> {
        self.object_ids.get(uuid).and_then(|id| self.objects.get(id))
    }

    /// Attributes of an Object, in id order.
    pub fn object_attributes(&self, object_id: i64) -> impl Iterator<Item = &Attribute> {
        self.attributes.values().filter(move |a| a.object_id == object_id)
    }

    fn index_attribute(&mut self, a: &Attribute) {
        if a.object_id == 0 && !a.deleted {
            self.duplicates.insert(duplicate_key(a), a.id);
        }
    }

    fn unindex_attribute(&mut self, a: &Attribute) {
        let key = duplicate_key(a);
        if self.duplicates.get(&key) == Some(&a.id) {
            self.duplicates.remove(&key);
        }
    }

    /// An attribute record (added or updated): a new revision.
    fn add_attribute(&mut self, a: Attribute) {
        self.revise(a.id);
        self.put_attribute(a);
    }

    fn put_attribute(&mut self, a: Attribute) {
        if let Some(old) = self.attributes.get(&a.id).cloned() {
            self.unindex_attribute(&old);
        }
        self.index_attribute(&a);
        self.attribute_ids.insert(a.uuid, a.id);
        self.attributes.insert(a.id, a);
    }
}

fn touch(state: &mut EventState, timestamp: i64) {
    if let Some(meta) = state.meta.as_mut() {
        meta.timestamp = timestamp;
        meta.published = false;
    }
}

/// [`evolve`] taking the change: an added attribute moves into the state instead of being copied
/// (a bulk fold of the log adds millions).
pub fn evolve_owned(mut state: EventState, change: Change) -> EventState {
    match change {
        Change::AttributeAdded(a) => {
            state.add_attribute(a);
            state
        }
        other => evolve(state, &other),
    }
}

/// Folds one change into the Event's state. Never fails; changes of other aggregates are ignored.
pub fn evolve(mut state: EventState, change: &Change) -> EventState {
    match change {
        // Created is the first change of a stream, except for a withdrawn copy of a peer's Event
        // shared again: it starts afresh.
        Change::EventCreated(meta) => state = EventState { meta: Some(meta.clone()), ..EventState::default() },
        Change::EventUpdated(meta) => state.meta = Some(meta.clone()),
        Change::EventTouched { timestamp } => touch(&mut state, *timestamp),
        Change::EventPublished { publish_timestamp } => {
            if let Some(meta) = state.meta.as_mut() {
                meta.published = true;
                meta.publish_timestamp = *publish_timestamp;
            }
        }
        Change::EventUnpublished {} => {
            if let Some(meta) = state.meta.as_mut() {
                meta.published = false;
            }
        }
        Change::EventDeleted { .. } => state.deleted = true,
        Change::EventSynced { server_id, origin } => {
            state.origin = Some(*origin);
            state.synced_from = Some(*server_id);
        }
        Change::EventTagged(link) => {
            state.tags.retain(|t| t.tag_id != link.tag_id);
            state.tags.push(link.clone());
        }
        Change::EventUntagged { tag_id, .. } => state.tags.retain(|t| t.tag_id != *tag_id),
        Change::AttributeAdded(a) | Change::AttributeUpdated(a) => state.add_attribute(a.clone()),
        Change::AttributeDeleted { id, hard, timestamp } => {
            if let Some(a) = state.attributes.get(id).cloned() {
                state.revise(*id);
                state.unindex_attribute(&a);
                if *hard {
                    state.attributes.remove(id);
                    state.attribute_ids.remove(&a.uuid);
                } else if let Some(a) = state.attributes.get_mut(id) {
                    a.deleted = true;
                    a.timestamp = *timestamp;
                }
            }
        }
        Change::AttributeRestored { id, timestamp } => {
            if let Some(mut a) = state.attributes.get(id).cloned() {
                state.revise(*id);
                a.deleted = false;
                a.timestamp = *timestamp;
                state.put_attribute(a);
            }
        }
        Change::AttributeTagged { attribute_id, tag } => {
            if let Some(a) = state.attributes.get_mut(attribute_id) {
                a.tags.retain(|t| t.tag_id != tag.tag_id);
                a.tags.push(tag.clone());
                if !tag.local {
                    state.revise(*attribute_id);
                }
            }
        }
        Change::AttributeUntagged { attribute_id, tag_id, local } => {
            if let Some(a) = state.attributes.get_mut(attribute_id) {
                a.tags.retain(|t| t.tag_id != *tag_id);
                if !local {
                    state.revise(*attribute_id);
                }
            }
        }
        Change::ObjectAdded(o) | Change::ObjectUpdated(o) => {
            state.object_ids.insert(o.uuid, o.id);
            state.objects.insert(o.id, o.clone());
        }
        Change::ObjectDeleted { id, hard, timestamp } => {
            if *hard {
                if let Some(o) = state.objects.remove(id) {
                    state.object_ids.remove(&o.uuid);
                }
            } else if let Some(o) = state.objects.get_mut(id) {
                o.deleted = true;
                o.timestamp = *timestamp;
            }
        }
        Change::ReferenceAdded(r) => {
            state.reference_ids.insert(r.uuid, r.id);
            state.references.insert(r.id, r.clone());
        }
        Change::ReferenceDeleted { id, hard, timestamp } => {
            if *hard {
                if let Some(r) = state.references.remove(id) {
                    state.reference_ids.remove(&r.uuid);
                }
            } else if let Some(r) = state.references.get_mut(id) {
                r.deleted = true;
                r.timestamp = *timestamp;
            }
        }
        Change::ProposalAdded(p) => {
            state.proposals.insert(p.id, p.clone());
        }
        Change::ProposalAccepted { id, .. } | Change::ProposalDiscarded { id, .. } => {
            state.proposals.remove(id);
        }
        Change::DelegationRequested(d) => state.delegation = Some(d.clone()),
        Change::DelegationAccepted { id, .. } | Change::DelegationDiscarded { id, .. }
            if state.delegation.as_ref().is_some_and(|d| d.id == *id) =>
        {
            state.delegation = None;
        }
        Change::ThreadStarted(t) => state.thread = Some(t.clone()),
        Change::ThreadDeleted { id, .. } if state.thread.as_ref().is_some_and(|t| t.id == *id) => {
            state.thread = None;
            state.posts.clear();
        }
        Change::PostAdded(p) => {
            state.posts.insert(p.id, p.clone());
        }
        Change::PostEdited { id, contents, date_modified } => {
            if let Some(p) = state.posts.get_mut(id) {
                p.contents = contents.clone();
                p.date_modified = *date_modified;
            }
        }
        Change::PostDeleted { id, .. } => {
            state.posts.remove(id);
        }
        _ => {}
    }
    state
}
