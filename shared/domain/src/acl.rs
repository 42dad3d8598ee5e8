//! The one access rule: who may see an Event, an Object, an Attribute (ARCHITECTURE.md §7).
//!
//! MISP's semantics (misp_features.md §2.1–2.4):
//! * site admins see everything;
//! * the owner organisation (`org_id`, the local holder — not the creator `orgc_id`) sees its Events and
//!   everything in them, whatever the element distributions;
//! * anyone else sees an Event with distribution 1–3 (with `unpublishedprivate`: only once published)
//!   or 4 when their organisation is in the sharing group — and inside it only elements with
//!   distribution 1, 2, 3, 5 (inherit) or 4 with a sharing group they belong to; an Attribute inside an
//!   Object also needs the Object to pass. "Both must pass": the more restrictive level wins.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(org: i64, sgs: &[i64]) -> Viewer {
        Viewer { org_id: org, site_admin: false, sharing_groups: sgs.iter().copied().collect() }
    }

    fn event(org: i64, distribution: u8, sg: i64) -> EventAccess {
        EventAccess { org_id: org, distribution, sharing_group_id: sg, published: false }
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
}
