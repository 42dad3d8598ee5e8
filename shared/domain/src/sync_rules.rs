//! MISP's distribution rules between instances (misp_features.md §2.5), as pure functions for the sync
//! work: what a push may carry to a peer and how levels are downgraded on push and on pull.
//!
//! "Connected communities" (2) travels one hop because the sender downgrades it to 1; "All
//! communities" (3) travels on; sharing groups go only where their servers or member organisations are.

use crate::sharing_group::SharingGroupState;

/// The peer a push goes to (or a pull comes from), as this instance knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub server_id: i64,
    /// `internal`: the same organisation's instance — no downgrade, everything allowed.
    pub internal: bool,
    /// The organisation that runs the peer.
    pub remote_org_id: i64,
}

/// MISP's `checkIfServerInSG`: a group that lists servers (and does not roam) reaches only those
/// servers; otherwise the peer's organisation must be a member.
pub fn sharing_group_reaches(sg: &SharingGroupState, peer: &Peer) -> bool {
    let roaming = sg.group.as_ref().is_some_and(|g| g.roaming);
    let listed_servers: Vec<_> = sg.servers.iter().filter(|s| s.server_id != 0).collect();
    if !roaming && !listed_servers.is_empty() {
        return listed_servers.iter().any(|s| s.server_id == peer.server_id) || peer.internal;
    }
    sg.orgs.iter().any(|o| o.org_id == peer.remote_org_id)
}

/// Whether an Event may be pushed to a peer at all.
pub fn event_pushable(published: bool, distribution: u8, sg: Option<&SharingGroupState>, peer: &Peer) -> bool {
    if !published {
        return false;
    }
    match distribution {
        0 | 1 => peer.internal,
        2 | 3 => true,
        4 => sg.is_some_and(|g| sharing_group_reaches(g, peer)),
        _ => false,
    }
}

/// The Event's distribution as sent to the peer.
pub fn event_distribution_for_push(distribution: u8, peer: &Peer) -> u8 {
    if !peer.internal && distribution == 2 { 1 } else { distribution }
}

/// An Attribute's or Object's distribution as sent to the peer; `None` drops the element.
pub fn element_distribution_for_push(distribution: u8, sg: Option<&SharingGroupState>, peer: &Peer) -> Option<u8> {
    if peer.internal {
        return Some(distribution);
    }
    match distribution {
        0 | 1 => None,
        2 => Some(1),
        3 | 5 => Some(distribution),
        4 => sg.filter(|g| sharing_group_reaches(g, peer)).map(|_| 4),
        _ => None,
    }
}

/// A distribution received by a pull, as stored locally (1 → 0, 2 → 1; internal peers keep levels).
pub fn distribution_after_pull(distribution: u8, peer: &Peer) -> u8 {
    if peer.internal {
        return distribution;
    }
    match distribution {
        1 => 0,
        2 => 1,
        d => d,
    }
}

/// A server's push or pull rules (MISP's `{"tags": {"OR": [...], "NOT": [...]}, "orgs": {...}}`):
/// which Events travel by their tags and creator organisation. Items are names, uuids or (once the
/// edge has replaced them) whatever else identifies them; matching ignores case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub tags_or: Vec<String>,
    pub tags_not: Vec<String>,
    pub orgs_or: Vec<String>,
    pub orgs_not: Vec<String>,
}

impl Rules {
    /// Reads MISP's rules JSON (an object, or its JSON text); anything else is "no rules".
    pub fn parse(v: &serde_json::Value) -> Self {
        let v = match v {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or(serde_json::Value::Null),
            other => other.clone(),
        };
        let list = |scope: &str, op: &str| -> Vec<String> {
            v.get(scope)
                .and_then(|s| s.get(op))
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| match x {
                    serde_json::Value::String(s) => Some(s.trim().to_string()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .filter(|s| !s.is_empty())
                .collect()
        };
        Self { tags_or: list("tags", "OR"), tags_not: list("tags", "NOT"), orgs_or: list("orgs", "OR"), orgs_not: list("orgs", "NOT") }
    }

    pub fn is_empty(&self) -> bool {
        self.tags_or.is_empty() && self.tags_not.is_empty() && self.orgs_or.is_empty() && self.orgs_not.is_empty()
    }

    /// Every item, for the edge to translate ids into names or uuids.
    pub fn items_mut(&mut self) -> impl Iterator<Item = (bool, &mut String)> {
        let tags = self.tags_or.iter_mut().chain(self.tags_not.iter_mut()).map(|s| (true, s));
        let orgs = self.orgs_or.iter_mut().chain(self.orgs_not.iter_mut()).map(|s| (false, s));
        tags.chain(orgs)
    }

    /// Does an Event with these tag names, created by the organisation known by `org` (uuid, name),
    /// pass? An `OR` list needs one match, a `NOT` list none.
    pub fn allows(&self, tags: &[String], org: &[String]) -> bool {
        let hit = |items: &[String], keys: &[String]| items.iter().any(|i| keys.iter().any(|k| k.eq_ignore_ascii_case(i)));
        (self.tags_or.is_empty() || hit(&self.tags_or, tags))
            && !hit(&self.tags_not, tags)
            && (self.orgs_or.is_empty() || hit(&self.orgs_or, org))
            && !hit(&self.orgs_not, org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_select_events_by_tag_and_creator_organisation() {
        let rules = Rules::parse(&serde_json::json!("{\"tags\": {\"OR\": [\"tlp:green\", \"tlp:clear\"], \"NOT\": [\"private\"]}, \"orgs\": {\"NOT\": [\"Spammer\"]}}"));
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let org = tags(&["3f1b6c9e-0000-4000-8000-000000000001", "CIRCL"]);
        assert!(rules.allows(&tags(&["TLP:GREEN"]), &org));
        assert!(!rules.allows(&tags(&["tlp:amber"]), &org), "no OR tag");
        assert!(!rules.allows(&tags(&["tlp:green", "private"]), &org), "a NOT tag");
        assert!(!rules.allows(&tags(&["tlp:green"]), &tags(&["x", "spammer"])), "a NOT organisation");
        assert!(Rules::parse(&serde_json::json!({})).allows(&[], &[]), "no rules: everything passes");
        assert!(Rules::parse(&serde_json::json!("")).is_empty());
        let numeric = Rules::parse(&serde_json::json!({"tags": {"OR": [12, "13"]}}));
        assert_eq!(numeric.tags_or, ["12", "13"]);
    }
    use crate::change::Change;
    use crate::sharing_group::{SharingGroup, SharingGroupOrg, SharingGroupServer, evolve};
    use uuid::Uuid;

    fn peer(server_id: i64, remote_org_id: i64) -> Peer {
        Peer { server_id, internal: false, remote_org_id }
    }

    fn sg(orgs: &[i64], servers: &[i64], roaming: bool) -> SharingGroupState {
        let group = SharingGroup {
            id: 1,
            uuid: Uuid::from_u128(1),
            name: "sg".into(),
            releasability: String::new(),
            description: String::new(),
            org_id: 1,
            org_uuid: Uuid::from_u128(1),
            active: true,
            roaming,
            local: true,
            created: 0,
            modified: 0,
        };
        let mut changes = vec![Change::SharingGroupCreated(group)];
        changes.extend(orgs.iter().map(|o| Change::SharingGroupOrgAdded(SharingGroupOrg { org_id: *o, org_uuid: Uuid::nil(), extend: false })));
        changes.extend(servers.iter().map(|s| Change::SharingGroupServerAdded(SharingGroupServer { server_id: *s, all_orgs: false })));
        changes.iter().fold(SharingGroupState::default(), evolve)
    }

    #[test]
    fn connected_communities_travel_one_hop_and_all_communities_travel_on() {
        let p = peer(2, 9);
        assert!(event_pushable(true, 2, None, &p));
        assert_eq!(event_distribution_for_push(2, &p), 1);
        assert!(!event_pushable(true, 1, None, &p), "the downgraded copy is not pushed further");
        assert!(event_pushable(true, 3, None, &p));
        assert_eq!(event_distribution_for_push(3, &p), 3);
        assert!(!event_pushable(false, 3, None, &p), "only published Events are pushed");
        assert!(!event_pushable(true, 0, None, &p));
    }

    #[test]
    fn elements_are_dropped_or_downgraded_on_push() {
        let p = peer(2, 9);
        assert_eq!(element_distribution_for_push(0, None, &p), None);
        assert_eq!(element_distribution_for_push(1, None, &p), None);
        assert_eq!(element_distribution_for_push(2, None, &p), Some(1));
        assert_eq!(element_distribution_for_push(5, None, &p), Some(5));
        let internal = Peer { internal: true, ..p };
        assert_eq!(element_distribution_for_push(0, None, &internal), Some(0));
    }

    #[test]
    fn sharing_groups_reach_listed_servers_or_member_organisations() {
        let p = peer(2, 9);
        assert!(sharing_group_reaches(&sg(&[], &[2], false), &p));
        assert!(!sharing_group_reaches(&sg(&[9], &[3], false), &p), "servers listed: the org alone does not suffice");
        assert!(sharing_group_reaches(&sg(&[9], &[3], true), &p), "roaming: membership decides");
        assert!(sharing_group_reaches(&sg(&[9], &[], false), &p));
        assert!(!sharing_group_reaches(&sg(&[8], &[], false), &p));
        assert!(event_pushable(true, 4, Some(&sg(&[9], &[], false)), &p));
        assert_eq!(element_distribution_for_push(4, Some(&sg(&[8], &[], false)), &p), None);
    }

    #[test]
    fn pulls_downgrade_unless_the_peer_is_internal() {
        let p = peer(2, 9);
        assert_eq!(distribution_after_pull(1, &p), 0);
        assert_eq!(distribution_after_pull(2, &p), 1);
        assert_eq!(distribution_after_pull(3, &p), 3);
        assert_eq!(distribution_after_pull(1, &Peer { internal: true, ..p }), 1);
    }
}
