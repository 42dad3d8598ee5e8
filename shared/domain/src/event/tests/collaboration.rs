//! Given/when/then tests of the collaboration commands (proposals, delegation, discussion, reporter
//! contact) and of who is notified of them, in the world of the parent module: organisation 1 (host)
//! owns the Event, organisation 2 is "another organisation", organisation 3 a third one.

use super::*;
use crate::acl;
use crate::error::StaleProposal;
use crate::event::collaboration::{
    DELEGATION_PENDING, INVALID_ATTRIBUTE, INVALID_DELEGATION, INVALID_POST, INVALID_PROPOSAL, NOT_AUTHORISED, ONLY_PRIVATE_EVENTS,
};

const THIRD_ORG: i64 = 3;

/// User 40 (role User) of a third organisation.
fn third_party() -> Who {
    who(THIRD_ORG, 40, USER)
}

fn outside_read_only() -> Who {
    who(OTHER_ORG, 22, READ_ONLY)
}

fn proposals(d: &Decision) -> Vec<&Proposal> {
    d.changes.iter().filter_map(|c| if let Change::ProposalAdded(p) = c { Some(p) } else { None }).collect()
}

fn posts(d: &Decision) -> Vec<&Post> {
    d.changes.iter().filter_map(|c| if let Change::PostAdded(p) = c { Some(p) } else { None }).collect()
}

/// Whether `who` can see the Event of `state` (through the one visibility rule).
fn sees(state: &EventState, who: &Who) -> bool {
    state.live().is_some() && state.access().is_some_and(|e| acl::event_visible(&who.viewer, &e, &who.access))
}

/// Runs a sequence of commands, each on the state the previous ones produced.
fn play(history: &[Change], steps: Vec<(Who, EventCommand)>) -> (EventState, Vec<Change>) {
    let mut state = given(history);
    let mut log = Vec::new();
    for (who, command) in steps {
        let d = accepted(when(&state, &who, command));
        state = then(&state, &d);
        log.extend(d.changes);
    }
    (state, log)
}

fn ids_of(attributes: &[i64]) -> IdPool {
    IdPool { attributes: attributes.iter().copied().collect(), ..IdPool::default() }
}

// ---------------------------------------------------------------------------------------------------
// Proposals: commands
// ---------------------------------------------------------------------------------------------------

fn propose_new(id: i64, draft: AttributeDraft) -> EventCommand {
    EventCommand::ProposeAttribute { id, draft }
}
fn propose_edit(id: i64, attribute: i64, draft: AttributeDraft) -> EventCommand {
    EventCommand::ProposeEdit { id, target: ElementRef::Id(attribute), draft }
}
fn propose_deletion(id: i64, attribute: i64) -> EventCommand {
    EventCommand::ProposeDeletion { id, target: ElementRef::Id(attribute) }
}
fn accept(id: i64) -> EventCommand {
    EventCommand::AcceptProposal { id, ids: ids_of(&[100]) }
}
fn discard(id: i64) -> EventCommand {
    EventCommand::DiscardProposal { id }
}
fn ids_off() -> AttributeDraft {
    AttributeDraft { to_ids: Some(false), ..edit_of(1) }
}

/// The community Event with attributes 1 and 2, and organisation 2's pending proposal 50 to turn
/// attribute 1's IDS flag off.
fn event_with_ids_off_proposal() -> Vec<Change> {
    let mut history = event_with_attributes();
    let d = accepted(when(&given(&history), &outsider(), propose_edit(50, 1, ids_off())));
    history.extend(d.changes);
    history
}

// ===================================================================================================
// Proposals
// ===================================================================================================

#[test]
fn another_organisation_proposes_turning_an_attributes_ids_flag_off() {
    let state = given(&event_with_attributes());

    let d = accepted(when(&state, &outsider(), propose_edit(50, 1, ids_off())));

    assert_eq!(kinds(&d), ["proposal.added.v1"], "a proposal does not touch the Event");
    assert_eq!(
        one(proposals(&d)),
        &Proposal {
            id: 50,
            uuid: attribute_uuid(1),
            event_id: EVENT_ID,
            event_uuid: EVENT_UUID,
            old_id: 1,
            event_org_id: HOST_ORG,
            category: "Network activity".into(),
            attr_type: "ip-dst".into(),
            value1: "198.51.100.1".into(),
            value2: String::new(),
            to_ids: false,
            comment: String::new(),
            disable_correlation: false,
            first_seen: None,
            last_seen: None,
            proposal_to_delete: false,
            org_id: OTHER_ORG,
            user_id: 20,
            email: "system".into(),
            timestamp: NOW,
            base_revision: 1,
            base_timestamp: T0,
        }
    );
    let after = then(&state, &d);
    assert!(after.proposals.contains_key(&50));
    assert_eq!(after.live().map(|m| m.timestamp), Some(T0));
    assert_eq!(after.attributes.get(&1).map(|a| a.to_ids), Some(true), "the attribute waits for the owner");
}

#[test]
fn proposing_a_new_attribute_validates_and_normalises_it_like_an_attribute() {
    let state = given(&[community_event()]);

    let d = accepted(when(&state, &outsider(), propose_new(51, new_attribute(1, "domain", "Evil[.]Example"))));

    let p = one(proposals(&d));
    assert_eq!((p.old_id, p.uuid, p.attr_type.as_str(), p.category.as_str()), (0, draft_uuid(1), "domain", "Network activity"));
    assert_eq!((p.value1.as_str(), p.to_ids, p.base_revision, p.base_timestamp), ("evil.example", true, 0, 0));
    assert!(p.is_new_attribute());
}

#[test]
fn a_proposal_is_validated_like_the_attribute_it_would_be() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &outsider(), propose_new(51, new_attribute(1, "nope", "x")))), invalid("type", "Invalid type \"nope\"."));
    let wrong_category = AttributeDraft { category: Some("Other".into()), ..new_attribute(1, "md5", MD5) };
    assert_eq!(
        refused(when(&state, &outsider(), propose_new(51, wrong_category))),
        invalid("category", "The category \"Other\" is not valid for the type \"md5\".")
    );
    let bad_value = AttributeDraft { attr_type: Some("md5".into()), category: Some("Payload delivery".into()), ..edit_of(1) };
    assert!(matches!(refused(when(&state, &outsider(), propose_edit(51, 1, bad_value))), DomainError::Invalid { field, .. } if field == "value"));
}

#[test]
fn proposing_on_ones_own_event_is_allowed_as_in_misp() {
    // PyMISP's live test proposes on the user's own Event.
    let d = accepted(when(&given(&event_with_attributes()), &creator(), propose_edit(50, 1, ids_off())));
    assert_eq!(one(proposals(&d)).org_id, HOST_ORG);
}

#[test]
fn a_read_only_user_cannot_propose() {
    let state = given(&event_with_attributes());
    assert_eq!(refused(when(&state, &outside_read_only(), propose_edit(50, 1, ids_off()))), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(refused(when(&state, &outside_read_only(), propose_deletion(50, 1))), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn proposing_on_an_event_one_cannot_see_looks_like_a_missing_event() {
    let state = given(&[org_only_event(), added(ip1())]);
    assert_eq!(refused(when(&state, &outsider(), propose_edit(50, 1, ids_off()))), not_found("Invalid event"));
    assert_eq!(refused(when(&state, &outsider(), propose_new(50, new_attribute(1, "ip-dst", "198.51.100.9")))), not_found("Invalid event"));
}

#[test]
fn proposing_on_an_invisible_or_deleted_attribute_is_refused() {
    let org_only = Attribute { distribution: 0, ..ip1() };
    let state = given(&[community_event(), added(org_only), added(domain2()), Change::AttributeDeleted { id: 2, hard: false, timestamp: T0 }]);
    assert_eq!(refused(when(&state, &outsider(), propose_edit(50, 1, ids_off()))), not_found(INVALID_ATTRIBUTE));
    assert_eq!(refused(when(&state, &outsider(), propose_deletion(50, 2))), not_found(INVALID_ATTRIBUTE));
    assert_eq!(refused(when(&state, &outsider(), propose_deletion(50, 99))), not_found(INVALID_ATTRIBUTE));
}

#[test]
fn an_edit_proposal_needs_at_least_one_field() {
    let state = given(&event_with_attributes());
    let only_distribution = AttributeDraft { distribution: Some(0), ..edit_of(1) };
    assert_eq!(refused(when(&state, &outsider(), propose_edit(50, 1, only_distribution))), invalid("ShadowAttribute", "Invalid input."));
}

#[test]
fn an_edit_proposal_cannot_change_the_type_of_an_object_attribute() {
    let state = given(&event_with_domain_ip_object());
    let draft = AttributeDraft { attr_type: Some("ip-src".into()), comment: Some("the source".into()), ..edit_of(11) };

    let d = accepted(when(&state, &outsider(), propose_edit(50, 11, draft)));

    let p = one(proposals(&d));
    assert_eq!((p.attr_type.as_str(), p.comment.as_str(), p.old_id), ("ip-dst", "the source", 11));
}

#[test]
fn a_deletion_proposal_is_a_flagged_copy_of_the_attribute() {
    let d = accepted(when(&given(&event_with_attributes()), &outsider(), propose_deletion(52, 2)));
    let p = one(proposals(&d));
    assert!(p.proposal_to_delete);
    assert_eq!((p.old_id, p.uuid, p.value1.as_str(), p.attr_type.as_str()), (2, attribute_uuid(2), "evil.example", "domain"));
}

#[test]
fn the_owner_accepts_an_edit_proposal_in_one_decision_with_the_attribute_change() {
    let state = given(&event_with_ids_off_proposal());

    let d = accepted(when(&state, &creator(), accept(50)));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "proposal.accepted.v1", "event.touched.v1"]);
    let a = one(updated_attributes(&d));
    assert_eq!((a.id, a.to_ids, a.timestamp), (1, false, NOW));
    assert!(d.changes.contains(&Change::ProposalAccepted { id: 50, attribute_id: 1, by_org_id: HOST_ORG, by_user_id: 10, timestamp: NOW }));
    let after = then(&state, &d);
    assert!(after.proposals.is_empty());
    assert_eq!(after.attributes.get(&1).map(|a| a.to_ids), Some(false));
    assert!(after.live().is_some_and(|m| !m.published && m.timestamp == NOW));
}

#[test]
fn accepting_an_edit_of_an_object_attribute_moves_the_objects_timestamp() {
    let mut history = event_with_domain_ip_object();
    history.extend(accepted(when(&given(&history), &outsider(), propose_edit(50, 11, AttributeDraft { to_ids: Some(false), ..edit_of(11) }))).changes);

    let d = accepted(when(&given(&history), &creator(), accept(50)));

    assert_eq!(kinds(&d), ["attribute.updated.v1", "object.updated.v1", "proposal.accepted.v1", "event.touched.v1"]);
    assert_eq!(one(updated_objects(&d)).timestamp, NOW);
}

#[test]
fn accepting_a_new_attribute_proposal_adds_it_with_the_events_distribution() {
    let mut history = event_with_attributes();
    history.extend(accepted(when(&given(&history), &outsider(), propose_new(51, new_attribute(1, "ip-dst", "198.51.100.9")))).changes);
    let state = given(&history);

    let d = accepted(when(&state, &creator(), accept(51)));

    assert_eq!(kinds(&d), ["attribute.added.v1", "proposal.accepted.v1", "event.touched.v1"]);
    let a = one(added_attributes(&d));
    assert_eq!((a.id, a.uuid, a.value1.as_str(), a.distribution, a.timestamp), (100, draft_uuid(1), "198.51.100.9", 5, NOW));
    assert!(d.changes.contains(&Change::ProposalAccepted { id: 51, attribute_id: 100, by_org_id: HOST_ORG, by_user_id: 10, timestamp: NOW }));
    // the new attribute is the Event's last one (PyMISP: `first.attributes[-1].value`)
    assert_eq!(then(&state, &d).attributes.values().last().map(|a| a.value1.clone()), Some("198.51.100.9".into()));
}

#[test]
fn accepting_a_deletion_proposal_soft_deletes_the_attribute() {
    let mut history = event_with_attributes();
    history.extend(accepted(when(&given(&history), &outsider(), propose_deletion(52, 2))).changes);

    let d = accepted(when(&given(&history), &creator(), accept(52)));

    assert_eq!(kinds(&d), ["attribute.deleted.v1", "proposal.accepted.v1", "event.touched.v1"]);
    assert!(d.changes.contains(&Change::AttributeDeleted { id: 2, hard: false, timestamp: NOW }));
}

#[test]
fn accepting_a_new_attribute_that_duplicates_one_is_refused() {
    let mut history = event_with_attributes();
    history.extend(accepted(when(&given(&history), &outsider(), propose_new(51, new_attribute(1, "ip-dst", "198.51.100.1")))).changes);
    assert_eq!(refused(when(&given(&history), &creator(), accept(51))), invalid("value", DUPLICATE));
}

#[test]
fn only_someone_who_may_modify_the_event_accepts_a_proposal() {
    let state = given(&event_with_ids_off_proposal());
    assert_eq!(refused(when(&state, &outsider(), accept(50))), forbidden(NO_PERMISSION), "the proposer cannot accept");
    assert_eq!(refused(when(&state, &colleague_read_only(), accept(50))), forbidden(NO_PERMISSION));
    for who in [creator(), org_admin(), colleague_publisher(), site_admin()] {
        assert_eq!(kinds(&accepted(when(&state, &who, accept(50))))[1], "proposal.accepted.v1");
    }
}

#[test]
fn accepting_a_proposal_whose_attribute_changed_since_is_refused_with_both_versions() {
    let mut history = event_with_ids_off_proposal();
    let newer = Attribute { comment: "our proxy".into(), timestamp: NOW - 10, ..ip1() };
    history.push(Change::AttributeUpdated(newer.clone()));
    let state = given(&history);

    let err = refused(when(&state, &creator(), accept(50)));

    let proposal = state.proposals.get(&50).cloned().expect("pending");
    assert_eq!(err, DomainError::StaleProposal(Box::new(StaleProposal { current: newer, current_revision: 2, proposal })));
    assert!(err.to_string().contains("revision 2 now, proposal based on revision 1"), "{err}");
    assert!(state.proposals.contains_key(&50), "nothing was resolved");
}

#[test]
fn a_stale_proposal_is_detected_even_when_the_edit_kept_the_attributes_timestamp() {
    // Two edits in the same second (or a client-forced timestamp) leave `timestamp` unchanged; the
    // revision still moves.
    let mut history = event_with_ids_off_proposal();
    history.push(Change::AttributeUpdated(Attribute { comment: "same second".into(), ..ip1() }));
    assert!(matches!(refused(when(&given(&history), &creator(), accept(50))), DomainError::StaleProposal(_)));
}

#[test]
fn a_second_proposal_on_the_same_attribute_goes_stale_when_the_first_is_accepted() {
    let (state, _) = play(
        &event_with_attributes(),
        vec![
            (outsider(), propose_edit(50, 1, ids_off())),
            (third_party(), propose_edit(51, 1, AttributeDraft { comment: Some("sinkhole".into()), ..edit_of(1) })),
            (creator(), accept(50)),
        ],
    );
    assert!(matches!(refused(when(&state, &creator(), accept(51))), DomainError::StaleProposal(s) if s.current_revision == 2 && !s.current.to_ids));
    // the stale one can still be discarded, and proposed again on the new version
    let d = accepted(when(&state, &third_party(), discard(51)));
    assert_eq!(kinds(&d), ["proposal.discarded.v1"]);
    let again = accepted(when(&state, &third_party(), propose_edit(53, 1, AttributeDraft { comment: Some("sinkhole".into()), ..edit_of(1) })));
    assert_eq!(one(proposals(&again)).base_revision, 2);
}

#[test]
fn local_tags_do_not_make_a_proposal_stale() {
    let mut history = event_with_ids_off_proposal();
    history.push(Change::AttributeTagged { attribute_id: 1, tag: local(5) });
    accepted(when(&given(&history), &creator(), accept(50)));
    history.push(Change::AttributeTagged { attribute_id: 1, tag: global(6) });
    assert!(matches!(refused(when(&given(&history), &creator(), accept(50))), DomainError::StaleProposal(_)));
}

#[test]
fn accepting_a_proposal_on_a_hard_deleted_attribute_is_a_conflict() {
    let mut history = event_with_ids_off_proposal();
    history.push(Change::AttributeDeleted { id: 1, hard: true, timestamp: NOW });
    assert!(matches!(refused(when(&given(&history), &creator(), accept(50))), DomainError::Conflict(_)));
}

#[test]
fn a_proposal_is_discarded_by_the_owner_side_or_the_proposing_organisation_only() {
    let state = given(&event_with_ids_off_proposal());
    assert_eq!(refused(when(&state, &third_party(), discard(50))), forbidden(NO_PERMISSION));
    for who in [outsider(), outside_read_only(), creator(), site_admin()] {
        let d = accepted(when(&state, &who, discard(50)));
        assert_eq!(d.changes, [Change::ProposalDiscarded { id: 50, by_org_id: who.actor.org_id, by_user_id: who.actor.user_id, timestamp: NOW }]);
        let after = then(&state, &d);
        assert!(after.proposals.is_empty());
        assert_eq!(after.attributes.get(&1), state.attributes.get(&1), "the attribute stays unchanged");
    }
}

#[test]
fn a_resolved_proposal_cannot_be_resolved_again() {
    let (state, _) = play(&event_with_ids_off_proposal(), vec![(creator(), discard(50))]);
    assert_eq!(refused(when(&state, &creator(), accept(50))), not_found(INVALID_PROPOSAL));
    assert_eq!(refused(when(&state, &creator(), discard(50))), not_found(INVALID_PROPOSAL));
}

#[test]
fn exercise_4_another_org_proposes_ids_off_explains_it_and_the_owner_accepts() {
    let (state, log) = play(
        &event_with_attributes(),
        vec![
            (outsider(), propose_edit(50, 1, ids_off())),
            (outsider(), add_post(60, "198.51.100.1 is our proxy: it causes false positives in our IDS.")),
            (creator(), add_post(61, "Agreed, accepting.")),
            (creator(), accept(50)),
        ],
    );
    let kinds: Vec<String> = log.iter().map(|c| c.to_record().change_type).collect();
    assert_eq!(
        kinds,
        ["proposal.added", "thread.started", "post.added", "post.added", "attribute.updated", "proposal.accepted", "event.touched"]
    );
    assert_eq!(state.attributes.get(&1).map(|a| a.to_ids), Some(false));
    assert_eq!(state.posts.len(), 2);
}

// ===================================================================================================
// Delegation
// ===================================================================================================

fn delegate(id: i64, org_id: i64, distribution: i8) -> EventCommand {
    EventCommand::RequestDelegation { id, org_id, distribution, sharing_group_id: 0, message: "please publish this".into() }
}
fn accept_delegation(id: i64) -> EventCommand {
    EventCommand::AcceptDelegation { id }
}
fn discard_delegation(id: i64) -> EventCommand {
    EventCommand::DiscardDelegation { id }
}

/// The host organisation's org-only Event with two ip-dst attributes.
fn private_event_with_two_ips() -> Vec<Change> {
    vec![org_only_event(), added(ip1()), added(attribute(2, "ip-dst", "Network activity", "198.51.100.2"))]
}

/// ... and a pending delegation (id 70) to organisation 2 with `distribution`.
fn delegated_event(distribution: i8) -> Vec<Change> {
    let mut history = private_event_with_two_ips();
    history.extend(accepted(when(&given(&history), &colleague_publisher(), delegate(70, OTHER_ORG, distribution))).changes);
    history
}

#[test]
fn the_creator_organisation_delegates_an_org_only_event_and_the_target_sees_it_while_pending() {
    let state = given(&private_event_with_two_ips());
    assert!(!sees(&state, &outside_publisher()));

    let d = accepted(when(&state, &colleague_publisher(), delegate(70, OTHER_ORG, 1)));

    assert_eq!(
        d.changes,
        [Change::DelegationRequested(Delegation {
            id: 70,
            event_id: EVENT_ID,
            org_id: OTHER_ORG,
            requester_org_id: HOST_ORG,
            requester_user_id: 11,
            message: "please publish this".into(),
            distribution: 1,
            sharing_group_id: 0,
            timestamp: NOW,
        })]
    );
    let after = then(&state, &d);
    assert_eq!(after.access().map(|a| a.delegate_org_id), Some(OTHER_ORG));
    assert!(sees(&after, &outside_publisher()));
    assert!(!sees(&after, &third_party()));
    assert_eq!(after.live().map(|m| (m.timestamp, m.org_id)), Some((T0, HOST_ORG)), "the request changes nothing of the Event");
    // the target may already read, propose and discuss
    accepted(when(&after, &outside_publisher(), propose_edit(50, 1, ids_off())));
    accepted(when(&after, &outside_publisher(), add_post(60, "we will take it")));
    // but not edit
    assert_eq!(refused(when(&after, &outside_publisher(), edit_attribute(1, ids_off()))), forbidden(NO_PERMISSION));
}

#[test]
fn delegating_needs_perm_delegate() {
    let state = given(&private_event_with_two_ips());
    assert_eq!(refused(when(&state, &creator(), delegate(70, OTHER_ORG, -1))), forbidden(NO_PERMISSION_FUNCTIONALITY));
}

#[test]
fn only_the_creator_organisation_or_a_site_admin_delegates() {
    let community = given(&[community_event()]);
    assert_eq!(refused(when(&community, &outside_publisher(), delegate(70, THIRD_ORG, -1))), forbidden(NOT_AUTHORISED));
    let d = accepted(when(&given(&private_event_with_two_ips()), &site_admin(), delegate(70, THIRD_ORG, -1)));
    assert_eq!(kinds(&d), ["delegation.requested.v1"]);
}

#[test]
fn only_org_only_events_are_delegated_unless_unpublished_events_are_private() {
    let community = given(&[community_event()]);
    assert_eq!(refused(when(&community, &colleague_publisher(), delegate(70, OTHER_ORG, -1))), DomainError::Conflict(ONLY_PRIVATE_EVENTS.into()));
    let mut publisher = colleague_publisher();
    publisher.access = AccessSettings { unpublished_private: true };
    accepted(when(&community, &publisher, delegate(70, OTHER_ORG, -1)));
}

#[test]
fn an_event_has_one_pending_delegation_at_most() {
    let state = given(&delegated_event(-1));
    assert_eq!(refused(when(&state, &colleague_publisher(), delegate(71, THIRD_ORG, -1))), DomainError::Conflict(DELEGATION_PENDING.into()));
}

#[test]
fn a_delegation_request_is_validated() {
    let state = given(&private_event_with_two_ips());
    let publisher = colleague_publisher();
    assert_eq!(refused(when(&state, &publisher, delegate(70, HOST_ORG, -1))), invalid("org_id", "Invalid target organisation."));
    assert_eq!(refused(when(&state, &publisher, delegate(70, 0, -1))), invalid("org_id", "Invalid target organisation."));
    assert_eq!(refused(when(&state, &publisher, delegate(70, OTHER_ORG, 5))), invalid("distribution", "Options: -1 (recipient decides), 0..4."));
    assert_eq!(
        refused(when(&state, &publisher, delegate(70, OTHER_ORG, 4))),
        invalid("sharing_group_id", "Invalid sharing group or sharing group not set.")
    );
    let with_sg = EventCommand::RequestDelegation { id: 70, org_id: OTHER_ORG, distribution: 2, sharing_group_id: 7, message: String::new() };
    let d = accepted(when(&state, &publisher, with_sg));
    assert!(matches!(&d.changes[0], Change::DelegationRequested(x) if x.sharing_group_id == 0), "a sharing group only goes with distribution 4");
}

#[test]
fn accepting_a_delegation_transfers_the_event_in_place_and_applies_the_requested_distribution() {
    let state = given(&delegated_event(1));

    let d = accepted(when(&state, &outside_publisher(), accept_delegation(70)));

    assert_eq!(kinds(&d), ["delegation.accepted.v1", "event.updated.v1"]);
    assert_eq!(d.changes[0], Change::DelegationAccepted { id: 70, by_org_id: OTHER_ORG, by_user_id: 21, timestamp: NOW });
    let meta = one(updated_events(&d));
    assert_eq!(
        (meta.id, meta.uuid, meta.org_id, meta.orgc_id, meta.user_id, meta.distribution, meta.timestamp, meta.published),
        (EVENT_ID, EVENT_UUID, OTHER_ORG, OTHER_ORG, 21, 1, NOW, false)
    );
    let after = then(&state, &d);
    assert_eq!(after.delegation, None);
    assert_eq!(live_attribute_count(&after), 2, "nothing was deleted and re-created");
    assert_eq!(after.access().map(|a| a.delegate_org_id), Some(0));
}

#[test]
fn recipient_decides_keeps_the_distribution() {
    let d = accepted(when(&given(&delegated_event(-1)), &outside_publisher(), accept_delegation(70)));
    let meta = one(updated_events(&d));
    assert_eq!((meta.org_id, meta.distribution, meta.sharing_group_id), (OTHER_ORG, 0, 0));
}

#[test]
fn a_requested_sharing_group_must_be_one_the_accepting_user_may_assign() {
    let mut history = private_event_with_two_ips();
    let request = EventCommand::RequestDelegation { id: 70, org_id: OTHER_ORG, distribution: 4, sharing_group_id: 7, message: String::new() };
    history.extend(accepted(when(&given(&history), &colleague_publisher(), request)).changes);
    let state = given(&history);
    assert_eq!(
        refused(when(&state, &outside_publisher(), accept_delegation(70))),
        invalid("sharing_group_id", "Invalid sharing group or sharing group not set.")
    );
    let d = accepted(when(&state, &outside_publisher().in_sharing_group(7), accept_delegation(70)));
    let meta = one(updated_events(&d));
    assert_eq!((meta.distribution, meta.sharing_group_id), (4, 7));
}

#[test]
fn only_the_target_organisation_with_perm_add_accepts_a_delegation() {
    let state = given(&delegated_event(-1));
    assert_eq!(refused(when(&state, &colleague_publisher(), accept_delegation(70))), forbidden(NOT_AUTHORISED));
    assert_eq!(refused(when(&state, &third_party(), accept_delegation(70))), not_found("Invalid event"));
    assert_eq!(refused(when(&state, &outside_read_only(), accept_delegation(70))), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(refused(when(&state, &outside_publisher(), accept_delegation(71))), not_found(INVALID_DELEGATION));
    accepted(when(&state, &site_admin(), accept_delegation(70)));
}

#[test]
fn the_delegation_scenario_ends_with_the_new_owner_publishing_and_the_requester_out() {
    let (state, log) = play(
        &private_event_with_two_ips(),
        vec![
            (colleague_publisher(), delegate(70, OTHER_ORG, -1)),
            (outside_publisher(), accept_delegation(70)),
            (outside_publisher(), EventCommand::Publish),
        ],
    );
    let kinds: Vec<String> = log.iter().map(|c| c.to_record().change_type).collect();
    assert_eq!(kinds, ["delegation.requested", "delegation.accepted", "event.updated", "event.published"]);
    assert!(state.live().is_some_and(|m| m.published && m.orgc_id == OTHER_ORG));
    assert!(!sees(&state, &creator()), "an org-only Event now belongs to organisation 2 alone");
    assert_eq!(refused(when(&state, &colleague_publisher(), EventCommand::Publish)), not_found("Invalid event"));
}

#[test]
fn either_side_discards_a_delegation_and_the_target_loses_sight_of_the_event() {
    let state = given(&delegated_event(-1));
    assert_eq!(refused(when(&state, &third_party(), discard_delegation(70))), not_found("Invalid event"));
    for who in [colleague_publisher(), outsider(), site_admin()] {
        let d = accepted(when(&state, &who, discard_delegation(70)));
        assert_eq!(d.changes, [Change::DelegationDiscarded { id: 70, by_org_id: who.actor.org_id, by_user_id: who.actor.user_id, timestamp: NOW }]);
        let after = then(&state, &d);
        assert_eq!(after.delegation, None);
        assert!(!sees(&after, &outside_publisher()));
        assert_eq!(after.live(), state.live(), "the Event is unchanged");
    }
}

// ===================================================================================================
// Discussion
// ===================================================================================================

fn add_post(id: i64, contents: &str) -> EventCommand {
    EventCommand::AddPost { id, thread_id: 900 + id, contents: contents.into(), reply_to: None }
}

#[test]
fn the_first_post_starts_the_events_thread_titled_as_misp_does() {
    let state = given(&[community_event()]);

    let d = accepted(when(&state, &outsider(), add_post(60, "hello")));

    assert_eq!(
        d.changes,
        [
            Change::ThreadStarted(Thread {
                id: 960,
                event_id: EVENT_ID,
                title: "Discussion about Event #1 (given event)".into(),
                org_id: OTHER_ORG,
                user_id: 20,
                date_created: NOW,
            }),
            Change::PostAdded(Post {
                id: 60,
                thread_id: 960,
                event_id: EVENT_ID,
                user_id: 20,
                org_id: OTHER_ORG,
                contents: "hello".into(),
                post_id: 0,
                date_created: NOW,
                date_modified: NOW,
            }),
        ]
    );
    assert_eq!(then(&state, &d).live().map(|m| m.timestamp), Some(T0), "posting does not touch the Event");
}

#[test]
fn later_posts_join_the_thread_and_may_reply_to_a_post_of_it() {
    let (state, _) = play(&[community_event()], vec![(outsider(), add_post(60, "hello"))]);

    let d = accepted(when(&state, &creator(), EventCommand::AddPost { id: 61, thread_id: 999, contents: "hi".into(), reply_to: Some(60) }));

    assert_eq!(kinds(&d), ["post.added.v1"]);
    assert_eq!(one(posts(&d)).thread_id, 960);
    assert_eq!(one(posts(&d)).post_id, 60);
    let unknown = EventCommand::AddPost { id: 62, thread_id: 999, contents: "hi".into(), reply_to: Some(59) };
    assert_eq!(refused(when(&state, &creator(), unknown)), invalid("post_id", INVALID_POST));
}

#[test]
fn an_empty_post_is_refused() {
    assert_eq!(refused(when(&given(&[community_event()]), &outsider(), add_post(60, "  \n"))), invalid("message", "The message cannot be empty."));
}

#[test]
fn posting_needs_to_see_the_event() {
    assert_eq!(refused(when(&given(&[org_only_event()]), &outsider(), add_post(60, "hello"))), not_found("Invalid event"));
    // even a read-only user may take part in a discussion it can see (MISP)
    accepted(when(&given(&[community_event()]), &outside_read_only(), add_post(60, "hello")));
}

#[test]
fn only_the_author_or_a_site_admin_edits_or_deletes_a_post() {
    let (state, _) = play(&[community_event()], vec![(outsider(), add_post(60, "hello")), (creator(), add_post(61, "hi"))]);
    let edit = |id| EventCommand::EditPost { id, contents: "edited".into() };
    assert_eq!(refused(when(&state, &creator(), edit(60))), forbidden(NOT_AUTHORISED));
    assert_eq!(refused(when(&state, &org_admin(), EventCommand::DeletePost { id: 60 })), forbidden(NOT_AUTHORISED));
    assert_eq!(accepted(when(&state, &outsider(), edit(60))).changes, [Change::PostEdited { id: 60, contents: "edited".into(), date_modified: NOW }]);
    assert_eq!(kinds(&accepted(when(&state, &site_admin(), edit(60)))), ["post.edited.v1"]);
    assert_eq!(accepted(when(&state, &site_admin(), EventCommand::DeletePost { id: 60 })).changes, [Change::PostDeleted { id: 60, by_user_id: 30, timestamp: NOW }]);
    assert_eq!(refused(when(&state, &outsider(), EventCommand::DeletePost { id: 99 })), not_found(INVALID_POST));
}

#[test]
fn editing_a_post_to_the_same_contents_records_nothing() {
    let (state, _) = play(&[community_event()], vec![(outsider(), add_post(60, "hello"))]);
    assert_eq!(accepted(when(&state, &outsider(), EventCommand::EditPost { id: 60, contents: "hello".into() })), Decision::default());
}

#[test]
fn deleting_the_last_post_deletes_the_thread_and_the_next_post_starts_another() {
    let (state, _) = play(&[community_event()], vec![(outsider(), add_post(60, "hello")), (creator(), add_post(61, "hi"))]);
    let (state, log) = play_on(state, vec![(outsider(), EventCommand::DeletePost { id: 60 })]);
    assert_eq!(log, [Change::PostDeleted { id: 60, by_user_id: 20, timestamp: NOW }]);
    let (state, log) = play_on(state, vec![(creator(), EventCommand::DeletePost { id: 61 })]);
    assert_eq!(log, [Change::PostDeleted { id: 61, by_user_id: 10, timestamp: NOW }, Change::ThreadDeleted { id: 960, timestamp: NOW }]);
    assert_eq!((state.thread.clone(), state.posts.len()), (None, 0));
    let d = accepted(when(&state, &outsider(), add_post(62, "again")));
    assert_eq!(kinds(&d), ["thread.started.v1", "post.added.v1"]);
    assert_eq!(one(posts(&d)).thread_id, 962);
}

fn play_on(mut state: EventState, steps: Vec<(Who, EventCommand)>) -> (EventState, Vec<Change>) {
    let mut log = Vec::new();
    for (who, command) in steps {
        let d = accepted(when(&state, &who, command));
        state = then(&state, &d);
        log.extend(d.changes);
    }
    (state, log)
}

// ===================================================================================================
// Reporter contact
// ===================================================================================================

#[test]
fn anyone_who_sees_the_event_may_contact_its_reporter() {
    let contact = |m: &str| EventCommand::ContactReporter { message: m.into(), creator_only: true };
    let d = accepted(when(&given(&[community_event()]), &outside_read_only(), contact("is 198.51.100.1 still active?")));
    assert_eq!(
        d.changes,
        [Change::EventReporterContacted { org_id: OTHER_ORG, user_id: 22, message: "is 198.51.100.1 still active?".into(), creator_only: true, timestamp: NOW }]
    );
    assert_eq!(refused(when(&given(&[community_event()]), &outsider(), contact(" "))), invalid("message", "The message cannot be empty."));
    assert_eq!(refused(when(&given(&[org_only_event()]), &outsider(), contact("hello"))), not_found("Invalid event"));
}

// ===================================================================================================
// Notifications
// ===================================================================================================

/// The recipients of each change of a decision, each computed on the state before it.
fn notified(state: &EventState, d: &Decision) -> Vec<Vec<Recipient>> {
    let mut s = state.clone();
    let mut out = Vec::new();
    for c in &d.changes {
        out.push(recipients(&s, c));
        s = evolve(s, c);
    }
    out
}

#[test]
fn a_proposal_notifies_the_creator_organisation_and_its_resolution_the_proposer() {
    let state = given(&event_with_attributes());
    let d = accepted(when(&state, &outsider(), propose_edit(50, 1, ids_off())));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(HOST_ORG)]]);

    let state = then(&state, &d);
    let d = accepted(when(&state, &creator(), accept(50)));
    assert_eq!(notified(&state, &d), [vec![], vec![Recipient::User(20)], vec![]]);
    let d = accepted(when(&state, &outsider(), discard(50)));
    assert_eq!(notified(&state, &d), [Vec::<Recipient>::new()], "withdrawing one's own proposal notifies nobody");
}

#[test]
fn a_post_notifies_the_owner_the_creator_and_earlier_posters_but_not_its_author() {
    let (state, _) = play(&[community_event()], vec![(outsider(), add_post(60, "hello")), (third_party(), add_post(61, "hi"))]);
    let d = accepted(when(&state, &outsider(), add_post(62, "again")));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(HOST_ORG), Recipient::User(10), Recipient::User(40)]]);
}

#[test]
fn delegation_notifications_go_to_the_other_side() {
    let state = given(&private_event_with_two_ips());
    let d = accepted(when(&state, &colleague_publisher(), delegate(70, OTHER_ORG, -1)));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(OTHER_ORG)]]);
    let state = then(&state, &d);
    let d = accepted(when(&state, &outside_publisher(), accept_delegation(70)));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(HOST_ORG)], vec![]]);
    let d = accepted(when(&state, &colleague_publisher(), discard_delegation(70)));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(OTHER_ORG)]]);
    let third_org_admin = who(THIRD_ORG, 31, ADMIN);
    let d = accepted(when(&state, &third_org_admin, discard_delegation(70)));
    assert_eq!(notified(&state, &d), [vec![Recipient::Organisation(HOST_ORG), Recipient::Organisation(OTHER_ORG)]]);
}

#[test]
fn a_reporter_contact_goes_to_the_creator_user_or_the_creator_organisation() {
    let state = given(&[community_event()]);
    for (creator_only, expected) in [(true, Recipient::User(10)), (false, Recipient::Organisation(HOST_ORG))] {
        let d = accepted(when(&state, &outsider(), EventCommand::ContactReporter { message: "hi".into(), creator_only }));
        assert_eq!(notified(&state, &d), [vec![expected]]);
    }
}

#[test]
fn event_content_changes_notify_nobody_through_this_path() {
    let state = given(&event_with_attributes());
    let d = accepted(when(&state, &creator(), edit_attribute(1, ids_off())));
    assert!(notified(&state, &d).iter().all(Vec::is_empty));
}

// ===================================================================================================
// Evolve
// ===================================================================================================

#[test]
fn attribute_revisions_count_content_changes_but_not_local_tags() {
    let state = given(&event_with_attributes());
    assert_eq!((state.attribute_revision(1), state.attribute_revision(2), state.attribute_revision(3)), (1, 1, 0));
    let state = given(&[
        community_event(),
        added(ip1()),
        Change::AttributeUpdated(ip1()),
        Change::AttributeTagged { attribute_id: 1, tag: local(5) },
        Change::AttributeUntagged { attribute_id: 1, tag_id: 5, local: true },
        Change::AttributeTagged { attribute_id: 1, tag: global(6) },
        Change::AttributeDeleted { id: 1, hard: false, timestamp: NOW },
        Change::AttributeRestored { id: 1, timestamp: NOW },
    ]);
    assert_eq!(state.attribute_revision(1), 5);
}

#[test]
fn a_resolution_of_another_delegation_leaves_the_pending_one() {
    let state = given(&delegated_event(-1));
    let after = evolve(state.clone(), &Change::DelegationDiscarded { id: 69, by_org_id: 1, by_user_id: 1, timestamp: NOW });
    assert_eq!(after.delegation, state.delegation);
}
