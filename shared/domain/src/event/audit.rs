//! Which changes of an Event's history a viewer may read. Each change is judged by the one access rule
//! ([`crate::acl`]) twice: on the Event as it was when the change happened (right after it, or — for a
//! change that removes what it concerns — right before it), and on the Event as it is now. A change
//! never shows more than the element it is about: an org-only attribute's history stays with its
//! organisation even inside a community Event; a private Event's history stays private after it is
//! shared; and what was shared once but is private now stays private.

use super::model::Object;
use super::state::EventState;
use crate::acl::{self, AccessSettings, Viewer};
use crate::change::Change;

fn event(v: &Viewer, s: &EventState, settings: &AccessSettings) -> bool {
    s.access().is_some_and(|e| acl::event_visible(v, &e, settings))
}

fn object(v: &Viewer, s: &EventState, id: i64, settings: &AccessSettings) -> bool {
    match (s.access(), s.objects.get(&id)) {
        (Some(e), Some(o)) => acl::object_visible(v, &e, &o.access(), settings),
        _ => false,
    }
}

fn attribute(v: &Viewer, s: &EventState, id: i64, settings: &AccessSettings) -> bool {
    let (Some(e), Some(a)) = (s.access(), s.attributes.get(&id)) else { return false };
    let o = (a.object_id != 0).then(|| s.objects.get(&a.object_id).map(Object::access));
    match o {
        Some(None) => false, // its Object is unknown: nothing to judge it by
        Some(Some(o)) => acl::attribute_visible(v, &e, &a.access(), Some(&o), settings),
        None => acl::attribute_visible(v, &e, &a.access(), None, settings),
    }
}

fn proposal(v: &Viewer, s: &EventState, old_id: i64, settings: &AccessSettings) -> bool {
    if old_id == 0 { event(v, s, settings) } else { attribute(v, s, old_id, settings) }
}

/// May `viewer` read `change`, given the Event `before` and `after` it?
pub fn change_visible(viewer: &Viewer, settings: &AccessSettings, before: &EventState, after: &EventState, change: &Change) -> bool {
    if viewer.site_admin {
        return true;
    }
    let v = viewer;
    let s = settings;
    match change {
        Change::AttributeAdded(a) | Change::AttributeUpdated(a) => attribute(v, after, a.id, s),
        Change::AttributeRestored { id, .. } => attribute(v, after, *id, s),
        Change::AttributeDeleted { id, .. } => attribute(v, before, *id, s),
        Change::AttributeTagged { attribute_id, .. } | Change::AttributeUntagged { attribute_id, .. } => attribute(v, after, *attribute_id, s),
        Change::ObjectAdded(o) | Change::ObjectUpdated(o) => object(v, after, o.id, s),
        Change::ObjectDeleted { id, .. } => object(v, before, *id, s),
        Change::ReferenceAdded(r) => object(v, after, r.object_id, s),
        Change::ReferenceDeleted { id, .. } => before.references.get(id).is_some_and(|r| object(v, before, r.object_id, s)),
        Change::ProposalAdded(p) => proposal(v, after, p.old_id, s),
        Change::ProposalAccepted { id, .. } | Change::ProposalDiscarded { id, .. } => {
            before.proposals.get(id).is_some_and(|p| proposal(v, before, p.old_id, s))
        }
        // A reporter contact is between the sender and the Event's creator organisation.
        Change::EventReporterContacted { org_id, .. } => {
            event(v, after, s) && (v.org_id == *org_id || after.meta.as_ref().is_some_and(|m| m.orgc_id == v.org_id))
        }
        // A delegation concerns the owner and the organisation asked to take the Event over.
        Change::DelegationRequested(d) => event(v, after, s) && (v.org_id == d.org_id || v.org_id == d.requester_org_id),
        Change::DelegationAccepted { .. } | Change::DelegationDiscarded { .. } => before
            .delegation
            .as_ref()
            .is_some_and(|d| (event(v, before, s) || event(v, after, s)) && (v.org_id == d.org_id || v.org_id == d.requester_org_id)),
        Change::EventDeleted { .. } => event(v, before, s),
        _ => event(v, after, s) || (after.access().is_none() && event(v, before, s)),
    }
}

/// The element a change concerns, if it is an attribute or an Object.
fn element(change: &Change) -> Option<(bool, i64)> {
    match change {
        Change::AttributeAdded(a) | Change::AttributeUpdated(a) => Some((true, a.id)),
        Change::AttributeRestored { id, .. } | Change::AttributeDeleted { id, .. } => Some((true, *id)),
        Change::AttributeTagged { attribute_id, .. } | Change::AttributeUntagged { attribute_id, .. } => Some((true, *attribute_id)),
        Change::ObjectAdded(o) | Change::ObjectUpdated(o) => Some((false, o.id)),
        Change::ObjectDeleted { id, .. } => Some((false, *id)),
        Change::ReferenceAdded(r) => Some((false, r.object_id)),
        _ => None,
    }
}

/// May `viewer` still read `change` today: the Event as it is `now` must be visible to them, and so must
/// the attribute or Object the change is about, if it still exists. Audit answers require both this
/// and [`change_visible`]: what was shared once but is private now stays private.
pub fn change_visible_now(viewer: &Viewer, settings: &AccessSettings, now: &EventState, change: &Change) -> bool {
    if viewer.site_admin {
        return true;
    }
    if !event(viewer, now, settings) {
        return false;
    }
    match element(change) {
        Some((true, id)) if now.attributes.contains_key(&id) => attribute(viewer, now, id, settings),
        Some((false, id)) if now.objects.contains_key(&id) => object(viewer, now, id, settings),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::model::{Attribute, EventMeta};
    use crate::event::state::evolve;

    fn meta(distribution: u8) -> EventMeta {
        serde_json::from_value(serde_json::json!({
            "id": 1, "uuid": "00000000-0000-0000-0000-0000000000e1", "info": "i", "date": "2024-01-01", "threat_level_id": 4,
            "analysis": 0, "distribution": distribution, "sharing_group_id": 0, "org_id": 1, "orgc_id": 1, "user_id": 1,
            "published": false, "publish_timestamp": 0, "timestamp": 1, "sighting_timestamp": 0, "proposal_email_lock": false,
            "locked": false, "disable_correlation": false, "extends_uuid": ""
        }))
        .expect("meta")
    }

    fn attribute(id: i64, distribution: u8) -> Attribute {
        serde_json::from_value(serde_json::json!({
            "id": id, "uuid": format!("00000000-0000-0000-0000-{id:012}"), "event_id": 1, "object_id": 0, "object_relation": null,
            "category": "Network activity", "type": "ip-dst", "value1": "10.0.0.1", "value2": "", "to_ids": true, "comment": "",
            "distribution": distribution, "sharing_group_id": 0, "timestamp": 1, "deleted": false, "disable_correlation": false,
            "first_seen": null, "last_seen": null, "tags": []
        }))
        .expect("attribute")
    }

    fn viewer(org_id: i64) -> Viewer {
        Viewer { org_id, site_admin: false, sharing_groups: Default::default() }
    }

    /// Folds `changes` and answers, per change, whether `v` may read it.
    fn visible(v: &Viewer, changes: &[Change]) -> Vec<bool> {
        let settings = AccessSettings::default();
        let mut state = EventState::default();
        let mut out = Vec::new();
        for c in changes {
            let next = evolve(state.clone(), c);
            out.push(change_visible(v, &settings, &state, &next, c));
            state = next;
        }
        out
    }

    #[test]
    fn a_private_events_history_stays_private_after_it_is_shared() {
        let changes = [Change::EventCreated(meta(0)), Change::AttributeAdded(attribute(1, 5)), Change::EventUpdated(meta(1))];
        assert_eq!(visible(&viewer(1), &changes), [true, true, true], "the owner sees everything");
        assert_eq!(visible(&viewer(2), &changes), [false, false, true], "another org only what happened once it could see");
        assert_eq!(visible(&Viewer { site_admin: true, ..viewer(3) }, &changes), [true, true, true]);
    }

    #[test]
    fn what_was_shared_once_but_is_private_now_stays_private() {
        let changes = [Change::EventCreated(meta(1)), Change::AttributeAdded(attribute(1, 5)), Change::EventUpdated(meta(0))];
        let settings = AccessSettings::default();
        let now = changes.iter().fold(EventState::default(), evolve);
        assert_eq!(visible(&viewer(2), &changes), [true, true, false], "visible at the time");
        assert!(changes.iter().all(|c| !change_visible_now(&viewer(2), &settings, &now, c)), "but not any more");
        assert!(changes.iter().all(|c| change_visible_now(&viewer(1), &settings, &now, c)));
    }

    #[test]
    fn an_org_only_attribute_stays_with_its_organisation_even_when_deleted() {
        let changes = [
            Change::EventCreated(meta(1)),
            Change::AttributeAdded(attribute(1, 0)),
            Change::AttributeAdded(attribute(2, 5)),
            Change::AttributeDeleted { id: 1, hard: true, timestamp: 2 },
        ];
        assert_eq!(visible(&viewer(2), &changes), [true, false, true, false]);
        assert_eq!(visible(&viewer(1), &changes), [true, true, true, true]);
    }
}
