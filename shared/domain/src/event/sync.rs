//! An Event between instances: what one instance shares with a peer ([`outward`], MISP's push rules
//! and downgrades from [`crate::sync_rules`]) and how the receiving instance turns what it was offered
//! into changes of its own copy ([`mirror`]).
//!
//! A copy is exact: the receiver's changes bring its copy to the offered state (attributes, Objects,
//! references and tags that are gone on the sender are deleted here), keep the sender's timestamps,
//! and record where the state comes from ([`SyncOrigin`]: the instance that owns the Event and its
//! version there). Offers older than the copy are ignored, so a copy never moves backwards when the
//! same Event arrives over two paths; an identical offer writes nothing.

use super::decide::{IdPool, check_meta_fields, check_seen, check_type_category};
use super::model::{Attribute, EventMeta, Object, ObjectReference, TagLink};
use super::state::EventState;
use crate::change::Change;
use crate::error::DomainError;
use crate::sharing_group::SharingGroupState;
use crate::sync_rules::{self, Peer};
use crate::types::TypeCatalogue;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Where an Event's state comes from: the instance that owns it and the Event's stream version there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOrigin {
    pub instance: Uuid,
    pub version: i64,
}

/// What an instance shares of one Event with one peer: the Event downgraded, with only the elements
/// the peer may receive (ids and sharing-group ids are the sender's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    pub meta: EventMeta,
    pub tags: Vec<TagLink>,
    pub objects: Vec<Object>,
    pub attributes: Vec<Attribute>,
    pub references: Vec<ObjectReference>,
    pub origin: SyncOrigin,
}

/// The sharing groups an Event and its elements use, by id.
pub type Groups = BTreeMap<i64, SharingGroupState>;

/// What `here` (this instance, at stream `version` of the Event) shares of `state` with `peer`
/// (whose instance uuid is `peer_instance` when it said so). `None`: nothing — the Event is not
/// shareable with the peer, was never published, or comes from the peer itself.
///
/// An Event once published keeps being shared as it changes (so edits, deletions and an unpublish
/// reach the peer at once; MISP waits for the next publish).
pub fn outward(state: &EventState, version: i64, here: Uuid, peer: &Peer, peer_instance: Option<Uuid>, groups: &Groups) -> Option<Shared> {
    let meta = state.live()?;
    let origin = state.origin.unwrap_or(SyncOrigin { instance: here, version });
    if peer_instance == Some(origin.instance) {
        return None;
    }
    let sg = |id: i64| groups.get(&id);
    let shared_once = meta.published || meta.publish_timestamp > 0;
    if !sync_rules::event_pushable(shared_once, meta.distribution, sg(meta.sharing_group_id), peer) {
        return None;
    }
    let mut out = meta.clone();
    out.distribution = sync_rules::event_distribution_for_push(meta.distribution, peer);
    // Who owns and who created it here are this instance's business (MISP strips them too).
    out.org_id = 0;
    out.user_id = 0;
    let keep_tag = |t: &TagLink| peer.internal || !t.local;
    let tags = state.tags.iter().filter(|t| keep_tag(t)).cloned().collect();
    let mut objects = Vec::new();
    for o in state.objects.values().filter(|o| !o.deleted) {
        if let Some(d) = sync_rules::element_distribution_for_push(o.distribution, sg(o.sharing_group_id), peer) {
            objects.push(Object { distribution: d, ..o.clone() });
        }
    }
    let kept: HashSet<i64> = objects.iter().map(|o| o.id).collect();
    let mut attributes = Vec::new();
    for a in state.attributes.values().filter(|a| !a.deleted && (a.object_id == 0 || kept.contains(&a.object_id))) {
        if let Some(d) = sync_rules::element_distribution_for_push(a.distribution, sg(a.sharing_group_id), peer) {
            let tags = a.tags.iter().filter(|t| keep_tag(t)).cloned().collect();
            attributes.push(Attribute { distribution: d, tags, ..a.clone() });
        }
    }
    let references = state.references.values().filter(|r| !r.deleted && kept.contains(&r.object_id)).cloned().collect();
    Some(Shared { meta: out, tags, objects, attributes, references, origin })
}

/// Was `state` shared with `peer` (as [`outward`] decides)? A peer whose copy may exist is told when
/// the Event is withdrawn; any other peer is told nothing (not even that the Event exists).
pub fn shared_with(state: &EventState, version: i64, here: Uuid, peer: &Peer, peer_instance: Option<Uuid>, groups: &Groups) -> bool {
    outward(state, version, here, peer, peer_instance, groups).is_some()
}

/// An offered Event with the receiver's ids for organisations, sharing groups and tags. The ids of
/// attributes, Objects and references are ignored (they are matched by uuid); an Object attribute
/// names its Object by uuid.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub meta: EventMeta,
    pub tags: Vec<TagLink>,
    pub objects: Vec<Object>,
    pub attributes: Vec<(Attribute, Option<Uuid>)>,
    pub references: Vec<ObjectReference>,
    pub origin: SyncOrigin,
}

/// What a peer says of one Event.
#[derive(Clone, Debug, PartialEq)]
pub enum Offer {
    /// Its current state as shared with us.
    Event(Box<Incoming>),
    /// It is no longer shared with us (deleted there, or its distribution narrowed).
    Withdrawn,
}

/// The receiving side of a sync: the server the offer comes from and who the copy belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    pub server_id: i64,
    /// This instance's own uuid: an offer of one of our own Events is refused.
    pub instance: Uuid,
    /// The local owner organisation of copies pulled from this server (MISP `Server.org_id`).
    pub org_id: i64,
    pub user_id: i64,
    /// The id a new copy gets.
    pub event_id: i64,
}

/// Checks an offer as this instance checks its own writes: the Event's levels and date, every
/// attribute's type, category and value (in the normalised form this instance would have stored),
/// distributions and seen times. A peer's bad data is refused here, never stored.
///
/// # Errors
/// Invalid, naming the first bad field.
pub fn check(incoming: &Incoming, catalogue: &TypeCatalogue) -> Result<(), DomainError> {
    let out_of_range = |what: &str| DomainError::invalid("distribution", format!("{what}: distribution out of range."));
    check_meta_fields(&incoming.meta)?;
    if incoming.meta.distribution > 4 {
        return Err(out_of_range("Event"));
    }
    for o in &incoming.objects {
        if o.distribution > 5 || o.name.trim().is_empty() {
            return Err(DomainError::invalid("Object", format!("Object {} is invalid.", o.uuid)));
        }
    }
    for (a, _) in &incoming.attributes {
        let named = |e: DomainError| DomainError::invalid("Attribute", format!("Attribute {}: {e}", a.uuid));
        check_type_category(catalogue, &a.attr_type, &a.category).map_err(named)?;
        match crate::value::normalise(&a.attr_type, &a.value()) {
            Ok(n) if n.value1 == a.value1 && n.value2 == a.value2 => {}
            _ => return Err(named(DomainError::invalid("value", "not in the form this instance stores"))),
        }
        if a.distribution > 5 {
            return Err(named(out_of_range("Attribute")));
        }
        check_seen(a.first_seen, a.last_seen).map_err(named)?;
    }
    Ok(())
}

/// The copy mirroring starts from: the copy, or nothing for a withdrawn copy (one shared again
/// starts afresh).
fn starting_point(state: &EventState) -> Cow<'_, EventState> {
    if state.deleted { Cow::Owned(EventState::default()) } else { Cow::Borrowed(state) }
}

/// How many new (attribute, Object, reference) ids mirroring `incoming` may need.
pub fn ids_needed(state: &EventState, incoming: &Incoming) -> (usize, usize, usize) {
    let state = starting_point(state);
    let attributes = incoming.attributes.iter().filter(|(a, _)| !state.attribute_ids.contains_key(&a.uuid)).count();
    let objects = incoming.objects.iter().filter(|o| !state.object_ids.contains_key(&o.uuid)).count();
    let references = incoming.references.iter().filter(|r| !state.reference_ids.contains_key(&r.uuid)).count();
    (attributes, objects, references)
}

/// The changes that bring the local copy to what the peer offers (none when it already is, or when
/// the offer is older than the copy).
///
/// # Errors
/// Forbidden for an offer of an Event that is not a copy (created here, or one of our own coming
/// back); Conflict when `ids` runs out.
pub fn mirror(state: &EventState, offer: Offer, r: &Receiver, ids: &mut IdPool) -> Result<Vec<Change>, DomainError> {
    if state.meta.is_some() && state.origin.is_none() {
        return Err(DomainError::Forbidden("This Event was created here: a peer cannot overwrite it.".into()));
    }
    let incoming = match offer {
        Offer::Withdrawn => {
            // Only the server the copy came from may withdraw it.
            return Ok(match (state.live(), state.synced_from) {
                (Some(m), Some(server)) if server == r.server_id => vec![Change::EventDeleted { id: m.id }],
                _ => vec![],
            });
        }
        Offer::Event(i) => *i,
    };
    if incoming.origin.instance == r.instance {
        return Err(DomainError::Forbidden("This Event comes from this instance.".into()));
    }
    if state.origin.is_some_and(|o| o.instance == incoming.origin.instance && o.version >= incoming.origin.version) {
        return Ok(vec![]);
    }
    // A withdrawn copy offered again (shared anew) starts afresh under its old id.
    let event_id = state.meta.as_ref().map_or(r.event_id, |m| m.id);
    let state = starting_point(state);
    let state = state.as_ref();
    let local = state.meta.as_ref();
    let mut changes = Vec::new();
    let mut next = EventMeta {
        id: event_id,
        org_id: local.map_or(r.org_id, |m| m.org_id),
        user_id: local.map_or(r.user_id, |m| m.user_id),
        locked: true,
        proposal_email_lock: local.is_some_and(|m| m.proposal_email_lock),
        sighting_timestamp: local.map_or(0, |m| m.sighting_timestamp),
        ..incoming.meta.clone()
    };
    if next.distribution != 4 {
        next.sharing_group_id = 0;
    }
    match local {
        None => changes.push(Change::EventCreated(EventMeta { published: false, publish_timestamp: 0, ..next.clone() })),
        Some(m) => {
            let unchanged_fields = EventMeta { published: m.published, publish_timestamp: m.publish_timestamp, ..next.clone() };
            if &unchanged_fields != m {
                changes.push(Change::EventUpdated(unchanged_fields));
            }
        }
    }

    // Event tags: the peer's (non-local) tags replace ours; local tags stay ours.
    let offered: HashMap<i64, &TagLink> = incoming.tags.iter().map(|t| (t.tag_id, t)).collect();
    for t in state.tags.iter().filter(|t| !t.local && !offered.contains_key(&t.tag_id)) {
        changes.push(Change::EventUntagged { tag_id: t.tag_id, local: false });
    }
    for t in incoming.tags.iter().map(|t| TagLink { local: false, ..t.clone() }) {
        if !state.tags.contains(&t) {
            changes.push(Change::EventTagged(t));
        }
    }

    // Objects first (attributes and references point at them).
    let mut object_ids: HashMap<Uuid, i64> = HashMap::new();
    let offered_objects: HashSet<Uuid> = incoming.objects.iter().map(|o| o.uuid).collect();
    for o in &incoming.objects {
        let current = state.object_by_uuid(&o.uuid);
        let id = match current {
            Some(c) => c.id,
            None => ids.objects.pop_front().ok_or_else(|| DomainError::Conflict("object id pool exhausted".into()))?,
        };
        object_ids.insert(o.uuid, id);
        let record = Object { id, event_id, deleted: false, ..o.clone() };
        match current {
            None => changes.push(Change::ObjectAdded(record)),
            Some(c) if *c != record => changes.push(Change::ObjectUpdated(record)),
            Some(_) => {}
        }
    }

    let offered_attributes: HashSet<Uuid> = incoming.attributes.iter().map(|(a, _)| a.uuid).collect();
    for (a, object_uuid) in &incoming.attributes {
        let object_id = match object_uuid {
            Some(u) => match object_ids.get(u).or_else(|| state.object_ids.get(u)) {
                Some(id) => *id,
                None => continue, // its Object was not offered: the attribute is not ours to hold
            },
            None => 0,
        };
        let current = state.attribute_by_uuid(&a.uuid);
        let id = match current {
            Some(c) => c.id,
            None => ids.attributes.pop_front().ok_or_else(|| DomainError::Conflict("attribute id pool exhausted".into()))?,
        };
        let mut tags: Vec<TagLink> = a.tags.iter().map(|t| TagLink { local: false, ..t.clone() }).collect();
        if let Some(c) = current {
            tags.extend(c.tags.iter().filter(|t| t.local).cloned());
        }
        let record = Attribute { id, event_id, object_id, deleted: false, tags, ..a.clone() };
        match current {
            None => changes.push(Change::AttributeAdded(record)),
            Some(c) if *c != record => changes.push(Change::AttributeUpdated(record)),
            Some(_) => {}
        }
    }
    let gone = incoming.meta.timestamp;
    for a in state.attributes.values().filter(|a| !a.deleted && !offered_attributes.contains(&a.uuid)) {
        changes.push(Change::AttributeDeleted { id: a.id, hard: false, timestamp: gone });
    }
    for o in state.objects.values().filter(|o| !o.deleted && !offered_objects.contains(&o.uuid)) {
        changes.push(Change::ObjectDeleted { id: o.id, hard: false, timestamp: gone });
    }

    let offered_references: HashSet<Uuid> = incoming.references.iter().map(|r| r.uuid).collect();
    for reference in &incoming.references {
        if state.reference_ids.contains_key(&reference.uuid) {
            continue;
        }
        let Some(&object_id) = object_ids.get(&reference.object_uuid) else { continue };
        let id = ids.references.pop_front().ok_or_else(|| DomainError::Conflict("reference id pool exhausted".into()))?;
        let referenced_id = object_ids
            .get(&reference.referenced_uuid)
            .or_else(|| state.attribute_ids.get(&reference.referenced_uuid))
            .copied()
            .unwrap_or(0);
        changes.push(Change::ReferenceAdded(ObjectReference { id, event_id, object_id, referenced_id, deleted: false, ..reference.clone() }));
    }
    for reference in state.references.values().filter(|x| !x.deleted && !offered_references.contains(&x.uuid)) {
        changes.push(Change::ReferenceDeleted { id: reference.id, hard: false, timestamp: gone });
    }

    let was_published = local.is_some_and(|m| m.published);
    let published_at = local.map_or(0, |m| m.publish_timestamp);
    if incoming.meta.published && (!was_published || published_at != incoming.meta.publish_timestamp) {
        changes.push(Change::EventPublished { publish_timestamp: incoming.meta.publish_timestamp });
    } else if !incoming.meta.published && was_published {
        changes.push(Change::EventUnpublished {});
    }
    if changes.is_empty() {
        return Ok(changes);
    }
    changes.push(Change::EventSynced { server_id: r.server_id, origin: incoming.origin });
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::state::evolve;

    const HERE: Uuid = Uuid::from_u128(0xA);
    const PEER: Uuid = Uuid::from_u128(0xB);

    fn meta(distribution: u8) -> EventMeta {
        EventMeta {
            id: 1,
            uuid: Uuid::from_u128(100),
            info: "phishing".into(),
            date: "2026-11-29".into(),
            threat_level_id: 2,
            analysis: 0,
            distribution,
            sharing_group_id: 0,
            org_id: 1,
            orgc_id: 1,
            user_id: 1,
            published: false,
            publish_timestamp: 0,
            timestamp: 1_000,
            sighting_timestamp: 0,
            proposal_email_lock: false,
            locked: false,
            disable_correlation: false,
            extends_uuid: String::new(),
        }
    }

    fn attribute(id: i64, distribution: u8, value: &str) -> Attribute {
        Attribute {
            id,
            uuid: Uuid::from_u128(1_000 + id as u128),
            event_id: 1,
            object_id: 0,
            object_relation: None,
            category: "Network activity".into(),
            attr_type: "ip-dst".into(),
            value1: value.into(),
            value2: String::new(),
            to_ids: true,
            comment: String::new(),
            distribution,
            sharing_group_id: 0,
            timestamp: 1_000,
            deleted: false,
            disable_correlation: false,
            first_seen: None,
            last_seen: None,
            tags: vec![],
        }
    }

    fn fold(changes: &[Change]) -> EventState {
        changes.iter().fold(EventState::default(), evolve)
    }

    fn peer() -> Peer {
        Peer { server_id: 2, internal: false, remote_org_id: 9 }
    }

    fn source(distribution: u8) -> EventState {
        fold(&[
            Change::EventCreated(meta(distribution)),
            Change::AttributeAdded(attribute(1, 5, "192.0.2.1")),
            Change::AttributeAdded(attribute(2, 0, "192.0.2.2")),
            Change::AttributeAdded(attribute(3, 2, "192.0.2.3")),
            Change::EventTagged(TagLink { tag_id: 7, local: false, relationship_type: None }),
            Change::EventTagged(TagLink { tag_id: 8, local: true, relationship_type: None }),
            Change::EventPublished { publish_timestamp: 1_001 },
        ])
    }

    fn incoming(shared: &Shared) -> Incoming {
        Incoming {
            meta: shared.meta.clone(),
            tags: shared.tags.clone(),
            objects: shared.objects.clone(),
            attributes: shared.attributes.iter().map(|a| (a.clone(), None)).collect(),
            references: shared.references.clone(),
            origin: shared.origin,
        }
    }

    fn receiver() -> Receiver {
        Receiver { server_id: 5, instance: PEER, org_id: 3, user_id: 4, event_id: 50 }
    }

    fn pool(n: i64) -> IdPool {
        IdPool { attributes: (500..500 + n).collect(), objects: (600..600 + n).collect(), references: (700..700 + n).collect() }
    }

    #[test]
    fn connected_communities_are_downgraded_and_private_parts_stay_home() {
        let shared = outward(&source(2), 7, HERE, &peer(), Some(PEER), &Groups::new()).expect("shared");
        assert_eq!(shared.meta.distribution, 1);
        let values: Vec<(&str, u8)> = shared.attributes.iter().map(|a| (a.value1.as_str(), a.distribution)).collect();
        assert_eq!(values, [("192.0.2.1", 5), ("192.0.2.3", 1)], "org-only dropped, 2 → 1, inherit kept");
        assert_eq!(shared.tags.iter().map(|t| t.tag_id).collect::<Vec<_>>(), [7], "local tags stay");
        assert_eq!(shared.origin, SyncOrigin { instance: HERE, version: 7 });
        assert!(outward(&source(0), 7, HERE, &peer(), Some(PEER), &Groups::new()).is_none());
        assert!(outward(&source(1), 7, HERE, &peer(), Some(PEER), &Groups::new()).is_none());
        let never_published = fold(&[Change::EventCreated(meta(3))]);
        assert!(outward(&never_published, 1, HERE, &peer(), Some(PEER), &Groups::new()).is_none());
    }

    #[test]
    fn an_event_is_never_offered_back_to_its_origin() {
        let mut copy = source(3);
        copy = evolve(copy, &Change::EventSynced { server_id: 1, origin: SyncOrigin { instance: PEER, version: 3 } });
        assert!(outward(&copy, 9, HERE, &peer(), Some(PEER), &Groups::new()).is_none());
        let onward = outward(&copy, 9, HERE, &peer(), Some(Uuid::from_u128(0xC)), &Groups::new()).expect("travels on");
        assert_eq!(onward.origin, SyncOrigin { instance: PEER, version: 3 }, "the origin travels with the copy");
    }

    #[test]
    fn a_copy_follows_the_offers_and_an_identical_offer_writes_nothing() {
        let shared = outward(&source(3), 7, HERE, &peer(), Some(PEER), &Groups::new()).expect("shared");
        let first = mirror(&EventState::default(), Offer::Event(Box::new(incoming(&shared))), &receiver(), &mut pool(10)).expect("mirrors");
        let copy = fold(&first);
        let m = copy.live().expect("copy exists");
        assert_eq!((m.id, m.org_id, m.orgc_id, m.distribution, m.locked, m.published), (50, 3, 1, 3, true, true));
        assert_eq!(copy.attributes.values().filter(|a| !a.deleted).count(), 2);
        assert_eq!(copy.origin, Some(shared.origin));
        let again = mirror(&copy, Offer::Event(Box::new(incoming(&shared))), &receiver(), &mut pool(10)).expect("mirrors");
        assert!(again.is_empty(), "{again:?}");

        // On the sender: an attribute is deleted and a tag removed; the next offer carries both.
        let mut sender = source(3);
        sender = evolve(sender, &Change::AttributeDeleted { id: 3, hard: false, timestamp: 1_100 });
        sender = evolve(sender, &Change::EventUntagged { tag_id: 7, local: false });
        let later = outward(&sender, 9, HERE, &peer(), Some(PEER), &Groups::new()).expect("still shared");
        let changes = mirror(&copy, Offer::Event(Box::new(incoming(&later))), &receiver(), &mut pool(10)).expect("mirrors");
        assert!(changes.iter().any(|c| matches!(c, Change::AttributeDeleted { .. })), "{changes:?}");
        assert!(changes.iter().any(|c| matches!(c, Change::EventUntagged { tag_id: 7, .. })), "{changes:?}");
        assert!(matches!(changes.last(), Some(Change::EventSynced { server_id: 5, .. })));
        let updated = changes.iter().fold(copy.clone(), evolve);

        // The older offer arriving late (another path) changes nothing.
        let stale = mirror(&updated, Offer::Event(Box::new(incoming(&shared))), &receiver(), &mut pool(10)).expect("mirrors");
        assert!(stale.is_empty(), "{stale:?}");
    }

    #[test]
    fn withdrawals_come_only_from_the_server_the_copy_came_from_and_local_events_are_not_overwritten() {
        let shared = outward(&source(3), 7, HERE, &peer(), Some(PEER), &Groups::new()).expect("shared");
        let copy = fold(&mirror(&EventState::default(), Offer::Event(Box::new(incoming(&shared))), &receiver(), &mut pool(10)).expect("mirrors"));
        let other = Receiver { server_id: 6, ..receiver() };
        assert!(mirror(&copy, Offer::Withdrawn, &other, &mut pool(0)).expect("ignored").is_empty());
        assert_eq!(mirror(&copy, Offer::Withdrawn, &receiver(), &mut pool(0)).expect("withdrawn"), vec![Change::EventDeleted { id: 50 }]);
        let own = source(3);
        assert!(matches!(mirror(&own, Offer::Event(Box::new(incoming(&shared))), &receiver(), &mut pool(10)), Err(DomainError::Forbidden(_))));
        // Shared again later (a newer version): the withdrawn copy comes back, whole, under its id.
        let withdrawn = evolve(copy.clone(), &Change::EventDeleted { id: 50 });
        let again = Incoming { origin: SyncOrigin { instance: HERE, version: 12 }, ..incoming(&shared) };
        let (a, o, r) = ids_needed(&withdrawn, &again);
        assert_eq!((a, o, r), (2, 0, 0), "new ids for every attribute");
        let back = mirror(&withdrawn, Offer::Event(Box::new(again)), &receiver(), &mut pool(10)).expect("mirrors");
        let restored = back.iter().fold(withdrawn, evolve);
        assert_eq!(restored.live().map(|m| m.id), Some(50));
        assert_eq!(restored.attributes.values().filter(|a| !a.deleted).count(), 2);
        let looped = Incoming { origin: SyncOrigin { instance: PEER, version: 1 }, ..incoming(&shared) };
        assert!(matches!(mirror(&EventState::default(), Offer::Event(Box::new(looped)), &receiver(), &mut pool(10)), Err(DomainError::Forbidden(_))));
    }

    #[test]
    fn a_peers_offer_is_checked_like_a_local_write() {
        let catalogue = crate::event::tests::catalogue();
        let offer = || incoming(&outward(&source(3), 7, HERE, &peer(), Some(PEER), &Groups::new()).expect("shared"));
        assert_eq!(check(&offer(), catalogue), Ok(()));
        let mut bad = offer();
        bad.attributes[0].0.attr_type = "no-such-type".into();
        assert!(check(&bad, catalogue).is_err(), "unknown type");
        let mut bad = offer();
        bad.attributes[0].0.category = "Other".into();
        assert!(check(&bad, catalogue).is_err(), "category not allowed for the type");
        let mut bad = offer();
        bad.attributes[0].0.value1 = " 192.0.2.1".into();
        assert!(check(&bad, catalogue).is_err(), "a value not in the form this instance stores");
        let mut bad = offer();
        bad.meta.date = "2023-02-29".into();
        assert!(check(&bad, catalogue).is_err(), "no such day");
        let mut bad = offer();
        bad.meta.threat_level_id = 9;
        assert!(check(&bad, catalogue).is_err());
        assert_eq!(offer().meta.org_id, 0, "the sender's owner organisation is not sent");
    }
}
