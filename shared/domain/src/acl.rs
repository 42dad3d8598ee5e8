//! The one access rule: who may see an Event, an Object, an Attribute, a Proposal, a Post, a Sighting
//! (ARCHITECTURE.md §7).
//!
//! MISP's semantics (misp_features.md §2.1–2.4, §3–§5, §1.6):
//! * site admins see everything;
//! * the owner organisation (`org_id`, the local holder — not the creator `orgc_id`) sees its Events and
//!   everything in them, whatever the element distributions;
//! * the organisation a pending Delegation targets sees the Event (as MISP's `fetchEvent` adds delegated
//!   Event ids to its visibility OR) — with the element rules of any non-owner, whatever the
//!   distribution and `unpublishedprivate`;
//! * anyone else sees an Event with distribution 1–3 (with `unpublishedprivate`: only once published)
//!   or 4 when their organisation is in the sharing group — and inside it only elements with
//!   distribution 1, 2, 3, 5 (inherit) or 4 with a sharing group they belong to; an Attribute inside an
//!   Object also needs the Object to pass. "Both must pass": the more restrictive level wins;
//! * a Proposal is visible with its Event (and, for an edit or deletion, with the attribute it targets);
//!   a Post exactly with its Event; a Sighting with its Attribute and then by MISP's
//!   `Plugin.Sightings_policy` ([`sighting_visible`]).
//!
//! Every read path calls these functions (or SQL generated from [`sql_event_condition`]-style rules that
//! the oracle test checks against them).

use std::collections::BTreeSet;

/// Who is looking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub org_id: i64,
    pub site_admin: bool,
    /// Sharing groups the viewer's organisation belongs to (as member org or through `all_orgs`).
    pub sharing_groups: BTreeSet<i64>,
}

/// The access-relevant fields of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventAccess {
    pub org_id: i64,
    pub distribution: u8,
    pub sharing_group_id: i64,
    pub published: bool,
    /// The target organisation of the Event's pending Delegation (0: none). It sees the Event while the
    /// request is pending (`rm.events.delegate_org_id` on the read side).
    pub delegate_org_id: i64,
}

/// The access-relevant fields of an Object or Attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementAccess {
    pub distribution: u8,
    pub sharing_group_id: i64,
}

/// Instance settings that change visibility.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessSettings {
    /// `MISP.unpublishedprivate`: distributions 1–4 need `published` for non-owners.
    pub unpublished_private: bool,
}

pub fn event_visible(v: &Viewer, e: &EventAccess, s: &AccessSettings) -> bool {
    if v.site_admin || e.org_id == v.org_id {
        return true;
    }
    if e.delegate_org_id != 0 && e.delegate_org_id == v.org_id {
        return true;
    }
    if s.unpublished_private && !e.published {
        return false;
    }
    match e.distribution {
        1..=3 => true,
        4 => v.sharing_groups.contains(&e.sharing_group_id),
        _ => false,
    }
}

/// Whether an element (Object or Attribute) passes its own distribution check for this viewer, given
/// that its Event is visible.
fn element_passes(v: &Viewer, e: &EventAccess, el: &ElementAccess) -> bool {
    if v.site_admin || e.org_id == v.org_id {
        return true;
    }
    match el.distribution {
        1..=3 | 5 => true,
        4 => v.sharing_groups.contains(&el.sharing_group_id),
        _ => false,
    }
}

/// An Object is visible when its Event is and it passes its own check.
pub fn object_visible(v: &Viewer, e: &EventAccess, o: &ElementAccess, s: &AccessSettings) -> bool {
    event_visible(v, e, s) && element_passes(v, e, o)
}

/// An Attribute is visible when its Event is, it passes its own check, and (inside an Object) the Object
/// is visible too.
pub fn attribute_visible(
    v: &Viewer,
    e: &EventAccess,
    a: &ElementAccess,
    object: Option<&ElementAccess>,
    s: &AccessSettings,
) -> bool {
    event_visible(v, e, s) && element_passes(v, e, a) && object.is_none_or(|o| element_passes(v, e, o))
}

/// A Proposal is visible when its Event is and — for an edit or deletion — the attribute it targets is
/// (`target`: the attribute's access and its Object's, if any). A proposal repeats the attribute's
/// fields, so it must never show more than the attribute itself.
pub fn proposal_visible(
    v: &Viewer,
    e: &EventAccess,
    target: Option<(&ElementAccess, Option<&ElementAccess>)>,
    s: &AccessSettings,
) -> bool {
    match target {
        None => event_visible(v, e, s),
        Some((a, object)) => attribute_visible(v, e, a, object, s),
    }
}

/// A Post (and the Event's Thread) is visible exactly when its Event is (MISP: the user must be able to
/// fetch the Event).
pub fn post_visible(v: &Viewer, e: &EventAccess, s: &AccessSettings) -> bool {
    event_visible(v, e, s)
}

/// MISP's `Plugin.Sightings_policy` (`Sighting::createConditions`): which Sightings of a visible Attribute
/// a user of another organisation than the Event's owner sees. Site admins and the owner organisation
/// (`org_id`) always see all of them.
///
/// (The numbering is MISP's; issue 8's summary lists the levels in another order — this follows MISP's
/// code, misp_features.md §1.6.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SightingPolicy {
    /// 0 (default): only their own organisation's sightings.
    #[default]
    EventOwner,
    /// 1: all sightings of the Event, but only once their organisation has itself reported a sighting
    /// on the Event; none before.
    SightingReporter,
    /// 2: everyone who sees the attribute sees all its sightings.
    Everyone,
    /// 3: their own organisation's sightings plus the host organisation's.
    HostOrg,
}

impl SightingPolicy {
    /// From the setting's value; unknown values fall back to the most restrictive default (0).
    pub fn from_setting(value: i64) -> Self {
        match value {
            1 => Self::SightingReporter,
            2 => Self::Everyone,
            3 => Self::HostOrg,
            _ => Self::EventOwner,
        }
    }

    pub fn as_setting(self) -> i64 {
        match self {
            Self::EventOwner => 0,
            Self::SightingReporter => 1,
            Self::Everyone => 2,
            Self::HostOrg => 3,
        }
    }
}

/// Instance settings that decide which Sightings are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SightingSettings {
    pub policy: SightingPolicy,
    /// `MISP.host_org_id` (policy 3).
    pub host_org_id: i64,
}

/// Whether the viewer sees a Sighting made by organisation `sighting_org_id` on an Attribute.
///
/// The Attribute must be visible (`attribute_visible` with the same arguments); then site admins and the
/// Event's owner organisation see every sighting, and everyone else what the policy allows.
/// `viewer_org_reported` is whether the viewer's organisation has reported a sighting on this Event
/// (only policy 1 reads it; the read side computes it with an `EXISTS` on `rm.sightings`).
#[allow(clippy::too_many_arguments)]
pub fn sighting_visible(
    v: &Viewer,
    e: &EventAccess,
    a: &ElementAccess,
    object: Option<&ElementAccess>,
    s: &AccessSettings,
    sightings: &SightingSettings,
    sighting_org_id: i64,
    viewer_org_reported: bool,
) -> bool {
    if !attribute_visible(v, e, a, object, s) {
        return false;
    }
    if v.site_admin || e.org_id == v.org_id {
        return true;
    }
    match sightings.policy {
        SightingPolicy::EventOwner => sighting_org_id == v.org_id,
        SightingPolicy::SightingReporter => viewer_org_reported,
        SightingPolicy::Everyone => true,
        SightingPolicy::HostOrg => sighting_org_id == v.org_id || sighting_org_id == sightings.host_org_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(org: i64, sgs: &[i64]) -> Viewer {
        Viewer { org_id: org, site_admin: false, sharing_groups: sgs.iter().copied().collect() }
    }

    fn event(org: i64, distribution: u8, sg: i64) -> EventAccess {
        EventAccess { org_id: org, distribution, sharing_group_id: sg, published: false, delegate_org_id: 0 }
    }

    fn delegated_to(e: EventAccess, org: i64) -> EventAccess {
        EventAccess { delegate_org_id: org, ..e }
    }

    const S: AccessSettings = AccessSettings { unpublished_private: false };

    #[test]
    fn the_owner_org_sees_its_org_only_event_and_others_do_not() {
        assert!(event_visible(&viewer(1, &[]), &event(1, 0, 0), &S));
        assert!(!event_visible(&viewer(2, &[]), &event(1, 0, 0), &S));
    }

    #[test]
    fn community_connected_and_all_are_visible_to_everyone_here() {
        for d in 1..=3 {
            assert!(event_visible(&viewer(2, &[]), &event(1, d, 0), &S));
        }
    }

    #[test]
    fn a_sharing_group_event_is_visible_to_members_only() {
        assert!(event_visible(&viewer(2, &[7]), &event(1, 4, 7), &S));
        assert!(!event_visible(&viewer(2, &[8]), &event(1, 4, 7), &S));
    }

    #[test]
    fn unpublished_private_hides_unpublished_events_from_non_owners() {
        let s = AccessSettings { unpublished_private: true };
        assert!(!event_visible(&viewer(2, &[]), &event(1, 3, 0), &s));
        assert!(event_visible(&viewer(1, &[]), &event(1, 3, 0), &s));
        let published = EventAccess { published: true, ..event(1, 3, 0) };
        assert!(event_visible(&viewer(2, &[]), &published, &s));
    }

    #[test]
    fn both_must_pass_for_attributes() {
        let all = event(1, 3, 0);
        let org_only_attr = ElementAccess { distribution: 0, sharing_group_id: 0 };
        let inherit = ElementAccess { distribution: 5, sharing_group_id: 0 };
        assert!(!attribute_visible(&viewer(2, &[]), &all, &org_only_attr, None, &S));
        assert!(attribute_visible(&viewer(1, &[]), &all, &org_only_attr, None, &S));
        assert!(attribute_visible(&viewer(2, &[]), &all, &inherit, None, &S));
        // an org-only event hides even "all communities" attributes
        let all_attr = ElementAccess { distribution: 3, sharing_group_id: 0 };
        assert!(!attribute_visible(&viewer(2, &[]), &event(1, 0, 0), &all_attr, None, &S));
        // an invisible object hides its attributes
        assert!(!attribute_visible(&viewer(2, &[]), &all, &inherit, Some(&org_only_attr), &S));
    }

    #[test]
    fn site_admins_see_everything() {
        let admin = Viewer { org_id: 9, site_admin: true, sharing_groups: BTreeSet::new() };
        let hidden = ElementAccess { distribution: 0, sharing_group_id: 0 };
        assert!(attribute_visible(&admin, &event(1, 0, 0), &hidden, Some(&hidden), &S));
    }

    #[test]
    fn the_target_of_a_pending_delegation_sees_the_org_only_event_and_nobody_else_does() {
        let pending = delegated_to(event(1, 0, 0), 2);
        assert!(event_visible(&viewer(2, &[]), &pending, &S));
        assert!(!event_visible(&viewer(3, &[]), &pending, &S));
        assert!(event_visible(&viewer(1, &[]), &pending, &S));
        // without a pending delegation organisation 2 sees nothing
        assert!(!event_visible(&viewer(2, &[]), &event(1, 0, 0), &S));
    }

    #[test]
    fn the_delegate_sees_the_event_even_unpublished_under_unpublished_private() {
        let s = AccessSettings { unpublished_private: true };
        assert!(event_visible(&viewer(2, &[]), &delegated_to(event(1, 3, 0), 2), &s));
        assert!(!event_visible(&viewer(3, &[]), &delegated_to(event(1, 3, 0), 2), &s));
    }

    #[test]
    fn the_delegate_sees_inheriting_attributes_but_not_org_only_ones_until_it_owns_the_event() {
        let pending = delegated_to(event(1, 0, 0), 2);
        let inherit = ElementAccess { distribution: 5, sharing_group_id: 0 };
        let org_only = ElementAccess { distribution: 0, sharing_group_id: 0 };
        assert!(attribute_visible(&viewer(2, &[]), &pending, &inherit, None, &S));
        assert!(!attribute_visible(&viewer(2, &[]), &pending, &org_only, None, &S));
        // accepted: organisation 2 owns the Event and sees everything in it
        assert!(attribute_visible(&viewer(2, &[]), &event(2, 0, 0), &org_only, None, &S));
    }

    #[test]
    fn a_delegation_never_widens_what_the_delegate_sees_of_sharing_group_elements() {
        let pending = delegated_to(event(1, 0, 0), 2);
        let sg_attr = ElementAccess { distribution: 4, sharing_group_id: 7 };
        assert!(!attribute_visible(&viewer(2, &[]), &pending, &sg_attr, None, &S));
        assert!(attribute_visible(&viewer(2, &[7]), &pending, &sg_attr, None, &S));
    }

    #[test]
    fn proposals_follow_their_event_and_their_target_attribute() {
        let all = event(1, 3, 0);
        let inherit = ElementAccess { distribution: 5, sharing_group_id: 0 };
        let org_only = ElementAccess { distribution: 0, sharing_group_id: 0 };
        assert!(proposal_visible(&viewer(2, &[]), &all, None, &S));
        assert!(!proposal_visible(&viewer(2, &[]), &event(1, 0, 0), None, &S));
        assert!(proposal_visible(&viewer(2, &[]), &all, Some((&inherit, None)), &S));
        assert!(!proposal_visible(&viewer(2, &[]), &all, Some((&org_only, None)), &S));
        assert!(!proposal_visible(&viewer(2, &[]), &all, Some((&inherit, Some(&org_only))), &S));
        assert!(proposal_visible(&viewer(1, &[]), &all, Some((&org_only, None)), &S));
    }

    #[test]
    fn posts_are_visible_exactly_when_the_event_is() {
        for (e, org, sgs, expected) in [
            (event(1, 0, 0), 1, vec![], true),
            (event(1, 0, 0), 2, vec![], false),
            (delegated_to(event(1, 0, 0), 2), 2, vec![], true),
            (event(1, 1, 0), 2, vec![], true),
            (event(1, 4, 7), 2, vec![7], true),
            (event(1, 4, 7), 2, vec![8], false),
        ] {
            let v = viewer(org, &sgs);
            assert_eq!(post_visible(&v, &e, &S), expected, "{e:?} seen by {org}");
            assert_eq!(post_visible(&v, &e, &S), event_visible(&v, &e, &S));
        }
    }

    /// Sightings of org 1 (owner), 2 (viewer), 3 (someone else) and 9 (host) on a community Event of org 1.
    fn seen_sighting_orgs(v: &Viewer, policy: SightingPolicy, reported: bool) -> Vec<i64> {
        let e = event(1, 1, 0);
        let a = ElementAccess { distribution: 5, sharing_group_id: 0 };
        let settings = SightingSettings { policy, host_org_id: 9 };
        [1, 2, 3, 9].into_iter().filter(|org| sighting_visible(v, &e, &a, None, &S, &settings, *org, reported)).collect()
    }

    #[test]
    fn under_the_default_policy_others_see_only_their_own_organisations_sightings() {
        assert_eq!(SightingPolicy::default(), SightingPolicy::EventOwner);
        assert_eq!(seen_sighting_orgs(&viewer(2, &[]), SightingPolicy::EventOwner, true), [2]);
    }

    #[test]
    fn the_owner_organisation_and_site_admins_see_every_sighting_under_every_policy() {
        let admin = Viewer { org_id: 5, site_admin: true, sharing_groups: BTreeSet::new() };
        for p in [SightingPolicy::EventOwner, SightingPolicy::SightingReporter, SightingPolicy::Everyone, SightingPolicy::HostOrg] {
            assert_eq!(seen_sighting_orgs(&viewer(1, &[]), p, false), [1, 2, 3, 9], "{p:?}");
            assert_eq!(seen_sighting_orgs(&admin, p, false), [1, 2, 3, 9], "{p:?}");
        }
    }

    #[test]
    fn under_the_reporter_policy_an_organisation_sees_all_sightings_once_it_reported_one() {
        assert_eq!(seen_sighting_orgs(&viewer(2, &[]), SightingPolicy::SightingReporter, true), [1, 2, 3, 9]);
        assert_eq!(seen_sighting_orgs(&viewer(2, &[]), SightingPolicy::SightingReporter, false), Vec::<i64>::new());
    }

    #[test]
    fn under_the_everyone_policy_all_sightings_of_a_visible_attribute_are_shown() {
        assert_eq!(seen_sighting_orgs(&viewer(2, &[]), SightingPolicy::Everyone, false), [1, 2, 3, 9]);
    }

    #[test]
    fn under_the_host_org_policy_the_hosts_sightings_are_shown_too() {
        assert_eq!(seen_sighting_orgs(&viewer(2, &[]), SightingPolicy::HostOrg, false), [2, 9]);
    }

    #[test]
    fn no_policy_shows_sightings_of_an_attribute_the_viewer_cannot_see() {
        let e = event(1, 1, 0);
        let hidden = ElementAccess { distribution: 0, sharing_group_id: 0 };
        let settings = SightingSettings { policy: SightingPolicy::Everyone, host_org_id: 9 };
        assert!(!sighting_visible(&viewer(2, &[]), &e, &hidden, None, &S, &settings, 2, true));
        assert!(!sighting_visible(&viewer(2, &[]), &event(1, 0, 0), &hidden, None, &S, &settings, 2, true));
    }

    #[test]
    fn the_sightings_policy_setting_round_trips_and_unknown_values_are_restrictive() {
        for v in 0..=3 {
            assert_eq!(SightingPolicy::from_setting(v).as_setting(), v);
        }
        assert_eq!(SightingPolicy::from_setting(7), SightingPolicy::EventOwner);
        assert_eq!(SightingPolicy::from_setting(-1), SightingPolicy::EventOwner);
    }
}
